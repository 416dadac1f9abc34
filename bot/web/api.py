"""What every HTTP handler of the web service shares: app keys, errors, JSON input.

Handlers raise `ApiError` (or a library error such as `AssistantUnavailable`); the one
middleware here renders every failure as ``{"error": {"code": ..., "message": ...}}``.
Bodies are read as JSON objects and validated with their pydantic model (bot/web/schemas.py);
a field's `Refuse` marker turns a validation error into that error.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, TypeVar

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ValidationError

from bot.rasa_client import AssistantClient, AssistantUnavailable
from bot.live import LiveService
from bot.google_calendar import Calendar
from bot.policy import SupportPolicy
from bot.web.ratelimit import RateLimiter
from bot.settings import Settings
from bot.tracker_store import TrackerStore
from bot.store import Store, StoreUnavailable, TicketNotFound

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
# A conversation id is the only key to its history: at least 128 random bits (22
# base64url characters carry 132). The widget makes 16 random bytes, hex-encoded.
SENDER_RE = re.compile(r"^[A-Za-z0-9_-]{22,64}$")
SENDER_RULE = (
    "a random conversation id of 22 to 64 letters, digits, _ or - (at least 128 random bits, "
    "e.g. 16 random bytes in hex)"
)
NOT_YOUR_TICKET = "No such ticket in this conversation."  # unknown and other people's tickets alike
MAX_BODY_BYTES = 64 * 1024
RESTARTING = (
    "Part of our assistant is restarting, so I can't act on that right now. Your message is saved; "
    "please continue in a moment."
)

SETTINGS = web.AppKey("settings", Settings)
ASSISTANT = web.AppKey("assistant", AssistantClient)
HTTP = web.AppKey("http", aiohttp.ClientSession)
STORE = web.AppKey("store", Store)
TRACKER = web.AppKey("tracker", TrackerStore)
POLICY = web.AppKey("policy", SupportPolicy)
CLOCK = web.AppKey("clock", Callable[[], dt.datetime])
CONVERSATION_LIMIT = web.AppKey("conversation_limit", RateLimiter)
CLIENT_LIMIT = web.AppKey("client_limit", RateLimiter)
READ_LIMIT = web.AppKey("read_limit", RateLimiter)
ALLOWED_ORIGINS = web.AppKey("allowed_origins", frozenset)
ALLOWED_HOSTS = web.AppKey("allowed_hosts", frozenset)
CALENDAR = web.AppKey("calendar", Calendar)
LIVE = web.AppKey("live", LiveService)


class ApiError(Exception):
    """An error to show the API client: HTTP status, a stable code and a sentence."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Refuse:
    """Metadata of a request model's field: how a bad value of it is refused.

    `on` is the pydantic error type it answers (e.g. "string_too_long"); without it, any
    other error of the field. The message may name `{length}` (the value's), the error's
    context (`{max_length}`) and what the handler passes to `read_body`; literal braces
    are doubled (str.format).
    """

    code: str
    message: str
    status: int = 422
    on: str | None = None


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


