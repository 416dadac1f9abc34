"""People first (bot/frustration.py): the blended model on held-out labelled sentences."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.frustration import Case, FrustrationModel, evaluate, load_cases, sentences

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
