"""One place that turns stored tickets, bookings and notes into JSON-able dicts.

Every view of a resource is built from the same field lists here, so the customer API,
the staff API, the notifications and the privacy export cannot drift apart (issue 17).
A view adds what only it shows (the customer's deadline in words, the staff member's
time left), never a second spelling of a stored field.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from bot.policy_answers import format_time
from bot.policy import SupportPolicy
from bot.store import Booking, Note, Ticket

# Who reported what, and where the ticket stands: every view but the customer's list.
TICKET_FIELDS = ("number", "status", "severity", "category", "channel", "name", "email", "product", "version")
# What the customer wrote in the form, and the conversation.
REQUEST_FIELDS = ("description", "tried", "impact", "transcript")


def _pick(ticket: Ticket, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(ticket, name) for name in names}


def _times(ticket: Ticket) -> dict[str, str]:
    return {"created_at": ticket.created_at.isoformat(), "response_due_at": ticket.response_due_at.isoformat()}


def ticket_request(ticket: Ticket) -> dict[str, Any]:
    """What the customer wrote in the form, and the conversation."""
    return _pick(ticket, REQUEST_FIELDS)


def ticket_record(ticket: Ticket) -> dict[str, Any]:
    """The whole ticket as stored: the team's notification and the privacy export."""
    return _pick(ticket, TICKET_FIELDS) | ticket_request(ticket) | _times(ticket)


def ticket_for_customer(ticket: Ticket, policy: SupportPolicy, now: dt.datetime, zone: ZoneInfo | None = None) -> dict[str, Any]:
    """One line of the signed-in customer's ticket list (no transcript, no other person's data)."""
    shown = _pick(ticket, ("number", "status", "severity", "product")) | {"summary": ticket.description[:140]}
    return shown | _times(ticket) | {"response_due": format_time(policy, ticket.response_due_at, now, zone)}


def ticket_for_staff(ticket: Ticket, policy: SupportPolicy, now: dt.datetime) -> dict[str, Any]:
    """A row of the staff queue: the stored fields, the triage trail and the deadline's state."""
    return _pick(ticket, TICKET_FIELDS) | {
        "proposed_severity": ticket.proposed_severity,
        "submitted_severity": ticket.submitted_severity,
        "assignee": ticket.assignee,
        **_times(ticket),
        "response_due": format_time(policy, ticket.response_due_at, now),
        "overdue": ticket.status == "open" and ticket.response_due_at < now,
        "business_time_left_minutes": round(policy.business_time_between(now, ticket.response_due_at).total_seconds() / 60),
    }


def booking_record(booking: Booking) -> dict[str, Any]:
    """A booked call as stored (the team's notification)."""
    return {
        "id": booking.id,
        "status": booking.status,
        "starts_at": booking.starts_at.isoformat(),
        "ends_at": booking.ends_at.isoformat(),
        "meet_url": booking.meet_url,
        "calendar_event_id": booking.calendar_event_id,
        "customer_tz": booking.customer_tz,
    }


def booking_for_people(booking: Booking | None) -> dict[str, Any] | None:
    """A booked call as a person reads it (staff detail, privacy export): no calendar ids."""
    if booking is None:
        return None
    return {
        "starts_at": booking.starts_at.isoformat(),
        "ends_at": booking.ends_at.isoformat(),
        "status": booking.status,
        "meet_url": booking.meet_url,
    }


def note_record(note: Note) -> dict[str, Any]:
    """A staff note."""
    return {"author": note.author, "text": note.text, "created_at": note.created_at.isoformat()}
