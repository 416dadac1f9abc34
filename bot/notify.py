"""Tell the support team about new tickets and booked calls: email (SMTP) and a signed webhook.

Notifications go through an outbox: `open_ticket` writes one row per channel in the
same transaction as the ticket, and `deliver_due` (run in the background by the web
service) sends them, retrying with backoff. The conversation never waits for SMTP or
the webhook, and a notification is never lost to a crash. Booking events (a row with
a `booking_id`: booking_created, booking_pending, booking_moved, booking_cancelled,
calendar_cleanup) are written by bot/call_booking.py the same way; their email says whether
the calendar event exists and attaches the invitation (.ics).

`Notifier.send` raises `DeliveryFailed` (SMTP error, refused connection, timeout,
webhook answered non-2xx); the outbox records the error and retries later.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import logging
from email.message import EmailMessage
from typing import Any, Callable

import aiohttp
import aiosmtplib

from bot.call_slots import Slot
from bot.clock import customer_zone
from bot.invite import invitation
from bot.policy import SupportPolicy
from bot.serializers import booking_record, ticket_record
from bot.settings import Settings
from bot.store import Booking, Notification, Store, Ticket

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Makana-Signature"
DELIVERY_HEADER = "X-Makana-Delivery"  # the same on every retry of one notification
MAX_ATTEMPTS = 10
# How long a web service process holds the rows it is sending; longer than the slowest
# send (SMTP and webhook timeouts), so that nobody else picks them up meanwhile.
CLAIM_LEASE = dt.timedelta(minutes=2)


class DeliveryFailed(RuntimeError):
    """The notification could not be delivered this time."""


def sign(secret: str, body: bytes) -> str:
    """The webhook signature header value: sha256=<hex HMAC-SHA256 of the raw body>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def enabled_kinds(settings: Settings) -> tuple[str, ...]:
    """The notification channels configured: "email" and/or "webhook"."""
    kinds = []
    if settings.smtp_host:
        kinds.append("email")
    if settings.webhook_url:
        kinds.append("webhook")
    return tuple(kinds)


def ticket_payload(ticket: Ticket) -> dict[str, Any]:
    return {"event": "ticket_created", "ticket": ticket_record(ticket)}


def ticket_email(ticket: Ticket, policy: SupportPolicy, settings: Settings) -> EmailMessage:
    due_local = ticket.response_due_at.astimezone(policy.tz)
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = settings.team_email
    message["Subject"] = f"[{ticket.severity.upper()}] {ticket.number}: {ticket.product} {ticket.version}"
    message["Reply-To"] = ticket.email
    lines = [
        f"New {ticket.severity} ticket {ticket.number} from {ticket.name} <{ticket.email}> via {ticket.channel}.",
        f"First response due: {due_local:%A %d %B %Y %H:%M} ({policy.doc.company.timezone_label})",
        "",
        f"Product: {ticket.product} {ticket.version}",
        f"Category: {ticket.category}",
        f"Description: {ticket.description}",
        f"Already tried: {ticket.tried}",
        f"Impact: {ticket.impact}",
        "",
        "Transcript:",
    ]
    lines += [f"  [{turn['at']}] {turn['speaker']}: {turn['text']}" for turn in ticket.transcript]
    message.set_content("\n".join(lines))
    return message


BOOKING_HEADLINES = {
    "booking_created": "{name} booked a call with the technical team about ticket {number}.",
    "booking_moved": "{name} moved their call with the technical team about ticket {number} to a new time.",
    "booking_pending": (
        "{name} booked a call with the technical team about ticket {number}, "
        "but the calendar could not be reached."
    ),
    "booking_cancelled": "{name} cancelled their call with the technical team about ticket {number}.",
    "calendar_cleanup": (
        "The call about ticket {number} was cancelled or moved, but its calendar event could not be "
        "deleted: delete it by hand."
    ),
}


def booking_payload(event: str, ticket: Ticket, booking: Booking) -> dict[str, Any]:
    payload = ticket_payload(ticket)
    payload["event"] = event
    payload["booking"] = booking_record(booking)
    return payload


def calendar_state(booking: Booking) -> str:
    """One line for the team: does the calendar event exist, and what to do if not."""
    if booking.status == "cancelled":
        if booking.calendar_event_id:
            return f"Calendar event {booking.calendar_event_id}: the call is cancelled; the event should be gone."
        return "The call is cancelled; the slot is free again."
    if booking.calendar_event_id and booking.meet_url:
        return f"Calendar event: created in the team calendar (id {booking.calendar_event_id})."
    if booking.calendar_event_id:
        return (
            f"Calendar event: created (id {booking.calendar_event_id}) but Google has not made the Meet link "
            "yet: check the event and send the customer the link."
        )
    if booking.status == "booked":
        return "Calendar event: none (calls use the fixed Meet room); add the attached invitation to the team calendar."
    return (
        "Calendar event: NOT created (the calendar was unreachable). Create it from the attached invitation "
        "and send the customer the Meet link; the slot is held."
    )


