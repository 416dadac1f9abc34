"""Client for the Rasa servers' HTTP API: send a customer's message, read state.

With several Rasa servers (the scaled-out topology) each call goes to the next one in
turn, so consecutive messages of one conversation land on different servers; Rasa's
lock store and shared tracker store keep them in order. A server that refuses the
connection is skipped for `retry_after_s` and the call goes to the next: nothing was
sent, so nothing can be handled twice. A server that fails after the message was sent
is not retried elsewhere (it may have handled the message); the customer is told.

Every call has a timeout. Failures surface as `AssistantUnavailable` (no Rasa server
can be reached, one timed out, or answered with a server error); the web layer maps
that to a 503 that tells the customer how else to reach support.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

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
    """Talks to one or more Rasa servers over their REST channel and HTTP API."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_urls: str | Sequence[str],
        timeout_s: float,
        token: str,
        retry_after_s: float = 5.0,
    ) -> None:
        self._session = session
        # Rasa's REST channel (rasa_plugins/channel.py) takes the token as a bearer
        # header; its HTTP API (`rasa run --auth-token`) only as a `token` query parameter.
        self._token = token
        bases = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        if not bases:
            raise ValueError("at least one Rasa server URL is needed")
        self._bases = [b.rstrip("/") for b in bases]
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._retry_after_s = retry_after_s
        self._turn = itertools.count()
        self._refused_until = [0.0] * len(self._bases)

    async def send(self, sender: str, message: str, metadata: dict[str, Any] | None = None) -> list[Reply]:
        """Deliver a customer's message and return the bot's replies, in order."""
        payload: dict[str, Any] = {"sender": sender, "message": message}
        if metadata:
            payload["metadata"] = metadata
        data = await self._request(
            "POST", "/webhooks/rest/webhook", json=payload, headers={"Authorization": f"Bearer {self._token}"}
        )
        if not isinstance(data, list):
            raise AssistantUnavailable("the assistant answered in an unexpected format")
        return [_reply(item) for item in data if isinstance(item, dict)]

    async def tracker(self, sender: str) -> dict[str, Any]:
        """The conversation's tracker (all events) as Rasa stores it."""
        data = await self._request(
            "GET", f"/conversations/{sender}/tracker", params={"include_events": "ALL", "token": self._token}
        )
        if not isinstance(data, dict):
            raise AssistantUnavailable("the assistant answered in an unexpected format")
        return data

    async def append_events(self, sender: str, events: list[dict[str, Any]]) -> None:
        """Append events to the conversation's tracker (Rasa's HTTP API), e.g. pause/resume."""
        await self._request(
            "POST", f"/conversations/{sender}/tracker/events", json=events,
            params={"token": self._token, "include_events": "NONE"},
        )

    async def readiness(self, timeout_s: float = 2.0) -> list[bool]:
        """For each server, whether it answers and has a model loaded."""

        async def ready(base: str) -> bool:
            try:
                data = await self._call(
                    base, "GET", "/status", aiohttp.ClientTimeout(total=timeout_s), params={"token": self._token}
                )
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, AssistantUnavailable):
                return False
            return isinstance(data, dict) and bool(data.get("model_id") or data.get("model_file"))

        return list(await asyncio.gather(*(ready(base) for base in self._bases)))

    def _order(self) -> list[int]:
        """Servers to try for the next call: the next in turn first, refused ones last."""
        start = next(self._turn) % len(self._bases)
        order = [(start + i) % len(self._bases) for i in range(len(self._bases))]
        now = time.monotonic()
        return sorted(order, key=lambda i: self._refused_until[i] > now)

    async def _request(self, method: str, path: str, timeout: aiohttp.ClientTimeout | None = None, **kwargs: Any) -> Any:
        failure: BaseException | None = None
        for i in self._order():
            try:
                return await self._call(self._bases[i], method, path, timeout or self._timeout, **kwargs)
            except aiohttp.ClientConnectorError as exc:
                # Refused or unresolvable: the request never left, so another server may take it.
                self._refused_until[i] = time.monotonic() + self._retry_after_s
                failure = exc
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                if method != "GET":
                    raise AssistantUnavailable(f"the assistant could not be reached ({type(exc).__name__})") from exc
                failure = exc  # a read can safely be asked of another server
        raise AssistantUnavailable(f"the assistant could not be reached ({type(failure).__name__})") from failure

    async def _call(self, base: str, method: str, path: str, timeout: aiohttp.ClientTimeout, **kwargs: Any) -> Any:
        async with self._session.request(method, base + path, timeout=timeout, **kwargs) as response:
            if response.status >= 500:
                raise AssistantUnavailable(f"the assistant failed with HTTP {response.status}")
            if response.status >= 400:
                raise AssistantUnavailable(f"the assistant refused the request with HTTP {response.status}")
            return await response.json(content_type=None)


def _reply(item: dict[str, Any]) -> Reply:
    buttons = [
        {"title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
        for b in item.get("buttons") or []
        if isinstance(b, dict)
    ]
    custom = item.get("custom") if isinstance(item.get("custom"), dict) else None
    text = item.get("text")
    return Reply(text=str(text) if text is not None else None, buttons=buttons, custom=custom)
