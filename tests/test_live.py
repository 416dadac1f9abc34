"""Live chat's library parts on a real database: availability with a fixed clock, the
atomic claim, per-chat numbering under concurrent writers, presence, and the hub."""

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bot.live import LiveHub, availability, estimated_wait_s, timing_note
from bot.live_store import ChatConflict, LiveStore

HNL = ZoneInfo("Pacific/Honolulu")
MONDAY_AFTERNOON = dt.datetime(2026, 11, 30, 15, 0, tzinfo=HNL)
MONDAY_NIGHT = dt.datetime(2026, 11, 30, 21, 0, tzinfo=HNL)
SUNDAY = dt.datetime(2026, 11, 29, 11, 0, tzinfo=HNL)
STALE = dt.timedelta(seconds=60)
CONVERSATION = "w-" + "a" * 30


def test_a_person_is_available_only_in_hours_with_someone_online(policy):
    assert availability(policy, MONDAY_AFTERNOON, ["alice"]).available
    closed = availability(policy, MONDAY_NIGHT, ["alice"])
    assert (closed.available, closed.reason) == (False, "closed")
    assert closed.next_opening == dt.datetime(2026, 12, 1, 9, 30, tzinfo=HNL)
    assert availability(policy, SUNDAY, ["alice"]).reason == "closed"
    nobody = availability(policy, MONDAY_AFTERNOON, [])
    assert (nobody.available, nobody.reason, nobody.next_opening) == (False, "nobody_online", None)


def test_the_estimate_shares_the_queue_among_agents():
    assert estimated_wait_s(0, 2, [30.0]) == 0
    assert estimated_wait_s(1, 1, [10.0, 30.0, 50.0]) == 30.0
    assert estimated_wait_s(3, 2, [30.0]) == 60.0  # places 1-2 go first, place 3 in the second round
    assert estimated_wait_s(1, 0, []) == 120.0  # no history yet: the default


async def test_presence_goes_stale_without_a_heartbeat(store):
    live = LiveStore(store.engine)
    await live.set_presence("alice", "online", MONDAY_AFTERNOON)
    await live.set_presence("bob", "away", MONDAY_AFTERNOON)
    assert await live.online_agents(MONDAY_AFTERNOON + dt.timedelta(seconds=30), STALE) == ["alice"]
    assert await live.online_agents(MONDAY_AFTERNOON + dt.timedelta(seconds=61), STALE) == []
    await live.set_presence("alice", "online", MONDAY_AFTERNOON + dt.timedelta(seconds=61))
    assert await live.presence(MONDAY_AFTERNOON + dt.timedelta(seconds=62), STALE) == {"alice": "online", "bob": "offline"}
    with pytest.raises(ValueError):
        await live.set_presence("alice", "busy", MONDAY_AFTERNOON)


async def test_one_agent_wins_a_claim_and_the_queue_is_by_severity_then_wait(store):
    live = LiveStore(store.engine)
    low, created = await live.start("w-low-" + "b" * 20, "web_chat", "low", {}, MONDAY_AFTERNOON)
    assert created
    again, created = await live.start("w-low-" + "b" * 20, "web_chat", "low", {}, MONDAY_AFTERNOON)
    assert (again.id, created) == (low.id, False)
    critical, _ = await live.start("w-crit-" + "c" * 20, "in_app", "critical", {}, MONDAY_AFTERNOON + dt.timedelta(minutes=5))
    unknown, _ = await live.start("w-unk-" + "d" * 20, "web_chat", None, {}, MONDAY_AFTERNOON - dt.timedelta(minutes=5))
    assert [c.id for c in await live.active()] == [critical.id, low.id, unknown.id]
    assert await live.queue_position(await live.get(low.id)) == 2

    results = await asyncio.gather(
        *(live.claim(critical.id, name, MONDAY_AFTERNOON) for name in ("alice", "bob", "carol", "dave")),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) == 1 and winners[0].status == "claimed"
    assert all(isinstance(r, ChatConflict) for r in results if isinstance(r, Exception))
    winner = winners[0].agent
    other = "bob" if winner != "bob" else "alice"
    with pytest.raises(ChatConflict):  # only the agent who has it may write as the agent
        await live.append(critical.id, "message", "agent", other, "hi", MONDAY_AFTERNOON, agent=other)
    with pytest.raises(ChatConflict):
        await live.transfer(critical.id, other, "carol", MONDAY_AFTERNOON)
    moved = await live.transfer(critical.id, winner, "carol", MONDAY_AFTERNOON)
    assert moved.agent == "carol"
    assert [c.id for c in await live.active()][-1] == critical.id  # claimed chats after the waiting ones


