"""The web service: chat API, widget and pane assets, pages and health, in front of Rasa.

`make_app(settings)` builds the aiohttp application. The HTTP session, the database
engine, the policy and the notification outbox are created in `cleanup_ctx` and
closed with the app. Errors are rendered by `bot.web.api.errors_middleware`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import html
import re
import signal
from typing import AsyncIterator, Awaitable, Callable
from urllib.parse import urlparse

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from bot.web import customer_api, live_api, staff_api
from bot.web.api import (
    ALLOWED_HOSTS,
    ALLOWED_ORIGINS,
    ASSISTANT,
    CALENDAR,
    CLIENT_LIMIT,
    CLOCK,
    CONVERSATION_LIMIT,
    HTTP,
    LIVE,
    MAX_BODY_BYTES,
    POLICY,
    READ_LIMIT,
    SETTINGS,
    STATIC,
    STORE,
    TRACKER,
    error_response,
    errors_middleware,
)
from bot.rasa_client import AssistantClient
from bot.google_calendar import calendar_from_settings
from bot.live import LiveHub, LiveService
from bot.live_store import LiveStore
from bot.notify import Notifier, run_outbox
from bot.web.openapi import Reply, Route, openapi_document
from bot.web.schemas import Health
from bot.policy import load_policy
from bot.web.ratelimit import RateLimiter
from bot.settings import Settings, replica_name
from bot.store import Store, StoreUnavailable
from bot.tracker_store import TrackerStore

CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'self'"
SERVER_NAME = "makana-support"  # no server software or version in `Server`

# The customer API: the only routes a page on another origin (the company's website
# or app, SUPPORT_ALLOWED_ORIGINS) may call. Never the staff API.
CUSTOMER_API = re.compile(r"^/api/(?:chat|status|me/tickets|conversations/[^/]+/.+)$")
CORS_METHODS = "GET, POST"
CORS_HEADERS = "Content-Type, X-Identity-Token"


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every response, errors and files included (an on_response_prepare signal)."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["Server"] = SERVER_NAME


def host_name(host: str) -> str:
    """The host part of a Host header value, without the port, lower-cased."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


@web.middleware
async def host_check(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Answer only to the configured host names: a DNS-rebinding page on another name
    that resolves to this server gets nothing."""
    if host_name(request.host or "") not in request.app[ALLOWED_HOSTS]:
        return error_response(
            421, "unknown_host", "This server does not answer to that host name (see SUPPORT_ALLOWED_HOSTS)."
        )
    return await handler(request)


@web.middleware
async def cors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """CORS for the customer API, for the exact origins configured; nothing for others.

    No credentials mode: the widget sends no cookies, its identity is a header.
    """
    if CUSTOMER_API.match(request.path) is None:
        return await handler(request)
    origin = request.headers.get("Origin")
    allowed = origin is not None and origin in request.app[ALLOWED_ORIGINS]
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        if not allowed:
            response = error_response(403, "origin_not_allowed", "This origin may not call the support API.")
        else:
            response = web.Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
            response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
            response.headers["Access-Control-Max-Age"] = "600"
    else:
        response = await handler(request)
    response.headers["Vary"] = "Origin"
    if allowed:
        response.headers["Access-Control-Allow-Origin"] = origin  # type: ignore[assignment]
        response.headers["Access-Control-Expose-Headers"] = "Retry-After"
    return response


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: each component up or down; 200 only when all are up."""
    app = request.app
    rasa, actions, database = await asyncio.gather(
        app[ASSISTANT].readiness(), customer_api.action_servers_up(app), customer_api.database_up(app)
    )
    components: dict[str, str] = {}
    for kind, states in (("rasa", rasa), ("actions", actions)):
        for i, up in enumerate(states):
            components[replica_name(kind, i, len(states))] = "up" if up else "down"
    components["database"] = "up" if database else "down"
    down = [name for name, state in components.items() if state == "down"]
    dead = 0
    if database:
        with contextlib.suppress(StoreUnavailable):
            dead = await app[STORE].dead_notifications()
    # Dead letters degrade the service (the team is not being told of some tickets) but do
    # not take it out of a load balancer: customers are still served. Down parts do (503).
    components["outbox"] = "degraded" if dead else "up"
    status = "down" if down else "degraded" if dead else "ok"
    body = {"status": status, "components": components, "down": down, "dead_notifications": dead}
    return web.json_response(body, status=200 if not down else 503)


async def index_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "chat.html")


