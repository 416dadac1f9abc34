"""Which length of time a "how long" question asks for (bot/time_questions.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.policy_facts import states_duration
from bot.time_questions import TimeQuestionModel, cost, evaluate, load_cases


def test_the_labelled_set_has_both_kinds_in_both_splits():
    cases = load_cases()
    for split in ("dev", "test"):
        kinds = [c.asks for c in cases if c.split == split]
        assert kinds.count("first_response") >= 20 and kinds.count("other") >= 20, split


def test_a_first_response_question_answered_otherwise_costs_twice_the_other_error():
    figures = cost([True, False, True, False], [False, True, True, False])
    assert (figures["right"], figures["first_response_answered_otherwise"], figures["other_answered_with_deadlines"]) == (2, 1, 1)
    assert figures["cost"] == 3.0


def test_only_a_sentence_that_states_a_duration_can_answer_how_long():
    assert states_duration("we set the ticket to pending after 5 business days")
    assert states_duration("reported to the head of support every 4 hours")
    assert not states_duration("Please keep to one ticket per problem, and reply from the email address the ticket was opened with.")


@pytest.fixture(scope="module")
def fitted():
    from bot.contact_facets import open_encoder
    from bot.policy import load_policy
    from bot.policy_facts import FactFinder
    from bot.settings import Settings

    settings = Settings.from_env({})
    finder = FactFinder(open_encoder(settings.index_dir), load_policy(settings.policy_path))
    at = dt.datetime(2026, 12, 7, 20, 0, tzinfo=dt.timezone.utc)
    return TimeQuestionModel.fit(finder, load_cases(split="dev"), at), finder, at


def test_on_the_test_split_the_model_costs_less_than_the_rule_it_replaced(fitted):
    """Measured 2026-12-06 (`python -m bot.time_questions eval --split test`): 42 of 48
    right, 0 first-response questions answered otherwise, 6 other questions given the
    deadlines (cost 6; stop 43's model, without the main clause and at C=1: 1 and 5,
    cost 7); the rule before (the closest policy sentence when close enough)
    30 right, 3 and 15 (cost 21). (Before the 48 dev questions on pending and escalation:
    40 right, 1 and 7, cost 9.) A question whose closest duration is a resolution target
    counts as given the deadlines: the response-time answer states the target too. The
    facts quote dates, so the figures move a little with the instant (cost 9 at the one
    this test uses). Stop 56, on the isolated-draws encoder (opt-in, not the default): the
    model the same, 42 right, 0 and 6, cost 6; the rule 34 right, 1 and 13, cost 15, so
    the margin of 10 below holds on the default draw only (the rule reads the adapted
    encoder's closest sentence, and moves with its draw)."""
    model, finder, at = fitted
    figures = evaluate(model, load_cases(split="test"), at, lambda t: finder.across(t, at))
    assert figures["cost"] <= 10 and figures["cost"] < figures["before"]["cost"] - 10
    assert figures["first_response_answered_otherwise"] <= 2
    assert figures["right"] >= 40


def test_a_plain_question_about_our_reply_keeps_the_deadline(fitted):
    model, _, at = fitted
    assert model.other_fact("how long do you take to answer a ticket", at) is None


def test_a_scene_set_in_a_first_responses_words_does_not_hide_the_duration_asked(fitted):
    """The clause that asks is read beside the whole question (bot.time_questions.main_clause)."""
    from bot.time_questions import main_clause

    model, _, at = fitted
    question = "Your agent asked me for logs on my ticket and I'll be slow to send them, how long until it's marked pending?"
    assert main_clause(question) == "how long until it's marked pending?"
    assert main_clause("when will i hear back?") == "when will i hear back?"
    fact = model.other_fact(question, at)
    assert fact is not None and "pending" in fact.text
    assert model.other_fact("If I send that in as a ticket, how long before somebody gets back to me?", at) is None
