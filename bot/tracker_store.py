"""Rasa's tracker store, as the product reads it: one module, one engine.

Rasa owns the `events` table (it writes every user message, bot utterance and slot of
every conversation there). The product reads it for the report, finds and exports a
customer's conversations, deletes them on erasure, and rewrites them when scrubbing.
All of that goes through `TrackerStore`, opened once per process (the web service
keeps one for its life) and closed with it. A database failure becomes
`StoreUnavailable`; a tracker store Rasa has not created yet reads as empty.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.store import StoreUnavailable, make_engine

# Rasa's SQL tracker store keeps every event in this table (the columns read here).
EVENTS = sa.table(
    "events",
    sa.column("id"),
    sa.column("sender_id"),
    sa.column("type_name"),
    sa.column("timestamp"),
    sa.column("data"),
)
REWRITE_BATCH = 500


class NoTrackerTable(Exception):
    """Rasa has not stored a conversation yet: there is no `events` table."""


@dataclass(frozen=True)
class TrackerEvent:
    """One stored event: who, what kind (user, bot, slot, …), when, and its JSON data."""

    sender_id: str
    type_name: str
    at: dt.datetime
    data: dict[str, Any]


def _like(text: str) -> str:
    """A LIKE pattern that finds `text` anywhere, with LIKE's wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _parse(data: Any) -> dict[str, Any]:
    if isinstance(data, dict):
        return data
    try:
        parsed = json.loads(data) if data else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _event(sender: str, kind: str, timestamp: Any, data: Any) -> TrackerEvent:
    return TrackerEvent(sender, kind, dt.datetime.fromtimestamp(float(timestamp), tz=dt.timezone.utc), _parse(data))


class TrackerStore:
    """Reads (and, for erasure and scrubbing, writes) Rasa's `events` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> "TrackerStore":
        """The tracker store at `url` (SQLAlchemy URL, as Rasa's endpoints.yml names it);
        nothing connects until the first query."""
        return cls(make_engine(url))

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def _connection(self, doing: str, write: bool = False) -> AsyncIterator[AsyncConnection]:
        try:
            async with (self.engine.begin() if write else self.engine.connect()) as conn:
                yield conn
        except SQLAlchemyError as exc:
            if "no such table" in str(exc) or "does not exist" in str(exc):
                raise NoTrackerTable() from exc
            raise StoreUnavailable(f"{doing} ({type(exc).__name__})") from exc
        except OSError as exc:
            raise StoreUnavailable(f"{doing} ({type(exc).__name__})") from exc

    async def events_since(self, since: dt.datetime, kinds: Iterable[str] = ("user", "slot")) -> list[TrackerEvent]:
        """Events of these kinds since `since`, oldest first (the report)."""
        query = (
            sa.select(EVENTS.c.sender_id, EVENTS.c.type_name, EVENTS.c.timestamp, EVENTS.c.data)
            .where(EVENTS.c.type_name.in_(tuple(kinds)), EVENTS.c.timestamp >= since.timestamp())
            .order_by(EVENTS.c.id)
        )
        try:
            async with self._connection("tracker store unavailable") as conn:
                rows = (await conn.execute(query)).fetchall()
        except NoTrackerTable:
            return []
        return [_event(*row) for row in rows]

    async def senders_mentioning(self, text: str) -> set[str]:
        """The conversations whose events hold `text` anywhere, ignoring case (an email
        typed, in a form slot, or in a verified in-app identity)."""
        query = (
            sa.select(EVENTS.c.sender_id)
            .where(sa.func.lower(EVENTS.c.data).like(_like(text.strip().lower()), escape="\\"))
            .distinct()
        )
        try:
            async with self._connection("tracker store unavailable") as conn:
                return {row[0] for row in (await conn.execute(query)).fetchall()}
        except NoTrackerTable:
            return set()

    async def conversations(self, senders: Iterable[str], kinds: Iterable[str] = ("user", "bot", "slot")) -> dict[str, list[TrackerEvent]]:
        """The events of each conversation, oldest first (every sender is a key)."""
        senders = list(senders)
        out: dict[str, list[TrackerEvent]] = {s: [] for s in senders}
        if not senders:
            return out
        query = (
            sa.select(EVENTS.c.sender_id, EVENTS.c.type_name, EVENTS.c.timestamp, EVENTS.c.data)
            .where(EVENTS.c.sender_id.in_(senders), EVENTS.c.type_name.in_(tuple(kinds)))
            .order_by(EVENTS.c.timestamp)
        )
        try:
            async with self._connection("tracker store unavailable") as conn:
                rows = (await conn.execute(query)).fetchall()
        except NoTrackerTable:
            return out
        for row in rows:
            out[row[0]].append(_event(*row))
        return out

    async def delete_conversations(self, senders: Iterable[str]) -> int:
        """Delete every event of these conversations; returns how many went."""
        senders = list(senders)
        if not senders:
            return 0
        try:
            async with self._connection("tracker store unavailable", write=True) as conn:
                return int((await conn.execute(EVENTS.delete().where(EVENTS.c.sender_id.in_(senders)))).rowcount)
        except NoTrackerTable:
            return 0

    async def rewrite_events(
        self, change: Callable[[Any], Any], log: Callable[[str], None] = print
    ) -> int:
        """Apply `change` to every event's data, in batches of REWRITE_BATCH (one
        transaction each); store what it changed. Returns how many events changed."""
        changed = seen = 0
        last_id = 0
        try:
            while True:
                async with self._connection("tracker store unavailable", write=True) as conn:
                    rows = (
                        await conn.execute(
                            sa.select(EVENTS.c.id, EVENTS.c.data)
                            .where(EVENTS.c.id > last_id)
                            .order_by(EVENTS.c.id)
                            .limit(REWRITE_BATCH)
                        )
                    ).fetchall()
                    if not rows:
                        break
                    for row_id, data in rows:
                        last_id = row_id
                        try:
                            event = json.loads(data) if isinstance(data, str) else data
                        except ValueError:
                            continue
                        cleaned = change(event)
                        if cleaned != event:
                            await conn.execute(
                                sa.update(EVENTS).where(EVENTS.c.id == row_id).values(data=json.dumps(cleaned))
                            )
                            changed += 1
                    seen += len(rows)
                log(f"  tracker events: {seen} read, {changed} rewritten")
        except NoTrackerTable:
            return 0
        return changed
