"""The staff ticket API through the real app and a real database: every endpoint with
valid, invalid and unauthorised requests."""

import csv
import datetime as dt
import io
import json
import sqlite3
import secrets
from zoneinfo import ZoneInfo

import pytest

from bot.web import identity
from bot.web.api import SETTINGS
from bot.settings import Settings
from bot.store import Store
from bot.tickets import SupportRequest, open_ticket
from bot.web.app import make_app
from tests.conftest import POLICY_FILE, free_port
from tests.test_tickets import CONVERSATION, REQUEST

HNL = ZoneInfo("Pacific/Honolulu")
NOW = dt.datetime(2026, 11, 30, 15, 0, tzinfo=HNL)  # Monday afternoon
TOKEN = secrets.token_urlsafe(24)
OTHER = secrets.token_urlsafe(24)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def setup(store, aiohttp_client, tmp_path, policy):
    """The app on the `store` fixture's database (SQLite, and PostgreSQL when configured)."""
    url = store.engine.url.render_as_string(hide_password=False)
    # Three tickets: high due Monday 13:29 (overdue at NOW), low and critical.
    saturday = dt.datetime(2026, 11, 28, 18, 29, tzinfo=HNL)
    high, _ = await open_ticket(store, policy, REQUEST, "c-high", "web_chat", CONVERSATION, saturday)
    low_request = SupportRequest(**{**REQUEST.__dict__, "severity": "low", "description": "=HYPERLINK(\"x\") the logo is blurry on invoices"})
    low, _ = await open_ticket(store, policy, low_request, "c-low", "in_app", CONVERSATION, NOW)
    critical_request = SupportRequest(**{**REQUEST.__dict__, "severity": "critical", "name": "=cmd|' /C calc'!A0"})
    critical, _ = await open_ticket(store, policy, critical_request, "c-crit", "web_chat", CONVERSATION, NOW)
    tracker = tmp_path / "tracker.db"
    with sqlite3.connect(tracker) as db:  # the columns of Rasa's SQL tracker store that are read
        db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id TEXT, type_name TEXT, timestamp REAL,"
                   " intent_name TEXT, action_name TEXT, data TEXT)")
        for i, (sender, kind, text) in enumerate([("c-high", "user", "my POS crashes"), ("c-high", "bot", "Sorry!"),
                                                  ("someone-else", "user", "hello")]):
            db.execute("INSERT INTO events (sender_id, type_name, timestamp, data) VALUES (?, ?, ?, ?)",
                       (sender, kind, 1_795_000_000 + i, json.dumps({"text": text})))
    settings = Settings(
        rasa_port=free_port(), actions_port=free_port(), data_dir=tmp_path, policy_path=POLICY_FILE,
        database_url=url, staff_tokens=f"alice:{TOKEN},bob:{OTHER}", identity_secret="s" * 32,
        tracker_store_url=f"sqlite:///{tracker}",
    )
    client = await aiohttp_client(make_app(settings, clock=lambda: NOW))
    return client, {"high": high, "low": low, "critical": critical}


async def test_every_staff_endpoint_refuses_anonymous_customer_and_wrong_tokens(setup):
    client, tickets = setup
    number = tickets["high"].number
    customer = identity.sign("s" * 32, "u1", "Ana", "ana@example.com", NOW + dt.timedelta(hours=1))
    calls = [
        ("GET", "/api/staff/tickets", None),
        ("GET", "/api/staff/tickets.csv", None),
        ("GET", f"/api/staff/tickets/{number}", None),
        ("POST", f"/api/staff/tickets/{number}/status", {"status": "pending"}),
        ("POST", f"/api/staff/tickets/{number}/assign", {"assignee": "bob"}),
        ("POST", f"/api/staff/tickets/{number}/notes", {"text": "hi"}),
        ("GET", "/api/staff/kb?q=reset%20my%20password", None),
    ]
    for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}, {"Authorization": TOKEN},
                    {"X-Identity-Token": customer}, {"Authorization": f"Bearer {customer}"}):
        for method, path, body in calls:
            response = await client.request(method, path, json=body, headers=headers)
            assert response.status == 401, (method, path, headers)
            assert (await response.json())["error"]["code"] == "staff_token_required"
    detail = await (await client.get(f"/api/staff/tickets/{number}", headers=AUTH)).json()
    assert detail["status"] == "open" and detail["notes"] == []  # nothing changed


