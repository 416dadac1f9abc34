"""The one clock rule (bot/clock.py): the customer's time with the company's beside it, a
date unless the moment is today or tomorrow, in every text a customer reads."""

import datetime as dt
import json
import uuid
from zoneinfo import ZoneInfo

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import resources
from actions.support_request import ActionRequestHuman
from bot import clock
from bot.policy_answers import hours_text, policy_answer, status_text
from bot.call_slots import Slot
from bot.clock import customer_clock, customer_zone, format_span, format_time, slot_label, zone_in_events
from bot.settings import Settings
from tests.conftest import http

HNL = ZoneInfo("Pacific/Honolulu")
LA, UTC, TOKYO = ZoneInfo("America/Los_Angeles"), ZoneInfo("UTC"), ZoneInfo("Asia/Tokyo")
SATURDAY_EVENING = dt.datetime(2026, 11, 28, 19, 0, tzinfo=HNL)  # closed until Monday 9:30
MONDAY_0930 = dt.datetime(2026, 11, 30, 9, 30, tzinfo=HNL)


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        (None, "Monday 30 November at 9:30 (Hawaii time)"),
        (HNL, "Monday 30 November at 9:30 (Hawaii time)"),
        (ZoneInfo("US/Hawaii"), "Monday 30 November at 9:30 (Hawaii time)"),  # another name, same clock
        (LA, "Monday 30 November at 11:30 your time (9:30 Hawaii time)"),
        (UTC, "tomorrow (Monday) at 19:30 your time (9:30 Hawaii time)"),
        # Tokyo is a day ahead: their Tuesday, the company's Monday, both named.
        (TOKYO, "Tuesday 1 December at 4:30 your time (Monday 9:30 Hawaii time)"),
    ],
)
def test_one_moment_in_the_customers_time_with_the_companys_beside_it(policy, zone, expected):
    assert format_time(policy, MONDAY_0930, SATURDAY_EVENING, zone) == expected


def test_a_date_unless_today_or_tomorrow(policy):
    friday_noon = dt.datetime(2026, 11, 27, 12, 0, tzinfo=HNL)
    assert format_time(policy, friday_noon + dt.timedelta(hours=2), friday_noon) == "today at 14:00 (Hawaii time)"
    assert format_time(policy, friday_noon + dt.timedelta(days=1), friday_noon) == "tomorrow (Saturday) at 12:00 (Hawaii time)"
    assert format_time(policy, friday_noon - dt.timedelta(days=1), friday_noon) == "yesterday (Thursday) at 12:00 (Hawaii time)"
    assert format_time(policy, friday_noon + dt.timedelta(days=2), friday_noon) == "Sunday 29 November at 12:00 (Hawaii time)"
    new_year = dt.datetime(2027, 1, 4, 9, 30, tzinfo=HNL)
    assert format_time(policy, new_year, friday_noon) == "Monday 4 January 2027 at 9:30 (Hawaii time)"


def test_the_customers_today_is_their_own(policy):
    # 22:00 in Honolulu on Friday is already Saturday morning in UTC.
    late = dt.datetime(2026, 11, 27, 22, 0, tzinfo=HNL)
    opening = policy.next_opening(late)  # Saturday 9:30 Hawaii time = Saturday 19:30 UTC
    assert format_time(policy, opening, late, UTC) == "today at 19:30 your time (9:30 Hawaii time)"
    assert format_time(policy, opening, late) == "tomorrow (Saturday) at 9:30 (Hawaii time)"


def test_a_period_gives_both_clocks_and_its_date(policy):
    starts = dt.datetime(2026, 12, 6, 2, 0, tzinfo=HNL)
    ends = dt.datetime(2026, 12, 6, 6, 0, tzinfo=HNL)
    now = dt.datetime(2026, 12, 1, 9, 0, tzinfo=HNL)
    assert format_span(policy, starts, ends, now) == "Sunday 6 December, 2:00–6:00 (Hawaii time)"
    assert format_span(policy, starts, ends, now, UTC) == "Sunday 6 December, 12:00–16:00 your time (2:00–6:00 Hawaii time)"
    assert format_span(policy, starts, ends, now, TOKYO) == (
        "Sunday 6 December at 21:00 to Monday 7 December at 1:00 your time (Sunday 6 December, 2:00–6:00 Hawaii time)"
    )
    with pytest.raises(ValueError, match="end after it starts"):
        format_span(policy, ends, starts, now)


def test_call_slots_are_dated_and_on_both_clocks(policy):
    start = MONDAY_0930
    end = start + dt.timedelta(minutes=30)
    assert slot_label(policy, start, end) == "Mon 30 Nov, 9:30–10:00 Hawaii time"
    assert slot_label(policy, start, end, LA) == "Mon 30 Nov, 11:30–12:00 your time (9:30–10:00 Hawaii time)"
    assert slot_label(policy, start, end, TOKYO) == "Tue 1 Dec, 4:30–5:00 your time (Mon 30 Nov, 9:30–10:00 Hawaii time)"
    # The team's and the invitation's label names both zones; the customer's says "your time".
    assert Slot(start, end).label(policy, LA) == "Mon 30 Nov, 11:30–12:00 Los Angeles time"
    assert Slot(start, end).customer_label(policy, LA) == slot_label(policy, start, end, LA)


def test_business_hours_get_the_customers_clock_beside_them(policy):
    assert hours_text(policy) == "Monday to Saturday, 9:30 to 18:30 Hawaii time"
    with customer_clock(LA):
        assert hours_text(policy, SATURDAY_EVENING).endswith("Hawaii time (11:30 to 20:30 your time)")
    with customer_clock(UTC):
        assert hours_text(policy, SATURDAY_EVENING).endswith("(19:30 to 4:30 your time, overnight)")
    with customer_clock(TOKYO):
        assert hours_text(policy, SATURDAY_EVENING).endswith("(4:30 to 13:30 your time, the next day)")


