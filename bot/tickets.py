"""Journey 3: turn a collected support request into a ticket.

`open_ticket` builds the redacted transcript from the conversation's events, computes
the first-response deadline from the policy, categorises the request and stores it
once per submission (a retried or double submission returns the same ticket).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Iterable

from bot.policy import SupportPolicy
from bot.redaction import redact
from bot.store import Store, Ticket, TicketDraft

FIELDS = ("name", "email", "product", "version", "description", "tried", "impact", "severity")
CUSTOMER_SERVICE_WORDS = re.compile(
    r"\b(invoice|billing|bill|charge[ds]?|payment|refund|subscription|plan|price|pricing|account owner|receipt)\b",
    re.IGNORECASE,
)


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

    def submission_key(self, conversation_id: str) -> str:
        """Same conversation and same answers: same key, so a retry finds the first ticket."""
        payload = json.dumps([conversation_id, *[getattr(self, f) for f in FIELDS]], ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()


def categorise(request: SupportRequest) -> str:
    """One of the policy's support types: troubleshooting, customer service, technical support."""
    if request.severity in ("critical", "high"):
        return "troubleshooting"
    if CUSTOMER_SERVICE_WORDS.search(f"{request.description} {request.impact}"):
        return "customer_service"
    return "technical_support"


def transcript_from_events(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every customer and assistant turn, in order, with UTC timestamps, redacted.

    A button click reaches the tracker as its payload; it is shown as the title of
    the button the customer clicked.
    """
    turns: list[dict[str, Any]] = []
    button_titles: dict[str, str] = {}
    for event in events:
        kind = event.get("event")
        if kind not in ("user", "bot"):
            continue
        text = event.get("text") or ""
        data = event.get("data") or {}
        if kind == "bot":
            button_titles = {b.get("payload", ""): b.get("title", "") for b in data.get("buttons") or []}
            if not text and data.get("buttons"):
                text = " / ".join(b.get("title", "") for b in data["buttons"])
        elif text in button_titles:
            text = button_titles[text]
        if not text:
            continue
        at = dt.datetime.fromtimestamp(float(event.get("timestamp") or 0), tz=dt.timezone.utc)
        turns.append(
            {"at": at.isoformat(), "speaker": "customer" if kind == "user" else "assistant", "text": redact(text)}
        )
    return turns


async def open_ticket(
    store: Store,
    policy: SupportPolicy,
    request: SupportRequest,
    conversation_id: str,
    channel: str,
    events: Iterable[dict[str, Any]],
    now: dt.datetime,
    notify: tuple[str, ...] = (),
) -> tuple[Ticket, bool]:
    """Store the ticket (idempotently) with its transcript and policy deadline."""
    draft = TicketDraft(
        submission_key=request.submission_key(conversation_id),
        conversation_id=conversation_id,
        severity=request.severity,
        category=categorise(request),
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
    )
    return await store.create_ticket(draft, now, notify)


def may_see(ticket: Ticket, conversation_id: str, verified_email: str | None) -> bool:
    """A ticket is shown to the conversation that opened it, or to its verified owner."""
    if ticket.conversation_id == conversation_id:
        return True
    return bool(verified_email) and verified_email.strip().lower() == ticket.email.lower()
