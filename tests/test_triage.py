"""The triage model: cases file checks, negation handling, the built model on the held-out
test split (the acceptance figures), reasons in the customer's terms, the eval command."""

import json

import pytest

from bot.policy import SupportPolicy
from bot.settings import ROOT, Settings
from bot.triage import (
    RANK,
    CasesError,
    Case,
    TriageSettings,
    clauses,
    content_hash,
    decide,
    ensure_model,
    evaluate,
    load_cases,
    main,
    negations,
    severity_figures,
    signal_hits,
    to_second_person,
    without_negations,
)

TEST_CASES = ROOT / "data" / "triage" / "test.jsonl"
# Stop 33's held-out questions around problems and reports that end in a question: the
# safety figures are asserted on them; their severity accuracy (0.68) is reported, short
# of the 0.90 the original split meets (data/triage/README.md).
STOP33_TEST_CASES = ROOT / "data" / "triage" / "test_stop33.jsonl"
# Reports that end in "if I open a ticket now, how soon…?" and questions with such a
# clause, held out from the 96 that train the problem-or-question head only.
CONTACT_TEST_CASES = ROOT / "data" / "triage" / "test_contact_clause.jsonl"
DEV_CASES = ROOT / "data" / "triage" / "dev.jsonl"


@pytest.fixture(scope="module")
def model(policy):
    settings = Settings.from_env()
    return ensure_model(policy, settings.triage_cases, settings.triage_dir)


@pytest.fixture(scope="module")
def test_figures(model):
    return evaluate(model, load_cases(TEST_CASES))


# -- the cases files -----------------------------------------------------------------------


def test_the_labelled_set_covers_what_the_policy_names(policy):
    cases = load_cases(DEV_CASES) + load_cases(TEST_CASES)
    problems = [c for c in cases if c.kind == "problem"]
    assert len(problems) >= 300
    assert {c.severity for c in problems} == {"critical", "high", "medium", "low"}
    assert {c.category for c in problems} == {t.id for t in policy.doc.scope.support_types}
    assert {c.product for c in problems} == {p.name for p in policy.doc.scope.products}
    assert any(c.kind == "question" for c in load_cases(TEST_CASES))
    dev = {(c.description, c.impact) for c in load_cases(DEV_CASES)}
    for held_out in (TEST_CASES, STOP33_TEST_CASES, CONTACT_TEST_CASES):
        assert not dev & {(c.description, c.impact) for c in load_cases(held_out)}


def test_policy_examples_are_not_in_the_cases(policy):
    texts = {c.description.lower().rstrip(".") for c in load_cases(DEV_CASES) + load_cases(TEST_CASES)}
    for severity in policy.doc.severities:
        for example in severity.examples:
            assert example.lower().rstrip(".") not in texts


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 1: not JSON"),
        ('{"impact": "x", "severity": "low"}', "line 1: `description`"),
        ('{"description": "x", "severity": "urgent"}', "line 1: `severity` must be one of"),
        ('{"description": "x", "severity": "low", "category": "sales"}', "line 1: `category` must be one of"),
        ('{"description": "x", "kind": "chit-chat"}', "line 1: `kind` must be one of"),
        ('{"description": "x", "severity": "low", "train": "severity"}', "line 1: `train` must be one of"),
        ('{"description": "x", "severity": "critical", "criteria": "down"}', "line 1: `criteria` must be a list"),
        ('{"description": "x", "kind": "question", "criteria": ["down"]}', "line 1: `criteria` is for problem reports"),
    ],
)
def test_a_bad_cases_file_says_which_line_and_field(tmp_path, line, message):
    path = tmp_path / "cases.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(CasesError, match=message):
        load_cases(path)


def test_eval_command_reports_bad_input_with_exit_status_2(tmp_path, capsys):
    path = tmp_path / "cases.jsonl"
    path.write_text('{"description": "x", "severity": "urgent"}\n', encoding="utf-8")
    assert main(["eval", "--cases", str(path)]) == 2
    assert "`severity` must be one of" in capsys.readouterr().err


# -- negation and signals ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "negated"),
    [
        ("It's not urgent at all", ["It's not urgent at all"]),
        ("the export fails but work isn’t blocked", ["work isn't blocked"]),
        ("No rush, whenever you can", ["No rush"]),
        ("this doesn't stop us from working", ["this doesn't stop"]),
        ("Nobody can log in and everything is blocked", []),
        ("orders are not processed and the whole team is blocked", []),
        ("we can't work, it's down for everyone", []),
    ],
)
def test_negations_are_found_without_swallowing_real_problems(text, negated):
    assert negations(text) == negated


def test_a_negated_signal_is_no_evidence_for_its_severity(policy):
    assert signal_hits(policy, "not urgent, work isn't blocked")["high"] == ()
    assert signal_hits(policy, "everything is blocked, it's urgent")["high"] == ("blocked", "urgent")
    assert "blocked" not in without_negations("work is not blocked today")
    # A calm sentence added reads like the text without it.
    assert without_negations("Two users. It's not urgent.") == "Two users."
    assert without_negations("two users no rush") == "two users"


