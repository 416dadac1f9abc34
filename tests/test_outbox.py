"""The outbox never stalls on dead letters and never sends one notification twice:
a real SMTP server (aiosmtpd), real databases, and on PostgreSQL two real web service
processes delivering from the same outbox."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import os
import secrets
import subprocess
import sys
import time

import aiohttp
import pytest
from aiohttp import web

from bot.notify import DELIVERY_HEADER, MAX_ATTEMPTS, Notifier, deliver_due
from bot.settings import ROOT, Settings
from bot.tickets import open_ticket
from tests.conftest import free_port, unavailable
from tests.test_notify import settings_for
from tests.test_tickets import CONVERSATION, REQUEST, SATURDAY_1829

LEASE = dt.timedelta(minutes=2)


async def make_dead_letters(store, policy, count: int) -> None:
    """`count` tickets whose email failed MAX_ATTEMPTS times (nothing listened)."""
    for i in range(count):
        await open_ticket(store, policy, REQUEST, f"dead-{i}", "web_chat", CONVERSATION, SATURDAY_1829, notify=("email",))
    dead_settings = settings_for(free_port(), "")  # nothing listens on that port
    now = SATURDAY_1829
    async with aiohttp.ClientSession() as session:
        notifier = Notifier(dead_settings, policy, session)
        for _ in range(MAX_ATTEMPTS * 3):  # 20 rows a round
            await deliver_due(store, notifier, now)
            now += dt.timedelta(hours=1)  # past every backoff
            if await store.dead_notifications() == count:
                break


async def test_dead_letters_do_not_stall_the_next_email(store, policy, smtp):
    await make_dead_letters(store, policy, 25)
    assert await store.dead_notifications() == 25
    controller, inbox = smtp
    later = SATURDAY_1829 + dt.timedelta(days=1)
    fresh, _ = await open_ticket(store, policy, REQUEST, "fresh", "web_chat", CONVERSATION, later, notify=("email",))
    async with aiohttp.ClientSession() as session:
        delivered = await deliver_due(store, Notifier(settings_for(controller.port, ""), policy, session), later)
    assert delivered == 1
    [mail] = inbox.messages
    assert fresh.number in mail.content.decode()
    # The dead letters wait for staff; a retry gives them a fresh set of attempts.
    assert await store.dead_notifications() == 25
    assert await store.retry_dead_notifications("tester", later) == 25
    async with aiohttp.ClientSession() as session:
        for _ in range(2):  # 20 per round
            await deliver_due(store, Notifier(settings_for(controller.port, ""), policy, session), later)
    assert await store.dead_notifications() == 0 and len(inbox.messages) == 26


async def test_two_senders_never_claim_the_same_row(store, policy):
    from bot.store import Store

    for i in range(30):
        await open_ticket(store, policy, REQUEST, f"claim-{i}", "web_chat", CONVERSATION, SATURDAY_1829, notify=("email",))
    # A second process's view of the same database: its own engine and connections.
    other = await Store.open(store.engine.url.render_as_string(hide_password=False))
    try:
        first, second = await asyncio.gather(
            store.claim_due_notifications(SATURDAY_1829, LEASE, limit=20),
            other.claim_due_notifications(SATURDAY_1829, LEASE, limit=20),
        )
    finally:
        await other.close()
    ids_first, ids_second = {n.id for n in first}, {n.id for n in second}
    assert not ids_first & ids_second
    assert len(ids_first | ids_second) == 30
    # Claimed rows are not handed out again while the lease runs…
    assert await store.claim_due_notifications(SATURDAY_1829 + dt.timedelta(seconds=30), LEASE) == []
    # …and come back once it lapsed (the sender died): sent again, with the same delivery id.
    again = await store.claim_due_notifications(SATURDAY_1829 + LEASE + dt.timedelta(seconds=1), LEASE, limit=50)
    assert {n.id: n.delivery_id for n in again} == {n.id: n.delivery_id for n in (*first, *second)}


async def test_a_late_failure_never_puts_a_delivered_or_dead_row_back_in_the_queue(store, policy):
    for i in range(2):
        await open_ticket(store, policy, REQUEST, f"late-{i}", "web_chat", CONVERSATION, SATURDAY_1829, notify=("email",))
    first, second = await store.claim_due_notifications(SATURDAY_1829, LEASE)
    # The first claim lapsed and another process delivered the row; the second gave up.
    await store.mark_delivered(first.id, SATURDAY_1829)
    await store.mark_failed(second.id, "SMTP refused", SATURDAY_1829, dead=True)
    # The slow sender's failures arrive afterwards.
    later = SATURDAY_1829 + dt.timedelta(minutes=5)
    await store.mark_failed(first.id, "timeout", later)
    await store.mark_failed(second.id, "timeout", later)
    assert await store.dead_notifications() == 1
    assert await store.claim_due_notifications(later + dt.timedelta(hours=1), LEASE) == []


async def test_every_attempt_of_a_webhook_carries_the_same_delivery_id(store, policy, aiohttp_server):
    seen: list[str] = []
    answers = [500, 204]

    async def hook(request: web.Request) -> web.Response:
        seen.append(request.headers.get(DELIVERY_HEADER, ""))
        assert (await request.json())["delivery_id"] == seen[-1]
        return web.Response(status=answers.pop(0))

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = await aiohttp_server(app)
    await open_ticket(store, policy, REQUEST, "hook", "web_chat", CONVERSATION, SATURDAY_1829, notify=("webhook",))
    async with aiohttp.ClientSession() as session:
        notifier = Notifier(settings_for(free_port(), str(server.make_url("/hook"))), policy, session)
        await deliver_due(store, notifier, SATURDAY_1829)
        await deliver_due(store, notifier, SATURDAY_1829 + dt.timedelta(minutes=1))
    assert len(seen) == 2 and seen[0] == seen[1] and len(seen[0]) == 36


# -- two web service processes on PostgreSQL -----------------------------------------


@pytest.fixture
def fresh_pg_database():
    """A new, migrated PostgreSQL database of its own (so no other test's rows interfere)."""
    base = os.environ.get("SUPPORT_TEST_DATABASE_URL", "")
    if not base.startswith("postgresql://"):
        unavailable("SUPPORT_TEST_DATABASE_URL is not a postgresql:// URL (make test starts one)")
    from bot.migrations import upgrade

    name = "outbox_" + secrets.token_hex(4)  # made here, not taken from input
    url = base.rsplit("/", 1)[0] + "/" + name

    async def run(statement: str) -> None:
        from bot.store import make_engine

        engine = make_engine(base).execution_options(isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.exec_driver_sql(statement)
        await engine.dispose()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    upgrade(url)
    yield url
    asyncio.run(run(f'DROP DATABASE "{name}" WITH (FORCE)'))


def web_process(settings: Settings, log_path) -> subprocess.Popen:
    env = {**os.environ, **settings.to_env(), "PYTHONUNBUFFERED": "1"}
    log = open(log_path, "ab")  # noqa: SIM115 - the child owns it
    process = subprocess.Popen([sys.executable, "-m", "bot", "web"], cwd=ROOT, env=env, stdout=log, stderr=log)
    log.close()
    return process


def test_two_web_processes_send_each_email_exactly_once(fresh_pg_database, policy, smtp, tmp_path):
    from bot.store import Store

    controller, inbox = smtp
    count = 40

    async def make_tickets() -> list[str]:
        store = await Store.open(fresh_pg_database)
        now = dt.datetime.now(dt.timezone.utc)
        numbers = []
        for i in range(count):
            ticket, _ = await open_ticket(store, policy, REQUEST, f"pair-{i}", "web_chat", CONVERSATION, now, notify=("email",))
            numbers.append(ticket.number)
        await store.close()
        return numbers

    processes = []
    for i in range(2):
        settings = Settings(
            web_port=free_port(), demo_pages=False, data_dir=tmp_path / f"web{i}", database_url=fresh_pg_database,
            rasa_port=free_port(), actions_port=free_port(), rasa_token="x" * 20, actions_token="y" * 20,
            smtp_host="127.0.0.1", smtp_port=controller.port, smtp_starttls="never", outbox_interval_s=0.05,
        )
        processes.append(web_process(settings, tmp_path / f"web{i}.log"))
    try:
        numbers = asyncio.run(make_tickets())  # both processes are polling while rows arrive
        deadline = time.monotonic() + 90
        while len(inbox.messages) < count and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # a duplicate would arrive now
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=20)
    mails = [email.message_from_bytes(m.content) for m in inbox.messages]
    subjects = sorted(m["Subject"].split()[1].rstrip(":") for m in mails)
    assert subjects == sorted(numbers), (tmp_path / "web0.log").read_text()[-2000:]
    assert len({m["Message-ID"] for m in mails}) == count