async def test_events_are_numbered_in_order_once_under_concurrent_writers(store):
    live = LiveStore(store.engine)
    chat, _ = await live.start(CONVERSATION, "web_chat", "high", {"name": "Kai"}, MONDAY_AFTERNOON)
    await live.claim(chat.id, "alice", MONDAY_AFTERNOON)

    async def customer(i: int):
        return await live.append(chat.id, "message", "customer", None, f"c{i}", MONDAY_AFTERNOON, client_id=f"c{i}")

    async def agent(i: int):
        return await live.append(chat.id, "message", "agent", "alice", f"a{i}", MONDAY_AFTERNOON, agent="alice")

    written = await asyncio.gather(*(customer(i) for i in range(15)), *(agent(i) for i in range(15)))
    events = await live.events_after(chat.id, 0)
    assert [e.seq for e in events] == list(range(1, 33))  # waiting, claimed, then 30 messages
    assert sorted(e.seq for e in written) == list(range(3, 33))
    # A resent customer message (same client id) is stored once and keeps its seq.
    resent = await live.append(chat.id, "message", "customer", None, "c3", MONDAY_AFTERNOON, client_id="c3")
    assert resent.seq == next(e.seq for e in written if e.text == "c3")
    assert len(await live.events_after(chat.id, 0)) == 32
    assert [e.seq for e in await live.events_after(chat.id, 30)] == [31, 32]
    assert (await live.get(chat.id)).first_reply_at == MONDAY_AFTERNOON

    ended = await live.end(chat.id, "handed_back", MONDAY_AFTERNOON + dt.timedelta(minutes=3), agent="alice")
    assert (ended.status, ended.end_reason) == ("ended", "handed_back")
    with pytest.raises(ChatConflict):
        await live.append(chat.id, "message", "customer", None, "late", MONDAY_AFTERNOON)
    assert (await live.events_after(chat.id, 32))[0].text == "handed_back"
    # The conversation may ask again later: a new chat, numbered from 1.
    second, created = await live.start(CONVERSATION, "web_chat", None, {}, MONDAY_AFTERNOON + dt.timedelta(hours=1))
    assert created and second.id != chat.id and (await live.events_after(second.id, 0))[0].seq == 1
    note = timing_note(ended, MONDAY_AFTERNOON)
    assert "Live chat with alice (handed_back)." in note and "Duration with the agent 3 min 0 s." in note


async def test_the_hub_wakes_subscribers_of_that_chat_only():
    hub = LiveHub()
    one, two = hub.subscribe(1), hub.subscribe(2, 0)
    hub.publish(2)
    assert two.is_set() and not one.is_set()
    hub.unsubscribe(two)
    two.clear()
    hub.publish(2)
    assert not two.is_set()
    hub.publish(1)
    await asyncio.wait_for(one.wait(), 1)


async def test_the_offer_follows_the_clock_and_the_console(store, policy):
    """What action_request_human asks before offering a chat: fixed clocks, real presence rows."""
    from bot.live import live_availability
    from bot.settings import Settings

    settings = Settings(live_presence_stale_s=60)
    assert (await live_availability(store, policy, settings, MONDAY_AFTERNOON)).reason == "nobody_online"
    await LiveStore(store.engine).set_presence("alice", "online", MONDAY_AFTERNOON)
    assert (await live_availability(store, policy, settings, MONDAY_AFTERNOON)).available
    away = await live_availability(store, policy, settings, MONDAY_AFTERNOON + dt.timedelta(minutes=5))
    assert away.reason == "nobody_online"  # the console stopped beating
    await LiveStore(store.engine).set_presence("alice", "online", MONDAY_NIGHT)
    night = await live_availability(store, policy, settings, MONDAY_NIGHT)
    assert (night.available, night.reason, night.next_opening) == (False, "closed", dt.datetime(2026, 12, 1, 9, 30, tzinfo=HNL))


