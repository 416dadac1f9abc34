"""The form-reply classifier (bot/form_replies.py) and the helpers that read natural
answers and corrections (bot/intake.py): labelled set, eval command, figures."""

from __future__ import annotations

import json

import pytest

from bot.form_replies import (
    DEFAULT_CASES,
    LABELS,
    SLOTS,
    Evidence,
    FormReplyModel,
    RepliesError,
    Reply,
    Verdict,
    evidence_from,
    form_questions,
    label_to_act_on,
    load_replies,
    main,
    score,
    sure_cancel,
)
from bot.intake import UNKNOWN_VERSION, check_slot, corrected_values, emails_in, name_part, newest_version
from bot.settings import ROOT

TEST_CASES = ROOT / "data" / "form_replies" / "test.jsonl"


@pytest.fixture(scope="module")
def model(policy):
    from kb_index.encoder import default_encoder

    return FormReplyModel.build(default_encoder(), form_questions(policy), load_replies(DEFAULT_CASES), evidence_from(policy, None))


def test_the_labelled_sets_cover_every_label_and_slot():
    for path in (DEFAULT_CASES, TEST_CASES):
        replies = load_replies(path)
        assert {r.label for r in replies} == set(LABELS)
        assert {r.slot for r in replies} == set(SLOTS)
    dev = {(r.slot, r.text.lower()) for r in load_replies(DEFAULT_CASES)}
    assert not dev & {(r.slot, r.text.lower()) for r in load_replies(TEST_CASES)}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", ":1: not JSON"),
        ('{"slot": "colour", "text": "x", "label": "answer"}', ":1: slot must be one of"),
        ('{"slot": "email", "text": "x", "label": "maybe"}', ":1: label must be one of"),
        ('{"slot": "email", "text": "  ", "label": "answer"}', ":1: text must be a non-empty string"),
    ],
)
def test_a_bad_cases_file_says_which_line_and_field(tmp_path, line, message):
    path = tmp_path / "cases.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(RepliesError, match=message):
        load_replies(path)


def test_eval_command_reports_bad_input_with_exit_status_2(tmp_path, capsys):
    path = tmp_path / "cases.jsonl"
    path.write_text('{"slot": "email"}\n')
    assert main(["eval", "--no-kb", "--cases", str(path)]) == 2
    assert "label must be one of" in capsys.readouterr().err or "slot" in capsys.readouterr().err


def test_score_counts_costs_and_answers_lost():
    replies = [Reply("tried", "are you open?", "question"), Reply("email", "a@b.co", "answer"), Reply("email", "forget it", "cancel")]
    figures = score(replies, ["answer", "answer", "cancel"])
    assert figures["accuracy"] == round(2 / 3, 3)
    assert figures["non_answers_saved_as_answer"] == 1
    assert figures["error_cost"] == 3.0  # a question saved as the answer is among the dearest errors
    assert figures["matrix"]["question"]["answer"] == 1


def test_figures_on_the_test_split_without_the_knowledge_base(model, policy):
    """Measured with the validator evidence only (the FAQ index is not built in unit tests)."""
    cases = load_replies(TEST_CASES)
    evidence = evidence_from(policy, None)
    verdicts = model.classify_many([c.text for c in cases], [c.slot for c in cases], [evidence(c) for c in cases])
    figures = score(cases, [v.label for v in verdicts])
    # Measured 0.858 with 6 of 80 non-answers saved (120 replies, 2026-12-04; README); floors
    # a little under it, so a regression fails.
    assert figures["accuracy"] >= 0.85, figures
    assert figures["recall"]["cancel"] >= 0.9 and figures["recall"]["answer"] >= 0.88, figures
    assert figures["recall"]["question"] >= 0.95 and figures["non_answers_saved_as_answer"] <= 6, figures


def test_what_a_reply_is_depends_on_the_question(model, policy):
    # "Kai" answers the name question; typed at the description question it is not a problem statement.
    name = model.classify("Kai Nakamura", "name", Evidence(True, 0.0))
    description = model.classify("Kai Nakamura", "description", Evidence(False, 0.0))
    assert name.label == "answer" and description.label != "answer"


def test_the_newest_version_and_products_by_meaning(model, policy):
    assert model.version_rank("the most up-to-date release") == "newest"
    assert model.version_rank("I have no idea") != "newest"
    assert model.version_rank("the one before the latest") == "unsure"
    assert model.version_rank("one version older than the newest") == "unsure"
    assert model.version_rank("whatever the newest is") == "newest"
    assert model.version_rank("version 5") is None and model.version_rank("no clue") is None
    books, pos = policy.doc.scope.products[0], policy.doc.scope.products[1]
    assert model.product_by_meaning(policy, "the invoicing software") == books
    assert model.product_by_meaning(policy, "our cash register on the tablets") == pos
    assert model.product_by_meaning(policy, "my printer") is None
    assert newest_version(books) == books.supported_versions[0]


def test_corrections_in_words_name_the_field_and_its_new_value(policy):
    slots = {"name": "Mele", "email": "mele@example.com", "product": "Makana POS", "version": "4"}
    assert corrected_values(policy, "nope, Books rather than POS", slots) == {"product": "Makana Books"}
    assert corrected_values(policy, "it's the API not POS", slots) == {"product": "Makana API"}
    assert corrected_values(policy, "set the version to 3 please", slots) == {"version": "3"}
    assert corrected_values(policy, "use mele.f@example.org instead", slots) == {"email": "mele.f@example.org"}
    assert corrected_values(policy, "my name should be Melenaite", slots) == {"name": "Melenaite"}
    assert corrected_values(policy, "something is wrong", slots) == {}


def test_several_fields_in_one_message_and_an_unknown_version(policy):
    assert name_part("I'm Lei Aoki, lei.aoki@example.com") == "Lei Aoki"
    assert emails_in("I'm Lei Aoki, lei.aoki@example.com") == ["lei.aoki@example.com"]
    assert check_slot(policy, "name", "my name is Lei Aoki", {}) == "Lei Aoki"
    assert check_slot(policy, "version", "unknown", {"product": "Makana POS"}) == UNKNOWN_VERSION


def test_eval_command_prints_the_confusion_matrix_and_json(capsys):
    assert main(["eval", "--no-kb", "--cases", str(TEST_CASES)]) == 0
    out = capsys.readouterr().out
    assert "gold \\ predicted" in out and "errors and their cost" in out
    figures = json.loads(out.strip().splitlines()[-1])
    assert figures["cases"] == len(load_replies(TEST_CASES))


def test_an_unsure_cancel_or_correction_is_acted_on_as_an_answer():
    def verdict(label: str, confidence: float) -> Verdict:
        return Verdict(label, confidence, {label: confidence})

    assert label_to_act_on(verdict("cancel", 0.49)) == "answer" and not sure_cancel(verdict("cancel", 0.49))
    assert label_to_act_on(verdict("cancel", 0.8)) == "cancel" and sure_cancel(verdict("cancel", 0.8))
    assert label_to_act_on(verdict("correction", 0.3)) == "answer"
    # Labels that lose nothing are acted on however unsure.
    assert label_to_act_on(verdict("question", 0.3)) == "question" and not sure_cancel(verdict("question", 0.9))
