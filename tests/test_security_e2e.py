"""Issue 13 against the running services: the internal services refuse calls without
their tokens, forged identity metadata is worthless, secrets typed into the chat are
stored nowhere (tables, WAL files, logs), and a data-protection erase reaches every
conversation that holds the email."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import random
import re
import secrets
import urllib.parse
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.web import identity
from bot.redaction import luhn_valid
from bot.settings import ROOT
from bot.store import Store, make_engine
from bot.tickets import open_ticket
from tests.conftest import http
from tests.test_tickets import CONVERSATION, REQUEST

pytestmark = pytest.mark.services

NUMBER = re.compile(r"\bMK-[2-9A-HJ-NP-Z]{6}\b")


def new_sender(prefix: str = "sec") -> str:
    return f"{prefix}-{secrets.token_hex(16)}"


def texts(messages: list[dict]) -> str:
    return "\n".join(m.get("text") or "" for m in messages)


def raw(method: str, url: str, body: bytes | None = None, headers: dict | None = None) -> int:
    """The HTTP status of one request (bodies are not needed here)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


# -- internal services ----------------------------------------------------------------


def test_rasa_and_the_action_server_refuse_calls_without_their_tokens(stack):
    settings = stack.settings
    rasa, actions = settings.rasa_url, settings.actions_url
    sender = new_sender()
    assert raw("GET", f"{rasa}/conversations/{sender}/tracker") == 401
    assert raw("GET", f"{rasa}/conversations/{sender}/tracker?token=wrong-token-0123456789") == 401
    assert raw("GET", f"{rasa}/conversations/{sender}/tracker?token={settings.rasa_token}") == 200
    message = json.dumps({"sender": sender, "message": "hello"}).encode()
    json_type = {"Content-Type": "application/json"}
    assert raw("POST", f"{rasa}/webhooks/rest/webhook", message, json_type) == 401
    assert raw("POST", f"{rasa}/webhooks/rest/webhook", message,
               {**json_type, "Authorization": f"Bearer {settings.rasa_token}"}) == 200
    call = json.dumps({"next_action": "action_create_ticket", "sender_id": sender, "tracker": {}}).encode()
    assert raw("POST", f"{actions}/webhook", call, json_type) == 401
    assert raw("POST", f"{actions}/webhook", call, {**json_type, "Authorization": "Bearer nope"}) == 401
    assert raw("GET", f"{actions}/actions") == 401
    assert raw("GET", f"{actions}/health") == 200  # the health check stays open
    assert settings.rasa_url.startswith(f"http://{settings.internal_host}:")


def test_forged_identity_metadata_cannot_read_another_customers_ticket(stack, policy):
    async def victims_ticket():
        store = await Store.open(stack.settings.database_url)
        try:
            ticket, _ = await open_ticket(
                store, policy, REQUEST, new_sender("victim"), "in_app", CONVERSATION,
                dt.datetime.now(dt.timezone.utc), owner_user_id="u-victim",
            )
            return ticket
        finally:
            await store.close()

    ticket = asyncio.run(victims_ticket())
    settings = stack.settings
    victim = {"user_id": "u-victim", "name": "Ana López", "email": REQUEST.email}
    question = f"what is the status of ticket {ticket.number}?"

    def straight_to_rasa(sender: str, metadata: dict) -> str:
        body = json.dumps({"sender": sender, "message": question, "metadata": metadata}).encode()
        status, replies = http_with_token(f"{settings.rasa_url}/webhooks/rest/webhook", body, settings.rasa_token)
        assert status == 200
        return texts(replies)

    # Whoever reaches Rasa (here even with its token) and writes the identity as plain
    # metadata, or copies a seal made for another conversation, learns nothing.
    forged = straight_to_rasa(new_sender("mallory"), {"identity": victim})
    assert "can't show" in forged and REQUEST.product not in forged
    soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    who = identity.Identity("u-victim", "Ana López", REQUEST.email, soon.replace(microsecond=0))
    copied = identity.seal(settings.identity_secret, new_sender("elsewhere"), who)
    stolen = straight_to_rasa(new_sender("mallory"), {"identity": copied})
    assert "can't show" in stolen
    # The real owner, signed in to the app, through the web service: shown.
    token = identity.sign(
        settings.identity_secret, "u-victim", "Ana López", REQUEST.email, who.expires_at,
        issued_at=dt.datetime.now(dt.timezone.utc),
    )
    status, body = http(
        "POST", stack.web + "/api/chat",
        json.dumps({"sender": new_sender("pane"), "message": question, "identity": token, "channel": "in_app"}).encode(),
    )
    assert status == 200 and f"Ticket {ticket.number}" in texts(body["messages"])


def http_with_token(url: str, body: bytes, token: str) -> tuple[int, list]:
    import urllib.request

    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, json.loads(response.read())


# -- secrets typed into the chat --------------------------------------------------------


def random_card() -> str:
    digits = "4" + "".join(random.choice("0123456789") for _ in range(14))
    check = next(d for d in "0123456789" if luhn_valid(digits + d))
    return digits + check


def random_iban() -> str:
    bban = "WEST" + "".join(random.choice("0123456789") for _ in range(14))
    number = int("".join(str(int(c, 36)) for c in bban + "GB00"))
    return f"GB{98 - number % 97:02d}{bban}"