@web.middleware
async def errors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Render every error as JSON; never leak a traceback to the client."""
    try:
        for name, value in [*request.query.items(), *request.match_info.items()]:
            if BAD_CHARACTERS.search(value):
                raise ApiError(422, "invalid_characters", f"`{name[:60]}` contains a control character; remove it.")
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message)
    except AssistantUnavailable as exc:
        log.warning("assistant unavailable: %s", exc)
        return error_response(
            503, "assistant_unavailable", "The assistant is not reachable right now. Please try again in a moment."
        )
    except TicketNotFound as exc:
        if request.path.startswith("/api/staff/"):
            return error_response(404, "ticket_not_found", f"No ticket {exc.args[0]!r}.")
        # Customers get one answer for unknown tickets and other people's: numbers can't be probed.
        return error_response(404, "ticket_not_found", NOT_YOUR_TICKET)
    except StoreUnavailable as exc:
        log.warning("store unavailable: %s", exc)
        return error_response(503, "database_unavailable", "Our ticket system is not reachable right now.")
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, "body_too_large", f"The request body is larger than {MAX_BODY_BYTES} bytes.")
    except web.HTTPTooManyRequests as exc:
        response = error_response(429, "rate_limited", exc.text or "Too many requests; slow down.")
        response.headers["Retry-After"] = exc.headers.get("Retry-After", "1")
        return response
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


# C0 controls other than tab, line feed and carriage return, DEL, and lone UTF-16
# surrogates (valid in JSON escapes, but not text: PostgreSQL and UTF-8 refuse them).
BAD_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or an ApiError saying what is wrong.

    Only `application/json` is read: a `text/plain` body is what a page on another site
    can send without asking (no CORS preflight), so it is refused. The body must arrive
    within the configured time (a client trickling it in holds a connection).
    """
    if not request.can_read_body:
        raise ApiError(400, "empty_body", "Send a JSON object in the request body.")
    if request.content_type != "application/json":
        raise ApiError(
            415, "unsupported_media_type", "Send the body as JSON with the header Content-Type: application/json."
        )
    try:
        raw = await asyncio.wait_for(request.read(), timeout=request.app[SETTINGS].body_timeout_s)
    except asyncio.TimeoutError:
        raise ApiError(408, "body_timeout", "The request body did not arrive in time; send it again.") from None
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_encoding", "The request body must be UTF-8 encoded JSON.") from None
    except json.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"The request body is not valid JSON ({exc.msg} at position {exc.pos}).") from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "The request body is nested too deeply.") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise ApiError(400, "invalid_json", f"The request body has a value that cannot be read ({exc}).") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    check_characters(body)
    return body


def check_characters(body: Any) -> None:
    """Refuse control characters and lone surrogates in any key or string of `body`."""
    pending: list[tuple[str, Any]] = [("", body)]
    while pending:
        where, value = pending.pop()
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, item in items:
            place = f"{where}.{key}" if where else str(key)
            if isinstance(key, str) and BAD_CHARACTERS.search(key):
                raise ApiError(422, "invalid_characters", "A field name contains a control character; remove it.")
            if isinstance(item, str) and BAD_CHARACTERS.search(item):
                raise ApiError(
                    422, "invalid_characters",
                    f"`{place[:60]}` contains a control character or an invalid Unicode character; remove it and send again.",
                )
            if isinstance(item, (dict, list)):
                pending.append((place, item))


Model = TypeVar("Model", bound=BaseModel)


def valid_body(model: type[Model], body: dict[str, Any], **context: object) -> Model:
    """`body` as `model`, or an ApiError for the first field that is wrong, saying what it expects."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise refusal(model, exc.errors()[0], context) from None


async def read_body(request: web.Request, model: type[Model], **context: object) -> Model:
    """The request's JSON object validated as `model` (read_json_object's errors first)."""
    return valid_body(model, await read_json_object(request), **context)


def refusal(model: type[BaseModel], error: Any, context: dict[str, object]) -> ApiError:
    """The ApiError for one pydantic error: the field's `Refuse` for that error type, else its
    general one, else pydantic's own sentence with the field named."""
    name = str(error["loc"][0]) if error["loc"] else ""
    field = model.model_fields.get(name)
    marks = [m for m in field.metadata if isinstance(m, Refuse)] if field is not None else []
    mark = next((m for m in marks if m.on == error["type"]), None) or next((m for m in marks if m.on is None), None)
    if mark is None:
        where = f"`{name}`: " if name else ""
        return ApiError(422, f"invalid_{name or 'body'}", f"{where}{error['msg']}.")
    value = error.get("input")
    values = {**(error.get("ctx") or {}), "length": len(value) if isinstance(value, str) else 0, **context}
    return ApiError(mark.status, mark.code, mark.message.format(**values))
