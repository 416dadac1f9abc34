"""The policy engine with fixed clocks: hours, holidays, maintenance, deadlines, DST."""

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.policy import PolicyError, load_policy

HNL = ZoneInfo("Pacific/Honolulu")
POLICY_FILE = Path(__file__).resolve().parent.parent / "data" / "support_policy.yml"


def at(*args: int, tz: ZoneInfo = HNL) -> dt.datetime:
    return dt.datetime(*args, tzinfo=tz)


@pytest.fixture(scope="module")
def policy():
    return load_policy(POLICY_FILE)


def write_policy(tmp_path: Path, old: str, new: str) -> Path:
    text = POLICY_FILE.read_text()
    assert old in text, f"fixture text {old!r} not in the policy file"
    path = tmp_path / "policy.yml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_open_in_business_hours_and_closed_outside(policy):
    assert policy.is_open(at(2026, 11, 27, 9, 30))  # Friday opening minute
    assert policy.is_open(at(2026, 11, 28, 18, 29))  # Saturday, last minute
    assert not policy.is_open(at(2026, 11, 28, 18, 30))  # Saturday closing time
    assert not policy.is_open(at(2026, 11, 27, 9, 29))
    assert not policy.is_open(at(2026, 11, 29, 12, 0))  # Sunday


def test_holiday_and_company_closure_are_closed(policy):
    assert policy.holiday(dt.date(2026, 11, 26)) == "Thanksgiving Day"
    assert not policy.is_open(at(2026, 11, 26, 12, 0))
    assert not policy.is_open(at(2026, 12, 24, 12, 0))  # company closure
    assert policy.next_opening(at(2026, 11, 26, 12, 0)) == at(2026, 11, 27, 9, 30)


def test_hawaii_state_holiday_is_observed(policy):
    # Prince Kuhio Day (26 March) is a Hawaii holiday, not a federal one.
    assert policy.holiday(dt.date(2027, 3, 26)) is not None
    assert not policy.is_open(at(2027, 3, 26, 12, 0))


def test_next_opening_after_saturday_close_is_monday(policy):
    assert policy.next_opening(at(2026, 11, 28, 19, 0)) == at(2026, 11, 30, 9, 30)
    # Open now: the next opening is now.
    now = at(2026, 11, 30, 10, 0)
    assert policy.next_opening(now) == now


def test_submitted_saturday_1829_counts_one_minute_then_monday(policy):
    due = policy.response_due("high", at(2026, 11, 28, 18, 29))
    assert due == at(2026, 11, 30, 13, 29)  # 1 min Saturday + 3 h 59 min Monday


def test_business_deadline_skips_holiday(policy):
    # Wednesday 25 Nov 17:30 + 4 business hours: 1 h Wednesday, Thanksgiving skipped,
    # 3 h on Friday from 9:30.
    assert policy.response_due("high", at(2026, 11, 25, 17, 30)) == at(2026, 11, 27, 12, 30)


def test_medium_deadline_spans_days(policy):
    # 9 business hours = one full business day.
    assert policy.response_due("medium", at(2026, 11, 30, 9, 30)) == at(2026, 11, 30, 18, 30)
    assert policy.response_due("medium", at(2026, 11, 30, 14, 0)) == at(2026, 12, 1, 14, 0)


def test_critical_at_3am_runs_around_the_clock(policy):
    assert policy.response_due("critical", at(2026, 11, 29, 3, 0)) == at(2026, 11, 29, 4, 0)


def test_deadline_is_independent_of_input_zone(policy):
    submitted_hnl = at(2026, 11, 28, 18, 29)
    submitted_paris = submitted_hnl.astimezone(ZoneInfo("Europe/Paris"))
    assert policy.response_due("low", submitted_paris) == policy.response_due("low", submitted_hnl)


