"""Client for the Rasa server's HTTP API: send a customer's message, read state.

Every call has a timeout. Failures surface as `AssistantUnavailable` (Rasa cannot be
reached, timed out, or answered with a server error); the web layer maps that to a
503 that tells the customer how else to reach support.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import aiohttp


class AssistantUnavailable(RuntimeError):
    """The Rasa server could not be reached or did not answer in time."""


@dataclass(frozen=True)
class Reply:
    """One bot message, reduced to what the channels render."""

    text: str | None = None
    buttons: list[dict[str, str]] = field(default_factory=list)
    custom: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"text": self.text, "buttons": self.buttons}
        if self.custom is not None:
            body["custom"] = self.custom
        return body


class AssistantClient:
    """Talks to one Rasa server over its REST channel and HTTP API."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, timeout_s: float) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def send(self, sender: str, message: str, metadata: dict[str, Any] | None = None) -> list[Reply]:
        """Deliver a customer's message and return the bot's replies, in order."""
        payload: dict[str, Any] = {"sender": sender, "message": message}
        if metadata:
            payload["metadata"] = metadata
        data = await self._request("POST", "/webhooks/rest/webhook", json=payload)
        if not isinstance(data, list):
            raise AssistantUnavailable("the assistant answered in an unexpected format")
        return [_reply(item) for item in data if isinstance(item, dict)]

    async def tracker(self, sender: str) -> dict[str, Any]:
        """The conversation's tracker (all events) as Rasa stores it."""
        data = await self._request("GET", f"/conversations/{sender}/tracker", params={"include_events": "ALL"})
        if not isinstance(data, dict):
            raise AssistantUnavailable("the assistant answered in an unexpected format")
        return data

    async def is_ready(self, timeout_s: float = 2.0) -> bool:
        """Whether the server answers and has a model loaded."""
        try:
            data = await self._request("GET", "/status", timeout=aiohttp.ClientTimeout(total=timeout_s))
        except AssistantUnavailable:
            return False
        return isinstance(data, dict) and bool(data.get("model_id") or data.get("model_file"))

    async def _request(self, method: str, path: str, timeout: aiohttp.ClientTimeout | None = None, **kwargs: Any) -> Any:
        try:
            async with self._session.request(
                method, self._base + path, timeout=timeout or self._timeout, **kwargs
            ) as response:
                if response.status >= 500:
                    raise AssistantUnavailable(f"the assistant failed with HTTP {response.status}")
                if response.status >= 400:
                    raise AssistantUnavailable(f"the assistant refused the request with HTTP {response.status}")
                return await response.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise AssistantUnavailable(f"the assistant could not be reached ({type(exc).__name__})") from exc


def _reply(item: dict[str, Any]) -> Reply:
    buttons = [
        {"title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
        for b in item.get("buttons") or []
        if isinstance(b, dict)
    ]
    custom = item.get("custom") if isinstance(item.get("custom"), dict) else None
    text = item.get("text")
    return Reply(text=str(text) if text is not None else None, buttons=buttons, custom=custom)
