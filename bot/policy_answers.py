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
from dataclasses import dataclass
from typing import Callable, Sequence
from zoneinfo import ZoneInfo

from bot.clock import format_span, format_time, hours_beside
from bot.policy import SEVERITY_ORDER, Notice, Product, SupportPolicy
from bot.triage import CALM, negations, without_negations

PLACEHOLDER = re.compile(r"\{\{\s*([a-z_][a-z0-9_.]*)\s*\}\}")
NON_URGENT = re.compile(r"\bnon[- ]?(?:urgent|critical)\b", re.IGNORECASE)


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
    """The severity a message names outright ("critical", "high priority"); a negated
    one ("not urgent", "non-urgent") does not count."""
    text = NON_URGENT.sub(" ", without_negations(message)).lower()
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
    # Email is offered with its address: "write to us by email" is no help without it.
    always = [f"{c.name} ({p.doc.contact.email})" if c.id == "email" else c.name for c in p.doc.channels if c.always_open]
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
    """The levels, what each handles, then when a request moves from one to the next, each
    move a sentence of its own: "at what point does the agent bring in an engineer?" asks
    one move, and it was a clause inside the level's list item (the fact finder,
    bot/policy_facts.py, matched the prioritisation sentence instead)."""
    levels = p.doc.process.escalation_levels
    lines = [f"Requests move through {len(levels)} levels:"]
    lines += [f"{level.level}. {level.name}: {level.handles}" for level in levels]
    for i, (level, above) in enumerate(zip(levels, levels[1:])):
        when = level.moves_up_when[:1].lower() + level.moves_up_when[1:]
        # The first level turns a request into a ticket (process.submission); after it,
        # what moves is a ticket, the word customers use ("when does my ticket go to the
        # technical team?" was 0.51 from "A request moves up …", 0.62 from "A ticket …").
        noun = "request" if i == 0 else "ticket"
        lines.append(f"A {noun} moves up from the {level.name.lower()} to the {above.name.lower()} when {when}")
    if levels:
        lines.append(f"{levels[-1].name}: {levels[-1].moves_up_when}")
    return "\n".join(lines)


def _responsibilities(p: SupportPolicy, now: dt.datetime, msg: str) -> str:
    info = p.doc.customer_responsibilities
    return "When you open a ticket or write to us, please include:\n" + "\n".join(f"- {i}" for i in info.required_information) + f"\n{info.communication}"


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


# How long after a maintenance window ends the answer still names it (as over).
RECENTLY_ENDED = dt.timedelta(days=14)


def _maintenance(p: SupportPolicy, now: dt.datetime, msg: str) -> str:
    notices = p.active_notices(now)
    upcoming = [w for w in p.doc.availability.maintenance_windows if w.ends > now]
    if not notices and not upcoming:
        # A window that has just ended is still asked about ("is the maintenance on the 6th
        # still going ahead?"): it is named as over, for as long as a notice runs before one.
        ended = [w for w in p.doc.availability.maintenance_windows if w.ends <= now and now - w.ends <= RECENTLY_ENDED]
        last = max(ended, key=lambda w: w.ends, default=None)
        over = f" The last window, {format_span(p, last.starts, last.ends, now)}, is over." if last else ""
        return f"No maintenance is planned at the moment.{over} We announce every window in advance on the status page."
    lines = []
    for w in sorted(upcoming, key=lambda w: w.starts):
        when = f"in progress now, until {format_time(p, w.ends, now)}" if w.starts <= now else format_span(
            p, w.starts, w.ends, now)
        lines.append(f"- {when}: {w.notice} (announced {w.notice_days:g} days ahead on the status page)")
    return "Planned maintenance:\n" + "\n".join(lines)


def _liability(p: SupportPolicy, now: dt.datetime, msg: str) -> str:
    return p.doc.liability