async def test_queue_is_ordered_by_deadline_and_filters(setup):
    client, tickets = setup
    body = await (await client.get("/api/staff/tickets", headers=AUTH)).json()
    numbers = [t["number"] for t in body["tickets"]]
    # high: Monday 13:29; critical: Monday 16:00 (1 h); low: 27 business hours later.
    assert numbers == [tickets["high"].number, tickets["critical"].number, tickets["low"].number]
    assert body["tickets"][0]["overdue"] is True and body["tickets"][1]["overdue"] is False
    assert body["tickets"][1]["business_time_left_minutes"] == 60
    overdue = await (await client.get("/api/staff/tickets?overdue=true", headers=AUTH)).json()
    assert [t["number"] for t in overdue["tickets"]] == [tickets["high"].number]
    low = await (await client.get("/api/staff/tickets?severity=low", headers=AUTH)).json()
    assert [t["number"] for t in low["tickets"]] == [tickets["low"].number]
    for query, code in (("status=done", "invalid_status"), ("severity=urgent", "invalid_severity"),
                        ("overdue=yes", "invalid_overdue"), ("limit=0", "invalid_paging"), ("limit=x", "invalid_paging")):
        response = await client.get(f"/api/staff/tickets?{query}", headers=AUTH)
        assert response.status == 422 and (await response.json())["error"]["code"] == code


async def test_ticket_detail_has_transcript_booking_and_notes(setup):
    client, tickets = setup
    number = tickets["high"].number
    response = await client.post(f"/api/staff/tickets/{number}/notes", json={"text": "Asked the customer for logs"}, headers=AUTH)
    assert response.status == 201
    for bad in ({}, {"text": ""}, {"text": "x" * 5001}, {"text": 5}):
        response = await client.post(f"/api/staff/tickets/{number}/notes", json=bad, headers=AUTH)
        assert response.status == 422
    detail = await (await client.get(f"/api/staff/tickets/{number}", headers=AUTH)).json()
    assert detail["transcript"][0]["text"] == "hi, my POS crashes"
    assert detail["booking"] is None
    assert detail["notes"] == [{"author": "alice", "text": "Asked the customer for logs", "created_at": NOW.astimezone(dt.timezone.utc).isoformat()}]
    missing = await client.get("/api/staff/tickets/MK-ZZZZZZ", headers=AUTH)
    assert missing.status == 404 and (await missing.json())["error"]["code"] == "ticket_not_found"


async def test_status_transitions_are_enforced_and_audited(setup):
    client, tickets = setup
    number = tickets["high"].number
    path = f"/api/staff/tickets/{number}/status"
    steps = [("pending", 200), ("closed", 409), ("open", 200), ("resolved", 200), ("pending", 409), ("closed", 200), ("open", 409)]
    for wanted, expected in steps:
        response = await client.post(path, json={"status": wanted}, headers=AUTH)
        assert response.status == expected, (wanted, await response.text())
        if expected == 409:
            assert (await response.json())["error"]["code"] == "invalid_transition"
    for bad in ({"status": "done"}, {}, {"status": None}):
        assert (await client.post(path, json=bad, headers=AUTH)).status == 422
    assert (await client.post(path, data=b"not json", headers={**AUTH, "Content-Type": "application/json"})).status == 400
    assert (await client.post(path, data=b"{}", headers={**AUTH, "Content-Type": "text/plain"})).status == 415
    store = await Store.open(client.server.app[SETTINGS].database_url)
    try:
        audit = await store.audit_entries(number)
    finally:
        await store.close()
    assert [(a["actor"], a["detail"]["to"]) for a in audit] == [("alice", "pending"), ("alice", "open"), ("alice", "resolved"), ("alice", "closed")]


async def test_assign(setup):
    client, tickets = setup
    number = tickets["low"].number
    body = await (await client.post(f"/api/staff/tickets/{number}/assign", json={"assignee": "bob"}, headers=AUTH)).json()
    assert body["assignee"] == "bob"
    body = await (await client.post(f"/api/staff/tickets/{number}/assign", json={"assignee": None}, headers=AUTH)).json()
    assert body["assignee"] is None
    for bad in ({"assignee": ""}, {"assignee": 3}, {"assignee": "x" * 200}):
        assert (await client.post(f"/api/staff/tickets/{number}/assign", json=bad, headers=AUTH)).status == 422