async def test_the_report_counts_chats_waits_and_first_replies(store, policy):
    from bot.live import live_report

    live = LiveStore(store.engine)
    quick, _ = await live.start("w-quick-" + "e" * 20, "web_chat", "high", {}, MONDAY_AFTERNOON)
    await live.claim(quick.id, "alice", MONDAY_AFTERNOON + dt.timedelta(seconds=40))
    await live.append(quick.id, "message", "agent", "alice", "hi", MONDAY_AFTERNOON + dt.timedelta(seconds=70), agent="alice")
    await live.end(quick.id, "ended", MONDAY_AFTERNOON + dt.timedelta(minutes=5), agent="alice")
    missed, _ = await live.start("w-missed-" + "f" * 20, "web_chat", None, {}, MONDAY_AFTERNOON)
    await live.end(missed.id, "ticket", MONDAY_AFTERNOON + dt.timedelta(minutes=4))
    report = await live_report(store, policy, MONDAY_AFTERNOON.date() - dt.timedelta(days=1), 2)
    assert report["days"][1] == {"date": "2026-11-30", "requested": 2, "claimed": 1}
    assert (report["requested"], report["claimed"], report["unclaimed"]) == (2, 1, 1)
    assert report["wait"]["median_s"] == 40.0 and report["first_reply"]["median_s"] == 30.0
    assert report["first_reply_within_policy"] == {"met": 1, "missed": 0}
    assert report["duration"] == {"median_s": 260.0, "p90_s": 260.0}  # claimed at +40 s, ended at +5 min


async def test_the_report_gives_wait_first_reply_and_duration_percentiles(store, policy):
    """Ten chats a day apart in their waits, first replies and lengths; a critical chat
    whose first reply came 70 minutes after the request misses the policy's hour."""
    from bot.live import live_report

    live = LiveStore(store.engine)
    start = MONDAY_AFTERNOON - dt.timedelta(hours=2)
    for i in range(1, 11):
        chat, _ = await live.start(f"w-pct-{i:02d}-" + "k" * 20, "web_chat", "low", {}, start + dt.timedelta(minutes=i))
        claimed = chat.requested_at + dt.timedelta(seconds=10 * i)
        await live.claim(chat.id, "alice", claimed)
        await live.append(chat.id, "message", "agent", "alice", "hi", claimed + dt.timedelta(seconds=5 * i), agent="alice")
        await live.end(chat.id, "ended", claimed + dt.timedelta(minutes=i), agent="alice")
    late, _ = await live.start("w-late-" + "m" * 20, "web_chat", "critical", {}, start)
    await live.claim(late.id, "bob", start + dt.timedelta(minutes=50))
    await live.append(late.id, "message", "agent", "bob", "sorry", start + dt.timedelta(minutes=70), agent="bob")
    await live.end(late.id, "handed_back", start + dt.timedelta(minutes=80), agent="bob")
    # Saturday, the other day in the period, has none.
    report = await live_report(store, policy, MONDAY_AFTERNOON.date() - dt.timedelta(days=2), 3)
    assert [d["requested"] for d in report["days"]] == [0, 0, 11]
    assert report["wait"] == {"median_s": 60.0, "p90_s": 100.0}  # 10..100 s and 3000 s
    assert report["first_reply"] == {"median_s": 30.0, "p90_s": 50.0}  # 5..50 s and 1200 s
    assert report["duration"] == {"median_s": 360.0, "p90_s": 600.0}  # 1..10 min and 30 min
    assert report["first_reply_within_policy"] == {"met": 10, "missed": 1}


async def test_a_long_wait_offers_the_ticket_with_place_and_estimate(store, policy):
    from bot.live import LiveService

    live = LiveStore(store.engine)
    service = LiveService(store, live, None, policy, LiveHub(), STALE, dt.timedelta(seconds=180))  # type: ignore[arg-type]
    await live.set_presence("alice", "online", MONDAY_AFTERNOON)
    first, _ = await live.start("w-first-" + "g" * 20, "web_chat", "low", {}, MONDAY_AFTERNOON)
    second, _ = await live.start("w-second-" + "h" * 20, "web_chat", "low", {}, MONDAY_AFTERNOON)
    early = await service.queue_info(second, MONDAY_AFTERNOON + dt.timedelta(seconds=179))
    assert (early["position"], early["estimated_wait_s"], early["offer_ticket"]) == (2, 240, False)
    late = await service.queue_info(second, MONDAY_AFTERNOON + dt.timedelta(seconds=181))
    assert late["offer_ticket"] and late["waited_s"] == 181
    claimed = await live.claim(first.id, "alice", MONDAY_AFTERNOON + dt.timedelta(seconds=30))
    assert (await service.queue_info(claimed, MONDAY_AFTERNOON + dt.timedelta(seconds=400)))["offer_ticket"] is False
    after_claim = await service.queue_info(await live.get(second.id), MONDAY_AFTERNOON + dt.timedelta(seconds=40))
    assert (after_claim["position"], after_claim["estimated_wait_s"]) == (1, 30)  # the median recent wait
