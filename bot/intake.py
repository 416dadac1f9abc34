"""The information customers must provide, checked against the policy.

Each `check_*` function takes what the customer typed and returns the clean value or
raises `InvalidField` with a sentence saying what was wrong and what is expected. The
form's validators in actions/support_request.py only map these to slots and messages.
The severity and category are proposed by the triage model (bot/triage.py);
`urgent_text` and `call_text` word what the assistant says about them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from bot.policy_answers import format_hours, format_time, listed_version, mentioned_third_party, severity_line, status_text, whole_word
from bot.policy import Product, SupportPolicy

EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
MIN_DESCRIPTION_WORDS = 5
MAX_FIELD_CHARS = 2000
YES_WORDS = {"yes", "y", "yep", "yeah", "ok", "okay", "correct", "right", "sure", "that's right", "agreed", "fine"}


class InvalidField(ValueError):
    """A customer's answer cannot be used; the message says why and what is expected."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class ExcludedProduct(InvalidField):
    """The customer named a product the policy does not cover (third party)."""

    def __init__(self, product: str, message: str) -> None:
        super().__init__("product", message)
        self.product = product


def check_name(text: str) -> str:
    name = " ".join(text.split())
    if not (1 <= len(name) <= 100) or not re.search(r"[^\W\d_]", name):
        raise InvalidField("name", "Please tell me your name (letters, up to 100 characters).")
    if "@" in name or re.search(r"\d{3,}", name):
        raise InvalidField("name", "That looks like an email or a number rather than a name. What's your name?")
    return name


def check_email(text: str) -> str:
    email = text.strip().strip("<>.,;").lower()
    found = re.findall(r"[^\s<>,;]+@[^\s<>,;]+", email)
    if len(found) == 1:
        email = found[0].strip(".")
    if len(email) > 254 or not EMAIL_RE.match(email):
        raise InvalidField(
            "email", f"“{text.strip()[:80]}” is not a valid email address. Please type it like name@company.com."
        )
    return email


def find_product(policy: SupportPolicy, text: str) -> Product | None:
    """The covered product that `text` names (by name, id or alias), if any."""
    for product in policy.doc.scope.products:
        names = [product.name, product.id.replace("_", " "), *product.aliases]
        if any(whole_word(text, n) for n in names):
            return product
    return None


def check_product(policy: SupportPolicy, text: str) -> Product:
    product = find_product(policy, text)
    if product is not None:
        return product
    third_party = mentioned_third_party(policy, text)
    if third_party:
        raise ExcludedProduct(third_party, policy.doc.third_party_support)
    names = ", ".join(p.name for p in policy.doc.scope.products)
    raise InvalidField("product", f"I don't recognise that product. Which one is it: {names}?")


def _version_token(text: str) -> str:
    match = re.search(r"\bv?(\d+(?:\.\d+)*)\b", text.lower())
    if "cloud" in text.lower() or "web" in text.lower() or "browser" in text.lower():
        return "cloud"
    if match is None:
        return ""
    prefix = "v" if re.search(r"\bv\d", text.lower()) else ""
    return prefix + match.group(1)


def check_version(product: Product, text: str) -> str:
    """The version as typed (normalised), if the policy supports it for `product`."""
    version = _version_token(text)
    supported = ", ".join(product.supported_versions)
    if not version:
        raise InvalidField("version", f"Which version of {product.name} do you use? Supported versions: {supported}.")
    listed = listed_version(product, version)
    if listed in product.supported_versions:
        return version
    if listed in product.unsupported_versions:
        raise InvalidField(
            "version",
            f"{product.name} {version} is no longer supported, so we can't open a ticket for it. "
            f"Supported versions: {supported}. Please upgrade, or tell me the version if you already have.",
        )
    raise InvalidField("version", f"I don't know version “{version}” of {product.name}. Supported versions: {supported}.")


