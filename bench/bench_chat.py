"""Turn latency through the running web service: small talk vs. turns that search the FAQ.

    .venv/bin/python bench/bench_chat.py [--url http://127.0.0.1:8080] [--turns 100]

Start the assistant first (`make run`). Each sample is one POST /api/chat, sent one at a
time (no concurrency), each in a fresh conversation so every turn takes the same path.
The difference between the two medians is what the FAQ search adds to a turn (the
encoder is already loaded: the launcher warms the action server up).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import urllib.request
import uuid

FAQ_QUESTIONS = [
    "how do I reset my password",
    "are you open right now?",
    "how fast do you answer a critical outage",
    "can I pay by bank transfer",
    "the sync agent says my bank feed is disconnected",
]
SMALL_TALK = ["hello", "thanks", "bye"]


def turn(url: str, text: str) -> float:
    body = json.dumps({"sender": "bench-" + uuid.uuid4().hex[:16], "message": text}).encode()
    request = urllib.request.Request(url + "/api/chat", data=body, headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
    return (time.perf_counter() - started) * 1000


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--turns", type=int, default=100)
    args = parser.parse_args()
    for text in ("hello", FAQ_QUESTIONS[0]):  # first turns of a process are not representative
        turn(args.url, text)
    rows = []
    for name, texts in (("small talk", SMALL_TALK), ("FAQ search", FAQ_QUESTIONS)):
        samples = [turn(args.url, texts[i % len(texts)]) for i in range(args.turns)]
        rows.append((name, samples))
        print(
            f"{name:10s}  turns={len(samples)}  p50={statistics.median(samples):6.1f} ms  "
            f"p95={percentile(samples, 95):6.1f} ms  max={max(samples):6.1f} ms",
            flush=True,
        )
    added = statistics.median(rows[1][1]) - statistics.median(rows[0][1])
    print(f"the FAQ search adds {added:.1f} ms to the median turn")


if __name__ == "__main__":
    main()
