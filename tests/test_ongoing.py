"""Is the problem in a message happening now (bot/ongoing.py)?"""

import pytest

from bot.ongoing import CASES, OngoingModel, evaluate, load_cases, load_model, triage_cases
from bot.settings import ROOT


@pytest.fixture(scope="module")
def model() -> OngoingModel:
    return load_model()


def test_held_out_current_problems_are_kept_and_most_questions_about_past_ones_are_caught(model):
    """The test split of data/ongoing (48 current problems, 72 other messages): every
    current problem keeps its urgent offer (stop 48: 48/48, 45 of 72 others caught)."""
    figures = evaluate(model, load_cases(CASES, "test"))
    assert figures["ongoing_kept"] == figures["ongoing"]
    assert figures["not_ongoing_caught"] >= 40


@pytest.mark.parametrize("name", ["test.jsonl", "test_stop33.jsonl", "test_contact_clause.jsonl", "batch_stop37.jsonl"])
def test_no_critical_or_high_report_of_the_triage_files_loses_its_offer(model, name):
    from bot.triage import load_cases as triage_file, problem_text

    reports = [c for c in triage_file(ROOT / "data" / "triage" / name) if c.severity in ("critical", "high")]
    assert reports and all(model.ongoing(problem_text(c.description, c.impact)) for c in reports)


def test_a_question_about_an_outage_that_is_over_is_not_a_current_problem(model):
    past = "Our outage last month is long fixed, but we lost a day of sales. Does Makana compensate for that?"
    now = "Since 8am none of us can log in to Makana Books, the page just spins. How fast will you respond?"
    assert not model.ongoing(past)
    assert model.ongoing(now)


def test_triage_cases_read_problems_as_ongoing():
    cases = triage_cases(ROOT / "data" / "triage" / "test_contact_clause.jsonl")
    assert {c.ongoing for c in cases} == {True, False}


def test_a_bad_case_file_is_refused_with_its_line(tmp_path):
    from bot.cases import CasesError

    bad = tmp_path / "cases.jsonl"
    bad.write_text('{"text": "x", "ongoing": "yes", "split": "dev"}\n')
    with pytest.raises(CasesError, match=r"cases.jsonl:1: `ongoing` must be true or false"):
        load_cases(bad)
