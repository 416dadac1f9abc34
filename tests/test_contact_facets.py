"""Which contact detail a message asks for (bot/contact_facets.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bot.contact_facets import FACETS, FacetChooser, cost, evaluate, load_cases
from bot.policy_answers import Situation, policy_fact

ROOT = Path(__file__).resolve().parent.parent


def test_the_labelled_set_covers_every_facet_in_both_splits():
    cases = load_cases()
    for split in ("dev", "test"):
        named = {f for c in cases if c.split == split for f in c.facets}
        assert named == set(FACETS), split
        assert any(not c.facets for c in cases if c.split == split)  # general questions too


def test_cost_counts_a_wrong_detail_three_times_a_missing_one():
    figures = cost([{"address"}, set(), {"phone"}], [{"email"}, {"phone"}, {"phone"}])
    assert (figures["exact"], figures["wrong_detail"], figures["missing_detail"], figures["cost"]) == (1, 1, 2, 5.0)


@pytest.fixture(scope="module")
def chooser():
    from bot.contact_facets import open_encoder
    from bot.settings import Settings

    return FacetChooser.fit(open_encoder(Settings.from_env({}).index_dir), load_cases(split="dev"))


def test_on_the_test_split_the_model_costs_less_than_the_word_patterns(chooser):
    """Measured 2026-12-05: 40 of 61 exact, 4 wrong details, 18 missing (cost 30); the
    word patterns alone 39, 5, 18 (cost 33)."""
    figures = evaluate(chooser, load_cases(split="test"))
    assert figures["cost"] <= figures["word_patterns_alone"]["cost"]
    assert figures["wrong_detail"] <= 4


def test_the_contact_answer_gives_the_details_chosen_and_the_section_when_none(policy):
    now = dt.datetime(2026, 12, 4, 10, 0, tzinfo=policy.tz)
    message = "does it matter which address I reply from"
    postal = policy_fact("contact", policy, now, Situation(message, facets=lambda m: ["address"]))
    assert postal == f"Our postal address is {policy.doc.contact.address}."
    assert policy_fact("contact", policy, now, Situation(message, facets=lambda m: [])) is None
    both = policy_fact("contact", policy, now, Situation(message, facets=lambda m: ["email", "phone"]))
    assert both.startswith(f"Email us at {policy.doc.contact.email}") and policy.doc.contact.phone in both


def test_a_bad_case_names_its_line(tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text('{"text": "fax?", "facets": ["fax"], "split": "dev"}\n')
    with pytest.raises(ValueError, match=r"cases.jsonl:1: unknown facet 'fax'"):
        load_cases(path)
