"""Live chat: a person from the team takes over a conversation from the bot (issue 18).

One straight path:

1. `availability` — a person is available inside the policy's business hours when at
   least one agent is online in the console (pure function of policy, time, presence).
2. `start` — the customer chose "Chat with an agent now": the chat joins the queue and
   Rasa's tracker gets `pause` (Rasa's own ConversationPaused event), so Rasa does not
   answer; the support-request form is stopped. When the chat ends, its messages are
   appended to the tracker (`tracker_turns`), so it keeps the whole conversation.
3. `relay_customer` / agent messages — stored as numbered `live_events`
   (bot/live_store.py) and delivered to streams by `LiveHub`.
4. `finish` — the agent ends or hands back: Rasa gets `resume`, the chat becomes a
   resolved ticket with the redacted transcript (bot turns, customer, agent), the agent
   and the timings, so the customer's CSAT question follows as for every ticket.

`LiveHub` wakes the streams waiting on a chat. The database is the source of truth; the
hub only says "look again". On PostgreSQL it LISTENs to `makana_live` (asyncpg), so a
write in one web service process wakes streams in every other; on SQLite (one process)
the writer wakes its own streams. Waiting streams also look again every few seconds, so
a lost notification (listener reconnecting) delays a delivery but never loses it.

Raises `StoreUnavailable` and `AssistantUnavailable` from the layers below, and
`LiveUnavailable` when nobody can take a chat now.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
from dataclasses import dataclass
from typing import Any, Iterable

from bot.rasa_client import AssistantClient, AssistantUnavailable
from bot.policy import SEVERITY_ORDER, SupportPolicy
from bot.redaction import redact
from bot.settings import Settings
from bot.store import Store, TicketDraft
from bot.live_store import NOTIFY_CHANNEL, QUEUE, LiveChat, LiveStore
from bot.transcripts import transcript_from_events

log = logging.getLogger(__name__)

DEFAULT_WAIT_S = 120.0  # the estimate before any chat has been claimed
FIELD_SLOTS = ("name", "email", "product", "version", "description", "tried", "impact")


class LiveUnavailable(RuntimeError):
    """No agent can take a chat now (closed, or nobody online); `next_opening` says when."""

    def __init__(self, reason: str, next_opening: dt.datetime | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.next_opening = next_opening


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str  # "available" | "closed" | "nobody_online"
    agents_online: int
    next_opening: dt.datetime | None


def availability(policy: SupportPolicy, now: dt.datetime, online: Iterable[str]) -> Availability:
    """A person can chat now when the policy says support is open and someone is online."""
    agents = len(list(online))
    if not policy.is_open(now):
        return Availability(False, "closed", agents, policy.next_opening(now))
    if agents == 0:
        return Availability(False, "nobody_online", 0, None)
    return Availability(True, "available", agents, None)


def estimated_wait_s(position: int, agents_online: int, recent_waits: list[float]) -> float:
    """Seconds until an agent is expected: the median recent wait per place in the queue,
    shared among the agents online."""
    if position <= 0:
        return 0.0
    per_place = sorted(recent_waits)[len(recent_waits) // 2] if recent_waits else DEFAULT_WAIT_S
    return per_place * math.ceil(position / max(1, agents_online))


LIVE_OFFER = (
    "Someone from our team is online now: you can chat with them here, or leave a ticket and we'll answer by email."
)


async def live_availability(store: Store, policy: SupportPolicy, settings: Settings, now: dt.datetime) -> Availability:
    """Availability from the console's presence rows (for the action server); outside
    business hours the database is not asked."""
    if not policy.is_open(now):
        return availability(policy, now, [])
    online = await LiveStore(store.engine).online_agents(now, dt.timedelta(seconds=settings.live_presence_stale_s))
    return availability(policy, now, online)


class LiveHub:
    """Wakes the streams that wait on a chat (or on the queue, id 0)."""

    def __init__(self) -> None:
        self._waiters: dict[int, set[asyncio.Event]] = {}
        self._listener: Any = None
        self._task: asyncio.Task | None = None

    def subscribe(self, *chat_ids: int) -> asyncio.Event:
        """An event set whenever one of `chat_ids` changes; `unsubscribe` it when done."""
        wake = asyncio.Event()
        for chat_id in chat_ids:
            self._waiters.setdefault(chat_id, set()).add(wake)
        return wake

    def unsubscribe(self, wake: asyncio.Event) -> None:
        for chat_id in list(self._waiters):
            self._waiters[chat_id].discard(wake)
            if not self._waiters[chat_id]:
                del self._waiters[chat_id]

    def publish(self, chat_id: int) -> None:
        for wake in list(self._waiters.get(chat_id, ())):
            wake.set()

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        with contextlib.suppress(ValueError):
            self.publish(int(payload))

    async def start(self, database_url: str) -> None:
        """Listen for other processes' writes (PostgreSQL only)."""
        if database_url.startswith(("postgresql://", "postgres://", "postgresql+asyncpg://")):
            self._task = asyncio.create_task(self._listen(database_url))

    async def _listen(self, database_url: str) -> None:
        import asyncpg

        dsn = "postgresql://" + database_url.split("://", 1)[1]
        while True:
            try:
                conn = await asyncpg.connect(dsn, timeout=10)
                await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
                self._listener = conn
                # Everything written while we were not listening: streams look again.
                for chat_id in list(self._waiters):
                    self.publish(chat_id)
                while not conn.is_closed():
                    await asyncio.sleep(2)
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
                log.warning("live chat listener lost the database (%s); reconnecting", type(exc).__name__)
            await asyncio.sleep(1)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listener is not None and not self._listener.is_closed():
            await self._listener.close()


