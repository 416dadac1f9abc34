"""Verified identity for the in-app support pane.

The company's application back end signs who the user is with a secret it shares with
the web service; the pane passes the token along and the web service verifies it before
the assistant trusts the name and email. Token format (all base64url, no padding)::

    <payload>.<signature>    payload = JSON {"sub", "name", "email", "exp"}
                             signature = HMAC-SHA256(secret, payload)

`verify` raises `IdentityError` with a reason a client can show: malformed, bad
signature, expired.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass

from bot.intake import EMAIL_RE

MAX_TOKEN_CHARS = 4096


class IdentityError(ValueError):
    """The identity token cannot be trusted; the message says why."""


@dataclass(frozen=True)
class Identity:
    user_id: str
    name: str
    email: str
    expires_at: dt.datetime

    def to_metadata(self) -> dict[str, str]:
        return {"user_id": self.user_id, "name": self.name, "email": self.email}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: str, user_id: str, name: str, email: str, expires_at: dt.datetime) -> str:
    """A token for this user, valid until `expires_at` (what the app's back end does)."""
    payload = json.dumps(
        {"sub": user_id, "name": name, "email": email, "exp": int(expires_at.timestamp())}, separators=(",", ":")
    ).encode()
    body = _b64(payload)
    signature = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(signature)}"


def verify(secret: str, token: str, now: dt.datetime) -> Identity:
    """The identity in `token` if its signature is right and it has not expired."""
    if not secret:
        raise IdentityError("verified identity is not configured on this server")
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise IdentityError("the identity token is malformed")
    body, signature = token.split(".")
    expected = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    try:
        given = _unb64(signature)
        payload = json.loads(_unb64(body))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise IdentityError("the identity token is malformed") from None
    if not hmac.compare_digest(expected, given):
        raise IdentityError("the identity token's signature is not valid")
    if not isinstance(payload, dict):
        raise IdentityError("the identity token is malformed")
    user_id, name, email, exp = (payload.get(k) for k in ("sub", "name", "email", "exp"))
    if not (isinstance(user_id, str) and isinstance(name, str) and isinstance(email, str) and isinstance(exp, int)):
        raise IdentityError("the identity token lacks sub, name, email or exp")
    if not EMAIL_RE.match(email) or not (0 < len(name) <= 200) or not (0 < len(user_id) <= 200):
        raise IdentityError("the identity token carries an invalid name, email or user id")
    expires_at = dt.datetime.fromtimestamp(exp, tz=dt.timezone.utc)
    if expires_at <= now:
        raise IdentityError("the identity token has expired")
    return Identity(user_id, name, email.lower(), expires_at)
