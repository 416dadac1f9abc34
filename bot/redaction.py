"""Remove secrets and personal numbers from what customers type, before it is stored.

The web service runs `redact_message` on every chat message before it reaches Rasa, so
no tracker store, ticket, summary, history, report or log can hold what it removes;
tickets run `redact` again on their fields (defence in depth, and for old data the
`python -m bot scrub` command rewrites).

What is removed, and the check that keeps look-alikes:

- payment card numbers: 13 to 19 digits, with or without spaces, dashes or dots, also
  glued to a word ("card4111…"), that pass the Luhn check and start like a card
  (2–6); the CVV and expiry typed next to one;
- passwords, PINs and one-time codes after their keyword ("password is: X", "my
  password's X", "pw: X", "pin 4821"), unless what follows is an ordinary word about
  the password ("my password is wrong");
- API keys and tokens by their published shapes (Stripe-style `sk_live_`, Makana
  `mk_live_`, GitHub `ghp_`, AWS `AKIA`, Google `AIza`, Slack `xox?-`, JWTs, `Bearer`
  tokens, private-key blocks), and any value after "API key"/"token";
- IBANs that pass the ISO 13616 mod-97 check;
- US social security numbers.

Order numbers, versions, phone numbers, dates, ticket numbers and amounts are kept: a
card must pass Luhn, an IBAN mod-97, and a secret needs its keyword or its shape. The
labelled phrasings in tests/data/redaction/ measure both sides (precision and recall
are printed by the tests).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CARD = "[card number removed]"
CARD_DETAIL = "[card detail removed]"
SECRET = "[secret removed]"
IBAN = "[bank account removed]"
SSN = "[SSN removed]"

# Kinds, in the order the customer is told about them.
KINDS = ("card", "password", "key", "iban", "ssn")

_CARD_CANDIDATE = re.compile(r"(?<![\d])(?:\d[ .-]?){12,18}\d(?![\d])")
# Part of a hyphenated identifier ("INV-4111…-A"): not a card typed on its own.
_IDENTIFIER_BEFORE = re.compile(r"[A-Za-z0-9][-_/]$")
_IDENTIFIER_AFTER = re.compile(r"^[-_/][A-Za-z0-9]")

# Next to a card: "exp 12/27", "expires 12/2027", "cvv 123", "security code: 1234",
# or the bare "12/27 123" typed right after the number.
_CARD_DETAILS = re.compile(
    r"\b(?P<key>(?:cvv2?|cvc2?|csc|cid|(?:security |card )?code|exp(?:iry|iration|ires)?(?:\s+date)?|valid thru)"
    r"\s*(?:is\s+|[:=#]\s*)?)(?P<value>\d{1,2}\s*/\s*\d{2,4}|\d{3,4})\b",
    re.IGNORECASE,
)
_AFTER_CARD = re.compile(r"^(?P<sep>[\s,;]+)(?P<value>\d{1,2}\s*/\s*\d{2,4}|\d{3,4})\b")

_SECRET_KEYWORD = (
    r"(?:password|passwd|passphrase|passcode|pass\s*word|pwd|pw|pass|pin(?:\s*code|\s*number)?|secret|"
    r"2fa(?:\s*code)?|otp|one[- ]time\s+(?:code|password)|verification\s+code|security\s+code|login\s+code)"
)
_KEY_KEYWORD = r"(?:api[ _-]?key|access[ _-]?key|secret[ _-]?key|private[ _-]?key|access[ _-]?token|auth[ _-]?token|token)"

# "password is: X", "password = X", "my password's X", "pw: X", "the password for
# the admin account is X": the keyword, up to four words naming whose, a separator.
_AFTER_SEPARATOR = re.compile(
    rf"(?P<key>\b(?:{_SECRET_KEYWORD}|{_KEY_KEYWORD})(?:\s+(?:for|of|on|to)(?:\s+[\w.@-]+){{1,3}})?"
    r"(?:(?:'s|’s|\s*(?:is|was|=|:|->))\s*(?:(?:now|still|currently|just|literally)\s+)?(?:[:=]\s*)?)"
    r"(?:[\"'“‘]\s*)?)(?P<value>[^\s\"'”’,;()\[\]]{3,})",
    re.IGNORECASE,
)
# "pin 4821", "password hunter2", "token abc123def": no separator, so only a value that
# looks generated (it has a digit, or mixes letters and symbols).
_AFTER_SPACE = re.compile(
    rf"(?P<key>\b(?:{_SECRET_KEYWORD}|{_KEY_KEYWORD})\s+)(?P<value>(?=\S*\d|\S*[!@#$%^&*+=?~])[^\s\"',;()\[\]]{{3,}})",
    re.IGNORECASE,
)
# What follows "password is" when the customer talks *about* the password.
_ABOUT_THE_SECRET = frozenset(
    """
    not wrong incorrect invalid expired expiring correct right fine ok okay too being been always never no also
    still same different required needed missing blank empty rejected refused locked changed reset saved stored
    working broken case case-sensitive sensitive long short weak strong simple complicated hidden visible shown
    accepted wrong. the a an my your our their his her its this that it there here what which where when how
    why who for from with without in on at by to of and or but so if than then definitely probably apparently
    somewhere something anything nothing everything lost forgotten unknown correct. known sent emailed correctly
    properly sometimes fixed updated new old one two any only field box screen page form prompt dialog app
    required. valid protected encrypted set unset there. same. mine yours ours theirs
    """.split()
)
_TOKEN_SHAPES = re.compile(
    r"\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{8,}\b"  # payment-style API keys
    r"|\bmk_(?:live|test)_[A-Za-z0-9]{8,}\b"  # Makana API keys
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}\b"  # GitHub tokens
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"  # AWS access key ids
    r"|\bAIza[0-9A-Za-z_-]{30,}"  # Google API keys
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"  # JWTs
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",  # private keys
    re.DOTALL,
)
_BEARER = re.compile(r"\b(?P<key>Bearer\s+)(?P<value>[A-Za-z0-9._~+/=-]{12,})")
_IBAN_CANDIDATE = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?\b")
_SSN_RE = re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")


@dataclass(frozen=True)
class Redaction:
    """The text as it may be stored, and which kinds of secret were removed from it."""

    text: str
    kinds: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.kinds)


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


def iban_valid(candidate: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to numbers, mod 97 == 1."""
    compact = candidate.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


