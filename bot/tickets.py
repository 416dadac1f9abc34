"""Journey 3: turn a collected support request into a ticket.

`open_ticket` builds the redacted transcript from the conversation's events, computes
the first-response deadline from the policy and stores the request, with the category
and the severity the triage proposed (bot/triage.py), once per submission (a retried
or double submission returns the same ticket).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable

from bot.policy import SupportPolicy
from bot.redaction import redact
from bot.transcripts import transcript_from_events
from bot.store import Store, Ticket, TicketDraft, TicketNotFound

FIELDS = ("name", "email", "product", "version", "description", "tried", "impact", "severity")


@dataclass(frozen=True)
class SupportRequest:
    """The validated answers of the support-request form."""

    name: str
    email: str
    product: str
    version: str
    description: str
    tried: str
    impact: str
    severity: str
    category: str = "technical_support"
    proposed_severity: str | None = None

    def submission_key(self, conversation_id: str) -> str:
        """Same conversation and same answers: same key, so a retry finds the first ticket."""
        payload = json.dumps([conversation_id, *[getattr(self, f) for f in FIELDS]], ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()


async def open_ticket(
    store: Store,
    policy: SupportPolicy,
    request: SupportRequest,
    conversation_id: str,
    channel: str,
    events: Iterable[dict[str, Any]],
    now: dt.datetime,
    notify: tuple[str, ...] = (),
    owner_user_id: str | None = None,
) -> tuple[Ticket, bool]:
    """Store the ticket (idempotently) with its transcript and policy deadline."""
    draft = TicketDraft(
        submission_key=request.submission_key(conversation_id),
        conversation_id=conversation_id,
        severity=request.severity,
        category=request.category,
        channel=channel,
        name=request.name,
        email=request.email,
        product=request.product,
        version=request.version,
        description=redact(request.description),
        tried=redact(request.tried),
        impact=redact(request.impact),
        transcript=transcript_from_events(events),
        response_due_at=policy.response_due(request.severity, now),
        owner_user_id=owner_user_id,
        proposed_severity=request.proposed_severity,
    )
    return await store.create_ticket(draft, now, notify)


async def visible_ticket(store: Store, number: str, conversation_id: str, verified_user_id: str | None) -> Ticket | None:
    """The ticket `number` if this conversation or verified user may see it, else None.

    The same None for "no such ticket" and "not yours", so numbers cannot be probed.
    StoreUnavailable propagates."""
    try:
        ticket = await store.get_ticket(number)
    except TicketNotFound:
        return None
    return ticket if may_see(ticket, conversation_id, verified_user_id) else None


def may_see(ticket: Ticket, conversation_id: str, verified_user_id: str | None) -> bool:
    """A ticket is shown to the conversation that opened it, or to the verified in-app
    user who opened it (never to whoever merely knows the email typed into it)."""
    if ticket.conversation_id == conversation_id:
        return True
    return bool(verified_user_id) and ticket.owner_user_id == verified_user_id
