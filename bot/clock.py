"""How a moment is told to a customer: one clock rule for every time they read.

The banner of the widget, the assistant's messages, call slots and deadlines all go
through here, so that they agree:

- the customer's own time when their zone is known, with the company's time alongside
  when the two clocks differ: "today at 11:30 your time (9:30 Hawaii time)";
- the company's time alone when the zone is unknown or reads the same:
  "today at 9:30 (Hawaii time)";
- a date whenever the moment is not today or tomorrow (in that zone):
  "Monday 7 December at 9:30 (Hawaii time)".

Whose clock: the web service passes the zone it was given explicitly (``tz=``). The
action server learns the customer's zone from the message (the widget sends it as
metadata) and sets it for the duration of one action call with `customer_clock`, the
way a web framework activates the request's time zone; every `format_time` below that
call, in whatever module composes the message, then uses it. Without it (the staff
side, tests, a customer who sent no zone) times are in the company's zone.

A zone is accepted only when it is in the IANA list (the tzdata package's).
"""

from __future__ import annotations

import datetime as dt
from importlib import resources
from contextlib import contextmanager
from contextvars import ContextVar, Token
from functools import lru_cache
from typing import Iterator
from zoneinfo import ZoneInfo

from bot.policy import SupportPolicy

YOUR_TIME = "your time"

_customer: ContextVar[ZoneInfo | None] = ContextVar("customer_zone", default=None)