def check_description(text: str) -> str:
    description = text.strip()
    if len(description.split()) < MIN_DESCRIPTION_WORDS:
        raise InvalidField(
            "description",
            "That's a bit short for our team to act on. Please describe what happens, where, and any error "
            f"message you see (at least {MIN_DESCRIPTION_WORDS} words).",
        )
    return _limit("description", description)


def check_free_text(field: str, text: str, what: str) -> str:
    value = text.strip()
    if len(value) < 2:
        raise InvalidField(field, f"Please tell me {what}, even briefly (or “nothing yet”).")
    return _limit(field, value)


def _limit(field: str, value: str) -> str:
    if len(value) > MAX_FIELD_CHARS:
        raise InvalidField(field, f"That's {len(value)} characters; please keep it under {MAX_FIELD_CHARS}.")
    return value


def check_severity(policy: SupportPolicy, text: str) -> str:
    lowered = text.lower()
    for severity in policy.doc.severities:
        if re.search(rf"\b({severity.id}|{re.escape(severity.name.lower())})\b", lowered):
            return severity.id
    raise InvalidField("severity", "Please choose a severity: critical, high, medium or low.")


def urgent_text(policy: SupportPolicy, severity_id: str, reason: str, now: dt.datetime) -> str:
    """Acknowledge an urgent problem: the reason, the policy's commitment, and at night who answers."""
    severity = policy.severity(severity_id)
    due = policy.response_due(severity_id, now)
    text = (
        f"I'm sorry, that sounds urgent. {reason} {severity_line(policy, severity_id)} "
        f"If you open the ticket now, our first response is due {format_time(policy, due, now)}."
    )
    if not policy.is_open(now):
        if severity.clock == "around_the_clock":
            text += f" We're closed now, but {severity.name} tickets are paged to our on-call engineer around the clock."
        else:
            text += f" {status_text(policy, now)}"
    return text


def may_describe_problem(text: str) -> bool:
    """Typed text (not a button's payload) with words enough to describe a problem."""
    return not text.startswith("/") and len(text.split()) >= MIN_DESCRIPTION_WORDS


def _call_rule(policy: SupportPolicy) -> str:
    """'A call with our technical team is booked for a Critical or High ticket' (the policy's meeting severities)."""
    levels = " or ".join(policy.severity(s).name for s in policy.doc.process.meeting_severities)
    return f"A call with our technical team is booked for a {levels} ticket"


def call_text(policy: SupportPolicy, during_request: bool = False) -> str:
    """One sentence: which tickets may book a call with the technical team."""
    if during_request:
        return (
            f"{_call_rule(policy)}, so let's finish your request first "
            "and I'll offer the times as soon as the ticket is open."
        )
    return f"{_call_rule(policy)}, so let's open yours first: it takes a few questions."


def call_to_learn_text(policy: SupportPolicy) -> str:
    """A call asked for where no problem is described ("nothing's broken, I just want someone
    to walk me through how invoice numbering works"): which tickets get a call, and where a
    walk-through is, from the policy's training resources."""
    training = "; ".join(f"{t.name} ({t.schedule}): {t.url}" for t in policy.doc.training)
    return (
        f"{_call_rule(policy)}: if something is broken, open a ticket "
        f"first (it takes a few questions). To learn how something works, ask me here or use our training: {training}."
    )


def on_call_text(policy: SupportPolicy, severity_id: str, created_at: dt.datetime, now: dt.datetime) -> str | None:
    """At night, for a severity answered around the clock: the on-call engineer responds within the target."""
    severity = policy.severity(severity_id)
    if policy.is_open(now) or severity.clock != "around_the_clock":
        return None
    due = policy.response_due(severity_id, created_at)
    return (
        f"We're closed now, but your ticket has been paged to our on-call engineer, who responds within "
        f"{format_hours(severity.first_response_hours)} (by {format_time(policy, due, now)})."
    )


