"""HTTP side of live chat (bot/live.py): the customer's and the agent's endpoints.

Customer (the conversation id is the key, as for history):
- ``GET  /api/conversations/{sender}/live``: availability, the current chat, its events.
- ``POST /api/conversations/{sender}/live``: "Chat with an agent now" (409 when nobody can).
- ``POST /api/conversations/{sender}/live/leave``: stop waiting; ``{"ticket": true}`` goes on
  to the ticket form with everything said so far kept.
- ``GET  /api/conversations/{sender}/live/events?after=N``: polling fallback.
- ``GET  /api/conversations/{sender}/live/stream?after=N``: server-sent events (also
  ``Last-Event-ID``); each event's id is its seq, so a reconnect resumes where it stopped.
- ``POST /api/conversations/{sender}/live/typing`` and ``.../read {"seq"}``.
Customer messages themselves go through ``POST /api/chat`` (redacted there).

Agents (staff bearer token on every endpoint): ``/api/staff/live`` (queue and presence),
``/presence``, ``/{id}`` (chat with the bot transcript so far), ``/{id}/claim``,
``/messages``, ``/typing``, ``/read``, ``/handback``, ``/transfer``, ``/end``,
``/events`` and ``/stream``.

Bodies are validated with the models of bot/web/schemas.py; `ROUTES` declares each route
for the router and the generated OpenAPI document (bot/web/openapi.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated, Any, Awaitable, Callable

from aiohttp import web
from pydantic import Field

from bot.policy_answers import format_time
from bot.web.api import (
    ALLOWED_ORIGINS,
    ASSISTANT,
    CLOCK,
    LIVE,
    POLICY,
    SENDER_RE,
    SENDER_RULE,
    ApiError,
    read_body,
    read_json_object,
    valid_body,
)
from bot.web.customer_api import enforce_read_limit, enforce_rate_limits
from bot.live import LiveService, LiveUnavailable
from bot.live_store import END_REASONS, QUEUE, ChatConflict, ChatNotFound, LiveChat, severity_rank
from bot.web.staff_api import STAFF_TOKENS, staff_member
from bot.transcripts import conversation_turns
from bot.web.openapi import Handler, Param, Reply, Route
from bot.web.schemas import (
    MAX_ID,
    AgentChat,
    AgentMessage,
    AgentQueue,
    ChatState,
    LiveEvents,
    LiveLeave,
    LiveLeft,
    LiveStart,
    LiveState,
    PresenceChange,
    Presence,
    Queued,
    ReadUpTo,
    Sender,
    Seq,
    Sent,
    Signalled,
    Transfer,
)

KEEPALIVE_S = 10.0  # a comment line on idle streams (proxies close silent ones); also a re-check
STREAM_MAX_S = 300.0  # streams end after this; the client reconnects with its last seq
UNAVAILABLE_TEXT = {
    "closed": "Our team is not in right now.",
    "nobody_online": "Nobody from our team is online to chat right now.",
}


def _sender(request: web.Request) -> str:
    sender = request.match_info["sender"]
    if not SENDER_RE.match(sender):
        raise ApiError(422, "invalid_sender", f"The conversation id must be {SENDER_RULE}.")
    return sender


def _after(request: web.Request) -> int:
    raw = request.headers.get("Last-Event-ID") or request.query.get("after") or "0"
    try:
        after = int(raw)
    except ValueError:
        raise ApiError(422, "invalid_after", "`after` (or Last-Event-ID) must be a whole number, the last seq seen.") from None
    if not 0 <= after <= MAX_ID:
        raise ApiError(422, "invalid_after", f"`after` must be a seq from 0 to {MAX_ID}.")
    return after


async def _customer_chat(request: web.Request, sender: str) -> LiveChat:
    chat = await request.app[LIVE].live.latest_for(sender)
    if chat is None:
        raise ApiError(404, "no_live_chat", "This conversation has no live chat.")
    return chat


def _unavailable(request: web.Request, exc: LiveUnavailable) -> ApiError:
    text = UNAVAILABLE_TEXT.get(exc.reason, "Nobody can chat right now.")
    if exc.next_opening is not None:
        text += f" We are back {format_time(request.app[POLICY], exc.next_opening, request.app[CLOCK]())}."
    return ApiError(409, f"live_{exc.reason}", text + " Leave a ticket and we will answer by email.")


# -- customer ----------------------------------------------------------------------


async def customer_state(request: web.Request) -> web.Response:
    sender = _sender(request)
    enforce_read_limit(request)
    service, now = request.app[LIVE], request.app[CLOCK]()
    state = await service.availability(now)
    chat = await service.live.open_for(sender)
    body: dict[str, Any] = {
        "available": state.available,
        "reason": state.reason,
        "next_opening": state.next_opening.isoformat() if state.next_opening else None,
        "chat": None,
        "events": [],
        "queue": None,
    }
    if chat is not None:
        body["chat"] = chat.to_json()
        body["events"] = [e.to_json() for e in await service.live.events_after(chat.id, 0)]
        body["queue"] = await service.queue_info(chat, now)
    return web.json_response(body)


async def customer_start(request: web.Request) -> web.Response:
    sender = _sender(request)
    enforce_rate_limits(request, sender)
    channel = (await read_body(request, LiveStart)).channel
    service, now = request.app[LIVE], request.app[CLOCK]()
    try:
        chat = await service.start(sender, channel, now)
    except LiveUnavailable as exc:
        raise _unavailable(request, exc) from None
    return web.json_response({"chat": chat.to_json(), "queue": await service.queue_info(chat, now)}, status=201)


async def customer_leave(request: web.Request) -> web.Response:
    """Stop waiting (or leave the chat); with "ticket" the bot's ticket form starts."""
    sender = _sender(request)
    enforce_rate_limits(request, sender)
    ticket = (await read_body(request, LiveLeave)).ticket
    service, now = request.app[LIVE], request.app[CLOCK]()
    chat = await service.live.open_for(sender)
    if chat is None:
        raise ApiError(404, "no_live_chat", "This conversation has no open live chat.")
    try:
        chat = await service.finish(chat.id, "ticket" if ticket else "cancelled", now)
    except ChatConflict as exc:
        raise ApiError(409, "live_chat_ended", str(exc)) from None
    replies: list[dict[str, Any]] = []
    if ticket:
        # Straight to the form: the offer to chat is not made again (action_request_human).
        metadata = {"channel": chat.channel, "live_declined": True}
        replies = [r.to_json() for r in await request.app[ASSISTANT].send(sender, "/request_human", metadata)]
    return web.json_response({"chat": chat.to_json(), "messages": replies})


