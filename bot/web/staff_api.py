"""The support team's ticket API (bearer tokens configured by the operator).

- ``GET /api/staff/tickets``: filter by status, severity, overdue; ordered by deadline.
- ``GET /api/staff/tickets.csv``: the same list as CSV.
- ``GET /api/staff/tickets/{number}``: one ticket with transcript, booking and notes.
- ``POST /api/staff/tickets/{number}/status``: open → pending → resolved → closed
  (allowed transitions in bot/store.py TRANSITIONS).
- ``POST /api/staff/tickets/{number}/severity``: staff correct the severity (audited;
  the report counts it as "changed by staff").
- ``POST /api/staff/tickets/{number}/assign`` and ``.../notes``.

Bodies are validated with the models of bot/web/schemas.py; `ROUTES` declares each route
for the router and the generated OpenAPI document (bot/web/openapi.py).

Tokens come from SUPPORT_STAFF_TOKENS ("name:token,name:token"); they are compared in
constant time and never logged. Every request without a valid staff token, customer
identity tokens included, gets a 401.
"""

from __future__ import annotations

import asyncio
import csv
import hmac
import io
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import Field

from bot.web.api import CALENDAR, CLOCK, POLICY, SETTINGS, STORE, TRACKER, ApiError, read_body
from bot.call_booking import slot_of
from bot.policy import SEVERITY_ORDER as SEVERITY_IDS
from bot.privacy import erase_customer, export_customer
from bot.reports import build_report
from bot.serializers import booking_for_people, note_record, ticket_for_staff, ticket_request
from bot.settings import SettingsError
from bot.store import TICKET_STATUSES, InvalidTransition, Ticket
from bot.web.openapi import Param, Reply, Route
from bot.web.schemas import (
    Assignment,
    CustomerEmail,
    CustomerExport,
    DeadLetters,
    Erasure,
    KbAnswers,
    NewNote,
    NoteRecord,
    Report,
    Retried,
    Severity,
    SeverityChange,
    StaffTicket,
    StatusChange,
    TicketDetail,
    TicketList,
    TicketStatus,
    UnansweredGroups,
)

STAFF_TOKENS = web.AppKey("staff_tokens", dict)


def parse_staff_tokens(raw: str) -> dict[str, str]:
    """{"alice": "token", ...} from "alice:token,bob:token" (tokens of 16+ characters)."""
    tokens: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, _, token = item.partition(":")
        if not name or len(token) < 16:
            raise SettingsError("SUPPORT_STAFF_TOKENS must be name:token pairs with tokens of at least 16 characters")
        tokens[name] = token
    return tokens


