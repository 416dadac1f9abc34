"""The product's database: tickets, bookings, ratings and the audit log.

One module owns the schema and every query; both the action server and the web
service use it. SQLite (WAL mode) by default, PostgreSQL for a ``postgresql://`` URL.
The schema is created and upgraded by the migrations in ``bot/migrations`` (run by
`Store.open(..., migrate=True)` or `python -m bot migrate`), never on import.

Raises `StoreUnavailable` when the database cannot be reached.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

NUMBER_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L: read aloud on the phone
NUMBER_PREFIX = "MK-"
TICKET_STATUSES = ("open", "pending", "resolved", "closed")
ERASED = "[erased]"

metadata = sa.MetaData()

# Mirrors bot/migrations (the migrations own the schema; these describe it for queries).
tickets = sa.Table(
    "tickets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("number", sa.String(20), nullable=False, unique=True),
    sa.Column("submission_key", sa.String(128), nullable=False, unique=True),
    sa.Column("conversation_id", sa.String(64), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False, server_default="open"),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("category", sa.String(32), nullable=False, server_default="technical_support"),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(254), nullable=False, index=True),
    sa.Column("product", sa.String(64), nullable=False),
    sa.Column("version", sa.String(32), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("tried", sa.Text, nullable=False),
    sa.Column("impact", sa.Text, nullable=False),
    sa.Column("transcript", sa.JSON, nullable=False),
    sa.Column("response_due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("assignee", sa.String(128), nullable=True),
    sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("csat_rating", sa.Integer, nullable=True),
    sa.Column("csat_comment", sa.Text, nullable=True),
    sa.Column("csat_at", sa.DateTime(timezone=True), nullable=True),
    # The verified in-app user who opened it (0005); None for anonymous chats.
    sa.Column("owner_user_id", sa.String(200), nullable=True),
    sa.Column("proposed_severity", sa.String(16), nullable=True),  # 0006: what triage proposed
    sa.Column("submitted_severity", sa.String(16), nullable=True),  # 0006: what the customer sent
    sa.Index("ix_tickets_owner_user_id", "owner_user_id"),
    sa.Index("ix_tickets_status_due", "status", "response_due_at"),
)

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("booking_id", sa.Integer, nullable=True),  # set for booking events (0002)
    # pending | delivered | dead (0005): a dead row exhausted its attempts and waits for staff.
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),  # a sender's lease
    sa.Column("delivery_id", sa.String(36), nullable=True),  # receivers de-duplicate on it
    sa.Index("ix_notifications_due", "status", "next_attempt_at"),
    sa.Index("ix_notifications_pending", "delivered_at", "next_attempt_at"),
)
NOTIFICATION_STATUSES = ("pending", "delivered", "dead")

# Booking states (see bot/migrations/versions/0002_bookings.py): "pending_calendar"
# (slot held, no Meet link yet), "booked" (slot held, Meet link known), "cancelled".
BOOKING_STATUSES = ("pending_calendar", "booked", "cancelled")
ACTIVE_BOOKING = sa.text("status <> 'cancelled'")

bookings = sa.Table(
    "bookings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
    sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("meet_url", sa.String(500), nullable=True),
    sa.Column("calendar_event_id", sa.String(1024), nullable=True),
    sa.Column("customer_tz", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
    # The database, not the application, refuses a second active booking of a slot.
    sa.Index("ux_bookings_active_slot", "starts_at", unique=True, sqlite_where=ACTIVE_BOOKING,
             postgresql_where=ACTIVE_BOOKING),
    sa.Index("ux_bookings_active_ticket", "ticket_id", unique=True, sqlite_where=ACTIVE_BOOKING,
             postgresql_where=ACTIVE_BOOKING),
    sa.Index("ix_bookings_ticket", "ticket_id"),
)


ticket_notes = sa.Table(
    "ticket_notes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("author", sa.String(128), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(254), nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
)

# Allowed status changes: a ticket is worked (pending = waiting for the customer),
# resolved, then closed; a resolved ticket can be reopened, a closed one cannot.
TRANSITIONS = {
    "open": ("pending", "resolved"),
    "pending": ("open", "resolved"),
    "resolved": ("open", "closed"),
    "closed": (),
}


class StoreUnavailable(RuntimeError):
    """The database could not be reached or refused the operation."""


@contextmanager
def store_errors(doing: str) -> Iterator[None]:
    """Turn a database or I/O failure inside the block into StoreUnavailable, naming
    what was being done ("could not store the note (OperationalError)"). The one place
    that decides which failures mean "the store is unavailable"."""
    try:
        yield
    except (SQLAlchemyError, OSError) as exc:
        raise StoreUnavailable(f"{doing} ({type(exc).__name__})") from exc


class TicketNotFound(LookupError):
    """No ticket has that number."""


class RatingRefused(ValueError):
    """The ticket cannot be rated (not resolved yet, or already rated)."""


class InvalidTransition(ValueError):
    """The ticket's status cannot change that way (see TRANSITIONS)."""

    def __init__(self, current: str, wanted: str) -> None:
        allowed = ", ".join(TRANSITIONS.get(current, ())) or "nothing"
        super().__init__(f"a {current} ticket cannot become {wanted}; it can become: {allowed}")
        self.current = current
        self.wanted = wanted