def check_slot(policy: SupportPolicy, name: str, value: object, slots: Mapping[str, object]) -> str:
    """One form answer, checked by the library; raises InvalidField."""
    text = str(value or "")
    if name == "name":
        return check_name(name_part(text))
    if name == "email":
        return check_email(text)
    if name == "product":
        return check_product(policy, text).name
    if name == "version":
        product = find_product(policy, str(slots.get("product") or ""))
        if product is None:
            raise InvalidField("product", "Please tell me the product first.")
        if text.strip().lower() == UNKNOWN_VERSION:
            return UNKNOWN_VERSION  # the customer could not find it; the team asks if it matters
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


UNKNOWN_VERSION = "unknown"
NAME_LEAD_IN = re.compile(r"^\s*(hi|hello|hey)?[,!.\s]*(my name is|my name's|name is|name's|i am|i'm|im|it's|it is|this is|call me)\s+", re.IGNORECASE)
EMAIL_IN_TEXT = re.compile(r"[^\s<>,;:()]+@[^\s<>,;:()]+\.[A-Za-z]{2,}")


def newest_version(product: Product) -> str:
    """The newest supported version: the policy lists supported versions newest first."""
    return product.supported_versions[0]


def emails_in(text: str) -> list[str]:
    """Email addresses written inside a longer message ("I'm Kai, kai@example.com")."""
    return [m.group(0).strip(".").lower() for m in EMAIL_IN_TEXT.finditer(text)]


def name_part(text: str) -> str:
    """The name in a reply to "What's your name?": lead-ins and a trailing email taken out."""
    for email in EMAIL_IN_TEXT.findall(text):
        text = text.replace(email, " ")
    text = NAME_LEAD_IN.sub("", text)
    text = re.sub(r"\b(and )?(my )?(e-?mail( address)?( is)?|you can reach me at|reach me at)\s*$", "", text.strip(" ,;.-"), flags=re.IGNORECASE)
    return " ".join(text.strip(" ,;.-").split())


def products_in(policy: SupportPolicy, text: str) -> list[Product]:
    """Every covered product `text` names, in the order they appear."""
    lowered = f" {text.lower()} "
    found: list[tuple[int, Product]] = []
    for product in policy.doc.scope.products:
        names = [product.name, product.id.replace("_", " "), *product.aliases]
        positions = [
            m.start() for n in names for m in re.finditer(rf"(?<![\w-]){re.escape(n.lower())}(?![\w-])", lowered)
        ]
        if positions:
            found.append((min(positions), product))
    return [p for _, p in sorted(found, key=lambda pair: pair[0])]


def corrected_values(policy: SupportPolicy, text: str, slots: Mapping[str, object]) -> dict[str, str]:
    """The fields a correction in words changes, with their new values, each checked.

    Called once the reply is known to be a correction (bot/form_replies.py decides
    that by meaning); this only reads which field each new value fits: an email
    address, a product other than the current one ("it's POS, not Books": the one not
    negated), a version that the product supports, a name after "name".
    """
    found: dict[str, str] = {}
    current = str(slots.get("product") or "")
    for email in emails_in(text):
        if email != slots.get("email"):
            try:
                found["email"] = check_email(email)
            except InvalidField:
                pass
    products = products_in(policy, text)
    if products:
        negated = {p.name for p in products if re.search(rf"\bnot\s+(the\s+)?({'|'.join(re.escape(n.lower()) for n in [p.name, *p.aliases, p.id.replace('_', ' ')])})\b", text.lower())}
        wanted = [p for p in products if p.name not in negated and p.name != current]
        if wanted:
            found["product"] = wanted[0].name
    product = find_product(policy, found.get("product") or current)
    if product is not None and "email" not in found:
        stripped = text
        for p in products:
            for n in [p.name, *p.aliases]:
                stripped = re.sub(re.escape(n), " ", stripped, flags=re.IGNORECASE)
        if re.search(r"\d|cloud|web|browser|latest|newest", stripped.lower()):
            try:
                version = check_version(product, stripped.split(" not ")[0])
                if version != slots.get("version") or "product" in found:
                    found["version"] = version
            except InvalidField:
                pass
    name = re.search(r"\bname\b[^A-Za-z]*(?:is|to|should be|'s)?\s+(?:actually\s+|spelled\s+)?([^\W\d_][^,.;!?]*?)(?:,|\.|;|!|$|\s+not\s+|\s+with\s+|\s+instead)", text, re.IGNORECASE)
    if name and "email" not in found:
        try:
            found["name"] = check_name(name.group(1))
        except InvalidField:
            pass
    return found


