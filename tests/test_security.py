"""Issue 13 at the web service's edge, through the real aiohttp app (Rasa not needed):
cross-origin access, host names, content types, headers on errors, conversation ids,
read limits, forwarded addresses, slow bodies, ticket visibility and the identity seal."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import secrets
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import make_mocked_request

from bot.web import identity
from bot.web.customer_api import client_address
from bot.web.api import SETTINGS
from bot.settings import Settings, SettingsError
from bot.tickets import SupportRequest, may_see, open_ticket
from bot.web.app import make_app
from tests.conftest import POLICY_FILE, free_port

HNL = ZoneInfo("Pacific/Honolulu")
SECRET = secrets.token_hex(16)
SITE = "https://www.makana.example"
CONVERSATION = "w-" + secrets.token_hex(16)
NOW = dt.datetime(2026, 11, 28, 19, 0, tzinfo=HNL)
FUTURE = NOW + dt.timedelta(hours=1)  # an in-app identity token lives for hours (iat = NOW)


def settings_for(tmp_path, **changes) -> Settings:
    return Settings(
        rasa_port=free_port(),  # nothing listens: the assistant is "down"
        actions_port=free_port(),
        data_dir=tmp_path,
        policy_path=POLICY_FILE,
        identity_secret=SECRET,
        allowed_origins=SITE,
        staff_tokens="tester:" + "t" * 24,
        **changes,
    )


@pytest.fixture
async def app_client(aiohttp_client, tmp_path):
    from bot.migrations import upgrade

    async def make(**changes):
        settings = settings_for(tmp_path, **changes)
        await asyncio.to_thread(upgrade, settings.database_url)
        return await aiohttp_client(make_app(settings, clock=lambda: NOW))

    return make


# -- 1. cross-origin -------------------------------------------------------------------


async def test_preflight_from_an_allowed_origin_names_what_the_widget_and_pane_send(app_client):
    client = await app_client()
    response = await client.options(
        "/api/chat",
        headers={"Origin": SITE, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type, x-identity-token"},
    )
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == SITE
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"content-type", "x-identity-token"} <= allowed
    assert "Access-Control-Allow-Credentials" not in response.headers  # no credentials mode
    assert response.headers["Vary"] == "Origin"


@pytest.mark.parametrize("path", ["/api/status", "/api/me/tickets", f"/api/conversations/{CONVERSATION}/history"])
async def test_customer_api_answers_an_allowed_origin_only(app_client, path):
    client = await app_client()
    allowed = await client.get(path, headers={"Origin": SITE})
    assert allowed.headers.get("Access-Control-Allow-Origin") == SITE
    assert allowed.headers["Vary"] == "Origin"
    other = await client.get(path, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    assert other.headers["Vary"] == "Origin"  # caches must not reuse one origin's answer for another


async def test_a_preflight_from_another_origin_gets_no_cors_headers(app_client):
    client = await app_client()
    response = await client.options(
        "/api/chat", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert response.status == 403
    assert not [h for h in response.headers if h.lower().startswith("access-control-")]


@pytest.mark.parametrize("path", ["/api/staff/tickets", "/api/staff/customers/export", "/healthz"])
async def test_the_staff_api_is_never_cross_origin(app_client, path):
    client = await app_client()
    preflight = await client.options(path, headers={"Origin": SITE, "Access-Control-Request-Method": "GET"})
    plain = await client.get(path, headers={"Origin": SITE})
    for response in (preflight, plain):
        assert not [h for h in response.headers if h.lower().startswith("access-control-")]


def test_allowed_origins_must_be_origins():
    with pytest.raises(SettingsError, match="not an origin"):
        Settings(allowed_origins="https://www.makana.example/")
    assert Settings(demo_pages=True, demo_port=8181).allowed_origin_list == ["http://127.0.0.1:8181"]


# -- 2. host names, content types, headers -------------------------------------------


async def test_an_unknown_host_name_is_refused(app_client):
    client = await app_client()
    response = await client.get("/api/status", headers={"Host": "rebind.evil.example"})
    assert response.status == 421 and (await response.json())["error"]["code"] == "unknown_host"
    assert (await client.get("/api/status", headers={"Host": "localhost:8080"})).status == 200


async def test_a_text_plain_body_is_not_read_as_json(app_client):
    client = await app_client()
    body = f'{{"sender": "{CONVERSATION}", "message": "hi"}}'
    response = await client.post("/api/chat", data=body, headers={"Content-Type": "text/plain"})
    assert response.status == 415 and (await response.json())["error"]["code"] == "unsupported_media_type"


async def test_errors_carry_the_security_headers_and_no_server_version(app_client):
    client = await app_client()
    for response in (await client.get("/no/such/page"), await client.post("/api/status"), await client.get("/")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["Server"] == "makana-support"
        assert "aiohttp" not in response.headers["Server"] and "Python" not in response.headers["Server"]


# -- 6. abuse --------------------------------------------------------------------------


@pytest.mark.parametrize("sender", ["abc", "a" * 21, "w-1234", "has space" + "x" * 30, "dots.are.out." + "x" * 20])
async def test_short_or_odd_conversation_ids_are_refused(app_client, sender):
    client = await app_client()
    response = await client.post("/api/chat", json={"sender": sender, "message": "hi"})
    assert response.status == 422 and "128 random bits" in (await response.json())["error"]["message"]
    response = await client.get(f"/api/conversations/{sender}/history")
    assert response.status == 422


async def test_reads_keyed_by_a_secret_id_are_rate_limited(app_client):
    client = await app_client(rate_reads_per_client=6, rate_burst_reads_client=3)
    statuses = [
        (await client.get(f"/api/conversations/{CONVERSATION}-{i}/csat")).status for i in range(4)
    ]
    assert statuses[:3] == [200, 200, 200] and statuses[3] == 429
    assert (await client.get("/api/me/tickets")).status == 429
    response = await client.get(f"/api/conversations/{CONVERSATION}/history")
    assert response.status == 429 and int(response.headers["Retry-After"]) >= 1


def test_forwarded_for_is_read_from_the_right(tmp_path):
    def address(proxies: int, forwarded: str) -> str:
        request = make_mocked_request("GET", "/", headers={"X-Forwarded-For": forwarded})
        request.app[SETTINGS] = settings_for(tmp_path, trusted_proxies=proxies)
        return client_address(request)

    spoofed = "6.6.6.6, 203.0.113.9"  # the client wrote 6.6.6.6; our proxy appended 203.0.113.9
    assert address(1, spoofed) == "203.0.113.9"
    assert address(2, "6.6.6.6, 203.0.113.9, 10.0.0.2") == "203.0.113.9"
    assert address(0, spoofed) != "6.6.6.6"  # no proxy configured: the header is ignored


async def test_a_body_that_trickles_in_is_cut_off(app_client):
    client = await app_client(body_timeout_s=0.5)
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        b"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n{\"sen"
    )
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), timeout=10)
    writer.close()
    assert b" 408 " in status_line


REQUEST = SupportRequest(
    name="Kai", email="kai@example.com", product="Makana Books", version="6",
    description="The invoice export fails with an error every time", tried="restarted", impact="cannot invoice",
    severity="high",
)


async def test_unknown_and_other_peoples_tickets_get_the_same_answer(app_client, aiohttp_client):
    from bot.policy import load_policy
    from bot.store import Store

    client = await app_client()
    settings = client.server.app[SETTINGS]
    store = await Store.open(settings.database_url)
    ticket, _ = await open_ticket(store, load_policy(POLICY_FILE), REQUEST, "owner-" + CONVERSATION, "web_chat", [], NOW)
    await store.close()
    stranger = "stranger-" + CONVERSATION
    answers = []
    for number in (ticket.number, "MK-ZZZZZZ"):
        for path in (f"/api/conversations/{stranger}/tickets/{number}/invite.ics",):
            response = await client.get(path)
            answers.append((response.status, await response.json()))
        response = await client.post(f"/api/conversations/{stranger}/csat", json={"number": number, "rating": 5})
        answers.append((response.status, await response.json()))
    assert answers[0] == answers[2] and answers[1] == answers[3]
    assert answers[0][0] == 404


async def test_my_tickets_lists_only_tickets_opened_under_that_identity(app_client):
    from bot.policy import load_policy
    from bot.store import Store

    client = await app_client()
    settings = client.server.app[SETTINGS]
    store = await Store.open(settings.database_url)
    policy = load_policy(POLICY_FILE)
    mine, _ = await open_ticket(store, policy, REQUEST, "pane-" + CONVERSATION, "in_app", [], NOW, owner_user_id="u-kai")
    other_request = dataclasses.replace(REQUEST, description="Please look at the odd export of invoices")
    # Somebody in an anonymous chat typed Kai's email: that is not Kai.
    typed, _ = await open_ticket(store, policy, other_request, "anon-" + CONVERSATION, "web_chat", [], NOW)
    await store.close()
    token = identity.sign(SECRET, "u-kai", "Kai", "kai@example.com", FUTURE)
    body = await (await client.get("/api/me/tickets", headers={"X-Identity-Token": token})).json()
    assert [t["number"] for t in body["tickets"]] == [mine.number]
    assert may_see(typed, "pane-" + CONVERSATION, "u-kai") is False
    assert may_see(mine, "elsewhere-" + CONVERSATION, "u-kai") is True


# -- 2. the identity the action server receives ---------------------------------------


def test_the_identity_seal_binds_the_conversation_and_refuses_forgeries():
    who = identity.Identity("u-kai", "Kai", "kai@example.com", FUTURE)
    sealed = identity.seal(SECRET, CONVERSATION, who)
    assert identity.unseal(SECRET, CONVERSATION, sealed, NOW) == who
    assert identity.unseal(SECRET, "other-" + CONVERSATION, sealed, NOW) is None  # copied elsewhere
    assert identity.unseal(SECRET, CONVERSATION, {**sealed, "email": "eve@example.com"}, NOW) is None
    assert identity.unseal("another-secret", CONVERSATION, sealed, NOW) is None
    plain = {"user_id": "u-kai", "name": "Kai", "email": "kai@example.com"}  # what Rasa got before
    assert identity.unseal(SECRET, CONVERSATION, plain, NOW) is None
    assert identity.unseal(SECRET, CONVERSATION, sealed, FUTURE + dt.timedelta(seconds=1)) is None


# -- 2. tokens made once and kept private ------------------------------------------------


def test_internal_tokens_are_generated_once_and_kept_private(tmp_path):
    from bot.launcher import with_internal_tokens

    first = with_internal_tokens(Settings(data_dir=tmp_path))
    assert len(first.rasa_token) >= 32 and len(first.actions_token) >= 32 and first.rasa_token != first.actions_token
    path = tmp_path / "internal-tokens.json"
    assert path.stat().st_mode & 0o777 == 0o600
    again = with_internal_tokens(Settings(data_dir=tmp_path))
    assert (again.rasa_token, again.actions_token) == (first.rasa_token, first.actions_token)
    configured = with_internal_tokens(Settings(data_dir=tmp_path, rasa_token="r" * 40, actions_token="a" * 40))
    assert configured.rasa_token == "r" * 40
    assert "r" * 40 not in repr(configured)  # never printed with the settings


# -- 5. dead letters are visible ----------------------------------------------------------


async def test_dead_letters_show_in_health_and_the_staff_api_and_staff_can_retry(app_client):
    from bot.store import Store

    client = await app_client()
    settings = client.server.app[SETTINGS]
    store = await Store.open(settings.database_url)
    from bot.policy import load_policy

    ticket, _ = await open_ticket(
        store, load_policy(POLICY_FILE), REQUEST, "dead-" + CONVERSATION, "web_chat", [], NOW, notify=("email",)
    )
    [row] = await store.notifications_for(ticket.id)
    await store.mark_failed(row["id"], "SMTP refused", NOW, dead=True)
    await store.close()
    health = await (await client.get("/healthz")).json()
    assert health["components"]["outbox"] == "degraded" and health["dead_notifications"] == 1
    auth = {"Authorization": "Bearer " + "t" * 24}
    assert (await (await client.get("/api/staff/outbox", headers=auth)).json()) == {"dead": 1}
    assert (await client.get("/api/staff/outbox")).status == 401
    assert (await (await client.post("/api/staff/outbox/retry", json={}, headers=auth)).json()) == {"retried": 1}
    assert (await (await client.get("/api/staff/outbox", headers=auth)).json()) == {"dead": 0}


def test_identity_tokens_are_short_lived_hs256_jwts_and_old_ones_get_a_clear_error():
    import base64
    import hashlib
    import hmac

    import jwt

    token = identity.sign(SECRET, "u-kai", "Kai", "Kai@Example.com", FUTURE)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False})
    assert claims["exp"] - claims["iat"] == 3600
    assert identity.verify(SECRET, token, NOW).email == "kai@example.com"

    def refused(token: str, reason: str) -> None:
        with pytest.raises(identity.IdentityError, match=reason):
            identity.verify(SECRET, token, NOW)

    # The format before JWT: base64url(JSON).base64url(HMAC): told what to do instead.
    body = base64.urlsafe_b64encode(b'{"sub":"u","name":"n","email":"a@b.co","exp":1900000000}').rstrip(b"=")
    old = body.decode() + "." + base64.urlsafe_b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    refused(old, "old format")
    refused(identity.sign(SECRET, "u", "n", "a@b.co", NOW + dt.timedelta(days=30), issued_at=NOW), "longer than 24 hours")
    refused(identity.sign(SECRET, "u", "n", "a@b.co", NOW + dt.timedelta(hours=2), issued_at=NOW + dt.timedelta(hours=1)),
            "issued in the future")
    refused(jwt.encode({"sub": "u", "name": "n", "email": "a@b.co", "exp": 1900000000}, SECRET, algorithm="HS256"), "'iat'")
    unsigned = jwt.encode({"sub": "u", "name": "n", "email": "a@b.co", "iat": 1, "exp": 2}, None, algorithm="none")
    refused(unsigned, "HS256|malformed")
    refused(jwt.encode({"sub": "u", "iat": int(NOW.timestamp()), "exp": int(FUTURE.timestamp())}, SECRET, algorithm="HS256"),
            "lacks sub, name or email")
