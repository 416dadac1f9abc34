"""Actions of the Meet handoff: offer call slots, book, move or cancel the call.

The booking rules live in bot/call_booking.py (slots from the policy and existing bookings,
the database enforces one booking per slot, the calendar call and its failures).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import resources
from actions.answers import answer_instead
from actions.urgent_routing import propose, urgent_routing
from bot import call_booking
from bot.call_slots import qualifies
from bot.clock import customer_zone, zone_in_events
from bot.intake import call_text, call_to_learn_text, may_describe_problem, on_call_text
from bot.store import Booking, StoreUnavailable, Ticket


def customer_tz(tracker: Tracker) -> str | None:
    """The IANA zone the customer's messages carry (kept with a booking), or None."""
    zone = zone_in_events(tracker.events)
    return zone.key if zone else None


async def ticket_in_reach(dispatcher: CollectingDispatcher, tracker: Tracker) -> Ticket | None:
    """The ticket named in the message (or opened in this conversation), if the customer may use it."""
    number = next(tracker.get_latest_entity_values("ticket_number"), None) or tracker.get_slot("ticket_number")
    if not number:
        dispatcher.utter_message(text="Which ticket is this about (like MK-7Q4K2F)?")
        return None
    ticket = await resources.visible_ticket(tracker, str(number))
    if ticket is None:
        dispatcher.utter_message(
            text=f"I can't manage a call for ticket {str(number).upper()} in this conversation; only the "
            "conversation that opened it, or its owner signed in to the app, can."
        )
        return None
    return ticket


def when(booking: Booking, tz_name: str | None) -> str:
    """The call's time as the customer reads it (their zone now, else the one they booked in)."""
    zone = customer_zone(tz_name or booking.customer_tz)
    return call_booking.slot_of(booking).customer_label(resources.policy(), zone)


def invite_link(ticket: Ticket, sender: str) -> str:
    return f"{resources.settings().public_url.rstrip('/')}/api/conversations/{sender}/tickets/{ticket.number}/invite.ics"


class ActionOfferSlots(Action):
    """Offer the next free call slots (or other times, or new times for a move)."""

    def name(self) -> str:
        return "action_offer_slots"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        if await resources.misrouted(tracker):
            return await answer_instead(dispatcher, tracker, domain)  # "share my Google Calendar": a question
        if asks_other_times_unoffered(tracker):
            return await answer_instead(dispatcher, tracker, domain)  # "another useless answer": no times to refuse
        has_number = next(tracker.get_latest_entity_values("ticket_number"), None) or tracker.get_slot("ticket_number")
        if not has_number:
            return await ask_for_ticket_first(dispatcher, tracker)
        try:
            ticket = await ticket_in_reach(dispatcher, tracker)
            if ticket is None:
                return []
        except StoreUnavailable:
            dispatcher.utter_message(text="Sorry, I can't reach our booking system right now. Please try again in a minute.")
            return []
        return await offer_call(dispatcher, tracker, ticket)


def asks_other_times_unoffered(tracker: Tracker) -> bool:
    """Typed words Rasa heard as "other times" in a conversation that was never offered
    call times: there is nothing to refuse, so they are not about a call ("wow. another
    useless answer. thanks for nothing" came as other_times and got the call's ticket
    rule). A button, a form, or times offered earlier keep the journey."""
    latest = tracker.latest_message or {}
    text = str(latest.get("text") or "")
    if (latest.get("intent") or {}).get("name") != "other_times" or not text or text.startswith("/"):
        return False
    if tracker.active_loop_name or tracker.get_slot("offered_until"):
        return False
    return not any(e.get("event") == "action" and e.get("name") == "action_offer_slots" for e in tracker.events)


