"""The OpenAPI 3.1 document of the web service, served at /api/openapi.json."""

from __future__ import annotations

from typing import Any

from bot.web.api import SENDER_RE, SENDER_RULE
from bot.web.customer_api import CHANNELS, MAX_COMMENT_CHARS
from bot.web.live_api import MAX_AGENT_CHARS, MAX_CLIENT_ID_CHARS
from bot.live_store import CHAT_STATUSES, EVENT_KINDS
from bot.policy import SEVERITY_ORDER
from bot.settings import Settings
from bot.web.staff_api import MAX_ASSIGNEE_CHARS, MAX_NOTE_CHARS
from bot.store import TICKET_STATUSES

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
BUTTON = {
    "type": "object",
    "required": ["title", "payload"],
    "properties": {"title": {"type": "string"}, "payload": {"type": "string"}},
}
MESSAGE = {
    "type": "object",
    "required": ["text", "buttons"],
    "properties": {
        "text": {"type": ["string", "null"]},
        "buttons": {"type": "array", "items": BUTTON},
        "custom": {"type": "object"},
    },
}
TURN = {
    "type": "object",
    "required": ["at", "speaker", "text", "buttons"],
    "properties": {
        "at": {"type": "string", "format": "date-time"},
        "speaker": {"enum": ["customer", "assistant"]},
        "text": {"type": "string"},
        "buttons": {"type": "array", "items": BUTTON},
    },
}
SENDER = {"type": "string", "pattern": SENDER_RE.pattern, "description": SENDER_RULE}


def errors(*statuses: int) -> dict[str, Any]:
    reasons = {
        400: "Malformed request (not JSON, not UTF-8, empty body)",
        401: "Identity token missing, forged or expired",
        404: "Not found",
        408: "The request body did not arrive in time",
        413: "Body or message too large",
        415: "The body is not sent as application/json",
        422: "A field has an invalid value",
        429: "Rate limited; see Retry-After",
        503: "The assistant or the database is not reachable",
    }
    return {
        str(s): {"description": reasons[s], "content": {"application/json": {"schema": ERROR}}} for s in statuses
    }


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"200": {"description": description, "content": {"application/json": {"schema": schema}}}}


STAFF = [{"staffToken": []}]
NUMBER = {"name": "number", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 20}}
# The email of a data-protection request travels in the body, never in a URL.
EMAIL_BODY = {"type": "object", "required": ["email"], "properties": {"email": {"type": "string", "maxLength": 254}}}
LIST_PARAMS = [
    {"name": "status", "in": "query", "schema": {"enum": list(TICKET_STATUSES)}},
    {"name": "severity", "in": "query", "schema": {"enum": list(SEVERITY_ORDER)}},
    {"name": "overdue", "in": "query", "schema": {"enum": ["true", "false"]}},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
]


