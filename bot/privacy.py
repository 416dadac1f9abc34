"""Data-protection requests: export everything stored about a customer, or erase it.

Covers the product's store (tickets, their transcripts, notes, bookings, ratings) and
Rasa's tracker store: every conversation that holds the email, in what the customer
typed, in a form slot or in a verified in-app identity, whether or not it became a
ticket (an abandoned form counts). Erasing also cancels the customer's calls and
deletes their calendar events. On SQLite, erased rows are overwritten on disk
(`secure_delete`) and the write-ahead log is checkpointed and truncated, so the old
pages do not linger in either file. Each request is written to the audit log under a
hash of the email, so the log itself keeps no address.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from bot import call_booking
from bot.google_calendar import Calendar
from bot.serializers import booking_for_people, note_record, ticket_record
from bot.settings import Settings
from bot.store import Store, StoreUnavailable, make_engine
from bot.tracker_store import TrackerStore


def subject_of(email: str) -> str:
    """How the audit log names a customer: a hash, not the address."""
    return "customer:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:16]


async def conversations_with(tracker: TrackerStore, email: str, known: set[str]) -> list[str]:
    """The conversations whose events mention `email` (slots, text, identity), plus `known`."""
    return sorted(await tracker.senders_mentioning(email) | known)


async def _conversations(tracker: TrackerStore, senders: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Each conversation's turns and filled slots, as the export shows them."""
    out: dict[str, list[dict[str, Any]]] = {}
    for sender, events in (await tracker.conversations(senders)).items():
        rows: list[dict[str, Any]] = []
        for event in events:
            at = event.at.isoformat()
            if event.type_name == "slot":
                if event.data.get("value") not in (None, "", False):
                    rows.append({"at": at, "slot": event.data.get("name"), "value": event.data.get("value")})
                continue
            speaker = "customer" if event.type_name == "user" else "assistant"
            rows.append({"at": at, "speaker": speaker, "text": event.data.get("text")})
        out[sender] = rows
    return out


async def export_customer(store: Store, tracker: TrackerStore, email: str, actor: str, now: dt.datetime) -> dict[str, Any]:
    """Everything stored about `email`: tickets (with transcript, notes, booking, rating) and conversations."""
    found = await store.customer_tickets_with_notes(email)
    tickets = []
    for ticket, notes in found:
        booking = await store.booking_for_ticket(ticket.id)
        tickets.append(
            ticket_record(ticket)
            | {
                "csat_rating": ticket.csat_rating,
                "csat_comment": ticket.csat_comment,
                "notes": [note_record(n) for n in notes],
                "booking": booking_for_people(booking),
            }
        )
    senders = await conversations_with(tracker, email, {ticket.conversation_id for ticket, _ in found})
    conversations = await _conversations(tracker, senders)
    await store.record_audit(
        actor, "export_customer", subject_of(email), {"tickets": len(tickets), "conversations": len(senders)}, now
    )
    return {"email": email.lower(), "tickets": tickets, "conversations": conversations}


async def erase_customer(
    store: Store,
    calendar: Calendar,
    settings: Settings,
    tracker: TrackerStore,
    email: str,
    actor: str,
    now: dt.datetime,
) -> dict[str, Any]:
    """Cancel the customer's calls, erase their tickets' personal fields, delete every
    conversation that holds the email, and leave no copy in SQLite's files."""
    tickets = await store.tickets_for_email(email)
    calls = 0
    for ticket in tickets:
        # The calendar event (with the customer as attendee) goes too; a failure to delete
        # it is queued for the team, as for any cancelled call.
        if await call_booking.cancel(store, calendar, settings, ticket, now) is not None:
            calls += 1
    senders = await conversations_with(tracker, email, {t.conversation_id for t in tickets})
    await store.forget_customer(email, actor, subject_of(email), now)
    deleted = await tracker.delete_conversations(senders)
    for url in {settings.database_url, settings.tracker_store_url}:
        await purge_sqlite_files(url)
    return {"conversations_deleted": len(senders), "events_deleted": deleted, "calls_cancelled": calls}


async def purge_sqlite_files(url: str) -> None:
    """On SQLite, make deleted rows unrecoverable: the database overwrites freed pages with
    zeros (`secure_delete`), and the write-ahead log, which still holds the old pages, is
    checkpointed into the database and truncated. A no-op for PostgreSQL."""
    if not url.startswith("sqlite"):
        return
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA secure_delete = ON")
            await conn.exec_driver_sql("VACUUM")  # rewrites the file without the freed pages
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"could not purge {url.rsplit('/', 1)[-1]} ({type(exc).__name__})") from exc
    finally:
        await engine.dispose()
