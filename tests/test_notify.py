"""Team notifications through the outbox: a real SMTP server (aiosmtpd) and a real
webhook receiver on loopback; failures are retried and nothing is lost."""

import datetime as dt
import hashlib
import hmac
import json

import aiohttp
import pytest
from aiohttp import web

from bot.notify import SIGNATURE_HEADER, Notifier, deliver_due, sign
from bot.settings import Settings
from bot.tickets import open_ticket
from tests.conftest import free_port
from tests.test_tickets import CONVERSATION, REQUEST, SATURDAY_1829


@pytest.fixture
async def webhook(aiohttp_server):
    received: list = []
    answers: list[int] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        received.append((request.headers.get(SIGNATURE_HEADER), body))
        return web.Response(status=answers.pop(0) if answers else 204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = await aiohttp_server(app)
    return server, received, answers


def settings_for(smtp_port: int, webhook_url: str) -> Settings:
    return Settings(
        smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_starttls="never", smtp_timeout_s=5,
        webhook_url=webhook_url, webhook_secret="test-secret-not-real", team_email="team@makana.example",
    )


async def test_new_ticket_is_emailed_and_posted_with_a_valid_signature(store, policy, smtp, webhook):
    controller, inbox = smtp
    server, received, _ = webhook
    settings = settings_for(controller.port, str(server.make_url("/hook")))
    ticket, _ = await open_ticket(
        store, policy, REQUEST, "n-1", "web_chat", CONVERSATION, SATURDAY_1829, notify=("email", "webhook")
    )
    async with aiohttp.ClientSession() as session:
        delivered = await deliver_due(store, Notifier(settings, policy, session), SATURDAY_1829)
    assert delivered == 2
    [mail] = inbox.messages
    assert mail.rcpt_tos == ["team@makana.example"]
    content = mail.content.decode()
    assert f"{ticket.number}" in content and "[HIGH]" in content and "Transcript:" in content
    assert "4111 1111" not in content  # redacted before it left the database
    [(signature, body)] = received
    expected = "sha256=" + hmac.new(b"test-secret-not-real", body, hashlib.sha256).hexdigest()
    assert signature == expected
    assert json.loads(body)["ticket"]["number"] == ticket.number
    # Delivered rows are not sent again.
    async with aiohttp.ClientSession() as session:
        assert await deliver_due(store, Notifier(settings, policy, session), SATURDAY_1829 + dt.timedelta(hours=1)) == 0


async def test_failures_are_retried_later_and_nothing_is_lost(store, policy, webhook):
    server, received, answers = webhook
    answers.extend([500])
    dead_smtp = free_port()  # nothing listens there
    settings = settings_for(dead_smtp, str(server.make_url("/hook")))
    ticket, _ = await open_ticket(
        store, policy, REQUEST, "n-2", "web_chat", CONVERSATION, SATURDAY_1829, notify=("email", "webhook")
    )
    async with aiohttp.ClientSession() as session:
        notifier = Notifier(settings, policy, session)
        assert await deliver_due(store, notifier, SATURDAY_1829) == 0
        rows = {r["kind"]: r for r in await store.notifications_for(ticket.id)}
        assert rows["webhook"]["last_error"] == "webhook answered HTTP 500"
        assert "email" in rows["email"]["last_error"]
        # Not due again until the backoff has passed.
        assert await deliver_due(store, notifier, SATURDAY_1829 + dt.timedelta(seconds=1)) == 0
        assert len(received) == 1
        # The webhook recovers: delivered on the next round after the backoff.
        assert await deliver_due(store, notifier, SATURDAY_1829 + dt.timedelta(seconds=6)) == 1
    rows = {r["kind"]: r for r in await store.notifications_for(ticket.id)}
    assert rows["webhook"]["delivered_at"] is not None and rows["webhook"]["attempts"] == 2
    assert rows["email"]["delivered_at"] is None and rows["email"]["attempts"] == 2


def test_signature_format():
    assert sign("k", b"{}") == "sha256=" + hmac.new(b"k", b"{}", hashlib.sha256).hexdigest()
