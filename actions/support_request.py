"""Actions of the escalation journey: collect the request, confirm it, open the ticket.

Validation, prefilling, triage and ticket creation live in bot/intake.py and bot/tickets.py; these
classes only read slots, call them and turn the outcome into messages and events.
"""

from __future__ import annotations

import logging
import asyncio
import re
from abc import ABC, abstractmethod
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActionExecutionRejected, ActiveLoop, EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import resources
from actions.form_asides import (
    ASIDES,
    answer_question,
    kept_request,
    person_text,
    read_reply,
    smalltalk_text,
)
from actions.answers import answer_instead
from actions.resources import verified_identity
from actions.urgent_routing import propose, triage
from bot.call_slots import qualifies
from bot.policy_answers import format_time, hours_text, severity_line, status_text
from bot.intake import (
    UNKNOWN_VERSION,
    emails_in,
    newest_version,
    ExcludedProduct,
    InvalidField,
    apply_correction,
    check_slot,
    find_product,
    may_describe_problem,
    on_call_text,
    Said,
    prefill as prefill_fields,
)
from bot.form_replies import label_to_act_on, sure_cancel
from bot.policy import SEVERITY_ORDER, SupportPolicy
from bot.routes import PERSON
from bot.live import LIVE_OFFER, live_availability
from bot.store import StoreUnavailable
from bot.tickets import FIELDS, SupportRequest, open_ticket

log = logging.getLogger(__name__)

FORM = "support_request_form"
REQUEST_SLOTS = (
    "description", "tried", "impact", "severity", "proposed_severity", "category", "urgent_severity",
    "urgent_description", "call_requested", "cancel_pending", "cancel_confirmation",
)
# Intents that never describe the problem: their messages are not prefilled as one.
NOT_A_DESCRIPTION = {
    "greet", "goodbye", "thank", "bot_capabilities", "affirm", "deny", "cancel", "correct_field",
    "check_ticket_status", "choose_slot", "other_times", "cancel_call", "move_call", "submit_request",
}
# Events that end one request: problem statements before them belong to an earlier one.
REQUEST_ENDS = {"action_create_ticket", "action_cancel_request"}
# Intents after which a rule starts the request form once action_request_human has run.
FORM_RULE_INTENTS = {PERSON, "submit_request"}


