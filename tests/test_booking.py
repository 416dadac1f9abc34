"""Call slots from the policy with fixed clocks, and bookings in a real database
(SQLite, and PostgreSQL when configured): one slot, one booking, however many race."""

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bot.call_slots import Slot, SlotRules, free_slots, is_offerable, qualifies
from bot.policy import load_policy
from bot.settings import Settings
from bot.store import Booking, BookingNotFound, SlotTaken, TicketAlreadyBooked
from bot.tickets import open_ticket
from tests.test_policy import write_policy
from tests.test_tickets import CONVERSATION, REQUEST, SATURDAY_1829

HNL = ZoneInfo("Pacific/Honolulu")
LA = ZoneInfo("America/Los_Angeles")


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=HNL)


def starts(slots: list[Slot]) -> list[dt.datetime]:
    return [s.start.astimezone(HNL) for s in slots]


# -- free slots ----------------------------------------------------------------------


def test_saturday_evening_offers_monday_morning(policy):
    slots = free_slots(policy, at(2026, 11, 28, 19, 0), [])
    assert starts(slots) == [at(2026, 11, 30, 9, 30), at(2026, 11, 30, 10, 0), at(2026, 11, 30, 10, 30)]
    assert all(s.end - s.start == dt.timedelta(minutes=30) and s.start.utcoffset() == dt.timedelta(0) for s in slots)
    assert slots[0].label(policy) == "Mon 30 Nov, 9:30–10:00 Hawaii time"


def test_last_slot_of_the_day_ends_at_closing_time(policy):
    slots = free_slots(policy, at(2026, 11, 28, 15, 0), [], count=4)
    assert starts(slots) == [
        at(2026, 11, 28, 17, 0), at(2026, 11, 28, 17, 30), at(2026, 11, 28, 18, 0), at(2026, 11, 30, 9, 30)
    ]


def test_public_holiday_is_skipped(policy):
    # Wednesday 17:00 + 2 h notice is after closing; Thursday is Thanksgiving.
    slots = free_slots(policy, at(2026, 11, 25, 17, 0), [], count=1)
    assert starts(slots) == [at(2026, 11, 27, 9, 30)]


def test_company_closure_and_christmas_are_skipped(policy):
    # 24 December is a company closure, 25 December a public holiday.
    slots = free_slots(policy, at(2026, 12, 23, 17, 0), [], count=1)
    assert starts(slots) == [at(2026, 12, 26, 9, 30)]


def test_maintenance_window_in_business_hours_is_never_offered(tmp_path):
    # A window that keeps support open (support_closed: false) still blocks calls.
    path = write_policy(tmp_path, 'starts: "2026-12-06T02:00:00-10:00"', 'starts: "2026-12-07T10:15:00-10:00"')
    path.write_text(path.read_text().replace('ends: "2026-12-06T06:00:00-10:00"', 'ends: "2026-12-07T11:05:00-10:00"'))
    policy = load_policy(path)
    assert policy.is_open(at(2026, 12, 7, 10, 30))  # support is open during the window
    slots = free_slots(policy, at(2026, 12, 5, 19, 0), [], count=3)
    assert starts(slots) == [at(2026, 12, 7, 9, 30), at(2026, 12, 7, 11, 30), at(2026, 12, 7, 12, 0)]
    # Asked for directly, a slot in the window is refused.
    assert is_offerable(policy, at(2026, 12, 7, 10, 30), at(2026, 12, 5, 19, 0), []) is None
    assert is_offerable(policy, at(2026, 12, 7, 11, 30), at(2026, 12, 5, 19, 0), []) is not None


def test_minimum_notice_and_never_in_the_past(policy):
    monday_1005 = at(2026, 11, 30, 10, 5)
    assert starts(free_slots(policy, monday_1005, [], count=1)) == [at(2026, 11, 30, 12, 30)]
    no_notice = free_slots(policy, monday_1005, [], count=1, min_notice=dt.timedelta(0))
    assert starts(no_notice) == [at(2026, 11, 30, 10, 30)]  # not 10:00, which has begun
    # Exactly two hours ahead is still allowed.
    assert starts(free_slots(policy, at(2026, 11, 30, 10, 0), [], count=1)) == [at(2026, 11, 30, 12, 0)]


