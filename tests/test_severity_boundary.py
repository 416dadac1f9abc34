"""High or Medium: does work go on (bot/severity_boundary.py), and the triage that asks it."""

import json

import pytest

from bot.settings import ROOT
from bot.severity_boundary import BoundaryModel, evaluate, load_cases, main


@pytest.fixture(scope="module")
def triage_model():
    from bot.policy import load_policy
    from bot.settings import Settings
    from bot.triage import ensure_model

    settings = Settings.from_env({})
    return ensure_model(load_policy(settings.policy_path), settings.triage_cases, settings.triage_dir)


def test_held_out_high_reports_are_rarely_read_as_medium(triage_model):
    """The test split of data/severity_boundary (60 High, 68 Medium; stop 49: 2 High
    lowered, 42 Medium caught, threshold 0.6), by the model the triage fits."""
    model: BoundaryModel = triage_model.boundary
    figures = evaluate(model, load_cases(split="test"))
    assert figures["high_lowered"] <= 3
    assert figures["medium_caught"] >= 38


@pytest.mark.parametrize(
    "name", ["test.jsonl", "test_stop33.jsonl", "test_contact_clause.jsonl", "batch_stop37.jsonl", "batch_stop42_boundary.jsonl"],
)
def test_no_critical_or_high_report_of_the_triage_files_is_lowered_to_medium(triage_model, name):
    from bot.triage import load_cases as triage_file

    reports = [c for c in triage_file(ROOT / "data" / "triage" / name) if c.severity in ("critical", "high")]
    proposals = triage_model.propose_many([(c.description, c.impact) for c in reports])
    assert reports and not [c.description for c, p in zip(reports, proposals) if p.severity in ("medium", "low")]


def test_a_report_the_heads_are_unsettled_about_is_settled_medium_when_work_goes_on(triage_model):
    """"For two of our users bank rules don't auto-apply, so they categorise by hand while
    the rest of the team is fine" (data/triage/test_stop33.jsonl, Medium) was rated High
    with P(Critical or High) 0.48: no deadline could rest on it. Lowered, it is Medium and
    settled, so the customer is told Medium's deadline and offered no urgent ticket."""
    proposal = triage_model.propose(
        "For two of our users bank rules don't auto-apply, so they categorise by hand while the rest of the team is fine."
    )
    assert proposal.lowered and proposal.severity == "medium" and proposal.settled_severity == "medium"
    assert not proposal.urgent
    blocked = triage_model.propose(
        "Since this morning nobody in accounts can post a bill, Save just spins, and there is no other way to enter them."
    )
    assert blocked.severity in ("critical", "high") and not blocked.lowered


def test_the_eval_command_prints_json_last(capsys):
    assert main(["eval", "--split", "test"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["cases"] == len(load_cases(split="test")) and figures["threshold"] > 0


def test_a_bad_case_file_is_refused_with_its_line(tmp_path):
    from bot.cases import CasesError

    bad = tmp_path / "cases.jsonl"
    bad.write_text('{"text": "x", "severity": "urgent", "split": "dev"}\n')
    with pytest.raises(CasesError, match=r"cases.jsonl:1: `severity` must be one of high, medium"):
        load_cases(bad)