def test_the_customers_clock_applies_inside_the_block_only(policy):
    assert clock.current_customer_zone() is None
    with customer_clock(LA):
        assert status_text(policy, SATURDAY_EVENING) == status_text(policy, SATURDAY_EVENING, LA)
        assert "11:30 your time (9:30 Hawaii time)" in policy_answer("hours", policy, SATURDAY_EVENING)
        # An explicit zone wins over the block's.
        assert "Hawaii time)" in status_text(policy, SATURDAY_EVENING, HNL)
        assert "your time" not in status_text(policy, SATURDAY_EVENING, HNL)
    assert clock.current_customer_zone() is None
    assert "your time" not in status_text(policy, SATURDAY_EVENING)


@pytest.mark.parametrize(
    "name", ["", None, 7, "America", "localtime", "posixrules", "Mars/Olympus", "../etc/passwd", "UTC\x00", "a" * 300]
)
def test_only_names_on_the_iana_list_are_zones(name):
    assert customer_zone(name) is None


def test_iana_names_are_zones():
    for name in ("America/Los_Angeles", "UTC", "Pacific/Honolulu", "Asia/Kolkata", "Etc/GMT+5", "US/Hawaii"):
        assert customer_zone(name) == ZoneInfo(name)


def test_the_zone_of_the_latest_message_that_carried_one():
    events = [
        {"event": "user", "text": "hi", "metadata": {"timezone": "Asia/Tokyo"}},
        {"event": "bot", "text": "hello", "metadata": {"timezone": "Europe/Paris"}},
        {"event": "user", "text": "/affirm", "metadata": {"timezone": "Mars/Olympus"}},  # not a zone: skipped
        {"event": "user", "text": "ok", "metadata": {}},
    ]
    assert zone_in_events(events) == TOKYO
    assert zone_in_events(events + [{"event": "user", "metadata": {"timezone": "America/Los_Angeles"}}]) == LA
    assert zone_in_events([{"event": "user", "metadata": "odd"}]) is None
    assert zone_in_events(None) is None


async def test_an_action_writes_on_the_customers_clock(monkeypatch, policy):
    monkeypatch.setattr(resources, "policy", lambda: policy)
    monkeypatch.setattr(resources, "now", lambda: SATURDAY_EVENING)
    monkeypatch.setattr(resources, "settings", lambda: Settings(identity_secret="s" * 32))
    latest = {"text": "talk to a human", "intent": {"name": "request_human", "confidence": 0.9}, "entities": []}
    tracker = Tracker("conv-1", {"requested_slot": None}, latest, [], False, None, {}, "action_listen")
    dispatcher = CollectingDispatcher()
    with customer_clock(LA):
        await ActionRequestHuman().run(dispatcher, tracker, {})
    text = dispatcher.messages[0]["text"]
    assert "(Monday to Saturday, 9:30 to 18:30 Hawaii time (11:30 to 20:30 your time))" in text
    assert "we open again Monday 30 November at 11:30 your time (9:30 Hawaii time)." in text


@pytest.mark.services
def test_the_running_assistant_writes_on_the_clock_each_message_carries(stack):
    """Through the web service, Rasa and the action server (whose plugin sets the zone per
    call): the customer in Los Angeles reads their time, one without a zone the company's,
    even when the calls follow each other on the same kept-alive connection."""
    status, banner = http("GET", stack.web + "/api/status?tz=America/Los_Angeles")
    assert status == 200 and "your time (" in banner["text"]

    def request_human(sender: str, zone: str | None) -> str:
        body = {"sender": sender, "message": "I want to talk to a human", **({"timezone": zone} if zone else {})}
        status, reply = http("POST", stack.web + "/api/chat", json.dumps(body).encode())
        assert status == 200, reply
        return "\n".join(m["text"] or "" for m in reply["messages"])

    in_la = request_human(f"clock-{uuid.uuid4().hex}", "America/Los_Angeles")
    assert banner["text"].split("; ", 1)[-1].rstrip(".") in in_la  # the banner's moment, word for word
    assert "Hawaii time (" in in_la and "your time)" in in_la  # the hours, both clocks
    anonymous = request_human(f"clock-{uuid.uuid4().hex}", None)
    assert "your time" not in anonymous and "(Hawaii time)" in anonymous


def test_the_action_servers_clock_can_start_at_a_given_instant_and_runs_on(monkeypatch):
    """SUPPORT_CLOCK_START replays dated evaluation cases at the moment they were written for."""
    from actions import resources
    from bot.settings import Settings

    monkeypatch.setattr(resources, "_settings", Settings(clock_start="2026-12-05T10:00:00-10:00"))
    monkeypatch.setattr(resources, "_clock_origin", None)
    first = resources.now()
    later = resources.now()
    start = dt.datetime(2026, 12, 5, 20, 0, tzinfo=dt.timezone.utc)
    assert start <= first <= later < start + dt.timedelta(seconds=5)
    monkeypatch.setattr(resources, "_settings", Settings())
    assert abs(resources.now() - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(seconds=5)  # the real clock


@pytest.mark.parametrize("value, says", [("5 December", "ISO 8601"), ("2026-12-05T10:00:00", "UTC offset")])
def test_a_clock_start_that_is_no_instant_is_refused_with_what_is_expected(value, says):
    from bot.settings import SettingsError

    with pytest.raises(SettingsError, match=says):
        Settings(clock_start=value)