@dataclass
class LiveService:
    """The live chat journey over the store, Rasa and the hub."""

    store: Store
    live: LiveStore
    assistant: AssistantClient
    policy: SupportPolicy
    hub: LiveHub
    presence_stale: dt.timedelta
    wait_timeout: dt.timedelta

    def changed(self, chat_id: int, queue: bool = False) -> None:
        """Wake this process's streams (other processes hear PostgreSQL's NOTIFY)."""
        self.hub.publish(chat_id)
        if queue:
            self.hub.publish(QUEUE)

    async def availability(self, now: dt.datetime) -> Availability:
        return availability(self.policy, now, await self.live.online_agents(now, self.presence_stale))

    async def queue_info(self, chat: LiveChat, now: dt.datetime) -> dict[str, Any]:
        """What the waiting customer sees: place, estimate, and whether to offer a ticket."""
        position = await self.live.queue_position(chat)
        agents = len(await self.live.online_agents(now, self.presence_stale))
        wait = estimated_wait_s(position, agents, await self.live.recent_waits())
        waited = (now - chat.requested_at).total_seconds()
        return {
            "position": position,
            "estimated_wait_s": round(wait),
            "waited_s": round(waited),
            "offer_ticket": chat.status == "waiting" and waited >= self.wait_timeout.total_seconds(),
            "agents_online": agents,
        }

    async def start(self, conversation_id: str, channel: str, now: dt.datetime) -> LiveChat:
        """Queue the conversation for an agent and pause the bot; LiveUnavailable if nobody can come."""
        existing = await self.live.open_for(conversation_id)
        if existing is not None:
            return existing
        state = await self.availability(now)
        if not state.available:
            raise LiveUnavailable(state.reason, state.next_opening)
        slots = (await self.assistant.tracker(conversation_id)).get("slots") or {}
        fields = {k: str(slots[k]) for k in FIELD_SLOTS if slots.get(k)}
        severity = next(
            (str(slots[k]) for k in ("severity", "urgent_severity", "proposed_severity") if slots.get(k) in SEVERITY_ORDER),
            None,
        )
        chat, created = await self.live.start(conversation_id, channel, severity, fields, now)
        if created:
            # Rasa's own events: the form stops, and the conversation is paused until resumed.
            await self.assistant.append_events(
                conversation_id,
                [
                    {"event": "active_loop", "name": None, "timestamp": now.timestamp()},
                    {"event": "slot", "name": "requested_slot", "value": None, "timestamp": now.timestamp()},
                    {"event": "pause", "timestamp": now.timestamp()},
                ],
            )
            self.changed(chat.id, queue=True)
        return chat

    async def relay_customer(
        self, conversation_id: str, text: str, client_id: str | None, now: dt.datetime
    ) -> tuple[LiveChat, Any] | None:
        """While a chat is open, store the (redacted) message for the agent (Rasa's tracker
        gets it when the chat ends); None when no live chat is open."""
        chat = await self.live.open_for(conversation_id)
        if chat is None:
            return None
        event = await self.live.append(chat.id, "message", "customer", None, text, now, client_id=client_id)
        self.changed(chat.id)
        return chat, event

    async def agent_message(self, chat_id: int, agent: str, text: str, client_id: str | None, now: dt.datetime) -> Any:
        event = await self.live.append(chat_id, "message", "agent", agent, text, now, client_id=client_id, agent=agent)
        self.changed(chat_id)
        return event

    async def tracker_turns(self, chat: LiveChat, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        """The chat's messages as Rasa events, with their own times: customer turns as user
        events (not parsed: they were for a person), agent turns as bot utterances marked
        with the agent's name. Added in one call when the chat ends, so that Rasa does not
        load and save the conversation once per live message."""
        turns: list[dict[str, Any]] = []
        for e in await self.live.events_after(chat.id, 0, limit=10_000):
            if e.kind != "message":
                continue
            if e.sender == "customer":
                turns.append({
                    "event": "user", "text": e.text, "timestamp": e.created_at.timestamp(), "metadata": metadata,
                    "input_channel": "rest", "parse_data": {"text": e.text, "entities": []},  # no intent: not parsed
                })
            else:
                turns.append({"event": "bot", "text": e.text, "timestamp": e.created_at.timestamp(),
                              "metadata": {"live_agent": e.author}})
        return turns

    async def finish(self, chat_id: int, reason: str, now: dt.datetime, agent: str | None = None) -> LiveChat:
        """End the chat, resume the bot; after a chat with an agent, record it as a ticket."""
        chat = await self.live.end(chat_id, reason, now, agent=agent, announce=False)
        try:
            resume = {"event": "resume", "timestamp": now.timestamp()}
            try:
                turns = await self.tracker_turns(chat, {"channel": chat.channel})
                await self.assistant.append_events(chat.conversation_id, [*turns, resume])
            except AssistantUnavailable as exc:
                log.warning("live chat %s: the chat's turns did not reach Rasa's tracker (%s)", chat_id, exc)
                try:  # the bot must come back in any case
                    await self.assistant.append_events(chat.conversation_id, [resume])
                except AssistantUnavailable as again:
                    log.warning("live chat %s: Rasa could not be resumed (%s)", chat_id, again)
            if chat.agent and reason in ("ended", "handed_back"):
                # Before the customer hears the chat ended: their CSAT question needs the ticket.
                number = await self.record_ticket(chat, now)
                await self.live.set_ticket(chat.id, number)
        finally:
            await self.live.announce_end(chat_id, now)
            self.changed(chat_id, queue=True)
        return await self.live.get(chat_id)

    async def record_ticket(self, chat: LiveChat, now: dt.datetime) -> str:
        """A resolved ticket for the chat: redacted transcript, agent, timings."""
        events = (await self.assistant.tracker(chat.conversation_id)).get("events") or []
        before = [e for e in events if float(e.get("timestamp") or 0) < chat.requested_at.timestamp()]
        transcript = transcript_from_events(before)
        customer_texts = []
        for e in await self.live.events_after(chat.id, 0, limit=10_000):
            if e.kind != "message":
                continue
            if e.sender == "customer":
                customer_texts.append(e.text or "")
            entry = {"at": e.created_at.isoformat(), "speaker": e.sender, "text": redact(e.text or "")}
            if e.sender == "agent":
                entry["agent"] = e.author
            transcript.append(entry)
        fields = chat.fields
        severity = chat.severity or SEVERITY_ORDER[-1]
        description = fields.get("description") or next((t for t in customer_texts if t), "Live chat")
        draft = TicketDraft(
            submission_key=f"live-chat:{chat.id}",
            conversation_id=chat.conversation_id,
            severity=severity,
            category="live_chat",
            channel=chat.channel,
            name=fields.get("name", ""),
            email=fields.get("email", "").lower(),
            product=fields.get("product", ""),
            version=fields.get("version", ""),
            description=redact(description),
            tried=redact(fields.get("tried", "")),
            impact=redact(fields.get("impact", "")),
            transcript=transcript,
            response_due_at=self.policy.response_due(severity, chat.requested_at),
            owner_user_id=None,
            proposed_severity=chat.severity,
        )
        ticket, _ = await self.store.create_ticket(draft, chat.requested_at)
        agent = chat.agent or "agent"
        await self.store.assign(ticket.number, agent, agent, now)
        if ticket.status == "open":
            await self.store.change_status(ticket.number, "resolved", agent, now)
        await self.store.add_note(ticket.number, agent, timing_note(chat, now), now)
        return ticket.number


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def timing_note(chat: LiveChat, now: dt.datetime) -> str:
    """The chat's timings, as a note on its ticket."""
    waited = ((chat.claimed_at or now) - chat.requested_at).total_seconds()
    parts = [f"Live chat with {chat.agent} ({chat.end_reason or 'ended'}).", f"Waited {_duration(waited)} for an agent."]
    if chat.first_reply_at and chat.claimed_at:
        parts.append(f"First agent reply {_duration((chat.first_reply_at - chat.claimed_at).total_seconds())} after the claim.")
    else:
        parts.append("The agent did not write.")
    if chat.claimed_at:
        parts.append(f"Duration with the agent {_duration(((chat.ended_at or now) - chat.claimed_at).total_seconds())}.")
    return " ".join(parts)


def _median_p90(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    if not ordered:
        return {"median_s": None, "p90_s": None}
    return {
        "median_s": round(ordered[len(ordered) // 2], 1),
        "p90_s": round(ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))], 1),
    }


async def live_report(store: Store, policy: SupportPolicy, first_day: dt.date, days: int) -> dict[str, Any]:
    """The report's live chat figures: chats per day (company-local dates), how long
    customers waited for an agent (request to claim), how long the agent took to write
    first (claim to first reply), whether that first reply came within the policy's
    first-response target for the severity, and how long a chat lasted with an agent
    (claim to end)."""
    since = dt.datetime.combine(first_day, dt.time(), tzinfo=policy.tz)
    chats = await LiveStore(store.engine).requested_between(since, since + dt.timedelta(days=days))
    per_day = []
    for offset in range(days):
        day = first_day + dt.timedelta(days=offset)
        todays = [c for c in chats if c.requested_at.astimezone(policy.tz).date() == day]
        per_day.append({
            "date": day.isoformat(), "requested": len(todays),
            "claimed": sum(1 for c in todays if c.claimed_at is not None),
        })
    waits = [(c.claimed_at - c.requested_at).total_seconds() for c in chats if c.claimed_at]
    first_replies = [(c.first_reply_at - c.claimed_at).total_seconds() for c in chats if c.first_reply_at and c.claimed_at]
    durations = [(c.ended_at - c.claimed_at).total_seconds() for c in chats if c.ended_at and c.claimed_at]
    met = missed = 0
    for c in chats:
        if c.first_reply_at is None:
            continue
        due = policy.response_due(c.severity or SEVERITY_ORDER[-1], c.requested_at)
        if c.first_reply_at <= due:
            met += 1
        else:
            missed += 1
    return {
        "days": per_day,
        "requested": len(chats),
        "claimed": sum(1 for c in chats if c.claimed_at is not None),
        "unclaimed": sum(1 for c in chats if c.claimed_at is None and c.status == "ended"),
        "wait": _median_p90(waits),
        "first_reply": _median_p90(first_replies),
        "first_reply_within_policy": {"met": met, "missed": missed},
        "duration": _median_p90(durations),
    }