class BookingError(Exception):
    """A booking cannot be made or changed as asked."""


class SlotTaken(BookingError):
    """Another active booking already holds that start time."""


class TicketAlreadyBooked(BookingError):
    """The ticket already has an active booking (move it instead)."""


class BookingNotFound(BookingError, LookupError):
    """No active booking has that id."""


@dataclass(frozen=True)
class TicketDraft:
    """Everything needed to open a ticket; the store adds number, status and times."""

    submission_key: str
    conversation_id: str
    severity: str
    category: str
    channel: str
    name: str
    email: str
    product: str
    version: str
    description: str
    tried: str
    impact: str
    transcript: list[dict[str, Any]]
    response_due_at: dt.datetime
    owner_user_id: str | None  # the verified in-app user who opened it, if any
    # What the triage proposed (the customer may have changed it); keyword-only so that
    # Ticket's own fields can follow without defaults.
    proposed_severity: str | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class Ticket(TicketDraft):
    """A stored ticket: the draft plus what the store assigned."""

    id: int
    number: str
    status: str
    created_at: dt.datetime
    updated_at: dt.datetime
    assignee: str | None = None
    first_response_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    csat_rating: int | None = None
    csat_comment: str | None = None
    csat_at: dt.datetime | None = None
    submitted_severity: str | None = None


@dataclass(frozen=True)
class Note:
    id: int
    ticket_id: int
    author: str
    text: str
    created_at: dt.datetime


@dataclass(frozen=True)
class Notification:
    id: int
    ticket_id: int
    kind: str
    event: str
    attempts: int
    next_attempt_at: dt.datetime
    booking_id: int | None = None
    status: str = "pending"
    delivery_id: str | None = None


@dataclass(frozen=True)
class Booking:
    """A call with the technical team; times are UTC."""

    id: int
    ticket_id: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    status: str
    meet_url: str | None
    calendar_event_id: str | None
    customer_tz: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    cancelled_at: dt.datetime | None

    @property
    def active(self) -> bool:
        return self.status != "cancelled"


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands datetimes back naive; every stored time is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def _row_to(cls: type, row: Any) -> Any:
    data = dict(row._mapping)
    values = {f.name: (_utc(data[f.name]) if isinstance(data[f.name], dt.datetime) else data[f.name]) for f in fields(cls)}
    return cls(**values)


def new_ticket_number() -> str:
    return NUMBER_PREFIX + "".join(secrets.choice(NUMBER_ALPHABET) for _ in range(6))