def test_bookings_and_busy_times_are_excluded(policy):
    taken = [
        (at(2026, 11, 30, 9, 30), at(2026, 11, 30, 10, 0)),  # a booked call
        (at(2026, 11, 30, 10, 45), at(2026, 11, 30, 10, 50)),  # a short meeting in the team calendar
    ]
    slots = free_slots(policy, at(2026, 11, 28, 19, 0), taken, count=3)
    assert starts(slots) == [at(2026, 11, 30, 10, 0), at(2026, 11, 30, 11, 0), at(2026, 11, 30, 11, 30)]


def test_other_times_start_after_the_last_offered(policy):
    now = at(2026, 11, 28, 19, 0)
    first = free_slots(policy, now, [])
    more = free_slots(policy, now, [], after=first[-1].start)
    assert starts(more) == [at(2026, 11, 30, 11, 0), at(2026, 11, 30, 11, 30), at(2026, 11, 30, 12, 0)]
    assert not set(starts(first)) & set(starts(more))


def test_labels_in_the_customers_zone_across_its_dst_change(policy):
    # Los Angeles leaves daylight time on Sunday 1 November 2026; Hawaii has none.
    now = at(2026, 10, 30, 19, 0)
    saturday = free_slots(policy, now, [], count=1)[0]
    assert saturday.label(policy, LA) == "Sat 31 Oct, 12:30–13:00 Los Angeles time"
    assert saturday.label(policy) == "Sat 31 Oct, 9:30–10:00 Hawaii time"
    monday = free_slots(policy, now, [], count=1, after=at(2026, 10, 31, 18, 0))[0]
    assert monday.label(policy, LA) == "Mon 2 Nov, 11:30–12:00 Los Angeles time"
    assert monday.label(policy, HNL) == "Mon 2 Nov, 9:30–10:00 Hawaii time"


def test_misaligned_or_closed_starts_are_not_offerable(policy):
    now = at(2026, 11, 28, 19, 0)
    assert is_offerable(policy, at(2026, 11, 30, 9, 30), now, []) == Slot(
        at(2026, 11, 30, 9, 30).astimezone(dt.timezone.utc), at(2026, 11, 30, 10, 0).astimezone(dt.timezone.utc)
    )
    assert is_offerable(policy, at(2026, 11, 30, 9, 45), now, []) is None  # off the grid
    assert is_offerable(policy, at(2026, 11, 29, 10, 0), now, []) is None  # Sunday
    assert is_offerable(policy, at(2026, 11, 28, 20, 0), now, []) is None  # after closing, and too soon


def test_meeting_severities_and_settings(policy):
    assert qualifies(policy, "critical") and qualifies(policy, "high")
    assert not qualifies(policy, "medium") and not qualifies(policy, "low")
    rules = SlotRules.from_settings(Settings())
    assert rules == SlotRules(dt.timedelta(minutes=30), dt.timedelta(hours=2), dt.timedelta(minutes=30))
    hour = SlotRules.from_settings(Settings.from_env({"SUPPORT_MEETING_MINUTES": "60"}))
    assert hour.duration == hour.step == dt.timedelta(hours=1)


# -- bookings in the store --------------------------------------------------------------

MONDAY_0930 = at(2026, 11, 30, 9, 30)
HALF_HOUR = dt.timedelta(minutes=30)


async def tickets(store, policy, count: int) -> list:
    made = []
    for i in range(count):
        ticket, _ = await open_ticket(store, policy, REQUEST, f"book-{i}", "web_chat", CONVERSATION, SATURDAY_1829)
        made.append(ticket)
    return made


async def test_a_slot_cannot_be_booked_twice(store, policy):
    first, second = await tickets(store, policy, 2)
    booking = await store.book_slot(
        first.id, MONDAY_0930, MONDAY_0930 + HALF_HOUR, "America/Los_Angeles", SATURDAY_1829
    )
    assert booking.status == "pending_calendar" and booking.starts_at == MONDAY_0930
    assert booking.starts_at.tzinfo is not None and booking.customer_tz == "America/Los_Angeles"
    with pytest.raises(SlotTaken):
        await store.book_slot(second.id, MONDAY_0930, MONDAY_0930 + HALF_HOUR, None, SATURDAY_1829)
    with pytest.raises(TicketAlreadyBooked):  # one call per ticket
        await store.book_slot(first.id, MONDAY_0930 + HALF_HOUR, MONDAY_0930 + 2 * HALF_HOUR, None, SATURDAY_1829)
    assert await store.booking_for_ticket(first.id) == booking
    assert await store.booking_for_ticket(second.id) is None


