"""The JSON contract of the /api routes: a pydantic model for every request and response body.

Request models are what the handlers validate their bodies with (`bot.web.api.read_body`):
the limits and choices (statuses, severities, channels, lengths, the conversation id's
pattern) are written here once, and the OpenAPI document (`bot.web.openapi`) is generated
from these models and the route registry, so the checks and the document cannot drift.
A field's `Refuse` markers say which status, error code and sentence a bad value gets.
Response models describe what the handlers send.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, create_model
from pydantic_core import PydanticCustomError

from bot.clock import customer_zone
from bot.intake import EMAIL_RE
from bot.live_store import CHAT_STATUSES, EVENT_KINDS
from bot.policy import SEVERITY_ORDER
from bot.settings import Settings
from bot.store import TICKET_STATUSES
from bot.web.api import SENDER_RE, SENDER_RULE, Refuse

CHANNELS = ("web_chat", "in_app", "api")
MAX_COMMENT_CHARS = 2000  # a rating's comment
MAX_NOTE_CHARS = 5000
MAX_ASSIGNEE_CHARS = 128  # the assignee column
MAX_AGENT_CHARS = 4000  # an agent's live-chat message
MAX_CLIENT_ID_CHARS = 64
MAX_EMAIL_CHARS = 254  # RFC 5321's limit of a forward path
MAX_ID = 2**53  # ids and seqs above this are refused before they reach the database (64-bit columns)

TicketStatus = Literal[TICKET_STATUSES]  # type: ignore[valid-type]
Severity = Literal[SEVERITY_ORDER]  # type: ignore[valid-type]
ChannelId = Literal[CHANNELS]  # type: ignore[valid-type]
ChatStatus = Literal[CHAT_STATUSES]  # type: ignore[valid-type]
EventKind = Literal[EVENT_KINDS]  # type: ignore[valid-type]
Sender = Annotated[str, Field(pattern=SENDER_RE.pattern, description=SENDER_RULE)]
Seq = Annotated[int, Field(ge=0, le=MAX_ID)]


def _not_blank(value: str) -> str:
    """The text without surrounding whitespace; refused when nothing else is left."""
    value = value.strip()
    if not value:
        raise PydanticCustomError("string_too_short", "String should have at least 1 character", {"min_length": 1})
    return value


def _lower_email(value: str) -> str:
    value = value.strip().lower()
    if not EMAIL_RE.match(value):
        raise PydanticCustomError("value_error", "not an email address")
    return value


def _zone_or_none(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    if customer_zone(value) is None:
        raise PydanticCustomError("value_error", "not an IANA time zone")
    return value


class Body(BaseModel):
    """A request body: strict types (no "5" for 5, no true for 1), unknown keys ignored."""

    model_config = ConfigDict(strict=True)


# -- customer -------------------------------------------------------------------------


def chat_message(max_chars: int | None) -> Any:
    """The type of a customer message: stripped, not empty, at most `max_chars` (configured)."""
    return Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=max_chars),
        Refuse("invalid_message", "`message` must be a string."),
        Refuse("empty_message", "`message` is empty; type a question or a request.", on="string_too_short"),
        Refuse("message_too_long", "`message` has {length} characters; the limit is {max_length}.",
               status=413, on="string_too_long"),
    ]


ChatMessage = chat_message(None)


class ChatRequest(Body):
    """A customer message. Its length limit is configured: validate with `chat_request(settings)`."""

    sender: Annotated[Sender, Refuse("invalid_sender", f"`sender` must be {SENDER_RULE}.")]
    message: ChatMessage
    channel: Annotated[ChannelId, Refuse("invalid_channel", f"`channel` must be one of {', '.join(CHANNELS)}.")] = (
        CHANNELS[0]
    )
    timezone: Annotated[
        str | None,
        AfterValidator(_zone_or_none),
        Field(description="The customer's IANA time zone: the replies give times on their clock, "
                          "with the company's beside it"),
        Refuse("invalid_timezone", "`timezone` must be an IANA time zone such as America/Los_Angeles."),
    ] = None
    identity: Annotated[str | None, Field(description="Signed identity token (in-app pane)"),
                        Refuse("invalid_identity", "`identity` must be a string token.")] = None
    client_id: Annotated[
        str | None,
        Field(min_length=1, max_length=MAX_CLIENT_ID_CHARS,
              description="The widget's id for the message, so that a resent one is relayed to an agent once"),
        Refuse("invalid_client_id", f"`client_id` must be a string of 1 to {MAX_CLIENT_ID_CHARS} characters."),
    ] = None


def chat_request(settings: Settings) -> type[ChatRequest]:
    """The chat request of an app: `message` limited to the configured `max_message_chars`."""
    return _chat_request(settings.max_message_chars)


@functools.cache
def _chat_request(max_chars: int) -> type[ChatRequest]:
    return create_model("ChatRequest", __base__=ChatRequest, __doc__=ChatRequest.__doc__,
                        message=(chat_message(max_chars), ...))


class Button(BaseModel):
    title: str
    payload: str


class BotMessage(BaseModel):
    """One reply of the assistant (or a notice of the web service)."""

    text: str | None
    buttons: list[Button]
    custom: dict[str, Any] | None = None


class LiveRelay(BaseModel):
    """Where a message went when a person has (or is about to take) the chat."""

    chat_id: int
    status: ChatStatus
    seq: int


class ChatReply(BaseModel):
    sender: Sender
    messages: list[BotMessage]
    stored_message: str | None = Field(description="The message as stored, when secrets were removed from it")
    live: LiveRelay | None = Field(None, description="Present when the message went to a live chat, not the assistant")


class Turn(BaseModel):
    at: dt.datetime
    speaker: Literal["customer", "assistant", "agent"]
    text: str
    buttons: list[Button]
    agent: str | None = Field(None, description="The live agent who wrote an `agent` turn")


class History(BaseModel):
    sender: Sender
    messages: list[Turn]


class Notice(BaseModel):
    id: str
    text: str
    starts: dt.datetime
    ends: dt.datetime
    in_progress: bool
    when: str


class SupportChannel(BaseModel):
    id: str
    name: str
    how: str
    always_open: bool


class Contact(BaseModel):
    email: str
    phone: str


class SupportStatus(BaseModel):
    open: bool
    text: str
    closes_at: dt.datetime | None
    next_opening: dt.datetime | None
    notices: list[Notice]
    channels: list[SupportChannel]
    contact: Contact
    link_hosts: list[str]
    timezone: str
    timezone_label: str


class User(BaseModel):
    user_id: str
    name: str
    email: str


class CustomerTicket(BaseModel):
    number: str
    status: TicketStatus
    severity: Severity
    product: str
    summary: str
    created_at: dt.datetime
    response_due_at: dt.datetime
    response_due: str


class MyTickets(BaseModel):
    user: User
    tickets: list[CustomerTicket]


class PendingRating(BaseModel):
    number: str
    product: str
    summary: str


class PendingRatings(BaseModel):
    pending: list[PendingRating]


class RatingRequest(Body):
    number: Annotated[str, Refuse("invalid_number", "`number` must be the ticket number, like MK-7Q4K2F.")]
    rating: Annotated[int, Field(ge=1, le=5),
                      Refuse("invalid_rating", "`rating` must be a whole number from 1 (poor) to 5 (excellent).")]
    comment: Annotated[str | None, Field(max_length=MAX_COMMENT_CHARS),
                       Refuse("invalid_comment", f"`comment` must be a string of at most {MAX_COMMENT_CHARS} characters.")
                       ] = None


class Rated(BaseModel):
    number: str
    rating: int


# -- staff ----------------------------------------------------------------------------


class StaffTicket(BaseModel):
    """A row of the staff queue."""

    number: str
    status: TicketStatus
    severity: Severity
    category: str
    channel: str
    name: str
    email: str
    product: str
    version: str
    proposed_severity: str | None
    submitted_severity: str | None
    assignee: str | None
    created_at: dt.datetime
    response_due_at: dt.datetime
    response_due: str
    overdue: bool
    business_time_left_minutes: int


class TicketList(BaseModel):
    tickets: list[StaffTicket]


class Booking(BaseModel):
    starts_at: dt.datetime
    ends_at: dt.datetime
    status: str
    meet_url: str | None
    label: str | None = None


class NoteRecord(BaseModel):
    author: str
    text: str
    created_at: dt.datetime


class TicketDetail(StaffTicket):
    """One ticket with what the customer wrote, the conversation, the booked call and the notes."""

    description: str
    tried: str
    impact: str
    transcript: list[dict[str, Any]]
    booking: Booking | None
    notes: list[NoteRecord]


class StatusChange(Body):
    status: Annotated[TicketStatus, Refuse("invalid_status", f"`status` must be one of {', '.join(TICKET_STATUSES)}.")]


class SeverityChange(Body):
    severity: Annotated[Severity, Refuse("invalid_severity", f"`severity` must be one of {', '.join(SEVERITY_ORDER)}.")]


class Assignment(Body):
    assignee: Annotated[
        str | None,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ASSIGNEE_CHARS),
        Field(description="The staff member's name; null unassigns"),
        Refuse("invalid_assignee", f"`assignee` must be a name of 1 to {MAX_ASSIGNEE_CHARS} characters, or null."),
    ] = None


class NewNote(Body):
    text: Annotated[
        str, Field(min_length=1, max_length=MAX_NOTE_CHARS), AfterValidator(_not_blank),
        Refuse("invalid_note", f"`text` must be a non-empty string of at most {MAX_NOTE_CHARS} characters."),
    ]


class Report(BaseModel):
    """The figures of the report page (bot/reports.py)."""

    from_: dt.date = Field(alias="from")
    to: dt.date
    days: list[dict[str, Any]]
    totals: dict[str, Any]
    sla: list[dict[str, Any]]
    csat: dict[str, Any]
    triage: list[dict[str, Any]]
    languages: dict[str, int]
    unanswered: list[dict[str, Any]]
    live: dict[str, Any]


class UnansweredGroups(BaseModel):
    groups: list[dict[str, Any]]


class CustomerEmail(Body):
    """A data-protection request: the email travels in the body, never in a URL."""

    email: Annotated[
        str, Field(max_length=MAX_EMAIL_CHARS), AfterValidator(_lower_email),
        Refuse("invalid_email", '`email` must be a valid email address, e.g. {{"email": "kai@example.com"}}.'),
    ]


class CustomerExport(BaseModel):
    email: str
    tickets: list[dict[str, Any]]
    conversations: dict[str, list[dict[str, Any]]] = Field(description="Each conversation id with its events")


class Erasure(BaseModel):
    conversations_deleted: int
    events_deleted: int
    calls_cancelled: int


class DeadLetters(BaseModel):
    dead: int


class Retried(BaseModel):
    retried: int


class KbAnswers(BaseModel):
    query: str
    entries: list[dict[str, Any]]


# -- live chat ------------------------------------------------------------------------


class LiveChat(BaseModel):
    id: int
    status: ChatStatus
    channel: str
    severity: str | None
    fields: dict[str, Any]
    agent: str | None
    last_seq: int
    requested_at: dt.datetime
    claimed_at: dt.datetime | None
    first_reply_at: dt.datetime | None
    ended_at: dt.datetime | None
    end_reason: str | None
    ticket_number: str | None


class LiveEvent(BaseModel):
    seq: int
    kind: EventKind
    sender: Literal["customer", "agent", "system"]
    author: str | None
    text: str | None
    client_id: str | None
    at: dt.datetime


class Queue(BaseModel):
    """What a waiting customer sees: place, estimate, and whether to offer a ticket."""

    position: int
    estimated_wait_s: int
    waited_s: int
    offer_ticket: bool
    agents_online: int


class LiveState(BaseModel):
    available: bool
    reason: Literal["available", "closed", "nobody_online"]
    next_opening: dt.datetime | None
    chat: LiveChat | None
    events: list[LiveEvent]
    queue: Queue | None


class LiveStart(Body):
    channel: Annotated[ChannelId, Refuse("invalid_channel", f"`channel` must be one of {', '.join(CHANNELS)}.")] = (
        CHANNELS[0]
    )


class Queued(BaseModel):
    chat: LiveChat
    queue: Queue


class LiveLeave(Body):
    ticket: Annotated[bool, Field(description="Go on to the assistant's ticket form"),
                      Refuse("invalid_ticket", "`ticket` must be true or false.")] = False


class LiveLeft(BaseModel):
    chat: LiveChat
    messages: list[BotMessage]


class LiveEvents(BaseModel):
    chat: LiveChat
    events: list[LiveEvent]
    queue: Queue | None = Field(None, description="For the customer's side, while the chat waits")


class ReadUpTo(Body):
    seq: Annotated[Seq, Refuse("invalid_seq", "`seq` must be the whole number of the last message read.")]


class Signalled(BaseModel):
    seq: int


class ChatSummary(LiveChat):
    waited_s: int
    severity_rank: int
    position: int = Field(description="Place in the queue; 0 when the chat is not waiting")


class AgentQueue(BaseModel):
    me: str
    agents: list[str]
    presence: dict[str, Literal["online", "away", "offline"]]
    available: bool
    reason: Literal["available", "closed", "nobody_online"]
    chats: list[ChatSummary]


class AgentChat(ChatSummary):
    bot_transcript: list[Turn]
    events: list[LiveEvent]


class PresenceChange(Body):
    status: Annotated[Literal["online", "away"], Refuse("invalid_presence", "`status` must be online or away.")]


class Presence(BaseModel):
    agent: str
    status: Literal["online", "away"]


class AgentMessage(Body):
    text: Annotated[
        str, Field(min_length=1, max_length=MAX_AGENT_CHARS), AfterValidator(_not_blank),
        Refuse("invalid_text", "`text` must be the message to send, not empty."),
        Refuse("message_too_long", "`text` has {length} characters; the limit is {max_length}.",
               status=413, on="string_too_long"),
    ]
    client_id: Annotated[
        str | None, Field(min_length=1, max_length=MAX_CLIENT_ID_CHARS),
        Refuse("invalid_client_id", f"`client_id` must be a string of 1 to {MAX_CLIENT_ID_CHARS} characters."),
    ] = None


class Sent(BaseModel):
    event: LiveEvent


class Transfer(Body):
    # The agents are the configured staff members: the handler checks the name, the
    # refusal lists them (`agents`, given by the handler).
    to: Annotated[str, Field(max_length=MAX_ASSIGNEE_CHARS, description="The agent to hand the chat to"),
                  Refuse("invalid_agent", "`to` must be one of: {agents}.")]


class ChatState(BaseModel):
    chat: LiveChat


# -- everything -----------------------------------------------------------------------


class Health(BaseModel):
    status: Literal["ok", "degraded", "down"]
    components: dict[str, Literal["up", "down", "degraded"]]
    down: list[str] = Field(description="The components that are down")
    dead_notifications: int


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, for programs")
    message: str = Field(description="For people: what was wrong and what is expected")


class ErrorBody(BaseModel):
    """Every error of the API."""

    error: ErrorDetail
