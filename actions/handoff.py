"""Action of the "talk to a human" journey: say who is there and how to reach them."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions import resources
from bot.answers import hours_text, status_text


class ActionRequestHuman(Action):
    """Tell the customer whether the team is in and which channels reach a person."""

    def name(self) -> str:
        return "action_request_human"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        policy = resources.policy()
        now = resources.now()
        contact = policy.doc.contact
        dispatcher.utter_message(
            text=(
                f"Our support team works {hours_text(policy)}. {status_text(policy, now)} "
                f"You can email {contact.email} or call {contact.phone} in business hours."
            )
        )
        return []
