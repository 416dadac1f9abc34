"""The sentence of the policy that answers a question (bot/policy_facts.py)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pytest

from bot.faq import DECLINE_TAG, FaqAnswerer, KbEntry
from bot.policy_facts import FactFinder, FactSettings, load_cases, pipeline, policy_facts, score, units

ROOT = Path(__file__).resolve().parent.parent


def now(policy) -> dt.datetime:
    return dt.datetime(2026, 12, 4, 10, 0, tzinfo=policy.tz)


def test_a_section_is_cut_into_sentences_named_items_and_whole_lists():
    rendered = "Please include:\n- Your name.\n- The product.\nKeep to one ticket. Never send passwords.\nTraining:\n- Live webinars: Tuesdays."
    facts = units("responsibilities", rendered)
    assert [f.text for f in facts] == [
        "Please include: Your name. The product.",
        "Keep to one ticket.",
        "Never send passwords.",
        "Live webinars: Tuesdays.",
    ]
    # A list is compared item by item too: read whole, it is close to no question.
    assert facts[0].probes == ("Please include: Your name.", "Please include: The product.")


def test_every_fact_comes_from_the_policy_file(policy):
    facts = policy_facts(policy, now(policy))
    assert len(facts) > 25
    texts = " ".join(f.text for f in facts)
    for value in ("US$180", "5 business days", "head of support every 4 hours", "question-mark icon", "45 minutes"):
        assert value in texts


def test_each_move_up_the_escalation_levels_is_a_fact_of_its_own(policy):
    """"At what point does the agent bring in an engineer?" asks one move: it is a sentence
    of its own, from the policy's fields, not a clause inside the level's list item."""
    levels = policy.doc.process.escalation_levels
    texts = [f.text for f in policy_facts(policy, now(policy), ("escalation",))]
    agent, team = levels[1], levels[2]
    move = f"A ticket moves up from the {agent.name.lower()} to the {team.name.lower()} when {agent.moves_up_when[:1].lower()}"
    assert any(t.startswith(move) and t.endswith(agent.moves_up_when[1:]) for t in texts)
    assert f"{agent.name}: {agent.handles}" in texts  # what the level handles, without when it moves up
    assert any(t.startswith(levels[0].name) for t in texts) and f"{team.name}: {team.moves_up_when}" in texts


class WordEncoder:
    """Bag of words, L2-normalised: enough to tell the facts of a test apart."""

    def __init__(self) -> None:
        self.vocabulary: dict[str, int] = {}

    def encode(self, texts):
        rows = []
        for text in texts:
            row = np.zeros(512, dtype=np.float32)
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                row[self.vocabulary.setdefault(word, len(self.vocabulary) % 512)] += 1
            rows.append(row / (np.linalg.norm(row) or 1.0))
        return np.stack(rows)


def test_within_a_section_the_fact_asked_leads_and_the_opening_keeps_the_whole_section(policy):
    finder = FactFinder(WordEncoder(), policy, FactSettings(within=0.2, spread=0.0))
    deposit = finder.within("custom_solutions", "is a 50% deposit paid before work starts", now(policy))
    assert deposit == "Work starts after a written quote is accepted and a 50% deposit is paid; the rest is invoiced on delivery."
    # Closest to the section's opening sentence: the section as a whole (None).
    assert finder.within("custom_solutions", "can your professional services team build custom integrations", now(policy)) is None
    # A topic that composes its own fact, or nothing close enough: None.
    assert finder.within("hours", "when do you open", now(policy)) is None
    assert finder.within("custom_solutions", "zzz", now(policy)) is None


def test_within_a_section_each_question_of_the_message_brings_its_own_fact(policy):
    finder = FactFinder(WordEncoder(), policy, FactSettings(within=0.2, spread=0.0))
    message = "is makana liable for indirect losses from a delay? and what is the most, total, you would pay for support services"
    questions = ["is makana liable for indirect losses from a delay?", "and what is the most, total, you would pay for support services"]
    alone = finder.within("liability", message, now(policy))
    both = finder.within("liability", message, now(policy), questions)
    assert alone is not None and alone.count(". ") == 0  # one sentence
    assert "not liable for indirect" in both and "limited to the fees" in both
    assert both.index("not liable") < both.index("limited to")  # in the order asked
    # When the whole message is the section as a whole, its questions do not cut it down.
    opening = "can your professional services team build custom integrations? is a 50% deposit paid"
    assert finder.within("custom_solutions", opening, now(policy), ["is a 50% deposit paid"]) is None


def test_across_sections_a_fact_needs_similarity_and_a_margin(policy):
    strict = FactFinder(WordEncoder(), policy, FactSettings(across=0.99))
    assert strict.across("is a 50% deposit paid before work starts", now(policy)) is None
    loose = FactFinder(WordEncoder(), policy, FactSettings(across=0.2, across_margin=0.0))
    found = loose.across("is a 50% deposit paid before work starts", now(policy))
    assert found is not None and found.topic == "custom_solutions" and "deposit" in found.text


def test_a_fact_of_a_section_retrieval_leaned_to_needs_less_similarity(policy):
    """Retrieval hesitating between two sections and a fact of one of them agree: the lower
    threshold applies to that section only."""
    question = "is a 50% deposit paid before work starts"
    finder = FactFinder(WordEncoder(), policy, FactSettings(across=0.99, across_margin=0.0, across_agreed=0.2))
    assert finder.across(question, now(policy)) is None
    assert finder.across(question, now(policy), ["liability", "training"]) is None
    found = finder.across(question, now(policy), ["liability", "custom_solutions"])
    assert found is not None and "deposit" in found.text


def test_across_sections_the_facts_of_the_same_section_as_close_as_the_best_come_too(policy):
    """As `within` does: a question near two sentences of one section gets both, in the
    section's order; with no spread, only the best."""
    question = "is the custom work warrantied, and is a deposit paid before work starts"
    deposit = "Work starts after a written quote is accepted and a 50% deposit is paid; the rest is invoiced on delivery."
    warranty = "Custom work is warrantied for 30 days after delivery and is then maintained only under a separate agreement."
    wide = FactFinder(WordEncoder(), policy, FactSettings(across=0.2, across_margin=0.0, spread=0.3))
    both = wide.across(question, now(policy))
    assert both is not None and both.topic == "custom_solutions" and both.text.startswith(deposit + " " + warranty)
    narrow = FactFinder(WordEncoder(), policy, FactSettings(across=0.2, across_margin=0.0, spread=0.0))
    one = narrow.across(question, now(policy))
    assert one is not None and one.text in (deposit, warranty)


