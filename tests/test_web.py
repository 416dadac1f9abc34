"""The web service's own logic through the real aiohttp app (Rasa not needed here)."""

import asyncio
import datetime as dt
import json
import secrets
from zoneinfo import ZoneInfo

import pytest

from bot.web import identity
from bot.web.ratelimit import RateLimiter
from bot.settings import Settings
from bot.web.app import make_app, make_demo_site
from tests.conftest import POLICY_FILE, free_port

HNL = ZoneInfo("Pacific/Honolulu")
SECRET = secrets.token_hex(16)
CONVERSATION = "w-" + secrets.token_hex(16)  # a conversation id as the widget makes them


def app_settings(tmp_path, **changes) -> Settings:
    return Settings(
        rasa_port=free_port(),  # nothing listens: the assistant is "down"
        actions_port=free_port(),
        data_dir=tmp_path,
        policy_path=POLICY_FILE,
        identity_secret=SECRET,
        **changes,
    )


@pytest.fixture
async def client(aiohttp_client, tmp_path):
    from bot.migrations import upgrade

    settings = app_settings(tmp_path)
    await asyncio.to_thread(upgrade, settings.database_url)
    clock = lambda: dt.datetime(2026, 11, 28, 19, 0, tzinfo=HNL)  # noqa: E731 - Saturday evening
    return await aiohttp_client(make_app(settings, clock=clock))


async def test_status_says_closed_and_when_back(client):
    response = await client.get("/api/status")
    body = await response.json()
    assert response.status == 200
    assert body["open"] is False
    assert body["text"] == "We're closed now; we open again Monday 30 November at 9:30 (Hawaii time)."
    assert body["next_opening"] == "2026-11-30T09:30:00-10:00"
    assert [n["id"] for n in body["notices"]] == ["mw-2026-12-db"]  # within its 14-day notice


async def test_status_in_the_customers_zone(client):
    body = await (await client.get("/api/status?tz=America/Los_Angeles")).json()
    assert body["text"] == "We're closed now; we open again Monday 30 November at 11:30 your time (9:30 Hawaii time)."
    response = await client.get("/api/status?tz=Mars/Olympus")
    assert response.status == 422 and (await response.json())["error"]["code"] == "invalid_timezone"


async def test_assistant_down_is_a_503_with_a_plain_message(client):
    response = await client.post("/api/chat", json={"sender": CONVERSATION, "message": "hello"})
    body = await response.json()
    assert response.status == 503 and body["error"]["code"] == "assistant_unavailable"


async def test_forged_and_expired_identities_are_refused(client):
    now = dt.datetime(2026, 11, 28, 19, 0, tzinfo=HNL)  # the client's clock
    future = now + dt.timedelta(hours=1)
    good = identity.sign(SECRET, "u1", "Ana", "ana@example.com", future)
    forged = identity.sign("not-the-secret", "u1", "Ana", "ana@example.com", future)
    expired = identity.sign(SECRET, "u1", "Ana", "ana@example.com", dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    for token, reason in ((forged, "signature is not valid"), (expired, "expired"), ("x.y.z", "malformed")):
        response = await client.post("/api/chat", json={"sender": CONVERSATION, "message": "hi", "identity": token})
        body = await response.json()
        assert response.status == 401 and reason in body["error"]["message"]
    header, payload, signature = good.split(".")
    tampered = ".".join((header, payload[:-2] + ("xx" if not payload.endswith("xx") else "yy"), signature))
    response = await client.get("/api/me/tickets", headers={"X-Identity-Token": tampered})
    assert response.status == 401
    response = await client.get("/api/me/tickets", headers={"X-Identity-Token": good})
    assert response.status == 200
    assert (await response.json()) == {"user": {"user_id": "u1", "name": "Ana", "email": "ana@example.com"}, "tickets": []}
    assert (await client.get("/api/me/tickets")).status == 401


async def test_rate_limit_per_conversation_gives_429_with_retry_after(aiohttp_client, tmp_path):
    settings = app_settings(tmp_path, rate_per_conversation=6, rate_burst_conversation=2)
    client = await aiohttp_client(make_app(settings))
    statuses = []
    for _ in range(3):
        response = await client.post("/api/chat", json={"sender": "same-" + CONVERSATION, "message": "hi"})
        statuses.append(response.status)
    assert statuses[:2] == [503, 503]  # allowed through (the assistant is down here)
    assert statuses[2] == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert "in this conversation" in (await response.json())["error"]["message"]
    other = await client.post("/api/chat", json={"sender": "other-" + CONVERSATION, "message": "hi"})
    assert other.status == 503  # another conversation is not limited


def test_rate_limiter_refills():
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=2, clock=lambda: now[0])
    assert [limiter.check("k") for _ in range(3)][:2] == [0.0, 0.0]
    assert limiter.check("k") > 0
    now[0] += 1.0
    assert limiter.check("k") == 0.0


