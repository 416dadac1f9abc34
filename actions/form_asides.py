"""Replies to the request form that are not answers: read them, and say the right thing.

bot/form_replies.py decides what a reply is (answer, question, request for a person,
cancel, correction, small talk, "I don't know"); these helpers gather its evidence from
the running assistant (the slot's validator, the knowledge base) and word the replies.
The form's validator (actions/support_request.py) and `action_form_aside` (rules for a
status question during the form and for asides at the summary) use them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import resources
from bot.policy_answers import hours_text
from bot.form_replies import Evidence, Verdict, sure_cancel
from bot.intake import InvalidField, apply_correction, check_slot
from bot.policy import SupportPolicy

log = logging.getLogger(__name__)

# Asides that leave the form question to be asked again, prefixed "Back to your request:".
ASIDES = ("question", "human", "smalltalk", "unknown", "correction", "status", "resume")
KEEP_HOURS = 24


async def read_reply(tracker: Tracker, slot: str, text: str) -> Verdict:
    """What `text`, typed in reply to the question for `slot`, is (bot/form_replies.py)."""
    policy = resources.policy()
    try:
        check_slot(policy, slot, text, tracker.slots)
        fits = True
    except InvalidField:
        fits = False
    faq = await resources.answerer()
    kb = faq.relevance(text)
    model = await resources.form_replies()
    verdict = await asyncio.to_thread(model.classify, text, slot, Evidence(fits, kb))
    log.info("form reply at %s: %s (%.2f)", slot, verdict.label, verdict.confidence)
    return verdict


async def answer_question(dispatcher: CollectingDispatcher, text: str) -> None:
    """Answer a question asked in the middle of the request, from the knowledge base."""
    faq = await resources.answerer()
    result = faq.answer(text, resources.now())
    if result.kind == "answer":
        dispatcher.utter_message(text=result.text)
    elif result.kind == "suggest":
        titles = "; ".join(title for _, title in result.suggestions)
        dispatcher.utter_message(
            text=f"I'm not sure I understood. These help-centre articles may help: {titles}. "
            "Our team can also answer it on your ticket."
        )
    else:
        dispatcher.utter_message(
            text="I couldn't find an answer to that in our help centre; our team can answer it on your ticket."
        )


def person_text(policy: SupportPolicy, remaining: int) -> str:
    more = f"{remaining} more question{'s' if remaining != 1 else ''}" if remaining else "one last check"
    return (
        f"You're on your way to a person: this request goes straight to our support team ({hours_text(policy)}), "
        f"who reply by email. {more.capitalize()} and it's with them."
    )


def smalltalk_text(intent: str | None) -> str:
    return {"greet": "Hello again!", "thank": "You're welcome!", "goodbye": "Before you go:"}.get(intent or "", "")


def affirmed(tracker: Tracker) -> bool:
    """Whether the NLU read the latest message as a yes, or as a request to send it, among its two best intents."""
    ranking = tracker.latest_message.get("intent_ranking") or []
    return any(r.get("name") in ("affirm", "submit_request") for r in ranking[:2])


def kept_request(tracker: Tracker, now: dt.datetime) -> dict[str, Any] | None:
    """The unfinished request kept at a cancel, if it is less than 24 hours old."""
    kept = tracker.get_slot("kept_request")
    if not isinstance(kept, dict) or not isinstance(kept.get("slots"), dict):
        return None
    try:
        saved = dt.datetime.fromisoformat(str(kept.get("saved_at")))
    except ValueError:
        return None
    if now - saved > dt.timedelta(hours=KEEP_HOURS):
        return None
    return kept


class ActionFormAside(Action):
    """A status question during the form, or an aside at the summary, then back to the request."""

    def name(self) -> str:
        return "action_form_aside"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        policy = resources.policy()
        text = str(tracker.latest_message.get("text") or "")
        intent = tracker.get_intent_of_latest_message()
        at_summary = bool(tracker.get_slot("request_ready")) and tracker.active_loop_name is None
        if intent == "check_ticket_status":
            number = next(tracker.get_latest_entity_values("ticket_number"), None)
            requested = tracker.get_slot("requested_slot")
            if not number and requested and tracker.active_loop_name and not text.startswith("/"):
                # Rasa's NLU heard a status question ("checked the bank statement"); the reply
                # model decides whether it answers the form's question instead.
                if (await read_reply(tracker, str(requested), text)).label == "answer":
                    return [SlotSet(str(requested), text), FollowupAction(tracker.active_loop_name)]
            if number:
                from actions.ticket_status import ActionTicketStatus

                await ActionTicketStatus().run(dispatcher, tracker, domain)
            else:
                dispatcher.utter_message(
                    text="The request we're filling in becomes a ticket when you confirm it, so it has no number yet."
                )
            return self._back(tracker, at_summary, "status")
        verdict = await read_reply(tracker, "severity", text)
        from actions.support_request import field_labels

        if sure_cancel(verdict):
            return [SlotSet("form_reply", "cancel"), FollowupAction("action_cancel_request")]
        if verdict.label == "correction":
            labels = field_labels(policy, tracker.get_slot("category"))
            changes, said = apply_correction(policy, text, dict(tracker.slots), labels)
            dispatcher.utter_message(text=said)
            if changes:
                return [SlotSet(k, v) for k, v in changes.items()] + [
                    SlotSet("request_ready", False), FollowupAction("support_request_form")
                ]
            return self._back(tracker, at_summary, "correction")
        if at_summary and verdict.label == "answer" and affirmed(tracker):
            # "yes, open it" that the NLU was unsure of: an answer to "Shall I open the ticket?"
            # with yes among the NLU's two best readings.
            return [SlotSet("form_reply", None), FollowupAction("action_create_ticket")]
        if verdict.label == "human":
            dispatcher.utter_message(text=person_text(policy, 0))
        elif verdict.label in ("question", "unknown"):
            await answer_question(dispatcher, text)
        return self._back(tracker, at_summary, verdict.label)

    @staticmethod
    def _back(tracker: Tracker, at_summary: bool, label: str) -> list[EventType]:
        if at_summary:
            # The summary is shown again: the pending request survives the aside.
            return [SlotSet("form_reply", label), FollowupAction("action_summarize_request")]
        return [SlotSet("form_reply", label)]