class UnsureIndex:
    """An index that is never confident: the answerer falls back on its candidates, the
    given entries in order, each 0.1 less sure and less similar than the one before."""

    def __init__(self, *entry_ids: str, score: float = 0.1, similarity: float = 0.2) -> None:
        self.entry_ids = entry_ids
        self.score = score
        self.similarity = similarity

    def search(self, query, k=3):
        from kb_index.index import Hit, SearchResult

        return SearchResult(
            query, None,
            [Hit(e, e, self.score - 0.1 * i, self.similarity - 0.1 * i) for i, e in enumerate(self.entry_ids)],
        )


def test_the_answerer_gives_a_fact_with_the_section_on_request_when_retrieval_is_unsure(policy):
    entries = [KbEntry("custom_solutions", "Custom work", "", "custom_solutions")]
    finder = FactFinder(WordEncoder(), policy, FactSettings(across=0.2, across_margin=0.0))
    result = FaqAnswerer(UnsureIndex("custom_solutions"), entries, policy, facts=finder).answer(
        "is a 50% deposit paid before work starts", now(policy)
    )
    assert result.kind == "answer" and result.entry_id == "custom_solutions" and result.details
    assert "50% deposit" in result.text and "US$180" not in result.text
    # Without the finder, the same question is not answered.
    assert FaqAnswerer(UnsureIndex("custom_solutions"), entries, policy).answer(
        "is a 50% deposit paid before work starts", now(policy)
    ).kind != "answer"


def test_a_contact_detail_is_found_when_retrieval_is_unsure_which_section(policy):
    """Torn between the contact section and another, the question about one contact
    detail gets that detail; the contact section's facts are its details, one each, and
    only the unsure path searches them (the section composes its own answer)."""
    details = [f.text for f in policy_facts(policy, now(policy), ("contact",))]
    assert details == [
        f"Our phone number is {policy.doc.contact.phone}, answered Monday to Saturday, 9:30 to 18:30 Hawaii time (not on public holidays).",
        f"Email us at {policy.doc.contact.email}; we read it in business hours and critical issues are paged around the clock.",
        f"For billing questions, email {policy.doc.contact.billing_email}.",
        f"Report security issues to {policy.doc.contact.security_email}.",
        f"Our postal address is {policy.doc.contact.address}.",
    ]
    assert not any(f.topic == "contact" for f in policy_facts(policy, now(policy)))
    entries = [KbEntry("contact", "Contact details", "", "contact")]
    finder = FactFinder(WordEncoder(), policy, FactSettings(across=0.2, across_margin=0.0))
    result = FaqAnswerer(UnsureIndex("contact"), entries, policy, facts=finder).answer(
        "where do I report security issues I found", now(policy)
    )
    assert result.kind == "answer" and result.entry_id == "contact"
    assert result.text == f"Report security issues to {policy.doc.contact.security_email}."
    assert finder.within("contact", "where do I report security issues", now(policy)) is None


