"""Answers rendered from the policy at a given instant, and the FAQ answerer's routing."""

import datetime as dt
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from bot.policy_answers import (
    TOPICS,
    Situation,
    UnknownPlaceholder,
    described_severity,
    policy_answer,
    policy_fact,
    render_answer,
    status_text,
)
from bot.settings import ROOT
from bot.triage import imagined_situation
from bot.faq import DECLINE_TEXT, FaqAnswerer, KbEntry, _first_choice, questions_in

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
    day_after = policy_answer("maintenance", policy, at(2026, 12, 7, 9, 0))
    assert day_after.startswith("No maintenance is planned")
    # The window that just ended is named as over ("is the maintenance on the 6th still on?"),
    # until as long after it as a notice runs before one.
    assert "The last window, yesterday (Sunday), 2:00–6:00 (Hawaii time), is over." in day_after
    assert "14 days ahead" in policy_answer("maintenance", policy, at(2026, 12, 1, 9, 0))
    assert "last window" not in policy_answer("maintenance", policy, at(2026, 12, 21, 9, 0))


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
    similarity: float = 0.6  # near the knowledge base unless a test says otherwise


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


class OneFact:
    """Stands in for the fact finder: always finds the same sentence of one section."""

    def __init__(self, fact):
        self.fact = fact

    def ranked(self, message, now, topics=()):
        return [(self.fact, 1.0)]

    def across(self, message, now, leaning=(), ranked=None):
        return self.fact

    def within(self, topic, message, now):
        return None


def test_a_fact_from_a_section_retrieval_did_not_rank_first_or_second_is_not_given(policy):
    from bot.policy_facts import Fact

    now = at(2026, 11, 27, 10, 0)
    entries = [KbEntry(t, t, policy_answer=t) for t in ("severities", "response_times", "process")]
    paged = OneFact(Fact("process", "Critical tickets are paged to the on-call engineer at any hour."))
    torn = [FakeHit("severities", "Severities", 0.3), FakeHit("response_times", "Response times", 0.25),
            FakeHit("process", "Process", 0.2)]
    result = FaqAnswerer(FixedIndex(None, torn), entries, policy, facts=paged).answer("resolution target, critical?", now)
    assert result.kind == "suggest" and "paged" not in result.text
    # The same sentence is given when its section is one of the two retrieval hesitates over.
    ranked = [torn[0], torn[2], torn[1]]
    result = FaqAnswerer(FixedIndex(None, ranked), entries, policy, facts=paged).answer("is a critical ticket paged?", now)
    assert (result.kind, result.entry_id) == ("answer", "process") and "paged" in result.text


def test_a_question_far_from_every_entry_gets_no_did_you_mean(policy):
    now = at(2026, 11, 27, 10, 0)
    far = [FakeHit("reset_password", "Reset a password", 0.35, similarity=0.35), FakeHit("hours", "Support hours", 0.1, similarity=0.3)]
    result = FaqAnswerer(FixedIndex(None, far), ENTRIES, policy).answer("what's the capital of Australia", now)
    assert result.kind == "miss" and not result.suggestions
    # The same candidates, nearer: they are worth offering.
    near = [FakeHit("reset_password", "Reset a password", 0.35, similarity=0.5), far[1]]
    result = FaqAnswerer(FixedIndex(None, near), ENTRIES, policy).answer("my login thing is weird", now)
    assert result.kind == "suggest" and [e for e, _ in result.suggestions] == ["reset_password"]


def test_scope_question_about_a_third_party_product_gets_the_exclusion(policy):
    now = at(2026, 11, 27, 10, 0)
    index = FixedIndex(FakeHit("online_payments", "", 0.95))  # the FAQ guess it must not give
    result = FaqAnswerer(index, ENTRIES, policy).answer("Do you support the Stripe plugin?", now)
    assert result.entry_id == "third_party"
    assert result.text.startswith("Stripe is a third-party product")
    # A how-to about another company's product is not answered by Makana's how-to (the
    # object check): it gets the same exclusion and the vendor route.
    result = FaqAnswerer(index, ENTRIES, policy).answer("how do I take card payments with Stripe", now)
    assert result.entry_id == "third_party" and "contact the vendor" in result.text
    # Another company's product that the policy does not list is declined.
    result = FaqAnswerer(index, ENTRIES, policy).answer("how do I cancel my Netflix subscription", now)
    assert result.kind == "answer"  # not a vendor this answerer knows: it trusts the index
    vendors = [*ENTRIES, KbEntry("decline_other_vendors", "Other products", tags=("decline", "vendor:Netflix"))]
    result = FaqAnswerer(index, vendors, policy).answer("how do I cancel my Netflix subscription", now)
    assert (result.kind, result.text) == ("decline", DECLINE_TEXT)


def test_object_check_keeps_questions_whose_object_is_makana(policy):
    now = at(2026, 11, 27, 10, 0)
    importing = KbEntry("import_data", "Import data", "Use Settings, Import.", questions=("bring my data over from QuickBooks",))
    index = FixedIndex(FakeHit("import_data", "", 0.9))
    # The entry's own phrasings name the product: it is about it.
    result = FaqAnswerer(index, [importing], policy).answer("how do I move my QuickBooks history", now)
    assert (result.kind, result.entry_id) == ("answer", "import_data")
    # Makana is named too: the question is about Makana, the other product is only where it comes from.
    result = FaqAnswerer(index, [importing], policy).answer("moving from Xero to Makana, how do I bring my data", now)
    assert (result.kind, result.entry_id) == ("answer", "import_data")
    # Neither: the other company's product is the object, so the policy's vendor route answers.
    result = FaqAnswerer(index, [importing], policy).answer("how do I move my Xero history", now)
    assert result.entry_id == "third_party"
    # Makana is the scene, and the part that asks names only the other product: its object
    # is that product ("We've moved everything over to Makana now. How do I cancel our
    # QuickBooks Online subscription?" got Makana's own cancellation steps).
    cancelling = KbEntry("cancel_subscription", "Cancel", "Settings, Subscription, Cancel.", questions=("cancel my plan",))
    index = FixedIndex(FakeHit("cancel_subscription", "", 0.9))
    for message in (
        "We've moved everything over to Makana now. How do I cancel our Xero subscription so they stop billing us?",
        "How do I cancel my Xero subscription? We're moving everything over to Makana.",
    ):
        assert FaqAnswerer(index, [cancelling], policy).answer(message, now).entry_id == "third_party", message
    # Both named in the part that asks: Makana's.
    message = "We're moving to Makana. How do I cancel Xero and start my Makana plan?"
    assert FaqAnswerer(index, [cancelling], policy).answer(message, now).entry_id == "cancel_subscription"