async def test_csv_export_neutralises_formulas(setup):
    client, tickets = setup
    response = await client.get("/api/staff/tickets.csv", headers=AUTH)
    assert response.status == 200 and response.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert [r["number"] for r in rows] == [tickets["high"].number, tickets["critical"].number, tickets["low"].number]
    assert rows[1]["name"] == "'=cmd|' /C calc'!A0"


async def test_customer_data_export_and_erasure(setup):
    client, tickets = setup
    email = REQUEST.email
    export, erase = "/api/staff/customers/export", "/api/staff/customers/erase"
    assert (await client.post(export, json={"email": email})).status == 401
    assert (await client.post(export, json={"email": "not-an-email"}, headers=AUTH)).status == 422
    assert (await client.get(f"/api/staff/customers/{email}/export", headers=AUTH)).status == 404  # never in a URL
    await client.post(f"/api/staff/tickets/{tickets['high'].number}/notes", json={"text": "called Ana"}, headers=AUTH)
    exported = await (await client.post(export, json={"email": email}, headers=AUTH)).json()
    assert sorted(t["number"] for t in exported["tickets"]) == sorted(t.number for t in tickets.values())
    assert exported["conversations"]["c-high"] == [
        {"at": "2026-11-18T11:06:40+00:00", "speaker": "customer", "text": "my POS crashes"},
        {"at": "2026-11-18T11:06:41+00:00", "speaker": "assistant", "text": "Sorry!"},
    ]
    high = next(t for t in exported["tickets"] if t["number"] == tickets["high"].number)
    assert high["notes"][0]["text"] == "called Ana" and high["transcript"]

    response = await client.post(erase, json={"email": email}, headers=AUTH)
    assert response.status == 200
    assert await response.json() == {"conversations_deleted": 3, "events_deleted": 2, "calls_cancelled": 0}
    detail = await (await client.get(f"/api/staff/tickets/{tickets['high'].number}", headers=AUTH)).json()
    assert (detail["name"], detail["email"], detail["description"], detail["transcript"], detail["notes"]) == (
        "[erased]", "[erased]", "[erased]", [], [])
    again = await (await client.post(export, json={"email": email}, headers=AUTH)).json()
    assert again["tickets"] == [] and again["conversations"] == {}
    tracker = client.server.app[SETTINGS].tracker_store_url.removeprefix("sqlite:///")
    with sqlite3.connect(tracker) as db:
        assert db.execute("SELECT sender_id FROM events").fetchall() == [("someone-else",)]
    store = await Store.open(client.server.app[SETTINGS].database_url)
    try:
        from bot.privacy import subject_of

        audit = await store.audit_entries(subject_of(email))
    finally:
        await store.close()
    assert [(a["actor"], a["action"]) for a in audit] == [
        ("alice", "export_customer"), ("alice", "forget_customer"), ("alice", "export_customer")]
    assert email not in json.dumps([a["detail"] for a in audit])


async def test_report_and_unanswered_endpoints(setup):
    client, tickets = setup
    for path in ("/api/staff/report", "/api/staff/unanswered"):
        assert (await client.get(path)).status == 401
    for bad in ("0", "367", "x"):
        response = await client.get(f"/api/staff/report?days={bad}", headers=AUTH)
        assert response.status == 422 and (await response.json())["error"]["code"] == "invalid_days"
    report = await (await client.get("/api/staff/report?days=7", headers=AUTH)).json()
    # The fixture's tracker events are older than 7 days; the three tickets are not.
    assert report["totals"]["conversations"] == 0
    by_severity = {row["severity"]: row for row in report["sla"]}
    assert by_severity["high"]["missed"] == 1  # due Monday 13:29, no response by 15:00
    assert by_severity["critical"]["pending"] == 1 and by_severity["low"]["pending"] == 1
    unanswered = await (await client.get("/api/staff/unanswered", headers=AUTH)).json()
    assert unanswered == {"groups": []}


async def test_knowledge_base_search_for_agents(setup):
    """The Live view's search: the closest entries with their answers, as the assistant sends them."""
    from kb_index import FaqIndex, IndexFolderError

    client, _ = setup
    try:
        FaqIndex.load(Settings().index_dir)
    except IndexFolderError:
        pytest.skip("the FAQ index is not built (make index)")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for bad in ("", "x" * 501):
        response = await client.get("/api/staff/kb", params={"q": bad}, headers=headers)
        assert response.status == 422 and (await response.json())["error"]["code"] == "invalid_query"
    response = await client.get("/api/staff/kb", params={"q": "the card reader can't be found over bluetooth"}, headers=headers)
    assert response.status == 200
    entries = (await response.json())["entries"]
    assert 1 <= len(entries) <= 3 and entries[0]["id"] == "pair_card_reader"
    assert "Makana Reader" in entries[0]["answer"] and "{{" not in entries[0]["answer"]  # rendered from the policy


