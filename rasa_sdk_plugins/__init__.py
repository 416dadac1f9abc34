"""Extensions of the action server, found by rasa-sdk's plugin mechanism (it imports a
top-level package of this name and calls `init_hooks`).

`ActionServerAuth` makes the action server refuse every call but `/health` unless it
carries `Authorization: Bearer <SUPPORT_ACTIONS_TOKEN>`, the secret Rasa sends (see
endpoints.yml). Without it, any local process could run actions directly: create
tickets with an invented transcript, or read another conversation's ticket.

`CustomerClock` tells every time an action writes on the customer's clock: it reads the
time zone the customer's messages carry (the widget sends it as metadata; the web
service checked it against the IANA list) from the tracker in the action call, and sets
it with `bot.clock.customer_clock` for that call (see bot/clock.py).
"""

from __future__ import annotations

import hmac
import json
import logging
import zlib
from contextvars import Token
from typing import Any

import pluggy
from sanic import Sanic, response
from sanic.request import Request

from bot import clock
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


class CustomerClock:
    """Sets the customer's time zone (or none) for each action call, and resets it after."""

    @staticmethod
    def zone_of(request: Request) -> Any:
        try:
            raw = request.body
            if request.headers.get("Content-Encoding") == "deflate":
                raw = zlib.decompress(raw)
            call = json.loads(raw) if raw else None
        except (ValueError, zlib.error):
            return None  # rasa-sdk answers the bad body itself
        tracker = call.get("tracker") if isinstance(call, dict) else None
        return clock.zone_in_events(tracker.get("events")) if isinstance(tracker, dict) else None

    @hookimpl
    def attach_sanic_app_extensions(self, app: Sanic) -> None:
        # Sanic runs request middleware, the handler and response middleware in one task,
        # which may serve several requests of a kept-alive connection: set it every time.
        @app.on_request
        async def customer_clock(request: Request) -> None:
            if request.path == "/webhook":
                request.ctx.clock_token = clock.set_customer_zone(self.zone_of(request))

        @app.on_response
        async def company_clock(request: Request, _: Any) -> None:
            token: Token | None = getattr(request.ctx, "clock_token", None)
            if token is not None:
                clock.reset_customer_zone(token)


def init_hooks(manager: pluggy.PluginManager) -> None:
    """rasa-sdk's entry point for plugins."""
    manager.register(ActionServerAuth(Settings.from_env().actions_token))
    manager.register(CustomerClock())