def test_low_confidence_gives_suggestions_or_a_miss(policy):
    now = at(2026, 11, 27, 10, 0)
    unsure = FixedIndex(None, [FakeHit("reset_password", "Reset a password", 0.4), FakeHit("hours", "Support hours", 0.1)])
    result = FaqAnswerer(unsure, ENTRIES, policy).answer("locked", now)
    assert result.kind == "suggest" and result.suggestions == [("reset_password", "Reset a password")]
    result = FaqAnswerer(FixedIndex(None, [FakeHit("hours", "", 0.05)]), ENTRIES, policy).answer("?", now)
    assert result.kind == "miss"


# -- the fact asked first ------------------------------------------------------------------


def fact(policy, topic, message, now=None, severity=None):
    return policy_fact(topic, policy, now or at(2026, 11, 27, 10, 0), Situation(message, severity))


def test_product_and_version_answered_yes_or_no(policy):
    assert fact(policy, "products", "still helping people on Books 4?").startswith("No, Makana Books 4 is no longer supported.")
    assert fact(policy, "products", "is pos version 3 covered").startswith("Yes, Makana POS 3 is supported")
    assert fact(policy, "products", "are you still supporting the v1 api").startswith("No, Makana API v1")
    assert fact(policy, "products", "sync 1.8 ok?").startswith("No, Makana Sync 1.8")
    assert fact(policy, "products", "which products do you support") is None  # the whole section


def test_a_release_is_judged_by_the_version_the_policy_lists(policy):
    # The policy lists majors ("2" of POS); a customer names the release on the screen.
    assert fact(policy, "products", "the till app is on version 2.4, will you still help?").startswith(
        "No, Makana POS 2 is no longer supported.")
    assert fact(policy, "products", "is books 6.2 still supported").startswith("Yes, Makana Books 6 is supported")
    assert fact(policy, "products", "is pos 7.1 supported?").startswith("Makana POS has no version 7.1")


def test_one_channel_first(policy):
    assert fact(policy, "contact", "what number can I call").startswith("Our phone number is +1 808 555 0142, answered Monday to Saturday")
    assert fact(policy, "contact", "what's your mailing address") == "Our postal address is 1901 Shiloh, Hawaii 81063."
    assert fact(policy, "channels", "the email for billing?") == "For billing questions, email billing@makana.example."
    assert fact(policy, "contact", "how do I contact you") is None
    # "email address" asks for the email, not the postal address as well.
    email = fact(policy, "contact", "what email address do I write to for help?")
    assert "support@makana.example" in email and "Shiloh" not in email


def test_how_policy_changes_are_announced_comes_first_when_asked(policy):
    told = fact(policy, "updates", "will I be told before the support terms change")
    assert told.startswith("We announce changes to this policy by email to account owners") and f"version {policy.doc.updates.version}" in told
    assert fact(policy, "updates", "what's new in the support policy") is None  # the section


@pytest.fixture(scope="module")
def real_answerer(policy):
    """The knowledge base and its built index (`make index`), with the adapted encoder."""
    from bot.faq import open_answerer

    return open_answerer(ROOT / "data" / "faq", ROOT / "kb_index" / "build", policy)


@pytest.mark.parametrize(("split", "least"), [("dev", 11), ("test", 8)])
def test_a_question_about_one_change_gets_that_change(policy, real_answerer, split, least):
    """data/policy_changes: a question about one change to the policy gets that change,
    its version and date; a question about the changes in general gets the section (None).
    Measured: dev 11 of 12, test 8 of 10; every miss reads a specific question as general."""
    rows = [json.loads(line) for line in (ROOT / "data" / "policy_changes" / "cases.jsonl").read_text(encoding="utf-8").splitlines()]
    right = wrong_change = 0
    for row in (r for r in rows if r["split"] == split):
        said = policy_fact("updates", policy, at(2026, 12, 2, 10, 0), Situation(row["text"], closest=real_answerer._closest))
        if row["change"] is None:
            right += said is None
        elif said is not None and said.startswith("That changed"):
            picked = said.split(": ", 1)[1]
            right += picked.startswith(row["change"])
            wrong_change += not picked.startswith(row["change"])
    assert right >= least
    assert wrong_change == 0  # a change that was not asked about


def test_whether_a_day_is_open(policy):
    assert fact(policy, "hours", "do you work sundays").startswith("No, we're closed on Sundays.")
    assert fact(policy, "hours", "open saturdays?").startswith("Yes, we're open on Saturdays, 9:30 to 18:30")
    christmas = fact(policy, "holidays", "open on christmas day?", at(2026, 12, 1, 10, 0))
    assert christmas.startswith("No, support is closed on Friday 25 December 2026 for Christmas Day.")
    assert fact(policy, "hours", "what are your hours") is None


@pytest.mark.parametrize(
    "asked", ["open on the 24th of december?", "anyone around dec 24th?", "is support open december the 24th", "open 24 dec."],
)
def test_a_date_in_any_common_form_is_the_day_asked(policy, asked):
    said = fact(policy, "holidays", asked, at(2026, 12, 1, 10, 0))
    assert said is not None and "closed on Thursday 24 December 2026 for Christmas Eve" in said


def test_a_question_about_a_holiday_season_gets_every_closure_it_names(policy):
    # My wording. "Christmas and New Year" names four closures: all of them, in date order
    # (it got Christmas Eve alone); a name asked in full keeps its own day.
    season = fact(policy, "holidays", "which days are you shut over christmas and the new year?", at(2026, 12, 5, 10, 0))
    assert season is not None
    said = [season.index(day) for day in ("24 December", "25 December", "31 December", "1 January")]
    assert said == sorted(said)
    eve = fact(policy, "holidays", "anyone working new years eve?", at(2026, 12, 5, 10, 0))
    assert "31 December" in eve and "1 January" not in eve
    assert "24 December" not in fact(policy, "holidays", "open on christmas day?", at(2026, 12, 1, 10, 0))
    # Two holidays named: each one's closest day, though one name shares more words.
    both = fact(policy, "holidays", "open on christmas day or new year's day?", at(2026, 12, 5, 10, 0))
    assert "25 December" in both and "1 January" in both and "24 December" not in both and "31 December" not in both


def test_a_number_beside_a_month_word_that_is_not_a_date_is_no_day(policy):
    from bot.policy_answers import asked_days

    assert asked_days(policy, at(2026, 12, 1, 10, 0), "we marched 3 miles and waited 2027 days") == []


def test_a_reversed_question_gets_the_fact_without_a_yes_or_no_that_would_answer_the_opposite(policy):
    christmas_eve = fact(policy, "holidays", "is support closed on christmas eve", at(2026, 12, 1, 10, 0))
    assert christmas_eve.startswith("Support is closed on Thursday 24 December 2026 for Christmas Eve")
    assert fact(policy, "hours", "do you close on sundays").startswith("We're closed on Sundays.")
    assert fact(policy, "hours", "is the desk shut on saturdays?").startswith("We're open on Saturdays, 9:30 to 18:30")
    assert fact(policy, "products", "has POS 2 been discontinued?").startswith("Makana POS 2 is no longer supported.")
    assert fact(policy, "products", "is makana books 6 out of support yet").startswith("Makana Books 6 is supported")


