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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, Awaitable, Callable

from aiohttp import web

from bot.policy_answers import format_time
from bot.web.api import ALLOWED_ORIGINS, ASSISTANT, LIVE, CLOCK, POLICY, SENDER_RE, SENDER_RULE, ApiError, read_json_object
from bot.web.customer_api import CHANNELS, enforce_read_limit, enforce_rate_limits
from bot.live import LiveService, LiveUnavailable
from bot.live_store import END_REASONS, QUEUE, ChatConflict, ChatNotFound, LiveChat, severity_rank
from bot.web.staff_api import STAFF_TOKENS, staff_member
from bot.transcripts import conversation_turns

MAX_AGENT_CHARS = 4000
MAX_CLIENT_ID_CHARS = 64
KEEPALIVE_S = 10.0  # a comment line on idle streams (proxies close silent ones); also a re-check
STREAM_MAX_S = 300.0  # streams end after this; the client reconnects with its last seq
MAX_ID = 2**53  # ids and seqs above this are refused before they reach the database (64-bit columns)
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


def _client_id(body: dict[str, Any]) -> str | None:
    value = body.get("client_id")
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_CLIENT_ID_CHARS:
        raise ApiError(
            422, "invalid_client_id", f"`client_id` must be a string of 1 to {MAX_CLIENT_ID_CHARS} characters."
        )
    return value


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
    body = await read_json_object(request)
    channel = body.get("channel", "web_chat")
    if channel not in CHANNELS:
        raise ApiError(422, "invalid_channel", f"`channel` must be one of {', '.join(CHANNELS)}.")
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
    body = await read_json_object(request)
    ticket = body.get("ticket", False)
    if not isinstance(ticket, bool):
        raise ApiError(422, "invalid_ticket", "`ticket` must be true or false.")
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


async def customer_signal(request: web.Request) -> web.Response:
    """typing, or read up to a seq."""
    sender = _sender(request)
    kind = request.match_info["kind"]
    body = await read_json_object(request) if request.can_read_body else {}
    service, now = request.app[LIVE], request.app[CLOCK]()
    chat = await service.live.open_for(sender)
    if chat is None:
        raise ApiError(404, "no_live_chat", "This conversation has no open live chat.")
    text = _read_seq(body) if kind == "read" else None
    event = await service.live.append(chat.id, kind, "customer", None, text, now)
    service.changed(chat.id)
    return web.json_response({"seq": event.seq})


def _read_seq(body: dict[str, Any]) -> str:
    seq = body.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= MAX_ID:
        raise ApiError(422, "invalid_seq", "`seq` must be the whole number of the last message read.")
    return str(seq)


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
    body = await read_json_object(request)
    status = body.get("status")
    if status not in ("online", "away"):
        raise ApiError(422, "invalid_presence", "`status` must be online or away.")
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
    body = await read_json_object(request)
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ApiError(422, "invalid_text", "`text` must be the message to send, not empty.")
    if len(text) > MAX_AGENT_CHARS:
        raise ApiError(413, "message_too_long", f"`text` has {len(text)} characters; the limit is {MAX_AGENT_CHARS}.")
    event = await service.agent_message(_chat_id(request), agent, text.strip(), _client_id(body), request.app[CLOCK]())
    return web.json_response({"event": event.to_json()}, status=201)


@agent_endpoint
async def agent_signal(request: web.Request, agent: str, service: LiveService) -> web.Response:
    kind = request.match_info["kind"]
    body = await read_json_object(request) if request.can_read_body else {}
    text = _read_seq(body) if kind == "read" else None
    chat_id = _chat_id(request)
    event = await service.live.append(chat_id, kind, "agent", agent, text, request.app[CLOCK](), agent=agent)
    service.changed(chat_id)
    return web.json_response({"seq": event.seq})


@agent_endpoint
async def agent_transfer(request: web.Request, agent: str, service: LiveService) -> web.Response:
    body = await read_json_object(request)
    to = body.get("to")
    if not isinstance(to, str) or to not in request.app[STAFF_TOKENS]:
        raise ApiError(422, "invalid_agent", f"`to` must be one of: {', '.join(sorted(request.app[STAFF_TOKENS]))}.")
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


def add_routes(app: web.Application) -> None:
    base = "/api/conversations/{sender}/live"
    app.router.add_get(base, customer_state)
    app.router.add_post(base, customer_start)
    app.router.add_post(base + "/leave", customer_leave)
    app.router.add_get(base + "/events", customer_events)
    app.router.add_get(base + "/stream", customer_stream)
    app.router.add_post(base + "/{kind:typing|read}", customer_signal)
    staff = "/api/staff/live"
    app.router.add_get(staff, agent_queue)
    app.router.add_post(staff + "/presence", agent_presence)
    app.router.add_get(staff + "/{chat_id:\\d+}", agent_chat)
    app.router.add_post(staff + "/{chat_id:\\d+}/claim", agent_claim)
    app.router.add_post(staff + "/{chat_id:\\d+}/messages", agent_message)
    app.router.add_post(staff + "/{chat_id:\\d+}/{kind:typing|read}", agent_signal)
    app.router.add_post(staff + "/{chat_id:\\d+}/transfer", agent_transfer)
    app.router.add_post(staff + "/{chat_id:\\d+}/handback", agent_finish("handed_back"))
    app.router.add_post(staff + "/{chat_id:\\d+}/end", agent_finish("ended"))
    app.router.add_get(staff + "/{chat_id:\\d+}/events", agent_events)
    app.router.add_get(staff + "/{chat_id:\\d+}/stream", agent_stream)
