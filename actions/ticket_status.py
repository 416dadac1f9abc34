"""Action of the ticket-status journey: look a ticket up for its owner only."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import resources
from actions.answers import answer_instead, offer_people_first
from bot.policy_answers import format_time
from bot.call_booking import slot_of
from bot.store import StoreUnavailable

STATUS_TEXT = {
    "open": "open, waiting for our team",
    "pending": "pending, waiting for your reply",
    "resolved": "resolved",
    "closed": "closed",
}


class ActionTicketStatus(Action):
    def name(self) -> str:
        return "action_ticket_status"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        if await resources.misrouted(tracker):
            return await answer_instead(dispatcher, tracker, domain)  # "the best laptop for…": a question
        said = str(tracker.latest_message.get("text") or "")
        if said and not said.startswith("/"):
            # People first here too: "I opened a ticket on Monday … not one reply. Is anyone
            # actually working there?? Really disappointed." got "Which ticket?" alone.
            await offer_people_first(dispatcher, said)
        number = next(tracker.get_latest_entity_values("ticket_number"), None) or tracker.get_slot("ticket_number")
        if not number:
            typed = resources.ticket_reference(said)
            if typed:
                dispatcher.utter_message(
                    text=f"{typed.group(0).upper()} isn't one of our ticket numbers: they are MK- and six letters or "
                    "digits, like MK-7Q4K2F (never 0, 1, I, L or O). Could you check it?"
                )
            else:
                dispatcher.utter_message(text="Which ticket? Please give me its number, like MK-7Q4K2F.")
            return []
        policy = resources.policy()
        try:
            ticket = await resources.visible_ticket(tracker, str(number))
        except StoreUnavailable:
            dispatcher.utter_message(text="Sorry, I can't reach our ticket system right now. Please try again in a minute.")
            return []
        # The same answer for "no such ticket" and "not yours": numbers must not be probed.
        if ticket is None:
            dispatcher.utter_message(
                text=f"I can't show ticket {str(number).upper()} in this conversation. I can only show a ticket to "
                "the conversation that opened it or to its owner signed in to the app. You can also email "
                f"{policy.doc.contact.email} from the address on the ticket."
            )
            return []
        now = resources.now()
        text = (
            f"Ticket {ticket.number} ({policy.severity(ticket.severity).name}, {ticket.product} {ticket.version}) is "
            f"{STATUS_TEXT.get(ticket.status, ticket.status)}."
        )
        if ticket.status == "open":
            verb = "is due" if ticket.response_due_at > now else "was due"
            text += f" Our first response {verb} {format_time(policy, ticket.response_due_at, now)}."
        booking = await (await resources.store()).booking_for_ticket(ticket.id)
        if booking is not None:
            text += f" Your call with our technical team: {slot_of(booking).label(policy)}."
        dispatcher.utter_message(text=text)
        return [SlotSet("ticket_number", ticket.number)]