def _custom(p: SupportPolicy, now: dt.datetime, msg: str) -> str:
    c = p.doc.custom_solutions
    return (
        f"{c.description} Custom work is charged separately from your subscription: "
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


# The topics that say what support does not cover: other companies' products, custom
# solutions (quoted separately) and the exclusions (advice, hardware and networks, code a
# customer or contractor wrote). The severities and their deadlines are for covered
# products, so a problem answered only from these topics is no urgent Makana ticket.
NOT_COVERED_TOPICS = frozenset({"exclusions", "third_party", "custom_solutions"})


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


# -- the fact asked ----------------------------------------------------------------------
#
# A policy question usually asks one fact of a section: whether a product version is
# supported, one channel's number, whether a day is open, the deadline for a severity.
# `policy_fact` answers that fact in its first sentence, from the policy only; it returns
# None when the message asks for nothing more specific than the section, which is then
# answered whole. What is looked up in the message are names the policy itself defines
# (products and their aliases and versions, channels, weekdays, holidays); which section
# is asked is decided by meaning, by the index, before this runs.


@dataclass(frozen=True)
class Situation:
    """What the customer's message says beyond the section it asks about."""

    message: str
    # The severity the customer describes (named, or triaged from a described problem);
    # None when the message describes no problem.
    severity: str | None = None
    # Picks the text closest in meaning to the message (the index's encoder); optional.
    closest: Callable[[str, Sequence[str]], int] | None = None
    # The contact details the message asks for (bot/contact_facets.py); optional.
    facets: Callable[[str], list[str]] | None = None

    def contact_facets(self) -> list[str]:
        return self.facets(self.message) if self.facets is not None else facet_words(self.message)


def described_severity(message: str, triaged: str | None, is_problem: bool, imagined: str | None = None) -> str | None:
    """The severity of the customer's situation: named outright (or the triage of the
    problem described, when that is more severe), else the severity of the
    situation the question imagines (`imagined`: the triage of its "if …" clause, see
    `imagined_situation`; "nothing is broken now, but if an important feature broke for
    most of us, how long would a fix take?" asks about High), else a calm or negated
    urgency ("it's not urgent", "whenever you can") makes it Low for a question and at
    most Medium for a problem, else the triage of a described problem, else None."""
    named = mentioned_severity(message)
    if named:
        # A customer's word for their own problem is evidence, not the rating: "minor-ish
        # thing. two of our six users get a blank page … if they switch to Chrome it loads
        # fine" is the policy's Medium (some users, a workaround), and the triage reads it
        # so. The word only raises a described problem's severity, never lowers it: an
        # under-rating costs more than an over-rating (a Critical outage told a Low
        # deadline is the worst error). Measured on the 87 time cases of the conversation
        # eval: this changes one answer (holdout fresh20-p03, Low → Medium, right).
        if is_problem and triaged is not None and SEVERITY_ORDER.index(triaged) < SEVERITY_ORDER.index(named):
            return triaged
        return named
    if imagined:
        return imagined
    said_calm = bool(NON_URGENT.search(message) or CALM.search(message))
    if said_calm or negations(message):
        if not is_problem or triaged is None:
            return "low"
        if triaged == "critical" and not said_calm:
            # A negated phrase alone never lowers a Critical problem: the triage read the
            # text without it already (bot.triage.without_negations), and the phrase is
            # often no calm at all: "since 8am my phone hasn't stopped: owners are getting
            # statements with OTHER owners' names" was told the Medium deadline.
            return triaged
        return triaged if SEVERITY_ORDER.index(triaged) >= SEVERITY_ORDER.index("medium") else "medium"
    return triaged if is_problem else None


def whole_word(text: str, name: str) -> re.Match[str] | None:
    """The first mention of `name` in `text` as a whole word, in any case ("my square
    reader" names Square; "square-foot" and "brother-in-law" name nothing)."""
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text, flags=re.IGNORECASE)


VERSION = re.compile(r"(?<![\w.])v?(\d+(?:\.\d+)?)(?!\w|\.\w)|\b(cloud)\b", re.IGNORECASE)


