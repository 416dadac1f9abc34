"""Remove personal and secret data from text before it is stored in a ticket.

Redacts payment card numbers (digit runs of 13-19 digits that pass the Luhn check,
with or without spaces or dashes), secrets typed after words such as "password" or
"API key", well-known API token shapes, and US social security numbers. Order
numbers, versions, phone numbers and dates are left alone: a card number must pass
Luhn, and a secret needs its keyword or a token prefix.
"""

from __future__ import annotations

import re

CARD = "[card number removed]"
SECRET = "[secret removed]"
SSN = "[SSN removed]"

_CARD_CANDIDATE = re.compile(r"(?<![\w.-])(?:\d[ -]?){12,18}\d(?![\w-]|\.\d)")
_KEYWORD = (
    r"\b(?:password|passwd|pwd|passcode|pin code|pin|secret|api[ _-]?key|access[ _-]?token|token|"
    r"2fa code|otp|one[- ]time code|verification code)\b"
)
# "password is X", "pwd=X", "token: X": anything after an explicit separator.
_SECRET_AFTER_SEPARATOR = re.compile(
    rf"(?P<key>{_KEYWORD}\s*(?:(?:is|was)(?:\s+now|\s+still)?\s+|[:=]\s*))(?P<value>[^\s\[\"',;]{{3,}})", re.IGNORECASE
)
# "token abc123def": without a separator, only a value that looks generated (has a digit).
_SECRET_AFTER_SPACE = re.compile(
    rf"(?P<key>{_KEYWORD}\s+)(?P<value>(?=[^\s]*\d)[^\s\[\"',;]{{6,}})", re.IGNORECASE
)
_TOKEN_SHAPES = re.compile(
    r"\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{8,}\b"  # payment-style API keys
    r"|\bmk_(?:live|test)_[A-Za-z0-9]{8,}\b"  # Makana API keys
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}\b"  # GitHub tokens
    r"|\bAKIA[0-9A-Z]{16}\b"  # AWS access key ids
    r"|\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\b"  # JWTs
)
_SSN_RE = re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        return CARD
    return match.group(0)


def redact(text: str) -> str:
    """`text` with card numbers, typed secrets, API tokens and SSNs replaced."""
    text = _CARD_CANDIDATE.sub(_card, text)
    for pattern in (_SECRET_AFTER_SEPARATOR, _SECRET_AFTER_SPACE):
        text = pattern.sub(lambda m: m.group("key") + SECRET, text)
    text = _TOKEN_SHAPES.sub(SECRET, text)
    return _SSN_RE.sub(SSN, text)
