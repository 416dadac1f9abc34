"""What is broken for everyone, the product or one feature (bot/breadth.py), and the
triage's use of it: one feature down for the whole team is High, as policy 2.5 says."""

from __future__ import annotations

import json

import pytest

from bot.breadth import BreadthModel, cost, load_cases, main
from bot.cases import CasesError


def test_the_labelled_set_has_both_readings_in_both_splits():
    cases = load_cases()
    for split in ("dev", "test"):
        labels = [c.breadth for c in cases if c.split == split]
        assert labels.count("feature") >= 90 and labels.count("product") >= 70, split


def test_a_product_read_as_one_feature_costs_five_times_a_feature_left_critical():
    figures = cost([True, False, True, False], [False, True, True, False])
    assert (figures["right"], figures["product_read_as_feature"], figures["feature_left_critical"]) == (2, 1, 1)
    assert figures["cost"] == 6.0


def test_when_the_failure_happens_is_read_from_the_report():
    from bot.breadth import triggers

    assert triggers("every time one of our cashiers tries to close out the register, POS shuts itself down") == [
        "one of our cashiers tries to close out the register"
    ]
    assert triggers("Scanning a barcode shuts Makana POS down on all six tablets") == ["Scanning a barcode"]
    assert triggers("every till crashes the second we open the app") == ["we open the app"]
    assert triggers("POS won't open on any register, crashes on the splash screen") == []


def test_a_bad_label_names_the_line(tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps({"text": "x", "breadth": "team", "split": "dev"}) + "\n")
    with pytest.raises(CasesError, match=r"cases.jsonl:1: `breadth` must be one of feature, product"):
        load_cases(path)


@pytest.fixture(scope="module")
def fitted():
    from bot.breadth import training_cases
    from bot.contact_facets import open_encoder
    from bot.settings import Settings
    from bot.triage import load_cases as triage_cases

    settings = Settings.from_env({})
    return BreadthModel.fit(open_encoder(settings.index_dir), training_cases(triage_cases(settings.triage_cases)))


def test_on_the_test_split_no_product_outage_is_read_as_one_feature(fitted):
    """The model as the triage fits it (dev and the triage's Critical reports). Measured
    in stop 44 (`python -m bot.breadth eval --split test`, two batches): 152 of 176 right,
    no product read as one feature, 24 features left at Critical (cost 24). Stop 45 (three
    batches, when the failure happens as evidence): 184 of 224, none and 40. Trained on
    the first batch's dev cases alone, two Critical reports of the triage's held-out
    files (data sent to the wrong people, double charges) read as one feature; the
    triage's Critical reports are in its training set since. Stop 49 (a second head on
    character n-grams, blended): 202 of 224, none and 22."""
    cases = load_cases(split="test")
    said = fitted.one_feature([c.text for c in cases])
    figures = cost(said, [c.breadth == "feature" for c in cases])
    assert figures["product_read_as_feature"] <= 1
    assert figures["right"] >= 195


def test_a_report_that_says_the_rest_works_is_one_feature(fitted):
    """The embedding of a whole report is mostly its outage; the wording beside it says what
    still works (0.73 with the embedding head alone, threshold 0.8, stop 48)."""
    said = fitted.one_feature([
        "The whole team can use Books normally, except the Budgets screen, which shows 'Error 500' for everyone.",
        "Nobody in the company can log in to Makana Books, every page fails to load.",
    ])
    assert said == [True, False]


def test_the_eval_command_prints_json_last(capsys):
    assert main(["eval", "--split", "test"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["split"] == "test" and figures["reports"] == len(load_cases(split="test"))


def test_the_triage_rates_one_feature_down_for_everyone_high_and_the_product_down_critical():
    from bot.policy import load_policy
    from bot.settings import Settings
    from bot.triage import ensure_model

    settings = Settings.from_env({})
    model = ensure_model(load_policy(settings.policy_path), settings.triage_cases, settings.triage_dir)
    feature = "the whole sales team gets an error whenever they try to send a quote, all day today. the rest of makana books works"
    heads_alone = model.breadth
    try:
        model.breadth = None
        before = model.propose(feature)
    finally:
        model.breadth = heads_alone
    after = model.propose(feature)
    assert before.severity == "critical"
    assert after.urgent and after.severity == "high"
    down = model.propose("makana books is down for all of us, nobody in the company can log in at all")
    assert down.urgent and down.severity == "critical"
    lost = model.propose("our invoices are being emailed to the wrong customers, every invoice we send today")
    assert lost.severity == "critical"
