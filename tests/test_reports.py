"""The deflection report: its figures equal counts taken straight from the databases."""

import datetime as dt
import json
import sqlite3
import uuid
from collections import Counter
from zoneinfo import ZoneInfo

import pytest

from bot.reports import TrackerEvent, faq_outcomes, group_questions
from tests.conftest import http

HNL = ZoneInfo("Pacific/Honolulu")


def test_faq_outcomes_and_the_questions_that_missed():
    at = dt.datetime(2026, 11, 27, tzinfo=dt.timezone.utc)
    events = [
        TrackerEvent("a", "user", at, {"text": "how do I reset my password"}),
        TrackerEvent("a", "slot", at, {"name": "faq_outcome", "value": "answered"}),
        TrackerEvent("b", "user", at, {"text": "can I pay in bitcoin"}),
        TrackerEvent("b", "slot", at, {"name": "faq_outcome", "value": "missed"}),
        TrackerEvent("b", "user", at, {"text": "/deny"}),  # a button: not a question
        TrackerEvent("b", "slot", at, {"name": "faq_outcome", "value": None}),
        TrackerEvent("c", "user", at, {"text": "bitcoin accepted?"}),
        TrackerEvent("c", "slot", at, {"name": "faq_outcome", "value": "suggested"}),
    ]
    counts, unanswered = faq_outcomes(events)
    assert counts == Counter({"answered": 1, "missed": 1, "suggested": 1})
    assert unanswered == ["can I pay in bitcoin", "bitcoin accepted?"]


def test_similar_questions_are_grouped():
    groups = group_questions(
        ["can I pay in bitcoin", "do you accept bitcoin payments", "can I pay in bitcoin", "toaster connection help",
         "how do I connect my toaster"]
    )
    assert groups[0] == {"count": 3, "examples": ["can I pay in bitcoin", "do you accept bitcoin payments"]}
    assert sorted(groups[1]["examples"]) == ["how do I connect my toaster", "toaster connection help"]
    assert group_questions([]) == []


@pytest.mark.services
def test_report_matches_counts_computed_from_the_databases(stack, policy):
    # Some traffic of our own, so the figures are not all zero.
    sender = "report-" + uuid.uuid4().hex
    stack.say(sender, "how do I reset my password")
    stack.say("report-" + uuid.uuid4().hex, "can I pay for the subscription in dogecoin")
    token = stack.settings.staff_tokens.split(":", 1)[1]
    request_headers = {"Authorization": f"Bearer {token}"}
    import urllib.request

    request = urllib.request.Request(stack.web + "/api/staff/report?days=7", headers=request_headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        report = json.loads(response.read())

    tracker = sqlite3.connect(stack.settings.tracker_store_url.removeprefix("sqlite:///"))
    since = dt.datetime.combine(dt.date.fromisoformat(report["from"]), dt.time(), tzinfo=HNL).timestamp()
    senders = {row[0] for row in tracker.execute(
        "SELECT DISTINCT sender_id FROM events WHERE type_name = 'user' AND timestamp >= ?", (since,))}
    outcomes = Counter(
        json.loads(data)["value"]
        for (data,) in tracker.execute("SELECT data FROM events WHERE type_name = 'slot' AND timestamp >= ?", (since,))
        if json.loads(data).get("name") == "faq_outcome" and json.loads(data).get("value")
    )
    support = sqlite3.connect(stack.settings.database_url.removeprefix("sqlite:///"))
    escalated = {row[0] for row in support.execute("SELECT conversation_id FROM tickets")} & senders
    rated = [r for (r,) in support.execute("SELECT csat_rating FROM tickets WHERE csat_rating IS NOT NULL")]

    totals = report["totals"]
    assert totals["conversations"] == len(senders) > 0
    assert sum(d["conversations"] for d in report["days"]) == len(senders)
    assert totals["escalated"] == len(escalated)
    assert totals["self_service"] == len(senders) - len(escalated)
    assert (totals["faq_answered"], totals["faq_suggested"], totals["faq_missed"]) == (
        outcomes["answered"], outcomes["suggested"], outcomes["missed"])
    assert totals["faq_answered"] >= 1
    assert report["csat"]["count"] == len(rated)
    tickets_total = support.execute("SELECT COUNT(*) FROM tickets").fetchone()[0]
    assert sum(s["met"] + s["missed"] + s["pending"] for s in report["sla"]) == tickets_total
    assert http("GET", stack.web + "/api/staff/report?days=0", None)[0] == 401  # no token


def test_triage_outcomes_count_kept_and_changed_per_proposed_severity():
    from types import SimpleNamespace

    from bot.reports import triage_outcomes

    def row(proposed, submitted, now):
        return SimpleNamespace(proposed_severity=proposed, submitted_severity=submitted, severity=now)

    rows = [row("critical", "critical", "critical"), row("critical", "high", "high"), row("medium", "medium", "high"),
            row("low", "medium", "high"), row(None, None, "low")]
    by = {r["severity"]: r for r in triage_outcomes(rows)}
    assert by["critical"] == {"severity": "critical", "proposed": 2, "kept": 1, "changed_by_customer": 1, "changed_by_staff": 0}
    assert by["medium"]["changed_by_staff"] == 1 and by["medium"]["kept"] == 0
    assert by["low"]["changed_by_customer"] == 1 and by["low"]["changed_by_staff"] == 1
    assert by["high"]["proposed"] == 0


def test_languages_are_counted_from_the_language_slot():
    from bot.reports import languages

    at = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
    events = [
        TrackerEvent("a", "slot", at, {"name": "language", "value": "en"}),
        TrackerEvent("b", "slot", at, {"name": "language", "value": "es"}),
        TrackerEvent("c", "slot", at, {"name": "language", "value": "en"}),
        TrackerEvent("c", "slot", at, {"name": "faq_outcome", "value": "answered"}),
    ]
    assert languages(events) == {"en": 2, "es": 1}
