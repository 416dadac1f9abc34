"""Redaction of personal and secret data in transcripts, with real-looking inputs."""

import json
from pathlib import Path

import pytest

from bot.redaction import CARD, SECRET, SSN, luhn_valid, notice, redact, redact_message
from tests.measured import MEASUREMENTS


@pytest.mark.parametrize(
    "text",
    [
        "my card is 4111 1111 1111 1111 and it was declined",
        "card 4111-1111-1111-1111 failed",
        "charged twice on 5555555555554444!",
        "amex 378282246310005 exp 12/27",
        "Visa: 4012888888881881.",
    ],
)
def test_luhn_valid_card_numbers_are_removed(text):
    out = redact(text)
    assert CARD in out
    assert not any(run in out for run in ("4111", "5555555555554444", "378282246310005", "4012888888881881"))


@pytest.mark.parametrize(
    "text",
    [
        "my order number is 1234567890123 and it never arrived",  # 13 digits, fails Luhn
        "Makana Books 6.2.1 crashes on start",
        "error MK-504 on export of invoice 2026-000123",
        "call me on +1 808 555 0142",
        "it started on 2026-11-26 at 09:30",
        "invoice INV-4111111111111111-A",  # part of an identifier, not a bare number
        "the sync agent v1.9.3 build 20261126",
    ],
)
def test_order_numbers_versions_and_phones_are_kept(text):
    assert redact(text) == text


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("my password is hunter2!x", "my password is "),
        ("password: S3cr3t-Pa55", "password: "),
        ("I tried pwd=letmein123 again", "I tried pwd="),
        ("the API key is mk_live_9f8e7d6c5b4a3f2e1d", "the API key is "),
        ("here is my token abcdef123456", "here is my token "),
        ("my 2FA code is 493021", "my 2FA code is "),
    ],
)
def test_secrets_after_keywords_are_removed(text, kept):
    out = redact(text)
    assert out.startswith(kept) and SECRET in out
    assert "hunter2" not in out and "letmein" not in out and "mk_live" not in out


def test_token_shapes_without_keywords_are_removed():
    out = redact("pasted sk_live_51Habcdefghijklmnop and eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U")
    assert out == f"pasted {SECRET} and {SECRET}"


def test_ssn_is_removed_but_not_dates():
    assert redact("SSN 123-45-6789") == f"SSN {SSN}"
    assert redact("on 2026-11-26") == "on 2026-11-26"


def test_words_about_passwords_are_not_over_redacted():
    assert redact("I forgot my password") == "I forgot my password"
    assert redact("how do I reset the password?") == "how do I reset the password?"


def test_luhn():
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")


def test_plain_words_after_keywords_are_kept():
    assert redact("my password expired yesterday") == "my password expired yesterday"
    assert redact("the token expired") == "the token expired"


# -- the labelled phrasings: secrets must go, look-alikes must stay -------------------

LABELLED = Path(__file__).parent / "data" / "redaction"


def measure(split: str) -> tuple[float, float, list[str]]:
    """(precision, recall, mistakes) of redact_message on one labelled split.

    A secret still in the output is a miss; a look-alike (order number, version,
    phone, date, a word about the password) no longer in it is a false alarm.
    """
    removed = missed = destroyed = 0
    mistakes = []
    for line in (LABELLED / f"{split}.jsonl").read_text().splitlines():
        case = json.loads(line)
        out = redact_message(case["text"]).text
        for secret in case["secrets"]:
            if secret in out:
                missed += 1
                mistakes.append(f"missed {secret!r} in {case['text']!r}")
            else:
                removed += 1
        for keep in case["keep"]:
            if keep not in out:
                destroyed += 1
                mistakes.append(f"removed look-alike {keep!r} from {case['text']!r} -> {out!r}")
    precision = removed / (removed + destroyed) if removed + destroyed else 1.0
    recall = removed / (removed + missed) if removed + missed else 1.0
    return precision, recall, mistakes


@pytest.mark.parametrize("split", ["dev", "test", "holdout"])
def test_redaction_precision_and_recall_on_the_labelled_phrasings(split):
    cases = (LABELLED / f"{split}.jsonl").read_text().splitlines()
    precision, recall, mistakes = measure(split)
    MEASUREMENTS.append(
        f"redaction on {split} ({len(cases)} phrasings): precision {precision:.3f}, recall {recall:.3f}"
    )
    # Missing a secret (it gets stored) costs more than hiding an order number (the
    # customer retypes it): the bar on recall is the higher one.
    assert recall >= 0.97, mistakes
    assert precision >= 0.95, mistakes


def test_the_labelled_sets_are_big_enough_and_apart():
    dev = {json.loads(line)["text"] for line in (LABELLED / "dev.jsonl").read_text().splitlines()}
    test = [json.loads(line) for line in (LABELLED / "test.jsonl").read_text().splitlines()]
    assert len(test) >= 60 and not dev & {c["text"] for c in test}
    assert sum(bool(c["secrets"]) for c in test) >= 25 and sum(not c["secrets"] for c in test) >= 25


def test_the_customer_is_told_what_was_hidden_and_why():
    result = redact_message("card 4111 1111 1111 1111 and my password is Kailua2024")
    assert result.kinds == ("card", "password")
    text = notice(result.kinds)
    assert text.startswith("I've hidden the card number and the password or code you typed")
    assert "change it" in text
    assert notice(("card",)) == "I've hidden the card number you typed; we never need it in chat, and it isn't stored."


@pytest.mark.parametrize(
    "text",
    [
        "card4111111111111111 failed",  # glued to a word
        "4111.1111.1111.1111",  # with dots
        "password is: hunter2",
        "my password's hunter2",
        "pw: hunter2x",
        "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKl",
        "Authorization: Bearer 8f14e45fceea167a5a36dedd4bea2543",
        "GB82 WEST 1234 5698 7654 32",
    ],
)
def test_forms_the_security_review_found_are_removed(text):
    result = redact_message(text)
    assert result.changed and not any(
        part in result.text for part in ("4111", "hunter2", "AIza", "xoxb", "8f14e45f", "5698")
    ), result.text
