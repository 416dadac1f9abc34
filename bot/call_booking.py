"""Journey 7: hand a ticket over to the technical team on a Google Meet call.

One straight path for the actions: `offer_slots` (free times), `book` (hold the slot in
the database first, then make the calendar event), `cancel` and `move`. The database is
the source of truth: its unique index decides who gets a contested slot, and a booking
survives a calendar failure as "pending_calendar" with a team notification queued in the
same transaction (the outbox in bot/notify.py delivers it with the .ics attached).

Raises `StoreUnavailable` when the database cannot be reached (nothing is half-done
then: every database step is one transaction). Calendar failures never raise: they
are reported in the outcome.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field, replace
from typing import Literal

from bot.call_slots import Slot, SlotRules, free_slots, is_offerable, qualifies
from bot.clock import customer_zone
from bot.google_calendar import Calendar, CalendarUnavailable
from bot.notify import enabled_kinds
from bot.policy import SupportPolicy
from bot.settings import Settings
from bot.store import Booking, BookingNotFound, SlotTaken, Store, Ticket, TicketAlreadyBooked

log = logging.getLogger(__name__)

OFFER_DAYS = 28  # how far ahead slots are offered (and the team calendar is read)

OutcomeStatus = Literal["booked", "pending", "taken", "unavailable", "already_booked", "not_eligible", "not_found",
                        "cancelled"]


@dataclass(frozen=True)
class Offer:
    """Slots to offer, their labels as the customer reads them (bot.clock), and
    whether the team calendar was read (False: only booked calls were avoided)."""

    slots: list[Slot]
    labels: list[str]
    calendar_checked: bool


@dataclass(frozen=True)
class BookingOutcome:
    """What happened to a booking request.

    status: "booked" (Meet link known), "pending" (slot held, the link follows: the
    calendar was unreachable and the team was notified), "taken" (someone else got the
    slot first), "unavailable" (not a time free_slots would offer now), "already_booked"
    (the ticket has a call: `booking` is it), "not_eligible" (severity or ticket state),
    "not_found" (no call to move), "cancelled" (cancelled while the event was being made).
    """

    status: OutcomeStatus
    booking: Booking | None = None
    slot: Slot | None = None
    calendar_error: str | None = field(default=None, compare=False)

    @property
    def meet_url(self) -> str | None:
        return self.booking.meet_url if self.booking else None


async def offer_slots(
    store: Store,
    calendar: Calendar,
    policy: SupportPolicy,
    settings: Settings,
    now: dt.datetime,
    after: dt.datetime | None = None,
    customer_tz: str | None = None,
    count: int = 3,
) -> Offer:
    """The next free call slots; `after` (the last offered start) asks for other times."""
    rules = SlotRules.from_settings(settings)
    until = max(now, after or now) + dt.timedelta(days=OFFER_DAYS)
    taken, checked = await _taken(store, calendar, now, until)
    slots = free_slots(
        policy, now, taken, count=count, after=after, duration=rules.duration, min_notice=rules.min_notice,
        step=rules.step, until=until,
    )
    zone = customer_zone(customer_tz)
    return Offer(slots, [slot.customer_label(policy, zone) for slot in slots], checked)


async def book(
    store: Store,
    calendar: Calendar,
    policy: SupportPolicy,
    settings: Settings,
    ticket: Ticket,
    slot_start: dt.datetime,
    customer_tz: str | None,
    now: dt.datetime,
) -> BookingOutcome:
    """Book the call starting at `slot_start` for `ticket` and create its Meet link."""
    if not qualifies(policy, ticket.severity) or ticket.status not in ("open", "pending"):
        return BookingOutcome("not_eligible")
    existing = await store.booking_for_ticket(ticket.id)
    if existing is not None:
        return BookingOutcome("already_booked", existing, slot_of(existing))
    slot = await _offerable(store, calendar, policy, settings, slot_start, now)
    if slot is None:
        return BookingOutcome("unavailable")
    zone = customer_zone(customer_tz)
    try:
        booking = await store.book_slot(ticket.id, slot.start, slot.end, zone.key if zone else None, now)
    except SlotTaken:
        return BookingOutcome("taken", slot=slot)
    except TicketAlreadyBooked:  # the same customer booked twice at once
        existing = await store.booking_for_ticket(ticket.id)
        return BookingOutcome("already_booked", existing, slot_of(existing) if existing else None)
    return await _make_meeting(store, calendar, settings, ticket, booking, slot, now, "booking_created")


async def cancel(
    store: Store, calendar: Calendar, settings: Settings, ticket: Ticket, now: dt.datetime
) -> Booking | None:
    """Cancel the ticket's call (the slot is free at once); None if it had none.

    The calendar event is deleted best-effort; if that fails the team is told to
    delete it by hand.
    """
    booking = await store.booking_for_ticket(ticket.id)
    if booking is None:
        return None
    kinds = enabled_kinds(settings)
    try:
        cancelled = await store.cancel_booking(booking.id, now, notify=kinds)
    except BookingNotFound:
        return None
    await _delete_event(store, calendar, booking, kinds, now)
    return cancelled


async def move(
    store: Store,
    calendar: Calendar,
    policy: SupportPolicy,
    settings: Settings,
    ticket: Ticket,
    new_start: dt.datetime,
    now: dt.datetime,
) -> BookingOutcome:
    """Move the ticket's call to `new_start`; if that slot is taken the old call stays."""
    old = await store.booking_for_ticket(ticket.id)
    if old is None:
        return BookingOutcome("not_found")
    slot = await _offerable(store, calendar, policy, settings, new_start, now, exclude=old.id)
    if slot is None:
        return BookingOutcome("unavailable", old, slot_of(old))
    try:
        new = await store.move_booking(old.id, slot.start, slot.end, now)
    except SlotTaken:
        return BookingOutcome("taken", old, slot_of(old))
    except BookingNotFound:  # cancelled or moved by a concurrent request
        return BookingOutcome("not_found")
    outcome = await _make_meeting(store, calendar, settings, ticket, new, slot, now, "booking_moved")
    await _delete_event(store, calendar, old, enabled_kinds(settings), now)
    return outcome


