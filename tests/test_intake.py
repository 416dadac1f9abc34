"""Checks of what customers must provide, against the policy (the triage is in test_triage.py)."""

import asyncio

import pytest

from bot.intake import (
    ExcludedProduct,
    InvalidField,
    Said,
    apply_correction,
    check_description,
    check_email,
    check_name,
    check_product,
    check_severity,
    check_version,
    prefill,
)


def test_email_is_normalised_and_bad_ones_say_what_is_expected():
    assert check_email("  Ana.Lopez@Example.COM ") == "ana.lopez@example.com"
    assert check_email("it's ana@example.com") == "ana@example.com"
    for bad in ("ana@", "ana.example.com", "ana@example", "two@x.com and three@y.com", "x" * 250 + "@example.com"):
        with pytest.raises(InvalidField, match="name@company.com"):
            check_email(bad)


def test_name():
    assert check_name("  Ana   López ") == "Ana López"
    for bad in ("", "12345", "ana@example.com"):
        with pytest.raises(InvalidField):
            check_name(bad)


def test_product_by_name_or_alias(policy):
    assert check_product(policy, "the point of sale app").name == "Makana POS"
    assert check_product(policy, "makana books").name == "Makana Books"
    assert check_product(policy, "Sync agent").name == "Makana Sync"


def test_excluded_product_gets_the_third_party_route(policy):
    with pytest.raises(ExcludedProduct) as err:
        check_product(policy, "the Stripe plugin")
    assert err.value.product == "Stripe"
    assert "contact the vendor directly" in err.value.message


def test_unknown_product_lists_the_covered_ones(policy):
    with pytest.raises(InvalidField, match="Makana Books, Makana POS, Makana Sync, Makana API"):
        check_product(policy, "my toaster")


def test_versions(policy):
    books = check_product(policy, "books")
    assert check_version(books, "version 6.2.1") == "6.2.1"
    assert check_version(books, "the web version") == "cloud"
    with pytest.raises(InvalidField, match="no longer supported"):
        check_version(books, "4.8")
    with pytest.raises(InvalidField, match="don't know version"):
        check_version(books, "9")
    api = check_product(policy, "api")
    assert check_version(api, "v2") == "v2"
    with pytest.raises(InvalidField, match="no longer supported"):
        check_version(api, "v1")


def test_description_too_short():
    with pytest.raises(InvalidField, match="at least 5 words"):
        check_description("it broke")
    assert check_description("The invoice export fails with error MK-504") .startswith("The invoice")


def test_severity_names(policy):
    assert check_severity(policy, "I'd say High") == "high"
    with pytest.raises(InvalidField, match="critical, high, medium or low"):
        check_severity(policy, "urgent-ish")


async def _long_enough(text: str) -> bool:
    """A stand-in for the reply model (bot/form_replies.py): a statement is five words or more."""
    return len(text.split()) >= 5


def _prefill(policy, said, slots=None, **kwargs):
    return asyncio.run(prefill(policy, said, slots or {}, _long_enough, **kwargs))


def test_prefill_joins_the_latest_statements_and_finds_the_product(policy):
    said = [
        Said("the sync agent stopped uploading last night", True),
        Said("hi", False),
        Said("our Makana POS 4 till freezes at checkout", True),
        Said("and the card reader shows an error code", True),
    ]
    found = _prefill(policy, said)
    # The statements after the greeting, in order; the older one before it belongs to no statement run.
    assert found["description"] == "our Makana POS 4 till freezes at checkout and the card reader shows an error code"
    assert (found["product"], found["version"]) == ("Makana POS", "4")


def test_prefill_keeps_what_the_slots_already_hold_and_reads_only_the_last_four_messages(policy):
    said = [Said("Makana Books 6 will not print any invoice at all", True)] + [Said("/affirm", False)] * 4
    assert _prefill(policy, said) == {}
    said = [Said("Makana Books 6 will not print any invoice at all", True)]
    assert _prefill(policy, said, {"product": "Makana POS", "description": "already told"}) == {}


def test_prefill_after_urgent_routing_takes_the_triaged_message_and_the_chosen_severity(policy):
    slots = {"urgent_severity": "critical", "urgent_description": "every till in all our shops is down right now"}
    found = _prefill(policy, [Said("/submit_request", False)], slots, urgency="critical")
    assert found == {
        "description": "every till in all our shops is down right now",
        "severity": "critical",
        "proposed_severity": "critical",
    }
    # A button for another severity than the one triaged proposes nothing.
    assert "severity" not in _prefill(policy, [], slots, urgency="high")


def test_prefill_takes_name_and_email_from_a_verified_identity(policy):
    found = _prefill(policy, [], identity={"user_id": "u1", "name": "Kai Nakamura", "email": "kai@example.com"})
    assert found == {"name": "Kai Nakamura", "email": "kai@example.com"}


LABELS = {"name": "Name", "email": "Email", "product": "Product", "version": "Version"}


def test_a_correction_in_words_changes_the_fields_it_names_and_drops_a_version_the_new_product_lacks(policy):
    slots = {"name": "Ana", "email": "ana@example.com", "product": "Makana Books", "version": "6"}
    changes, said = apply_correction(policy, "sorry, it's POS, not Books", slots, LABELS)
    assert changes == {"product": "Makana POS", "version": None}
    assert said == "Done: I've changed the product to “Makana POS”."
    changes, said = apply_correction(policy, "my email is actually ana.lopez@example.com", slots, LABELS)
    assert changes == {"email": "ana.lopez@example.com"}
    changes, said = apply_correction(policy, "that's wrong", slots, LABELS)
    assert changes == {} and said.startswith("Which detail should I change, and to what?")
