"""People first (bot/frustration.py): the blended model on held-out labelled sentences."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.frustration import Case, FrustrationModel, PeopleFirst, evaluate, least_cost_threshold, load_cases, sentences

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def encoder():
    from kb_index import default_encoder

    return default_encoder(None)


@pytest.fixture(scope="module")
def model(encoder):
    return FrustrationModel.fit(encoder, load_cases(ROOT / "data" / "people_first" / "dev.jsonl"))


def test_every_upset_customer_of_the_test_split_is_caught_with_at_most_one_needless_apology(model):
    """Measured 2026-12-05: recall 1.0, no needless apology, threshold 0.504 (the
    embedding alone: the same, threshold 0.511)."""
    figures = evaluate(model, load_cases(ROOT / "data" / "people_first" / "test.jsonl"))
    assert figures["recall"] == 1.0 and figures["needless_apologies"] <= 1


def test_a_message_scores_its_most_upset_sentence_and_the_blend_weights_both_heads(encoder):
    cases = [Case("this is useless, get me a human", True), Case("I want to talk to a person now", True),
             Case("I'm so fed up with this app", True), Case("how do I export my invoices", False),
             Case("what are your opening hours", False), Case("where do I change my password", False)] * 3
    blended = FrustrationModel.fit(encoder, cases, repeats=2)
    message = "How do I export my invoices? Honestly this is useless, get me a human."
    assert blended.score(message) == max(blended.score(s) for s in sentences(message))
    assert blended.people_first(message) and not blended.people_first("where do I change my password")
    lexical_only = FrustrationModel.fit(encoder, cases, lexical_weight=1.0, repeats=2)
    embedded_only = FrustrationModel.fit(encoder, cases, lexical_weight=0.0, repeats=2)
    one = "get me a human"
    expected = 0.6 * embedded_only.score(one) + 0.4 * lexical_only.score(one)
    assert blended.score(one) == pytest.approx(expected, abs=1e-6)


@pytest.fixture(scope="module")
def people_first(encoder):
    folder = ROOT / "data" / "people_first"
    return PeopleFirst.fit(encoder, load_cases(folder / "dev.jsonl"), load_cases(folder / "messages_dev.jsonl"))


def test_the_confirmation_keeps_every_upset_customer_of_the_test_split(people_first):
    """Measured 2026-12-06: recall 1.0, no needless apology (confirmation threshold 0.550)."""
    figures = evaluate(people_first, load_cases(ROOT / "data" / "people_first" / "test.jsonl"))
    assert figures["recall"] == 1.0 and figures["needless_apologies"] == 0


def test_the_confirmation_halves_needless_apologies_on_held_out_whole_messages(people_first):
    """data/people_first/batch_stop46.jsonl (300 whole messages, never trained on).
    Measured 2026-12-06: the sentence model alone 58/90 caught, 22 needless apologies;
    with the confirmation 54/90 and 15."""
    cases = load_cases(ROOT / "data" / "people_first" / "batch_stop46.jsonl")
    alone = evaluate(people_first.first, cases)
    both = evaluate(people_first, cases)
    assert both["needless_apologies"] <= 16 < alone["needless_apologies"]
    assert both["recall"] >= 0.58


def test_an_apology_needs_both_models(people_first):
    calm = "Whenever someone gets a chance: the Sync agent log mentions 'stale token' once a day. Should I worry?"  # batch_stop46
    upset = "This is the third time I'm writing about this and nobody has fixed it. I want a real person now."
    assert people_first.people_first(upset)
    assert people_first.first.people_first(calm) and not people_first.people_first(calm)


def test_the_least_cost_threshold_weighs_a_missed_customer_against_a_needless_apology():
    scores, gold = [0.9, 0.6, 0.5, 0.4], [True, False, True, False]
    assert least_cost_threshold(scores, gold, miss_cost=3.0) == pytest.approx(0.5, abs=1e-5)  # one needless apology
    assert least_cost_threshold(scores, gold, miss_cost=0.5) == pytest.approx(0.9, abs=1e-5)  # one miss is cheaper
