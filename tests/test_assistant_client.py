"""How the web service spreads messages over several Rasa servers (bot/rasa_client.py),
against real HTTP servers that answer like Rasa's REST channel."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from bot.rasa_client import AssistantClient, AssistantUnavailable
from tests.conftest import free_port


def rasa_like(name: str, received: list[str], status: int = 200, delay: float = 0.0) -> web.Application:
    async def webhook(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer t":  # the REST channel's token (rasa_plugins)
            return web.json_response({"error": "no token"}, status=401)
        body = await request.json()
        received.append(f"{name}:{body['message']}")
        await asyncio.sleep(delay)
        return web.json_response([{"text": f"{name} got {body['message']}"}], status=status)

    async def tracker(request: web.Request) -> web.Response:
        if request.query.get("token") != "t":  # Rasa's --auth-token
            return web.json_response({"error": "no token"}, status=401)
        received.append(f"{name}:tracker")
        await asyncio.sleep(delay)
        return web.json_response({"events": []}, status=status)

    app = web.Application()
    app.router.add_post("/webhooks/rest/webhook", webhook)
    app.router.add_get("/conversations/{sender}/tracker", tracker)
    return app


async def test_messages_take_turns_across_servers(aiohttp_server):
    received: list[str] = []
    one = await aiohttp_server(rasa_like("one", received))
    two = await aiohttp_server(rasa_like("two", received))
    async with aiohttp.ClientSession() as session:
        client = AssistantClient(session, [str(one.make_url("")), str(two.make_url(""))], token="t", timeout_s=5)
        for i in range(4):
            await client.send("c1", f"m{i}")
    assert received == ["one:m0", "two:m1", "one:m2", "two:m3"]


async def test_a_refused_server_is_skipped_and_its_message_goes_to_the_next(aiohttp_server):
    received: list[str] = []
    alive = await aiohttp_server(rasa_like("alive", received))
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with aiohttp.ClientSession() as session:
        client = AssistantClient(session, [dead, str(alive.make_url(""))], token="t", timeout_s=5, retry_after_s=60)
        replies = [await client.send("c1", f"m{i}") for i in range(3)]
    assert [r[0].text for r in replies] == ["alive got m0", "alive got m1", "alive got m2"]
    assert received == ["alive:m0", "alive:m1", "alive:m2"]


async def test_a_message_that_reached_a_failing_server_is_not_sent_twice(aiohttp_server):
    received: list[str] = []
    failing = await aiohttp_server(rasa_like("failing", received, status=500))
    other = await aiohttp_server(rasa_like("other", received))
    async with aiohttp.ClientSession() as session:
        client = AssistantClient(session, [str(failing.make_url("")), str(other.make_url(""))], token="t", timeout_s=5)
        with pytest.raises(AssistantUnavailable, match="HTTP 500"):
            await client.send("c1", "once")
    assert received == ["failing:once"]


async def test_a_timed_out_message_is_not_retried_but_a_read_is(aiohttp_server):
    received: list[str] = []
    slow = await aiohttp_server(rasa_like("slow", received, delay=2))
    fast = await aiohttp_server(rasa_like("fast", received))
    async with aiohttp.ClientSession() as session:
        client = AssistantClient(session, [str(slow.make_url("")), str(fast.make_url(""))], token="t", timeout_s=0.5)
        with pytest.raises(AssistantUnavailable, match="TimeoutError"):
            await client.send("c1", "slowly")
        assert received == ["slow:slowly"]
        # Turn two goes to `fast`; turn three is a read for `slow`, which fails over to `fast`.
        await client.send("c1", "quick")
        assert (await client.tracker("c1")) == {"events": []}
    assert received == ["slow:slowly", "fast:quick", "slow:tracker", "fast:tracker"]


async def test_every_server_refusing_is_unavailable():
    async with aiohttp.ClientSession() as session:
        client = AssistantClient(session, [f"http://127.0.0.1:{free_port()}" for _ in range(2)], token="t", timeout_s=2)
        with pytest.raises(AssistantUnavailable, match="could not be reached"):
            await client.send("c1", "anyone?")
        assert await client.readiness() == [False, False]
