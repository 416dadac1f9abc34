"""Tell the support team about new tickets: email (SMTP) and a signed webhook.

Notifications go through an outbox: `open_ticket` writes one row per channel in the
same transaction as the ticket, and `deliver_due` (run in the background by the web
service) sends them, retrying with backoff. The conversation never waits for SMTP or
the webhook, and a notification is never lost to a crash.

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

from bot.policy import SupportPolicy
from bot.settings import Settings
from bot.store import Notification, Store, Ticket

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Makana-Signature"
MAX_ATTEMPTS = 10


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
    return {
        "event": "ticket_created",
        "ticket": {
            "number": ticket.number,
            "status": ticket.status,
            "severity": ticket.severity,
            "category": ticket.category,
            "channel": ticket.channel,
            "name": ticket.name,
            "email": ticket.email,
            "product": ticket.product,
            "version": ticket.version,
            "description": ticket.description,
            "tried": ticket.tried,
            "impact": ticket.impact,
            "response_due_at": ticket.response_due_at.isoformat(),
            "created_at": ticket.created_at.isoformat(),
            "transcript": ticket.transcript,
        },
    }


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


class Notifier:
    """Sends one notification of a ticket over the configured channel."""

    def __init__(self, settings: Settings, policy: SupportPolicy, session: aiohttp.ClientSession) -> None:
        self._settings = settings
        self._policy = policy
        self._session = session

    async def send(self, kind: str, ticket: Ticket) -> None:
        if kind == "email":
            await self._email(ticket)
        elif kind == "webhook":
            await self._webhook(ticket)
        else:
            raise DeliveryFailed(f"unknown notification kind {kind!r}")

    async def _email(self, ticket: Ticket) -> None:
        s = self._settings
        start_tls: bool | None = {"always": True, "never": False}.get(s.smtp_starttls)
        try:
            await aiosmtplib.send(
                ticket_email(ticket, self._policy, s),
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username or None,
                password=s.smtp_password or None,
                start_tls=start_tls,
                timeout=s.smtp_timeout_s,
            )
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
            raise DeliveryFailed(f"email: {type(exc).__name__}: {exc}") from exc

    async def _webhook(self, ticket: Ticket) -> None:
        s = self._settings
        body = json.dumps(ticket_payload(ticket), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(s.webhook_secret, body)}
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
    """Try every due notification once; return how many were delivered."""
    delivered = 0
    for item in await store.due_notifications(now):
        if item.attempts >= MAX_ATTEMPTS:
            continue
        delivered += await _deliver_one(store, notifier, item, now)
    return delivered


async def _deliver_one(store: Store, notifier: Notifier, item: Notification, now: dt.datetime) -> int:
    ticket = await store.get_ticket_by_id(item.ticket_id)
    try:
        await notifier.send(item.kind, ticket)
    except DeliveryFailed as exc:
        log.warning("notification %s of %s failed (attempt %d): %s", item.kind, ticket.number, item.attempts + 1, exc)
        await store.mark_failed(item.id, str(exc), now + backoff(item.attempts))
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
