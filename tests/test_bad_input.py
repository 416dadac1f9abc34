"""Bad input against every public endpoint of the running web service, on SQLite and on
PostgreSQL: oversized bodies, invalid JSON and UTF-8, huge and deeply nested payloads,
control characters, script and SQL injection, floods. Every answer is a JSON error
below 500 that says what was wrong, the service keeps answering, and nothing is stored
for a refused request. (Schema-driven fuzzing is in test_fuzz.py; the rate limits
themselves in test_web.py.)"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid

import aiohttp
import pytest
import sqlalchemy as sa

from bot.web.api import MAX_BODY_BYTES
from bot.launcher import web_service
from bot.web.app import ROUTES
from bot.web.openapi import openapi_document
from bot.settings import Settings
from bot.store import Store
from bot.tickets import open_ticket
from tests.conftest import free_port, http
from tests.test_tickets import CONVERSATION, REQUEST

pytestmark = pytest.mark.services

SCRIPT = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
SQL = "'; DROP TABLE tickets; --"
BAD_BODIES = {
    "oversized": (b'{"message": "' + b"a" * (MAX_BODY_BYTES + 10) + b'"}', 413, "body_too_large"),
    "not JSON": (b"{'message': hi}", 400, "invalid_json"),
    "not UTF-8": (b'{"message": "caf\xe9"}', 400, "invalid_encoding"),
    "deeply nested": (b'{"a": ' + b"[" * 30_000 + b"]" * 30_000 + b"}", 400, "invalid_json"),
    "huge integer": (b'{"rating": ' + b"9" * 10_000 + b"}", 400, "invalid_json"),
    "JSON array": (b"[" + b"1," * 10_000 + b"1]", 400, "invalid_json"),
    "NUL character": (json.dumps({"message": "hi\x00", "text": "a\x00b", "assignee": "\x00"}).encode(), 422, "invalid_characters"),
    "terminal escape": (json.dumps({"message": "\x1b[31mred", "text": "\x1b[2J"}).encode(), 422, "invalid_characters"),
    "lone surrogate": (b'{"message": "hi \\ud800", "text": "\\udfff"}', 422, "invalid_characters"),
}


def operations() -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, ops in openapi_document(ROUTES, Settings())["paths"].items() for method in ops]


def body_operations() -> list[tuple[str, str]]:
    document = openapi_document(ROUTES, Settings())["paths"]
    return [(m, p) for m, p in operations() if "requestBody" in document[p][m.lower()]]


@pytest.fixture
async def target(any_stack, policy):
    """A conversation with a ticket on the stack, and the path parameters that reach it."""
    stack = any_stack
    sender = "bad-input-" + uuid.uuid4().hex
    store = await Store.open(stack.settings.database_url)
    try:
        ticket, _ = await open_ticket(store, policy, REQUEST, sender, "web_chat", CONVERSATION, dt.datetime.now(dt.timezone.utc))
    finally:
        await store.close()
    # No live chat has this id: the agents' live endpoints answer 404 after checking the input.
    params = {"sender": sender, "number": ticket.number, "email": REQUEST.email, "chat_id": "987654321"}
    token = stack.settings.staff_tokens.split(":", 1)[1]
    return stack, params, {"Authorization": f"Bearer {token}"}


async def snapshot(stack) -> dict[str, object]:
    """Row counts of every table the web service writes, and the tickets' mutable fields."""
    store = await Store.open(stack.settings.database_url)
    try:
        async with store.engine.connect() as conn:
            counts = {
                table: (await conn.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar()
                for table in ("tickets", "notifications", "ticket_notes", "audit_log", "bookings")
            }
            rows = (await conn.execute(sa.text(
                "SELECT number, status, assignee, csat_rating FROM tickets ORDER BY number"))).all()
    finally:
        await store.close()
    return {**counts, "tickets": [tuple(r) for r in rows]}


async def call(session, method: str, url: str, body: bytes | None, headers: dict) -> tuple[int, dict]:
    async with session.request(method, url, data=body, headers={"Content-Type": "application/json", **headers}) as response:
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, {"raw": text[:200]}


async def test_every_body_taking_endpoint_refuses_bad_bodies_and_stores_nothing(target):
    stack, params, staff = target
    before = await snapshot(stack)
    async with aiohttp.ClientSession() as session:
        for method, path in body_operations():
            url = stack.web + path.format(**params)
            for name, (body, status, code) in BAD_BODIES.items():
                got, answer = await call(session, method, url, body, staff)
                assert got == status, (method, path, name, answer)
                assert answer["error"]["code"] == code and answer["error"]["message"], (method, path, name, answer)
    assert await snapshot(stack) == before
    # No conversation was started in Rasa by a refused chat message.
    status, history = http("GET", f"{stack.web}/api/conversations/{params['sender']}/history")
    assert status == 200 and history["messages"] == []


async def test_control_characters_and_injection_in_paths_and_queries(target):
    stack, params, staff = target
    before = await snapshot(stack)
    document = openapi_document(ROUTES, Settings())["paths"]
    hostile = {"control": "a%00b", "escape": "%1B%5B2J", "sql": "x%27%20OR%201%3D1--", "script": "%3Cscript%3E"}
    async with aiohttp.ClientSession() as session:
        for method, path in operations():
            for name, value in hostile.items():
                # Every path parameter in turn, and an odd query string on every operation.
                variants = [path.format(**{**params, key: value}) for key in params if "{" + key + "}" in path]
                queries = [q["name"] for q in document[path][method.lower()].get("parameters", []) if q["in"] == "query"]
                if queries:
                    variants.append(path.format(**params) + "?" + "&".join(f"{q}={value}" for q in queries))
                for variant in variants:
                    body = b"{}" if method in ("POST", "PUT", "PATCH") else None
                    async with session.request(method, stack.web + variant, data=body, headers=staff) as response:
                        text = await response.text()
                        assert response.status < 500, (method, variant, text[:300])
                        if response.status >= 400:
                            assert json.loads(text)["error"]["message"], (method, variant, text)
    assert await snapshot(stack) == before


async def test_script_and_sql_are_kept_as_text_where_text_belongs(target):
    """Hostile strings in valid requests are stored verbatim and never run: the tables
    are intact, and the ticket's note and assignee read back exactly as typed."""
    stack, params, staff = target
    async with aiohttp.ClientSession() as session:
        base = f"{stack.web}/api/staff/tickets/{params['number']}"
        status, note = await call(session, "POST", base + "/notes", json.dumps({"text": SQL + SCRIPT}).encode(), staff)
        assert status == 201, note
        status, _ = await call(session, "POST", base + "/assign", json.dumps({"assignee": SQL}).encode(), staff)
        assert status == 200
        status, detail = await call(session, "GET", base, None, staff)
        assert status == 200
        status, reply = await call(session, "POST", stack.web + "/api/chat",
                                   json.dumps({"sender": params["sender"], "message": SQL + SCRIPT}).encode(), {})
        assert status == 200 and reply["messages"], reply
    assert detail["assignee"] == SQL
    assert detail["notes"][-1]["text"] == SQL + SCRIPT
    after = await snapshot(stack)
    assert after["tickets"], "the tickets table is still there"


async def test_a_flood_from_one_client_is_rate_limited_and_the_service_survives(stack):
    """400 requests at once from one address, to a web service with the default limits:
    the excess gets 429 with Retry-After, nothing gets a 5xx, and it answers afterwards."""
    defaults = Settings()
    settings = stack.settings.with_changes(
        web_port=free_port(), public_url="", demo_pages=False,
        rate_per_client=defaults.rate_per_client, rate_burst_client=defaults.rate_burst_client,
        rate_per_conversation=defaults.rate_per_conversation, rate_burst_conversation=defaults.rate_burst_conversation,
    )
    web = web_service(settings)
    web.start()
    try:
        web.wait_ready(60)
        url = f"http://{settings.host}:{settings.web_port}"
        async with aiohttp.ClientSession() as session:

            async def hit(i: int) -> tuple[int, str]:
                body = json.dumps({"sender": f"flood-{uuid.uuid4().hex}", "message": "hi"}).encode()
                async with session.post(url + "/api/chat", data=body, headers={"Content-Type": "application/json"}) as r:
                    await r.read()
                    return r.status, r.headers.get("Retry-After", "")

            answers = await asyncio.gather(*(hit(i) for i in range(400)))
            async with session.get(url + "/healthz") as response:
                assert response.status == 200
        statuses = [status for status, _ in answers]
        assert set(statuses) <= {200, 429}, sorted(set(statuses))
        assert defaults.rate_burst_client <= statuses.count(200) < 400
        assert all(int(retry) >= 1 for status, retry in answers if status == 429)
    finally:
        web.stop()