def mentioned_products(policy: SupportPolicy, message: str) -> list[tuple[Product, str | None]]:
    """The policy's products named in the message (name, id or alias), each with the
    version written after it (or anywhere, when only one product is named)."""
    found: list[tuple[int, int, Product]] = []
    for product in policy.doc.scope.products:
        names = (product.name, product.name.split()[-1], *product.aliases)
        hits = [m for m in (whole_word(message, n) for n in names) if m]
        if hits:
            first = min(hits, key=lambda m: m.start())
            found.append((first.start(), max(m.end() for m in hits), product))
    found.sort(key=lambda f: f[0])
    result = []
    for i, (start, end, product) in enumerate(found):
        stop = found[i + 1][0] if i + 1 < len(found) else len(message)
        window = message[end:stop] if len(found) > 1 else message[:start] + " " + message[end:]
        version = None
        for m in VERSION.finditer(window):
            listed = listed_version(product, m.group(1) or m.group(2) or "")
            if listed is not None:
                version = listed
                break
            # A number the policy does not list counts as a version written wrong, but not
            # at the end of a sentence: "it crashes with a KeyError on line 88." names no
            # version ("Makana POS 2." does, a listed one).
            if version is None and m.group(1) and not window[m.end():].startswith("."):
                version = m.group(0)
        result.append((product, version))
    return result


def listed_version(product: Product, written: str) -> str | None:
    """The version the policy lists (as it spells it) that a written one belongs to:
    itself, else its nearest listed parent ("2.4" of a product that lists "2" is version
    2, "1.9.3" is "1.9"); None when it belongs to none. A release of an unsupported major
    is not supported either: "the till app on version 2.4" got "Makana POS has no version
    2.4" instead of "no longer supported". The request form's version check
    (bot/intake `check_version`) reads versions with it too."""
    known = {v.lower().lstrip("v"): v for v in (*product.supported_versions, *product.unsupported_versions)}
    token = written.lower().lstrip("v")
    while token not in known and "." in token:
        token = token.rsplit(".", 1)[0]
    return known.get(token)


def _versions(product: Product) -> str:
    return ", ".join(product.supported_versions)


def _either(versions: Sequence[str]) -> str:
    """"4 or 3", "cloud, 6 or 5": the versions to upgrade to, as a sentence names them."""
    return versions[0] if len(versions) == 1 else f"{', '.join(versions[:-1])} or {versions[-1]}"


def _products_fact(p: SupportPolicy, now: dt.datetime, s: Situation) -> str | None:
    asked = mentioned_products(p, s.message)
    if not asked:
        return None
    sentences = []
    for product, version in asked:
        if version is None:
            old = f" Versions {', '.join(product.unsupported_versions)} are no longer supported." if product.unsupported_versions else ""
            sentences.append(f"{product.name} is supported in versions {_versions(product)}.{old}")
        elif version in product.supported_versions:
            sentences.append(f"Yes, {product.name} {version} is supported (supported versions: {_versions(product)}).")
        elif version in product.unsupported_versions:
            sentences.append(
                f"No, {product.name} {version} is no longer supported. Please upgrade to {product.name} "
                f"{_either(product.supported_versions)} to get help."
            )
        else:
            sentences.append(f"{product.name} has no version {version}; the supported versions are {_versions(product)}.")
    return " ".join(_plain(x, s.message) for x in sentences)


# Channels and contact details, each with the words that name it in a question.
_FACETS = (
    ("meet", r"video|google meet|\bmeet\b|call with (?:an?|one of your|your) (?:engineer|tech)"),
    ("security", r"security|vulnerab|hack|breach"),
    ("billing", r"billing|invoice|payment|charge"),
    ("phone", r"phone|telephone|\bring\b|\bdial\b|(?:\bwhat|\bwhich|\byour|\bthe)\s(?:\w+\s)?number|\bcall (?:you|us|them|someone)\b"),
    ("email", r"e-?mail|write to"),
    ("address", r"(?<!email )(?<!e-mail )address|located|location|\bbased\b|headquarter|\boffice\b|\bpost\b|postal|letter|cheque|\bmail (?:a|you|us|it)\b|where are you"),
    ("in_app", r"in-app|inside the (?:\w+ )?app|in the app|app itself"),
    ("chat", r"\bchat\b"),
)