async def _make_meeting(
    store: Store,
    calendar: Calendar,
    settings: Settings,
    ticket: Ticket,
    booking: Booking,
    slot: Slot,
    now: dt.datetime,
    event: str,
) -> BookingOutcome:
    """Create the calendar event of a held slot and record it, with the team's notification."""
    kinds = enabled_kinds(settings)
    if not kinds:
        log.warning("no team notification channel is configured: booking %s is only in the database", booking.id)
    try:
        meeting = await calendar.create_meeting(ticket, slot, [ticket.email])
    except CalendarUnavailable as exc:
        log.warning("booking %s of %s kept as pending_calendar: %s", booking.id, ticket.number, exc)
        booking = await store.set_booking_calendar(
            booking.id, "pending_calendar", None, None, now, notify=kinds, event="booking_pending"
        )
        return BookingOutcome("pending" if booking.active else "cancelled", booking, slot, str(exc))
    status = "booked" if meeting.meet_url else "pending_calendar"
    booking = await store.set_booking_calendar(
        booking.id, status, meeting.meet_url, meeting.event_id, now, notify=kinds,
        event=event if meeting.meet_url else "booking_pending",
    )
    if not booking.active:
        # Cancelled while the event was being made: take the event away again.
        await _delete_event(store, calendar, replace(booking, calendar_event_id=meeting.event_id), kinds, now)
        return BookingOutcome("cancelled", booking, slot)
    return BookingOutcome("booked" if status == "booked" else "pending", booking, slot)


async def _delete_event(
    store: Store, calendar: Calendar, booking: Booking, kinds: tuple[str, ...], now: dt.datetime
) -> None:
    if not booking.calendar_event_id:
        return
    try:
        await calendar.delete_meeting(booking.calendar_event_id)
    except CalendarUnavailable as exc:
        log.warning("calendar event %s of booking %s left in place: %s", booking.calendar_event_id, booking.id, exc)
        await store.queue_booking_notification(booking.id, "calendar_cleanup", kinds, now)


async def _offerable(
    store: Store,
    calendar: Calendar,
    policy: SupportPolicy,
    settings: Settings,
    start: dt.datetime,
    now: dt.datetime,
    exclude: int | None = None,
) -> Slot | None:
    """The slot at `start` if free_slots would offer it now (bookings and calendar considered)."""
    if start.tzinfo is None:
        raise ValueError("slot_start must be time-zone aware")
    rules = SlotRules.from_settings(settings)
    taken, _ = await _taken(store, calendar, start, start + rules.duration, exclude)
    return is_offerable(policy, start, now, taken, rules)


async def _taken(
    store: Store, calendar: Calendar, from_: dt.datetime, to: dt.datetime, exclude: int | None = None
) -> tuple[list[tuple[dt.datetime, dt.datetime]], bool]:
    """Booked calls plus the team calendar's busy times; the flag says whether the calendar answered."""
    taken = [(b.starts_at, b.ends_at) for b in await store.active_bookings(from_, to) if b.id != exclude]
    try:
        taken += await calendar.busy(from_, to)
    except CalendarUnavailable as exc:
        # The database's unique index still prevents double bookings.
        log.warning("team calendar unreadable, offering slots from bookings only: %s", exc)
        return taken, False
    return taken, True


def slot_of(booking: Booking) -> Slot:
    return Slot(booking.starts_at, booking.ends_at)
