"""Customer turns per journey through the request form, against the ideal.

    .venv/bin/python bench/bench_journeys.py [--url http://127.0.0.1:8080]

Start the assistant first (`make run`). Each journey is a customer who states a problem,
asks for a person and answers the form, doing on the way what real customers do: ask a
question, change their mind, correct an answer. The driver reads what the assistant
asks and answers it (or does the journey's next aside when that step comes), so a
question asked twice costs a turn, as it would a customer. A journey ends when the
ticket is open (its number is shown), or fails after 40 turns.

The ideal is the turns a perfect assistant needs: the problem, the request for a
person, one answer per question asked, the confirmation, and one turn per aside (a
cancel far along, its confirmation and its "continue" are three). Prints one row per journey as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.request
import uuid
from dataclasses import dataclass, field

NUMBER = re.compile(r"\bMK-[2-9A-HJ-NP-Z]{6}\b")
# Which form step a message asks for, by the policy's wording of each question.
STEPS = {
    "name": "What's your name?",
    "email": "Which email address",
    "product": "Which product",
    "version": "Which version",
    "description": "describe the problem",
    "tried": "already tried",
    "impact": "affect your business",
    "severity": "I'd rate this",
    "summary": "Here's what I'll send",
    "kept": "I'll keep what you told me",
    "confirm": "Do you want to stop your request",
}
ANSWERS = {
    "name": "Rosa Delgado",
    "email": "rosa.delgado@example.com",
    "product": "Makana Books",
    "version": "6",
    "version of Makana Sync": "2",
    "description": "when I export invoices to PDF the file is empty and no error is shown",
    "tried": "exported again from another browser",
    "impact": "only me, I can send invoices by hand for now",
}


@dataclass
class Journey:
    name: str
    opening: list[str]
    # (step at which to do it, what the customer types); each is done once, in order.
    asides: list[tuple[str, str]] = field(default_factory=list)
    # Answers that differ from ANSWERS for this customer.
    answers: dict[str, str] = field(default_factory=dict)
    # Fields a perfect assistant asks (the rest are known from the opening).
    asked: tuple[str, ...] = ("name", "email", "product", "version", "tried", "impact", "severity")
    # Questions a perfect assistant asks again (the version after the product changed).
    again: int = 0

    @property
    def ideal(self) -> int:
        return len(self.opening) + len(self.asked) + 1 + len(self.asides) + self.again


JOURNEYS = [
    Journey("straight through", ["when I export invoices to PDF the file is empty and no error is shown", "I'd like to talk to a person"]),
    Journey(
        "a question mid-form",
        ["the PDF export of my invoices gives an empty file", "I want to speak to a human"],
        asides=[("product", "by the way, do you open on Saturdays?")],
    ),
    Journey(
        "several fields at once, 'latest'",
        ["exporting invoices to PDF produces a blank document", "I want to speak to a human"],
        asides=[],
        answers={"name": "I'm Rosa Delgado, rosa.delgado@example.com", "version": "the most recent one"},
        asked=("name", "product", "version", "tried", "impact", "severity"),
    ),
    Journey(
        "cancel, correct and aside",
        ["my invoice PDFs come out empty when I export them", "get me an agent please"],
        asides=[
            ("email", "how long do you usually take to reply?"),
            ("tried", "oh forget it, I'll deal with it myself"),
            ("confirm", "yes, stop it"),
            ("kept", "/request_human"),
            ("impact", "sorry, my email is actually rosa.d@example.org"),
            ("summary", "the product is Sync, not Books"),
        ],
        again=1,
    ),
    Journey(
        "product by meaning, 'a version behind', a person mid-form",
        ["our receipts have been printing twice since this morning", "can I talk to someone about it"],
        asides=[
            ("version", "we're on the one before the newest I think"),
            ("tried", "can a real person look at this instead?"),
            ("summary", "my name is actually Rosa Delgado-Pérez"),
        ],
        answers={"product": "the till app on our tablets", "version": "3"},
    ),
    Journey(
        "status question and 'I don't know'",
        ["the exported invoice PDFs are blank", "I'd like to talk to a person"],
        asides=[("summary", "what's the status of my other ticket?")],
        answers={"version": "no idea, sorry"},
    ),
]


def say(url: str, sender: str, text: str) -> list[dict]:
    body = json.dumps({"sender": sender, "message": text}).encode()
    request = urllib.request.Request(url + "/api/chat", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())["messages"]


def said(messages: list[dict]) -> str:
    return " ".join(m.get("text") or "" for m in messages)


def asked_step(messages: list[dict]) -> str | None:
    """The step the last message that asks something is about."""
    for message in reversed(messages):
        text = message.get("text") or ""
        found = [(text.rfind(q), step) for step, q in STEPS.items() if q in text]
        if found:
            return max(found)[1]
    return None


def run(url: str, journey: Journey) -> tuple[int, bool, list[str]]:
    """Play one journey; returns (customer turns, ticket opened, the transcript)."""
    sender = "bench-" + uuid.uuid4().hex[:16]
    transcript: list[str] = []
    asides = list(journey.asides)
    answers = dict(ANSWERS, **journey.answers)
    turns = 0
    reply: list[dict] = []
    for text in journey.opening:
        reply = say(url, sender, text)
        turns += 1
        transcript += [f"> {text}"] + [f"< {m.get('text')}" for m in reply]
    while turns < 40:
        if NUMBER.search(said(reply)):
            return turns, True, transcript
        step = asked_step(reply)
        if asides and asides[0][0] == step:
            text = asides.pop(0)[1]
        elif step == "severity":
            text = next(b["payload"] for m in reply for b in m.get("buttons", []) if b["title"].startswith("Yes, "))
        elif step == "summary":
            text = "yes, open it"
        elif step == "version" and "version" not in journey.answers and "version of Makana Sync" in said(reply):
            text = answers["version of Makana Sync"]
        elif step in answers:
            text = answers[step]
        else:
            return turns, False, transcript + [f"(stuck: no known question in {reply!r})"]
        reply = say(url, sender, text)
        turns += 1
        transcript += [f"> {text}"] + [f"< {m.get('text')}" for m in reply]
    return turns, False, transcript


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--show", action="store_true", help="print each journey's transcript")
    args = parser.parse_args()
    print("| journey | customer turns | ideal | over ideal | ticket opened |")
    print("|---|---|---|---|---|")
    failed = False
    for journey in JOURNEYS:
        turns, opened, transcript = run(args.url, journey)
        failed |= not opened
        print(f"| {journey.name} | {turns} | {journey.ideal} | {turns - journey.ideal:+d} | {'yes' if opened else 'NO'} |", flush=True)
        if args.show or not opened:
            print("\n".join(transcript), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
