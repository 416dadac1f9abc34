"""Actions of the escalation journey: collect the request, confirm it, open the ticket.

Validation, triage and ticket creation live in bot/intake.py and bot/tickets.py; these
classes only read slots, call them and turn the outcome into messages and events.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import resources
from actions.resources import verified_identity
from actions.triage import triage
from bot.booking import qualifies
from bot.answers import format_time, hours_text, severity_line, status_text
from bot.intake import (
    ExcludedProduct,
    InvalidField,
    check_description,
    check_email,
    check_free_text,
    check_name,
    check_product,
    check_severity,
    check_version,
    find_product,
    on_call_text,
)
from bot.policy import SEVERITY_ORDER, SupportPolicy
from bot.live import LIVE_OFFER, live_availability
from bot.store import StoreUnavailable
from bot.tickets import FIELDS, SupportRequest, open_ticket

log = logging.getLogger(__name__)

FORM = "support_request_form"
REQUEST_SLOTS = (
    "description", "tried", "impact", "severity", "proposed_severity", "category", "urgent_severity",
    "urgent_description", "call_requested",
)
CANCEL_WORDS = re.compile(
    r"\b(cancel|never ?mind|forget (it|that)|stop|abort|quit|scrap|changed my mind|don'?t want|do not want|no need)\b",
    re.IGNORECASE,
)
YES_WORDS = {"yes", "y", "yep", "yeah", "ok", "okay", "correct", "right", "sure", "that's right", "agreed", "fine"}


def check_slot(policy: SupportPolicy, name: str, value: Any, slots: dict[str, Any]) -> str:
    """One form answer, checked by the library; raises InvalidField."""
    text = str(value or "")
    if name == "name":
        return check_name(text)
    if name == "email":
        return check_email(text)
    if name == "product":
        return check_product(policy, text).name
    if name == "version":
        product = find_product(policy, str(slots.get("product") or ""))
        if product is None:
            raise InvalidField("product", "Please tell me the product first.")
        return check_version(product, text)
    if name == "description":
        return check_description(text)
    if name == "tried":
        return check_free_text("tried", text, "what you already tried")
    if name == "impact":
        return check_free_text("impact", text, "how this affects your work")
    if name == "severity":
        proposed = slots.get("proposed_severity")
        if proposed and text.strip().lower().strip(".!") in YES_WORDS:
            return str(proposed)
        return check_severity(policy, text)
    raise KeyError(name)


class ActionRequestHuman(Action):
    """Say who is there, then prefill what the conversation already told us."""

    def name(self) -> str:
        return "action_request_human"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        policy = resources.policy()
        dispatcher.utter_message(
            text=(
                f"I'll pass this to our support team ({hours_text(policy)}). {status_text(policy, resources.now())} "
                "I just need a few details so nobody has to ask you twice. Say \"cancel\" at any time to stop."
            )
        )
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
        latest = tracker.latest_message.get("text") or ""
        # "Our tills are all down, get me a person": the request itself describes the problem.
        latest_is_problem = (
            not latest.startswith("/") and len(latest.split()) >= 8 and (await triage(latest)).proposal.is_problem
        )
        found = prefill(policy, tracker, latest_is_problem)
        description = found.get("description") or tracker.get_slot("description")
        if description and not tracker.get_slot("category"):
            found["category"] = (await triage(str(description))).proposal.category
        # faq_outcome is cleared so that a later "yes" confirms the request, not an old answer.
        return [SlotSet(slot, value) for slot, value in found.items()] + [
            SlotSet("request_ready", False),
            SlotSet("faq_outcome", None),
        ]


def prefill(policy: SupportPolicy, tracker: Tracker, latest_is_problem: bool = False) -> dict[str, str]:
    """Product, version and problem description from earlier turns, when they check out.

    After urgent routing ("Open a Critical ticket now"), the message that was triaged is
    the description and the severity named on the button is the one the customer chose.
    """
    found: dict[str, str] = {}
    urgency = next(tracker.get_latest_entity_values("urgency"), None)
    urgent_severity, urgent_description = tracker.get_slot("urgent_severity"), tracker.get_slot("urgent_description")
    if urgency and urgency == urgent_severity and urgent_description and not tracker.get_slot("description"):
        try:
            found["description"] = check_description(str(urgent_description))
            found["severity"] = found["proposed_severity"] = str(urgent_severity)
        except InvalidField:
            pass
    user_texts = [e.get("text") or "" for e in tracker.events if e.get("event") == "user"]
    if not latest_is_problem:
        user_texts = user_texts[:-1]
    for text in reversed(user_texts):
        if text.startswith("/"):
            continue  # a button payload, not something the customer typed
        if "product" not in found and not tracker.get_slot("product"):
            product = find_product(policy, text)
            if product is not None:
                found["product"] = product.name
                try:
                    found["version"] = check_version(product, text)
                except InvalidField:
                    pass
        if "description" not in found and not tracker.get_slot("description"):
            try:
                found["description"] = check_description(text)
            except InvalidField:
                pass
    who = verified_identity(tracker)
    if who:
        # Verified by the web service (the pane's signed token): never ask again.
        found["name"], found["email"] = who["name"], who["email"]
    return found


def request_fields(policy: SupportPolicy, category: str | None) -> list[str]:
    """The form's slots for a category (from the policy, in its order), then the severity.

    The category comes from the description: told before the form (the usual path,
    the customer's own message), it decides from the start; otherwise every field is
    asked in the policy's order and the category only drops what is still to come.
    """
    return list(policy.fields_for(category)) + ["severity"]


class ValidateSupportRequestForm(FormValidationAction):
    """One validator per slot; a bad answer is cleared with a message saying why."""

    def name(self) -> str:
        return "validate_support_request_form"

    async def required_slots(
        self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[str]:
        return request_fields(resources.policy(), tracker.get_slot("category"))

    async def _check(self, slot: str, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> dict[str, Any]:
        try:
            return {slot: check_slot(resources.policy(), slot, value, tracker.slots)}
        except ExcludedProduct as exc:
            dispatcher.utter_message(
                text=f"{exc.product} is a third-party product, so our support doesn't cover it. {exc.message} "
                "If your problem is with a Makana product, tell me which one; otherwise say \"cancel\".",
                buttons=[{"title": "Cancel", "payload": "/cancel"}],
            )
            return {slot: None}
        except InvalidField as exc:
            dispatcher.utter_message(text=exc.message)
            return {exc.field: None} if exc.field != slot else {slot: None}

    async def validate_name(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        return await self._check("name", value, dispatcher, tracker)

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
        return result

    async def validate_version(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        return await self._check("version", value, dispatcher, tracker)

    async def validate_description(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        result = await self._check("description", value, dispatcher, tracker)
        if result.get("description"):
            # The category decides which fields the form still asks (the policy's request_fields).
            result["category"] = (await triage(result["description"])).proposal.category
        return result

    async def validate_tried(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        return await self._check("tried", value, dispatcher, tracker)

    async def validate_impact(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        return await self._check("impact", value, dispatcher, tracker)

    async def validate_severity(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        return await self._check("severity", value, dispatcher, tracker)


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
        dispatcher.utter_message(text=question, buttons=buttons)
        return []


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
            text=(
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
        return [SlotSet("proposed_severity", proposed.id)]


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
            text=summary_text(resources.policy(), tracker.slots),
            buttons=[
                {"title": "Yes, open the ticket", "payload": "/affirm"},
                {"title": "Change a detail", "payload": "/correct_field"},
                {"title": "Cancel", "payload": "/cancel"},
            ],
        )
        return [SlotSet("request_ready", True), SlotSet("faq_outcome", None)]


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
    """Clear the detail the customer wants to change and ask for it again."""

    def name(self) -> str:
        return "action_correct_field"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        labels = field_labels(resources.policy(), tracker.get_slot("category"))
        field = next(tracker.get_latest_entity_values("field"), None)
        field = {"what i tried": "tried", "problem": "description"}.get(str(field).lower(), str(field).lower()) if field else None
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


class ActionCancelRequest(Action):
    """Drop the request being collected; nothing reaches the team."""

    def name(self) -> str:
        return "action_cancel_request"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        text = tracker.latest_message.get("text") or ""
        requested = tracker.get_slot("requested_slot")
        if tracker.active_loop_name == FORM and requested and not CANCEL_WORDS.search(text):
            # The classifier heard "cancel" in an answer ("two stores cannot close"): an
            # answer without any cancel word is kept as the answer, and the form goes on.
            return [SlotSet(requested, text), FollowupAction(FORM)]
        if tracker.active_loop_name is None and not tracker.get_slot("request_ready"):
            dispatcher.utter_message(text="There's nothing to cancel. How can I help?")
        else:
            dispatcher.utter_message(
                text="No problem, I've cancelled that. Nothing was sent to our team. Anything else I can help with?"
            )
        return [ActiveLoop(None), SlotSet("requested_slot", None), SlotSet("request_ready", False)] + [
            SlotSet(slot, None) for slot in REQUEST_SLOTS
        ]