# The widget's script: the Markdown renderer it shares with the staff console, then the
# widget itself, in one function scope (nothing is added to the embedding page's globals).
WIDGET_PARTS = ("rich-text.js", "widget.js")


def widget_bundle() -> str:
    parts = [(STATIC / name).read_text(encoding="utf-8") for name in WIDGET_PARTS]
    return "(function () {\n" + "\n".join(parts) + "\n})();\n"


async def widget_script(request: web.Request) -> web.Response:
    """GET /widget.js: the one script a site embeds to get the chat widget."""
    body = await asyncio.to_thread(widget_bundle)
    return web.Response(
        text=body, content_type="text/javascript", charset="utf-8", headers={"Cache-Control": "no-cache"}
    )


def demo_page(template: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A page of the company's (pretend) website or app that embeds the widget.

    Served by the demo site, on another origin than the support service, the way a
    real site embeds the widget: the script comes from the support service's public URL.
    """

    async def page(request: web.Request) -> web.Response:
        text = (STATIC / "demo" / template).read_text(encoding="utf-8")
        token = request.query.get("identity", "")
        support = html.escape(request.app[SETTINGS].public_url.rstrip("/"), quote=True)
        text = text.replace("{{support_url}}", support)
        return web.Response(text=text.replace("{{identity}}", html.escape(token, quote=True)), content_type="text/html")

    return page


async def demo_home(request: web.Request) -> web.Response:
    raise web.HTTPFound("/demo/site")


def make_demo_site(settings: Settings) -> web.Application:
    """The demo website and app, served on `demo_port` (another origin)."""
    app = web.Application(middlewares=[host_check])
    app[SETTINGS] = settings
    app[ALLOWED_HOSTS] = frozenset(settings.allowed_host_list)
    # What a company's own Content-Security-Policy needs to embed the widget: its script,
    # its stylesheet and its API calls come from the support service (README, "Security").
    support = urlparse(settings.public_url)
    support_origin = f"{support.scheme}://{support.netloc}"
    csp = (
        f"default-src 'self'; script-src 'self' {support_origin}; style-src 'self' {support_origin}; "
        f"connect-src 'self' {support_origin}; img-src 'self' data:; frame-ancestors 'self'"
    )

    async def demo_headers(request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Content-Security-Policy"] = csp
        await security_headers(request, response)

    app.on_response_prepare.append(demo_headers)
    app.router.add_get("/", demo_home)
    app.router.add_get("/demo/site", demo_page("site.html"))
    app.router.add_get("/demo/site/pricing", demo_page("pricing.html"))
    app.router.add_get("/demo/app", demo_page("app.html"))
    app.router.add_static("/static/demo/", STATIC / "demo")
    return app


class RouteAccessLogger(AbstractAccessLogger):
    """Logs the route, not the path: conversation ids and ticket numbers are keys, and a
    log must not keep them (nor an email, nor a query string)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        route = "-"
        match_info = getattr(request, "match_info", None)
        if match_info is not None and match_info.route.resource is not None:
            route = match_info.route.resource.canonical
        self.logger.info("%s %s %s %.0f ms", request.method, route, response.status, time * 1000)


async def serve(settings: Settings) -> None:
    """`python -m bot web`: the web service, and the demo site when it is on, until a signal."""
    sites: list[tuple[web.Application, str, int]] = [(make_app(settings), settings.host, settings.web_port)]
    if settings.demo_pages:
        sites.append((make_demo_site(settings), settings.host, settings.demo_port))
    runners = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        for app, host, port in sites:
            runner = web.AppRunner(app, access_log_class=RouteAccessLogger)
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, host, port).start()
        await stop.wait()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


