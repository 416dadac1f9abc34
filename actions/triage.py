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


async def triage(description: str, impact: str = "") -> Triaged:
    """The proposal and its reason (the encoder runs in a worker thread)."""
    model = await resources.triage()

    def work() -> Triaged:
        proposal = model.propose(description, impact)
        return Triaged(proposal, model.explain(description, impact, proposal.severity))

    return await asyncio.to_thread(work)


def open_ticket_button(policy: Any, severity: str) -> dict[str, str]:
    name = policy.severity(severity).name
    return {"title": f"Open a {name} ticket now", "payload": f'/request_human{{"urgency":"{severity}"}}'}


async def urgent_routing(
    dispatcher: CollectingDispatcher, tracker: Tracker, message: str, also: str = ""
) -> list[EventType] | None:
    """If `message` reports a Critical or High problem, say so and offer the ticket; else None.

    `also` is a sentence said before the button (why a call needs the ticket).
    """
    if message.startswith("/") or len(message.split()) < MIN_DESCRIPTION_WORDS:
        return None
    triaged = await triage(message)
    if not triaged.proposal.urgent:
        return None
    policy = resources.policy()
    severity = triaged.proposal.severity
    dispatcher.utter_message(
        text=f"{urgent_text(policy, severity, triaged.reason.text(policy), resources.now())} {also}".strip(),
        buttons=[open_ticket_button(policy, severity)],
    )
    return [SlotSet("urgent_severity", severity), SlotSet("urgent_description", message)]