def test_the_ordinal_decision_and_its_figures():
    probabilities = [[0.2, 0.5, 0.2, 0.1], [0.05, 0.1, 0.6, 0.25], [0.0, 0.05, 0.05, 0.9]]
    assert decide(probabilities, [0.15, 0.5, 0.5]) == ["critical", "medium", "low"]
    assert decide(probabilities, [0.5, 0.5, 0.5]) == ["high", "medium", "low"]
    figures = severity_figures(["critical", "high", "low"], ["high", "critical", "low"])
    assert figures["critical_recall"] == 0.0 and figures["critical_below_high"] == 0
    assert figures["under_rated"] == 0.5 and figures["over_rated"] == pytest.approx(1 / 3, abs=1e-3)


def test_the_model_is_rebuilt_when_the_policy_or_cases_change(policy, tmp_path):
    cases = load_cases(DEV_CASES)
    before = content_hash(policy, cases, TriageSettings())
    assert content_hash(policy, cases[:-1], TriageSettings()) != before
    changed = policy.doc.model_copy(update={"severities": (
        policy.doc.severities[0].model_copy(update={"triage_signals": ("the sky fell",)}), *policy.doc.severities[1:])})
    assert content_hash(SupportPolicy(changed), cases, TriageSettings()) != before
    assert content_hash(policy, cases, TriageSettings(critical_recall=0.9)) != before
    # A response time or a form field is not what the model learns from: no rebuild.
    faster = policy.doc.model_copy(update={"severities": (
        policy.doc.severities[0].model_copy(update={"first_response_hours": 2}), *policy.doc.severities[1:])})
    assert content_hash(SupportPolicy(faster), cases, TriageSettings()) == before


# -- the built model on the held-out test split --------------------------------------------------


def test_acceptance_figures_on_the_test_split(test_figures):
    assert test_figures["critical_recall"] >= 0.95
    assert test_figures["critical_below_high"] == 0
    assert test_figures["under_rated"] == 0.0
    assert test_figures["accuracy"] >= 0.90


def test_reports_that_end_in_a_question_are_routed_and_questions_are_not(model):
    figures = evaluate(model, load_cases(STOP33_TEST_CASES))
    assert figures["critical_recall"] >= 0.95 and figures["critical_below_high"] == 0
    assert figures["under_rated"] == 0.0
    # 15 of 16 before the contact-clause reports raised the problem-or-question threshold
    # (0.198 -> 0.354), 13 of 16 after; held-out urgent reports missed 12 -> 6 in all.
    assert figures["urgent_routing_recall"] >= 0.8
    assert figures["questions"] >= 50 and figures["questions_routed_urgent"] <= 1


def test_a_report_that_ends_if_i_open_a_ticket_now_is_still_a_report(model):
    """Stop 33: "…nobody can reconcile. If I open a ticket now, how soon…?" read as a
    question (P(problem) 0.14; 0.94 without the clause): urgent routing 0.45 on these."""
    figures = evaluate(model, load_cases(CONTACT_TEST_CASES))
    assert figures["urgent_routing_recall"] >= 0.8 and figures["critical_below_high"] == 0
    assert figures["questions"] >= 20 and figures["questions_routed_urgent"] <= 1


def test_a_negation_never_raises_a_severity(test_figures, model):
    assert test_figures["negation_probes"] > 0 and test_figures["negation_raised"] == 0
    plain = model.propose("The bank feed import fails every morning for me.")
    for calm in ("It's not urgent.", "Work isn't blocked.", "No rush at all."):
        assert RANK[model.propose("The bank feed import fails every morning for me.", calm).severity] >= RANK[plain.severity]


def test_questions_rarely_trigger_urgent_routing(test_figures, model):
    # A needless urgent offer is the cheap error (choose_kind_threshold weighs it against an
    # urgent report read as a question at 1:10): a few of the questions written to look like
    # problems may get one, no more than one in twenty.
    assert test_figures["questions"] > 0 and test_figures["questions_routed_urgent"] <= 0.05 * test_figures["questions"]
    for question in ("what are your opening hours", "how do I put my logo on invoices",
                     "how fast do you answer when everything is down"):
        assert not model.propose(question).urgent, question


def test_an_outage_in_a_first_message_is_urgent(model):
    proposal = model.propose("every single till in our shops stopped taking payments this morning, none of them work")
    assert proposal.urgent and proposal.severity == "critical" and proposal.is_problem


def test_who_is_affected_alone_does_not_make_a_problem_critical(model, policy):
    """Policy 2.5: "nobody can" says how many are affected, which High ("broken for many
    users") shares with Critical, so it is no Critical signal; what is broken decides."""
    assert not signal_hits(policy, "since 8am nobody can attach a receipt")["critical"]
    feature = model.propose("no one on the team can attach receipts to expenses today, the upload just errors")
    assert feature.urgent and feature.severity == "high"
    down = model.propose("nobody can log in to Makana Books, the whole office is locked out")
    assert down.urgent and down.severity == "critical"


