"""Load generator: N concurrent simulated customers in realistic conversations.

    .venv/bin/python bench/load.py --url http://127.0.0.1:8080 --customers 1,10,50,200 --seconds 60 \\
        [--think 2-8] [--escalate-share 0.1] [--staff-token TOKEN]

Start the assistant first (`make run` or `make run-scaled`; for load runs raise
SUPPORT_RATE_PER_CLIENT and SUPPORT_RATE_BURST_CLIENT, since every simulated customer
comes from 127.0.0.1). Each customer loops over conversations until the time is up: an
FAQ question with feedback, a policy question, small talk, and (with probability
--escalate-share) the whole escalation form ending in a ticket.

Customers are people: after each answer a customer reads and types for a random
--think time (uniform, seconds; default 2-8, faster than people chat) before the next
message, and customers start spread over the first think interval. `--think 0` turns
every customer into a tight loop, which measures the service's capacity instead.

Only loopback addresses are accepted, and every run is bounded by --seconds and
--max-turns. Prints, per concurrency level: turns, throughput, latency p50/p95/p99,
errors, tickets created vs. expected (checked through the staff API when a token is
given), and the resident memory of each kind of service process (summed over every
such process on the machine, replicas included: run it with nothing else running).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import random
import re
import statistics
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import aiohttp

NUMBER = re.compile(r"\bMK-[2-9A-HJ-NP-Z]{6}\b")
FAQ = ["how do I reset my password", "can I pay by bank transfer", "the sync agent says my bank feed is disconnected",
       "how do I export my data", "my card reader won't connect to the POS"]
POLICY = ["are you open now?", "how fast do you answer a critical outage", "do you support the Stripe plugin?",
          "is there maintenance planned?", "how do I contact you?"]
FORM = {
    "What's your name?": "Load Tester",
    "Which email address": "load.tester@example.com",
    "Which product": "Makana Books",
    "Which version": "6",
    "describe the problem": "Invoices fail to send with error MK-504 for every customer",
    "already tried": "Restarted the browser",
    "affect your business": "The whole team cannot invoice",
    "I'd rate this": "high",
    "Here's what I'll send": "yes",
}
SERVICES = {"rasa": "rasa run", "actions": "rasa_sdk", "web": "-m bot web"}


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    expected_tickets: int = 0
    numbers: set[str] = field(default_factory=set)
    unexpected: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Think:
    """How long a customer reads and types between two messages."""

    low: float
    high: float

    @classmethod
    def parse(cls, text: str) -> "Think":
        low, _, high = text.partition("-")
        try:
            think = cls(float(low), float(high or low))
        except ValueError:
            raise argparse.ArgumentTypeError(f"--think takes seconds as MIN-MAX or one number, not {text!r}") from None
        if not 0 <= think.low <= think.high:
            raise argparse.ArgumentTypeError("--think needs 0 <= MIN <= MAX")
        return think

    async def pause(self, rng: random.Random) -> None:
        if self.high > 0:
            await asyncio.sleep(rng.uniform(self.low, self.high))


async def say(session: aiohttp.ClientSession, url: str, sender: str, text: str, stats: Stats,
              rng: random.Random | None = None, think: Think | None = None) -> str:
    if think is not None and rng is not None:
        await think.pause(rng)
    started = time.perf_counter()
    try:
        async with session.post(f"{url}/api/chat", json={"sender": sender, "message": text}) as response:
            body = await response.json(content_type=None)
            ok = response.status == 200
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        ok, body = False, {}
    stats.latencies.append((time.perf_counter() - started) * 1000)
    if not ok:
        stats.errors += 1
        return ""
    return "\n".join(m.get("text") or "" for m in body.get("messages", []))


async def conversation(session, url: str, rng: random.Random, share: float, stats: Stats, deadline: float,
                       think: Think) -> None:
    sender = "load-" + uuid.uuid4().hex[:16]

    async def turn(text: str) -> str:
        return await say(session, url, sender, text, stats, rng, think)

    await turn("hello")
    reply = await turn(rng.choice(FAQ))
    if "Did this answer" in reply:
        await turn("/affirm" if rng.random() < 0.7 else "/deny")
    await turn(rng.choice(POLICY))
    if rng.random() >= share:
        await turn("thanks, bye")
        return
    stats.expected_tickets += 1
    reply = await turn("I want to talk to a human")
    for _ in range(14):
        if time.monotonic() > deadline + 30 + 15 * think.high:  # a started form is finished, within bounds
            stats.unexpected.append("deadline")
            return
        numbers = NUMBER.findall(reply)
        if numbers and "ticket" in reply:
            stats.numbers.update(numbers)
            return
        answer = next((a for q, a in FORM.items() if q in reply), None)
        if answer == FORM["Which version"]:
            # a product named earlier in the conversation may have been prefilled
            answer = {"Makana POS": "4", "Makana Sync": "2", "Makana API": "v2"}.get(
                next((p for p in ("Makana POS", "Makana Sync", "Makana API") if p in reply), ""), answer)
        if answer is None:
            stats.errors += 1  # the form asked something the script does not know
            stats.unexpected.append(reply[:200])
            return
        reply = await turn(answer)
    stats.unexpected.append("no ticket after 14 answers: " + reply[:150])


async def customer(url: str, seed: int, share: float, stats: Stats, deadline: float, max_turns: int,
                   think: Think) -> None:
    rng = random.Random(seed)
    timeout = aiohttp.ClientTimeout(total=60)
    await asyncio.sleep(rng.uniform(0, think.high))  # people don't all arrive in the same millisecond
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while time.monotonic() < deadline and len(stats.latencies) < max_turns:
            await conversation(session, url, rng, share, stats, deadline, think)


async def verified_tickets(url: str, token: str, numbers: set[str]) -> int:
    found = 0
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        for number in numbers:
            async with session.get(f"{url}/api/staff/tickets/{number}") as response:
                found += response.status == 200
    return found


def service_memory_mb() -> dict[str, float]:
    """Resident memory of each service, summed over its processes (Sanic workers included)."""
    totals = {name: 0.0 for name in SERVICES}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            status = (proc / "status").read_text()
        except OSError:
            continue
        for name, marker in SERVICES.items():
            if marker in cmdline:
                rss = next((line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")), "0")
                totals[name] += int(rss) / 1024
    return totals


def topology(url: str) -> str:
    """The components the web service reports in /healthz, e.g. "rasa-1, rasa-2, actions-1, …"."""
    try:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=5) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:  # 503: some component is down, the list still says which
            body = exc.read()
        return ", ".join(f"{name} {state}" if state != "up" else name for name, state in json.loads(body)["components"].items())
    except (OSError, ValueError, KeyError) as exc:
        raise SystemExit(f"{url}/healthz does not answer ({exc}); start the assistant first") from exc


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else float("nan")


async def run_level(args, customers: int) -> None:
    stats = Stats()
    started = time.monotonic()
    deadline = started + args.seconds
    await asyncio.gather(
        *[customer(args.url, 1000 * customers + i, args.escalate_share, stats, deadline, args.max_turns, args.think)
          for i in range(customers)]
    )
    elapsed = time.monotonic() - started
    created = await verified_tickets(args.url, args.staff_token, stats.numbers) if args.staff_token else len(stats.numbers)
    memory = service_memory_mb()
    lat = stats.latencies
    print(
        f"| {customers} | {len(lat)} | {len(lat) / elapsed:.1f} | {statistics.median(lat):.0f} | {percentile(lat, 95):.0f} | "
        f"{percentile(lat, 99):.0f} | {stats.errors} | {created} / {stats.expected_tickets} | "
        + " / ".join(f"{memory[n]:.0f}" for n in SERVICES)
        + " |",
        flush=True,
    )
    for text in stats.unexpected[:3]:
        print(f"  unexpected reply: {text!r}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--customers", default="1,10,50,200")
    parser.add_argument("--think", type=Think.parse, default=Think(2, 8), help="seconds between a reply and the next message, MIN-MAX")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--max-turns", type=int, default=20_000)
    parser.add_argument("--escalate-share", type=float, default=0.1)
    parser.add_argument("--staff-token", default="")
    args = parser.parse_args()
    host = urlparse(args.url).hostname or ""
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise SystemExit("bench/load.py only sends traffic to loopback addresses (127.0.0.0/8, ::1)")
    print(f"think time {args.think.low:g}-{args.think.high:g} s, {args.seconds:g} s per level, "
          f"escalating share {args.escalate_share:g}; services: {topology(args.url)}")
    print("| customers | turns | turns/s | p50 ms | p95 ms | p99 ms | errors | tickets created / expected | memory MB rasa / actions / web |")
    print("|---|---|---|---|---|---|---|---|---|")
    for level in (int(n) for n in args.customers.split(",")):
        asyncio.run(run_level(args, level))


if __name__ == "__main__":
    main()