def facet_words(message: str) -> list[str]:
    """The contact facets the message's words name: evidence for bot/contact_facets.py,
    which decides by meaning (and the decision when no model is given)."""
    asked = [name for name, pattern in _FACETS if re.search(pattern, message, flags=re.IGNORECASE)]
    if "billing" in asked and not re.search(r"e-?mail|write|contact|address", message, flags=re.IGNORECASE):
        asked.remove("billing")
    if "security" in asked and "email" in asked:
        asked.remove("email")
    if "billing" in asked and "email" in asked:
        asked.remove("email")
    return asked


def _channel(p: SupportPolicy, channel_id: str):
    return next((c for c in p.doc.channels if c.id == channel_id), None)


def contact_details(p: SupportPolicy) -> dict[str, str]:
    """One sentence per contact detail of the policy, by facet."""
    c = p.doc.contact
    return {
        "phone": f"Our phone number is {c.phone}, answered {hours_text(p)} (not on public holidays).",
        "email": f"Email us at {c.email}; we read it in business hours and critical issues are paged around the clock.",
        "billing": f"For billing questions, email {c.billing_email}.",
        "security": f"Report security issues to {c.security_email}.",
        "address": f"Our postal address is {c.address}.",
    }


def _contact_fact(p: SupportPolicy, now: dt.datetime, s: Situation) -> str | None:
    details = contact_details(p)
    sentences = []
    asked = s.contact_facets()
    for facet in asked:
        if facet in details:
            sentences.append(details[facet])
        else:
            channel = _channel(p, {"meet": "google_meet"}.get(facet, facet if facet != "chat" else "web_chat"))
            if channel is not None:
                when = "any time" if channel.always_open else hours_text(p)
                sentences.append(f"{channel.name}: {channel.how.rstrip('.')} ({when}).")
    if not sentences:
        return None
    if any(f in asked for f in ("phone", "chat", "in_app", "meet")):
        sentences.append(status_text(p, now))
    return " ".join(sentences)


# Other names of a holiday, keyed by the holiday (`holiday_of`): "christmas" names both
# Christmas Eve and Christmas Day, "new year" both New Year's Eve and Day.
HOLIDAY_ALIASES = {
    "independence": ("4th of july", "fourth of july", "july 4", "july 4th", "independence day"),
    "christmas": ("christmas", "xmas"),
    "new year's": ("new year", "new years", "new year's"),
    "thanksgiving": ("thanksgiving",),
}


def holiday_of(name: str) -> str:
    """The holiday a day's name belongs to: the name without a note in brackets and without
    "Day" or "Eve" ("Christmas Eve (company closure)" and "Christmas Day" are "christmas")."""
    name = re.sub(r"\s*\(.*\)$", "", name.lower())
    return re.sub(r" (?:day|eve)$", "", name)


_MONTHS = (
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november",
    "december",
)
_MONTH = "|".join([*_MONTHS, "sept", *(m[:3] for m in _MONTHS)])


def _month_number(word: str) -> int:
    """1 to 12 for a month's name or its abbreviation ("dec", "sept")."""
    word = "sep" if word == "sept" else word
    return next(n for n, name in enumerate(_MONTHS, 1) if word in (name, name[:3]))


