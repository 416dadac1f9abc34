"""Answers rendered from the policy at a given instant, and the FAQ answerer's routing."""

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from bot.answers import TOPICS, UnknownPlaceholder, policy_answer, render_answer, status_text
from bot.faq import FaqAnswerer, KbEntry

HNL = ZoneInfo("Pacific/Honolulu")
KB = Path(__file__).resolve().parent.parent / "data" / "faq"


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=HNL)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (at(2026, 11, 27, 10, 0), "We're open now, until today at 18:30 (Hawaii time)."),
        (at(2026, 11, 28, 19, 0), "We're closed now; we open again Monday 30 November at 9:30 (Hawaii time)."),
        (at(2026, 11, 26, 12, 0), "We're closed now for Thanksgiving Day; we open again tomorrow (Friday) at 9:30 (Hawaii time)."),
        (at(2026, 11, 30, 7, 0), "We're closed now; we open again today at 9:30 (Hawaii time)."),
        (at(2026, 12, 23, 19, 0), "We're closed now; we open again Saturday 26 December at 9:30 (Hawaii time)."),
    ],
)
def test_status_text(policy, now, expected):
    assert status_text(policy, now) == expected


def test_status_in_customer_zone(policy):
    text = status_text(policy, at(2026, 11, 28, 19, 0), ZoneInfo("Europe/Paris"))
    assert text == "We're closed now; we open again tomorrow (Monday) at 20:30 your time (9:30 Hawaii time)."


def test_response_time_answer_names_the_severity_and_the_deadline(policy):
    text = policy_answer("response_times", policy, at(2026, 11, 28, 18, 29), "how fast for a high priority bug?")
    assert text.startswith("High: first response within 4 hours, resolution target 18 hours (business hours).")
    assert "by Monday 30 November at 13:29 (Hawaii time)" in text
    overview = policy_answer("response_times", policy, at(2026, 11, 28, 12, 0), "how fast do you answer?")
    assert all(name in overview for name in ("Critical:", "High:", "Medium:", "Low:"))


def test_maintenance_answer_follows_the_clock(policy):
    assert "Makana Books and the API will be unavailable" in policy_answer("maintenance", policy, at(2026, 12, 1, 9, 0))
    assert "No maintenance is planned" in policy_answer("maintenance", policy, at(2026, 12, 7, 9, 0))


def test_every_topic_renders(policy):
    for topic in TOPICS:
        assert policy_answer(topic, policy, at(2026, 11, 27, 10, 0), "")


def test_unknown_topic_and_placeholder(policy):
    with pytest.raises(KeyError, match="unknown policy topic"):
        policy_answer("weather", policy, at(2026, 11, 27, 10, 0))
    with pytest.raises(UnknownPlaceholder, match="contact.fax"):
        render_answer("Fax us at {{ contact.fax }}", policy, at(2026, 11, 27, 10, 0))


def test_every_knowledge_base_answer_renders_and_every_topic_has_an_entry(policy):
    entries = [e for f in sorted(KB.glob("*.yml")) for e in yaml.safe_load(f.read_text())]
    topics = {e["policy_answer"] for e in entries if e.get("policy_answer")}
    assert topics == set(TOPICS)
    for entry in entries:
        if entry.get("answer"):
            text = render_answer(entry["answer"], policy, at(2026, 11, 27, 10, 0))
            assert "{{" not in text, entry["id"]


@dataclass
class FakeHit:
    entry_id: str
    title: str
    score: float


@dataclass
class FixedIndex:
    """A small real object standing in for the index: returns what it was given."""

    answer: FakeHit | None
    candidates: list = field(default_factory=list)

    def search(self, query, k=3):
        return self


ENTRIES = [
    KbEntry("reset_password", "Reset a password", "Go to {{ url.help_centre }}/reset."),
    KbEntry("hours", "Support hours", policy_answer="hours"),
    KbEntry("online_payments", "Take card payments online", "Connect a payment provider."),
]


def test_answer_renders_placeholders_and_policy_topics(policy):
    now = at(2026, 11, 27, 10, 0)
    result = FaqAnswerer(FixedIndex(FakeHit("reset_password", "", 0.9)), ENTRIES, policy).answer("pw?", now)
    assert (result.kind, result.text) == ("answer", "Go to https://help.makana.example/reset.")
    result = FaqAnswerer(FixedIndex(FakeHit("hours", "", 0.9)), ENTRIES, policy).answer("hours?", now)
    assert result.text.startswith("Our support hours are Monday to Saturday, 9:30 to 18:30 Hawaii time")


def test_scope_question_about_a_third_party_product_gets_the_exclusion(policy):
    now = at(2026, 11, 27, 10, 0)
    index = FixedIndex(FakeHit("online_payments", "", 0.95))  # the FAQ guess it must not give
    result = FaqAnswerer(index, ENTRIES, policy).answer("Do you support the Stripe plugin?", now)
    assert result.entry_id == "third_party"
    assert result.text.startswith("Stripe is a third-party product")
    # Naming a third-party product without asking about support is an ordinary question.
    result = FaqAnswerer(index, ENTRIES, policy).answer("how do I take card payments with Stripe", now)
    assert result.entry_id == "online_payments"


def test_low_confidence_gives_suggestions_or_a_miss(policy):
    now = at(2026, 11, 27, 10, 0)
    unsure = FixedIndex(None, [FakeHit("reset_password", "Reset a password", 0.4), FakeHit("hours", "Support hours", 0.1)])
    result = FaqAnswerer(unsure, ENTRIES, policy).answer("locked", now)
    assert result.kind == "suggest" and result.suggestions == [("reset_password", "Reset a password")]
    result = FaqAnswerer(FixedIndex(None, [FakeHit("hours", "", 0.05)]), ENTRIES, policy).answer("?", now)
    assert result.kind == "miss"
