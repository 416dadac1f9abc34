"""Live chat delivery: N simultaneous chats with M agents, latency and losses.

    .venv/bin/python bench/bench_live.py [--chats 20] [--agents 5] [--rounds 10]
        [--database-url postgresql://…]   # two web service processes on PostgreSQL

Starts its own services (Rasa, the action server, one web service on SQLite, or two on
PostgreSQL: customers on the first, agents on the second, so every message crosses
processes through LISTEN/NOTIFY) with a policy that is open around the clock and M staff
tokens. Every chat is a real conversation: "talk to a human" through Rasa, then
"Chat with an agent now"; agents claim them round robin. Each customer and each agent
reads its chat's server-sent events. Then, all chats at once, each round the customer
sends a message (POST /api/chat, which also records it in Rasa's paused tracker) and the
agent answers (POST /api/staff/live/{id}/messages). Latency is from just before the POST
to the moment the other side's stream delivers the event (one clock: the same process).
"Lost" is a message sent but never delivered within 10 s; "doubled" one delivered twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.launcher import ensure_model, free_local_port, start_all, stop_all, web_service  # noqa: E402
from bot.migrations import upgrade  # noqa: E402
from bot.settings import Settings  # noqa: E402




def open_policy(folder: Path) -> Path:
    doc = yaml.safe_load((ROOT / "data" / "support_policy.yml").read_text(encoding="utf-8"))
    days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    doc["business_hours"] = {"days": days, "opens": "00:00", "closes": "23:59"}
    path = folder / "support_policy.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Stream:
    """One server-sent event stream; records when each message event arrives."""

    def __init__(self) -> None:
        self.arrived: dict[str, list[float]] = {}
        self.task: asyncio.Task | None = None

    async def read(self, session: aiohttp.ClientSession, url: str, headers: dict[str, str], wanted: str) -> None:
        after = 0
        while True:
            try:
                async with session.get(f"{url}?after={after}", headers=headers,
                                       timeout=aiohttp.ClientTimeout(total=None)) as response:
                    data = event = ""
                    async for raw in response.content:
                        line = raw.decode().rstrip("\n")
                        if line.startswith("event:"):
                            event = line[6:].strip()
                        elif line.startswith("data:"):
                            data = line[5:].strip()
                        elif not line and event == "live" and data:
                            item = json.loads(data)
                            after = item["seq"]
                            if item["kind"] == "message" and item["sender"] == wanted:
                                self.arrived.setdefault(item["text"], []).append(time.perf_counter())
                            data = event = ""
            except (aiohttp.ClientError, asyncio.TimeoutError):
                await asyncio.sleep(0.2)


async def run(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-live-"))
    tokens = {f"agent{i + 1}": secrets.token_urlsafe(24) for i in range(args.agents)}
    database = args.database_url or f"sqlite:///{folder / 'support.db'}"
    settings = Settings(
        rasa_port=free_local_port(), actions_port=free_local_port(), web_port=free_local_port(), demo_pages=False, data_dir=folder,
        rasa_token=secrets.token_urlsafe(24), actions_token=secrets.token_urlsafe(24), policy_path=open_policy(folder),
        database_url=database, tracker_store_url=database if database.startswith("postgresql") else "",
        staff_tokens=",".join(f"{n}:{t}" for n, t in tokens.items()),
        rate_per_conversation=6000, rate_burst_conversation=1000, rate_per_client=60000, rate_burst_client=10000,
        rate_reads_per_client=60000, rate_burst_reads_client=10000,
    )
    await asyncio.to_thread(upgrade, database)
    services = await asyncio.to_thread(lambda: start_all(settings, ensure_model(settings)))
    customer_url = agent_url = f"http://127.0.0.1:{settings.web_port}"
    if database.startswith("postgresql"):
        port = free_local_port()
        second = web_service(settings.with_changes(web_port=port))
        second.name, second.log_path = "web-2", folder / "logs" / "web-2.log"
        second.start()
        services.append(second)
        second.wait_ready(settings.startup_timeout_s)
        agent_url = f"http://127.0.0.1:{port}"
    try:
        await measure(args, customer_url, agent_url, tokens)
    finally:
        stop_all(services)
        shutil.rmtree(folder, ignore_errors=True)


async def measure(args: argparse.Namespace, customer_url: str, agent_url: str, tokens: dict[str, str]) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        auth = {name: {"Authorization": f"Bearer {token}"} for name, token in tokens.items()}

        async def call(method: str, url: str, body: dict | None = None, headers: dict | None = None) -> dict:
            async with session.request(method, url, json=body, headers=headers or {}) as response:
                answer = await response.json()
                if response.status >= 300:
                    raise RuntimeError(f"{method} {url}: {response.status} {answer}")
                return answer

        for name in tokens:
            await call("POST", f"{agent_url}/api/staff/live/presence", {"status": "online"}, auth[name])
        senders = ["bench-" + secrets.token_hex(16) for _ in range(args.chats)]

        async def queue(sender: str) -> int:
            await call("POST", f"{customer_url}/api/chat", {"sender": sender, "message": "I want to talk to a human"})
            started = await call("POST", f"{customer_url}/api/conversations/{sender}/live", {"channel": "web_chat"})
            return started["chat"]["id"]

        chat_ids = list(await asyncio.gather(*(queue(s) for s in senders)))
        agents = list(tokens)
        owner = {chat_id: agents[i % len(agents)] for i, chat_id in enumerate(chat_ids)}
        for chat_id in chat_ids:
            await call("POST", f"{agent_url}/api/staff/live/{chat_id}/claim", {}, auth[owner[chat_id]])

        to_agent = {c: Stream() for c in chat_ids}  # what each agent's console receives
        to_customer = {c: Stream() for c in chat_ids}
        for sender, chat_id in zip(senders, chat_ids):
            to_customer[chat_id].task = asyncio.create_task(to_customer[chat_id].read(
                session, f"{customer_url}/api/conversations/{sender}/live/stream", {}, "agent"))
            to_agent[chat_id].task = asyncio.create_task(to_agent[chat_id].read(
                session, f"{agent_url}/api/staff/live/{chat_id}/stream", auth[owner[chat_id]], "customer"))
        await asyncio.sleep(1.0)  # streams connected

        sent: list[tuple[str, int, str, float]] = []  # (direction, chat, text, sent at)

        async def converse(sender: str, chat_id: int) -> None:
            rng = random.Random(chat_id)
            for r in range(args.rounds):
                await asyncio.sleep(rng.uniform(0.05, 0.5))
                text = f"customer {chat_id} round {r}"
                sent.append(("customer→agent", chat_id, text, time.perf_counter()))
                await call("POST", f"{customer_url}/api/chat",
                           {"sender": sender, "message": text, "client_id": f"r{r}"})
                await asyncio.sleep(rng.uniform(0.05, 0.5))
                text = f"agent {chat_id} round {r}"
                sent.append(("agent→customer", chat_id, text, time.perf_counter()))
                await call("POST", f"{agent_url}/api/staff/live/{chat_id}/messages", {"text": text},
                           auth[owner[chat_id]])

        started = time.perf_counter()
        await asyncio.gather(*(converse(s, c) for s, c in zip(senders, chat_ids)))
        elapsed = time.perf_counter() - started
        await asyncio.sleep(10)  # stragglers

        results: dict[str, list[float]] = {"customer→agent": [], "agent→customer": []}
        lost = doubled = 0
        for direction, chat_id, text, at in sent:
            stream = to_agent[chat_id] if direction == "customer→agent" else to_customer[chat_id]
            arrivals = stream.arrived.get(text, [])
            if not arrivals:
                lost += 1
                continue
            doubled += len(arrivals) > 1
            results[direction].append((arrivals[0] - at) * 1000)
        for stream in (*to_agent.values(), *to_customer.values()):
            stream.task.cancel()
        for chat_id in chat_ids:
            await call("POST", f"{agent_url}/api/staff/live/{chat_id}/end", {}, auth[owner[chat_id]])

    every = [v for values in results.values() for v in values]
    print(f"{args.chats} chats, {args.agents} agents, {args.rounds} rounds: {len(sent)} messages in {elapsed:.1f} s; "
          f"web processes: {'2 (PostgreSQL)' if customer_url != agent_url else '1 (SQLite)'}")
    for direction, values in [*results.items(), ("all", every)]:
        if values:
            print(f"{direction:15s} n={len(values):4d}  p50={statistics.median(values):6.1f} ms  "
                  f"p95={percentile(values, 95):6.1f} ms  max={max(values):6.1f} ms")
    print(f"lost={lost}  doubled={doubled}")
    if lost or doubled or percentile(every, 95) >= 500:
        raise SystemExit("FAILED: messages lost or doubled, or p95 ≥ 500 ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=20)
    parser.add_argument("--agents", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--database-url", default="", help="postgresql://… for two web processes on PostgreSQL")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
