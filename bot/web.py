"""The web service: chat API, chat page and health, in front of Rasa.

`make_app(settings)` builds the aiohttp application. The HTTP session, the database
engine and the policy are created in `cleanup_ctx` and closed with the app. Domain
errors are raised as `ApiError` (or come from the library) and one middleware turns
every failure into the same JSON shape: ``{"error": {"code": ..., "message": ...}}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import re
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web

from bot.assistant import AssistantClient, AssistantUnavailable
from bot.notify import Notifier, run_outbox
from bot.policy import SupportPolicy, load_policy
from bot.settings import Settings
from bot.store import Store, StoreUnavailable

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
SENDER_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
MAX_BODY_BYTES = 64 * 1024
RESTARTING = (
    "Part of our assistant is restarting, so I can't act on that right now. Your message is saved; "
    "please continue in a moment."
)

SETTINGS = web.AppKey("settings", Settings)
ASSISTANT = web.AppKey("assistant", AssistantClient)
HTTP = web.AppKey("http", aiohttp.ClientSession)
STORE = web.AppKey("store", Store)
POLICY = web.AppKey("policy", SupportPolicy)


class ApiError(Exception):
    """An error to show the API client: HTTP status, a stable code and a sentence."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


@web.middleware
async def errors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Render every error as JSON; never leak a traceback to the client."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message)
    except AssistantUnavailable as exc:
        log.warning("assistant unavailable: %s", exc)
        return error_response(
            503, "assistant_unavailable", "The assistant is not reachable right now. Please try again in a moment."
        )
    except StoreUnavailable as exc:
        log.warning("store unavailable: %s", exc)
        return error_response(503, "database_unavailable", "Our ticket system is not reachable right now.")
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, "body_too_large", f"The request body is larger than {MAX_BODY_BYTES} bytes.")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = re.sub(r"[^a-z]+", "_", (exc.reason or "error").lower()).strip("_")
        return error_response(exc.status, code, exc.reason or "error")
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "Something went wrong on our side; it has been logged.")


@web.middleware
async def security_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    # On every response: a FileResponse only knows its content type once prepared.
    response.headers.setdefault(
        "Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'self'"
    )
    return response


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or an ApiError saying what is wrong."""
    if not request.can_read_body:
        raise ApiError(400, "empty_body", "Send a JSON object in the request body.")
    raw = await request.read()
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_encoding", "The request body must be UTF-8 encoded JSON.") from None
    except json.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"The request body is not valid JSON ({exc.msg} at position {exc.pos}).") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    return body


def validate_chat(body: dict[str, Any], max_chars: int) -> tuple[str, str]:
    """Check the chat request's fields; return (sender, message) or raise ApiError."""
    sender = body.get("sender")
    if not isinstance(sender, str) or not SENDER_RE.match(sender):
        raise ApiError(
            422,
            "invalid_sender",
            "`sender` must be a conversation id of 1 to 64 letters, digits or the characters _ . : -",
        )
    message = body.get("message")
    if not isinstance(message, str):
        raise ApiError(422, "invalid_message", "`message` must be a string.")
    if "\x00" in message:
        raise ApiError(422, "invalid_message", "`message` must not contain NUL characters.")
    message = message.strip()
    if not message:
        raise ApiError(422, "empty_message", "`message` is empty; type a question or a request.")
    if len(message) > max_chars:
        raise ApiError(
            413, "message_too_long", f"`message` has {len(message)} characters; the limit is {max_chars}."
        )
    return sender, message


async def chat(request: web.Request) -> web.Response:
    """POST /api/chat: deliver one customer message, answer with the bot's replies."""
    settings = request.app[SETTINGS]
    sender, message = validate_chat(await read_json_object(request), settings.max_message_chars)
    replies = [r.to_json() for r in await request.app[ASSISTANT].send(sender, message)]
    if not replies and not await actions_up(request.app):
        # Rasa keeps the message (and any form answer) but cannot act on it now.
        replies = [{"text": RESTARTING, "buttons": []}]
    return web.json_response({"sender": sender, "messages": replies})


async def actions_up(app: web.Application) -> bool:
    try:
        async with app[HTTP].get(
            app[SETTINGS].actions_url.rstrip("/") + "/health", timeout=aiohttp.ClientTimeout(total=2)
        ) as response:
            return response.status == 200
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return False


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: each component up or down; 200 only when all are up."""
    app = request.app

    async def database_up() -> bool:
        try:
            await asyncio.wait_for(app[STORE].ping(), timeout=2)
        except (StoreUnavailable, asyncio.TimeoutError):
            return False
        return True

    rasa, actions, database = await asyncio.gather(app[ASSISTANT].is_ready(), actions_up(app), database_up())
    components = {
        "rasa": "up" if rasa else "down",
        "actions": "up" if actions else "down",
        "database": "up" if database else "down",
    }
    down = [name for name, state in components.items() if state == "down"]
    body = {"status": "ok" if not down else "degraded", "components": components, "down": down}
    return web.json_response(body, status=200 if not down else 503)


async def index_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "chat.html")


def make_app(settings: Settings) -> web.Application:
    """Build the web service for `settings` (nothing is connected until it starts)."""
    app = web.Application(middlewares=[errors_middleware, security_headers], client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings

    async def resources(app: web.Application) -> AsyncIterator[None]:
        app[POLICY] = load_policy(settings.policy_path)
        session = aiohttp.ClientSession()
        app[HTTP] = session
        app[ASSISTANT] = AssistantClient(session, settings.rasa_url, settings.rasa_timeout_s)
        app[STORE] = await Store.open(settings.database_url)
        notifier = Notifier(settings, app[POLICY], session)
        outbox = asyncio.create_task(
            run_outbox(app[STORE], notifier, settings.outbox_interval_s, lambda: dt.datetime.now(dt.timezone.utc))
        )
        yield
        outbox.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await outbox
        await app[STORE].close()
        await session.close()

    app.cleanup_ctx.append(resources)
    app.router.add_get("/", index_page)
    app.router.add_post("/api/chat", chat)
    app.router.add_get("/healthz", healthz)
    app.router.add_static("/static/", STATIC)
    return app