@dataclass(frozen=True)
class Said:
    """A customer message of the current request, oldest first. `may_describe` is False for
    a button payload or a message the dialogue read as something else (a greeting, a
    yes, a status question): such a message never becomes the problem description."""

    text: str
    may_describe: bool


async def prefill(
    policy: SupportPolicy,
    said: Sequence[Said],
    slots: Mapping[str, object],
    is_problem_statement: Callable[[str], Awaitable[bool]],
    urgency: str | None = None,
    identity: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Product, version, description (and severity, name, email) that the request's earlier
    turns already give, each checked; only fields not already in `slots`.

    The description is the customer's own statement of the problem: the latest one, with
    the statements just before it that add to it (at most three, from the last four
    messages). After urgent routing ("Open a Critical ticket now", `urgency` naming the
    severity on the button), the message that was triaged is the description and that
    severity is the one the customer chose. A verified identity fills name and email.
    """
    found: dict[str, str] = {}
    urgent_severity, urgent_description = slots.get("urgent_severity"), slots.get("urgent_description")
    if urgency and urgency == urgent_severity and urgent_description and not slots.get("description"):
        try:
            found["description"] = check_description(str(urgent_description))
            found["severity"] = found["proposed_severity"] = str(urgent_severity)
        except InvalidField:
            pass
    statements: list[str] = []
    for message in reversed(said[-4:]):  # this request's last few turns, not the whole chat
        if not message.may_describe:
            if statements:
                break
            continue
        if "product" not in found and not slots.get("product"):
            product = find_product(policy, message.text)
            if product is not None:
                found["product"] = product.name
                try:
                    found["version"] = check_version(product, message.text)
                except InvalidField:
                    pass
        if "description" in found or slots.get("description"):
            continue
        if await is_problem_statement(message.text):
            statements.insert(0, message.text)
        elif statements:
            break  # the statements must follow one another
    if statements and "description" not in found:
        try:
            found["description"] = check_description(" ".join(statements[-3:]))
        except InvalidField:
            pass
    if identity:
        # Verified by the web service (the pane's signed token): never ask again.
        found["name"], found["email"] = identity["name"], identity["email"]
    return found


def apply_correction(
    policy: SupportPolicy, text: str, slots: Mapping[str, object], labels: Mapping[str, str]
) -> tuple[dict[str, object], str]:
    """The slots a correction in words changes (each re-checked against the others), and
    what to tell the customer. `labels`: the fields this request asks, with their names."""
    changes = corrected_values(policy, text, slots)
    checked: dict[str, object] = {}
    said = []
    for field, value in changes.items():
        if field not in labels:
            continue
        try:
            checked[field] = check_slot(policy, field, value, dict(slots, **checked))
        except InvalidField as exc:
            return {}, exc.message
        said.append(f"the {labels[field].lower()} to “{checked[field]}”")
    if "product" in checked and "version" not in checked and slots.get("version"):
        try:
            check_slot(policy, "version", slots["version"], dict(slots, **checked))
        except InvalidField:
            checked["version"] = None  # the old version does not exist for the new product
    if not said:
        names = ", ".join(label.lower() for label in labels.values())
        return {}, f"Which detail should I change, and to what? For example “my email is …” or “it's POS, not Books” ({names})."
    return checked, f"Done: I've changed {' and '.join(said)}."
