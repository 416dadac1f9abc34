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


# -- the identity as the action server receives it ------------------------------------
#
# The web service verifies the pane's token, then passes the identity to Rasa as message
# metadata, sealed: an HMAC over the conversation id and the identity with a key derived
# from the identity secret. The action server checks the seal itself, so identity
# metadata forged by anyone who reaches Rasa directly is worthless, and a seal copied
# from a stored conversation vouches only for that conversation.


def _seal_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"makana-identity-metadata-v1", hashlib.sha256).digest()


def _seal_body(sender: str, fields: dict[str, str], exp: int) -> bytes:
    return json.dumps([sender, fields["user_id"], fields["name"], fields["email"], exp], separators=(",", ":")).encode()


def seal(secret: str, sender: str, who: Identity) -> dict[str, object]:
    """The identity metadata for one conversation, with its seal."""
    fields = who.to_metadata()
    exp = int(who.expires_at.timestamp())
    mac = hmac.new(_seal_key(secret), _seal_body(sender, fields, exp), hashlib.sha256).hexdigest()
    return {**fields, "exp": exp, "seal": mac}


def unseal(secret: str, sender: str, metadata: object, now: dt.datetime) -> Identity | None:
    """The identity in message metadata if its seal is right for `sender` and it has not
    expired; None otherwise (absent, forged, copied from another conversation, expired)."""
    if not secret or not isinstance(metadata, dict):
        return None
    fields = {k: metadata.get(k) for k in ("user_id", "name", "email")}
    exp, given = metadata.get("exp"), metadata.get("seal")
    if not all(isinstance(v, str) for v in fields.values()) or not isinstance(exp, int) or not isinstance(given, str):
        return None
    expected = hmac.new(_seal_key(secret), _seal_body(sender, fields, exp), hashlib.sha256).hexdigest()  # type: ignore[arg-type]
    if not hmac.compare_digest(expected, given):
        return None
    expires_at = dt.datetime.fromtimestamp(exp, tz=dt.timezone.utc)
    if expires_at <= now:
        return None
    return Identity(str(fields["user_id"]), str(fields["name"]), str(fields["email"]), expires_at)
