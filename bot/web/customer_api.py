"""The customer-facing JSON API used by the chat page, the widget and the in-app pane.

- ``POST /api/chat``: send a message, get the assistant's replies.
- ``GET /api/conversations/{sender}/history``: the conversation so far.
- ``GET /api/status``: open or closed now, when the team is back, maintenance notices.
- ``GET /api/me/tickets``: the verified in-app user's tickets.

Bodies are validated with the models of bot/web/schemas.py; `ROUTES` declares each route
for the router and the generated OpenAPI document (bot/web/openapi.py). Messages are
rate-limited per conversation and per client address. An in-app identity token is
verified here, the trust boundary: only then do name and email reach the assistant (as
message metadata).
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web

from bot.web import identity
from bot.policy_answers import status_text
from bot.clock import customer_zone, format_span, format_time
from bot.serializers import ticket_for_customer
from bot.web.api import (
    ASSISTANT,
    CLIENT_LIMIT,
    CLOCK,
    CONVERSATION_LIMIT,
    HTTP,
    LIVE,
    POLICY,
    NOT_YOUR_TICKET,
    READ_LIMIT,
    RESTARTING,
    SENDER_RE,
    SENDER_RULE,
    SETTINGS,
    STORE,
    ApiError,
    read_body,
)
from bot.rasa_client import AssistantUnavailable
from bot.invite import invitation
from bot.redaction import notice, redact_message
from bot.store import RatingRefused, StoreUnavailable
from bot.tickets import may_see
from bot.web.openapi import Param, Reply, Route
from bot.web.schemas import (
    ChatReply,
    History,
    MyTickets,
    PendingRatings,
    Rated,
    RatingRequest,
    Sender,
    SupportStatus,
    chat_request,
)
from bot.transcripts import conversation_turns

IDENTITY_HEADER = "X-Identity-Token"


def client_address(request: web.Request) -> str:
    """The client's address: the connection's, or, behind N trusted proxies, the one the
    outermost trusted proxy saw (N hops from the right of X-Forwarded-For). Addresses
    further left were written by the client and prove nothing."""
    hops = request.app[SETTINGS].trusted_proxies
    if hops:
        forwarded = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",") if a.strip()]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.remote or "unknown"


def enforce_rate_limits(request: web.Request, sender: str) -> None:
    for limiter, key, what in (
        (request.app[CLIENT_LIMIT], client_address(request), "from your address"),
        (request.app[CONVERSATION_LIMIT], sender, "in this conversation"),
    ):
        wait = limiter.check(key)
        if wait > 0:
            retry = max(1, round(wait))
            raise web.HTTPTooManyRequests(
                text=f"Too many messages {what}; please wait {retry} s and try again.",
                headers={"Retry-After": str(retry)},
            )


def enforce_read_limit(request: web.Request) -> None:
    """Reads keyed by a secret id (history, ratings, invitations, my tickets): per client."""
    wait = request.app[READ_LIMIT].check(client_address(request))
    if wait > 0:
        retry = max(1, round(wait))
        raise web.HTTPTooManyRequests(
            text=f"Too many requests from your address; please wait {retry} s and try again.",
            headers={"Retry-After": str(retry)},
        )


def verified_identity(request: web.Request, token: str | None) -> identity.Identity | None:
    """The identity in `token` (None when absent); a bad token is a 401 saying why."""
    if not token:
        return None
    try:
        return identity.verify(request.app[SETTINGS].identity_secret, token, request.app[CLOCK]())
    except identity.IdentityError as exc:
        raise ApiError(401, "invalid_identity", f"{exc}. Continue without it to chat anonymously.") from None


async def action_servers_up(app: web.Application) -> list[bool]:
    """For each action server, whether it answers its health check."""

    async def up(url: str) -> bool:
        try:
            async with app[HTTP].get(url.rstrip("/") + "/health", timeout=aiohttp.ClientTimeout(total=2)) as response:
                return response.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return False

    return list(await asyncio.gather(*(up(url) for url in app[SETTINGS].actions_url_list)))


async def database_up(app: web.Application) -> bool:
    """Whether the database answers a trivial query within 2 s."""
    try:
        await asyncio.wait_for(app[STORE].ping(), timeout=2)
    except (StoreUnavailable, asyncio.TimeoutError):
        return False
    return True


async def message_stored(app: web.Application, sender: str, message: str) -> bool:
    """Whether the conversation's latest customer message in Rasa's tracker is `message`."""
    events = (await app[ASSISTANT].tracker(sender)).get("events") or []
    latest = next((e for e in reversed(events) if isinstance(e, dict) and e.get("event") == "user"), None)
    return latest is not None and latest.get("text") == message


async def chat(request: web.Request) -> web.Response:
    """POST /api/chat: deliver one customer message, answer with the bot's replies.

    Secrets the customer typed (card numbers, passwords, keys) are removed here, before
    the message reaches Rasa, so that no store, history, ticket or report can keep them;
    the customer is told once, in the first reply.
    """
    body = await read_body(request, chat_request(request.app[SETTINGS]))
    sender = body.sender
    who = verified_identity(request, body.identity)
    enforce_rate_limits(request, sender)
    redaction = redact_message(body.message)
    message = redaction.text
    metadata: dict[str, Any] = {"channel": body.channel}
    if body.timezone:
        metadata["timezone"] = body.timezone
    if who is not None:
        # Sealed for this conversation: the action server checks the seal itself.
        metadata["identity"] = identity.seal(request.app[SETTINGS].identity_secret, sender, who)
    if not await database_up(request.app):
        # Rasa's tracker store lives in the same database server as the tickets. When it
        # cannot be read, Rasa does not fail: its FailSafeTrackerStore carries on with an
        # empty conversation in that server's memory, so a half-filled form would silently
        # vanish ("yes" at the summary got "I didn't understand"). Refuse; it is resent.
        raise AssistantUnavailable("the database does not answer")
    live = await request.app[LIVE].relay_customer(sender, message, body.client_id, request.app[CLOCK]())
    if live is not None:
        # A person has (or is about to take) the chat: the bot is paused (bot/live.py).
        chat, event = live
        notices = [{"text": notice(redaction.kinds), "buttons": []}] if redaction.changed else []
        return web.json_response({
            "sender": sender, "messages": notices, "stored_message": message if redaction.changed else None,
            "live": {"chat_id": chat.id, "status": chat.status, "seq": event.seq},
        })
    replies = [r.to_json() for r in await request.app[ASSISTANT].send(sender, message, metadata)]
    if not replies:
        if not all(await action_servers_up(request.app)):
            # Rasa keeps the message (and any form answer) but cannot act on it now.
            replies = [{"text": RESTARTING, "buttons": []}]
        elif not await message_stored(request.app, sender, message):
            # Rasa's REST channel answers 200 and nothing when it fails before storing the
            # message (its lock store or tracker store is down): say so, so that it is resent.
            raise AssistantUnavailable("Rasa answered nothing and did not store the message")
    if redaction.changed:
        replies.insert(0, {"text": notice(redaction.kinds), "buttons": []})
    return web.json_response(
        {"sender": sender, "messages": replies, "stored_message": message if redaction.changed else None}
    )


async def history(request: web.Request) -> web.Response:
    """GET /api/conversations/{sender}/history: the turns so far, oldest first."""
    sender = request.match_info["sender"]
    if not SENDER_RE.match(sender):
        raise ApiError(422, "invalid_sender", f"The conversation id must be {SENDER_RULE}.")
    enforce_read_limit(request)
    tracker = await request.app[ASSISTANT].tracker(sender)
    events = tracker.get("events") or []
    chat = await request.app[LIVE].live.open_for(sender)
    if chat is not None:
        # The open live chat's turns come from its own log (GET .../live), with their ids.
        events = [e for e in events if float(e.get("timestamp") or 0) < chat.requested_at.timestamp()]
    turns = conversation_turns(events, redacted=False)
    return web.json_response({"sender": sender, "messages": turns})


def requested_zone(request: web.Request) -> ZoneInfo | None:
    """The customer's zone from `?tz=` (IANA name), or None; another value is a 422."""
    name = request.query.get("tz")
    if not name:
        return None
    zone = customer_zone(name)
    if zone is None:
        raise ApiError(422, "invalid_timezone", "`tz` must be an IANA time zone such as America/Los_Angeles.")
    return zone