def asked_days(p: SupportPolicy, now: dt.datetime, message: str) -> list[tuple[str, dt.date | None, int | None]]:
    """The days a message asks about: (label, date, weekday) for a named holiday or
    date (its next occurrence), or a weekday ("on Sundays", "weekends")."""
    text = message.lower().replace("\u2019", "'")
    today = now.astimezone(p.tz).date()
    days: list[tuple[str, dt.date | None, int | None]] = []
    upcoming = [(today + dt.timedelta(days=n)) for n in range(370)]
    named = {d: p.holiday(d) for d in upcoming}
    for day, name in named.items():
        if not name:
            continue
        lowered = name.lower()
        aliases = HOLIDAY_ALIASES.get(holiday_of(name), ())
        words = [w for w in re.findall(r"[a-z']{5,}", lowered) if w not in ("company", "closure", "observed")]
        if any(whole_word(text, a) for a in aliases) or (words and all(whole_word(text, w) for w in words)):
            if not any(d == day for _, d, _ in days):
                days.append((name, day, None))
    if days:
        # "Christmas Eve" names Christmas Eve and, through "christmas", Christmas Day: of the
        # days of one holiday, keep the closest names. Names as close are each asked ("which
        # days around Christmas and New Year are you shut?" asks all four closures; it got
        # Christmas Eve alone), and so is each holiday named ("open on christmas day or new
        # year's day?" got New Year's Day alone, its name having more words in common).
        found = [
            (d, holiday_of(d[0]), sum(1 for w in re.findall(r"[a-z']+", d[0].lower()) if whole_word(text, w)))
            for d in days
        ]
        best: dict[str, int] = {}
        for _, holiday, closeness in found:
            best[holiday] = max(best.get(holiday, 0), closeness)
        return [d for d, holiday, closeness in found if closeness == best[holiday]]
    # "24 December", "the 24th of December", "Dec 24th", "december the 24th".
    for m in re.finditer(
        rf"\b(\d{{1,2}})(?:st|nd|rd|th)?(?: of)? ({_MONTH})\b|\b({_MONTH})\.? (?:the )?(\d{{1,2}})(?:st|nd|rd|th)?\b", text
    ):
        number, month = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
        month_no = _month_number(month)
        for year in (today.year, today.year + 1):
            try:
                day = dt.date(year, month_no, int(number))
            except ValueError:
                break
            if day >= today:
                days.append((f"{day:%A} {day.day} {day:%B %Y}", day, None))
                break
    if days:
        return days
    if re.search(r"\bweekends?\b", text):
        return [("Saturdays", None, 5), ("Sundays", None, 6)]
    for number, name in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")):
        if re.search(rf"\b{name}s?\b", text):
            days.append((name.capitalize() + "s", None, number))
    if re.search(r"\btomorrow\b", text):
        day = today + dt.timedelta(days=1)
        days.append(("tomorrow", day, None))
    return days


_TODAY = re.compile(r"\b(?:tonight|today|this (?:morning|afternoon|evening))\b", re.IGNORECASE)


def maintenance_on_asked_days(p: SupportPolicy, now: dt.datetime, message: str) -> list[Notice]:
    """The announced maintenance windows on a day the message names: a date, today or
    tomorrow, or a weekday (or the weekend) whose coming occurrence a window falls on.
    "I do my invoicing at 3am on Sundays, anything planned that would get in the way?"
    names the Sunday of the window; it was asked as the hours of support that day."""
    notices = p.active_notices(now)
    if not notices:
        return []
    today = now.astimezone(p.tz).date()
    days = asked_days(p, now, message)
    if _TODAY.search(message):
        days.append(("today", today, None))
    found = []
    for n in notices:
        span = [n.starts.date() + dt.timedelta(days=i) for i in range((n.ends.date() - n.starts.date()).days + 1)]
        coming = [d for d in span if 0 <= (d - today).days < 7]
        if any(
            (day is not None and day in span) or (weekday is not None and any(d.weekday() == weekday for d in coming))
            for _, day, weekday in days
        ):
            found.append(n)
    return found