async def test_ten_concurrent_bookings_of_one_instant_make_one(store, policy):
    made = await tickets(store, policy, 10)
    results = await asyncio.gather(
        *[store.book_slot(t.id, MONDAY_0930, MONDAY_0930 + HALF_HOUR, None, SATURDAY_1829) for t in made],
        return_exceptions=True,
    )
    assert sum(isinstance(r, Booking) for r in results) == 1
    assert sum(isinstance(r, SlotTaken) for r in results) == 9, results
    active = await store.active_bookings(MONDAY_0930, MONDAY_0930 + HALF_HOUR)
    assert len(active) == 1


async def test_cancel_frees_the_slot(store, policy):
    first, second = await tickets(store, policy, 2)
    booking = await store.book_slot(first.id, MONDAY_0930, MONDAY_0930 + HALF_HOUR, None, SATURDAY_1829)
    cancelled = await store.cancel_booking(booking.id, SATURDAY_1829)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at == SATURDAY_1829
    assert await store.booking_for_ticket(first.id) is None
    again = await store.book_slot(second.id, MONDAY_0930, MONDAY_0930 + HALF_HOUR, None, SATURDAY_1829)
    assert again.ticket_id == second.id
    assert (await store.cancel_booking(booking.id, SATURDAY_1829)).status == "cancelled"  # idempotent
    with pytest.raises(BookingNotFound):
        await store.cancel_booking(99999, SATURDAY_1829)


async def test_move_is_atomic(store, policy):
    first, second, third = await tickets(store, policy, 3)
    mine = await store.book_slot(first.id, MONDAY_0930, MONDAY_0930 + HALF_HOUR, "Europe/Paris", SATURDAY_1829)
    other_start = MONDAY_0930 + HALF_HOUR
    await store.book_slot(second.id, other_start, other_start + HALF_HOUR, None, SATURDAY_1829)
    with pytest.raises(SlotTaken):
        await store.move_booking(mine.id, other_start, other_start + HALF_HOUR, SATURDAY_1829)
    assert await store.booking_for_ticket(first.id) == mine  # untouched
    free_start = MONDAY_0930 + 2 * HALF_HOUR
    moved = await store.move_booking(mine.id, free_start, free_start + HALF_HOUR, SATURDAY_1829)
    assert moved.id != mine.id and moved.starts_at == free_start and moved.customer_tz == "Europe/Paris"
    assert (await store.get_booking(mine.id)).status == "cancelled"
    assert await store.booking_for_ticket(first.id) == moved
    # The old slot is free again, and a cancelled booking cannot be moved.
    await store.book_slot(third.id, MONDAY_0930, MONDAY_0930 + HALF_HOUR, None, SATURDAY_1829)
    with pytest.raises(BookingNotFound):
        await store.move_booking(mine.id, MONDAY_0930, MONDAY_0930 + HALF_HOUR, SATURDAY_1829)


async def test_calendar_outcome_and_its_notification_are_one_write(store, policy):
    ticket, = await tickets(store, policy, 1)
    booking = await store.book_slot(ticket.id, MONDAY_0930, MONDAY_0930 + HALF_HOUR, None, SATURDAY_1829)
    link = "https://meet.google.com/abc-defg-hij"
    updated = await store.set_booking_calendar(
        booking.id, "booked", link, "evt1", SATURDAY_1829, notify=("email", "webhook")
    )
    assert updated.status == "booked" and updated.meet_url.endswith("abc-defg-hij")
    rows = await store.notifications_for(ticket.id)
    assert sorted((r["kind"], r["event"], r["booking_id"]) for r in rows) == [
        ("email", "booking_created", booking.id), ("webhook", "booking_created", booking.id)
    ]
    due = await store.claim_due_notifications(SATURDAY_1829, dt.timedelta(minutes=1))
    assert {n.booking_id for n in due} == {booking.id}
    # A cancelled booking is not brought back by a late calendar answer.
    await store.cancel_booking(booking.id, SATURDAY_1829)
    late = await store.set_booking_calendar(booking.id, "booked", "https://x", "evt2", SATURDAY_1829, notify=("email",))
    assert late.status == "cancelled" and len(await store.notifications_for(ticket.id)) == 2
    assert await store.active_bookings(MONDAY_0930, MONDAY_0930 + HALF_HOUR) == []