async def test_report_endpoint_has_the_live_chat_figures(setup, store):
    """/api/staff/report's `live` section (what the report page shows) from a chat in the store."""
    from bot.live_store import LiveStore

    client, _ = setup
    live = LiveStore(store.engine)
    asked = NOW - dt.timedelta(hours=1)
    chat, _ = await live.start("w-report-" + "r" * 20, "web_chat", "high", {}, asked)
    await live.claim(chat.id, "alice", asked + dt.timedelta(seconds=30))
    await live.append(chat.id, "message", "agent", "alice", "hello", asked + dt.timedelta(seconds=90), agent="alice")
    await live.end(chat.id, "ended", asked + dt.timedelta(minutes=10), agent="alice")
    report = await (await client.get("/api/staff/report?days=7", headers=AUTH)).json()
    figures = report["live"]
    assert len(figures["days"]) == 7 and figures["days"][-1] == {"date": "2026-11-30", "requested": 1, "claimed": 1}
    assert sum(d["requested"] for d in figures["days"]) == figures["requested"] == figures["claimed"] == 1
    assert (figures["wait"]["median_s"], figures["first_reply"]["median_s"], figures["duration"]["median_s"]) == (30.0, 60.0, 570.0)
    assert figures["first_reply_within_policy"] == {"met": 1, "missed": 0}


async def test_staff_responses_have_the_shape_their_models_document(setup):
    """The response models of bot/web/schemas.py (what /api/openapi.json documents) read
    the real answers: a field renamed in a handler fails here."""
    from bot.web import schemas

    client, tickets = setup
    number = tickets["high"].number
    base = f"/api/staff/tickets/{number}"
    for method, path, body, model in [
        ("POST", base + "/notes", {"text": "  called back  "}, schemas.NoteRecord),
        ("POST", base + "/assign", {"assignee": " bob "}, schemas.StaffTicket),
        ("POST", base + "/severity", {"severity": "low"}, schemas.StaffTicket),
        ("GET", "/api/staff/tickets", None, schemas.TicketList),
        ("GET", base, None, schemas.TicketDetail),
        ("GET", "/api/staff/report?days=7", None, schemas.Report),
        ("GET", "/api/staff/outbox", None, schemas.DeadLetters),
        ("POST", "/api/staff/customers/export", {"email": REQUEST.email}, schemas.CustomerExport),
    ]:
        response = await client.request(method, path, json=body, headers=AUTH)
        assert response.status in (200, 201), (path, await response.text())
        model.model_validate(await response.json())
    detail = await (await client.get(base, headers=AUTH)).json()
    assert detail["notes"][-1]["text"] == "called back" and detail["assignee"] == "bob"


@pytest.mark.parametrize(("path", "body", "code", "message"), [
    ("/status", {"status": "done"}, "invalid_status", "`status` must be one of open, pending, resolved, closed."),
    ("/severity", {}, "invalid_severity", "`severity` must be one of critical, high, medium, low."),
    ("/assign", {"assignee": "  "}, "invalid_assignee", "`assignee` must be a name of 1 to 128 characters, or null."),
    ("/notes", {"text": 5}, "invalid_note", "`text` must be a non-empty string of at most 5000 characters."),
    ("/notes", {"text": "x" * 5001}, "invalid_note", "`text` must be a non-empty string of at most 5000 characters."),
])
async def test_a_refused_staff_body_says_what_is_expected(setup, path, body, code, message):
    client, tickets = setup
    response = await client.post(f"/api/staff/tickets/{tickets['high'].number}{path}", json=body, headers=AUTH)
    assert response.status == 422 and (await response.json())["error"] == {"code": code, "message": message}


async def test_a_refused_email_shows_the_expected_body(setup):
    client, _ = setup
    response = await client.post("/api/staff/customers/export", json={"email": "not-an-email"}, headers=AUTH)
    error = (await response.json())["error"]
    assert response.status == 422 and error["code"] == "invalid_email"
    assert error["message"] == '`email` must be a valid email address, e.g. {"email": "kai@example.com"}.'