# Words that turn a yes/no question around: after "is support closed on …" or "has
# POS 2 been dropped", a leading "Yes" means closed or unsupported, the opposite of
# "are you open". The fact is then stated without "Yes"/"No", which reads right either
# way; a plain question keeps its direct "Yes"/"No". Missing such a word costs a
# "No" that answers the opposite question, so the list is broad: a question caught by
# mistake only loses its "Yes"/"No" (labelled set data/yes_no/, tests/test_policy.py).
_REVERSING = re.compile(
    r"\b(?:clos(?:e|ed|es|ing)|shut|off|holidays?|unavailable|unsupported|not|no|never|nobody|no one|none"
    r"|discontinued|deprecated|dropped|drop|retired?|obsolete|expired?|stop(?:ped|s)?|end(?:ed)?|ending|eol"
    r"|phased|sunset|abandon(?:ed)?|kill(?:ed)?|any ?more|without|out)\b|n['’]t\b",
    re.IGNORECASE,
)


def asks_reversed(message: str) -> bool:
    """Whether "yes" to this question would mean closed or unsupported (see _REVERSING)."""
    return bool(_REVERSING.search(message))


def _plain(sentence: str, message: str) -> str:
    """The sentence without its leading "Yes, "/"No, " when the question is reversed."""
    if asks_reversed(message):
        for lead in ("Yes, ", "No, "):
            if sentence.startswith(lead):
                rest = sentence[len(lead):]
                return rest[0].upper() + rest[1:]
    return sentence


def _day_fact(p: SupportPolicy, now: dt.datetime, s: Situation) -> str | None:
    days = asked_days(p, now, s.message)
    if not days:
        return None
    open_days = {["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"].index(d) for d in p.doc.business_hours.days}
    hours = p.doc.business_hours
    clock = f"{hours.opens.hour}:{hours.opens.minute:02d} to {hours.closes.hour}:{hours.closes.minute:02d} {p.doc.company.timezone_label}"
    sentences = []
    for label, day, weekday in days:
        if day is not None:
            reason = p.closed_reason(day)
            when = f"{day:%A} {day.day} {day:%B %Y}" if label != "tomorrow" else f"tomorrow ({day:%A} {day.day} {day:%B})"
            if reason:
                why = "" if reason.lower() == f"{day:%A}".lower() else f" for {reason}"
                sentences.append(f"No, support is closed on {when}{why}.")
            else:
                sentences.append(f"Yes, we're open on {when}, {clock}.")
        elif weekday in open_days:
            sentences.append(f"Yes, we're open on {label}, {clock} (except public holidays).")
        else:
            sentences.append(f"No, we're closed on {label}.")
    if any(x.startswith("No") for x in sentences):
        sentences.append(f"Our hours are {hours_text(p)}; critical issues are handled around the clock.")
    sentences = [_plain(x, s.message) for x in sentences]
    if "phone" in s.contact_facets():
        sentences.append(f"Our phone number is {p.doc.contact.phone}.")
    return " ".join(sentences)


def _deadline_line(p: SupportPolicy, severity: str, sent: dt.datetime, now: dt.datetime) -> str:
    """One severity's first-response deadline for a request sent at `sent`, told at `now`."""
    s = p.severity(severity)
    clock = "around the clock" if s.clock == "around_the_clock" else "business hours"
    return f"{s.name} ({format_hours(s.first_response_hours)}, {clock}): by {format_time(p, p.response_due(severity, sent), now)}"


# The parts of a day a customer names, as the hour a request written then is sent.
_PARTS_OF_DAY = {"morning": 10, "lunchtime": 12, "noon": 12, "midday": 12, "afternoon": 15, "evening": 19, "night": 22}
_CLOCK_TIME = re.compile(r"\b(?:at|around|about)?\s*(\d{1,2})(?::(\d{2}))?\s*(am|pm|a\.m\.|p\.m\.)?(?=[\s,.?!]|$)", re.IGNORECASE)