def booking_email(
    event: str, ticket: Ticket, booking: Booking, policy: SupportPolicy, settings: Settings
) -> EmailMessage:
    """The team's email about a booking; the .ics is attached unless the call is cancelled."""
    slot = Slot(booking.starts_at, booking.ends_at)
    zone = customer_zone(booking.customer_tz)
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = settings.team_email
    flag = {"booking_pending": " – calendar event NOT created", "calendar_cleanup": " – delete the calendar event"}
    cancelled = " – cancelled" if booking.status == "cancelled" else ""
    message["Subject"] = f"[CALL] {ticket.number}: {slot.label(policy)}{flag.get(event, cancelled)}"
    message["Reply-To"] = ticket.email
    headline = BOOKING_HEADLINES.get(event, "Call about ticket {number}: {event}.")
    lines = [
        headline.format(name=ticket.name, number=ticket.number, event=event),
        "",
        f"When: {slot.label(policy)}",
    ]
    if zone and zone.key != policy.tz.key:
        lines.append(f"      {slot.label(policy, zone)} (the customer's time)")
    lines += [
        f"Google Meet: {booking.meet_url or 'no link yet'}",
        calendar_state(booking),
        "",
        f"Customer: {ticket.name} <{ticket.email}>",
        f"Ticket: {ticket.number} [{ticket.severity}] {ticket.product} {ticket.version}",
        f"Description: {ticket.description}",
    ]
    message.set_content("\n".join(lines))
    if booking.status != "cancelled":
        message.add_attachment(
            invitation(ticket, booking, policy, settings, booking.updated_at),
            maintype="text", subtype="calendar", filename=f"call-{ticket.number}.ics", params={"method": "REQUEST"},
        )
    return message


class Notifier:
    """Sends one notification of a ticket (or of a ticket's booking) over the configured channel."""

    def __init__(self, settings: Settings, policy: SupportPolicy, session: aiohttp.ClientSession) -> None:
        self._settings = settings
        self._policy = policy
        self._session = session

    async def send(
        self,
        kind: str,
        ticket: Ticket,
        event: str = "ticket_created",
        booking: Booking | None = None,
        delivery_id: str | None = None,
    ) -> None:
        """Deliver one notification; `delivery_id` is the same on every retry of it."""
        if kind == "email":
            await self._email(ticket, event, booking, delivery_id)
        elif kind == "webhook":
            await self._webhook(ticket, event, booking, delivery_id)
        else:
            raise DeliveryFailed(f"unknown notification kind {kind!r}")

    async def _email(
        self, ticket: Ticket, event: str = "ticket_created", booking: Booking | None = None, delivery_id: str | None = None
    ) -> None:
        s = self._settings
        if booking is not None:
            message = booking_email(event, ticket, booking, self._policy, s)
        else:
            message = ticket_email(ticket, self._policy, s)
        if delivery_id:
            # Mail systems drop a second copy with the same Message-ID.
            message["Message-ID"] = f"<{delivery_id}@{s.mail_from.rpartition('@')[2] or 'makana.example'}>"
        start_tls: bool | None = {"always": True, "never": False}.get(s.smtp_starttls)
        try:
            await aiosmtplib.send(
                message,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username or None,
                password=s.smtp_password or None,
                start_tls=start_tls,
                timeout=s.smtp_timeout_s,
            )
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
            raise DeliveryFailed(f"email: {type(exc).__name__}: {exc}") from exc

    async def _webhook(
        self, ticket: Ticket, event: str = "ticket_created", booking: Booking | None = None, delivery_id: str | None = None
    ) -> None:
        s = self._settings
        payload = booking_payload(event, ticket, booking) if booking is not None else ticket_payload(ticket)
        if delivery_id:
            payload = {"delivery_id": delivery_id, **payload}
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(s.webhook_secret, body)}
        if delivery_id:
            headers[DELIVERY_HEADER] = delivery_id
        try:
            async with self._session.post(
                s.webhook_url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=s.webhook_timeout_s)
            ) as response:
                if not 200 <= response.status < 300:
                    raise DeliveryFailed(f"webhook answered HTTP {response.status}")
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise DeliveryFailed(f"webhook: {type(exc).__name__}") from exc


def backoff(attempts: int) -> dt.timedelta:
    """5 s, 10 s, 20 s, … capped at 30 minutes."""
    return dt.timedelta(seconds=min(5 * 2**attempts, 1800))


async def deliver_due(store: Store, notifier: Notifier, now: dt.datetime) -> int:
    """Claim the due notifications and try each once; return how many were delivered.

    Dead letters (attempts exhausted) are never selected, so they cannot stall the outbox.
    """
    delivered = 0
    for item in await store.claim_due_notifications(now, CLAIM_LEASE):
        delivered += await _deliver_one(store, notifier, item, now)
    return delivered


async def _deliver_one(store: Store, notifier: Notifier, item: Notification, now: dt.datetime) -> int:
    ticket = await store.get_ticket_by_id(item.ticket_id)
    # A booking notification describes the booking as it is when sent (it may have moved on).
    booking = await store.get_booking(item.booking_id) if item.booking_id is not None else None
    try:
        await notifier.send(item.kind, ticket, item.event, booking, item.delivery_id)
    except DeliveryFailed as exc:
        dead = item.attempts + 1 >= MAX_ATTEMPTS
        log.warning(
            "notification %s of %s failed (attempt %d%s): %s",
            item.kind, ticket.number, item.attempts + 1, ", giving up: dead letter" if dead else "", exc,
        )
        await store.mark_failed(item.id, str(exc), now + backoff(item.attempts), dead=dead)
        return 0
    await store.mark_delivered(item.id, now)
    log.info("notified the team of %s by %s", ticket.number, item.kind)
    return 1


async def run_outbox(store: Store, notifier: Notifier, interval_s: float, clock: Callable[[], dt.datetime]) -> None:
    """Deliver due notifications forever (cancel the task to stop)."""
    while True:
        try:
            await deliver_due(store, notifier, clock())
        except Exception:  # the loop must survive a database hiccup; it is logged
            log.exception("outbox delivery round failed")
        await asyncio.sleep(interval_s)