def staff_member(request: web.Request) -> str:
    """The staff member the bearer token belongs to; 401 otherwise."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        # A header's bytes that are not UTF-8 arrive as lone surrogates: compared as the bytes sent.
        sent = token.encode("utf-8", "surrogateescape")
        for name, expected in request.app[STAFF_TOKENS].items():
            if hmac.compare_digest(sent, expected.encode()):
                return name
    raise ApiError(401, "staff_token_required", "Send a staff bearer token: Authorization: Bearer <token>.")


def ticket_summary(request: web.Request, ticket: Ticket) -> dict[str, Any]:
    return ticket_for_staff(ticket, request.app[POLICY], request.app[CLOCK]())


def list_filters(request: web.Request) -> dict[str, Any]:
    query = request.query
    status, severity = query.get("status") or None, query.get("severity") or None
    if status and status not in TICKET_STATUSES:
        raise ApiError(422, "invalid_status", f"`status` must be one of {', '.join(TICKET_STATUSES)}.")
    if severity and severity not in SEVERITY_IDS:
        raise ApiError(422, "invalid_severity", f"`severity` must be one of {', '.join(SEVERITY_IDS)}.")
    overdue = query.get("overdue", "false")
    if overdue not in ("true", "false"):
        raise ApiError(422, "invalid_overdue", "`overdue` must be true or false.")
    try:
        limit = int(query.get("limit", "100"))
        offset = int(query.get("offset", "0"))
    except ValueError:
        raise ApiError(422, "invalid_paging", "`limit` and `offset` must be whole numbers.") from None
    if not (1 <= limit <= 1000 and 0 <= offset <= 10_000_000):
        raise ApiError(422, "invalid_paging", "`limit` must be 1 to 1000 and `offset` 0 or more.")
    return {
        "status": status,
        "severity": severity,
        "overdue_at": request.app[CLOCK]() if overdue == "true" else None,
        "limit": limit,
        "offset": offset,
    }


async def list_tickets(request: web.Request) -> web.Response:
    staff_member(request)
    found = await request.app[STORE].list_tickets(**list_filters(request))
    return web.json_response({"tickets": [ticket_summary(request, t) for t in found]})


async def export_csv(request: web.Request) -> web.Response:
    staff_member(request)
    found = await request.app[STORE].list_tickets(**list_filters(request))
    rows = [ticket_summary(request, t) for t in found]
    out = io.StringIO()
    fields = ["number", "status", "severity", "category", "channel", "name", "email", "product", "version",
              "assignee", "created_at", "response_due_at", "overdue"]
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        # A cell starting with = + - @ is a formula in spreadsheets: neutralise it.
        writer.writerow({k: ("'" + v if isinstance(v, str) and v[:1] in "=+-@" else v) for k, v in row.items()})
    return web.Response(
        text=out.getvalue(), content_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="tickets.csv"'},
    )


async def ticket_detail(request: web.Request) -> web.Response:
    staff_member(request)
    store = request.app[STORE]
    ticket = await store.get_ticket(request.match_info["number"])
    booking = await store.booking_for_ticket(ticket.id)
    notes = await store.notes_for(ticket.id)
    shown = booking_for_people(booking)
    if booking is not None and shown is not None:
        shown["label"] = slot_of(booking).label(request.app[POLICY])
    body = ticket_summary(request, ticket) | ticket_request(ticket) | {
        "booking": shown,
        "notes": [note_record(n) for n in notes],
    }
    return web.json_response(body)


async def change_status(request: web.Request) -> web.Response:
    who = staff_member(request)
    wanted = (await read_body(request, StatusChange)).status
    try:
        ticket = await request.app[STORE].change_status(request.match_info["number"], wanted, who, request.app[CLOCK]())
    except InvalidTransition as exc:
        raise ApiError(409, "invalid_transition", str(exc).capitalize() + ".") from None
    return web.json_response(ticket_summary(request, ticket))


async def change_severity(request: web.Request) -> web.Response:
    """POST {"severity": ...}: staff correct the severity; the first-response deadline follows it."""
    who = staff_member(request)
    wanted = (await read_body(request, SeverityChange)).severity
    store, policy = request.app[STORE], request.app[POLICY]
    ticket = await store.get_ticket(request.match_info["number"])
    due = policy.response_due(wanted, ticket.created_at)
    ticket = await store.change_severity(ticket.number, wanted, due, who, request.app[CLOCK]())
    return web.json_response(ticket_summary(request, ticket))


async def assign(request: web.Request) -> web.Response:
    who = staff_member(request)
    assignee = (await read_body(request, Assignment)).assignee
    ticket = await request.app[STORE].assign(request.match_info["number"], assignee, who, request.app[CLOCK]())
    return web.json_response(ticket_summary(request, ticket))


async def add_note(request: web.Request) -> web.Response:
    who = staff_member(request)
    text = (await read_body(request, NewNote)).text
    note = await request.app[STORE].add_note(request.match_info["number"], who, text, request.app[CLOCK]())
    return web.json_response(note_record(note), status=201)


async def report(request: web.Request) -> web.Response:
    """GET /api/staff/report?days=30: the figures of the report page."""
    staff_member(request)
    try:
        days = int(request.query.get("days", "30"))
    except ValueError:
        days = 0
    if not 1 <= days <= 366:
        raise ApiError(422, "invalid_days", "`days` must be a whole number from 1 to 366.")
    body = await build_report(request.app[STORE], request.app[POLICY], request.app[TRACKER], request.app[CLOCK](), days)
    return web.json_response(body)


async def unanswered(request: web.Request) -> web.Response:
    """GET /api/staff/unanswered?days=30: questions the assistant could not answer, grouped."""
    staff_member(request)
    body = await build_report(request.app[STORE], request.app[POLICY], request.app[TRACKER], request.app[CLOCK](), 30)
    return web.json_response({"groups": body["unanswered"]})


async def customer_email(request: web.Request) -> str:
    """The email of a data-protection request, from the JSON body: never from the URL,
    whose path access logs and proxies keep after the data is erased."""
    return (await read_body(request, CustomerEmail)).email


async def export_customer_data(request: web.Request) -> web.Response:
    """POST /api/staff/customers/export {"email"}: everything stored about one customer."""
    who = staff_member(request)
    email = await customer_email(request)
    body = await export_customer(request.app[STORE], request.app[TRACKER], email, who, request.app[CLOCK]())
    return web.json_response(body)


async def erase_customer_data(request: web.Request) -> web.Response:
    """POST /api/staff/customers/erase {"email"}: erase the customer's personal data,
    conversations and calls."""
    who = staff_member(request)
    email = await customer_email(request)
    body = await erase_customer(
        request.app[STORE], request.app[CALENDAR], request.app[SETTINGS], request.app[TRACKER], email, who, request.app[CLOCK]()
    )
    return web.json_response(body)


async def outbox_state(request: web.Request) -> web.Response:
    """GET /api/staff/outbox: how many team notifications gave up (dead letters)."""
    staff_member(request)
    return web.json_response({"dead": await request.app[STORE].dead_notifications()})


async def retry_outbox(request: web.Request) -> web.Response:
    """POST /api/staff/outbox/retry: send every dead notification again."""
    who = staff_member(request)
    retried = await request.app[STORE].retry_dead_notifications(who, request.app[CLOCK]())
    return web.json_response({"retried": retried})


KB_QUERY_MAX = 500
KB_ANSWERER = web.AppKey("kb_answerer", dict)


async def kb_answerer(app: web.Application) -> Any:
    """The knowledge base and its index, loaded into the web service on the first staff
    search (the encoder takes seconds and memory that customer traffic never needs)."""
    cache = app[KB_ANSWERER]
    async with cache["lock"]:
        if cache.get("answerer") is None:
            from bot.faq import open_answerer

            settings = app[SETTINGS]
            cache["answerer"] = await asyncio.to_thread(open_answerer, settings.kb_dir, settings.index_dir, app[POLICY])
    return cache["answerer"]


async def kb_search(request: web.Request) -> web.Response:
    """GET /api/staff/kb?q=…: the three knowledge-base entries closest to `q`, with their
    answers as the assistant would send them (for an agent to insert into a reply)."""
    from kb_index import IndexFolderError

    staff_member(request)
    query = request.query.get("q", "").strip()
    if not 1 <= len(query) <= KB_QUERY_MAX:
        raise ApiError(422, "invalid_query", f"`q` must be a question of 1 to {KB_QUERY_MAX} characters.")
    try:
        answerer = await kb_answerer(request.app)
    except (IndexFolderError, OSError) as exc:
        raise ApiError(503, "kb_unavailable", f"The knowledge base cannot be searched: {exc}") from None
    entries = await asyncio.to_thread(answerer.lookup, query, request.app[CLOCK]())
    return web.json_response({"query": query, "entries": entries})


NUMBER = Param("number", "path", Annotated[str, Field(max_length=20)], "The ticket number, like MK-7Q4K2F")
LIST_PARAMS = (
    Param("status", "query", TicketStatus),
    Param("severity", "query", Severity),
    Param("overdue", "query", Literal["true", "false"], "Only open tickets past their first-response deadline"),
    Param("limit", "query", Annotated[int, Field(ge=1, le=1000)]),
    Param("offset", "query", Annotated[int, Field(ge=0, le=10_000_000)]),
)
ROUTES = (
    Route("GET", "/api/staff/tickets", list_tickets, "Tickets ordered by first-response deadline",
          params=LIST_PARAMS, replies={200: TicketList}, errors=(422,), staff=True),
    Route("GET", "/api/staff/tickets.csv", export_csv, "The same list as CSV",
          params=LIST_PARAMS, replies={200: Reply("CSV", media_type="text/csv")}, errors=(422,), staff=True),
    Route("GET", "/api/staff/report", report,
          "Deflection report: conversations, escalations, FAQ outcomes, SLA, CSAT, unanswered questions",
          params=(Param("days", "query", Annotated[int, Field(ge=1, le=366)]),),
          replies={200: Report}, errors=(422,), staff=True),
    Route("GET", "/api/staff/unanswered", unanswered, "Questions the assistant could not answer, grouped by similarity",
          replies={200: UnansweredGroups}, staff=True),
    Route("POST", "/api/staff/customers/export", export_customer_data, "Everything stored about one customer (audited)",
          body=CustomerEmail, replies={200: CustomerExport}, errors=(400, 408, 413, 415, 422), staff=True),
    Route("POST", "/api/staff/customers/erase", erase_customer_data,
          "Erase one customer's personal data, conversations and calls (audited)",
          body=CustomerEmail, replies={200: Erasure}, errors=(400, 408, 413, 415, 422), staff=True),
    Route("GET", "/api/staff/outbox", outbox_state, "How many team notifications gave up (dead letters)",
          replies={200: DeadLetters}, staff=True),
    Route("GET", "/api/staff/kb", kb_search,
          "The three knowledge-base entries closest to a question, with their answers as the assistant sends them",
          params=(Param("q", "query", Annotated[str, Field(min_length=1, max_length=KB_QUERY_MAX)], required=True),),
          replies={200: KbAnswers}, errors=(422, 503), staff=True),
    Route("POST", "/api/staff/outbox/retry", retry_outbox, "Send every dead notification again (audited)",
          replies={200: Retried}, staff=True),
    Route("GET", "/api/staff/tickets/{number}", ticket_detail, "One ticket with transcript, booking and notes",
          params=(NUMBER,), replies={200: TicketDetail}, errors=(404,), staff=True),
    Route("POST", "/api/staff/tickets/{number}/status", change_status,
          "Change the status (open → pending → resolved → closed; allowed transitions only)",
          params=(NUMBER,), body=StatusChange, replies={200: StaffTicket, 409: "Transition not allowed"},
          errors=(400, 404, 408, 413, 415, 422), staff=True),
    Route("POST", "/api/staff/tickets/{number}/assign", assign, "Assign the ticket (null unassigns)",
          params=(NUMBER,), body=Assignment, replies={200: StaffTicket},
          errors=(400, 404, 408, 413, 415, 422), staff=True),
    Route("POST", "/api/staff/tickets/{number}/severity", change_severity,
          "Change the severity (the first-response deadline is recomputed; audited)",
          params=(NUMBER,), body=SeverityChange, replies={200: StaffTicket},
          errors=(400, 404, 408, 413, 415, 422), staff=True),
    Route("POST", "/api/staff/tickets/{number}/notes", add_note, "Add an internal note",
          params=(NUMBER,), body=NewNote, replies={201: NoteRecord}, errors=(400, 404, 408, 413, 415, 422), staff=True),
)


def add_routes(app: web.Application) -> None:
    app[STAFF_TOKENS] = parse_staff_tokens(app[SETTINGS].staff_tokens)
    app[KB_ANSWERER] = {"lock": asyncio.Lock(), "answerer": None}
    for route in ROUTES:
        route.add_to(app)
