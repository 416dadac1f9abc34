"""The web service: chat API, widget and pane assets, pages and health, in front of Rasa.

`make_app(settings)` builds the aiohttp application. The HTTP session, the database
engine, the policy and the notification outbox are created in `cleanup_ctx` and
closed with the app. Errors are rendered by `bot.api.errors_middleware`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import html
from typing import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web

from bot import chat_api, staff_api
from bot.api import (
    ASSISTANT,
    CLIENT_LIMIT,
    CLOCK,
    CONVERSATION_LIMIT,
    HTTP,
    MAX_BODY_BYTES,
    POLICY,
    SETTINGS,
    STATIC,
    STORE,
    errors_middleware,
)
from bot.assistant import AssistantClient
from bot.notify import Notifier, run_outbox
from bot.openapi import openapi_document
from bot.policy import load_policy
from bot.ratelimit import RateLimiter
from bot.settings import Settings, replica_name
from bot.store import Store

CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'self'"


@web.middleware
async def security_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    # On every response: a FileResponse only knows its content type once prepared.
    response.headers.setdefault("Content-Security-Policy", CSP)
    return response


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: each component up or down; 200 only when all are up."""
    app = request.app
    rasa, actions, database = await asyncio.gather(
        app[ASSISTANT].readiness(), chat_api.action_servers_up(app), chat_api.database_up(app)
    )
    components: dict[str, str] = {}
    for kind, states in (("rasa", rasa), ("actions", actions)):
        for i, up in enumerate(states):
            components[replica_name(kind, i, len(states))] = "up" if up else "down"
    components["database"] = "up" if database else "down"
    down = [name for name, state in components.items() if state == "down"]
    body = {"status": "ok" if not down else "degraded", "components": components, "down": down}
    return web.json_response(body, status=200 if not down else 503)


async def index_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "chat.html")


async def widget_script(request: web.Request) -> web.FileResponse:
    """GET /widget.js: the one script a site embeds to get the chat widget."""
    response = web.FileResponse(STATIC / "widget.js")
    response.headers["Cache-Control"] = "no-cache"
    return response


def demo_page(template: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A page of the company's (pretend) website or app that embeds the widget."""

    async def page(request: web.Request) -> web.Response:
        text = (STATIC / "demo" / template).read_text(encoding="utf-8")
        token = request.query.get("identity", "")
        return web.Response(text=text.replace("{{identity}}", html.escape(token, quote=True)), content_type="text/html")

    return page


def static_page(path: str) -> Callable[[web.Request], Awaitable[web.FileResponse]]:
    async def page(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / path)

    return page


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def make_app(settings: Settings, clock: Callable[[], dt.datetime] | None = None) -> web.Application:
    """Build the web service for `settings` (nothing is connected until it starts)."""
    app = web.Application(middlewares=[errors_middleware, security_headers], client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app[CLOCK] = clock or (lambda: dt.datetime.now(dt.timezone.utc))
    app[CONVERSATION_LIMIT] = RateLimiter(settings.rate_per_conversation, settings.rate_burst_conversation)
    app[CLIENT_LIMIT] = RateLimiter(settings.rate_per_client, settings.rate_burst_client)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        app[POLICY] = load_policy(settings.policy_path)
        session = aiohttp.ClientSession()
        app[HTTP] = session
        app[ASSISTANT] = AssistantClient(session, settings.rasa_url_list, settings.rasa_timeout_s)
        app[STORE] = await Store.open(settings.database_url)
        notifier = Notifier(settings, app[POLICY], session)
        outbox = asyncio.create_task(run_outbox(app[STORE], notifier, settings.outbox_interval_s, app[CLOCK]))
        yield
        outbox.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await outbox
        await app[STORE].close()
        await session.close()

    app.cleanup_ctx.append(resources)
    app.router.add_get("/", index_page)
    app.router.add_get("/widget.js", widget_script)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/openapi.json", openapi)
    chat_api.add_routes(app)
    staff_api.add_routes(app)
    app.router.add_get("/staff", static_page("staff/console.html"))
    app.router.add_get("/staff/report", static_page("staff/report.html"))
    if settings.demo_pages == "true":
        app.router.add_get("/demo/site", demo_page("site.html"))
        app.router.add_get("/demo/site/pricing", demo_page("pricing.html"))
        app.router.add_get("/demo/app", demo_page("app.html"))
    app.router.add_static("/static/", STATIC)
    return app