def static_page(path: str) -> Callable[[web.Request], Awaitable[web.FileResponse]]:
    async def page(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / path)

    return page


HEALTH = Route("GET", "/healthz", healthz, "Health of Rasa, the action server and the database",
                replies={200: Reply("All components up (the outbox may be degraded)", Health),
                         503: Reply("At least one component down (named in `down`)", Health)})
# Every documented route: what /api/openapi.json describes (bot/web/openapi.py).
ROUTES = (*customer_api.ROUTES, *staff_api.ROUTES, *live_api.ROUTES, HEALTH)
OPENAPI = web.AppKey("openapi", dict)


async def openapi(request: web.Request) -> web.Response:
    """GET /api/openapi.json: the document generated for this app's settings."""
    return web.json_response(request.app[OPENAPI])


def make_app(settings: Settings, clock: Callable[[], dt.datetime] | None = None) -> web.Application:
    """Build the web service for `settings` (nothing is connected until it starts)."""
    app = web.Application(middlewares=[host_check, cors, errors_middleware], client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app[CLOCK] = clock or (lambda: dt.datetime.now(dt.timezone.utc))
    app[CONVERSATION_LIMIT] = RateLimiter(settings.rate_per_conversation, settings.rate_burst_conversation)
    app[CLIENT_LIMIT] = RateLimiter(settings.rate_per_client, settings.rate_burst_client)
    app[READ_LIMIT] = RateLimiter(settings.rate_reads_per_client, settings.rate_burst_reads_client)
    app[ALLOWED_ORIGINS] = frozenset(settings.allowed_origin_list)
    app[ALLOWED_HOSTS] = frozenset(settings.allowed_host_list)
    app[OPENAPI] = openapi_document(ROUTES, settings)
    app.on_response_prepare.append(security_headers)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        app[POLICY] = load_policy(settings.policy_path)
        session = aiohttp.ClientSession()
        app[HTTP] = session
        app[ASSISTANT] = AssistantClient(
            session, settings.rasa_url_list, settings.rasa_timeout_s, token=settings.rasa_token
        )
        app[STORE] = await Store.open(settings.database_url)
        app[TRACKER] = TrackerStore.open(settings.tracker_store_url)
        app[CALENDAR] = calendar_from_settings(settings)
        hub = LiveHub()
        await hub.start(settings.database_url)
        app[LIVE] = LiveService(
            app[STORE], LiveStore(app[STORE].engine), app[ASSISTANT], app[POLICY], hub,
            dt.timedelta(seconds=settings.live_presence_stale_s), dt.timedelta(seconds=settings.live_wait_timeout_s),
        )
        notifier = Notifier(settings, app[POLICY], session)
        outbox = asyncio.create_task(run_outbox(app[STORE], notifier, settings.outbox_interval_s, app[CLOCK]))
        yield
        outbox.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await outbox
        await hub.close()
        await app[TRACKER].close()
        await app[STORE].close()
        await session.close()

    app.cleanup_ctx.append(resources)
    app.router.add_get("/", index_page)
    app.router.add_get("/widget.js", widget_script)
    HEALTH.add_to(app)
    app.router.add_get("/api/openapi.json", openapi)
    customer_api.add_routes(app)
    staff_api.add_routes(app)
    live_api.add_routes(app)
    app.router.add_get("/staff", static_page("staff/console.html"))
    app.router.add_get("/staff/report", static_page("staff/report.html"))
    app.router.add_get("/staff/live", static_page("staff/live.html"))
    app.router.add_static("/static/", STATIC)
    return app