async def status(request: web.Request) -> web.Response:
    """GET /api/status[?tz=Zone]: the policy's state now, for the widget's header."""
    policy = request.app[POLICY]
    now = request.app[CLOCK]()
    zone = requested_zone(request)
    closes = policy.closes_at(now)
    opening = None if closes else policy.next_opening(now)
    notices = [
        {
            "id": n.id,
            "text": n.text,
            "starts": n.starts.isoformat(),
            "ends": n.ends.isoformat(),
            "in_progress": n.starts <= now,
            "when": (f"until {format_time(policy, n.ends, now, zone)}" if n.starts <= now
                     else format_span(policy, n.starts, n.ends, now, zone)),
        }
        for n in policy.active_notices(now)
    ]
    return web.json_response(
        {
            "open": closes is not None,
            "text": status_text(policy, now, zone),
            "closes_at": closes.isoformat() if closes else None,
            "next_opening": opening.isoformat() if opening else None,
            "notices": notices,
            "channels": [
                {"id": c.id, "name": c.name, "how": c.how, "always_open": c.always_open} for c in policy.doc.channels
            ],
            "contact": {"email": policy.doc.contact.email, "phone": policy.doc.contact.phone},
            "link_hosts": sorted({*policy.link_hosts(), urlparse(request.app[SETTINGS].public_url).netloc}),
            "timezone": policy.doc.company.timezone,
            "timezone_label": policy.doc.company.timezone_label,
        }
    )


