"""Conversation turns read from Rasa tracker events, for tickets and for the widget.

A button click reaches the tracker as its payload; it is shown as the title of the
button the customer clicked. Ticket transcripts are redacted; the customer's own
history (shown back to them in the widget) is not.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable


from bot.redaction import redact

def conversation_turns(events: Iterable[dict[str, Any]], *, redacted: bool) -> list[dict[str, Any]]:
    """Every customer and assistant turn, in order: {at, speaker, text, buttons}."""
    turns: list[dict[str, Any]] = []
    button_titles: dict[str, str] = {}
    for event in events:
        kind = event.get("event")
        if kind not in ("user", "bot"):
            continue
        text = event.get("text") or ""
        data = event.get("data") or {}
        buttons = [
            {"title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
            for b in data.get("buttons") or []
            if isinstance(b, dict)
        ]
        if kind == "bot":
            button_titles = {b["payload"]: b["title"] for b in buttons}
            if not text and buttons:
                text = " / ".join(b["title"] for b in buttons)
        elif text in button_titles:
            text = button_titles[text]
        if not text:
            continue
        at = dt.datetime.fromtimestamp(float(event.get("timestamp") or 0), tz=dt.timezone.utc)
        # A live agent's turn is kept in the tracker as a bot utterance marked with their name.
        agent = (event.get("metadata") or {}).get("live_agent") if kind == "bot" else None
        turn = {
            "at": at.isoformat(),
            "speaker": "customer" if kind == "user" else "agent" if agent else "assistant",
            "text": redact(text) if redacted else text,
            "buttons": buttons if kind == "bot" else [],
        }
        if agent:
            turn["agent"] = str(agent)
        turns.append(turn)
    return turns


def transcript_from_events(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The redacted transcript stored with a ticket: {at, speaker, text}."""
    return [{k: t[k] for k in ("at", "speaker", "text")} for t in conversation_turns(events, redacted=True)]