@lru_cache(maxsize=1)
def known_zones() -> frozenset[str]:
    """The IANA time zone names: the list the tzdata package ships (a requirement), which
    unlike a walk of /usr/share/zoneinfo has no 'localtime' or 'posixrules'."""
    return frozenset(resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8").split()) - {"Factory"}


def customer_zone(name: object) -> ZoneInfo | None:
    """The zone called `name` if it is in the IANA list, else None (missing, malformed, unknown)."""
    if not isinstance(name, str) or name not in known_zones():
        return None
    return ZoneInfo(name)


@contextmanager
def customer_clock(zone: ZoneInfo | None) -> Iterator[None]:
    """Tell times in `zone` (the customer's) inside this block; None: the company's."""
    token = set_customer_zone(zone)
    try:
        yield
    finally:
        reset_customer_zone(token)


def set_customer_zone(zone: ZoneInfo | None) -> Token:
    """`customer_clock` for a server's request hooks: set now, `reset_customer_zone` after."""
    return _customer.set(zone)


def reset_customer_zone(token: Token) -> None:
    _customer.reset(token)


def current_customer_zone() -> ZoneInfo | None:
    """The customer's zone set by `customer_clock`, or None."""
    return _customer.get()


def zone_label(policy: SupportPolicy, zone: ZoneInfo) -> str:
    """'Hawaii time' for the company's zone (the policy's label), else 'Los Angeles time'."""
    if zone.key == policy.tz.key:
        return policy.doc.company.timezone_label
    return zone.key.split("/")[-1].replace("_", " ") + " time"


def _reader(policy: SupportPolicy, tz: ZoneInfo | None, at: dt.datetime) -> ZoneInfo | None:
    """The customer's zone to show beside the company's, or None when one clock is enough."""
    zone = tz if tz is not None else _customer.get()
    if zone is None or zone.key == policy.tz.key:
        return None
    if at.astimezone(zone).replace(tzinfo=None) == at.astimezone(policy.tz).replace(tzinfo=None):
        return None  # another name for the same clock (US/Hawaii), or the same offset then
    return zone


def _clock(local: dt.datetime) -> str:
    return f"{local.hour}:{local.minute:02d}"


def _day(local: dt.datetime, now: dt.datetime) -> str:
    """'today', 'tomorrow (Friday)', 'yesterday (Wednesday)' or 'Monday 7 December' (with the
    year when it is not this year), counted in `local`'s zone."""
    today = now.astimezone(local.tzinfo).date()
    days = (local.date() - today).days
    if days == 0:
        return "today"
    if days == 1:
        return f"tomorrow ({local:%A})"
    if days == -1:
        return f"yesterday ({local:%A})"
    year = f" {local.year}" if local.year != today.year else ""
    return f"{local:%A} {local.day} {local:%B}{year}"


def format_time(policy: SupportPolicy, at: dt.datetime, now: dt.datetime, tz: ZoneInfo | None = None) -> str:
    """One moment for a customer: 'today at 9:30 (Hawaii time)', or with their zone known
    and different, 'today at 11:30 your time (9:30 Hawaii time)'.

    `tz` is the customer's zone; None means the one set by `customer_clock`, if any.
    """
    company = at.astimezone(policy.tz)
    label = policy.doc.company.timezone_label
    zone = _reader(policy, tz, at)
    if zone is None:
        return f"{_day(company, now)} at {_clock(company)} ({label})"
    local = at.astimezone(zone)
    beside = _clock(company) if company.date() == local.date() else f"{company:%A} {_clock(company)}"
    return f"{_day(local, now)} at {_clock(local)} {YOUR_TIME} ({beside} {label})"


def format_span(policy: SupportPolicy, start: dt.datetime, end: dt.datetime, now: dt.datetime,
                tz: ZoneInfo | None = None) -> str:
    """A period for a customer, such as a maintenance window:
    'Sunday 6 December, 12:00–16:00 your time (2:00–6:00 Hawaii time)'."""
    if end <= start:
        raise ValueError("a period must end after it starts")
    label = policy.doc.company.timezone_label
    zone = _reader(policy, tz, start) or _reader(policy, tz, end)
    company = _span(start.astimezone(policy.tz), end.astimezone(policy.tz), now)
    if zone is None:
        return f"{company} ({label})"
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    same_days = (local_start.date(), local_end.date()) == (
        start.astimezone(policy.tz).date(), end.astimezone(policy.tz).date())
    beside = _span(start.astimezone(policy.tz), end.astimezone(policy.tz), now, days=not same_days)
    return f"{_span(local_start, local_end, now)} {YOUR_TIME} ({beside} {label})"


def _span(start: dt.datetime, end: dt.datetime, now: dt.datetime, days: bool = True) -> str:
    if start.date() == end.date():
        times = f"{_clock(start)}–{_clock(end)}"
        return f"{_day(start, now)}, {times}" if days else times
    if not days:
        return f"{start:%A} {_clock(start)} to {end:%A} {_clock(end)}"
    return f"{_day(start, now)} at {_clock(start)} to {_day(end, now)} at {_clock(end)}"


def slot_label(policy: SupportPolicy, start: dt.datetime, end: dt.datetime, tz: ZoneInfo | None = None) -> str:
    """A call slot for a customer, always dated: 'Mon 30 Nov, 9:30–10:00 Hawaii time', or
    'Mon 30 Nov, 11:30–12:00 your time (9:30–10:00 Hawaii time)'."""
    label = policy.doc.company.timezone_label
    company = _short_span(start.astimezone(policy.tz), end.astimezone(policy.tz), date=True)
    zone = _reader(policy, tz, start)
    if zone is None:
        return f"{company} {label}"
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    beside = _short_span(
        start.astimezone(policy.tz), end.astimezone(policy.tz),
        date=local_start.date() != start.astimezone(policy.tz).date(),
    )
    return f"{_short_span(local_start, local_end, date=True)} {YOUR_TIME} ({beside} {label})"


def _short_span(start: dt.datetime, end: dt.datetime, date: bool) -> str:
    times = f"{_clock(start)}–{_clock(end)}"
    return f"{start:%a} {start.day} {start:%b}, {times}" if date else times


def hours_beside(policy: SupportPolicy, now: dt.datetime, tz: ZoneInfo | None = None) -> str:
    """The daily opening hours on the customer's clock, to put beside the company's:
    ' (11:30 to 20:30 your time)', or '' when the clocks read the same.

    Counted on the next business day from `now` (offsets change with daylight saving)."""
    opens = policy.next_opening(now)
    hours = policy.doc.business_hours
    opens = dt.datetime.combine(opens.astimezone(policy.tz).date(), hours.opens, tzinfo=policy.tz)
    closes = dt.datetime.combine(opens.date(), hours.closes, tzinfo=policy.tz)
    zone = _reader(policy, tz, opens)
    if zone is None:
        return ""
    local_opens, local_closes = opens.astimezone(zone), closes.astimezone(zone)
    shift = (local_opens.date() - opens.date()).days
    after = {1: ", the next day", -1: ", the day before"}.get(shift, "")
    if local_closes.date() != local_opens.date():
        after = ", overnight" if not after else after
    return f" ({_clock(local_opens)} to {_clock(local_closes)} {YOUR_TIME}{after})"


def zone_in_events(events: object) -> ZoneInfo | None:
    """The zone the customer's latest message carried (the widget sends it as message
    metadata `timezone`), looked up through a Rasa tracker's events; None if none did."""
    if not isinstance(events, list):
        return None
    for event in reversed(events):
        if isinstance(event, dict) and event.get("event") == "user":
            metadata = event.get("metadata")
            zone = customer_zone(metadata.get("timezone")) if isinstance(metadata, dict) else None
            if zone is not None:
                return zone
    return None
