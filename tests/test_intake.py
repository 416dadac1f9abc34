"""Checks of what customers must provide, against the policy (the triage is in test_triage.py)."""

import pytest

from bot.intake import (
    ExcludedProduct,
    InvalidField,
    check_description,
    check_email,
    check_name,
    check_product,
    check_severity,
    check_version,
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
