"""Extensions of the action server, found by rasa-sdk's plugin mechanism (it imports a
top-level package of this name and calls `init_hooks`).

`ActionServerAuth` makes the action server refuse every call but `/health` unless it
carries `Authorization: Bearer <SUPPORT_ACTIONS_TOKEN>`, the secret Rasa sends (see
endpoints.yml). Without it, any local process could run actions directly: create
tickets with an invented transcript, or read another conversation's ticket.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

import pluggy
from sanic import Sanic, response
from sanic.request import Request

from bot.settings import Settings

hookimpl = pluggy.HookimplMarker("rasa_sdk")
log = logging.getLogger(__name__)
OPEN_PATHS = ("/health",)


class ActionServerAuth:
    """Checks the shared secret on every request except the health check."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode() if token else None

    def authorised(self, header: str) -> bool:
        return self._expected is not None and hmac.compare_digest(header.encode(), self._expected)

    @hookimpl
    def attach_sanic_app_extensions(self, app: Sanic) -> None:
        if self._expected is None:
            log.error("SUPPORT_ACTIONS_TOKEN is not set: every action call will be refused")

        @app.on_request
        async def require_token(request: Request) -> Any:
            if request.path in OPEN_PATHS or self.authorised(request.headers.get("Authorization", "")):
                return None
            return response.json({"error": "the internal token is missing or wrong"}, status=401)


def init_hooks(manager: pluggy.PluginManager) -> None:
    """rasa-sdk's entry point for plugins."""
    manager.register(ActionServerAuth(Settings.from_env().actions_token))
