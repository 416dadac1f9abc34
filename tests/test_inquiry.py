"""Asking for a person or asking how people get involved (bot/inquiry.py): the held-out
figures, the labelled files, and both kinds end to end."""

from __future__ import annotations

import uuid

import pytest

from bot.cases import CasesError
from bot.inquiry import TEST_CASES, evaluate, load_cases, load_model
from bot.routes import PERSON
from bot.routes import load_cases as route_cases
from bot.settings import ROOT


@pytest.fixture(scope="module")
def model():
    return load_model()


def test_held_out_requests_keep_the_form_and_questions_get_answers(model):
    """Measured 2026-12-06 (stop 46): requests kept 25 of 27, questions answered 48 of 50,
    cost 6, threshold 0.55."""
    figures = evaluate(model, load_cases(TEST_CASES))
    assert figures["requests_kept"] >= 25 and figures["questions_answered"] >= 46


def test_the_route_checks_held_out_requests_for_a_person_stay_requests(model):
    """The person check's test requests (never seen by this model): 14 of 15 stay
    requests, measured 2026-12-06 ("can somebody from makana help me directly" scores 0.50)."""
    requests = [c.text for c in route_cases(ROOT / "data" / "routes" / "person_test.jsonl") if c.route == PERSON]
    assert sum(not model.asks_how(t) for t in requests) >= len(requests) - 1


def test_a_label_outside_the_two_kinds_names_the_line(tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text('{"text": "who is above the agent", "asks": "information"}\n{"text": "get me a human", "asks": "yes"}\n')
    with pytest.raises(CasesError, match=r":2: asks must be one of person, information"):
        load_cases(path)


@pytest.mark.services
def test_a_question_about_escalation_is_answered_and_a_request_starts_the_form(any_stack):
    question = any_stack.say(
        "e2e-" + uuid.uuid4().hex,
        "Imagine the person handling my ticket runs out of ideas. Does someone above them take it over, and when?",
    )
    said = "\n".join(m["text"] or "" for m in question)
    assert "Technical team" in said and "What's your name?" not in said
    request = any_stack.say("e2e-" + uuid.uuid4().hex, "the agent couldn't fix it, please escalate me to someone more senior")
    assert "What's your name?" in "\n".join(m["text"] or "" for m in request)
