"""Tickets in a real database: idempotent creation, transcript, deadline, outbox."""

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bot.redaction import CARD, SECRET
from sqlalchemy.exc import OperationalError

from bot.store import StoreUnavailable, TicketNotFound, store_errors
from bot.tickets import SupportRequest, may_see, open_ticket
from bot.transcripts import transcript_from_events

HNL = ZoneInfo("Pacific/Honolulu")
SATURDAY_1829 = dt.datetime(2026, 11, 28, 18, 29, tzinfo=HNL)

REQUEST = SupportRequest(
    name="Ana López",
    email="ana@example.com",
    product="Makana POS",
    version="4",
    description="The till app crashes every time we close the day, my card 4111 1111 1111 1111 was charged",
    tried="Restarted the iPad, reinstalled the app",
    impact="The whole team cannot close the till",
    severity="high",
    category="troubleshooting",  # from the triage (bot/triage.py)
)


def events(*turns: tuple[str, str, dict | None]) -> list[dict]:
    out = []
    for i, (kind, text, data) in enumerate(turns):
        out.append({"event": kind, "text": text, "timestamp": 1_795_000_000 + i, "data": data or {}})
        out.append({"event": "action", "name": "action_listen", "timestamp": 1_795_000_000 + i})
    return out


CONVERSATION = events(
    ("user", "hi, my POS crashes", None),
    ("bot", "Did this answer your question?", {"buttons": [{"title": "Yes, thanks", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]}),
    ("user", "/deny", None),
    ("user", "my password is hunter2!x by the way", None),
    ("bot", "What's your name?", None),
    ("user", "Ana López", None),
)


def test_transcript_keeps_order_shows_button_titles_and_redacts():
    turns = transcript_from_events(CONVERSATION)
    assert [t["speaker"] for t in turns] == ["customer", "assistant", "customer", "customer", "assistant", "customer"]
    assert turns[2]["text"] == "No"  # the button's title, not "/deny"
    assert SECRET in turns[3]["text"] and "hunter2" not in turns[3]["text"]
    assert turns[0]["at"] == "2026-11-18T11:06:40+00:00"


async def test_ticket_has_number_deadline_transcript_and_redacted_fields(store, policy):
    ticket, created = await open_ticket(store, policy, REQUEST, "conv-1", "web_chat", CONVERSATION, SATURDAY_1829)
    assert created and ticket.number.startswith("MK-") and len(ticket.number) == 9
    assert ticket.status == "open" and ticket.severity == "high" and ticket.category == "troubleshooting"
    # Saturday 18:29 + 4 business hours = Monday 13:29 Hawaii time.
    assert ticket.response_due_at == dt.datetime(2026, 11, 30, 13, 29, tzinfo=HNL)
    assert CARD in ticket.description and "4111" not in ticket.description
    assert len(ticket.transcript) == 6
    again = await store.get_ticket(ticket.number.lower())
    assert again == ticket


async def test_retried_submission_returns_the_same_ticket(store, policy):
    first, created = await open_ticket(store, policy, REQUEST, "conv-2", "web_chat", CONVERSATION, SATURDAY_1829)
    second, created_again = await open_ticket(store, policy, REQUEST, "conv-2", "web_chat", CONVERSATION, SATURDAY_1829)
    assert (created, created_again) == (True, False)
    assert first.number == second.number
    assert len(await store.tickets_for_conversation("conv-2")) == 1


async def test_concurrent_double_submit_makes_one_ticket(store, policy):
    results = await asyncio.gather(
        *[open_ticket(store, policy, REQUEST, "conv-3", "web_chat", CONVERSATION, SATURDAY_1829) for _ in range(5)]
    )
    assert len({ticket.number for ticket, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert len(await store.tickets_for_conversation("conv-3")) == 1


async def test_outbox_rows_are_written_with_the_ticket(store, policy):
    ticket, _ = await open_ticket(
        store, policy, REQUEST, "conv-4", "web_chat", CONVERSATION, SATURDAY_1829, notify=("email", "webhook")
    )
    rows = await store.notifications_for(ticket.id)
    assert sorted(r["kind"] for r in rows) == ["email", "webhook"]
    assert all(r["delivered_at"] is None and r["attempts"] == 0 for r in rows)
    due = await store.claim_due_notifications(SATURDAY_1829 + dt.timedelta(seconds=1), dt.timedelta(minutes=1))
    assert {n.ticket_id for n in due} == {ticket.id}


async def test_unknown_ticket(store):
    with pytest.raises(TicketNotFound):
        await store.get_ticket("MK-ZZZZZZ")


async def test_only_the_owner_may_see_a_ticket(store, policy):
    ticket, _ = await open_ticket(store, policy, REQUEST, "conv-5", "web_chat", CONVERSATION, SATURDAY_1829)
    assert may_see(ticket, "conv-5", None)
    assert not may_see(ticket, "other", None)
    assert not may_see(ticket, "other", "u-ana")  # typing Ana's email in a chat did not make it Ana's
    pane, _ = await open_ticket(
        store, policy, REQUEST, "conv-6", "in_app", CONVERSATION, SATURDAY_1829, owner_user_id="u-ana"
    )
    assert may_see(pane, "other", "u-ana")
    assert not may_see(pane, "other", "u-mallory")


async def test_category_and_proposed_severity_are_stored(store, policy):
    request = SupportRequest(**{**REQUEST.__dict__, "category": "customer_service", "proposed_severity": "critical",
                                "product": "", "version": ""})
    ticket, _ = await open_ticket(store, policy, request, "conv-6", "web_chat", CONVERSATION, SATURDAY_1829)
    assert (ticket.category, ticket.severity, ticket.proposed_severity, ticket.submitted_severity) == (
        "customer_service", "high", "critical", "high")
    assert (ticket.product, ticket.version) == ("", "")


async def test_staff_change_the_severity_and_its_deadline(store, policy):
    ticket, _ = await open_ticket(store, policy, REQUEST, "conv-7", "web_chat", CONVERSATION, SATURDAY_1829)
    due = policy.response_due("critical", ticket.created_at)
    changed = await store.change_severity(ticket.number, "critical", due, "tester", SATURDAY_1829)
    assert (changed.severity, changed.submitted_severity) == ("critical", "high")
    assert changed.response_due_at == due.astimezone(dt.timezone.utc)
    [entry] = await store.audit_entries(ticket.number)
    assert entry["action"] == "severity" and entry["detail"] == {"from": "high", "to": "critical"}


def test_store_errors_names_what_failed_and_keeps_the_cause():
    with pytest.raises(StoreUnavailable, match=r"^could not store the note \(OperationalError\)$") as caught:
        with store_errors("could not store the note"):
            raise OperationalError("INSERT", {}, Exception("database is locked"))
    assert isinstance(caught.value.__cause__, OperationalError)
    with pytest.raises(StoreUnavailable, match=r"\(PermissionError\)"):
        with store_errors("could not store the note"):
            raise PermissionError("read-only file system")


def test_store_errors_lets_other_errors_through():
    with pytest.raises(TicketNotFound):
        with store_errors("could not store the note"):
            raise TicketNotFound("MK-ABCDEF")
    with pytest.raises(ValueError):
        with store_errors("x"):
            raise ValueError("a caller's mistake is not the store's")
    with store_errors("x"):
        value = 1  # nothing raised: nothing changed
    assert value == 1
