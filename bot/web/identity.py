"""Verified identity for the in-app support pane.

The company's application back end signs who the user is with a secret it shares with
the web service; the pane passes the token along and the web service verifies it before
the assistant trusts the name and email. The token is a JSON Web Token (RFC 7519),
signed with HS256 and the shared secret (PyJWT on our side; any JWT library on the
app's back end)::

    header  {"alg": "HS256", "typ": "JWT"}
    claims  {"sub": user id, "name", "email", "iat": issued at, "exp": expires at}

`exp - iat` may be at most `MAX_LIFETIME` (24 hours): an identity token is issued when
the pane opens, not once for months. `verify` raises `IdentityError` with a reason a
client can show: malformed, an old-format token, bad signature, expired, issued in the
future, or living too long.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass

import jwt

from bot.intake import EMAIL_RE

MAX_TOKEN_CHARS = 4096
MAX_LIFETIME = dt.timedelta(hours=24)
CLOCK_SKEW = dt.timedelta(minutes=2)  # an app server's clock a little ahead of ours
ALGORITHM = "HS256"


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


def sign(
    secret: str, user_id: str, name: str, email: str, expires_at: dt.datetime, issued_at: dt.datetime | None = None
) -> str:
    """A token for this user, valid until `expires_at` (what the app's back end does).

    `issued_at` defaults to one hour before `expires_at` (the usual lifetime)."""
    issued_at = issued_at or expires_at - dt.timedelta(hours=1)
    claims = {
        "sub": user_id, "name": name, "email": email,
        "iat": int(issued_at.timestamp()), "exp": int(expires_at.timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify(secret: str, token: str, now: dt.datetime) -> Identity:
    """The identity in `token` if its signature is right and it is valid at `now`."""
    if not secret:
        raise IdentityError("verified identity is not configured on this server")
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise IdentityError("the identity token is malformed")
    if token.count(".") == 1:
        raise IdentityError(
            "the identity token has the old format (payload.signature); sign it as an HS256 JSON Web Token "
            "with sub, name, email, iat and exp (see the README, 'In-app support pane')"
        )
    try:
        # Times are checked below against `now` (the service's clock, which tests fix).
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM],
            options={"require": ["sub", "exp", "iat"], "verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
    except jwt.InvalidSignatureError:
        raise IdentityError("the identity token's signature is not valid") from None
    except jwt.MissingRequiredClaimError as err:
        raise IdentityError(f"the identity token lacks the {err.claim!r} claim") from None
    except jwt.InvalidAlgorithmError:
        raise IdentityError(f"the identity token must be signed with {ALGORITHM}") from None
    except jwt.InvalidTokenError:
        raise IdentityError("the identity token is malformed") from None
    user_id, name, email, iat, exp = (claims.get(k) for k in ("sub", "name", "email", "iat", "exp"))
    if not (isinstance(user_id, str) and isinstance(name, str) and isinstance(email, str)):
        raise IdentityError("the identity token lacks sub, name or email")
    if not (isinstance(iat, int) and isinstance(exp, int)):
        raise IdentityError("the identity token's iat and exp must be whole seconds since 1970")
    if not EMAIL_RE.match(email) or not (0 < len(name) <= 200) or not (0 < len(user_id) <= 200):
        raise IdentityError("the identity token carries an invalid name, email or user id")
    issued_at = dt.datetime.fromtimestamp(iat, tz=dt.timezone.utc)
    expires_at = dt.datetime.fromtimestamp(exp, tz=dt.timezone.utc)
    if expires_at - issued_at > MAX_LIFETIME:
        hours = int(MAX_LIFETIME.total_seconds() // 3600)
        raise IdentityError(f"the identity token lives longer than {hours} hours (exp - iat); issue shorter-lived tokens")
    if issued_at > now + CLOCK_SKEW:
        raise IdentityError("the identity token is issued in the future (check the app server's clock)")
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