async def ask_for_ticket_first(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    """A call without a ticket: say in one sentence which tickets get one, and offer to open it.

    When the same message describes an urgent problem, the urgency is acknowledged and
    the button opens a ticket of that severity with the description prefilled.
    """
    policy = resources.policy()
    events: list[EventType] = [SlotSet("call_requested", True)]
    if tracker.active_loop_name:
        dispatcher.utter_message(text=call_text(policy, during_request=True))
        return events
    message = tracker.latest_message.get("text") or ""
    proposal = await propose(message) if may_describe_problem(message) else None
    urgent = await urgent_routing(dispatcher, tracker, message, also=call_text(policy), proposal=proposal)
    if urgent is not None:
        return events + urgent
    # The triage reads no problem in it, or a Low one (the policy's Low is a question, a
    # cosmetic problem or a feature request: "show me on a video call how to set up recurring
    # invoices? nothing is wrong, I'm just new"): a ticket would lead to no call, so say
    # where learning how something works is.
    learning = proposal is not None and (not proposal.is_problem or proposal.severity == "low")
    text = call_to_learn_text(policy) if learning else call_text(policy)
    dispatcher.utter_message(text=text, buttons=[{"title": "Open a ticket", "payload": "/request_human"}])
    return events


async def offer_call(dispatcher: CollectingDispatcher, tracker: Tracker, ticket: Ticket) -> list[EventType]:
    """Offer call slots for a ticket (or other times, or new times for a move).

    A Critical ticket outside business hours is with the on-call engineer already: say
    so, and offer the earliest slot.
    """
    try:
        policy = resources.policy()
        if not qualifies(policy, ticket.severity):
            levels = " and ".join(policy.severity(s).name.lower() for s in policy.doc.process.meeting_severities)
            dispatcher.utter_message(
                text=f"Calls with the technical team are for {levels} tickets; {ticket.number} is "
                f"{policy.severity(ticket.severity).name.lower()}. Our team will reply by email."
            )
            return []
        store = await resources.store()
        intent = tracker.get_intent_of_latest_message()
        existing = await store.booking_for_ticket(ticket.id)
        mode = "move" if existing is not None and intent in ("move_call", "other_times") else "book"
        if existing is not None and mode == "book":
            dispatcher.utter_message(
                text=f"You already have a call for {ticket.number}: {when(existing, customer_tz(tracker))}.",
                buttons=[
                    {"title": "Move it", "payload": f'/move_call{{"ticket_number":"{ticket.number}"}}'},
                    {"title": "Cancel it", "payload": f'/cancel_call{{"ticket_number":"{ticket.number}"}}'},
                ],
            )
            return [SlotSet("ticket_number", ticket.number)]
        after = None
        if intent == "other_times" and tracker.get_slot("offered_until"):
            after = dt.datetime.fromisoformat(tracker.get_slot("offered_until"))
        now = resources.now()
        on_call = on_call_text(policy, ticket.severity, ticket.created_at, now) if after is None else None
        offer = await call_booking.offer_slots(
            store, resources.calendar(), policy, resources.settings(), now, after, customer_tz(tracker),
            count=1 if on_call else 3,
        )
    except StoreUnavailable:
        dispatcher.utter_message(text="Sorry, I can't reach our booking system right now. Please try again in a minute.")
        return []
    if not offer.slots:
        dispatcher.utter_message(text="I couldn't find a free slot in the next weeks; our team will propose a time by email.")
        return [SlotSet("offered_until", None)]
    verb = "move your call to" if mode == "move" else "book a call with our technical team at"
    text = f"I can {verb} one of these times:"
    if on_call and mode == "book":
        text = f"{on_call} The earliest call with our technical team I can book is:"
    dispatcher.utter_message(
        text=text,
        buttons=[
            {"title": label, "payload": f'/choose_slot{{"slot_start":"{slot.start.isoformat()}"}}'}
            for slot, label in zip(offer.slots, offer.labels)
        ]
        + [{"title": "Other times", "payload": "/other_times"}],
    )
    return [
        SlotSet("ticket_number", ticket.number),
        SlotSet("offered_until", offer.slots[-1].start.isoformat()),
        SlotSet("booking_mode", mode),
    ]


class ActionBookSlot(Action):
    """Book (or move to) the slot the customer picked."""

    def name(self) -> str:
        return "action_book_slot"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        raw = next(tracker.get_latest_entity_values("slot_start"), None)
        try:
            start = dt.datetime.fromisoformat(str(raw)) if raw else None
        except ValueError:
            start = None
        if start is None or start.tzinfo is None:
            dispatcher.utter_message(text="Please pick one of the times from the buttons, or ask for other times.")
            return []
        try:
            ticket = await ticket_in_reach(dispatcher, tracker)
            if ticket is None:
                return []
            store, calendar, policy, settings = await resources.store(), resources.calendar(), resources.policy(), resources.settings()
            now = resources.now()
            if tracker.get_slot("booking_mode") == "move":
                outcome = await call_booking.move(store, calendar, policy, settings, ticket, start, now)
            else:
                outcome = await call_booking.book(store, calendar, policy, settings, ticket, start, customer_tz(tracker), now)
        except StoreUnavailable:
            dispatcher.utter_message(text="Sorry, I can't reach our booking system right now. Please try again in a minute.")
            return []
        tz = customer_tz(tracker)
        if outcome.status in ("booked", "pending") and outcome.booking is not None:
            time_text = when(outcome.booking, tz)
            if outcome.status == "booked":
                text = f"Booked: your call about {ticket.number} is on {time_text}. Join with Google Meet: {outcome.meet_url}"
            else:
                text = (
                    f"Your call about {ticket.number} is reserved for {time_text}. Our calendar didn't answer just now, "
                    "so the Meet link is pending: our team has been told and will email it to you."
                )
            dispatcher.utter_message(text=f"{text}\nAdd it to your calendar: {invite_link(ticket, tracker.sender_id)}")
            return [SlotSet("offered_until", None), SlotSet("booking_mode", None)]
        if outcome.status == "already_booked" and outcome.booking is not None:
            dispatcher.utter_message(text=f"You already have a call for {ticket.number}: {when(outcome.booking, tz)}.")
            return []
        if outcome.status == "not_eligible":
            dispatcher.utter_message(text=f"Ticket {ticket.number} can't book a call (it is closed or not high enough in severity).")
            return []
        if outcome.status == "not_found":
            dispatcher.utter_message(text=f"Ticket {ticket.number} has no call to move. Say \"book a call\" to book one.")
            return [SlotSet("booking_mode", None)]
        # taken or no longer offerable: somebody else was quicker, or time moved on.
        dispatcher.utter_message(
            text="Sorry, that time has just been taken. Here are the next free times:",
        )
        return [SlotSet("offered_until", None)] + await ActionOfferSlots().run(dispatcher, tracker, domain)


class ActionCancelCall(Action):
    def name(self) -> str:
        return "action_cancel_call"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        if await resources.misrouted(tracker):
            return await answer_instead(dispatcher, tracker, domain)  # "the best laptop for video editing"
        try:
            ticket = await ticket_in_reach(dispatcher, tracker)
            if ticket is None:
                return []
            cancelled = await call_booking.cancel(
                await resources.store(), resources.calendar(), resources.settings(), ticket, resources.now()
            )
        except StoreUnavailable:
            dispatcher.utter_message(text="Sorry, I can't reach our booking system right now. Please try again in a minute.")
            return []
        if cancelled is None:
            dispatcher.utter_message(text=f"Ticket {ticket.number} has no call booked.")
        else:
            dispatcher.utter_message(
                text=f"Cancelled your call of {when(cancelled, customer_tz(tracker))} for {ticket.number}. The ticket stays open."
            )
        return [SlotSet("ticket_number", ticket.number), SlotSet("booking_mode", None)]