async def test_openapi_document_lists_the_chat_api(client):
    doc = await (await client.get("/api/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    assert {"/api/chat", "/api/conversations/{sender}/history", "/api/status", "/api/me/tickets"} <= set(doc["paths"])


async def test_openapi_document_has_every_api_route_and_no_other(client):
    """Each method and path the web service routes under /api is documented, and each
    documented one is routed (live chat included): a route added beside the registry fails."""
    doc = await (await client.get("/api/openapi.json")).json()
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops if path.startswith("/api/")}
    routed = set()
    for route in client.server.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if not path.startswith("/api/") or route.method in ("HEAD", "OPTIONS", "*") or path == "/api/openapi.json":
            continue
        routed.add((route.method, path))
    assert routed == documented


async def test_demo_app_page_escapes_the_identity_it_is_given(aiohttp_client, tmp_path):
    demo = await aiohttp_client(make_demo_site(app_settings(tmp_path)))
    page = await (await demo.get('/demo/app?identity="><script>alert(1)</script>')).text()
    assert "<script>alert(1)</script>" not in page
    assert "&quot;&gt;&lt;script&gt;" in page


async def test_json_errors_for_bad_bodies(client):
    response = await client.post("/api/chat", data=b"\xff", headers={"Content-Type": "application/json"})
    assert response.status == 400 and (await response.json())["error"]["code"] == "invalid_encoding"
    response = await client.post(
        "/api/chat", data=json.dumps({"sender": CONVERSATION, "message": "hi", "channel": "fax"}),
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 422 and (await response.json())["error"]["code"] == "invalid_channel"


@pytest.mark.parametrize("zone", ["a" * 300, "America", "UTC\x00", "../etc", "Mars/Olympus"])
async def test_odd_time_zones_are_a_422_not_a_crash(client, zone):
    # A control character is refused before the zone is even looked up.
    code = "invalid_characters" if "\x00" in zone else "invalid_timezone"
    response = await client.get("/api/status", params={"tz": zone})
    assert response.status == 422 and (await response.json())["error"]["code"] == code
    response = await client.post("/api/chat", json={"sender": CONVERSATION, "message": "hi", "timezone": zone})
    assert response.status == 422 and (await response.json())["error"]["code"] == code


def body_schema(doc: dict, method: str, path: str) -> dict:
    """The request body's schema of an operation, its $ref resolved."""
    ref = doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return doc["components"]["schemas"][ref.rsplit("/", 1)[1]]


async def test_the_documented_limits_are_the_ones_the_code_enforces(aiohttp_client, tmp_path):
    """The drift the review found: the message limit was fixed at 2000 in the document but
    configurable in the code; statuses, the note limit and the rest are written once now."""
    from bot.web.schemas import CHANNELS, MAX_NOTE_CHARS
    from bot.store import TICKET_STATUSES

    client = await aiohttp_client(make_app(app_settings(tmp_path, max_message_chars=300)))
    doc = await (await client.get("/api/openapi.json")).json()
    chat = body_schema(doc, "post", "/api/chat")["properties"]
    assert chat["message"]["maxLength"] == 300
    assert chat["channel"]["enum"] == list(CHANNELS)
    too_long = await client.post("/api/chat", json={"sender": CONVERSATION, "message": "x" * 301})
    assert too_long.status == 413
    assert (await too_long.json())["error"] == {
        "code": "message_too_long", "message": "`message` has 301 characters; the limit is 300."
    }
    at_limit = await client.post("/api/chat", json={"sender": CONVERSATION, "message": "x" * 300})
    assert at_limit.status == 503  # accepted, then the assistant is down here
    status = body_schema(doc, "post", "/api/staff/tickets/{number}/status")
    assert status["properties"]["status"]["enum"] == list(TICKET_STATUSES)
    note = body_schema(doc, "post", "/api/staff/tickets/{number}/notes")
    assert note["properties"]["text"]["maxLength"] == MAX_NOTE_CHARS


async def test_the_served_document_is_the_generated_one(aiohttp_client, tmp_path):
    """/api/openapi.json is generated from the route registry and the models, for the app's
    own settings: a non-default message limit is what the document says."""
    from bot.web.app import ROUTES
    from bot.web.openapi import openapi_document

    settings = app_settings(tmp_path, max_message_chars=123)
    client = await aiohttp_client(make_app(settings))
    served = await (await client.get("/api/openapi.json")).json()
    assert served == json.loads(json.dumps(openapi_document(ROUTES, settings)))
    assert body_schema(served, "post", "/api/chat")["properties"]["message"]["maxLength"] == 123
    default = openapi_document(ROUTES, app_settings(tmp_path))
    assert body_schema(default, "post", "/api/chat")["properties"]["message"]["maxLength"] == 2000


@pytest.mark.parametrize(("body", "status", "code", "message"), [
    ({"message": "hi"}, 422, "invalid_sender", "`sender` must be a random conversation id"),
    ({"sender": CONVERSATION, "message": 5}, 422, "invalid_message", "`message` must be a string."),
    ({"sender": CONVERSATION, "message": "  \n "}, 422, "empty_message", "`message` is empty"),
    ({"sender": CONVERSATION, "message": "hi", "channel": "fax"}, 422, "invalid_channel",
     "`channel` must be one of web_chat, in_app, api."),
    ({"sender": CONVERSATION, "message": "hi", "identity": 7}, 422, "invalid_identity", "`identity` must be a string"),
    ({"sender": CONVERSATION, "message": "hi", "client_id": ""}, 422, "invalid_client_id",
     "`client_id` must be a string of 1 to 64 characters."),
])
async def test_a_refused_chat_body_names_the_field_and_what_it_expects(client, body, status, code, message):
    response = await client.post("/api/chat", json=body)
    error = (await response.json())["error"]
    assert response.status == status and error["code"] == code and error["message"].startswith(message), error


async def test_responses_have_the_shape_their_models_document(client):
    from bot.web.schemas import MyTickets, SupportStatus

    SupportStatus.model_validate(await (await client.get("/api/status?tz=America/Los_Angeles")).json())
    now = dt.datetime(2026, 11, 28, 20, 0, tzinfo=HNL)
    token = identity.sign(SECRET, "u1", "Ana", "ana@example.com", now)
    MyTickets.model_validate(await (await client.get("/api/me/tickets", headers={"X-Identity-Token": token})).json())