def test_next_opening_across_customer_dst_change(policy):
    # Los Angeles leaves DST on 1 Nov 2026; Honolulu has none. 9:30 in Honolulu is
    # 12:30 PDT before the change and 11:30 PST after it.
    la = ZoneInfo("America/Los_Angeles")
    before = policy.next_opening(dt.datetime(2026, 10, 31, 1, 0, tzinfo=la)).astimezone(la)
    after = policy.next_opening(dt.datetime(2026, 11, 1, 1, 0, tzinfo=la)).astimezone(la)
    assert (before.hour, before.minute, before.tzname()) == (12, 30, "PDT")
    assert (after.hour, after.minute, after.tzname()) == (11, 30, "PST")  # Monday 2 Nov


def test_naive_datetime_is_refused(policy):
    with pytest.raises(ValueError, match="time-zone aware"):
        policy.is_open(dt.datetime(2026, 11, 27, 12, 0))


def test_unknown_severity_is_refused(policy):
    with pytest.raises(KeyError, match="expected one of critical, high, medium, low"):
        policy.response_due("urgent", at(2026, 11, 27, 12, 0))


def test_maintenance_notice_announced_from_its_notice_period(policy):
    window_start = at(2026, 12, 6, 2, 0)
    assert policy.active_notices(window_start - dt.timedelta(days=14, minutes=1)) == []
    notices = policy.active_notices(window_start - dt.timedelta(days=13))
    assert [n.id for n in notices] == ["mw-2026-12-db"]
    assert policy.in_maintenance(window_start + dt.timedelta(hours=1))[0].id == "mw-2026-12-db"
    assert policy.active_notices(at(2026, 12, 6, 6, 0)) == []  # over


def test_maintenance_window_that_closes_support_pauses_the_clock(tmp_path):
    path = write_policy(
        tmp_path,
        "      support_closed: false",
        "      support_closed: true",
    )
    text = path.read_text().replace('starts: "2026-12-06T02:00:00-10:00"', 'starts: "2026-12-07T10:00:00-10:00"')
    text = text.replace('ends: "2026-12-06T06:00:00-10:00"', 'ends: "2026-12-07T12:00:00-10:00"')
    path.write_text(text)
    policy = load_policy(path)
    assert not policy.is_open(at(2026, 12, 7, 11, 0))
    assert policy.next_opening(at(2026, 12, 7, 11, 0)) == at(2026, 12, 7, 12, 0)
    # Monday 9:30 + 4 business hours, with 10:00-12:00 closed: 9:30-10:00 + 12:00-15:30.
    assert policy.response_due("high", at(2026, 12, 7, 9, 30)) == at(2026, 12, 7, 15, 30)


def test_editing_hours_changes_the_rules(tmp_path):
    policy = load_policy(write_policy(tmp_path, 'closes: "18:30"', 'closes: "20:00"'))
    assert policy.is_open(at(2026, 11, 28, 19, 0))


def test_bad_field_is_reported_with_line(tmp_path):
    path = write_policy(tmp_path, "first_response_hours: 4\n", "first_response_hours: soon\n")
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "first_response_hours: soon" in text)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert f"line {line}: severities[1].first_response_hours" in str(err.value)


def test_missing_section_and_bad_zone_are_reported(tmp_path):
    path = write_policy(tmp_path, "timezone: Pacific/Honolulu", "timezone: Hawaii/Nowhere")
    with pytest.raises(PolicyError, match=r"line \d+: company.timezone: .*unknown time zone"):
        load_policy(path)
    text = POLICY_FILE.read_text()
    start = text.index("\nliability:")
    end = text.index("\nthird_party_support:")
    (tmp_path / "p2.yml").write_text(text[:start] + text[end:])
    with pytest.raises(PolicyError, match="liability: Field required"):
        load_policy(tmp_path / "p2.yml")


def test_not_yaml_and_missing_file(tmp_path):
    (tmp_path / "bad.yml").write_text("company: [unclosed\n")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(tmp_path / "bad.yml")
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.yml")
