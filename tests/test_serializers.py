"""The JSON views of tickets, bookings and notes come from one module (bot/serializers.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import pathlib
import re

from bot.serializers import (
    REQUEST_FIELDS,
    TICKET_FIELDS,
    booking_for_people,
    booking_record,
    note_record,
    ticket_for_customer,
    ticket_for_staff,
    ticket_record,
)
from bot.store import Booking, Note, Ticket

UTC = dt.timezone.utc
CREATED = dt.datetime(2026, 11, 27, 20, 0, tzinfo=UTC)  # Friday 10:00 in Honolulu
DUE = CREATED + dt.timedelta(hours=4)


def ticket(**changes) -> Ticket:
    base = Ticket(
        submission_key="k1", conversation_id="c" * 32, severity="high", category="technical", channel="web",
        name="Rangi Tane", email="rangi@example.org", product="Makana Books", version="6.2",
        description="Invoices fail to sync since this morning " * 6, tried="Restarted the app", impact="Whole team",
        transcript=[{"speaker": "customer", "text": "hello"}], response_due_at=DUE, owner_user_id="u-1",
        proposed_severity="high", id=7, number="MK-100007", status="open", created_at=CREATED, updated_at=CREATED,
    )
    return dataclasses.replace(base, **changes)


def test_the_record_holds_every_stored_field_once_and_is_json(policy):
    record = ticket_record(ticket())
    assert set(TICKET_FIELDS + REQUEST_FIELDS) <= set(record)
    assert record["created_at"] == CREATED.isoformat() and record["response_due_at"] == DUE.isoformat()
    json.dumps(record)


def test_the_customer_sees_a_summary_without_other_peoples_data(policy):
    shown = ticket_for_customer(ticket(), policy, CREATED)
    assert not {"email", "name", "transcript", "tried", "impact"} & set(shown)
    assert len(shown["summary"]) == 140 and shown["number"] == "MK-100007"
    assert "today" in shown["response_due"]


def test_the_staff_row_adds_the_deadline_state(policy):
    late = ticket_for_staff(ticket(), policy, DUE + dt.timedelta(minutes=1))
    assert late["overdue"] is True and late["business_time_left_minutes"] < 0
    assert set(TICKET_FIELDS) <= set(late) and "transcript" not in late
    assert ticket_for_staff(ticket(status="resolved"), policy, DUE + dt.timedelta(minutes=1))["overdue"] is False


def test_bookings_and_notes():
    booking = Booking(
        id=3, ticket_id=7, starts_at=DUE, ends_at=DUE + dt.timedelta(minutes=30), status="booked",
        meet_url="https://meet.google.com/abc-defg-hij", calendar_event_id="ev1", customer_tz="Pacific/Auckland",
        created_at=CREATED, updated_at=CREATED, cancelled_at=None,
    )
    assert booking_record(booking)["calendar_event_id"] == "ev1"
    assert "calendar_event_id" not in booking_for_people(booking)
    assert booking_for_people(None) is None
    assert note_record(Note(1, 7, "ana", "called back", CREATED)) == {
        "author": "ana", "text": "called back", "created_at": CREATED.isoformat()
    }


def test_no_module_spells_a_ticket_or_booking_out_by_hand():
    """Views of a ticket, booking or note are built in bot/serializers.py only."""
    spelled = re.compile(r'"(meet_url|response_due_at|created_at)":\s*(ticket|t|booking|note|n)\.')
    for path in pathlib.Path("bot").rglob("*.py"):
        if path.name == "serializers.py":
            continue
        assert not spelled.search(path.read_text(encoding="utf-8")), path
