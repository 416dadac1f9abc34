"""Rasa's REST channel behind the internal token.

Rasa's `--auth-token` protects its HTTP API (`/conversations/...`), but not the input
channels: anyone who can reach the REST webhook could post messages into any
conversation. `TokenRestInput` is the stock REST channel (same URL,
`/webhooks/rest/webhook`, same body) that answers 401 unless the request carries
`Authorization: Bearer <token>`, the token in credentials.yml (from the environment).
"""

from __future__ import annotations

import hmac
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request


class TokenRestInput(RestInput):
    """The REST channel, refusing requests without the shared bearer token."""

    @classmethod
    def name(cls) -> Text:
        return "rest"

    def __init__(self, token: Text) -> None:
        if not token or token.startswith("${"):
            raise ValueError("the REST channel needs a token (credentials.yml: token: ${SUPPORT_RASA_TOKEN})")
        self._expected = f"Bearer {token}".encode()

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        return cls(str((credentials or {}).get("token") or ""))

    def authorised(self, request: Request) -> bool:
        given = request.headers.get("Authorization", "").encode()
        return hmac.compare_digest(given, self._expected)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[None]]) -> Blueprint:
        blueprint = super().blueprint(on_new_message)

        @blueprint.middleware("request")
        async def require_token(request: Request) -> Any:
            if not self.authorised(request):
                return response.json({"error": "the internal token is missing or wrong"}, status=401)
            return None

        return blueprint