@pytest.mark.parametrize("split", ["dev", "test"])
def test_reversed_yes_no_questions_on_the_labelled_set(split):
    """data/yes_no/: a reversed question kept as plain would get a "No" that answers the
    opposite question (the costly error); a plain one caught as reversed only loses its
    "Yes"/"No". The word list was written on dev; test measured once (one miss, "out of luck"),
    then "out" was added after a second holdout batch missed "is makana books 6 out of support yet"."""
    from bot.policy_answers import asks_reversed

    rows = [json.loads(line) for line in (ROOT / "data" / "yes_no" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]
    reversed_ = [r["text"] for r in rows if r["reversed"]]
    plain = [r["text"] for r in rows if not r["reversed"]]
    caught = sum(asks_reversed(t) for t in reversed_) / len(reversed_)
    kept = sum(not asks_reversed(t) for t in plain) / len(plain)
    print(f"{split}: reversed caught {caught:.3f} of {len(reversed_)}, plain kept {kept:.3f} of {len(plain)}")
    assert caught == 1.0 and kept >= 0.9


def test_a_time_question_about_an_imagined_situation_is_answered_for_that_situation():
    """"Nothing is broken now, but if …": the calm words are about now, the question about
    the situation imagined, whose triage (passed as `imagined`) decides; a severity named
    outright still wins."""
    message = (
        "nothing is broken right now. hypothetically if an important feature broke for most "
        "of our team with no workaround, how long would a fix take?"
    )
    assert imagined_situation(message) == "an important feature broke for most of our team with no workaround"
    assert described_severity(message, None, False) == "low"  # without the imagined situation
    assert described_severity(message, None, False, imagined="high") == "high"
    assert described_severity("if a critical bug hit us, how fast would you fix it", None, False, imagined="medium") == "critical"
    assert imagined_situation("If I send a non-urgent question now, when will somebody answer?") == "I send a non-urgent question now"
    assert imagined_situation("when will I hear back if I write now?") is None  # too short to describe anything
    assert imagined_situation("how do I add a user") is None


def test_a_deadline_rests_only_on_a_settled_severity():
    """Rated Critical for recall with P(Critical or High) 0.43: no one-hour promise."""
    from bot.triage import Proposal

    unsure = Proposal("critical", "technical_support", True, {"critical": 0.31, "high": 0.12, "medium": 0.27, "low": 0.30}, 0.78)
    sure = Proposal("critical", "technical_support", True, {"critical": 0.8, "high": 0.1, "medium": 0.05, "low": 0.05}, 0.99)
    calm = Proposal("medium", "technical_support", True, {"critical": 0.1, "high": 0.2, "medium": 0.4, "low": 0.3}, 0.9)
    assert unsure.settled_severity is None and not unsure.urgent
    assert sure.settled_severity == "critical" and sure.urgent
    assert calm.settled_severity == "medium"


def test_time_questions_use_the_situation(policy):
    now = at(2026, 11, 27, 10, 0)  # Friday
    low = described_severity("a question that isn't urgent: when would you answer?", None, False)
    assert low == "low"
    assert described_severity("a non-urgent question, when will you answer", None, False) == "low"
    assert described_severity("when will I hear back if I write now?", None, False) is None
    assert described_severity("nobody can log in, how fast will you answer?", "critical", True) == "critical"
    # A negated phrase alone is no calm for a Critical problem; a customer's calm words lower it to Medium.
    leak = "statements with other owners' balances keep going out and my phone hasn't stopped. how quickly will you pick this up?"
    assert described_severity(leak, "critical", True) == "critical"
    assert described_severity("nobody can log in, it's not urgent, how fast will you answer?", "high", True) == "medium"
    assert described_severity("nobody can log in, whenever you can, how fast will you answer?", "critical", True) == "medium"
    # The customer's own word may raise a described problem's severity, never lower it.
    minor = "minor thing: two of our six users get a blank report in Safari, Chrome works. how long till a reply?"
    assert described_severity(minor, "medium", True) == "medium"
    assert described_severity("minor issue, a typo on the invoice screen, how long?", "low", True) == "low"
    assert described_severity("urgent: a typo on the invoice screen, how long?", "low", True) == "critical"
    assert described_severity("how long for a first reply on a medium priority issue?", None, False) == "medium"
    text = fact(policy, "response_times", "x", now, "low")
    assert text.startswith("A low-severity request sent now gets its first response by")
    table = fact(policy, "response_times", "when will I hear back if I write now?", now)
    assert table.startswith("If you write now, your first response is due by:")
    assert "- Critical (1 hour, around the clock): by today at 11:00 (Hawaii time)" in table
    assert "- High (4 hours, business hours): by today at 14:00 (Hawaii time)" in table


def test_several_questions_are_split():
    assert questions_in("What's your phone number? And are you open on Saturdays?") == [
        "What's your phone number?", "are you open on Saturdays?"
    ]
    assert questions_in("how fast do you respond to a critical issue and what's your phone number") == [
        "how fast do you respond to a critical issue", "what's your phone number"
    ]
    assert questions_in("how do I reset my password") == ["how do I reset my password"]
    assert questions_in("What details do you need from me, and am I allowed to just send it by email?") == [
        "What details do you need from me", "am I allowed to just send it by email?"
    ]
    # A part that names nothing of its own is read with the part before it.
    assert questions_in("Do you run live training my new hire could join? When is it? What does it cost?") == [
        "Do you run live training my new hire could join? When is it?", "What does it cost?"
    ]
    assert questions_in("can I still log in after I cancel? and for how long?") == [
        "can I still log in after I cancel? and for how long?"
    ]


@dataclass
class ByText:
    """An index answering by the first matching word of the query."""

    table: dict

    def search(self, query, k=3):
        for word, hit in self.table.items():
            if word in query.lower():
                return FixedIndex(hit, [hit])
        return FixedIndex(None, [])


def test_each_question_answered_and_policy_facts_offer_details(policy):
    index = ByText({"password": FakeHit("reset_password", "", 0.9), "saturday": FakeHit("hours", "", 0.9)})
    results = FaqAnswerer(index, ENTRIES, policy).answer_all("how do I reset my password? are you open on saturday?", at(2026, 11, 27, 10, 0))
    assert [r.entry_id for r in results] == ["reset_password", "hours"]
    assert (results[0].feedback, results[0].details) == (True, False)  # an article: "did this help?"
    assert (results[1].feedback, results[1].details) == (False, True)  # a policy fact: "more details"
    assert results[1].text.startswith("Yes, we're open on Saturdays")


def test_a_question_landing_on_a_negative_is_declined(policy):
    entries = [*ENTRIES, KbEntry("decline_unrelated", "Unrelated", tags=("decline",))]
    result = FaqAnswerer(FixedIndex(FakeHit("decline_unrelated", "", 0.9)), entries, policy).answer("bake bread?", at(2026, 11, 27, 10, 0))
    assert (result.kind, result.text) == ("decline", DECLINE_TEXT)


def test_every_policy_third_party_product_has_negative_phrasings(policy):
    declines = yaml.safe_load((KB / "declines.yml").read_text())
    phrasings = " ".join(q for e in declines for q in e["questions"]).lower()
    missing = [name for name in policy.doc.scope.third_party_products if name.lower() not in phrasings]
    assert not missing


def test_unsure_neighbours_that_compose_the_same_fact_answer_together(policy):
    """contact and channels both answer "what number do I ring?" with the phone line:
    their confidences add up (the answer is right if either entry is), and only when the
    sum reaches the threshold is the fact given; otherwise the customer gets suggestions."""
    now = at(2026, 11, 27, 10, 0)
    entries = [
        KbEntry("contact", "Contact details", policy_answer="contact"),
        KbEntry("channels", "Ways to get support", policy_answer="channels"),
        KbEntry("hours", "Support hours", policy_answer="hours"),
    ]
    split = FixedIndex(None, [FakeHit("contact", "Contact details", 0.36), FakeHit("channels", "Ways to get support", 0.29)])
    result = FaqAnswerer(split, entries, policy, answer_min_score=0.55).answer("what number do I ring to reach support?", now)
    assert result.kind == "answer" and result.details and result.entry_id == "contact"
    assert policy.doc.contact.phone in result.text and result.score == pytest.approx(0.65)

    weak = FixedIndex(None, [FakeHit("contact", "Contact details", 0.3), FakeHit("channels", "Ways to get support", 0.2)])
    assert FaqAnswerer(weak, entries, policy, answer_min_score=0.55).answer("what number do I ring?", now).kind == "suggest"

    # Different facts never add up: the phone line and the hours are two answers.
    apart = FixedIndex(None, [FakeHit("contact", "Contact details", 0.4), FakeHit("hours", "Support hours", 0.4)])
    assert FaqAnswerer(apart, entries, policy, answer_min_score=0.55).answer("what number do I ring?", now).kind == "suggest"


@dataclass
class ByWord:
    """An index returning a prepared result for the first word found in the query."""

    table: dict

    def search(self, query, k=3):
        return next((result for word, result in self.table.items() if word in query.lower()), FixedIndex(None, []))


def test_an_unsure_second_question_gets_its_own_suggestions_not_silence(policy):
    entries = [*ENTRIES, KbEntry("two_factor", "Two-factor authentication", "Turn it on under Security.")]
    sure = FakeHit("reset_password", "Reset a password", 0.9)
    index = ByWord({
        "password": FixedIndex(sure, [sure]),
        "two-factor": FixedIndex(None, [FakeHit("two_factor", "Two-factor authentication", 0.45, similarity=0.58)]),
        "thanks": FixedIndex(None, [FakeHit("hours", "Support hours", 0.34, similarity=0.42)]),
    })
    answerer = FaqAnswerer(index, entries, policy)
    now = at(2026, 11, 27, 10, 0)
    results = answerer.answer_all("how do I reset my password, and also how do I turn on two-factor?", now)
    assert [(r.kind, r.entry_id) for r in results] == [("answer", "reset_password"), ("suggest", None)]
    assert results[1].suggestions == [("two_factor", "Two-factor authentication")]
    assert results[1].question == "how do I turn on two-factor?"
    # A part far from every entry (thanks, a greeting) is no question: no "did you mean".
    results = answerer.answer_all("Many thanks in advance. How do I reset my password?", now)
    assert [(r.kind, r.entry_id) for r in results] == [("answer", "reset_password")]


def test_a_sentence_that_asks_nothing_needs_a_sure_entry_beside_a_question(policy):
    """A sentence that tells the story is near some entry too: beside a question, it is
    answered on its own only when the index is sure of it (STATEMENT_SURE)."""
    from bot.faq import STATEMENT_SURE

    entries = [*ENTRIES, KbEntry("card_declined", "A card is declined", "Ask for another card.")]
    near = FakeHit("card_declined", "A card is declined", STATEMENT_SURE - 0.01, similarity=0.61)
    sure = FakeHit("reset_password", "Reset a password", 0.9)
    index = ByWord({
        "through. how": FixedIndex(None, [near, sure]),  # the whole message
        "approval": FixedIndex(near, [near]),
        "password": FixedIndex(sure, [sure]),
    })
    answerer = FaqAnswerer(index, entries, policy)
    now = at(2026, 11, 27, 10, 0)
    message = "Our approval workflow won't let a bill through. How do I reset my password?"
    assert [(r.kind, r.entry_id) for r in answerer.answer_all(message, now)] == [("answer", "reset_password")]
    # Sure of it, the sentence is a second question in effect, and keeps its answer.
    index.table["approval"] = FixedIndex(replace(near, score=STATEMENT_SURE + 0.2), [near])
    assert [r.entry_id for r in answerer.answer_all(message, now)] == ["card_declined", "reset_password"]
    # Alone, with no question beside it, the sentence asks through itself as before.
    index.table["approval"] = FixedIndex(near, [near])
    assert [r.entry_id for r in answerer.answer_all("Our approval workflow won't let a bill through.", now)] == ["card_declined"]


def test_a_problem_on_a_version_no_longer_supported_is_not_covered(policy):
    """The supported-versions answer to a problem on a version the policy no longer
    supports says what support does not cover: no urgent ticket offer beside it."""
    products = KbEntry("products", "Supported products", policy_answer="products")
    hit = FakeHit("products", "Supported products", 0.9)
    answerer = FaqAnswerer(FixedIndex(hit, [hit]), [*ENTRIES, products], policy)
    now = at(2026, 11, 27, 10, 0)
    old = answerer.answer_all("Our PC still runs Makana Books 4 and it throws errors. Will you look at it on that version?", now)
    assert answerer.not_covered(old)
    current = answerer.answer_all("Our PC runs Makana Books 6 and it throws errors. Will you look at it on that version?", now)
    assert not answerer.not_covered(current)
    assert not answerer.not_covered(answerer.answer_all("Which products do you support?", now))


def test_a_version_written_without_its_product_is_read_with_the_product_the_message_named(policy):
    """"We've got Makana Sync 1.8 … is 1.8 something you still look at?": the question is
    searched as "… is Makana Sync 1.8 something …"; a number no named product carries, and
    a part that names its own product, are searched as written."""
    searched: list[str] = []

    class Recording:
        def search(self, query, k=3):
            searched.append(query)
            return FixedIndex(None, [])

    answerer = FaqAnswerer(Recording(), ENTRIES, policy)
    now = at(2026, 11, 27, 10, 0)
    answerer.answer_all(
        "We've got Makana Sync 1.8 on the server. It skips some files. Is 1.8 something you still look at? "
        "Also 2 of our PCs run Books 6, does 6 still get updates?", now,
    )
    assert "Is Makana Sync 1.8 something you still look at?" in searched
    assert any(q.startswith("Also 2 of our PCs run Books 6, does 6 still") for q in searched)


def test_a_whole_message_matched_to_an_entry_none_of_its_questions_is_about_is_split(policy):
    """Two questions blended into one embedding can land on a third entry: each question
    then gets its own answer or "did you mean", not the blend's answer."""
    entries = [*ENTRIES, KbEntry("pos_refund", "Refund a sale", "Refunds take 3 to 10 days.")]
    blend = FakeHit("online_payments", "Take card payments online", 0.7, similarity=0.66)
    refund = FakeHit("pos_refund", "Refund a sale", 0.45, similarity=0.63)
    hours = FakeHit("hours", "Support hours", 0.47, similarity=0.6)
    index = ByWord({
        "and who": FixedIndex(blend, [blend]),  # the whole message
        "refund": FixedIndex(None, [refund]),
        "who do i": FixedIndex(None, [hours]),
    })
    answerer = FaqAnswerer(index, entries, policy)
    now = at(2026, 11, 27, 10, 0)
    message = "how long till a refund shows up? and who do i call about a charge?"
    results = answerer.answer_all(message, now)
    assert [(r.kind, r.suggestions[0][0]) for r in results] == [("suggest", "pos_refund"), ("suggest", "hours")]
    # When one of the questions leans to the entry the whole message matched, that answer
    # stands for it, and the other question keeps its own "did you mean".
    index.table["refund"] = FixedIndex(None, [blend])
    results = answerer.answer_all(message, now)
    assert [(r.kind, _first_choice(r)) for r in results] == [("answer", "online_payments"), ("suggest", "hours")]


def test_a_follow_up_question_that_leans_on_the_one_before_is_no_blend(policy):
    """My wording. "Will it still be open when I'm back?" leans on the question before it
    ("it") and names nothing the index knows: it is that question's follow-up, not a
    second question, so the whole message's answer stands (it was replaced by the first
    question's own answer, as a blend of two questions is). A follow-up that the index
    does know stays a question of its own."""
    entries = [*ENTRIES, KbEntry("pos_refund", "Refund a sale", "Refunds take 3 to 10 days.")]
    whole = FakeHit("online_payments", "Take card payments online", 0.7, similarity=0.66)
    first = FakeHit("pos_refund", "Refund a sale", 0.7, similarity=0.66)
    index = ByWord({
        "month. if": FixedIndex(whole, [whole]),  # only the whole message has both sentences
        "what happens": FixedIndex(first, [first]),
        "will it": FixedIndex(None, []),
    })
    answerer = FaqAnswerer(index, entries, policy)
    message = "we'll be gone a month. if your agent writes to me meanwhile, what happens to my ticket? will it still be open?"
    now = at(2026, 11, 27, 10, 0)
    assert [(r.kind, r.entry_id) for r in answerer.answer_all(message, now)] == [("answer", "online_payments")]
    hours = FakeHit("hours", "Support hours", 0.47, similarity=0.6)
    index.table["will it"] = FixedIndex(None, [hours])
    assert [r.entry_id for r in answerer.answer_all(message, now)][0] == "pos_refund"


def test_a_sentence_that_only_says_what_is_not_wrong_gets_no_answer_of_its_own(policy):
    """My wording. "Nothing is broken, it works." asks nothing and, less its
    negated phrase, says next to nothing: a sure match for it (an outage checklist) is no
    answer beside the question asked. A sentence that tells a real problem keeps it."""
    entries = [*ENTRIES, KbEntry("outage", "Is Makana down?", "Check the status page.")]
    sure = FakeHit("outage", "Is Makana down?", 0.8, similarity=0.7)
    asked = FakeHit("reset_password", "Reset a password", 0.9)
    index = ByWord({
        "how do i": FixedIndex(asked, [asked]),  # the whole message too
        "works": FixedIndex(sure, [sure]),
        "stopped": FixedIndex(sure, [sure]),
    })
    answerer = FaqAnswerer(index, entries, policy)
    now = at(2026, 11, 27, 10, 0)
    calm = "Any chance of a darker colour scheme for the till? Nothing is broken, it works. How do I change my password?"
    assert [(r.kind, r.entry_id) for r in answerer.answer_all(calm, now)] == [("answer", "reset_password")]
    told = "Any chance of a darker colour scheme for the till? The till app stopped syncing sales overnight. How do I change my password?"
    assert [r.entry_id for r in answerer.answer_all(told, now) if r.kind == "answer"] == ["outage", "reset_password"]


def test_context_before_one_question_is_no_blend(policy):
    """A sentence of context and one question leaning on it ("is there a way to make it do
    that automatically?") are one question: the whole message's confident answer stands,
    though neither part is about its entry."""
    entries = [*ENTRIES, KbEntry("pos_refund", "Refund a sale", "Refunds take 3 to 10 days.")]
    whole = FakeHit("online_payments", "Take card payments online", 0.7, similarity=0.66)
    context = FakeHit("pos_refund", "Refund a sale", 0.45, similarity=0.63)
    vague = FakeHit("hours", "Support hours", 0.47, similarity=0.6)
    index = ByWord({
        "hand. is": FixedIndex(whole, [whole]),  # only the whole message has both sentences
        "same card": FixedIndex(None, [context]),
        "is there": FixedIndex(None, [vague]),
    })
    answerer = FaqAnswerer(index, entries, policy)
    message = "every month the same card payment comes in and i match it by hand. is there a way to do that automatically?"
    assert [(r.kind, r.entry_id) for r in answerer.answer_all(message, at(2026, 11, 27, 10, 0))] == [("answer", "online_payments")]


def test_another_companys_product_with_no_entry_about_it_is_declined_not_missed(policy):
    """A miss would leave "our clover terminal keeps rebooting" to be triaged as a Makana
    outage; the object check declines it. A product on the policy's third-party list is
    often used with Makana ("load my customer list from excel") and stays a miss."""
    entries = [*ENTRIES, KbEntry("decline_other_vendors", "Another company's product", tags=("decline", "vendor:Clover"))]
    answerer = FaqAnswerer(FixedIndex(None, [FakeHit("online_payments", "", 0.1)]), entries, policy)
    now = at(2026, 11, 27, 10, 0)
    assert answerer.answer("our clover terminal keeps rebooting mid-sale", now).kind == "decline"
    assert answerer.answer("can I load my customer list from excel", now).kind == "miss"
    assert answerer.answer("moving from clover to makana, how do I bring my sales over", now).kind == "miss"


def test_a_makana_product_named_by_its_policy_name_is_the_object_beside_a_device(policy):
    """"the till app" is the policy's name for Makana POS: on an iPhone, the phone is where
    it runs and the question is about the app. Another company's name just before it
    ("the Clover point of sale") keeps the question the other company's."""
    install = FakeHit("online_payments", "Take card payments online", 0.9)
    entries = [*ENTRIES, KbEntry("decline_other_vendors", "Another company's product", tags=("decline", "vendor:iPhone", "vendor:Clover"))]
    answerer = FaqAnswerer(FixedIndex(install, [install]), entries, policy)
    now = at(2026, 11, 27, 10, 0)
    assert answerer.answer("can I put the till app on my iPhone?", now).entry_id == "online_payments"
    assert answerer.answer("can I put the app on my iPhone?", now).kind == "decline"
    assert answerer.answer("how do I set up the Clover point of sale app?", now).kind == "decline"


def _vendor_answerer(policy, vendor, table):
    """An answerer whose knowledge base declines `vendor`'s product, over a ByWord index."""
    entries = [*ENTRIES, KbEntry("decline_other_vendors", "Another company's product", tags=("decline", f"vendor:{vendor}"))]
    return FaqAnswerer(ByWord(table), entries, policy)


def test_a_question_that_leans_on_another_companys_product_is_declined(policy):
    """"any idea how to reset it?" after "the clover terminal keeps showing an error" asks
    about the terminal: the part's confident Makana answer (the password reset) is not
    given, and the message is declined as a whole, so no Makana ticket is offered for it.
    A message that names Makana too keeps its answer."""
    reset = FakeHit("reset_password", "Reset a forgotten password", 0.8, similarity=0.64)
    vague = FakeHit("online_payments", "Take card payments online", 0.3, similarity=0.55)
    answerer = _vendor_answerer(policy, "Clover", {"error": FixedIndex(None, [vague]), "reset": FixedIndex(reset, [reset])})
    now = at(2026, 11, 27, 10, 0)
    message = "the clover terminal at the front counter keeps showing an error. any idea how to reset it?"
    assert [r.kind for r in answerer.answer_all(message, now)] == ["decline"]
    with_makana = "the clover terminal at the front counter keeps showing an error in makana. any idea how to reset it?"
    assert "reset_password" in [r.entry_id for r in answerer.answer_all(with_makana, now)]


def test_a_question_that_does_not_refer_back_is_not_about_the_other_companys_product(policy):
    """After a question about Shopify, "Also, I got locked out after too many wrong
    passwords - how long does the lock last?" names nothing it refers back to: it is about
    Makana and keeps its answer (it was declined as a question about Shopify)."""
    reset = FakeHit("reset_password", "Reset a forgotten password", 0.85, similarity=0.79)
    vague = FakeHit("online_payments", "Take card payments online", 0.3, similarity=0.55)
    answerer = _vendor_answerer(policy, "Shopify", {"store": FixedIndex(None, [vague]), "locked": FixedIndex(reset, [reset])})
    now = at(2026, 11, 27, 10, 0)
    message = (
        "Does your support team help with problems in our Shopify store? "
        "Also, I got locked out after too many wrong passwords - how long does the lock last?"
    )
    assert "reset_password" in [r.entry_id for r in answerer.answer_all(message, now)]
    leaning = "Does your support team help with problems in our Shopify store? Also, how long does it stay locked?"
    assert "reset_password" not in [r.entry_id for r in answerer.answer_all(leaning, now)]


def test_the_whole_message_settles_a_question_its_part_was_unsure_of(policy):
    """"is sync 1.8 still ok? also we're replacing the server it runs on, how do i move it
    across": the second question alone hesitates between two articles, the whole message
    is sure of the one it leaned to; both questions are answered, in the order asked (only
    the whole message's answer was given)."""
    entries = [*ENTRIES, KbEntry("move_computer", "Move to a new computer", "Disconnect this computer first.")]
    move = FakeHit("move_computer", "Move to a new computer", 0.7, similarity=0.64)
    hours = FakeHit("hours", "Support hours", 0.9, similarity=0.7)
    index = ByWord({
        "saturdays? also": FixedIndex(move, [move, hours]),
        "still ok": FixedIndex(hours, [hours]),
        "move it": FixedIndex(None, [FakeHit("move_computer", "Move to a new computer", 0.48, similarity=0.64), hours]),
    })
    answerer = FaqAnswerer(index, entries, policy)
    results = answerer.answer_all("are you still ok on saturdays? also we're replacing the server, how do i move it across", at(2026, 11, 27, 10, 0))
    assert [(r.kind, r.entry_id) for r in results] == [("answer", "hours"), ("answer", "move_computer")]
    assert results[1].question == "also we're replacing the server, how do i move it across"


def test_an_unsure_question_beside_an_answered_one_is_kept_when_the_whole_message_is_unsure(policy):
    """"which day are your free webinars on? also how do i enter the starting cash float":
    the whole message is unsure, the second question is answered, and the first gets its
    own "did you mean" rather than silence."""
    entries = [*ENTRIES, KbEntry("open_till", "Open the till", "Tap Open register.")]
    till = FakeHit("open_till", "Open the till", 0.96, similarity=0.76)
    webinar = FakeHit("hours", "Support hours", 0.42, similarity=0.6)
    index = ByWord({
        "webinars on? also": FixedIndex(None, [FakeHit("hours", "Support hours", 0.38, similarity=0.55)]),
        "webinars": FixedIndex(None, [webinar]),
        "float": FixedIndex(till, [till]),
    })
    answerer = FaqAnswerer(index, entries, policy)
    message = "which day are your free webinars on? also how do i enter the starting cash float in the morning"
    results = answerer.answer_all(message, at(2026, 11, 27, 10, 0))
    assert [(r.kind, r.entry_id) for r in results] == [("suggest", None), ("answer", "open_till")]
    assert results[0].question == "which day are your free webinars on?"


def test_an_error_code_the_knowledge_base_documents_identifies_its_entry(policy):
    """"MK-403 when i try to add a tax rate" is about the permission error, not tax rates,
    however confident the search is of the tax article; "mk 403" is the same code, a ticket
    number ("MK-7QX2P9") is none, and a code named by two entries identifies neither."""
    entries = [
        *ENTRIES,
        KbEntry("tax_rates", "Set up tax rates", "Settings → Taxes."),
        KbEntry("mk403", "MK-403: You don't have permission", "Your role doesn't allow that.", questions=("MK-403 access denied",)),
        KbEntry("a", "MK-500 one", "x"),
        KbEntry("b", "MK-500 two", "y"),
    ]
    tax = FakeHit("tax_rates", "Set up tax rates", 0.9)
    answerer = FaqAnswerer(FixedIndex(tax, [tax]), entries, policy)
    now = at(2026, 11, 27, 10, 0)
    assert answerer.answer("MK-403 when i try to add a tax rate?? i do all the bookkeeping", now).entry_id == "mk403"
    assert answerer.answer("getting mk 403 on the tax page", now).entry_id == "mk403"
    assert answerer.answer("what's the status of MK-7QX2P9, it was about tax rates", now).entry_id == "tax_rates"
    assert answerer.answer("MK-500 when i add a tax rate", now).entry_id == "tax_rates"


# When a time question imagines sending later (labelled by hand; now is Friday 27
# November 2026, 10:00 in Honolulu). None: the question is about sending now, or names
# a day that is not when the request is sent.
SEND_TIMES = [
    ("Suppose I send an email to your support address on a Sunday afternoon. When would somebody read it?", (2026, 11, 29, 15, 0)),
    ("if I email you on sunday when will someone read it", (2026, 11, 29, 12, 0)),
    ("I write to you on a Saturday evening, when is it picked up?", (2026, 11, 28, 19, 0)),
    ("if I message you friday at 6pm how long until a reply", (2026, 11, 27, 18, 0)),
    ("what if I call on Monday at 8:15 am, before you open?", (2026, 11, 30, 8, 15)),
    ("a ticket submitted on christmas day, when does someone look at it?", (2026, 12, 25, 12, 0)),
    ("if I log a request tomorrow morning how soon will you get back to me", (2026, 11, 28, 10, 0)),
    ("on a sunday night, if I raise a low priority issue, when will I hear back?", (2026, 11, 29, 22, 0)),
    ("when will I hear back if I write now?", None),
    ("we close the month on friday. if i log it right now when should i expect to hear from someone?", None),
    ("our deadline is Monday. how quickly do you normally answer emails?", None),
    ("if I send it today how long will it take", None),
    ("are you open on sundays?", None),
    ("how fast do you reply to a high priority ticket", None),
    ("we have 4 of us waiting, if I email at lunch how long?", None),
    # Sent already: the answer is about that request (the case form), not a table from a past day.
    ("I emailed on Monday and still nothing, when do you answer?", None),
    ("we sent it in on saturday morning, when will someone read it?", None),
]


@pytest.mark.parametrize(("message", "expected"), SEND_TIMES)
def test_the_moment_a_time_question_imagines_sending(policy, message, expected):
    from bot.policy_answers import asked_send_time

    asked = asked_send_time(policy, at(2026, 11, 27, 10, 0), message)
    assert (asked and asked[1]) == (at(*expected) if expected else None)


def test_deadlines_from_the_moment_the_customer_names(policy):
    now = at(2026, 11, 27, 10, 0)  # Friday
    text = fact(policy, "response_times", "if I email you on a Sunday afternoon, when will someone read it?", now)
    assert text.startswith("Sent on Sunday afternoon, when we're closed, a request is read when we open: Monday 30 November at 9:30")
    assert "- High (4 hours, business hours): by Monday 30 November at 13:30" in text
    critical = fact(policy, "response_times", "if I email on Sunday about a critical outage, when do you reply?", now, "critical")
    assert critical.startswith("Critical problems are handled around the clock: sent on Sunday, a critical-severity request gets its first response by Sunday 29 November at 13:00")


def test_a_scene_before_one_question_is_its_situation(policy):
    """"Suppose I email you on a Sunday afternoon. When would somebody read it?": the first
    sentence asks nothing; split off, it got the email address and the question lost its
    Sunday. The whole message is answered, from the Sunday afternoon. A clause that asks
    something, however punctuated ("whats the support email; also how do I …"), is still
    a question of its own."""
    entries = [*ENTRIES, KbEntry("contact", "Contact details", policy_answer="contact"),
               KbEntry("response_times", "Response times", policy_answer="response_times")]
    times = FakeHit("response_times", "Response times", 0.8)
    contact = FakeHit("contact", "Contact details", 0.8)
    index = ByWord({
        "sunday afternoon. when": FixedIndex(times, [times]),  # the whole message
        "when would": FixedIndex(times, [times]),
        "email": FixedIndex(contact, [contact]),
    })
    answerer = FaqAnswerer(index, entries, policy)
    now = at(2026, 11, 27, 10, 0)  # Friday
    results = answerer.answer_all("Suppose I email you on a Sunday afternoon. When would somebody read it?", now)
    assert [r.entry_id for r in results] == ["response_times"]
    assert results[0].text.startswith("Sent on Sunday afternoon, when we're closed, a request is read when we open: Monday 30 November")
    index.table = {"; also": FixedIndex(times, [times]), "printer": FixedIndex(times, [times]), "email": FixedIndex(contact, [contact])}
    results = answerer.answer_all("whats the support email; also how do i hook up a printer", now)
    assert [r.entry_id for r in results] == ["contact", "response_times"]


def test_a_story_about_the_product_then_one_time_question_gets_the_time_first(policy):
    """"The online payments page shows odd totals for two of us, but the export is right so
    we're getting by. How long would it take you to fix something like that?": the whole
    message is nearest the payments article (its story), the one question a response time.
    The time for the severity the story describes comes first, the article after it. A
    question that leans on the story and is not about when we answer keeps the article."""
    entries = [*ENTRIES, KbEntry("response_times", "Response times", policy_answer="response_times")]
    article = FakeHit("online_payments", "Take card payments online", 0.8)
    times = FakeHit("response_times", "Response times", 0.8)
    hours = FakeHit("hours", "Support hours", 0.8)
    index = ByWord({
        "getting by. how": FixedIndex(article, [article]),  # the whole message
        "how long": FixedIndex(times, [times]),
        "anything i": FixedIndex(hours, [hours]),
        "payments page": FixedIndex(None, []),
    })
    answerer = FaqAnswerer(index, entries, policy)
    now = at(2026, 11, 27, 10, 0)  # Friday, open
    story = "The online payments page shows odd totals for two of us, but the export is right so we're getting by."
    results = answerer.answer_all(f"{story} How long would it take you to fix something like that?", now, "medium")
    assert [r.entry_id for r in results] == ["response_times", "online_payments"]
    assert results[0].text.startswith("A medium-severity request sent now gets its first response by")
    index.table = {"getting by. anything": FixedIndex(article, [article]), **index.table}
    results = answerer.answer_all(f"{story} Anything I can do on my end?", now, "medium")
    assert [r.entry_id for r in results] == ["online_payments"]


def test_a_sentence_that_sets_the_scene_is_neither_suggested_nor_answered_instead_of_the_question(policy):
    now = at(2026, 11, 27, 10, 0)
    sure = FakeHit("reset_password", "Reset a password", 0.9)
    scene = FixedIndex(None, [FakeHit("online_payments", "Take card payments online", 0.4, similarity=0.58)])
    index = ByWord({"weekend. how": FixedIndex(sure, [sure]), "planning": scene, "password": FixedIndex(sure, [sure])})
    answerer = FaqAnswerer(index, ENTRIES, policy)
    # The scene gets no "About …: did you mean" of its own beside the answer to the question.
    results = answerer.answer_all("We are planning a big cleanup this weekend. How do I reset my password?", now)
    assert [(r.kind, r.entry_id) for r in results] == [("answer", "reset_password")]

    paying = FakeHit("online_payments", "Take card payments online", 0.6)
    # Near enough for a "did you mean" of the whole message, not for one of its own
    # beside another answer (MULTI_SUGGEST_MIN_SIMILARITY).
    unsure = FixedIndex(None, [FakeHit("hours", "Support hours", 0.3, similarity=0.48)])
    index = ByWord({
        "what should": FixedIndex(paying, [paying]), "invoices. ": unsure, "late paying": FixedIndex(paying, [paying]),
        "court": unsure,
    })
    answerer = FaqAnswerer(index, ENTRIES, policy)
    # The question stands alone and is unsure: the scene's article is not the answer.
    results = answerer.answer_all("A client is late paying my invoices. Can I take him to small claims court?", now)
    assert [r.kind for r in results] == ["suggest"]
    # A question with nothing of its own is asked through the scene: the message is one
    # question (questions_in), answered whole.
    message = "A client is late paying my invoices. What should I do?"
    assert questions_in(message) == [message]
    results = answerer.answer_all(message, now)
    assert [(r.kind, r.entry_id) for r in results] == [("answer", "online_payments")]


def test_the_channels_open_outside_hours_name_the_email_address(policy):
    """"Is it ok to send a support request by email?" needs the address, not the word Email."""
    text = policy_answer("open_now", policy, at(2026, 12, 6, 8, 0), "can I email you now?")
    assert f"Email ({policy.doc.contact.email})" in text


def test_two_questions_about_one_policy_section_get_both_facts(real_answerer, policy):
    """Each question gets its own fact of the contact section; the second was dropped as a
    repeat of the first's entry (holdout fresh23-p06 got the phone line alone)."""
    now = at(2026, 12, 5, 10, 0)
    message = (
        "I'm honestly not a chat person. Is there a phone number I can ring you on? And if I'd rather write, "
        "what email address do I send things to?"
    )
    [result] = [r for r in real_answerer.answer_all(message, now) if r.entry_id == "contact"]
    assert policy.doc.contact.phone in result.text and policy.doc.contact.email in result.text
    assert result.text.count(policy.doc.contact.phone) == 1


@pytest.mark.parametrize(
    "message, entry_ids",
    [
        (
            "A few of our customers say the invoices we send from Makana never arrive. For now I forward the PDFs "
            "from Outlook myself, which works. What can I check on my side?",
            ("invoice_email_not_delivered",),
        ),
        (
            "Our bank feed in Makana stopped updating on Monday. Meanwhile I copy the numbers over from Excel by hand, "
            "which is fine for now. How do I get the feed going again?",
            ("bank_feed_disconnected",),
        ),
        (
            "My business partner is taking over the company. How do I hand ownership of the Makana account to her? "
            "Separately, the invoices you send us for the plan still go to my private gmail; could they go to the "
            "office inbox as well?",
            ("transfer_ownership", "billing_contact"),
        ),
    ],
)
def test_another_product_named_in_a_sentence_about_makana_is_not_what_it_asks_about(real_answerer, message, entry_ids):
    """The workaround names Outlook or Excel, the billing email is a Gmail address; the
    questions are about Makana. They were declined as questions about Outlook or Gmail, or
    answered "Excel is a third-party product"."""
    results = real_answerer.answer_all(message, at(2026, 12, 5, 10, 0))
    assert [(r.kind, r.entry_id) for r in results] == [("answer", e) for e in entry_ids]


def test_the_days_a_message_names_find_the_maintenance_window_on_them(policy):
    """The policy's window is Sunday 6 December 2026, 2:00 to 6:00; the customer writes on
    the Saturday before (announced). A date, tomorrow, or a weekday whose coming occurrence
    the window falls on finds it; another day, or no day, does not; nor after the window."""
    from bot.policy_answers import maintenance_on_asked_days

    window = policy.doc.availability.maintenance_windows[0]
    saturday = window.starts.astimezone(policy.tz).replace(hour=10) - dt.timedelta(days=1)
    for message in ("we work late into tomorrow morning", "anything planned this sunday?", "on the weekend",
                    f"on {window.starts.day} December"):
        assert [n.id for n in maintenance_on_asked_days(policy, saturday, message)] == [window.id], message
    for message in ("can we do it on tuesday", "is anything planned?", "tonight at 11pm"):
        assert maintenance_on_asked_days(policy, saturday, message) == [], message
    assert maintenance_on_asked_days(policy, window.ends + dt.timedelta(days=1), "this sunday") == []


@pytest.mark.parametrize("message, entry_id", [
    ("I like to run our payroll exports through the API really early tomorrow, around 3 in the morning. "
     "Will anything on your side stop that?", "maintenance"),
    ("my partner and I reconcile the bank accounts on sunday nights, sometimes past midnight. is there "
     "anything going on this weekend we should know about?", "maintenance"),
    # The day of the window, but nearer another section of the policy: that section answers.
    ("Can I phone your support line on Sunday?", "hours"),
])
def test_a_question_about_working_on_the_day_of_a_maintenance_window_gets_the_window(real_answerer, message, entry_id):
    """Retrieval is unsure (no section's phrasings are near), and the window's sentence is
    under the bar of a fact found across sections; but the message names the window's day
    and no policy sentence is nearer: the window answers. Both were "did you mean"."""
    result = real_answerer.answer(message, at(2026, 12, 5, 10, 0))
    assert (result.kind, result.entry_id) == ("answer", entry_id)
    if entry_id == "maintenance":
        assert "2:00" in result.text and "6:00" in result.text


@pytest.mark.parametrize("message, fact", [
    # The version ends a sentence ("POS 2."), and the question refers back to it.
    ("The register at our market stall is an old iPad on Makana POS 2. Sometimes the discount button greys out. "
     "Do you still look after that version, or is an upgrade the only way?", "Makana POS 2 is no longer supported"),
    ("Our bookkeeper's laptop has Makana Books 5 on it and the bank rules page is slow. before I write it up, "
     "will somebody actually help with that version?", "Makana Books 5 is supported"),
])
def test_a_question_about_that_version_is_about_the_version_the_message_names(real_answerer, message, fact):
    """Whether we support a product's version is the policy's answer, also when the question
    says "that version" and the version was named a sentence before (the first got the
    install article beside the whole product list: "POS 2." was read without its version)."""
    results = real_answerer.answer_all(message, at(2026, 12, 5, 10, 0))
    assert [r.entry_id for r in results] == ["products"]
    assert fact in results[0].text


def test_a_version_at_the_end_of_a_sentence_is_read():
    from bot.policy_answers import VERSION

    assert [m.group(1) for m in VERSION.finditer("an old iPad on Makana POS 2. Sometimes, sync 1.8? or v2.5.")] == ["2", "1.8", "2.5"]
    assert [m.group(0) for m in VERSION.finditer("POS 2.x and agent 1.8.2")] == []


def test_a_number_at_the_end_of_a_sentence_is_a_version_only_when_the_policy_lists_it(policy):
    from bot.policy_answers import mentioned_products

    said = mentioned_products(policy, "our script calls your API and crashes with a KeyError on line 88. can you fix it?")
    assert [(p.name, v) for p, v in said] == [("Makana API", None)]
    said = mentioned_products(policy, "our till still runs Makana POS 2. will you help with it?")
    assert [(p.name, v) for p, v in said] == [("Makana POS", "2")]
