"""Urgent routing: a message whose problem triages Critical or High goes to a ticket now.

The triage model (bot/triage.py) decides; these helpers only turn its proposal into
what the customer sees: the urgency acknowledged with the reason in their terms, the
policy's commitment for that severity, and one button that opens the ticket with the
description prefilled and the proposed severity (named on the button) accepted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import resources
from bot.intake import MIN_DESCRIPTION_WORDS, urgent_text
from bot.triage import Proposal, Reason


@dataclass(frozen=True)
class Triaged:
    proposal: Proposal
    reason: Reason


async def propose(description: str, impact: str = "") -> Proposal:
    """The triage's proposal alone (the encoder runs in a worker thread)."""
    model = await resources.triage()
    return await asyncio.to_thread(model.propose, description, impact)


async def explain(description: str, impact: str, severity: str) -> Reason:
    """The reason for `severity` in the customer's terms (encodes the clauses: only when said)."""
    model = await resources.triage()
    return await asyncio.to_thread(model.explain, description, impact, severity)


async def triage(description: str, impact: str = "") -> Triaged:
    """The proposal and its reason."""
    proposal = await propose(description, impact)
    return Triaged(proposal, await explain(description, impact, proposal.severity))


def open_ticket_button(policy: Any, severity: str) -> dict[str, str]:
    name = policy.severity(severity).name
    return {"title": f"Open a {name} ticket now", "payload": f'/request_human{{"urgency":"{severity}"}}'}


async def urgent_routing(
    dispatcher: CollectingDispatcher, tracker: Tracker, message: str, also: str = "",
    proposal: Proposal | None = None,
) -> list[EventType] | None:
    """If `message` reports a Critical or High problem, say so and offer the ticket; else None.

    `also` is a sentence said before the button (why a call needs the ticket); `proposal`
    is the message's triage when the caller has it already.
    """
    if message.startswith("/") or len(message.split()) < MIN_DESCRIPTION_WORDS:
        return None
    proposal = proposal or await propose(message)
    if not proposal.urgent:
        return None
    policy = resources.policy()
    severity = proposal.severity
    reason = await explain(message, "", severity)
    dispatcher.utter_message(
        text=f"{urgent_text(policy, severity, reason.text(policy), resources.now())} {also}".strip(),
        buttons=[open_ticket_button(policy, severity)],
    )
    return [SlotSet("urgent_severity", severity), SlotSet("urgent_description", message)]