async def customer_events(request: web.Request) -> web.Response:
    sender = _sender(request)
    enforce_read_limit(request)
    chat = await _customer_chat(request, sender)
    return await _events_response(request, chat, _after(request), with_queue=True)


async def customer_stream(request: web.Request) -> web.StreamResponse:
    sender = _sender(request)
    enforce_read_limit(request)
    chat = await _customer_chat(request, sender)
    return await _stream(request, chat.id, _after(request), with_queue=True)


def customer_signal(kind: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """typing, or read up to a seq."""

    async def signal(request: web.Request) -> web.Response:
        sender = _sender(request)
        body = await read_json_object(request) if request.can_read_body else {}
        service, now = request.app[LIVE], request.app[CLOCK]()
        chat = await service.live.open_for(sender)
        if chat is None:
            raise ApiError(404, "no_live_chat", "This conversation has no open live chat.")
        text = _read_seq(body) if kind == "read" else None
        event = await service.live.append(chat.id, kind, "customer", None, text, now)
        service.changed(chat.id)
        return web.json_response({"seq": event.seq})

    return signal


def _read_seq(body: dict[str, Any]) -> str:
    return str(valid_body(ReadUpTo, body).seq)


# -- streams -----------------------------------------------------------------------


async def _events_response(request: web.Request, chat: LiveChat, after: int, with_queue: bool) -> web.Response:
    service = request.app[LIVE]
    events = await service.live.events_after(chat.id, after)
    chat = await service.live.get(chat.id)
    body: dict[str, Any] = {"chat": chat.to_json(), "events": [e.to_json() for e in events]}
    if with_queue:
        body["queue"] = await service.queue_info(chat, request.app[CLOCK]())
    return web.json_response(body)


def _sse(event: str, data: Any, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _stream(request: web.Request, chat_id: int, after: int, with_queue: bool) -> web.StreamResponse:
    """Server-sent events of one chat from seq `after` on: `live` (id = seq) and, for a
    waiting customer, `queue`. Ends when the chat has ended and everything was sent."""
    service = request.app[LIVE]
    headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    origin = request.headers.get("Origin")
    if origin is not None and origin in request.app[ALLOWED_ORIGINS]:
        headers |= {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}  # sent before the cors middleware runs
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    wake = service.hub.subscribe(chat_id, QUEUE) if with_queue else service.hub.subscribe(chat_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STREAM_MAX_S
    last_queue: dict[str, Any] | None = None
    status: str | None = None
    try:
        await response.write(b"retry: 1000\n\n")
        while True:
            wake.clear()  # before reading: a write after the read sets it again
            events = await service.live.events_after(chat_id, after)
            for event in events:
                await response.write(_sse("live", event.to_json(), event.seq))
                after = event.seq
            # Messages alone do not change a claimed chat's state: no need to read it again.
            if not events or status in (None, "waiting") or any(e.kind == "status" for e in events):
                chat = await service.live.get(chat_id)
                status = chat.status
                if with_queue and chat.status == "waiting":
                    queue = await service.queue_info(chat, request.app[CLOCK]())
                    queue.pop("waited_s")
                    if queue != last_queue:
                        await response.write(_sse("queue", queue))
                        last_queue = queue
                # An ended chat's stream closes once its closing status event was sent
                # (written after the ticket), or, should that never come, a while after the end.
                if chat.status == "ended" and after >= chat.last_seq:
                    last = await service.live.events_after(chat_id, chat.last_seq - 1)
                    closed = bool(last) and last[0].kind == "status" and last[0].text in END_REASONS
                    if closed or (chat.ended_at and (request.app[CLOCK]() - chat.ended_at).total_seconds() > 30):
                        break
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(wake.wait(), timeout=min(KEEPALIVE_S, remaining))
            except asyncio.TimeoutError:
                await response.write(b": keepalive\n\n")
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        service.hub.unsubscribe(wake)
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


# -- agents ------------------------------------------------------------------------


def _chat_id(request: web.Request) -> int:
    raw = request.match_info["chat_id"]
    if len(raw) > 16 or int(raw) > MAX_ID:  # the route allows digits only
        raise ApiError(404, "no_live_chat", "No such live chat.")
    return int(raw)


def agent_endpoint(
    handler: Callable[[web.Request, str, LiveService], Awaitable[web.Response]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Staff token first; chat errors as JSON."""

    async def wrapped(request: web.Request) -> web.Response:
        agent = staff_member(request)
        try:
            return await handler(request, agent, request.app[LIVE])
        except ChatNotFound:
            raise ApiError(404, "no_live_chat", "No such live chat.") from None
        except ChatConflict as exc:
            raise ApiError(409, "live_chat_conflict", str(exc)) from None

    return wrapped


async def _chat_summary(service: LiveService, chat: LiveChat, now: Any) -> dict[str, Any]:
    body = chat.to_json()
    body["waited_s"] = round(((chat.claimed_at or now) - chat.requested_at).total_seconds())
    body["severity_rank"] = severity_rank(chat.severity)
    body["position"] = await service.live.queue_position(chat)
    return body


@agent_endpoint
async def agent_queue(request: web.Request, agent: str, service: LiveService) -> web.Response:
    now = request.app[CLOCK]()
    chats = await service.live.active()
    state = await service.availability(now)
    return web.json_response({
        "me": agent,
        "agents": sorted(request.app[STAFF_TOKENS]),
        "presence": await service.live.presence(now, service.presence_stale),
        "available": state.available,
        "reason": state.reason,
        "chats": [await _chat_summary(service, c, now) for c in chats],
    })


@agent_endpoint
async def agent_presence(request: web.Request, agent: str, service: LiveService) -> web.Response:
    status = (await read_body(request, PresenceChange)).status
    await service.live.set_presence(agent, status, request.app[CLOCK]())
    service.changed(QUEUE)
    return web.json_response({"agent": agent, "status": status})


@agent_endpoint
async def agent_chat(request: web.Request, agent: str, service: LiveService) -> web.Response:
    chat = await service.live.get(_chat_id(request))
    tracker = await request.app[ASSISTANT].tracker(chat.conversation_id)
    before = [e for e in tracker.get("events") or [] if float(e.get("timestamp") or 0) < chat.requested_at.timestamp()]
    body = await _chat_summary(service, chat, request.app[CLOCK]())
    body["bot_transcript"] = conversation_turns(before, redacted=True)
    body["events"] = [e.to_json() for e in await service.live.events_after(chat.id, 0)]
    return web.json_response(body)


@agent_endpoint
async def agent_claim(request: web.Request, agent: str, service: LiveService) -> web.Response:
    chat = await service.live.claim(_chat_id(request), agent, request.app[CLOCK]())
    service.changed(chat.id, queue=True)
    return web.json_response({"chat": chat.to_json()})


@agent_endpoint
async def agent_message(request: web.Request, agent: str, service: LiveService) -> web.Response:
    body = await read_body(request, AgentMessage)
    event = await service.agent_message(_chat_id(request), agent, body.text, body.client_id, request.app[CLOCK]())
    return web.json_response({"event": event.to_json()}, status=201)


def agent_signal(kind: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    @agent_endpoint
    async def signal(request: web.Request, agent: str, service: LiveService) -> web.Response:
        body = await read_json_object(request) if request.can_read_body else {}
        text = _read_seq(body) if kind == "read" else None
        chat_id = _chat_id(request)
        event = await service.live.append(chat_id, kind, "agent", agent, text, request.app[CLOCK](), agent=agent)
        service.changed(chat_id)
        return web.json_response({"seq": event.seq})

    return signal


@agent_endpoint
async def agent_transfer(request: web.Request, agent: str, service: LiveService) -> web.Response:
    agents = ", ".join(sorted(request.app[STAFF_TOKENS]))
    to = (await read_body(request, Transfer, agents=agents)).to
    if to not in request.app[STAFF_TOKENS]:
        raise ApiError(422, "invalid_agent", f"`to` must be one of: {agents}.")
    chat = await service.live.transfer(_chat_id(request), agent, to, request.app[CLOCK]())
    service.changed(chat.id, queue=True)
    return web.json_response({"chat": chat.to_json()})


def agent_finish(reason: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    @agent_endpoint
    async def finish(request: web.Request, agent: str, service: LiveService) -> web.Response:
        chat = await service.finish(_chat_id(request), reason, request.app[CLOCK](), agent=agent)
        return web.json_response({"chat": chat.to_json()})

    return finish


@agent_endpoint
async def agent_events(request: web.Request, agent: str, service: LiveService) -> web.Response:
    chat = await service.live.get(_chat_id(request))
    return await _events_response(request, chat, _after(request), with_queue=False)


async def agent_stream(request: web.Request) -> web.StreamResponse:
    staff_member(request)
    try:
        chat = await request.app[LIVE].live.get(_chat_id(request))
    except ChatNotFound:
        raise ApiError(404, "no_live_chat", "No such live chat.") from None
    return await _stream(request, chat.id, _after(request), with_queue=False)


CUSTOMER = "/api/conversations/{sender}/live"
STAFF = "/api/staff/live"
SENDER = Param("sender", "path", Sender)
CHAT_ID = Param("chat_id", "path", Annotated[int, Field(ge=0)], route_pattern=r"\d+")
AFTER = (
    Param("after", "query", Seq, "The last seq seen; only later events are sent"),
    Param("Last-Event-ID", "header", Annotated[str, Field(pattern="^[0-9]{1,18}$")],
          "Sent by EventSource on reconnect; wins over `after`"),
)
EVENT_STREAM = Reply("Server-sent events: `live` (id = seq, data = a live event) and, for a waiting customer, "
                     "`queue`; the stream ends when the chat has ended or after five minutes",
                     media_type="text/event-stream")
CONFLICT = "The chat is not in a state that allows this (claimed by someone else, ended)"


def agent_route(method: str, path: str, handler: Handler, summary: str, **declared: Any) -> Route:
    """An agent's route on one chat: staff token, the chat id, 404 for an unknown chat, 409 on conflict."""
    replies = {409: CONFLICT, **declared.pop("replies")}
    return Route(method, STAFF + "/{chat_id}" + path, handler, summary, staff=True, replies=replies,
                 params=(CHAT_ID, *declared.pop("params", ())), errors=(404, *declared.pop("errors", ())), **declared)


ROUTES = (
    Route("GET", CUSTOMER, customer_state,
          "Whether an agent can chat now, and the conversation's open live chat with its events",
          params=(SENDER,), replies={200: LiveState}, errors=(422, 429)),
    Route("POST", CUSTOMER, customer_start, "Ask to chat with an agent now (409 outside hours or when nobody is online)",
          params=(SENDER,), body=LiveStart,
          replies={201: Reply("Queued", Queued), 409: "No agent can chat now; the message says when the team is back"},
          errors=(400, 408, 413, 415, 422, 429)),
    Route("POST", CUSTOMER + "/leave", customer_leave,
          "Stop waiting or leave the chat; with `ticket` the assistant's ticket form starts, what was said kept",
          params=(SENDER,), body=LiveLeave, replies={200: LiveLeft, 409: "The chat has ended"},
          errors=(400, 404, 408, 413, 415, 422, 429)),
    Route("GET", CUSTOMER + "/events", customer_events, "The chat's events after a seq (polling fallback of the stream)",
          params=(SENDER, *AFTER), replies={200: LiveEvents}, errors=(404, 422, 429)),
    Route("GET", CUSTOMER + "/stream", customer_stream, "The chat's events as server-sent events",
          params=(SENDER, *AFTER), replies={200: EVENT_STREAM}, errors=(404, 422, 429)),
    Route("POST", CUSTOMER + "/typing", customer_signal("typing"), "The customer is typing",
          params=(SENDER,), replies={200: Signalled}, errors=(400, 404, 408, 413, 415, 422)),
    Route("POST", CUSTOMER + "/read", customer_signal("read"), "The customer has read the agent's messages up to a seq",
          params=(SENDER,), body=ReadUpTo, replies={200: Signalled}, errors=(400, 404, 408, 413, 415, 422)),
    Route("GET", STAFF, agent_queue, "The live-chat queue and open chats, the agents and their presence",
          replies={200: AgentQueue}, staff=True),
    Route("POST", STAFF + "/presence", agent_presence, "Set the agent's presence",
          body=PresenceChange, replies={200: Presence}, errors=(400, 408, 413, 415, 422), staff=True),
    agent_route("GET", "", agent_chat,
                "One chat: its state, the assistant's transcript before it (redacted) and its events",
                replies={200: AgentChat}),
    agent_route("POST", "/claim", agent_claim, "Take a waiting chat (exactly one agent wins)", replies={200: ChatState}),
    agent_route("POST", "/messages", agent_message,
                "Send a message to the customer (a repeated `client_id` is relayed once)",
                body=AgentMessage, replies={201: Reply("Sent", Sent)}, errors=(400, 408, 413, 415, 422)),
    agent_route("POST", "/typing", agent_signal("typing"), "The agent is typing",
                replies={200: Signalled}, errors=(400, 408, 413, 415)),
    agent_route("POST", "/read", agent_signal("read"), "The agent has read the customer's messages up to a seq",
                body=ReadUpTo, replies={200: Signalled}, errors=(400, 408, 413, 415, 422)),
    agent_route("POST", "/transfer", agent_transfer, "Hand the chat to another agent",
                body=Transfer, replies={200: ChatState}, errors=(400, 408, 413, 415, 422)),
    agent_route("POST", "/handback", agent_finish("handed_back"),
                "Hand the customer back to the assistant (records the chat as a resolved ticket)",
                replies={200: ChatState}),
    agent_route("POST", "/end", agent_finish("ended"),
                "End the chat (records it as a resolved ticket; the customer is asked for a rating)",
                replies={200: ChatState}),
    agent_route("GET", "/events", agent_events, "The chat's events after a seq (polling fallback of the stream)",
                params=AFTER, replies={200: LiveEvents}, errors=(422,)),
    agent_route("GET", "/stream", agent_stream, "The chat's events as server-sent events",
                params=AFTER, replies={200: EVENT_STREAM}, errors=(422,)),
)


def add_routes(app: web.Application) -> None:
    for route in ROUTES:
        route.add_to(app)