_SENDING = re.compile(
    r"\b(?:send|sent|sending|e-?mail\w*|writ\w*|wrote|messag\w*|mail|call\w*|ring|phon\w*|contact\w*|log\w*|open(?:ed|ing)? (?:a |an |the )?(?:ticket|request|case)"
    r"|submit\w*|raise\w*|post\w*|reach\w*|file|report\w*|ping\w*|text\w*|chat\w*|ask\w*|drop\w*|put in|request)\b",
    re.IGNORECASE,
)
_SENT_ALREADY = re.compile(
    r"\b(?:i|we|i've|we've|i have|we have|already)\s+(?:already\s+|just\s+)?(?:sent|e-?mailed|wrote|messaged|called|rang|phoned|contacted|logged|opened|submitted|raised|posted|reported"
    r"|pinged|texted|asked|dropped|filed|put in)\b",
    re.IGNORECASE,
)
_SENDING_NOW = re.compile(r"\b(?:right now|now|today|this (?:morning|afternoon|evening)|tonight|at the moment|immediately)\b", re.IGNORECASE)


def asked_send_time(p: SupportPolicy, now: dt.datetime, message: str) -> tuple[str, dt.datetime] | None:
    """The moment a time question imagines sending a request ("if I email you on a
    Sunday afternoon, when…"): one named day (a weekday, "tomorrow", a holiday or a
    date, see `asked_days`) and, if given, a part of the day or a clock time. Returns
    (how the customer put it, the moment in the policy's zone), or None when the
    message names no single day (the question is about sending now)."""
    if _SENDING_NOW.search(message):
        return None
    # The day must be named where the sending is ("on a Sunday, if I email you…"), not
    # elsewhere ("we close the month on Friday; if I write, when…" asks about now).
    clauses = [c for c in re.split(r"[.?!;]+", message) if _SENDING.search(c) and not _SENT_ALREADY.search(c)]
    days = asked_days(p, now, " ".join(clauses)) if clauses else []
    if len(days) != 1:
        return None
    label, day, weekday = days[0]
    today = now.astimezone(p.tz).date()
    if day is None:
        day = today + dt.timedelta(days=(weekday - today.weekday()) % 7)
    text = message.lower()
    part = next((w for w in _PARTS_OF_DAY if re.search(rf"\b{w}\b", text)), None)
    hour, minute = (_PARTS_OF_DAY[part], 0) if part else (12, 0)
    clock = None
    for m in _CLOCK_TIME.finditer(text):
        h = int(m.group(1))
        suffix = (m.group(3) or "").replace(".", "")
        if not (suffix or m.group(2)) or h > 23 or (suffix and not 1 <= h <= 12):
            continue
        if suffix == "pm" and h != 12:
            h += 12
        elif suffix == "am" and h == 12:
            h = 0
        clock = (h, int(m.group(2) or 0))
        break
    if clock:
        hour, minute = clock
    sent = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=p.tz)
    if sent <= now:
        if weekday is None:
            return None  # a past moment: nothing to compute from
        sent += dt.timedelta(days=7)
    name = f"{sent:%A}" if weekday is not None else (label if label == "tomorrow" else f"{sent:%A} {sent.day} {sent:%B}")
    when = f"at {hour}:{minute:02d}" if clock else (part or "")
    return (f"{name} {when}".strip(), sent)


def _sent_later_fact(p: SupportPolicy, now: dt.datetime, s: Situation, asked: tuple[str, dt.datetime]) -> str:
    """Deadlines for a request sent at the moment the customer names."""
    label, sent = asked
    sev = p.severity(s.severity) if s.severity else None
    if sev is not None and sev.clock == "around_the_clock":
        due = p.response_due(sev.id, sent)
        return (f"{sev.name} problems are handled around the clock: sent on {label}, a {sev.name.lower()}-severity "
                f"request gets its first response by {format_time(p, due, now)}. {severity_line(p, s.severity)}")
    if p.is_open(sent):
        lead = f"Sent on {label}, during our business hours, a request is read as it arrives."
    else:
        opening = p.next_opening(sent)
        holiday = p.holiday(sent.date())
        why = f" for {holiday}" if holiday else ""
        lead = (f"Sent on {label}, when we're closed{why}, a request is read when we open: {format_time(p, opening, now)}; "
                "Critical problems are handled around the clock.")
    if sev is not None:
        return f"{lead} A {sev.name.lower()}-severity request sent then gets its first response by " \
               f"{format_time(p, p.response_due(sev.id, sent), now)}. {severity_line(p, sev.id)}"
    lines = [lead, "First responses are then due by:"]
    lines += [f"- {_deadline_line(p, severity, sent, now)}" for severity in SEVERITY_ORDER]
    return "\n".join(lines)