def test_the_labelled_set_is_well_formed():
    cases = load_cases()
    assert {c.split for c in cases} == {"dev", "test"}
    assert all((c.fact is None) == (c.expect is None) for c in cases)
    assert sum(c.expect is None for c in cases) >= 30 and sum(c.expect is not None for c in cases) >= 140


def test_score_counts_a_wrong_fact_and_a_fact_given_to_a_question_the_policy_does_not_answer():
    from bot.policy_facts import Case, Fact, FactMatch

    cases = [Case("q1", "f", "deposit", "dev"), Case("q2", "g", "pending", "dev"), Case("q3", None, None, "dev")]
    deposit = FactMatch(Fact("custom_solutions", "a deposit"), 0.8, 0.2)
    figures = score(cases, [deposit, deposit, deposit], across=0.5, margin=0.0)
    assert (figures["right"], figures["wrong"], figures["negatives_declined"]) == (1, 2, 0.0)
    assert score(cases, [deposit, deposit, deposit], across=0.9, margin=0.0)["abstained"] == 2


@pytest.mark.parametrize("split", ["dev", "test"])
def test_facts_lead_more_replies_and_cost_at_most_two_wrong_answers(policy, split):
    """The whole answerer on data/policy_facts, with and without the fact finder.
    Measured 2026-12-04: dev right 44 -> 48 (fact leads the reply 26 -> 37), wrong 11 -> 12;
    test right 32 -> 35 (lead 21 -> 28), wrong 11 -> 11. Stop 36's knowledge-base phrasings
    moved both sides (2026-12-05): dev right 48 -> 49 (lead 28 -> 39), wrong 7 -> 9; test right
    34 -> 34 (lead 22 -> 26), wrong 11 -> 11. What the facts add is now mostly the lead; the
    two dev questions they get wrong pick the wrong sentence inside the right section ("do i
    have to pay anything upfront for custom work" gets the hourly price, not the deposit).
    Stop 39 (2026-12-05: the ticket rules one per sentence, close facts together on the
    unsure path, a sentence before the table of deadlines): dev right 49 -> 52, wrong
    9 -> 7; test unchanged (34, 11)."""
    from bot.settings import Settings

    settings = Settings.from_env({})
    cases = load_cases(split=split)
    at = now(policy)
    without = pipeline(cases, settings, policy, at, facts=False, verbose=False)
    with_facts = pipeline(cases, settings, policy, at, facts=True, verbose=False)
    print(split, without, with_facts)
    assert with_facts["right"] >= without["right"]
    assert with_facts["lead"] >= without["lead"] + 3
    assert with_facts["wrong"] <= without["wrong"] + 2
    # The facts answer no question the policy does not answer that retrieval left alone.
    # (Retrieval itself sends one test negative to the hours since stop 45's index: "what
    # time does the post office on kapiolani open"; the knowledge-base eval measures that.)
    assert with_facts["negatives_declined"] >= without["negatives_declined"]


class SureIndex:
    """An index sure of one entry."""

    def __init__(self, entry_id: str) -> None:
        self.entry_id = entry_id

    def search(self, query, k=3):
        from kb_index.index import Hit, SearchResult

        hit = Hit(self.entry_id, "", 0.9, 0.7)
        return SearchResult(query, hit, [hit])