def test_billing_is_customer_service(model):
    assert model.propose("we were charged twice for the annual plan, please refund one").category == "customer_service"


# -- reasons in the customer's terms --------------------------------------------------------------


def test_the_reason_restates_the_customer_and_names_the_policy_criterion(model, policy):
    description = "Since this morning none of our 25 staff can sign in to Makana Books."
    proposal = model.propose(description, "Nobody can invoice.")
    reason = model.explain(description, "Nobody can invoice.", proposal.severity)
    text = reason.text(policy)
    assert text.startswith(f"I'd rate this {policy.severity(proposal.severity).name}: you said ")
    assert "your 25 staff" in text or "nobody can invoice" in text.lower()
    assert reason.criterion in policy.severity(proposal.severity).criteria
    assert "“" not in text  # no quoted keyword


def test_every_labelled_criterion_is_one_of_its_severitys_criteria_in_the_policy(policy):
    labelled = [c for c in load_cases(DEV_CASES) + load_cases(TEST_CASES) if c.criteria]
    assert len(labelled) >= 60
    for case in labelled:
        assert set(case.criteria) <= set(policy.severity(str(case.severity)).criteria), case.description


def test_the_reason_names_the_criterion_the_report_meets(model, test_figures):
    # "Nobody can sign in" is an outage for all users; with the criterion texts alone it
    # was explained as "payments failing everywhere".
    reason = model.explain("nobody at our firm can sign in since this morning", "", "critical")
    assert reason.criterion == "a covered product that is down or unusable for all of your users"
    leak = model.explain("customers are getting invoices with other clients' names and amounts", "", "critical")
    assert leak.criterion == "a security breach or data sent to the wrong people"
    assert test_figures["reasons_labelled"] >= 25 and test_figures["reason_accuracy"] >= 0.9


def test_second_person_and_clauses():
    assert to_second_person("We can't sell anything at our stores") == "you can't sell anything at your stores"
    assert to_second_person("Your API drops my requests") == "our API drops your requests"
    assert clauses("Hi, um. The app is down for us; nobody can work, but the API is fine.") == [
        "The app is down for us", "nobody can work", "the API is fine"]
    asked = "our whole company can't log in, how quickly will you respond?"
    assert clauses(asked, split_questions=True) == ["our whole company can't log in", "how quickly will you respond"]
    assert clauses(asked) == ["our whole company can't log in, how quickly will you respond"]  # the route check's view


def test_the_eval_command_prints_the_matrix_and_json_last(capsys):
    assert main(["eval", "--cases", str(TEST_CASES)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith("gold \\ proposed") and len(out) == 6
    figures = json.loads(out[-1])
    for key in ("accuracy", "critical_recall", "under_rated", "over_rated", "category_accuracy"):
        assert isinstance(figures[key], float), key


def test_case_defaults():
    assert Case("x").kind == "problem"
    assert clauses("ok") == []


def test_an_urgent_offer_needs_critical_or_high_to_be_the_more_probable_reading():
    """The severity's operating point over-rates on purpose (Critical recall); the urgent
    offer in a chat also needs P(Critical or High) of at least one half."""
    from bot.triage import Proposal

    def proposal(severity, critical, high, is_problem=True):
        rest = (1.0 - critical - high) / 2
        return Proposal(severity, "troubleshooting", is_problem, {"critical": critical, "high": high, "medium": rest, "low": rest}, 0.9)

    assert proposal("high", 0.1, 0.5).urgent
    assert not proposal("high", 0.05, 0.4).urgent  # rated High for recall, but Medium is likelier
    assert not proposal("medium", 0.3, 0.3).urgent
    assert not proposal("critical", 0.9, 0.05, is_problem=False).urgent


def test_the_problem_or_question_threshold_weighs_a_missed_urgent_report_against_needless_offers():
    """An urgent report read as a question costs ten needless offers: the threshold drops
    below an urgent report when fewer than ten questions come with it, not otherwise."""
    from bot.triage import cheapest_threshold

    urgent = [0.9, 0.8, 0.3]
    assert cheapest_threshold(urgent, [0.1, 0.35, 0.4], 10.0) == 0.3  # two offers < one miss
    many = [0.31 + i / 100 for i in range(12)]  # twelve questions between it and the rest
    assert cheapest_threshold(urgent, many, 10.0) == 0.8  # one miss (10) < twelve offers (12)
    assert cheapest_threshold([], [], 10.0) == 0.5


def test_the_built_threshold_keeps_nearly_every_urgent_dev_report(model):
    assert model.meta["kind_dev_out_of_fold"]["urgent_recall"] >= 0.98
    assert 0.05 <= model.meta["kind_threshold"] <= 0.95
