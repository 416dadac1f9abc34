"""Live chat storage: chats, their numbered event logs, and agent presence (issue 18).

The tables are created by migration 0009 (bot/migrations); these definitions mirror it
for queries. The database is the source of truth for delivery: every message, typing
signal, read mark and status change is a row of `live_events` numbered per chat by
`seq`. A seq is allocated by incrementing the chat row's `last_seq` in the same
transaction as the insert, so the row lock orders concurrent writers and numbers become
visible in order: a client that has seen seq N and asks for "after N" misses nothing
and gets nothing twice. On PostgreSQL each commit also sends `NOTIFY makana_live` so
that web service processes wake their waiting streams (bot/live.py).

Raises `StoreUnavailable` (bot/store.py) when the database cannot be reached, and the
domain errors below for requests the chat's state does not allow.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.policy import SEVERITY_ORDER
from bot.store import _utc, store_errors

NOTIFY_CHANNEL = "makana_live"
QUEUE = 0  # the pseudo chat id a notification uses for "the queue or presence changed"
CHAT_STATUSES = ("waiting", "claimed", "ended")
EVENT_KINDS = ("message", "typing", "read", "status")
PRESENCE = ("online", "away")
END_REASONS = ("ended", "handed_back", "ticket", "cancelled")
NOT_ENDED = sa.text("status <> 'ended'")

metadata = sa.MetaData()

live_chats = sa.Table(
    "live_chats",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("conversation_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("severity", sa.String(16), nullable=True),
    sa.Column("fields", sa.JSON, nullable=False),
    sa.Column("agent", sa.String(128), nullable=True),
    sa.Column("last_seq", sa.Integer, nullable=False, server_default="0"),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("first_reply_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("end_reason", sa.String(16), nullable=True),
    sa.Column("ticket_number", sa.String(20), nullable=True),
    # One open live chat per conversation; the queue is read by status and age (0009).
    sa.Index("ux_live_chats_open", "conversation_id", unique=True, sqlite_where=NOT_ENDED, postgresql_where=NOT_ENDED),
    sa.Index("ix_live_chats_status", "status", "requested_at"),
)

live_events = sa.Table(
    "live_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("chat_id", sa.Integer, sa.ForeignKey("live_chats.id", ondelete="CASCADE"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("sender", sa.String(16), nullable=False),
    sa.Column("author", sa.String(128), nullable=True),
    sa.Column("text", sa.Text, nullable=True),
    sa.Column("client_id", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("chat_id", "seq", name="ux_live_events_seq"),
    sa.UniqueConstraint("chat_id", "sender", "client_id", name="ux_live_events_client_id"),
)

live_agents = sa.Table(
    "live_agents",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
)


class ChatNotFound(LookupError):
    """No live chat has that id (or the conversation has none)."""


class ChatConflict(ValueError):
    """The chat's state does not allow that (already claimed, ended, another agent's)."""


@dataclass(frozen=True)
class LiveChat:
    id: int
    conversation_id: str
    status: str
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

    def to_json(self) -> dict[str, Any]:
        stamp = lambda v: v.isoformat() if v else None  # noqa: E731
        return {
            "id": self.id, "status": self.status, "channel": self.channel, "severity": self.severity,
            "fields": self.fields, "agent": self.agent, "last_seq": self.last_seq,
            "requested_at": stamp(self.requested_at), "claimed_at": stamp(self.claimed_at),
            "first_reply_at": stamp(self.first_reply_at), "ended_at": stamp(self.ended_at),
            "end_reason": self.end_reason, "ticket_number": self.ticket_number,
        }


@dataclass(frozen=True)
class LiveEvent:
    chat_id: int
    seq: int
    kind: str
    sender: str  # customer | agent | system
    author: str | None
    text: str | None
    client_id: str | None
    created_at: dt.datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "kind": self.kind, "sender": self.sender, "author": self.author, "text": self.text,
            "client_id": self.client_id, "at": self.created_at.isoformat(),
        }


def _chat(row: Any) -> LiveChat:
    data = dict(row._mapping)
    for key in ("requested_at", "claimed_at", "first_reply_at", "ended_at"):
        data[key] = _utc(data[key])
    data["fields"] = data.get("fields") or {}
    return LiveChat(**data)


def _event(row: Any) -> LiveEvent:
    data = dict(row._mapping)
    data.pop("id", None)
    data["created_at"] = _utc(data["created_at"])
    return LiveEvent(**data)


def severity_rank(severity: str | None) -> int:
    return SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else len(SEVERITY_ORDER)


class LiveStore:
    """Queries on the live chat tables through the product store's engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"

    async def _notify(self, conn: Any, chat_id: int) -> None:
        # Sent on commit, to every listening web service process (bot/live.py).
        if self.postgres:
            await conn.execute(sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, str(chat_id))))

    async def _fetch(self, query: Any) -> list[Any]:
        with store_errors("database unavailable"):
            async with self.engine.connect() as conn:
                return list((await conn.execute(query)).fetchall())

    # -- presence ------------------------------------------------------------------

    async def set_presence(self, name: str, status: str, now: dt.datetime) -> None:
        """Record an agent's presence (and heartbeat); wakes queue watchers."""
        if status not in PRESENCE:
            raise ValueError(f"presence must be one of {', '.join(PRESENCE)}")
        now = _utc(now)
        with store_errors("could not record presence"):
            async with self.engine.begin() as conn:
                updated = await conn.execute(
                    live_agents.update().where(live_agents.c.name == name).values(status=status, heartbeat_at=now)
                )
                if not updated.rowcount:
                    try:
                        async with conn.begin_nested():
                            await conn.execute(live_agents.insert().values(name=name, status=status, heartbeat_at=now))
                    except IntegrityError:  # a second tab of the same agent raced us
                        await conn.execute(
                            live_agents.update().where(live_agents.c.name == name).values(status=status, heartbeat_at=now)
                        )
                await self._notify(conn, QUEUE)

    async def presence(self, now: dt.datetime, stale_after: dt.timedelta) -> dict[str, str]:
        """{agent: online | away | offline}; online needs a heartbeat within `stale_after`."""
        rows = await self._fetch(sa.select(live_agents).order_by(live_agents.c.name))
        cutoff = _utc(now) - stale_after
        return {r.name: (r.status if _utc(r.heartbeat_at) >= cutoff else "offline") for r in rows}

    async def online_agents(self, now: dt.datetime, stale_after: dt.timedelta) -> list[str]:
        return [name for name, state in (await self.presence(now, stale_after)).items() if state == "online"]

    # -- chats ---------------------------------------------------------------------

    async def start(
        self, conversation_id: str, channel: str, severity: str | None, fields: dict[str, Any], now: dt.datetime
    ) -> tuple[LiveChat, bool]:
        """Put the conversation in the queue; (chat, created). An open chat is returned as is."""
        now = _utc(now)
        existing = await self.open_for(conversation_id)
        if existing is not None:
            return existing, False
        with store_errors("could not queue the chat"):
            try:
                async with self.engine.begin() as conn:
                    result = await conn.execute(
                        live_chats.insert().values(
                            conversation_id=conversation_id, status="waiting", channel=channel, severity=severity,
                            fields=fields, last_seq=0, requested_at=now,
                        )
                    )
                    chat_id = result.inserted_primary_key[0]
                    await self._append(conn, chat_id, "status", "system", None, "waiting", None, now)
                    await self._notify(conn, QUEUE)
            except IntegrityError:
                chat = await self.open_for(conversation_id)  # a double click raced us
                if chat is None:
                    raise
                return chat, False
        return await self.get(chat_id), True

    async def get(self, chat_id: int) -> LiveChat:
        rows = await self._fetch(sa.select(live_chats).where(live_chats.c.id == chat_id))
        if not rows:
            raise ChatNotFound(str(chat_id))
        return _chat(rows[0])

    async def open_for(self, conversation_id: str) -> LiveChat | None:
        """The conversation's chat that is waiting or claimed, if any."""
        rows = await self._fetch(
            sa.select(live_chats).where(live_chats.c.conversation_id == conversation_id, NOT_ENDED)
        )
        return _chat(rows[0]) if rows else None

    async def latest_for(self, conversation_id: str) -> LiveChat | None:
        """The conversation's most recent chat, ended or not."""
        rows = await self._fetch(
            sa.select(live_chats).where(live_chats.c.conversation_id == conversation_id)
            .order_by(live_chats.c.id.desc()).limit(1)
        )
        return _chat(rows[0]) if rows else None

    async def active(self) -> list[LiveChat]:
        """Waiting chats (most severe first, then longest waiting), then claimed ones."""
        rows = await self._fetch(sa.select(live_chats).where(NOT_ENDED))
        chats = [_chat(r) for r in rows]
        return sorted(chats, key=lambda c: (c.status != "waiting", severity_rank(c.severity), c.requested_at, c.id))

    async def queue_position(self, chat: LiveChat) -> int:
        """1 for the next chat an agent should take; 0 when the chat is not waiting."""
        if chat.status != "waiting":
            return 0
        waiting = [c for c in await self.active() if c.status == "waiting"]
        return next((i + 1 for i, c in enumerate(waiting) if c.id == chat.id), 0)

    async def recent_waits(self, limit: int = 20) -> list[float]:
        """Seconds from request to claim of the latest claimed chats (for estimates)."""
        rows = await self._fetch(
            sa.select(live_chats.c.requested_at, live_chats.c.claimed_at)
            .where(live_chats.c.claimed_at.is_not(None)).order_by(live_chats.c.claimed_at.desc()).limit(limit)
        )
        return [(_utc(r.claimed_at) - _utc(r.requested_at)).total_seconds() for r in rows]

    async def claim(self, chat_id: int, agent: str, now: dt.datetime) -> LiveChat:
        """Give a waiting chat to `agent`: one UPDATE … WHERE status = 'waiting', so of
        several agents claiming at once exactly one wins; ChatConflict for the others."""
        now = _utc(now)
        with store_errors("could not claim the chat"):
            async with self.engine.begin() as conn:
                claimed = await conn.execute(
                    live_chats.update()
                    .where(live_chats.c.id == chat_id, live_chats.c.status == "waiting")
                    .values(status="claimed", agent=agent, claimed_at=now)
                    .returning(live_chats.c.id)
                )
                if claimed.first() is None:
                    await self.get(chat_id)  # ChatNotFound when there is no such chat
                    raise ChatConflict("this chat is not waiting any more (another agent took it, or it ended)")
                await self._append(conn, chat_id, "status", "system", agent, "claimed", None, now)
                await self._notify(conn, QUEUE)
        return await self.get(chat_id)

    async def transfer(self, chat_id: int, agent: str, to: str, now: dt.datetime) -> LiveChat:
        """Hand a claimed chat from `agent` to `to`."""
        now = _utc(now)
        with store_errors("could not transfer the chat"):
            async with self.engine.begin() as conn:
                moved = await conn.execute(
                    live_chats.update()
                    .where(live_chats.c.id == chat_id, live_chats.c.status == "claimed", live_chats.c.agent == agent)
                    .values(agent=to)
                    .returning(live_chats.c.id)
                )
                if moved.first() is None:
                    await self.get(chat_id)
                    raise ChatConflict("only the agent who has the chat can transfer it")
                await self._append(conn, chat_id, "status", "system", to, "transferred", None, now)
                await self._notify(conn, QUEUE)
        return await self.get(chat_id)

    async def end(
        self, chat_id: int, reason: str, now: dt.datetime, agent: str | None = None, announce: bool = True
    ) -> LiveChat:
        """End a chat ("ended"/"handed_back" by its agent, "ticket"/"cancelled" by the customer).

        With `announce` False the closing status event is left to `announce_end`, so that
        what must exist when the customer hears of it (the ticket) can be made first.
        """
        if reason not in END_REASONS:
            raise ValueError(f"reason must be one of {', '.join(END_REASONS)}")
        now = _utc(now)
        guard = [live_chats.c.id == chat_id, NOT_ENDED]
        if agent is not None:
            guard += [live_chats.c.status == "claimed", live_chats.c.agent == agent]
        with store_errors("could not end the chat"):
            async with self.engine.begin() as conn:
                ended = await conn.execute(
                    live_chats.update().where(*guard).values(status="ended", ended_at=now, end_reason=reason)
                    .returning(live_chats.c.id)
                )
                if ended.first() is None:
                    await self.get(chat_id)
                    raise ChatConflict("this chat has ended already, or another agent has it")
                if announce:
                    await self._append(conn, chat_id, "status", "system", agent, reason, None, now, allow_ended=True)
                await self._notify(conn, QUEUE)
        return await self.get(chat_id)

    async def announce_end(self, chat_id: int, now: dt.datetime) -> None:
        """The closing status event of an ended chat (see `end`)."""
        chat = await self.get(chat_id)
        with store_errors("could not end the chat"):
            async with self.engine.begin() as conn:
                await self._append(conn, chat_id, "status", "system", chat.agent, chat.end_reason, None, now,
                                   allow_ended=True)

    async def set_ticket(self, chat_id: int, number: str) -> None:
        with store_errors("could not link the ticket"):
            async with self.engine.begin() as conn:
                await conn.execute(live_chats.update().where(live_chats.c.id == chat_id).values(ticket_number=number))

    # -- events --------------------------------------------------------------------

    async def append(
        self,
        chat_id: int,
        kind: str,
        sender: str,
        author: str | None,
        text: str | None,
        now: dt.datetime,
        client_id: str | None = None,
        agent: str | None = None,
    ) -> LiveEvent:
        """Add an event to an open chat and return it with its seq.

        `agent` (for agent events) must be the chat's agent. A retried send with the
        same `client_id` returns the first event instead of adding a second one.
        """
        if kind not in EVENT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(EVENT_KINDS)}")
        now = _utc(now)
        with store_errors("could not store the message"):
            try:
                async with self.engine.begin() as conn:
                    if client_id is not None:
                        found = await self._by_client_id(conn, chat_id, sender, client_id)
                        if found is not None:
                            return found
                    event = await self._append(conn, chat_id, kind, sender, author, text, client_id, now, agent=agent)
                    if kind == "message" and sender == "agent":
                        await conn.execute(
                            live_chats.update().where(live_chats.c.id == chat_id, live_chats.c.first_reply_at.is_(None))
                            .values(first_reply_at=now)
                        )
            except IntegrityError:
                # Two sends with the same client id raced: the other one stored it.
                async with self.engine.connect() as conn:
                    found = await self._by_client_id(conn, chat_id, sender, client_id or "")
                if found is None:
                    raise
                return found
        return event

    @staticmethod
    async def _by_client_id(conn: Any, chat_id: int, sender: str, client_id: str) -> LiveEvent | None:
        rows = (await conn.execute(
            sa.select(live_events).where(
                live_events.c.chat_id == chat_id, live_events.c.sender == sender, live_events.c.client_id == client_id
            )
        )).fetchall()
        return _event(rows[0]) if rows else None

    async def _append(
        self, conn: Any, chat_id: int, kind: str, sender: str, author: str | None, text: str | None,
        client_id: str | None, now: dt.datetime, agent: str | None = None, allow_ended: bool = False,
    ) -> LiveEvent:
        guard = [live_chats.c.id == chat_id]
        if not allow_ended:
            guard.append(NOT_ENDED)
        if agent is not None:
            guard += [live_chats.c.status == "claimed", live_chats.c.agent == agent]
        # The increment locks the chat row until commit: seqs of one chat commit in order.
        bumped = (await conn.execute(
            live_chats.update().where(*guard).values(last_seq=live_chats.c.last_seq + 1).returning(live_chats.c.last_seq)
        )).first()
        if bumped is None:
            exists = (await conn.execute(sa.select(live_chats.c.id).where(live_chats.c.id == chat_id))).first()
            if exists is None:
                raise ChatNotFound(str(chat_id))
            raise ChatConflict("this chat has ended, or another agent has it")
        seq = int(bumped[0])
        await conn.execute(
            live_events.insert().values(
                chat_id=chat_id, seq=seq, kind=kind, sender=sender, author=author, text=text, client_id=client_id,
                created_at=now,
            )
        )
        await self._notify(conn, chat_id)
        return LiveEvent(chat_id, seq, kind, sender, author, text, client_id, now)

    async def events_after(self, chat_id: int, after: int, limit: int = 500) -> list[LiveEvent]:
        """The chat's events with seq > `after`, in order."""
        rows = await self._fetch(
            sa.select(live_events).where(live_events.c.chat_id == chat_id, live_events.c.seq > after)
            .order_by(live_events.c.seq).limit(limit)
        )
        return [_event(r) for r in rows]

    # -- report --------------------------------------------------------------------

    async def requested_between(self, start: dt.datetime, end: dt.datetime) -> list[LiveChat]:
        rows = await self._fetch(
            sa.select(live_chats).where(live_chats.c.requested_at >= _utc(start), live_chats.c.requested_at < _utc(end))
            .order_by(live_chats.c.requested_at)
        )
        return [_chat(r) for r in rows]
