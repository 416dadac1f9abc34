"""Data-protection requests: export everything stored about a customer, or erase it.

Covers the product's store (tickets, their transcripts, notes, bookings, ratings) and
Rasa's tracker store (the conversations of those tickets). Each request is written to
the audit log under a hash of the email, so the log itself keeps no address.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from bot.store import Store, StoreUnavailable, make_engine
from bot.transcripts import RASA_EVENTS as EVENTS


def subject_of(email: str) -> str:
    """How the audit log names a customer: a hash, not the address."""
    return "customer:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:16]


async def _conversations(tracker_store_url: str, senders: list[str]) -> dict[str, list[dict[str, Any]]]:
    if not senders:
        return {}
    engine = make_engine(tracker_store_url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(EVENTS.c.sender_id, EVENTS.c.type_name, EVENTS.c.timestamp, EVENTS.c.data)
                    .where(EVENTS.c.sender_id.in_(senders), EVENTS.c.type_name.in_(("user", "bot")))
                    .order_by(EVENTS.c.timestamp)
                )
            ).fetchall()
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"tracker store unavailable ({type(exc).__name__})") from exc
    finally:
        await engine.dispose()
    out: dict[str, list[dict[str, Any]]] = {s: [] for s in senders}
    for sender, kind, timestamp, data in rows:
        text = (json.loads(data) if isinstance(data, str) else data or {}).get("text")
        at = dt.datetime.fromtimestamp(float(timestamp), tz=dt.timezone.utc).isoformat()
        out[sender].append({"at": at, "speaker": "customer" if kind == "user" else "assistant", "text": text})
    return out


async def export_customer(store: Store, tracker_store_url: str, email: str, actor: str, now: dt.datetime) -> dict[str, Any]:
    """Everything stored about `email`: tickets (with transcript, notes, booking, rating) and conversations."""
    found = await store.customer_tickets_with_notes(email)
    tickets = []
    for ticket, notes in found:
        booking = await store.booking_for_ticket(ticket.id)
        tickets.append(
            {
                "number": ticket.number, "status": ticket.status, "severity": ticket.severity,
                "name": ticket.name, "email": ticket.email, "product": ticket.product, "version": ticket.version,
                "description": ticket.description, "tried": ticket.tried, "impact": ticket.impact,
                "channel": ticket.channel, "created_at": ticket.created_at.isoformat(),
                "transcript": ticket.transcript, "csat_rating": ticket.csat_rating, "csat_comment": ticket.csat_comment,
                "notes": [{"author": n.author, "text": n.text, "created_at": n.created_at.isoformat()} for n in notes],
                "booking": None if booking is None else {
                    "starts_at": booking.starts_at.isoformat(), "status": booking.status, "meet_url": booking.meet_url,
                },
            }
        )
    senders = sorted({ticket.conversation_id for ticket, _ in found})
    await store.record_audit(actor, "export_customer", subject_of(email), {"tickets": len(tickets)}, now)
    return {"email": email.lower(), "tickets": tickets, "conversations": await _conversations(tracker_store_url, senders)}


async def erase_customer(store: Store, tracker_store_url: str, email: str, actor: str, now: dt.datetime) -> dict[str, Any]:
    """Erase the personal fields of the customer's tickets and delete their conversations."""
    senders = await store.forget_customer(email, actor, subject_of(email), now)
    deleted = 0
    if senders:
        engine = make_engine(tracker_store_url)
        try:
            async with engine.begin() as conn:
                deleted = (await conn.execute(EVENTS.delete().where(EVENTS.c.sender_id.in_(senders)))).rowcount
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"tracker store unavailable ({type(exc).__name__})") from exc
        finally:
            await engine.dispose()
    return {"conversations_deleted": len(senders), "events_deleted": deleted}
