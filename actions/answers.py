"""Actions of the FAQ and policy journeys: answer, suggest, ask whether it helped."""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import resources
from actions.urgent_routing import article_fixes, propose, urgent_routing
from bot.policy_answers import described_severity
from bot.faq import FaqResult, asks_something, questions_in
from bot.language import reply as language_reply
from bot.triage import Proposal, imagined_situation

log = logging.getLogger(__name__)

FEEDBACK_PROMPT = "Did this answer your question?"
FEEDBACK_BUTTONS = [{"title": "Yes, thanks", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]
PERSON_BUTTON = {"title": "Talk to a person", "payload": "/request_human"}
PEOPLE_FIRST = (
    "I'm sorry this has been frustrating. A person from our support team can take this over: "
    "say the word or use the button, and I'll pass it on with everything you've told me."
)
ENGLISH_NOTE = "(This assistant answers in English for now; you can also email us at {email} or talk to a person.)"


# Policy entries that say how to reach a person (how requests are made, the channels, the
# contacts, escalation, what a request must include): the answer to a question about
# reaching us, and no answer to a request to be put through (which the person check
# tells apart, bot/routes.py). A policy fact can come from any of them ("could you open a
# ticket for me" is close to the sentence on one ticket per problem).
HOW_TO_REACH_US = {"process", "channels", "contact", "escalation", "responsibilities"}


async def offer_people_first(dispatcher: CollectingDispatcher, message: str) -> bool:
    """The apology and the offer of a person, when the message is frustrated, angry, a
    repeated failure or asks for a person (bot/frustration.py); whether it was offered."""
    if not await resources.people_first(message):
        return False
    dispatcher.utter_message(text=PEOPLE_FIRST, buttons=[PERSON_BUTTON])
    return True


def reply_in_language(dispatcher: CollectingDispatcher, code: str) -> list[EventType]:
    """The short fixed reply in the customer's language (bot/language.py): the assistant
    answers in English, our email, and a button to talk to a person."""
    email = resources.policy().doc.contact.email
    text, button = language_reply(code, email)
    dispatcher.utter_message(
        text=f"{text}\n{ENGLISH_NOTE.format(email=email)}", buttons=[{"title": button, "payload": "/request_human"}]
    )
    return [SlotSet("language", code), SlotSet("faq_outcome", "other_language"), SlotSet("last_faq_id", None)]


def details_button(entry_id: str) -> dict[str, str]:
    return {"title": "More details", "payload": f'/ask_question{{"faq_id":"{entry_id}"}}'}


class ActionAnswerQuestion(Action):
    """Answer from the knowledge base / policy; offer suggestions or escalation otherwise.

    In order: a message in another language gets the short fixed reply in it; a request
    for a person or a ticket with no question in it to answer starts the request form
    (the person check, bot/routes.py); a frustrated customer or a request for a person
    gets an apology and the offer of a person first; an urgent problem goes to a ticket
    (issue 14); then each question in the message (up to three) is answered, the fact
    asked first. A message answered with the response times that the triage reads as no
    problem has its story (the sentences that ask nothing) triaged alone
    (`_reported_problem`): a problem told before "how soon will someone get back to me?"
    gets its severity's deadline and the urgent offer.
    """

    def name(self) -> str:
        return "action_answer_question"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        message = tracker.latest_message.get("text") or ""
        answerer = await resources.answerer()
        now = resources.now()
        chosen = next(
            (e.get("value") for e in tracker.latest_message.get("entities", []) if e.get("entity") == "faq_id"), None
        )
        if chosen and answerer.has(str(chosen)):
            # A "did you mean" or "more details" button names the entry: its full answer.
            result = answerer.answer_entry(str(chosen), now)
            _say(dispatcher, result, feedback=result.feedback)
            return [SlotSet("faq_outcome", "answered"), SlotSet("last_faq_id", str(chosen))]

        code = await resources.foreign_language(message)
        if code is not None:
            return reply_in_language(dispatcher, code)
        events: list[EventType] = [SlotSet("language", "en")]

        proposal = await propose(message)
        severity = await _situation_severity(message, proposal)
        results = answerer.answer_all(message, now, severity)
        if not proposal.is_problem and any(answerer.topic(r.entry_id) == "response_times" for r in results if r.kind == "answer"):
            reported = await _reported_problem(message)
            if reported is not None:
                proposal = reported
                severity = await _situation_severity(message, proposal)
                results = answerer.answer_all(message, now, severity)
        answered_ids = {r.entry_id for r in results if r.kind == "answer"}
        if (
            answered_ids <= HOW_TO_REACH_US and await resources.asks_for_person(tracker)
            and not await resources.asks_how_people_help(tracker, results)
        ):
            # "please open a ticket for this", "hand me over to a colleague of yours": a
            # request for a person that Rasa heard as something else, with no question in
            # it to answer but how to reach us. The request form starts (with its apology
            # when one is due): making the request beats describing how to make one.
            # Unless the words ask how people get involved rather than for one now ("who
            # looks at it after the agent?", bot/inquiry.py): the policy answers that.
            return events + [FollowupAction("action_request_human")]
        offered = await offer_people_first(dispatcher, message)
        # A problem that triages Critical or High goes to a ticket now (issue 14); a
        # message the answerer declines (not about Makana) is no Makana problem, and one
        # answered only by what support does not cover (a WooCommerce plugin, a router, a
        # contractor's script) is no covered product down: the answer says whom to ask.
        # Nor one a sure article fixes when the triage is not sure it is urgent (article_fixes).
        if (
            not all(r.kind == "decline" for r in results) and not answerer.not_covered(results)
            and not await article_fixes(message, proposal, results, answerer.topic)
        ):
            urgent = await urgent_routing(dispatcher, tracker, message, proposal=proposal)
            if urgent is not None:
                # An answer that fits comes alongside (for example, how escalation works
                # when the customer reports a stuck ticket); suggestions and misses do not.
                alongside = [r for r in results if r.kind == "answer"]
                for result in alongside:
                    _say(dispatcher, result, feedback=False)
                last = alongside[-1].entry_id if alongside else None
                return events + urgent + [SlotSet("faq_outcome", "urgent"), SlotSet("last_faq_id", last)]
        answered = [r for r in results if r.kind == "answer"]
        if len(results) == 1 and results[0].kind == "suggest":
            # After the apology too: the entries that may answer it beat "I couldn't find an
            # answer", and the person is offered in both bubbles.
            result = results[0]
            dispatcher.utter_message(text=result.text, buttons=_suggestion_buttons(result))
            return events + _suggested(tracker)
        declined = any(r.kind == "decline" for r in results)
        several_suggested = len(results) > 1 and any(r.kind == "suggest" for r in results)
        if not answered and not declined and not several_suggested:
            if offered:
                dispatcher.utter_message(text="I couldn't find an answer to that in our help centre, so a person is the best next step.")
                return events + [SlotSet("faq_outcome", "offered_person"), SlotSet("last_faq_id", None)]
            # utter_faq_miss follows by rule
            return events + [SlotSet("faq_outcome", "missed"), SlotSet("last_faq_id", None), SlotSet("faq_misses", _misses(tracker) + 1)]
        # One bubble per question; "did this help?" rides on the last article answered.
        asks_feedback = [r for r in answered if r.feedback][-1:]
        several = len(results) > 1
        for result in results:
            if result.kind == "answer":
                _say(dispatcher, result, feedback=result in asks_feedback)
            elif result.kind == "decline":
                dispatcher.utter_message(text=result.text, buttons=[] if offered else [PERSON_BUTTON])
            elif result.kind == "suggest" and several:
                dispatcher.utter_message(
                    text=f"About \u201c{result.question}\u201d: did you mean one of these?",
                    buttons=_suggestion_buttons(result),
                )
            elif several:
                dispatcher.utter_message(text=f"I couldn't find an answer to \u201c{result.question}\u201d.")
        if not answered and declined:
            return events + [SlotSet("faq_outcome", "declined"), SlotSet("last_faq_id", None)]
        if not answered:  # several questions, each with its "did you mean"
            return events + _suggested(tracker)
        return events + [SlotSet("faq_outcome", "answered"), SlotSet("last_faq_id", answered[-1].entry_id)]


async def _situation_severity(message: str, proposal: Proposal) -> str | None:
    """The severity a time question is answered for (bot/policy_answers.py described_severity).

    A question that imagines a situation ("if an important feature broke for most of our
    team, how long would a fix take?") is answered for the triage of that situation when
    it is Critical or High. A triaged severity counts only when its side is the more
    probable (settled_severity): a message rated Critical at P(Critical or High) 0.43
    gets the table of deadlines from now, not the one-hour answer."""
    clause = imagined_situation(message)
    imagined = None
    if clause:
        # Only an imagined Critical or High problem counts: "if I email you this minute"
        # or "if I report it today" is a clause too, about writing to us, not a situation.
        hypothetical = await propose(clause)
        if hypothetical.urgent:
            imagined = hypothetical.severity
    settled = proposal.settled_severity if proposal.is_problem else None
    return described_severity(message, settled, settled is not None, imagined)


async def _reported_problem(message: str) -> Proposal | None:
    """The problem a time question reports in its other sentences, or None.

    The triage reads a whole message as a problem or a question, and a report that ends
    with "If I log a ticket now how soon should someone get back to me?" reads as a
    question (P(problem) 0.30 on a nightly crash of both registers, 0.98 without its
    last sentence): it got the table of deadlines and no offer of a ticket. Asked only
    of a message answered with the response times, and only of the sentences that ask
    nothing (the story), when there are both."""
    parts = questions_in(message)
    story = [p for p in parts if not asks_something(p)]
    if not story or len(story) == len(parts):
        return None
    told = await propose(" ".join(story))
    return told if told.is_problem else None


def _suggested(tracker: Tracker) -> list[EventType]:
    """The slots after a "did you mean": nothing answered, one more miss counted."""
    return [SlotSet("faq_outcome", "suggested"), SlotSet("last_faq_id", None), SlotSet("faq_misses", _misses(tracker) + 1)]


def _suggestion_buttons(result: FaqResult) -> list[dict[str, str]]:
    """One button per suggested entry, and a person when none of them fits."""
    buttons = [{"title": title, "payload": f'/ask_question{{"faq_id":"{eid}"}}'} for eid, title in result.suggestions]
    return buttons + [{"title": "None of these: talk to a human", "payload": "/request_human"}]


def _say(dispatcher: CollectingDispatcher, result: FaqResult, feedback: bool) -> None:
    """One answer as one bubble: the text, "more details" for a policy fact, and the
    "did this help?" question with its buttons when the answer needs a confirmation."""
    buttons = [details_button(result.entry_id)] if result.details and result.entry_id else []
    text = result.text
    if feedback:
        text = f"{text}\n\n{FEEDBACK_PROMPT}"
        buttons += FEEDBACK_BUTTONS
    dispatcher.utter_message(text=text, buttons=buttons)


async def answer_instead(dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
    """Answer the message as a question, from inside an action Rasa picked by mistake.

    Inline rather than a FollowupAction: no rule follows "<journey>, then the answer", so
    Rasa's fallback would add "Sorry, I didn't understand" after the answer. The answer's
    slots are set as usual, so "did this help?" works the same.
    """
    events = await ActionAnswerQuestion().run(dispatcher, tracker, domain)
    if SlotSet("faq_outcome", "missed") in events:
        dispatcher.utter_message(response="utter_faq_miss")  # what the rule adds after a miss
    return events


class ActionCapabilities(Action):
    """Say what the assistant does, unless the question is about what something else does.

    Rasa's NLU hears "what can a user with the viewer role do" as a question about the
    assistant; the route check (bot/routes.py) reads it by meaning first.
    """

    def name(self) -> str:
        return "action_capabilities"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        if await resources.misrouted(tracker):
            return await answer_instead(dispatcher, tracker, domain)
        dispatcher.utter_message(response="utter_capabilities")
        return []


class ActionOutOfContext(Action):
    """A yes or a no with nothing asked: "didn't understand", unless it is no yes at all.

    Rasa's NLU has no words of Chinese, Japanese or Korean and hears most messages in them
    as "yes" (12 of the 15 such messages of data/languages, with 0.68 to 0.95); the
    language check reads the text, and a question in another language gets the reply in
    it rather than "Sorry, I didn't understand that".
    """

    def name(self) -> str:
        return "action_out_of_context"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        code = await resources.foreign_language(tracker.latest_message.get("text") or "")
        if code is not None:
            return reply_in_language(dispatcher, code)
        dispatcher.utter_message(response="utter_default")
        return []


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
        # Both are loaded here, before the launcher calls the server ready: lingua holds
        # the GIL while it loads its models (4 s), and the people-first model is fitted
        # on first use (seconds); a first customer message must wait for neither.
        await resources.foreign_language("warm up the language detector")
        await resources.people_first("warm up")
        # Then the triage model and the checks built on it, in a background task: if this
        # outlasts the server's response timeout on a busy machine, the launcher asks
        # again and waits on the same task (resources.warmed_up).
        await resources.warmed_up()
        return []
