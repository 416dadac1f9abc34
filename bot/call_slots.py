"""Which call slots with the technical team can be offered, and who may have one.

Pure time reasoning over the support policy: slots lie inside open business intervals
(holidays and company closures skipped), never overlap a maintenance window (even one
that keeps support open: the team is busy with it), respect a minimum notice, avoid
taken times, and sit on a fixed grid in the company's zone, so one start instant is
one slot (the store relies on that to refuse double bookings). Nothing here reads the
clock or the database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable, Sequence
from zoneinfo import ZoneInfo

from bot.clock import slot_label, zone_label
from bot.policy import SupportPolicy
from bot.settings import Settings

UTC = dt.timezone.utc
SEARCH_DAYS = 60  # never look further ahead than this for free slots


@dataclass(frozen=True)
class Slot:
    """A bookable call: start and end are aware (UTC)."""

    start: dt.datetime
    end: dt.datetime

    def label(self, policy: SupportPolicy, tz: ZoneInfo | None = None) -> str:
        """'Mon 30 Nov, 9:30–10:00 Hawaii time', in `tz` or the company's zone, named (for the
        invitation and the team); what the customer reads is `customer_label`."""
        zone = tz or policy.tz
        start, end = self.start.astimezone(zone), self.end.astimezone(zone)
        return (
            f"{start:%a} {start.day} {start:%b}, {start.hour}:{start.minute:02d}–{end.hour}:{end.minute:02d} "
            f"{zone_label(policy, zone)}"
        )

    def customer_label(self, policy: SupportPolicy, tz: ZoneInfo | None = None) -> str:
        """The slot as the customer reads it (bot.clock's rule): their time, the company's beside."""
        return slot_label(policy, self.start, self.end, tz)


@dataclass(frozen=True)
class SlotRules:
    """How long a call lasts, how much notice the team needs, and the grid step."""

    duration: dt.timedelta = dt.timedelta(minutes=30)
    min_notice: dt.timedelta = dt.timedelta(hours=2)
    step: dt.timedelta = dt.timedelta(minutes=30)

    @classmethod
    def from_settings(cls, settings: Settings) -> "SlotRules":
        minutes = dt.timedelta(minutes=settings.meeting_minutes)
        return cls(minutes, dt.timedelta(minutes=settings.meeting_min_notice_minutes), minutes)


def qualifies(policy: SupportPolicy, severity: str) -> bool:
    """Whether a ticket of that severity may book a call (the policy's meeting_severities)."""
    return severity in policy.doc.process.meeting_severities


def free_slots(
    policy: SupportPolicy,
    now: dt.datetime,
    taken: Iterable[tuple[dt.datetime, dt.datetime]],
    count: int = 3,
    after: dt.datetime | None = None,
    duration: dt.timedelta = dt.timedelta(minutes=30),
    min_notice: dt.timedelta = dt.timedelta(hours=2),
    step: dt.timedelta = dt.timedelta(minutes=30),
    until: dt.datetime | None = None,
) -> list[Slot]:
    """The first `count` slots free at `now`, earliest first.

    `taken` holds busy (start, end) pairs (bookings, the team calendar); `after` asks for
    other times: only slots starting strictly after it (pass the last offered start).
    `until` bounds the search (default: SEARCH_DAYS after now); fewer slots may come back.
    """
    if now.tzinfo is None or (after is not None and after.tzinfo is None):
        raise ValueError("free_slots needs time-zone aware datetimes")
    busy = sorted((s, e) for s, e in taken)
    blocked = busy + [(w.starts, w.ends) for w in policy.doc.availability.maintenance_windows]
    earliest = now + min_notice
    if after is not None:
        earliest = max(earliest, after + dt.timedelta(microseconds=1))
    limit = until or now + dt.timedelta(days=SEARCH_DAYS)
    slots: list[Slot] = []
    for open_start, open_end in policy.open_intervals(earliest):
        if open_start >= limit or len(slots) >= count:
            break
        start = _align_up(max(open_start, earliest), step, policy.tz)
        while start + duration <= open_end and start < limit and len(slots) < count:
            end = start + duration
            if not any(s < end and start < e for s, e in blocked):
                slots.append(Slot(start.astimezone(UTC), end.astimezone(UTC)))
            start = _align_up(start + step, step, policy.tz)
    return slots


def is_offerable(
    policy: SupportPolicy,
    start: dt.datetime,
    now: dt.datetime,
    taken: Sequence[tuple[dt.datetime, dt.datetime]],
    rules: SlotRules = SlotRules(),
) -> Slot | None:
    """The slot starting at `start` if free_slots would offer it at `now`, else None."""
    found = free_slots(
        policy, now, taken, count=1, after=start - dt.timedelta(microseconds=1), duration=rules.duration,
        min_notice=rules.min_notice, step=rules.step, until=start + dt.timedelta(microseconds=1),
    )
    return found[0] if found and found[0].start == start else None


def _align_up(at: dt.datetime, step: dt.timedelta, tz: ZoneInfo) -> dt.datetime:
    """The first instant at or after `at` whose wall-clock time in `tz` is a multiple of `step`."""
    local = at.astimezone(tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    since = local.replace(tzinfo=None) - midnight.replace(tzinfo=None)  # wall-clock time of day
    steps = -(-since // step)  # ceiling division of timedeltas
    aligned = (midnight.replace(tzinfo=None) + steps * step).replace(tzinfo=tz)
    # Round-trip through UTC so a wall time in a DST gap becomes a real instant.
    aligned = aligned.astimezone(UTC)
    return aligned if aligned >= at else _align_up(at + step, step, tz)
