"""The about-us check (bot/about_us.py), measured on its held-out labelled set."""

import pytest

from bot.about_us import DEV_CASES, ROOT, evaluate, load_cases, load_model
from bot.cases import CasesError

TEST_CASES = ROOT / "data" / "about_us" / "test.jsonl"


def test_the_figures_on_the_held_out_questions():
    figures = evaluate(load_model(), load_cases(TEST_CASES))
    # Measured in stop 33: 0.95 of the questions about us kept, 0.75 of the others declined.
    assert figures["us_kept"] >= 0.9 and figures["other_declined"] >= 0.7


def test_the_split_is_held_out_and_a_bad_label_is_refused(tmp_path):
    dev = {c.text for c in load_cases(DEV_CASES)}
    assert not dev & {c.text for c in load_cases(TEST_CASES)}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "is gmail down", "label": "them"}\n{"text": "your hours?", "label": "us"}\n', encoding="utf-8")
    with pytest.raises(CasesError, match="label must be 'us' or 'other'"):
        load_cases(bad)
