"""Data-protection erasure and the scrub command, on real databases: every conversation
that holds the email goes (abandoned forms included), the call's calendar event is
deleted, and no copy stays in SQLite's files; `scrub` removes secrets stored before
redaction happened at the edge."""

from __future__ import annotations

import datetime as dt
import json
import secrets

import pytest
import sqlalchemy as sa

from bot.google_calendar import Meeting
from bot.privacy import erase_customer, export_customer
from bot.tracker_store import TrackerStore
from bot.scrub import scrub
from bot.settings import Settings
from bot.store import make_engine, tickets
from bot.tickets import open_ticket
from tests.test_tickets import CONVERSATION, REQUEST, SATURDAY_1829

# Rasa's SQL tracker store table (the columns it writes).
EVENTS = sa.Table(
    "events",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender_id", sa.String(255)),
    sa.Column("type_name", sa.String(255)),
    sa.Column("timestamp", sa.Float),
    sa.Column("intent_name", sa.String(255)),
    sa.Column("action_name", sa.String(255)),
    sa.Column("data", sa.Text),
)


class RecordingCalendar:
    """A calendar that keeps what it was asked to do (the Calendar protocol)."""

    def __init__(self) -> None:
        self.deleted: list[str] = []

    async def create_meeting(self, ticket, slot, attendees) -> Meeting:  # type: ignore[no-untyped-def]
        raise AssertionError("not used here")

    async def delete_meeting(self, event_id: str) -> None:
        self.deleted.append(event_id)

    async def busy(self, from_: dt.datetime, to: dt.datetime) -> list:
        return []


async def tracker_with(url: str, conversations: dict[str, list[dict]]) -> None:
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(EVENTS.metadata.create_all)
        for sender, events in conversations.items():
            for i, event in enumerate(events):
                await conn.execute(
                    EVENTS.insert().values(
                        sender_id=sender, type_name=event["event"], timestamp=1_764_000_000.0 + i, data=json.dumps(event)
                    )
                )
    await engine.dispose()


async def senders_in(url: str) -> set[str]:
    engine = make_engine(url)
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(EVENTS.c.sender_id).distinct())).fetchall()
    await engine.dispose()
    return {row[0] for row in rows}


@pytest.fixture
def tracker_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'rasa_tracker.db'}"


async def test_erase_covers_every_conversation_with_the_email_and_deletes_the_calendar_event(
    store, policy, tracker_url, tmp_path
):
    email = REQUEST.email
    ticket, _ = await open_ticket(store, policy, REQUEST, "ticketed", "web_chat", CONVERSATION, SATURDAY_1829)
    start = SATURDAY_1829 + dt.timedelta(days=2)
    booking = await store.book_slot(ticket.id, start, start + dt.timedelta(minutes=30), None, SATURDAY_1829)
    await store.set_booking_calendar(booking.id, "booked", "https://meet.google.com/abc", "evt-42", SATURDAY_1829)
    await tracker_with(tracker_url, {
        "ticketed": [{"event": "user", "text": "the bank feed fails"}],
        "abandoned": [  # a form given up after the email: no ticket
            {"event": "user", "text": "talk to a human"},
            {"event": "slot", "name": "email", "value": email.upper()},
        ],
        "pane": [{"event": "user", "text": "hi", "metadata": {"identity": {"email": email}}}],
        "someone-else": [{"event": "user", "text": "how do I export invoices?"}],
    })
    settings = Settings(database_url=store.engine.url.render_as_string(hide_password=False).replace("+aiosqlite", "")
                        .replace("+asyncpg", ""), tracker_store_url=tracker_url, data_dir=tmp_path)
    tracker = TrackerStore.open(tracker_url)
    try:
        exported = await export_customer(store, tracker, email, "tester", SATURDAY_1829)
        assert set(exported["conversations"]) == {"ticketed", "abandoned", "pane"}
        assert [turn["text"] for turn in exported["conversations"]["ticketed"]] == ["the bank feed fails"]
        assert {"slot": "email", "value": email.upper()}.items() <= exported["conversations"]["abandoned"][1].items()
        calendar = RecordingCalendar()
        result = await erase_customer(store, calendar, settings, tracker, email, "tester", SATURDAY_1829)
    finally:
        await tracker.close()
    assert result["calls_cancelled"] == 1 and calendar.deleted == ["evt-42"]
    assert (await store.booking_for_ticket(ticket.id)) is None
    assert await senders_in(tracker_url) == {"someone-else"}
    assert (await store.get_ticket(ticket.number)).email == "[erased]"
    files = [p for p in tmp_path.glob("*.db*")]
    assert files and not [p for p in files if email.encode() in p.read_bytes().lower()]


async def test_scrub_removes_secrets_stored_before_redaction_moved_to_the_edge(store, policy, tracker_url, tmp_path):
    card = "4111111111111111"
    password = "Kailua" + secrets.token_hex(4)
    await tracker_with(tracker_url, {
        "old": [
            {"event": "user", "text": f"my card {card} was charged", "parse_data": {"text": f"my card {card} was charged"}},
            {"event": "slot", "name": "tried", "value": f"password: {password}"},
            {"event": "bot", "text": f"You said “password: {password}”"},
        ]
    })
    ticket, _ = await open_ticket(store, policy, REQUEST, "old", "web_chat", CONVERSATION, SATURDAY_1829)
    async with store.engine.begin() as conn:  # as an old version stored it, unredacted
        await conn.execute(
            tickets.update().where(tickets.c.id == ticket.id).values(
                tried=f"password: {password}",
                transcript=[{"at": "2026-11-28T00:00:00+00:00", "speaker": "customer", "text": f"card {card}"}],
            )
        )
    database_url = store.engine.url.render_as_string(hide_password=False)
    report = await scrub(database_url, tracker_url, log=lambda line: None)
    assert report.events_changed == 3 and report.tickets_changed == 1
    scrubbed = await store.get_ticket(ticket.number)
    assert password not in scrubbed.tried and card not in json.dumps(scrubbed.transcript)
    engine = make_engine(tracker_url)
    async with engine.connect() as conn:
        stored = " ".join(row[0] for row in (await conn.execute(sa.select(EVENTS.c.data))).fetchall())
    await engine.dispose()
    assert card not in stored and password not in stored and "[card number removed]" in stored
    leftovers = [p for p in tmp_path.glob("*.db*") if card.encode() in p.read_bytes() or password.encode() in p.read_bytes()]
    assert not leftovers
