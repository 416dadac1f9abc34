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

from bot.answers import format_hours, format_time, mentioned_third_party, severity_line, status_text
from bot.policy import Product, SupportPolicy

EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
MIN_DESCRIPTION_WORDS = 5
MAX_FIELD_CHARS = 2000


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
    lowered = f" {text.lower()} "
    for product in policy.doc.scope.products:
        names = [product.name, product.id.replace("_", " "), *product.aliases]
        if any(re.search(rf"(?<![\w-]){re.escape(n.lower())}(?![\w-])", lowered) for n in names):
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

    def matches(listed: str) -> bool:
        bare_v, bare_l = version.lstrip("v"), listed.lstrip("v")
        return bare_v == bare_l or bare_v.startswith(bare_l + ".")

    if any(matches(v) for v in product.supported_versions):
        return version
    if any(matches(v) for v in product.unsupported_versions):
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


def call_text(policy: SupportPolicy, during_request: bool = False) -> str:
    """One sentence: which tickets may book a call with the technical team."""
    levels = " or ".join(policy.severity(s).name for s in policy.doc.process.meeting_severities)
    if during_request:
        return (
            f"A call with our technical team is booked for a {levels} ticket, so let's finish your request first "
            "and I'll offer the times as soon as the ticket is open."
        )
    return f"A call with our technical team is booked for a {levels} ticket, so let's open yours first: it takes a few questions."


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
