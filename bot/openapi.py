"""The OpenAPI 3.1 document of the web service, served at /api/openapi.json."""

from __future__ import annotations

from typing import Any

from bot.api import SENDER_RE, SENDER_RULE

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
    {"name": "status", "in": "query", "schema": {"enum": ["open", "pending", "resolved", "closed"]}},
    {"name": "severity", "in": "query", "schema": {"enum": ["critical", "high", "medium", "low"]}},
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
                requestBody=json_body({"type": "object", "required": ["status"], "properties": {"status": {"enum": ["open", "pending", "resolved", "closed"]}}}),
            )
        },
        "/api/staff/tickets/{number}/severity": {
            "post": op("Change the severity (the first-response deadline is recomputed; audited)",
                       {**ok(ticket), **errors(400, 404, 422)}, parameters=[NUMBER],
                       requestBody=json_body({"type": "object", "required": ["severity"], "properties": {"severity": {"enum": ["critical", "high", "medium", "low"]}}}))
        },
        "/api/staff/tickets/{number}/assign": {
            "post": op("Assign the ticket (null unassigns)", {**ok(ticket), **errors(400, 404, 422)}, parameters=[NUMBER],
                       requestBody=json_body({"type": "object", "properties": {"assignee": {"type": ["string", "null"], "maxLength": 128}}}))
        },
        "/api/staff/tickets/{number}/notes": {
            "post": op("Add an internal note", {"201": {"description": "Created"}, **errors(400, 404, 422)}, parameters=[NUMBER],
                       requestBody=json_body({"type": "object", "required": ["text"], "properties": {"text": {"type": "string", "maxLength": 5000}}}))
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
                    "comment": {"type": "string", "maxLength": 2000}}}),
                "responses": {**ok({"type": "object"}), **errors(400, 401, 404, 422),
                              "409": {"description": "Not resolved yet, or already rated", "content": {"application/json": {"schema": ERROR}}}},
            },
        }
    }


def openapi_document() -> dict[str, Any]:
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
                                "message": {"type": "string", "minLength": 1, "maxLength": 2000},
                                "channel": {"enum": ["web_chat", "in_app", "api"], "default": "web_chat"},
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