def staff_paths() -> dict[str, Any]:
    """The support team's API: bearer token in the Authorization header."""
    def op(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"summary": summary, "security": STAFF, "responses": {**responses, **errors(401)}, **extra}

    ticket = {"type": "object", "required": ["number", "status", "severity"]}
    return {
        "/api/staff/tickets": {"get": op("Tickets ordered by first-response deadline", {**ok({"type": "object"}), **errors(422)}, parameters=LIST_PARAMS)},
        "/api/staff/tickets.csv": {"get": op("The same list as CSV", {"200": {"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}}, **errors(422)}, parameters=LIST_PARAMS)},
        "/api/staff/tickets/{number}": {"get": op("One ticket with transcript, booking and notes", {**ok(ticket), **errors(404)}, parameters=[NUMBER])},
        "/api/staff/tickets/{number}/status": {
            "post": op(
                "Change the status (open → pending → resolved → closed; allowed transitions only)",
                {**ok(ticket), **errors(400, 404, 422), "409": {"description": "Transition not allowed", "content": {"application/json": {"schema": ERROR}}}},
                parameters=[NUMBER],
                requestBody=json_body({"type": "object", "required": ["status"], "properties": {"status": {"enum": list(TICKET_STATUSES)}}}),
            )
        },
        "/api/staff/tickets/{number}/severity": {
            "post": op("Change the severity (the first-response deadline is recomputed; audited)",
                       {**ok(ticket), **errors(400, 404, 422)}, parameters=[NUMBER],
                       requestBody=json_body({"type": "object", "required": ["severity"], "properties": {"severity": {"enum": list(SEVERITY_ORDER)}}}))
        },
        "/api/staff/tickets/{number}/assign": {
            "post": op("Assign the ticket (null unassigns)", {**ok(ticket), **errors(400, 404, 422)}, parameters=[NUMBER],
                       requestBody=json_body({"type": "object", "properties": {"assignee": {"type": ["string", "null"], "maxLength": MAX_ASSIGNEE_CHARS}}}))
        },
        "/api/staff/tickets/{number}/notes": {
            "post": op("Add an internal note", {"201": {"description": "Created"}, **errors(400, 404, 422)}, parameters=[NUMBER],
                       requestBody=json_body({"type": "object", "required": ["text"], "properties": {"text": {"type": "string", "maxLength": MAX_NOTE_CHARS}}}))
        },
        "/api/staff/report": {
            "get": op("Deflection report: conversations, escalations, FAQ outcomes, SLA, CSAT, unanswered questions",
                      {**ok({"type": "object", "required": ["days", "totals", "sla", "csat", "unanswered"]}), **errors(422)},
                      parameters=[{"name": "days", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 366}}])
        },
        "/api/staff/unanswered": {"get": op("Questions the assistant could not answer, grouped by similarity", ok({"type": "object"}))},
        "/api/staff/customers/export": {"post": op("Everything stored about one customer (audited)", {**ok({"type": "object"}), **errors(400, 415, 422)}, requestBody=json_body(EMAIL_BODY))},
        "/api/staff/customers/erase": {"post": op("Erase one customer's personal data, conversations and calls (audited)", {**ok({"type": "object"}), **errors(400, 415, 422)}, requestBody=json_body(EMAIL_BODY))},
        "/api/staff/outbox": {"get": op("How many team notifications gave up (dead letters)", ok({"type": "object", "properties": {"dead": {"type": "integer"}}}))},
        "/api/staff/outbox/retry": {"post": op("Send every dead notification again (audited)", ok({"type": "object", "properties": {"retried": {"type": "integer"}}}))},
        "/api/staff/kb": {
            "get": op("The three knowledge-base entries closest to a question, with their answers as the assistant sends them",
                      {**ok({"type": "object", "required": ["query", "entries"], "properties": {"query": {"type": "string"}, "entries": {"type": "array", "items": {"type": "object"}}}}),
                       **errors(422, 503)},
                      parameters=[{"name": "q", "in": "query", "required": True, "schema": {"type": "string", "minLength": 1, "maxLength": 500}}])
        },
    }


LIVE_CHAT = {
    "type": "object",
    "required": ["id", "status", "channel", "agent", "last_seq", "requested_at"],
    "properties": {
        "id": {"type": "integer"},
        "status": {"enum": list(CHAT_STATUSES)},
        "channel": {"type": "string"},
        "severity": {"type": ["string", "null"]},
        "fields": {"type": "object"},
        "agent": {"type": ["string", "null"]},
        "last_seq": {"type": "integer"},
        "requested_at": {"type": "string", "format": "date-time"},
        "claimed_at": {"type": ["string", "null"]},
        "first_reply_at": {"type": ["string", "null"]},
        "ended_at": {"type": ["string", "null"]},
        "end_reason": {"type": ["string", "null"]},
        "ticket_number": {"type": ["string", "null"]},
    },
}
LIVE_EVENT = {
    "type": "object",
    "required": ["seq", "kind", "sender", "at"],
    "properties": {
        "seq": {"type": "integer"},
        "kind": {"enum": list(EVENT_KINDS)},
        "sender": {"enum": ["customer", "agent", "system"]},
        "author": {"type": ["string", "null"]},
        "text": {"type": ["string", "null"]},
        "client_id": {"type": ["string", "null"]},
        "at": {"type": "string", "format": "date-time"},
    },
}
CONFLICT = {"409": {"description": "The chat is not in a state that allows this (claimed by someone else, ended)",
                    "content": {"application/json": {"schema": ERROR}}}}
AFTER = [
    {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0},
     "description": "The last seq seen; only later events are sent"},
    {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
     "description": "Sent by EventSource on reconnect; wins over `after`"},
]
SSE = {"200": {"description": "Server-sent events: `live` (id = seq, data = a live event) and, for a waiting "
                              "customer, `queue`; the stream ends when the chat has ended or after five minutes",
               "content": {"text/event-stream": {"schema": {"type": "string"}}}}}
SEQ_BODY = {"type": "object", "required": ["seq"], "properties": {"seq": {"type": "integer", "minimum": 0}}}


def live_paths() -> dict[str, Any]:
    """Live chat with an agent: the customer's side (keyed by conversation id, as the
    history) and the agents' side (staff token)."""
    sender = {"name": "sender", "in": "path", "required": True, "schema": SENDER}
    chat_id = {"name": "chat_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}}
    events = {"type": "object", "required": ["chat", "events"],
              "properties": {"chat": LIVE_CHAT, "events": {"type": "array", "items": LIVE_EVENT}, "queue": {"type": ["object", "null"]}}}
    signal = {"type": "object", "required": ["seq"], "properties": {"seq": {"type": "integer"}}}
    customer = "/api/conversations/{sender}/live"

    def staff(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"summary": summary, "security": STAFF, "parameters": [chat_id, *extra.pop("parameters", [])],
                "responses": {**responses, **errors(401, 404)}, **extra}

    chat_ok = ok({"type": "object", "required": ["chat"], "properties": {"chat": LIVE_CHAT}})
    return {
        customer: {
            "get": {"summary": "Whether an agent can chat now, and the conversation's open live chat with its events",
                    "parameters": [sender],
                    "responses": {**ok({"type": "object", "required": ["available", "reason", "chat", "events"]}), **errors(422, 429)}},
            "post": {"summary": "Ask to chat with an agent now (409 outside hours or when nobody is online)",
                     "parameters": [sender],
                     "requestBody": json_body({"type": "object", "properties": {"channel": {"enum": list(CHANNELS)}}}),
                     "responses": {"201": {"description": "Queued", "content": {"application/json": {"schema": {"type": "object", "required": ["chat", "queue"]}}}},
                                   **errors(400, 413, 415, 422, 429),
                                   "409": {"description": "No agent can chat now; the message says when the team is back",
                                           "content": {"application/json": {"schema": ERROR}}}}},
        },
        customer + "/leave": {
            "post": {"summary": "Stop waiting or leave the chat; with `ticket` the assistant's ticket form starts, what was said kept",
                     "parameters": [sender],
                     "requestBody": json_body({"type": "object", "properties": {"ticket": {"type": "boolean"}}}),
                     "responses": {**ok({"type": "object", "required": ["chat", "messages"]}), **errors(400, 404, 413, 415, 422, 429),
                                   "409": {"description": "The chat has ended", "content": {"application/json": {"schema": ERROR}}}}},
        },
        customer + "/events": {
            "get": {"summary": "The chat's events after a seq (polling fallback of the stream)", "parameters": [sender, *AFTER],
                    "responses": {**ok(events), **errors(404, 422, 429)}},
        },
        customer + "/stream": {
            "get": {"summary": "The chat's events as server-sent events", "parameters": [sender, *AFTER],
                    "responses": {**SSE, **errors(404, 422, 429)}},
        },
        customer + "/typing": {
            "post": {"summary": "The customer is typing", "parameters": [sender],
                     "responses": {**ok(signal), **errors(400, 404, 415, 422)}},
        },
        customer + "/read": {
            "post": {"summary": "The customer has read the agent's messages up to a seq", "parameters": [sender],
                     "requestBody": json_body(SEQ_BODY), "responses": {**ok(signal), **errors(400, 404, 413, 415, 422)}},
        },
        "/api/staff/live": {
            "get": {"summary": "The live-chat queue and open chats, the agents and their presence", "security": STAFF,
                    "responses": {**ok({"type": "object", "required": ["me", "agents", "presence", "available", "chats"]}), **errors(401)}},
        },
        "/api/staff/live/presence": {
            "post": {"summary": "Set the agent's presence", "security": STAFF,
                     "requestBody": json_body({"type": "object", "required": ["status"], "properties": {"status": {"enum": ["online", "away"]}}}),
                     "responses": {**ok({"type": "object", "required": ["agent", "status"]}), **errors(400, 401, 413, 415, 422)}},
        },
        "/api/staff/live/{chat_id}": {
            "get": staff("One chat: its state, the assistant's transcript before it (redacted) and its events",
                         ok({"type": "object", "required": ["id", "status", "bot_transcript", "events"]})),
        },
        "/api/staff/live/{chat_id}/claim": {"post": staff("Take a waiting chat (exactly one agent wins)", {**chat_ok, **CONFLICT})},
        "/api/staff/live/{chat_id}/messages": {
            "post": staff("Send a message to the customer (a repeated `client_id` is relayed once)",
                          {"201": {"description": "Sent", "content": {"application/json": {"schema": {"type": "object", "required": ["event"], "properties": {"event": LIVE_EVENT}}}}},
                           **errors(400, 413, 415, 422), **CONFLICT},
                          requestBody=json_body({"type": "object", "required": ["text"], "properties": {
                              "text": {"type": "string", "minLength": 1, "maxLength": MAX_AGENT_CHARS},
                              "client_id": {"type": "string", "minLength": 1, "maxLength": MAX_CLIENT_ID_CHARS}}})),
        },
        "/api/staff/live/{chat_id}/typing": {"post": staff("The agent is typing", {**ok(signal), **errors(400, 415), **CONFLICT})},
        "/api/staff/live/{chat_id}/read": {
            "post": staff("The agent has read the customer's messages up to a seq", {**ok(signal), **errors(400, 413, 415, 422), **CONFLICT},
                          requestBody=json_body(SEQ_BODY)),
        },
        "/api/staff/live/{chat_id}/transfer": {
            "post": staff("Hand the chat to another agent", {**chat_ok, **errors(400, 413, 415, 422), **CONFLICT},
                          requestBody=json_body({"type": "object", "required": ["to"], "properties": {"to": {"type": "string", "maxLength": 128}}})),
        },
        "/api/staff/live/{chat_id}/handback": {
            "post": staff("Hand the customer back to the assistant (records the chat as a resolved ticket)", {**chat_ok, **CONFLICT}),
        },
        "/api/staff/live/{chat_id}/end": {
            "post": staff("End the chat (records it as a resolved ticket; the customer is asked for a rating)", {**chat_ok, **CONFLICT}),
        },
        "/api/staff/live/{chat_id}/events": {
            "get": staff("The chat's events after a seq (polling fallback of the stream)", {**ok(events), **errors(422)}, parameters=AFTER),
        },
        "/api/staff/live/{chat_id}/stream": {
            "get": staff("The chat's events as server-sent events", {**SSE, **errors(422)}, parameters=AFTER),
        },
    }


def csat_paths() -> dict[str, Any]:
    sender = {"name": "sender", "in": "path", "required": True, "schema": SENDER}
    return {
        "/api/conversations/{sender}/csat": {
            "get": {"summary": "Resolved tickets waiting for the customer's rating", "parameters": [sender],
                    "responses": {**ok({"type": "object", "required": ["pending"]}), **errors(401, 422)}},
            "post": {
                "summary": "Rate a resolved ticket from 1 to 5 (once)",
                "parameters": [sender],
                "requestBody": json_body({"type": "object", "required": ["number", "rating"], "properties": {
                    "number": {"type": "string"}, "rating": {"type": "integer", "minimum": 1, "maximum": 5},
                    "comment": {"type": "string", "maxLength": MAX_COMMENT_CHARS}}}),
                "responses": {**ok({"type": "object"}), **errors(400, 401, 404, 422),
                              "409": {"description": "Not resolved yet, or already rated", "content": {"application/json": {"schema": ERROR}}}},
            },
        }
    }


def openapi_document(max_message_chars: int = Settings.model_fields["max_message_chars"].default) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Makana support assistant API",
            "version": "1.0.0",
            "description": (
                "Customer chat API used by the website widget and the in-app pane, and the support team's API. "
                "Every error has the shape {\"error\": {\"code\", \"message\"}}."
            ),
        },
        "components": {"securitySchemes": {"staffToken": {"type": "http", "scheme": "bearer"}}},
        "paths": {
            "/api/chat": {
                "post": {
                    "summary": "Send a customer message and get the assistant's replies",
                    "requestBody": json_body(
                        {
                            "type": "object",
                            "required": ["sender", "message"],
                            "properties": {
                                "sender": {**SENDER, "description": "Conversation id chosen by the client (random)"},
                                "message": {"type": "string", "minLength": 1, "maxLength": max_message_chars},
                                "channel": {"enum": list(CHANNELS), "default": CHANNELS[0]},
                                "identity": {"type": "string", "description": "Signed identity token (in-app pane)"},
                                "timezone": {
                                    "type": "string",
                                    "description": "The customer's IANA time zone: the replies give times on their "
                                    "clock, with the company's beside it",
                                },
                            },
                        }
                    ),
                    "responses": {
                        **ok(
                            {
                                "type": "object",
                                "required": ["sender", "messages"],
                                "properties": {
                                    "sender": SENDER,
                                    "messages": {"type": "array", "items": MESSAGE},
                                    "stored_message": {
                                        "type": ["string", "null"],
                                        "description": "The message as stored, when secrets were removed from it",
                                    },
                                },
                            }
                        ),
                        **errors(400, 401, 408, 413, 415, 422, 429, 503),
                    },
                }
            },
            "/api/conversations/{sender}/history": {
                "get": {
                    "summary": "The conversation so far, oldest turn first",
                    "parameters": [{"name": "sender", "in": "path", "required": True, "schema": SENDER}],
                    "responses": {
                        **ok(
                            {
                                "type": "object",
                                "required": ["sender", "messages"],
                                "properties": {"sender": SENDER, "messages": {"type": "array", "items": TURN}},
                            }
                        ),
                        **errors(422, 503),
                    },
                }
            },
            "/api/status": {
                "get": {
                    "summary": "Whether support is open now, when it opens next, maintenance notices",
                    "parameters": [
                        {"name": "tz", "in": "query", "required": False, "schema": {"type": "string"},
                         "description": "The customer's IANA time zone for the texts"}
                    ],
                    "responses": {
                        **ok(
                            {
                                "type": "object",
                                "required": ["open", "text", "notices", "channels"],
                                "properties": {
                                    "open": {"type": "boolean"},
                                    "text": {"type": "string"},
                                    "closes_at": {"type": ["string", "null"]},
                                    "next_opening": {"type": ["string", "null"]},
                                    "notices": {"type": "array", "items": {"type": "object"}},
                                    "channels": {"type": "array", "items": {"type": "object"}},
                                },
                            }
                        ),
                        **errors(422),
                    },
                }
            },
            "/api/me/tickets": {
                "get": {
                    "summary": "The verified in-app user's tickets",
                    "parameters": [
                        {"name": "X-Identity-Token", "in": "header", "required": True, "schema": {"type": "string"}},
                        {"name": "tz", "in": "query", "required": False, "schema": {"type": "string"},
                         "description": "The customer's IANA time zone for the deadlines"},
                    ],
                    "responses": {
                        **ok({"type": "object", "required": ["user", "tickets"]}),
                        **errors(401, 422, 503),
                    },
                }
            },
            "/api/conversations/{sender}/tickets/{number}/invite.ics": {
                "get": {
                    "summary": "The calendar invitation (RFC 5545) of the ticket's call",
                    "parameters": [
                        {"name": "sender", "in": "path", "required": True, "schema": SENDER},
                        {"name": "number", "in": "path", "required": True, "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": {"description": "The invitation", "content": {"text/calendar": {"schema": {"type": "string"}}}},
                        **errors(401, 404, 503),
                    },
                }
            },
            **csat_paths(),
            **live_paths(),
            **staff_paths(),
            "/healthz": {
                "get": {
                    "summary": "Health of Rasa, the action server and the database",
                    "responses": {
                        "200": {"description": "All components up"},
                        "503": {"description": "At least one component down (named in `down`)"},
                    },
                }
            },
        },
    }
