"""Answers rendered from the support policy, at the time they are asked.

A knowledge-base entry either has a Markdown answer (which may quote policy values as
``{{ name }}`` placeholders) or names a `policy_answer` topic, which is rendered here
from the policy and the current instant. Nothing in this module reads the clock or
the policy file: both are passed in, so the same question gets a different, correct
answer when the policy or the time changes.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Callable
from zoneinfo import ZoneInfo

from bot.clock import format_span, format_time, hours_beside
from bot.policy import SEVERITY_ORDER, SupportPolicy

PLACEHOLDER = re.compile(r"\{\{\s*([a-z_][a-z0-9_.]*)\s*\}\}")


class UnknownPlaceholder(KeyError):
    """An answer quotes a policy value that does not exist."""


# -- formatting ----------------------------------------------------------------------


def format_hours(hours: float) -> str:
    if hours == int(hours):
        hours = int(hours)
    return f"{hours} hour" if hours == 1 else f"{hours} hours"


def business_days_text(policy: SupportPolicy) -> str:
    days = [d.capitalize() for d in policy.doc.business_hours.days]
    six = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    if days == six[: len(days)] and len(days) > 2:
        return f"{days[0]} to {days[-1]}"
    return ", ".join(days)


def hours_text(policy: SupportPolicy, now: dt.datetime | None = None) -> str:
    """'Monday to Saturday, 9:30 to 18:30 Hawaii time'; given `now`, with the customer's
    clock beside it when theirs differs (see bot.clock)."""
    hours = policy.doc.business_hours
    beside = hours_beside(policy, now) if now is not None else ""
    return (
        f"{business_days_text(policy)}, {hours.opens.hour}:{hours.opens.minute:02d} to "
        f"{hours.closes.hour}:{hours.closes.minute:02d} {policy.doc.company.timezone_label}{beside}"
    )


def status_text(policy: SupportPolicy, now: dt.datetime, tz: ZoneInfo | None = None) -> str:
    """'We're open now, until today at 18:30 (Hawaii time).' or when the team is back, on the
    customer's clock when known (`tz`, else the one set by bot.clock.customer_clock)."""
    closes = policy.closes_at(now)
    if closes is not None:
        return f"We're open now, until {format_time(policy, closes, now, tz)}."
    opening = policy.next_opening(now)
    holiday = policy.holiday(now.astimezone(policy.tz).date())
    why = f" for {holiday}" if holiday else ""
    return f"We're closed now{why}; we open again {format_time(policy, opening, now, tz)}."


def severity_line(policy: SupportPolicy, severity_id: str) -> str:
    s = policy.severity(severity_id)
    clock = "around the clock" if s.clock == "around_the_clock" else "business hours"
    return (
        f"{s.name}: first response within {format_hours(s.first_response_hours)}, resolution target "
        f"{format_hours(s.resolution_hours)} ({clock})."
    )


def mentioned_severity(message: str) -> str | None:
    text = message.lower()
    synonyms = {
        "critical": ("critical", "outage", "down for everyone", "emergency", "urgent", "sev1", "p1"),
        "high": ("high",),
        "medium": ("medium", "moderate"),
        "low": ("low", "minor", "cosmetic"),
    }
    for severity in SEVERITY_ORDER:
        if any(re.search(rf"\b{re.escape(word)}\b", text) for word in synonyms[severity]):
            return severity
    return None


def mentioned_third_party(policy: SupportPolicy, message: str) -> str | None:
    """The third-party product named in `message`, if the policy lists one."""
    for name in policy.doc.scope.third_party_products:
        if re.search(rf"\b{re.escape(name)}\b", message, flags=re.IGNORECASE):
            return name
    return None


# -- the topics ------------------------------------------------------------------------

Topic = Callable[[SupportPolicy, dt.datetime, str], str]


def _introduction(p: SupportPolicy, now: dt.datetime, msg: str) -> str:
    return p.doc.introduction


def _products(p: SupportPolicy, now: dt.datetime, msg: str) -> str:
    lines = ["Our support covers these products and versions:"]
    for product in p.doc.scope.products:
        unsupported = f" (no longer supported: {', '.join(product.unsupported_versions)})" if product.unsupported_versions else ""
        lines.append(f"- {product.name}: {product.description} Supported versions: {', '.join(product.supported_versions)}{unsupported}.")
    types = ", ".join(t.name.lower() for t in p.doc.scope.support_types)
    lines.append(f"Types of support: {types}.")
    return "\n".join(lines)


