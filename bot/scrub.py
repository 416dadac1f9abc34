"""`python -m bot scrub`: remove secrets from what was stored before redaction moved to
the edge (or before a new kind of secret was recognised).

Rewrites, with `bot.redaction.redact`, every string in Rasa's tracker events (what the
customer typed, slot values, the parse data, the assistant's echoes) and the ticket
fields customers and staff type into (description, what was tried, impact, transcript,
rating comment, internal notes). Then it makes the old versions unrecoverable: on
SQLite a VACUUM and a truncating WAL checkpoint (see bot/privacy.py), on PostgreSQL a
VACUUM FULL of the rewritten tables. Progress is printed per table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from bot.privacy import purge_sqlite_files
from bot.redaction import redact
from bot.store import StoreUnavailable, make_engine, ticket_notes, tickets
from bot.tracker_store import TrackerStore


@dataclass
class ScrubReport:
    events_changed: int = 0
    tickets_changed: int = 0
    notes_changed: int = 0


def redact_deep(value: Any) -> Any:
    """`value` with every string inside it (dict values, list items) redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [redact_deep(v) for v in value]
    if isinstance(value, dict):
        return {k: redact_deep(v) for k, v in value.items()}
    return value


async def scrub_tracker(url: str, log: Callable[[str], None] = print) -> int:
    """Redact Rasa's stored events in place; return how many changed."""
    tracker = TrackerStore.open(url)
    try:
        return await tracker.rewrite_events(redact_deep, log)
    finally:
        await tracker.close()


async def scrub_tickets(url: str, log: Callable[[str], None] = print) -> tuple[int, int]:
    """Redact the free-text fields of tickets and notes; return (tickets, notes) changed."""
    engine = make_engine(url)
    fields = ("description", "tried", "impact", "transcript", "csat_comment")
    changed_tickets = changed_notes = 0
    try:
        async with engine.begin() as conn:
            for row in (await conn.execute(sa.select(tickets.c.id, *(tickets.c[f] for f in fields)))).fetchall():
                values = {f: redact_deep(getattr(row, f)) for f in fields}
                if any(values[f] != getattr(row, f) for f in fields):
                    await conn.execute(tickets.update().where(tickets.c.id == row.id).values(**values))
                    changed_tickets += 1
            for row in (await conn.execute(sa.select(ticket_notes.c.id, ticket_notes.c.text))).fetchall():
                cleaned = redact(row.text)
                if cleaned != row.text:
                    await conn.execute(ticket_notes.update().where(ticket_notes.c.id == row.id).values(text=cleaned))
                    changed_notes += 1
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"ticket store unavailable ({type(exc).__name__})") from exc
    finally:
        await engine.dispose()
    log(f"  tickets: {changed_tickets} rewritten, notes: {changed_notes} rewritten")
    return changed_tickets, changed_notes


async def vacuum_postgres(url: str, tables: tuple[str, ...]) -> None:
    """Rewrite the tables so that the old row versions are gone from their files."""
    engine = make_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            names = set(await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names()))
            for table in tables:
                if table in names:
                    await conn.exec_driver_sql(f'VACUUM FULL "{table}"')  # names from this module, not input
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"could not vacuum ({type(exc).__name__})") from exc
    finally:
        await engine.dispose()


async def scrub(database_url: str, tracker_store_url: str, log: Callable[[str], None] = print) -> ScrubReport:
    """Scrub both stores and purge the old versions of what changed."""
    report = ScrubReport()
    log("scrubbing Rasa's tracker store…")
    report.events_changed = await scrub_tracker(tracker_store_url, log)
    log("scrubbing tickets and notes…")
    report.tickets_changed, report.notes_changed = await scrub_tickets(database_url, log)
    log("purging old copies…")
    for url, tables in ((tracker_store_url, ("events",)), (database_url, ("tickets", "ticket_notes"))):
        if url.startswith("postgres"):
            await vacuum_postgres(url, tables)
        else:
            await purge_sqlite_files(url)
    return report