def async_url(url: str) -> str:
    """Map a plain database URL to the async driver this project uses."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        return url
    raise ValueError(f"unsupported database URL scheme in {url.split('://', 1)[0]!r}; use sqlite:/// or postgresql://")


def make_engine(url: str) -> AsyncEngine:
    """An async engine for `url`; SQLite files get their folder, WAL and a busy timeout."""
    target = async_url(url)
    if target.startswith("sqlite"):
        path = target.removeprefix("sqlite+aiosqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(target, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA secure_delete=ON")  # erased rows are overwritten, not just freed
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_async_engine(target, pool_pre_ping=True, pool_size=5, max_overflow=10)


class Store:
    """Access to the product's tables through one async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    async def open(cls, url: str) -> "Store":
        """Connect to the database at `url` (the schema must be migrated already)."""
        return cls(make_engine(url))

    async def close(self) -> None:
        await self.engine.dispose()

    async def create_ticket(
        self, draft: TicketDraft, now: dt.datetime, notify: tuple[str, ...] = ()
    ) -> tuple[Ticket, bool]:
        """Open a ticket once per submission key; return (ticket, created).

        A retried submission (same key) returns the existing ticket. The ticket and
        its outbox rows (one per kind in `notify`) are written in one transaction, so
        there is never a ticket without its notifications, or half a ticket.
        """
        now = _utc(now)
        for _ in range(5):
            existing = await self._ticket_where(tickets.c.submission_key == draft.submission_key)
            if existing is not None:
                return existing, False
            values = {f.name: getattr(draft, f.name) for f in fields(TicketDraft)}
            values["response_due_at"] = _utc(draft.response_due_at)
            values["submitted_severity"] = draft.severity
            values.update(number=new_ticket_number(), status="open", created_at=now, updated_at=now)
            with store_errors("could not store the ticket"):
                try:
                    async with self.engine.begin() as conn:
                        result = await conn.execute(tickets.insert().values(**values))
                        ticket_id = result.inserted_primary_key[0]
                        for kind in notify:
                            await conn.execute(
                                notifications.insert().values(
                                    ticket_id=ticket_id, kind=kind, event="ticket_created", attempts=0,
                                    next_attempt_at=now, created_at=now, status="pending", delivery_id=str(uuid.uuid4()),
                                )
                            )
                except IntegrityError:
                    continue  # same submission raced us, or the number collided: look again
            return await self.get_ticket(values["number"]), True
        raise StoreUnavailable("could not allocate a ticket number")

    async def get_ticket(self, number: str) -> Ticket:
        """The ticket with that number (case-insensitive); TicketNotFound otherwise."""
        ticket = await self._ticket_where(tickets.c.number == number.strip().upper())
        if ticket is None:
            raise TicketNotFound(number)
        return ticket

    async def get_ticket_by_id(self, ticket_id: int) -> Ticket:
        ticket = await self._ticket_where(tickets.c.id == ticket_id)
        if ticket is None:
            raise TicketNotFound(str(ticket_id))
        return ticket

    async def tickets_for_email(self, email: str) -> list[Ticket]:
        return await self._tickets_where(tickets.c.email == email.lower(), order=tickets.c.created_at.desc())

    async def tickets_for_owner(self, user_id: str) -> list[Ticket]:
        """Tickets opened under this verified in-app identity, newest first."""
        return await self._tickets_where(tickets.c.owner_user_id == user_id, order=tickets.c.created_at.desc())

    async def tickets_for_conversation(self, conversation_id: str) -> list[Ticket]:
        return await self._tickets_where(tickets.c.conversation_id == conversation_id, order=tickets.c.created_at)

    async def _ticket_where(self, condition: Any) -> Ticket | None:
        found = await self._tickets_where(condition)
        return found[0] if found else None

    async def _tickets_where(self, condition: Any, order: Any = None) -> list[Ticket]:
        query = sa.select(tickets).where(condition)
        if order is not None:
            query = query.order_by(order)
        rows = await self._fetch(query)
        return [_row_to(Ticket, row) for row in rows]

    async def list_tickets(
        self,
        status: str | None = None,
        severity: str | None = None,
        overdue_at: dt.datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Ticket]:
        """Tickets ordered by first-response deadline; `overdue_at` keeps open ones past it."""
        conditions = []
        if status:
            conditions.append(tickets.c.status == status)
        if severity:
            conditions.append(tickets.c.severity == severity)
        if overdue_at is not None:
            conditions.append(tickets.c.status == "open")
            conditions.append(tickets.c.response_due_at < _utc(overdue_at))
        query = sa.select(tickets).where(*conditions).order_by(tickets.c.response_due_at, tickets.c.id)
        rows = await self._fetch(query.limit(limit).offset(offset))
        return [_row_to(Ticket, row) for row in rows]

    async def change_status(self, number: str, wanted: str, actor: str, now: dt.datetime) -> Ticket:
        """Move a ticket to `wanted` if TRANSITIONS allows it; audited."""
        ticket = await self.get_ticket(number)
        if wanted not in TRANSITIONS.get(ticket.status, ()):
            raise InvalidTransition(ticket.status, wanted)
        await self._update_ticket(
            ticket, {"status": wanted}, tickets.c.status == ticket.status, actor, "status", {"from": ticket.status, "to": wanted}, now
        )
        return await self.get_ticket(number)

    async def change_severity(
        self, number: str, severity: str, response_due_at: dt.datetime, actor: str, now: dt.datetime
    ) -> Ticket:
        """Staff set a ticket's severity (and so its first-response deadline); audited."""
        ticket = await self.get_ticket(number)
        await self._update_ticket(
            ticket, {"severity": severity, "response_due_at": _utc(response_due_at)}, sa.true(), actor, "severity",
            {"from": ticket.severity, "to": severity}, now,
        )
        return await self.get_ticket(number)

    async def assign(self, number: str, assignee: str | None, actor: str, now: dt.datetime) -> Ticket:
        ticket = await self.get_ticket(number)
        await self._update_ticket(ticket, {"assignee": assignee}, sa.true(), actor, "assign", {"assignee": assignee}, now)
        return await self.get_ticket(number)

    async def _update_ticket(
        self, ticket: Ticket, values: dict[str, Any], guard: Any, actor: str, action: str, detail: dict, now: dt.datetime
    ) -> None:
        now = _utc(now)
        with store_errors("could not update the ticket"):
            async with self.engine.begin() as conn:
                stamps: dict[str, Any] = {
                    # The team's first action on a ticket is its first response.
                    "first_response_at": sa.func.coalesce(tickets.c.first_response_at, now),
                }
                if values.get("status") == "resolved":
                    stamps["resolved_at"] = now
                result = await conn.execute(
                    tickets.update().where(tickets.c.id == ticket.id, guard).values(**values, **stamps, updated_at=now)
                )
                if not result.rowcount:  # changed by someone else meanwhile
                    raise InvalidTransition(ticket.status, str(values.get("status")))
                await conn.execute(
                    audit_log.insert().values(at=now, actor=actor, action=action, subject=ticket.number, detail=detail)
                )

    async def add_note(self, number: str, author: str, text: str, now: dt.datetime) -> Note:
        ticket = await self.get_ticket(number)
        with store_errors("could not store the note"):
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    ticket_notes.insert().values(ticket_id=ticket.id, author=author, text=text, created_at=_utc(now))
                )
                note_id = result.inserted_primary_key[0]
                await conn.execute(
                    tickets.update()
                    .where(tickets.c.id == ticket.id, tickets.c.first_response_at.is_(None))
                    .values(first_response_at=_utc(now))
                )
        return Note(note_id, ticket.id, author, text, _utc(now))

    async def awaiting_rating(self, conversation_id: str, owner_user_id: str | None = None) -> list[Ticket]:
        """Resolved or closed tickets of this conversation (or verified user) not rated yet."""
        owner = tickets.c.conversation_id == conversation_id
        if owner_user_id:
            owner = sa.or_(owner, tickets.c.owner_user_id == owner_user_id)
        condition = sa.and_(owner, tickets.c.status.in_(("resolved", "closed")), tickets.c.csat_rating.is_(None))
        return await self._tickets_where(condition, order=tickets.c.resolved_at)

    async def rate(self, number: str, rating: int, comment: str | None, now: dt.datetime) -> Ticket:
        """Store the customer's 1-5 rating once, on a resolved or closed ticket."""
        ticket = await self.get_ticket(number)
        if ticket.status not in ("resolved", "closed"):
            raise RatingRefused(f"ticket {ticket.number} is {ticket.status}; it can be rated once it is resolved")
        with store_errors("could not store the rating"):
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    tickets.update()
                    .where(tickets.c.id == ticket.id, tickets.c.csat_rating.is_(None))
                    .values(csat_rating=rating, csat_comment=comment, csat_at=_utc(now))
                )
        if not result.rowcount:
            raise RatingRefused(f"ticket {ticket.number} has already been rated")
        return await self.get_ticket(number)

    async def notes_for(self, ticket_id: int) -> list[Note]:
        query = sa.select(ticket_notes).where(ticket_notes.c.ticket_id == ticket_id).order_by(ticket_notes.c.id)
        return [_row_to(Note, row) for row in await self._fetch(query)]

    async def customer_tickets_with_notes(self, email: str) -> list[tuple[Ticket, list[Note]]]:
        found = await self.tickets_for_email(email)
        return [(t, await self.notes_for(t.id)) for t in found]

    async def forget_customer(self, email: str, actor: str, subject: str, now: dt.datetime) -> list[str]:
        """Erase the personal fields of every ticket of `email` and their notes; audited.

        Returns the conversation ids of those tickets (their history lives in Rasa's
        tracker store and is deleted by the caller).
        """
        found = await self.tickets_for_email(email)
        ids = [t.id for t in found]
        with store_errors("could not erase the customer's data"):
            async with self.engine.begin() as conn:
                if ids:
                    await conn.execute(
                        tickets.update()
                        .where(tickets.c.id.in_(ids))
                        .values(
                            name=ERASED, email=ERASED, description=ERASED, tried=ERASED, impact=ERASED,
                            transcript=[], csat_comment=None, owner_user_id=None, updated_at=_utc(now),
                        )
                    )
                    await conn.execute(ticket_notes.delete().where(ticket_notes.c.ticket_id.in_(ids)))
                await conn.execute(
                    audit_log.insert().values(
                        at=_utc(now), actor=actor, action="forget_customer", subject=subject,
                        detail={"tickets": [t.number for t in found]},
                    )
                )
        return sorted({t.conversation_id for t in found})

    async def record_audit(self, actor: str, action: str, subject: str, detail: dict[str, Any], now: dt.datetime) -> None:
        await self._execute(audit_log.insert().values(at=_utc(now), actor=actor, action=action, subject=subject, detail=detail))

    async def audit_entries(self, subject: str) -> list[dict[str, Any]]:
        rows = await self._fetch(sa.select(audit_log).where(audit_log.c.subject == subject).order_by(audit_log.c.id))
        return [dict(row._mapping) for row in rows]

    async def claim_due_notifications(self, now: dt.datetime, lease: dt.timedelta, limit: int = 20) -> list[Notification]:
        """Claim pending outbox rows whose next attempt is due, for `lease`, and return them.

        One statement (UPDATE … WHERE id IN (due rows) RETURNING): on PostgreSQL the due
        rows are locked with FOR UPDATE SKIP LOCKED, on SQLite the write lock serialises
        the claims, and the update re-checks that a row is still unclaimed. So two web
        service processes never get the same row. A claim that is never settled (the
        process died mid-send) lapses after `lease`, and the row is sent again: at least
        once, with the same delivery id for the receiver to de-duplicate on.
        """
        now = _utc(now)
        due = sa.and_(
            notifications.c.status == "pending",
            notifications.c.next_attempt_at <= now,
            sa.or_(notifications.c.claimed_until.is_(None), notifications.c.claimed_until <= now),
        )
        candidates = sa.select(notifications.c.id).where(due).order_by(notifications.c.next_attempt_at).limit(limit)
        if self.engine.dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        claim = (
            notifications.update()
            .where(notifications.c.id.in_(candidates.scalar_subquery()), due)
            .values(claimed_until=now + lease)
            .returning(*notifications.c)
        )
        with store_errors("database unavailable"):
            async with self.engine.begin() as conn:
                rows = (await conn.execute(claim)).fetchall()
        return sorted((_row_to(Notification, row) for row in rows), key=lambda n: (n.next_attempt_at, n.id))

    async def mark_delivered(self, notification_id: int, now: dt.datetime) -> None:
        await self._execute(
            notifications.update()
            .where(notifications.c.id == notification_id)
            .values(
                delivered_at=_utc(now), status="delivered", claimed_until=None,
                attempts=notifications.c.attempts + 1, last_error=None,
            )
        )

    async def mark_failed(self, notification_id: int, error: str, retry_at: dt.datetime, dead: bool = False) -> None:
        """Record a failed attempt: retry at `retry_at`, or move the row to the dead letters.

        Only a pending row is settled: a failure reported late (a lapsed claim, another
        process meanwhile delivered the row or gave it up) never puts it back in the queue."""
        await self._execute(
            notifications.update()
            .where(notifications.c.id == notification_id, notifications.c.status == "pending")
            .values(
                attempts=notifications.c.attempts + 1, last_error=error[:2000], next_attempt_at=_utc(retry_at),
                claimed_until=None, status="dead" if dead else "pending",
            )
        )

    async def dead_notifications(self) -> int:
        """How many notifications gave up (the console and /healthz show it)."""
        rows = await self._fetch(
            sa.select(sa.func.count()).select_from(notifications).where(notifications.c.status == "dead")
        )
        return int(rows[0][0])

    async def retry_dead_notifications(self, actor: str, now: dt.datetime) -> int:
        """Give every dead notification a fresh set of attempts, now; audited."""
        now = _utc(now)
        with store_errors("database unavailable"):
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    notifications.update()
                    .where(notifications.c.status == "dead")
                    .values(status="pending", attempts=0, next_attempt_at=now, claimed_until=None)
                )
                await conn.execute(
                    audit_log.insert().values(
                        at=now, actor=actor, action="retry_notifications", subject="outbox",
                        detail={"count": result.rowcount},
                    )
                )
        return int(result.rowcount)

    async def notifications_for(self, ticket_id: int) -> list[dict[str, Any]]:
        rows = await self._fetch(sa.select(notifications).where(notifications.c.ticket_id == ticket_id))
        return [dict(row._mapping) for row in rows]

    # -- bookings ------------------------------------------------------------------

    async def book_slot(
        self, ticket_id: int, starts_at: dt.datetime, ends_at: dt.datetime, customer_tz: str | None, now: dt.datetime
    ) -> Booking:
        """Hold a slot for a ticket, as "pending_calendar" until the Meet link is known.

        Raises SlotTaken when an active booking holds that start (the database's unique
        index decides, so of many concurrent attempts exactly one succeeds),
        TicketAlreadyBooked when the ticket has an active booking, TicketNotFound.
        """
        now = _utc(now)
        values = dict(
            ticket_id=ticket_id, starts_at=_utc(starts_at), ends_at=_utc(ends_at), status="pending_calendar",
            meet_url=None, calendar_event_id=None, customer_tz=customer_tz, created_at=now, updated_at=now,
            cancelled_at=None,
        )
        with store_errors("could not store the booking"):
            try:
                async with self.engine.begin() as conn:
                    result = await conn.execute(bookings.insert().values(**values))
                    booking_id = result.inserted_primary_key[0]
            except IntegrityError as exc:
                await self.get_ticket_by_id(ticket_id)  # TicketNotFound if that was the violation
                if await self.booking_for_ticket(ticket_id) is not None:
                    raise TicketAlreadyBooked(str(ticket_id)) from None
                raise SlotTaken(values["starts_at"].isoformat()) from exc
        return Booking(id=booking_id, **values)

    async def get_booking(self, booking_id: int) -> Booking:
        """The booking with that id, whatever its status; BookingNotFound otherwise."""
        rows = await self._fetch(sa.select(bookings).where(bookings.c.id == booking_id))
        if not rows:
            raise BookingNotFound(str(booking_id))
        return _row_to(Booking, rows[0])

    async def active_bookings(self, from_: dt.datetime, to: dt.datetime) -> list[Booking]:
        """Active bookings overlapping [from_, to), earliest first."""
        query = (
            sa.select(bookings)
            .where(ACTIVE_BOOKING, bookings.c.starts_at < _utc(to), bookings.c.ends_at > _utc(from_))
            .order_by(bookings.c.starts_at)
        )
        return [_row_to(Booking, row) for row in await self._fetch(query)]

    async def booking_for_ticket(self, ticket_id: int) -> Booking | None:
        """The ticket's active booking, or None."""
        rows = await self._fetch(sa.select(bookings).where(bookings.c.ticket_id == ticket_id, ACTIVE_BOOKING))
        return _row_to(Booking, rows[0]) if rows else None

    async def cancel_booking(
        self, booking_id: int, now: dt.datetime, notify: tuple[str, ...] = (), event: str = "booking_cancelled"
    ) -> Booking:
        """Free the slot; queue one outbox row per kind in `notify` in the same transaction.

        Cancelling a cancelled booking changes nothing; BookingNotFound if there is none.
        """
        now = _utc(now)
        with store_errors("could not cancel the booking"):
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    bookings.update()
                    .where(bookings.c.id == booking_id, ACTIVE_BOOKING)
                    .values(status="cancelled", cancelled_at=now, updated_at=now)
                )
                if result.rowcount:
                    await self._queue(conn, booking_id, notify, event, now)
        return await self.get_booking(booking_id)

    async def move_booking(
        self, booking_id: int, new_start: dt.datetime, new_end: dt.datetime, now: dt.datetime
    ) -> Booking:
        """Cancel an active booking and hold a new slot for its ticket, in one transaction.

        Returns the new booking ("pending_calendar"). If the new slot is taken, raises
        SlotTaken and the old booking stays as it was; BookingNotFound if it is not active.
        """
        now = _utc(now)
        with store_errors("could not move the booking"):
            try:
                async with self.engine.begin() as conn:
                    # The update comes first so that SQLite takes its write lock before reading.
                    result = await conn.execute(
                        bookings.update()
                        .where(bookings.c.id == booking_id, ACTIVE_BOOKING)
                        .values(status="cancelled", cancelled_at=now, updated_at=now)
                    )
                    if not result.rowcount:
                        raise BookingNotFound(str(booking_id))
                    old = (await conn.execute(sa.select(bookings).where(bookings.c.id == booking_id))).one()
                    values = dict(
                        ticket_id=old.ticket_id, starts_at=_utc(new_start), ends_at=_utc(new_end),
                        status="pending_calendar", meet_url=None, calendar_event_id=None, customer_tz=old.customer_tz,
                        created_at=now, updated_at=now, cancelled_at=None,
                    )
                    inserted = await conn.execute(bookings.insert().values(**values))
                    new_id = inserted.inserted_primary_key[0]
            except IntegrityError as exc:
                raise SlotTaken(_utc(new_start).isoformat()) from exc
        return Booking(id=new_id, **values)

    async def set_booking_calendar(
        self,
        booking_id: int,
        status: str,
        meet_url: str | None,
        calendar_event_id: str | None,
        now: dt.datetime,
        notify: tuple[str, ...] = (),
        event: str = "booking_created",
    ) -> Booking:
        """Record the calendar side of an active booking ("booked" or "pending_calendar").

        Outbox rows for `notify` are written in the same transaction. A booking that was
        cancelled meanwhile stays cancelled (and nothing is queued); the current row is
        returned either way.
        """
        if status not in ("booked", "pending_calendar"):
            raise ValueError(f"a booking's calendar status is booked or pending_calendar, not {status!r}")
        now = _utc(now)
        with store_errors("could not update the booking"):
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    bookings.update()
                    .where(bookings.c.id == booking_id, ACTIVE_BOOKING)
                    .values(status=status, meet_url=meet_url, calendar_event_id=calendar_event_id, updated_at=now)
                )
                if result.rowcount:
                    await self._queue(conn, booking_id, notify, event, now)
        return await self.get_booking(booking_id)

    async def queue_booking_notification(
        self, booking_id: int, event: str, notify: tuple[str, ...], now: dt.datetime
    ) -> None:
        """Queue team notifications about a booking (one outbox row per kind)."""
        with store_errors("could not queue the notification"):
            async with self.engine.begin() as conn:
                await self._queue(conn, booking_id, notify, event, _utc(now))

    @staticmethod
    async def _queue(conn: Any, booking_id: int, notify: tuple[str, ...], event: str, now: dt.datetime) -> None:
        if not notify:
            return
        query = sa.select(bookings.c.ticket_id).where(bookings.c.id == booking_id)
        ticket_id = (await conn.execute(query)).scalar_one()
        for kind in notify:
            await conn.execute(
                notifications.insert().values(
                    ticket_id=ticket_id, booking_id=booking_id, kind=kind, event=event, attempts=0,
                    next_attempt_at=now, created_at=now, status="pending", delivery_id=str(uuid.uuid4()),
                )
            )

    async def _fetch(self, query: Any) -> list[Any]:
        with store_errors("database unavailable"):
            async with self.engine.connect() as conn:
                return list((await conn.execute(query)).fetchall())

    async def _execute(self, statement: Any) -> None:
        with store_errors("database unavailable"):
            async with self.engine.begin() as conn:
                await conn.execute(statement)

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers a trivial query."""
        with store_errors("database unavailable"):
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
