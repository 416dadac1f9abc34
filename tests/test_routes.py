"""The route check (bot/routes.py): its data, its cost, and the model on the test split."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bot.routes import (
    PERSON, ROUTES, CasesError, cost_of, evaluate, journey_scores, load_cases, load_model, nlu_examples,
)
from bot.settings import ROOT
from tests.measured import MEASUREMENTS


def test_nlu_examples_lose_their_entity_markup():
    examples = nlu_examples()
    assert all(route in examples for route in ROUTES)
    status = examples["check_ticket_status"]
    assert "any update on MK-7Q4K2F?" in status
    assert not any("](" in text or "]{" in text for texts in examples.values() for text in texts)


def test_bad_cases_are_refused_with_the_line(tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text('{"text": "hi", "route": "weather"}\n')
    with pytest.raises(CasesError, match=r"cases.jsonl:1: route 'weather'"):
        load_cases(path)
    path.write_text('{"text": "hi"}\n')
    with pytest.raises(CasesError, match=r"cases.jsonl:1: bad case"):
        load_cases(path)
    with pytest.raises(CasesError, match="not found"):
        load_cases(tmp_path / "missing.jsonl")


def test_every_case_is_checked_against_every_route():
    # Columns: book_call, check_ticket_status, bot_capabilities, cancel_call, move_call.
    rows = np.array([[0.9, 0, 0, 0, 0], [0.7, 0, 0, 0, 0], [0, 0.2, 0, 0, 0], [0.3, 0, 0, 0.3, 0.1]])
    gold = ["book_call", "other", "check_ticket_status", "move_call"]
    cost, errors = cost_of([journey_scores(row) for row in rows], gold, 0.5)
    # The last case: the call's three routes count together (0.7), so it is confirmed.
    assert errors == {"wrong_journey": 1, "missed_route": 1}
    assert cost == 3.0  # a wrong journey costs twice a missed route


@pytest.fixture(scope="module")
def model():
    return load_model()


def test_the_model_on_the_test_split(model):
    got = evaluate(
        model, load_cases(ROOT / "data" / "routes" / "test.jsonl"), load_cases(ROOT / "data" / "routes" / "person_test.jsonl")
    )
    MEASUREMENTS.append(f"route check, test split: {json.dumps(got)}")
    assert got["wrong_journey"] <= 3, got
    for journey, figures in got["journeys"].items():
        assert figures["recall"] >= 0.8, (journey, got)
    person = got["person"]
    assert person["recall"] >= 0.8 and person["questions_sent_to_the_form"] <= 2, person
    assert person["requests_kept"] >= 0.9 and person["questions_answered"] >= 0.8, person


def test_words_of_a_route_are_not_the_route(model):
    assert model.confirms("book_call", "can we get on a call with your engineers about the outage")
    assert not model.confirms("book_call", "how do I set up a meeting with my accountant in outlook")
    assert model.confirms("check_ticket_status", "any news on the ticket I opened this morning")
    assert not model.confirms("check_ticket_status", "what's the status of my pizza order")
    assert model.confirms("cancel_call", "we don't need the call with your engineers any more")
    assert not model.confirms("cancel_call", "how do I cancel my car insurance")
    assert model.confirms("bot_capabilities", "what can you help me with")
    assert not model.confirms("bot_capabilities", "what can an employee with the sales role do")
    assert model.confirms("book_call", "/book_call")  # a button names its route
    with pytest.raises(ValueError):
        model.confirms("greet", "hello")


def test_a_person_asked_for_is_read_by_meaning(model):
    # Rasa heard a person: only a message that is clearly something else is answered instead.
    assert model.confirms(PERSON, "let me talk to a real person")
    assert model.confirms(PERSON, "I'd like to open a support ticket about my invoices")
    assert not model.confirms(PERSON, "how do I pair my bluetooth headphones with my tablet")
    assert not model.confirms(PERSON, "I want to stop the automatic invoice reminders")
    # Rasa heard something else: the form starts only for a clear request.
    assert model.asks_for_person("please put me through to someone on your support team")
    assert not model.asks_for_person("what are your opening hours on saturday")
    assert not model.asks_for_person("how do I add a new user to our company")


def test_each_sentence_is_read_on_its_own_for_a_request_for_a_person(model):
    sentences = ["My bank feed hasn't pulled a single transaction since Tuesday",
                 "I reconnected it twice already", "Put me through to someone on your team, please"]
    assert model.person_sentences(sentences) == [False, False, True]
    assert model.person_sentences([]) == []
