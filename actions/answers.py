"""Actions of the FAQ and policy journeys: answer, suggest, ask whether it helped."""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import resources
from actions.triage import urgent_routing

log = logging.getLogger(__name__)

class ActionAnswerQuestion(Action):
    """Answer from the knowledge base / policy; offer suggestions or escalation otherwise."""

    def name(self) -> str:
        return "action_answer_question"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        message = tracker.latest_message.get("text") or ""
        # A problem that triages Critical or High goes to a ticket now (issue 14).
        urgent = await urgent_routing(dispatcher, tracker, message)
        answerer = await resources.answerer()
        now = resources.now()
        if urgent is not None:
            # An answer that fits comes alongside (for example, how escalation works when
            # the customer reports a stuck ticket); suggestions and misses do not.
            alongside = answerer.answer(message, now)
            if alongside.kind == "answer":
                dispatcher.utter_message(text=alongside.text)
            return urgent + [SlotSet("faq_outcome", "urgent"), SlotSet("last_faq_id", alongside.entry_id if alongside.kind == "answer" else None)]
        chosen = next(
            (e.get("value") for e in tracker.latest_message.get("entities", []) if e.get("entity") == "faq_id"), None
        )
        if chosen and answerer.has(str(chosen)):
            # A "did you mean" button names the entry: answer it directly.
            text, entry_id, kind = answerer.render(str(chosen), now), str(chosen), "answer"
        else:
            result = answerer.answer(message, now)
            text, entry_id, kind = result.text, result.entry_id, result.kind
            if kind == "suggest":
                dispatcher.utter_message(
                    text=result.text,
                    buttons=[
                        {"title": title, "payload": f'/ask_question{{"faq_id":"{eid}"}}'} for eid, title in result.suggestions
                    ]
                    + [{"title": "None of these: talk to a human", "payload": "/request_human"}],
                )
                return [SlotSet("faq_outcome", "suggested"), SlotSet("last_faq_id", None), SlotSet("faq_misses", _misses(tracker) + 1)]
            if kind == "miss":
                # utter_faq_miss follows by rule
                return [SlotSet("faq_outcome", "missed"), SlotSet("last_faq_id", None), SlotSet("faq_misses", _misses(tracker) + 1)]
        dispatcher.utter_message(text=text)  # utter_ask_did_it_help follows by rule
        return [SlotSet("faq_outcome", "answered"), SlotSet("last_faq_id", entry_id)]


class ActionRecordFeedback(Action):
    """Log whether the last answer helped (the deflection report reads it)."""

    def name(self) -> str:
        return "action_record_feedback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        helped = tracker.get_intent_of_latest_message() == "affirm"
        # TODO(issue 8): store the feedback for the deflection report; logged for now.
        log.info("faq feedback: entry=%s helped=%s", tracker.get_slot("last_faq_id"), helped)
        # utter_glad_it_helped or utter_offer_escalation follows by rule
        return [SlotSet("faq_outcome", None)]


def _misses(tracker: Tracker) -> float:
    value = tracker.get_slot("faq_misses")
    return float(value) if isinstance(value, (int, float)) else 0.0


class ActionWarmUp(Action):
    """Load the encoder and index now (called once by the launcher after start-up).

    Not part of any conversation: it keeps the first customer's question from waiting
    for the model to load, which can outlast Rasa's REST timeout on a busy machine.
    """

    def name(self) -> str:
        return "action_warm_up"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        answerer = await resources.answerer()
        answerer.answer("warm up", resources.now())
        # The triage model loads in the background: both at once can outlast the server's
        # response timeout on a busy machine; a first message waits for it if needed.
        resources.warm_up_triage()
        return []