def _exclusions(p: SupportPolicy, now: dt.datetime, msg: str) -> str:
    return "These are not covered by our support:\n" + "\n".join(f"- {e}" for e in p.doc.scope.exclusions)


def _third_party(p: SupportPolicy, now: dt.datetime, msg: str) -> str:
    named = mentioned_third_party(p, msg)
    opening = f"{named} is a third-party product, so it is not covered by our support." if named else ""
    clause = next((e for e in p.doc.scope.exclusions if "third-party" in e.lower()), p.doc.scope.exclusions[0])
    return " ".join(x for x in (opening, f"Not covered: {clause}", p.doc.third_party_support) if x)


def _open_now(p: SupportPolicy, now: dt.datetime, msg: str) -> str:
    always = [c.name for c in p.doc.channels if c.always_open]
    return (
        f"{status_text(p, now)} Our team answers {hours_text(p, now)}. "
        f"You can still write to us any time through: {', '.join(always)}; "
        f"critical issues are handled around the clock."
    )


def _hours(p: SupportPolicy, now: dt.datetime, msg: str) -> str:
    return f"Our support hours are {hours_text(p, now)}, except public holidays. {status_text(p, now)}"


def _channels(p: SupportPolicy, now: dt.datetime, msg: str) -> str:
    lines = ["You can reach us through:"]
    for c in p.doc.channels:
        when = "any time" if c.always_open else f"{hours_text(p, now)}"
        lines.append(f"- {c.name}: {c.how} ({when})")
    return "\n".join(lines)


def _self_service(p: SupportPolicy, now: dt.datetime, msg: str) -> str:
    return "Self-service resources, open any time:\n" + "\n".join(
        f"- {r.name}: {r.url} ({r.description})" for r in p.doc.self_service
    )


def _response_times(p: SupportPolicy, now: dt.datetime, msg: str) -> str:
    severity = mentioned_severity(msg)
    if severity:
        due = p.response_due(severity, now)
        s = p.severity(severity)
        return (
            f"{severity_line(p, severity)} {s.name} means: {s.definition} "
            f"A {s.name.lower()} request sent now would get its first response by {format_time(p, due, now)}."
        )
    lines = ["Our response-time targets:"] + [f"- {severity_line(p, s)}" for s in SEVERITY_ORDER]
    lines.append(f"Business hours are {hours_text(p, now)}.")
    return "\n".join(lines)


def _severities(p: SupportPolicy, now: dt.datetime, msg: str) -> str:
    lines = ["How we rate severity:"]
    for s in p.doc.severities:
        lines.append(f"- {s.name}: {s.definition} For example: {s.examples[0]}")
    return "\n".join(lines)


def _process(p: SupportPolicy, now: dt.datetime, msg: str) -> str:
    proc = p.doc.process
    return f"{proc.submission}\n{proc.categorisation}\n{proc.prioritisation}"


def _escalation(p: SupportPolicy, now: dt.datetime, msg: str) -> str:
    lines = ["Requests move through three levels:"]
    for level in p.doc.process.escalation_levels:
        lines.append(f"{level.level}. {level.name}: {level.handles} Moves up when: {level.moves_up_when}")
    return "\n".join(lines)


def _responsibilities(p: SupportPolicy, now: dt.datetime, msg: str) -> str:
    info = p.doc.customer_responsibilities
    return "Please include:\n" + "\n".join(f"- {i}" for i in info.required_information) + f"\n{info.communication}"


def _holidays(p: SupportPolicy, now: dt.datetime, msg: str) -> str:
    local = now.astimezone(p.tz).date()
    upcoming = []
    day = local
    while len(upcoming) < 4 and (day - local).days < 370:
        holiday = p.holiday(day)
        if holiday:
            upcoming.append(f"- {day:%A} {day.day} {day:%B %Y}: {holiday}")
        day += dt.timedelta(days=1)
    region = p.doc.availability.holidays
    where = f"{region.subdivision}, {region.country}" if region.subdivision else region.country
    return (
        f"Support is closed on public holidays in {where} and on company closure days. The next ones:\n"
        + "\n".join(upcoming)
        + "\nCritical issues are still handled around the clock."
    )


