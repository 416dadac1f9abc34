"""Is a name that is also an everyday word used as another company's product (bot/vendor_sense.py)?"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.policy_answers import whole_word
from bot.vendor_sense import (
    SensesError,
    capitalised_inside_a_sentence,
    cost,
    evaluate,
    load_cases,
    load_senses,
)

ROOT = Path(__file__).resolve().parent.parent


def test_every_listed_name_has_both_senses_in_both_splits():
    senses = load_senses()
    cases = load_cases()
    for split in ("dev", "test"):
        for name in senses:
            labels = {c.product for c in cases if c.split == split and c.name == name}
            assert labels == {True, False}, (split, name)


def test_every_listed_name_is_a_vendor_the_answerer_knows(policy):
    """A sense for a name the answerer never looks for would be dead data."""
    import yaml

    tagged = set()
    for path in (ROOT / "data" / "faq").glob("*.yml"):
        for entry in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            tagged |= {t.split(":", 1)[1] for t in entry.get("tags", []) if t.startswith("vendor:")}
    known = tagged | set(policy.doc.scope.third_party_products)
    assert set(load_senses()) <= known


def test_cost_counts_a_word_read_as_a_product_twice():
    figures = cost([True, False, True, False], [False, True, True, False])
    assert (figures["right"], figures["word_as_product"], figures["product_as_word"], figures["cost"]) == (2, 1, 1, 3.0)


def test_capitalisation_counts_inside_a_sentence_only():
    def caps(message, name):
        return capitalised_inside_a_sentence(message, whole_word(message, name))

    assert caps("can I send alerts to a Slack channel", "Slack")
    assert not caps("Teams at both stores can't log in", "Teams")
    assert not caps("my square reader won't pair", "Square")


@pytest.fixture(scope="module")
def check():
    from bot.contact_facets import open_encoder
    from bot.settings import Settings
    from bot.vendor_sense import SenseCheck

    return SenseCheck.fit(open_encoder(Settings.from_env({}).index_dir), load_senses(), load_cases(split="dev"))


def test_on_the_test_split_the_check_costs_less_than_the_name_or_capitals_alone(check):
    """Measured 2026-12-06 (data/vendor_mentions/README.md): 47 of 64 right, cost 19; the
    name alone 32 (cost 64), capitalisation alone 42 (cost 22)."""
    figures = evaluate(check, load_cases(split="test"))
    assert figures["cost"] < figures["name_alone"]["cost"]
    assert figures["cost"] < figures["capitalisation_alone"]["cost"]
    assert figures["right"] >= 45


def test_a_bad_senses_file_is_reported(tmp_path):
    path = tmp_path / "senses.yml"
    path.write_text("Teams:\n  product: [Microsoft Teams]\n")
    with pytest.raises(SensesError, match="needs `product` and `word`"):
        load_senses(path)


def test_a_case_whose_name_is_not_in_its_message_names_its_line(tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text('{"message": "hello", "name": "Teams", "product": false, "split": "dev"}\n')
    with pytest.raises(ValueError, match=r"cases.jsonl:1: 'Teams' does not appear"):
        load_cases(path)