def _response_fact(p: SupportPolicy, now: dt.datetime, s: Situation) -> str | None:
    asked = asked_send_time(p, now, s.message)
    if asked is not None:
        return _sent_later_fact(p, now, s, asked)
    if s.severity:
        sev = p.severity(s.severity)
        due = p.response_due(s.severity, now)
        return (
            f"A {sev.name.lower()}-severity request sent now gets its first response by {format_time(p, due, now)}. "
            f"{severity_line(p, s.severity)} {sev.name} means: {sev.definition}"
        )
    lines = ["If you write now, your first response is due by:"]
    lines += [f"- {_deadline_line(p, severity, now, now)}" for severity in SEVERITY_ORDER]
    lines.append("The severity follows our policy's definitions; tell me about your problem and I'll say which applies.")
    return "\n".join(lines)


def _severity_fact(p: SupportPolicy, now: dt.datetime, s: Situation) -> str | None:
    named = [x for x in SEVERITY_ORDER if whole_word(s.message, x)]
    if len(named) != 1:
        return None
    sev = p.severity(named[0])
    return f"{sev.name} means: {sev.definition} {severity_line(p, sev.id)}"


def _exclusion_fact(p: SupportPolicy, now: dt.datetime, s: Situation) -> str | None:
    if s.closest is None:
        return None
    clauses = p.doc.scope.exclusions
    clause = clauses[s.closest(s.message, clauses)]
    return f"Sorry, that is not covered by our support: {clause[0].lower()}{clause[1:]}"


# A question about how changes to the policy reach customers, rather than what changed.
_NOTICE = re.compile(r"\b(?:notif\w*|told|tell|warn\w*|announc\w*|inform\w*|heads[- ]up|notice|advance|in time|before)\b", re.IGNORECASE)


# What questions about the policy's changes in general read like: the changelog lines
# compete with them, so "what's new in the policy" keeps the whole section.
_ANY_CHANGE = (
    "what changed in the latest version of the support policy",
    "is there a changelog or version history of the support terms",
    "when did this version of the policy take effect",
)


def _updates_fact(p: SupportPolicy, now: dt.datetime, s: Situation) -> str | None:
    """The one change the question is about ("when did you start opening on Saturdays?"),
    with its version and date; else how changes are announced, first, when that is what
    is asked; else None (the section). A wrong call of the announcement only changes the
    order: both sentences are in the answer."""
    u = p.doc.updates
    current = f"This is version {u.version} of our support policy, effective {u.effective:%-d %B %Y}."
    if s.closest is not None:
        changes = [(release, change) for release in u.changelog for change in release.changes]
        pick = s.closest(s.message, [*_ANY_CHANGE, *(change for _, change in changes)]) - len(_ANY_CHANGE)
        if pick >= 0:
            release, change = changes[pick]
            return f"That changed in version {release.version}, effective {release.date:%-d %B %Y}: {change} {current}"
    if _NOTICE.search(s.message):
        return f"{u.how_notified} {current}"
    return None


FACTS: dict[str, Callable[[SupportPolicy, dt.datetime, Situation], str | None]] = {
    "products": _products_fact,
    "contact": _contact_fact,
    "channels": _contact_fact,
    "hours": _day_fact,
    "open_now": _day_fact,
    "holidays": _day_fact,
    "response_times": _response_fact,
    "severities": _severity_fact,
    "exclusions": _exclusion_fact,
    "updates": _updates_fact,
}


def policy_fact(topic: str, policy: SupportPolicy, now: dt.datetime, situation: Situation) -> str | None:
    """The fact the message asks of a policy topic, in one or two sentences, or None
    when it asks for the section as a whole."""
    compose = FACTS.get(topic)
    return compose(policy, now, situation) if compose else None