class ActionRequestHuman(Action):
    """Say who is there, then prefill what the conversation already told us (or pick up a kept request)."""

    def name(self) -> str:
        return "action_request_human"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        said = str(tracker.latest_message.get("text") or "")
        heard = (tracker.latest_message.get("intent") or {}).get("name")  # nlu_fallback included
        if heard == PERSON and await resources.misrouted(tracker) and not await resources.people_first(said):
            # Rasa heard a question as a request for a person ("I want to stop my makana
            # subscription", "how do I connect my airpods"): it is answered, and the form
            # that the rule would start next does not.
            return [*await answer_instead(dispatcher, tracker, domain), FollowupAction("action_listen")]
        if heard == PERSON and await resources.asks_how_people_help(tracker):
            # A question about how people get involved ("say the agent can't fix it, does it
            # go further up to someone more technical?"): the escalation levels answer it,
            # with the offer of a person when one is due, and no form starts.
            return [*await answer_instead(dispatcher, tracker, domain), FollowupAction("action_listen")]
        events = await self._start(dispatcher, tracker)
        if heard not in FORM_RULE_INTENTS:
            # Sent here by the answer action's person check: no rule starts the form after it.
            events.append(FollowupAction(FORM))
        return events

    async def _start(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
        policy = resources.policy()
        now = resources.now()
        found = await prefill(policy, tracker)
        kept = kept_request(tracker, now)
        if kept and not found.get("description") and tracker.active_loop_name is None:
            about = kept["slots"].get("description") or "your problem"
            dispatcher.utter_message(
                text=f"You have an unfinished request from earlier about “{about}”, so I'll continue it where you "
                "left off. Say \"cancel\" to drop it."
            )
            return [SlotSet(slot, value) for slot, value in kept["slots"].items()] + [
                SlotSet("kept_request", None), SlotSet("request_ready", False), SlotSet("faq_outcome", None),
            ]
        said = str(tracker.latest_message.get("text") or "")
        typed = bool(said) and not said.startswith("/")  # a button press is no message
        # People first: a typed request for a person (or frustration that Rasa heard as one)
        # gets an apology before the handover; a button press does not.
        sorry = (
            "I'm sorry about the trouble. A person from our team will take this on. "
            if typed and await resources.people_first(said) else ""
        )
        # A contact detail asked for on the way ("give me a phone number so I can talk to a
        # human") is given: the customer may prefer to ring rather than wait for the ticket.
        details = "".join(f"{d} " for d in (await resources.answerer()).asked_details(said)) if typed else ""
        text = (
            f"{sorry}{details}I'll pass this to our support team ({hours_text(policy, now)}). {status_text(policy, now)} "
            "I just need a few details so nobody has to ask you twice. Say \"cancel\" at any time to stop."
        )
        if found.get("description") and found.get("description") != tracker.get_slot("description"):
            text += f" I've noted the problem as: “{found['description']}”. If that's not it, say “change the problem”."
        dispatcher.utter_message(text=text)
        article = await while_you_wait(said) if typed else None
        if article:
            dispatcher.utter_message(text=f"While you wait, this may help:\n\n{article}")
        metadata = tracker.latest_message.get("metadata") or {}
        state = None
        if not metadata.get("live_declined"):
            try:
                state = await live_availability(await resources.store(), policy, resources.settings(), resources.now())
            except StoreUnavailable as exc:  # no offer then; the ticket path below still works
                log.warning("live chat availability unknown: %s", exc)
            if state is not None and state.available:
                # The widget shows "Chat with an agent now" / "Leave a ticket"; the form below
                # is the ticket path, and goes on if the customer answers it instead.
                dispatcher.utter_message(
                    text=LIVE_OFFER, json_message={"live_offer": {"agents_online": state.agents_online}}
                )
        description = found.get("description") or tracker.get_slot("description")
        if description and not tracker.get_slot("category"):
            found["category"] = (await propose(str(description))).category
        # faq_outcome is cleared so that a later "yes" confirms the request, not an old answer.
        return [SlotSet(slot, value) for slot, value in found.items()] + [
            SlotSet("request_ready", False),
            SlotSet("faq_outcome", None),
        ]


async def while_you_wait(said: str) -> str | None:
    """The knowledge-base article for the problem a request for a person states on the way
    ("You charged my card TWICE for this month's subscription. … I want to talk to a person,
    not a chatbot."), or None.

    The sentences that ask for a person (the person check, each sentence on its own) are set
    aside and the rest is answered as a question: only an article the index is sure of, and
    no policy section (the hours and the handover are said already). The person is still
    coming; the article is for the wait."""
    from bot.faq import questions_in

    sentences = questions_in(said)
    if len(sentences) < 2:
        return None
    asks = await resources.person_sentences(sentences)
    rest = " ".join(s for s, asking in zip(sentences, asks) if not asking)
    if not any(asks) or not rest:
        return None
    answerer = await resources.answerer()
    result = await asyncio.to_thread(answerer.answer, rest, resources.now())
    if result.kind != "answer" or answerer.topic(result.entry_id) is not None:
        return None
    return result.text


async def is_problem_statement(tracker: Tracker, text: str) -> bool:
    """Whether a message states the problem (bot/form_replies.py, read as an answer to the description question)."""
    if not may_describe_problem(text):
        return False
    return (await read_reply(tracker, "description", text)).label == "answer"


def request_messages(tracker: Tracker) -> list[Said]:
    """The customer's messages since the last request ended, each marked whether it may
    describe the problem (not a button payload, not an intent in NOT_A_DESCRIPTION)."""
    said: list[Said] = []
    for event in tracker.events:
        if event.get("event") == "action" and event.get("name") in REQUEST_ENDS:
            said = []
        elif event.get("event") == "user":
            text = event.get("text") or ""
            intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
            said.append(Said(text, not text.startswith("/") and intent not in NOT_A_DESCRIPTION))
    return said


async def prefill(policy: SupportPolicy, tracker: Tracker) -> dict[str, str]:
    """What the conversation already told us for the form (bot/intake.py `prefill`)."""
    return await prefill_fields(
        policy,
        request_messages(tracker),
        tracker.slots,
        lambda text: is_problem_statement(tracker, text),
        urgency=next(tracker.get_latest_entity_values("urgency"), None),
        identity=verified_identity(tracker),
    )


def request_fields(policy: SupportPolicy, category: str | None) -> list[str]:
    """The form's slots for a category (from the policy, in its order), then the severity.

    The category comes from the description: told before the form (the usual path,
    the customer's own message), it decides from the start; otherwise every field is
    asked in the policy's order and the category only drops what is still to come.
    """
    return list(policy.fields_for(category)) + ["severity"]


class ValidateSupportRequestForm(FormValidationAction):
    """One validator per slot. Each reply is first read (bot/form_replies.py): an answer is
    checked, and a bad one cleared with a message saying why; anything else (a question, a
    request for a person, a correction, small talk, "I don't know") is handled and the
    question asked again; a cancel hands over to action_cancel_request."""

    def name(self) -> str:
        return "validate_support_request_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        events = await super().run(dispatcher, tracker, domain)
        if any(e.get("event") == "slot" and e.get("name") == "form_reply" and e.get("value") == "cancel" for e in events):
            # Rasa's way for a validator to hand over: reject this run of the form, then cancel.
            events += [ActionExecutionRejected(FORM), FollowupAction("action_cancel_request")]
        return events

    async def required_slots(
        self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[str]:
        fields = request_fields(resources.policy(), tracker.get_slot("category"))
        # A cancel far along is confirmed before anything else is asked.
        return ["cancel_confirmation"] + fields if tracker.get_slot("cancel_pending") else fields

    async def _aside(self, slot: str, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> dict[str, Any] | None:
        """None when the reply answers the question for `slot`; else the slots to set after handling it."""
        text = str(tracker.latest_message.get("text") or "")
        if tracker.get_slot("requested_slot") != slot or text != value or not text.strip():
            return None  # prefilled: nothing the customer typed to this question
        policy = resources.policy()
        said_before = [e.get("text") for e in tracker.events if e.get("event") == "user"][-2:-1]
        if said_before and said_before[0].strip().lower() == text.strip().lower():
            return None  # the same reply typed again to the same question: the customer means it as the answer
        if text.startswith("/"):
            # A button from earlier in the chat ("/request_human"): an intent, never the answer.
            intent = tracker.get_intent_of_latest_message()
            label = "human" if intent in ("request_human", "submit_request", "book_call") else "smalltalk"
        else:
            # An unsure cancel or correction is checked as the answer: the validator takes
            # what fits and says what it expects otherwise.
            label = label_to_act_on(await read_reply(tracker, slot, text))
        if label == "answer":
            return None
        result: dict[str, Any] = {slot: None, "form_reply": label}
        if label == "cancel":
            return result
        if label == "question":
            await answer_question(dispatcher, text)
        elif label == "human":
            remaining = [f for f in request_fields(policy, tracker.get_slot("category")) if not tracker.get_slot(f)]
            dispatcher.utter_message(text=person_text(policy, len(remaining)))
        elif label == "smalltalk":
            said = smalltalk_text(tracker.get_intent_of_latest_message())
            if not said and not text.startswith("/"):
                # The reply model hears small talk but Rasa's NLU does not ("ana@example"): the
                # reply is checked as the answer, so the check says what was wrong and what is expected.
                return None
            if said:
                dispatcher.utter_message(text=said)
        elif label == "correction":
            changes, said = apply_correction(policy, text, dict(tracker.slots), field_labels(policy, tracker.get_slot("category")))
            if not changes:
                return None  # no other field's new value in it: checked as an answer to this question
            dispatcher.utter_message(text=said)
            result.update(changes)
            if slot in changes:
                result[slot] = changes[slot]
        elif label == "unknown":
            return self._unknown(slot, text, dispatcher, tracker, result)
        return result

    def _unknown(
        self, slot: str, text: str, dispatcher: CollectingDispatcher, tracker: Tracker, result: dict[str, Any]
    ) -> dict[str, Any] | None:
        """ "I don't know": the version goes on as unknown after the help text; free text is kept as said."""
        policy = resources.policy()
        if slot == "version":
            question = policy.request_field("version").question
            where = question[question.find("(") + 1:question.rfind(")")] if "(" in question else ""
            dispatcher.utter_message(
                text=f"No problem. {where + ' ' if where else ''}If you can't check now, I'll note the version as "
                "unknown and our team will ask if they need it."
            )
            result.update({"version": UNKNOWN_VERSION, "form_reply": None})
            return result
        if slot in ("tried", "impact"):
            return None  # "not sure" is an honest answer to these
        if slot == "severity":
            return {"severity": tracker.get_slot("proposed_severity"), "form_reply": None} if tracker.get_slot("proposed_severity") else None
        why = {
            "name": "Our team addresses you by name; a first name is enough.",
            "email": "Our team replies by email, so I need an address that reaches you.",
            "product": "Our team needs to know which app it is; the buttons list them.",
            "description": "In your own words is fine: what you were doing, what happened, and any message on screen.",
        }[slot]
        dispatcher.utter_message(text=why)
        return result

    async def _check(self, slot: str, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> dict[str, Any]:
        aside = await self._aside(slot, value, dispatcher, tracker)
        if aside is not None:
            return aside
        try:
            return {slot: check_slot(resources.policy(), slot, value, tracker.slots), **cleared_aside(tracker)}
        except ExcludedProduct as exc:
            dispatcher.utter_message(
                text=f"{exc.product} is a third-party product, so our support doesn't cover it. {exc.message} "
                "If your problem is with a Makana product, tell me which one; otherwise say \"cancel\".",
                buttons=[{"title": "Cancel", "payload": "/cancel"}],
            )
            return {slot: None}
        except InvalidField as exc:
            natural = await self._natural(slot, str(value or ""), dispatcher, tracker)
            if natural is not None:
                return natural
            dispatcher.utter_message(text=exc.message)
            return {exc.field: None} if exc.field != slot else {slot: None}

    async def _natural(self, slot: str, text: str, dispatcher: CollectingDispatcher, tracker: Tracker) -> dict[str, Any] | None:
        """Answers the checks miss but the meaning gives: "the newest one", "the accounting one"."""
        policy = resources.policy()
        if slot not in ("version", "product") or not text.strip() or text.startswith("/"):
            return None
        model = await resources.form_replies()
        if slot == "version":
            product = find_product(policy, str(tracker.get_slot("product") or ""))
            rank = await asyncio.to_thread(model.version_rank, text) if product is not None else None
            if rank == "newest":
                newest = newest_version(product)
                dispatcher.utter_message(text=f"The newest supported version of {product.name} is {newest}, so I've put {newest}.")
                return {"version": newest, "form_reply": None}
            if rank == "unsure":
                # "the one before the latest": asked rather than guessed.
                versions = product.supported_versions
                dispatcher.utter_message(
                    text=f"I'm not sure which version you mean. The newest supported version of {product.name} is {versions[0]}"
                    + (f"; the one before it is {versions[1]}." if len(versions) > 1 else ".")
                )
                return {"version": None, "form_reply": None}
        if slot == "product":
            product = await asyncio.to_thread(model.product_by_meaning, policy, text)
            if product is not None:
                dispatcher.utter_message(text=f"I take it that's {product.name}.")
                return {"product": product.name, "form_reply": None}
        return None

    async def validate_cancel_confirmation(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """The reply to "Do you want to stop your request?". Only a clear yes (or cancel)
        stops it; anything else keeps the request, since a lost request costs the customer
        more than one more "cancel" (README: costs)."""
        text = str(tracker.latest_message.get("text") or "")
        intent = tracker.get_intent_of_latest_message()
        if intent in ("affirm", "cancel"):
            return {"cancel_confirmation": None, "form_reply": "cancel"}
        if intent != "deny" and text and not text.startswith("/"):
            verdict = await read_reply(tracker, "severity", text)
            if sure_cancel(verdict):
                return {"cancel_confirmation": None, "form_reply": "cancel"}
            if verdict.label == "question":
                await answer_question(dispatcher, text)
                return {"cancel_confirmation": None, "form_reply": "question"}
        dispatcher.utter_message(text="Good, I'll keep your request going.")
        return {"cancel_confirmation": None, "cancel_pending": False, "form_reply": "resume"}

    async def validate_name(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        result = await self._check("name", value, dispatcher, tracker)
        emails = emails_in(str(value or ""))
        if result.get("name") and len(emails) == 1 and not tracker.get_slot("email"):
            # "I'm Kai Nakamura, kai@example.com": both fields from one message.
            result["email"] = check_slot(resources.policy(), "email", emails[0], tracker.slots)
        return result

    async def validate_email(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        return await self._check("email", value, dispatcher, tracker)

    async def validate_product(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        result = await self._check("product", value, dispatcher, tracker)
        if result.get("product") and result["product"] != tracker.get_slot("product"):
            # A different product invalidates a version prefilled for the old one.
            slots = dict(tracker.slots, product=result["product"])
            if tracker.get_slot("version"):
                try:
                    check_slot(resources.policy(), "version", tracker.get_slot("version"), slots)
                except InvalidField:
                    result["version"] = None
            elif not str(value or "").startswith("/"):
                try:  # "POS 4": the version in the same message
                    result["version"] = check_slot(resources.policy(), "version", value, slots)
                except InvalidField:
                    pass
        return result

    async def validate_version(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        return await self._check("version", value, dispatcher, tracker)

    async def validate_description(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        result = await self._check("description", value, dispatcher, tracker)
        if result.get("description"):
            # The category decides which fields the form still asks (the policy's request_fields).
            result["category"] = (await propose(result["description"])).category
        return result

    async def validate_tried(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        return await self._check("tried", value, dispatcher, tracker)

    async def validate_impact(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        return await self._check("impact", value, dispatcher, tracker)

    async def validate_severity(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        return await self._check("severity", value, dispatcher, tracker)


def cleared_aside(tracker: Tracker) -> dict[str, Any]:
    """`form_reply` cleared once the form question has been asked again (nothing when already clear)."""
    return {"form_reply": None} if tracker.get_slot("form_reply") else {}


def back_prefix(tracker: Tracker) -> str:
    """ "Back to your request: " after an aside (the reply before was not an answer)."""
    return "Back to your request: " if tracker.get_slot("form_reply") in ASIDES else ""


class AskField(Action, ABC):
    """Ask for one form field with the question the policy file words for it."""

    @property
    @abstractmethod
    def field(self) -> str:
        """The form slot this action asks for."""

    def name(self) -> str:
        return f"action_ask_{self.field}"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        policy = resources.policy()
        question = policy.request_field(self.field).question
        buttons: list[dict[str, str]] = []
        if self.field == "product":
            buttons = [{"title": p.name, "payload": p.name} for p in policy.doc.scope.products]
        if self.field == "version":
            product = find_product(policy, str(tracker.get_slot("product") or ""))
            question = question.replace("{product}", product.name if product else "the product")
            if product is not None:
                question += f" Supported: {', '.join(product.supported_versions)}."
                buttons = [{"title": v, "payload": v} for v in product.supported_versions]
        dispatcher.utter_message(text=back_prefix(tracker) + question, buttons=buttons)
        return [SlotSet(k, v) for k, v in cleared_aside(tracker).items()]


class ActionAskName(AskField):
    field = "name"


class ActionAskEmail(AskField):
    field = "email"


class ActionAskProduct(AskField):
    field = "product"


class ActionAskVersion(AskField):
    field = "version"


class ActionAskDescription(AskField):
    field = "description"


class ActionAskTried(AskField):
    field = "tried"


class ActionAskImpact(AskField):
    field = "impact"


def far_along(policy: SupportPolicy, tracker: Tracker) -> bool:
    """A request worth confirming before it is cancelled, and keeping for 24 hours after:
    the problem and at least three more of its fields are known."""
    answered = [f for f in request_fields(policy, tracker.get_slot("category")) if tracker.get_slot(f)]
    return bool(tracker.get_slot("description")) and len(answered) >= 4


class ActionAskCancelConfirmation(Action):
    """ "Do you want to stop your request about …?", asked when a cancel comes far along."""

    def name(self) -> str:
        return "action_ask_cancel_confirmation"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        dispatcher.utter_message(
            text=back_prefix(tracker) + f"Do you want to stop your request about “{tracker.get_slot('description')}”? "
            "Nothing has been sent to our team yet. If you stop, I'll keep your details for 24 hours.",
            buttons=[
                {"title": "Yes, stop it", "payload": "/cancel"},
                {"title": "No, let's continue", "payload": "/deny"},
            ],
        )
        return [SlotSet(k, v) for k, v in cleared_aside(tracker).items()]


class ActionAskSeverity(Action):
    """Propose a severity from the description and impact, and let the customer correct it."""

    def name(self) -> str:
        return "action_ask_severity"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        policy = resources.policy()
        triaged = await triage(tracker.get_slot("description") or "", tracker.get_slot("impact") or "")
        proposed = policy.severity(triaged.proposal.severity)
        due = policy.response_due(proposed.id, resources.now())
        dispatcher.utter_message(
            text=back_prefix(tracker) + (
                f"{triaged.reason.text(policy)} {severity_line(policy, proposed.id)} If you submit now, our first "
                f"response is due {format_time(policy, due, resources.now())}. Is {proposed.name} right?"
            ),
            buttons=[{"title": f"Yes, {proposed.name}", "payload": proposed.id}]
            + [
                {"title": policy.severity(s).name, "payload": s}
                for s in SEVERITY_ORDER
                if s != proposed.id
            ],
        )
        return [SlotSet("proposed_severity", proposed.id)] + [SlotSet(k, v) for k, v in cleared_aside(tracker).items()]


def field_labels(policy: SupportPolicy, category: str | None = None) -> dict[str, str]:
    """Labels of the ticket's fields that the category asks for, and the severity."""
    labels = {f.id: f.label for f in policy.doc.customer_responsibilities.request_fields}
    wanted = set(policy.fields_for(category)) | {"severity"}
    return {field: labels.get(field, "Severity") for field in FIELDS if field in wanted}


def summary_text(policy: SupportPolicy, slots: dict[str, Any]) -> str:
    lines = ["Here's what I'll send to our support team:"]
    labels = field_labels(policy, slots.get("category"))
    for field in labels:
        value = slots.get(field) or ""
        if field == "severity" and value:
            value = policy.severity(value).name
        lines.append(f"- {labels[field]}: {value}")
    lines.append("Shall I open the ticket?")
    return "\n".join(lines)


class ActionSummarizeRequest(Action):
    def name(self) -> str:
        return "action_summarize_request"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        dispatcher.utter_message(
            text=back_prefix(tracker) + summary_text(resources.policy(), tracker.slots),
            buttons=[
                {"title": "Yes, open the ticket", "payload": "/affirm"},
                {"title": "Change a detail", "payload": "/correct_field"},
                {"title": "Cancel", "payload": "/cancel"},
            ],
        )
        return [SlotSet("request_ready", True), SlotSet("faq_outcome", None), SlotSet("form_reply", None)]


class ActionCreateTicket(Action):
    """Re-check every answer, then open the ticket (once) and give its deadline."""

    def name(self) -> str:
        return "action_create_ticket"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        policy = resources.policy()
        category = tracker.get_slot("category")
        wanted = set(field_labels(policy, category))
        values: dict[str, str] = {field: "" for field in FIELDS if field not in wanted}
        for field in FIELDS:
            if field not in wanted:
                continue
            # Slots filled while the action server was down were never validated.
            try:
                values[field] = check_slot(policy, field, tracker.get_slot(field), dict(tracker.slots, **values))
            except InvalidField as exc:
                dispatcher.utter_message(text=f"Before I open the ticket: {exc.message}")
                return [SlotSet(exc.field, None), SlotSet("request_ready", False), FollowupAction(FORM)]
        request = SupportRequest(
            **values, category=category or "technical_support", proposed_severity=tracker.get_slot("proposed_severity")
        )
        now = resources.now()
        channel = str((tracker.latest_message.get("metadata") or {}).get("channel") or "web_chat")[:32]
        try:
            store = await resources.store()
            who = verified_identity(tracker)
            ticket, created = await open_ticket(
                store, policy, request, tracker.sender_id, channel, tracker.events, now, resources.notify_kinds(),
                owner_user_id=who["user_id"] if who else None,
            )
        except StoreUnavailable:
            log.exception("ticket store unavailable")
            dispatcher.utter_message(
                text="Sorry, our ticket system isn't reachable right now, so I couldn't open the ticket. "
                "Your details are kept: say \"yes\" in a minute to try again, or email "
                f"{policy.doc.contact.email}."
            )
            return [SlotSet("request_ready", True)]
        severity = policy.severity(ticket.severity)
        text = (
            f"Your ticket {ticket.number} is open with severity {severity.name}. "
            f"Our first response is due {format_time(policy, ticket.response_due_at, now)}."
        )
        on_call = on_call_text(policy, ticket.severity, ticket.created_at, now)
        if on_call:
            text += f" {on_call}"
        elif not policy.is_open(now) and severity.clock == "business_hours":
            text += f" {status_text(policy, now)}"
        if not created:
            text = f"You already submitted this request: {text}"
        buttons = []
        call_now = qualifies(policy, ticket.severity) and bool(tracker.get_slot("call_requested"))
        if qualifies(policy, ticket.severity) and not call_now:
            buttons = [{"title": "Book a call with our technical team", "payload": f'/book_call{{"ticket_number":"{ticket.number}"}}'}]
        dispatcher.utter_message(text=text + f" We'll reply to {ticket.email}.", buttons=buttons)
        events: list[EventType] = [
            SlotSet("ticket_number", ticket.number), SlotSet("request_ready", False), SlotSet("faq_misses", 0.0)
        ] + [SlotSet(slot, None) for slot in REQUEST_SLOTS]
        if call_now:
            # The customer asked for a call before the ticket existed: offer the times now.
            from actions.meetings import offer_call

            events += await offer_call(dispatcher, tracker, ticket)
        return events


class ActionCorrectField(Action):
    """Change a detail: in words ("my email is actually …", "it's POS, not Books") the new
    value is checked and the summary shown again; naming only the field clears it and asks again."""

    def name(self) -> str:
        return "action_correct_field"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        policy = resources.policy()
        labels = field_labels(policy, tracker.get_slot("category"))
        field = next(tracker.get_latest_entity_values("field"), None)
        field = {"what i tried": "tried", "problem": "description"}.get(str(field).lower(), str(field).lower()) if field else None
        text = str(tracker.latest_message.get("text") or "")
        if field is None and text and not text.startswith("/"):
            changes, said = apply_correction(policy, text, dict(tracker.slots), labels)
            if changes:
                dispatcher.utter_message(text=said)
                return [SlotSet(k, v) for k, v in changes.items()] + [SlotSet("request_ready", False), FollowupAction(FORM)]
            field = named_field(text, labels)
        if field not in labels:
            dispatcher.utter_message(
                text="Which detail should I change?",
                buttons=[{"title": label, "payload": f'/correct_field{{"field":"{name}"}}'} for name, label in labels.items()],
            )
            return []
        cleared = [SlotSet(field, None)]
        if field == "product":
            cleared.append(SlotSet("version", None))
        return cleared + [SlotSet("request_ready", False), FollowupAction(FORM)]


def named_field(text: str, labels: dict[str, str]) -> str | None:
    """The one field a change request names ("change the email"), by its id or label; None if not exactly one."""
    words = set(re.findall(r"[a-z]+", text.lower()))
    aliases = {"description": {"problem", "description"}, "tried": {"tried"}, "name": {"name"}}
    named = [f for f, label in labels.items() if (aliases.get(f, {f}) | {label.lower()}) & words]
    return named[0] if len(named) == 1 else None


# What a cancelled request keeps for 24 hours, to be offered back.
KEPT_SLOTS = ("name", "email", "product", "version", "description", "tried", "impact", "severity", "proposed_severity", "category")


class ActionCancelRequest(Action):
    """Stop the request being collected; nothing reaches the team. A request that is far
    along is confirmed first ("Do you want to stop…?", asked by the form), then kept for
    24 hours, with a button to continue it."""

    def name(self) -> str:
        return "action_cancel_request"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        policy = resources.policy()
        text = str(tracker.latest_message.get("text") or "")
        requested = tracker.get_slot("requested_slot")
        active = tracker.active_loop_name == FORM
        confirming = bool(tracker.get_slot("cancel_pending"))
        if active and requested and not confirming and tracker.get_slot("form_reply") != "cancel" and not text.startswith("/"):
            # Rasa's NLU heard a cancel; the reply model must agree. Otherwise ("two stores cannot
            # close") the reply goes back to the form, whose validator reads it as what it is.
            verdict = await read_reply(tracker, str(requested), text)
            if not sure_cancel(verdict):
                return [SlotSet(requested, text), FollowupAction(FORM)]
        # A cancel handed over by the form's validator has no rule after it: wait for the customer.
        stop: list[EventType] = [
            ActiveLoop(None), SlotSet("requested_slot", None), SlotSet("request_ready", False), SlotSet("form_reply", None),
        ]
        listen: list[EventType] = [FollowupAction("action_listen")] if tracker.get_slot("form_reply") == "cancel" else []
        clear = [SlotSet(slot, None) for slot in REQUEST_SLOTS]
        if not active and not tracker.get_slot("request_ready"):
            if text and not text.startswith("/") and not sure_cancel(await read_reply(tracker, "description", text)):
                # Nothing is being collected and the reply model does not read a cancel ("this is
                # the third time… thinking of cancelling", a message in Portuguese): Rasa's NLU
                # misheard, so the message is answered as any other.
                return stop + [FollowupAction("action_answer_question")]
            if kept_request(tracker, resources.now()):
                dispatcher.utter_message(text="OK, I've discarded your unfinished request. Anything else I can help with?")
                return stop + [SlotSet("kept_request", None)] + listen
            dispatcher.utter_message(text="There's nothing to cancel. How can I help?")
            return stop + clear + listen
        if far_along(policy, tracker) and not confirming:
            # Far along: ask first (the form asks cancel_confirmation before any field).
            return [
                SlotSet("cancel_pending", True), SlotSet("cancel_confirmation", None), SlotSet("request_ready", False),
                SlotSet("form_reply", None), FollowupAction(FORM),
            ]
        if far_along(policy, tracker):
            kept = {
                "saved_at": resources.now().isoformat(),
                "slots": {f: tracker.get_slot(f) for f in KEPT_SLOTS if tracker.get_slot(f) is not None},
            }
            dispatcher.utter_message(
                text=f"OK, I've stopped your request about “{tracker.get_slot('description')}”. Nothing was sent to our "
                "team. I'll keep what you told me for 24 hours, in case you want to finish it.",
                buttons=[
                    {"title": "Continue my request", "payload": "/request_human"},
                    {"title": "Discard it", "payload": "/cancel"},
                ],
            )
            return stop + clear + [SlotSet("kept_request", kept)] + listen
        dispatcher.utter_message(
            text="No problem, I've cancelled that. Nothing was sent to our team. Anything else I can help with?"
        )
        return stop + clear + listen