def test_a_policy_sentence_that_answers_comes_before_the_table_of_deadlines(policy):
    """Retrieval sure of response times, no severity to answer for: the table of
    deadlines is the generic answer, and a sentence of another section that answers the
    question comes instead. A severity named or given keeps the deadline."""
    entries = [KbEntry("response_times", "Response times", "", "response_times"),
               KbEntry("responsibilities", "What we need from you", "", "responsibilities")]
    finder = FactFinder(WordEncoder(), policy, FactSettings(across=0.3, across_margin=0.0))

    class AsksAnotherDuration:
        """bot/time_questions' decision, taken as "another duration" for every question:
        what is tested here is when the answerer asks it and what it does with the answer."""

        def other_fact(self, message, at):
            return finder.timed_answer(finder.durations(message, at))

    answerer = FaqAnswerer(SureIndex("response_times"), entries, policy, facts=finder, time_questions=AsksAnotherDuration())
    at = now(policy)
    pending = answerer.answer("if you don't answer our questions we set the ticket to pending, and close it when", at)
    assert pending.entry_id == "responsibilities" and "pending" in pending.text
    assert answerer.answer("if I don't answer your questions, is the ticket set to pending", at, "high").entry_id == "response_times"
    # A severity named (the caller turns it into `severity`, bot/policy_answers.py
    # described_severity): response times stay.
    assert answerer.answer("if you don't answer a high severity ticket when is it pending", at).entry_id == "response_times"
    # A Low or Medium triage of the message is no reason to keep the deadline ...
    assert answerer.answer("if I don't answer your questions, is the ticket set to pending", at, "low").entry_id == "responsibilities"
    # ... but a calm word in the message the question is part of is the customer's: the
    # time for Low is what they asked.
    parts = answerer.answer_all("Not urgent at all. If I don't answer your questions, is the ticket set to pending?", at, "low")
    assert [r.entry_id for r in parts] == ["response_times"]
    # Without the finder (and so without the time-question model): the table of deadlines.
    table = FaqAnswerer(SureIndex("response_times"), entries, policy).answer("when is the ticket set to pending", at)
    assert table.entry_id == "response_times" and table.text.startswith("If you write now")


def test_an_unsure_question_leaning_to_how_to_reach_us_gets_the_detail_the_facet_model_is_sure_of(policy):
    """Retrieval torn between the channels and open-now entries, the contact-facet model
    sure the phone is asked: the phone line, not a "did you mean"."""
    entries = [KbEntry("contact", "Contact details", "", "contact"), KbEntry("channels", "Ways to get support", "", "channels"),
               KbEntry("open_now", "Is support open right now", "", "open_now"), KbEntry("invoices", "Invoices", "Use Invoices.")]
    at = now(policy)
    phone = FaqAnswerer(UnsureIndex("channels", "open_now", score=0.3, similarity=0.6), entries, policy, facets=lambda m: ["phone"])
    result = phone.answer("is there a number I can ring when I'd rather talk than type?", at)
    assert result.kind == "answer" and result.entry_id == "channels" and "555" in result.text
    # The facet model sure of nothing: the "did you mean" stays.
    unsure = FaqAnswerer(UnsureIndex("channels", "open_now", score=0.3, similarity=0.6), entries, policy, facets=lambda m: [])
    assert unsure.answer("is there a number I can ring when I'd rather talk than type?", at).kind == "suggest"
    # Retrieval's other reading out of scope: no detail either.
    declines = [*entries, KbEntry("decline_other_vendors", "Another company's product", "", tags=(DECLINE_TAG,))]
    torn = FaqAnswerer(UnsureIndex("contact", "decline_other_vendors", score=0.3, similarity=0.6), declines, policy, facets=lambda m: ["phone"])
    assert torn.answer("how do I block a number on my phone", at).entry_id != "contact"
    # Retrieval leaning elsewhere: the facet model is not asked to tell a contact question from any other.
    elsewhere = FaqAnswerer(UnsureIndex("invoices", "open_now", score=0.3, similarity=0.6), entries, policy, facets=lambda m: ["phone"])
    assert elsewhere.answer("how do I ring up an invoice", at).entry_id != "contact"


class SureTimeModel:
    """A time-question model (bot/time_questions) that gives every question the same
    P(another duration than our first response)."""

    def __init__(self, p_other: float) -> None:
        self.p = p_other

    def p_other(self, message, now):
        return self.p

    def other_fact(self, message, now):
        return None


@pytest.mark.parametrize(("p_other", "answered"), [(0.05, True), (0.4, False)])
def test_an_unsure_question_nearest_the_response_times_gets_the_deadline_when_the_time_model_is_sure(
    policy, p_other, answered
):
    """bot/faq.py `_first_response`: retrieval torn, its nearest entry the response times,
    and the time-question model sure the question asks when we first answer."""
    entries = [KbEntry("response_times", "Response times", "", "response_times"), KbEntry("process", "Process", "", "process")]
    answerer = FaqAnswerer(
        UnsureIndex("response_times", "process", score=0.5, similarity=0.6), entries, policy,
        time_questions=SureTimeModel(p_other),
    )
    result = answerer.answer("if I report that, how long until somebody from your side replies?", now(policy), "low")
    if answered:
        assert result.kind == "answer" and result.entry_id == "response_times"
        assert "low-severity request sent now gets its first response by" in result.text
    else:
        assert result.kind == "suggest"
