"""The product's database: tickets, bookings, ratings and the audit log.

One module owns the schema and every query; both the action server and the web
service use it. SQLite (WAL mode) by default, PostgreSQL for a ``postgresql://`` URL.
The schema is created and upgraded by the migrations in ``bot/migrations`` (run by
`Store.open(..., migrate=True)` or `python -m bot migrate`), never on import.

Raises `StoreUnavailable` when the database cannot be reached.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


class StoreUnavailable(RuntimeError):
    """The database could not be reached or refused the operation."""


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

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers a trivial query."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except (SQLAlchemyError, OSError) as exc:
            raise StoreUnavailable(f"database unavailable ({type(exc).__name__})") from exc