async def my_tickets(request: web.Request) -> web.Response:
    """GET /api/me/tickets[?tz=Zone]: the tickets of the user in the X-Identity-Token header."""
    enforce_read_limit(request)
    zone = requested_zone(request)
    who = verified_identity(request, request.headers.get(IDENTITY_HEADER))
    if who is None:
        raise ApiError(401, "identity_required", f"Send the signed identity token in the {IDENTITY_HEADER} header.")
    policy = request.app[POLICY]
    now = request.app[CLOCK]()
    # Only tickets opened under this verified identity: an anonymous chat that typed the
    # same email is not proof of who opened it.
    tickets = await request.app[STORE].tickets_for_owner(who.user_id)
    return web.json_response(
        {
            "user": who.to_metadata(),
            "tickets": [ticket_for_customer(t, policy, now, zone) for t in tickets],
        }
    )


async def invite(request: web.Request) -> web.Response:
    """GET /api/conversations/{sender}/tickets/{number}/invite.ics: the call's invitation.

    Only for the conversation that opened the ticket (its random id is the key) or the
    verified owner (X-Identity-Token).
    """
    sender, user_id = conversation_owner(request)
    store = request.app[STORE]
    ticket = await store.get_ticket(request.match_info["number"])
    if not may_see(ticket, sender, user_id):
        raise ApiError(404, "ticket_not_found", NOT_YOUR_TICKET)
    booking = await store.booking_for_ticket(ticket.id)
    if booking is None:
        raise ApiError(404, "no_call_booked", f"Ticket {ticket.number} has no call booked.")
    body = invitation(ticket, booking, request.app[POLICY], request.app[SETTINGS], request.app[CLOCK]())
    return web.Response(
        body=body,
        content_type="text/calendar",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{ticket.number}-call.ics"'},
    )


def conversation_owner(request: web.Request) -> tuple[str, str | None]:
    """(sender, verified user id or None) for the conversation-scoped endpoints."""
    sender = request.match_info["sender"]
    if not SENDER_RE.match(sender):
        raise ApiError(422, "invalid_sender", f"The conversation id must be {SENDER_RULE}.")
    enforce_read_limit(request)
    who = verified_identity(request, request.headers.get(IDENTITY_HEADER))
    return sender, who.user_id if who else None


async def csat_pending(request: web.Request) -> web.Response:
    """GET /api/conversations/{sender}/csat: resolved tickets waiting for the customer's rating."""
    sender, user_id = conversation_owner(request)
    waiting = await request.app[STORE].awaiting_rating(sender, user_id)
    return web.json_response(
        {"pending": [{"number": t.number, "product": t.product, "summary": t.description[:140]} for t in waiting]}
    )


async def csat_rate(request: web.Request) -> web.Response:
    """POST /api/conversations/{sender}/csat {"number", "rating": 1-5, "comment"?}."""
    sender, user_id = conversation_owner(request)
    body = await read_body(request, RatingRequest)
    store = request.app[STORE]
    ticket = await store.get_ticket(body.number)
    if not may_see(ticket, sender, user_id):
        raise ApiError(404, "ticket_not_found", NOT_YOUR_TICKET)
    comment = body.comment.strip() if body.comment else None
    try:
        rated = await store.rate(ticket.number, body.rating, comment, request.app[CLOCK]())
    except RatingRefused as exc:
        raise ApiError(409, "rating_refused", str(exc).capitalize() + ".") from None
    return web.json_response({"number": rated.number, "rating": rated.csat_rating})


SENDER = Param("sender", "path", Sender)
ZONE = Param("tz", "query", str, "The customer's IANA time zone for the times in the texts")
ROUTES = (
    Route("POST", "/api/chat", chat, "Send a customer message and get the assistant's replies",
          body=chat_request, replies={200: ChatReply}, errors=(400, 401, 408, 413, 415, 422, 429, 503)),
    Route("GET", "/api/conversations/{sender}/history", history, "The conversation so far, oldest turn first",
          params=(SENDER,), replies={200: History}, errors=(422, 429, 503)),
    Route("GET", "/api/status", status, "Whether support is open now, when it opens next, maintenance notices",
          params=(ZONE,), replies={200: SupportStatus}, errors=(422,)),
    Route("GET", "/api/me/tickets", my_tickets, "The verified in-app user's tickets",
          params=(Param(IDENTITY_HEADER, "header", str, "The signed identity token", required=True), ZONE),
          replies={200: MyTickets}, errors=(401, 422, 429, 503)),
    Route("GET", "/api/conversations/{sender}/tickets/{number}/invite.ics", invite,
          "The calendar invitation (RFC 5545) of the ticket's call",
          params=(SENDER, Param("number", "path", str)),
          replies={200: Reply("The invitation", media_type="text/calendar")}, errors=(401, 404, 422, 429, 503)),
    Route("GET", "/api/conversations/{sender}/csat", csat_pending, "Resolved tickets waiting for the customer's rating",
          params=(SENDER,), replies={200: PendingRatings}, errors=(401, 422, 429)),
    Route("POST", "/api/conversations/{sender}/csat", csat_rate, "Rate a resolved ticket from 1 to 5 (once)",
          params=(SENDER,), body=RatingRequest, replies={200: Rated, 409: "Not resolved yet, or already rated"},
          errors=(400, 401, 404, 408, 413, 415, 422, 429)),
)


def add_routes(app: web.Application) -> None:
    for route in ROUTES:
        route.add_to(app)