def _looks_like_a_card(text: str, match: re.Match[str]) -> bool:
    digits = re.sub(r"\D", "", match.group(0))
    if not (13 <= len(digits) <= 19 and digits[0] in "23456" and luhn_valid(digits)):
        return False
    separators = set(re.sub(r"\d", "", match.group(0)))
    if len(separators) > 1:
        return False  # "1.2.3-4 5": a version or a date, not one typed card number
    before, after = text[: match.start()], text[match.end() :]
    return not (_IDENTIFIER_BEFORE.search(before) and _IDENTIFIER_AFTER.search(after))


def _card_at(text: str, match: re.Match[str]) -> tuple[int, int] | None:
    """The span of a card number at the start of a candidate run of digits, if any: the
    run may go on with what was typed after the card ("5105…5100 12/26": the 12)."""
    groups = list(re.finditer(r"\d+", match.group(0)))
    for count in range(len(groups), 0, -1):
        end = match.start() + groups[count - 1].end()
        candidate = _CARD_CANDIDATE.fullmatch(text, match.start(), end)
        if candidate is not None and _looks_like_a_card(text, candidate):
            return match.start(), end
    return None


def _redact_cards(text: str, found: set[str]) -> str:
    out: list[str] = []
    position = 0
    search_from = 0
    while (match := _CARD_CANDIDATE.search(text, search_from)) is not None:
        span = _card_at(text, match)
        if span is None:
            first_digits = re.match(r"\d+", match.group(0))
            search_from = match.start() + (first_digits.end() if first_digits else 1)
            continue
        out.append(text[position : span[0]])
        out.append(CARD)
        position = search_from = span[1]
        found.add("card")
        # The expiry and CVV typed right after the number ("…1111 12/27 123").
        for _ in range(2):
            detail = _AFTER_CARD.match(text[position:])
            if detail is None:
                break
            out.append(detail.group("sep") + CARD_DETAIL)
            position += detail.end()
            search_from = position
    out.append(text[position:])
    text = "".join(out)
    if "card" in found or re.search(r"\b(?:cvv2?|cvc2?|csc|security code|card code)\b", text, re.IGNORECASE):
        text, count = _CARD_DETAILS.subn(lambda m: m.group("key") + CARD_DETAIL, text)
        if count:
            found.add("card")
    return text


def _secret_value(match: re.Match[str], found: set[str]) -> str:
    value = match.group("value")
    key = match.group("key")
    bare = value.lower().strip(".!?:")
    if bare in _ABOUT_THE_SECRET or value.startswith("[") or not re.search(r"[A-Za-z0-9]", value):
        return match.group(0)
    if not re.search(r"[:=]|->", key) and re.fullmatch(r"[a-z]+(?:ed|ing|ly|able|ible)", value):
        # After "is"/"was"/"'s" the sentence goes on in words: "the key was revoked",
        # "the password is blocking me". After ":" or "=" comes a value, whatever it is.
        return match.group(0)
    found.add("key" if re.search(_KEY_KEYWORD, key, re.IGNORECASE) else "password")
    return key + SECRET


def _redact_ibans(text: str, found: set[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if iban_valid(match.group(0)):
            found.add("iban")
            return IBAN
        return match.group(0)

    return _IBAN_CANDIDATE.sub(replace, text)


def redact_message(text: str) -> Redaction:
    """`text` with every secret replaced by a placeholder, and the kinds removed."""
    found: set[str] = set()
    text = _redact_cards(text, found)
    text = _redact_ibans(text, found)

    def token(match: re.Match[str]) -> str:
        found.add("key")
        return SECRET

    text = _TOKEN_SHAPES.sub(token, text)
    text = _BEARER.sub(lambda m: (found.add("key"), m.group("key") + SECRET)[1], text)
    for pattern in (_AFTER_SEPARATOR, _AFTER_SPACE):
        text = pattern.sub(lambda m: _secret_value(m, found), text)

    def ssn(match: re.Match[str]) -> str:
        found.add("ssn")
        return SSN

    text = _SSN_RE.sub(ssn, text)
    return Redaction(text, tuple(k for k in KINDS if k in found))


def redact(text: str) -> str:
    """`text` with card numbers, typed secrets, API tokens, IBANs and SSNs replaced."""
    return redact_message(text).text


_NAMES = {
    "card": "the card number",
    "password": "the password or code",
    "key": "the API key or token",
    "iban": "the bank account number",
    "ssn": "the social security number",
}


def notice(kinds: tuple[str, ...]) -> str:
    """What the customer is told, once, when something they typed was hidden."""
    names = [_NAMES[k] for k in kinds]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    text = f"I've hidden {listed} you typed; we never need {'it' if len(names) == 1 else 'them'} in chat, and it isn't stored."
    if "password" in kinds or "key" in kinds:
        text += " If it was real, please change it now, since it has left your hands."
    return text