def _maintenance(p: SupportPolicy, now: dt.datetime, msg: str) -> str:
    notices = p.active_notices(now)
    upcoming = [w for w in p.doc.availability.maintenance_windows if w.ends > now]
    if not notices and not upcoming:
        return "No maintenance is planned at the moment. We announce every window in advance on the status page."
    lines = []
    for w in sorted(upcoming, key=lambda w: w.starts):
        when = f"in progress now, until {format_time(p, w.ends, now)}" if w.starts <= now else format_span(
            p, w.starts, w.ends, now)
        lines.append(f"- {when}: {w.notice}")
    return "Planned maintenance:\n" + "\n".join(lines)


def _liability(p: SupportPolicy, now: dt.datetime, msg: str) -> str:
    return p.doc.liability


def _custom(p: SupportPolicy, now: dt.datetime, msg: str) -> str:
    c = p.doc.custom_solutions
    return (
        f"{c.description} They are charged separately from your subscription: "
        f"US${c.hourly_rate_usd:,.0f} per hour, minimum {format_hours(c.minimum_hours)}, with a written quote within "
        f"{c.quote_business_days} business days. {c.conditions}"
    )


def _training(p: SupportPolicy, now: dt.datetime, msg: str) -> str:
    return "Training and education:\n" + "\n".join(f"- {t.name}: {t.schedule}. {t.url}" for t in p.doc.training)


def _updates(p: SupportPolicy, now: dt.datetime, msg: str) -> str:
    u = p.doc.updates
    latest = u.changelog[0]
    changes = "\n".join(f"- {c}" for c in latest.changes)
    return (
        f"This is version {u.version} of our support policy, effective {u.effective:%-d %B %Y}. "
        f"What changed in {latest.version} ({latest.date:%-d %B %Y}):\n{changes}\n{u.how_notified}"
    )


def _contact(p: SupportPolicy, now: dt.datetime, msg: str) -> str:
    c = p.doc.contact
    return (
        f"Email {c.email} (billing: {c.billing_email}, security: {c.security_email}), phone {c.phone} "
        f"({hours_text(p, now)}), or this chat any time. Postal address: {c.address}. {status_text(p, now)}"
    )


TOPICS: dict[str, Topic] = {
    "introduction": _introduction,
    "products": _products,
    "exclusions": _exclusions,
    "third_party": _third_party,
    "open_now": _open_now,
    "hours": _hours,
    "channels": _channels,
    "self_service": _self_service,
    "response_times": _response_times,
    "severities": _severities,
    "process": _process,
    "escalation": _escalation,
    "responsibilities": _responsibilities,
    "holidays": _holidays,
    "maintenance": _maintenance,
    "liability": _liability,
    "custom_solutions": _custom,
    "training": _training,
    "updates": _updates,
    "contact": _contact,
}


def policy_answer(topic: str, policy: SupportPolicy, now: dt.datetime, message: str = "") -> str:
    """The answer to a policy topic at instant `now` (KeyError for an unknown topic)."""
    if topic not in TOPICS:
        raise KeyError(f"unknown policy topic {topic!r}; known: {', '.join(sorted(TOPICS))}")
    return TOPICS[topic](policy, now, message)


def placeholder_values(policy: SupportPolicy, now: dt.datetime) -> dict[str, str]:
    """The policy values an FAQ answer may quote as {{ name }}."""
    d = policy.doc
    values = {
        "hours": hours_text(policy, now),
        "status": status_text(policy, now),
        "contact.email": d.contact.email,
        "contact.phone": d.contact.phone,
        "contact.billing_email": d.contact.billing_email,
        "contact.security_email": d.contact.security_email,
        "custom.hourly_rate": f"US${d.custom_solutions.hourly_rate_usd:,.0f}",
        "policy.version": d.updates.version,
        "company.name": d.company.name,
    }
    for s in d.severities:
        values[f"sla.{s.id}"] = severity_line(policy, s.id)
    for r in d.self_service:
        key = re.sub(r"[^a-z]+", "_", r.name.lower().split(" (")[0]).strip("_")
        values[f"url.{key}"] = r.url
    for product in d.scope.products:
        values[f"versions.{product.id}"] = ", ".join(product.supported_versions)
    return values


def render_answer(text: str, policy: SupportPolicy, now: dt.datetime) -> str:
    """Fill {{ name }} placeholders from the policy; UnknownPlaceholder for a bad name."""
    values = placeholder_values(policy, now)

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise UnknownPlaceholder(f"unknown placeholder {{{{ {name} }}}}; known: {', '.join(sorted(values))}")
        return values[name]

    return PLACEHOLDER.sub(fill, text)