def answer_until_ticket(stack, sender: str, reply: list[dict], answers: dict[str, str]) -> list[dict]:
    """Answer the support-request form's questions, whatever their order, until a ticket."""
    for _ in range(16):
        said = texts(reply)
        if NUMBER.search(said) and "is open" in said:
            return reply
        lowered = said.lower()
        key = next((k for k in answers if k in lowered), None)
        if "shall i open the ticket" in lowered or "open the ticket?" in lowered:
            reply = stack.say(sender, "yes")
        elif "is " in lowered and "right?" in lowered:  # the proposed severity
            reply = stack.say(sender, "yes")
        elif key is not None:
            reply = stack.say(sender, answers[key])
        else:
            raise AssertionError(f"unexpected question: {said}")
    raise AssertionError("no ticket after 16 turns")


def test_secrets_typed_into_the_chat_are_stored_nowhere(any_stack):
    stack = any_stack
    card, iban = random_card(), random_iban()
    password = "Kailua" + secrets.token_hex(4) + "!"
    key = "sk_live_" + secrets.token_hex(12)
    spaced_card = " ".join(card[i:i + 4] for i in range(0, 16, 4))
    secrets_typed = [card, spaced_card, password, key, iban]
    sender = new_sender()
    first = stack.say(sender, f"my card {spaced_card} was charged twice for the subscription")
    assert "I've hidden the card number you typed" in first[0]["text"]
    reply = stack.say(sender, "talk to a human please")
    reply = answer_until_ticket(stack, sender, reply, {
        "name": "Ana López",
        "email": "ana.secret@example.com",
        "which product": "Makana Books",
        "version": "6",
        "describe": f"Bank feed import fails every time; my password is {password} if you need to log in",
        "problem": f"Bank feed import fails every time; my password is {password} if you need to log in",
        "tried": f"Re-created the API key {key} and retried the import",
        "affect": f"We can't reconcile; refunds go to {iban}",
    })
    assert NUMBER.search(texts(reply))
    status, history = http("GET", f"{stack.web}/api/conversations/{sender}/history")
    assert status == 200
    shown = json.dumps(history)
    assert not [s for s in secrets_typed if s in shown]
    assert "[card number removed]" in shown and "[secret removed]" in shown
    leaks = stored_copies(stack, secrets_typed)
    assert not leaks, leaks


def stored_copies(stack, needles: list[str]) -> list[str]:
    """Where any of `needles` is found: every table, every file of the databases
    (WAL included) and every service log."""
    found: list[str] = []
    urls = {stack.settings.database_url, stack.settings.tracker_store_url}
    for url in urls:
        found += [f"{url.split('://')[0]} table {t}" for t in asyncio.run(tables_containing(url, needles))]
    files = list((stack.settings.data_dir / "logs").glob("*"))
    if stack.settings.database_url.startswith("sqlite"):
        files += [p for p in stack.settings.data_dir.glob("*.db*")]
    else:
        files += [p for p in postgres_data_dir().rglob("*") if p.is_file()]
    encoded = [n.encode() for n in needles]
    for path in files:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue  # PostgreSQL removed it (a temporary or cache file) after it was listed
        found += [f"{path} holds {n[:6]!r}…" for n in encoded if n in data]
    return found


async def tables_containing(url: str, needles: list[str]) -> list[str]:
    engine = make_engine(url)
    hits = []
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
            for name in names:
                table = sa.table(name)
                rows = (await conn.execute(sa.select(sa.text("*")).select_from(table))).fetchall()
                blob = "\n".join(str(tuple(row)) for row in rows)
                hits += [name for n in needles if n in blob]
    finally:
        await engine.dispose()
    return hits


def postgres_data_dir() -> Path:
    """The test cluster's folder (scripts/postgres.sh: /tmp/makana-test-postgres-<hash of the checkout>)."""
    digest = hashlib.md5(str(ROOT).encode()).hexdigest()[:8]
    return Path(f"/tmp/makana-test-postgres-{digest}/data")


# -- data-protection requests -----------------------------------------------------------


def staff(stack, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    token = stack.settings.staff_tokens.split(":", 1)[1]
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(stack.web + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def test_erase_reaches_abandoned_forms_and_messages_that_name_the_email(stack):
    email = f"erase.{secrets.token_hex(4)}@example.com"
    abandoned, mentioned = new_sender("abandoned"), new_sender("mentioned")
    reply = stack.say(abandoned, "talk to a human please")
    for _ in range(4):  # answer until the email is taken, then walk away
        said = texts(reply).lower()
        if "email" in said:
            stack.say(abandoned, email)
            break
        reply = stack.say(abandoned, "Ana López")
    stack.say(mentioned, f"can you send the invoice copy to {email} instead?")
    status, exported = staff(stack, "POST", "/api/staff/customers/export", {"email": email})
    assert status == 200
    assert {abandoned, mentioned} <= set(exported["conversations"])
    # The email never travels in a URL, where access logs would keep it.
    assert staff(stack, "GET", f"/api/staff/customers/{urllib.parse.quote(email)}/export")[0] == 404
    status, erased = staff(stack, "POST", "/api/staff/customers/erase", {"email": email})
    assert status == 200 and erased["conversations_deleted"] >= 2
    status, exported = staff(stack, "POST", "/api/staff/customers/export", {"email": email})
    assert exported["conversations"] == {} and exported["tickets"] == []
    for sender in (abandoned, mentioned):
        status, history = http("GET", f"{stack.web}/api/conversations/{sender}/history")
        assert email not in json.dumps(history)
    leftovers = [p for p in stack.settings.data_dir.glob("*.db*") if email.encode() in p.read_bytes()]
    assert not leftovers, "the erased email is still in " + ", ".join(map(str, leftovers))
    assert email not in (stack.settings.data_dir / "logs" / "web.log").read_text(errors="replace")
