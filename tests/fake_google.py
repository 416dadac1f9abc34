"""A local stand-in for Google's OAuth token endpoint and Calendar API v3.

It speaks the wire shapes Google's client library uses (JWT-bearer token grant,
events.insert with conferenceData, events.delete, freebusy.query), checks the
requests the way Google would (signed assertion, bearer token, conferenceDataVersion),
and can be switched to answer 401, 403, 500 or to hang. The service account's RSA key
is generated at run time; no key is ever stored in the repository.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

CLIENT_EMAIL = "makana-bot@makana-test.iam.gserviceaccount.com"


def make_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def service_account_info(key: rsa.RSAPrivateKey, token_uri: str) -> dict[str, str]:
    """A service-account JSON key (as Google's console exports it) pointing at `token_uri`."""
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": "makana-test",
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": CLIENT_EMAIL,
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "universe_domain": "googleapis.com",
    }


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@dataclass
class FakeGoogle:
    """State and switches of the fake; `app()` serves it."""

    public_key: rsa.RSAPublicKey
    fail_api: int | str | None = None  # 401, 403, 500 … or "hang"
    fail_token: int | None = None
    hangout_link: bool = True  # False: the Meet link only in conferenceData.entryPoints
    busy: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    assertions: list[dict[str, Any]] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.router.add_post("/token", self.token)
        app.router.add_post("/calendar/v3/calendars/{calendar_id}/events", self.insert_event)
        app.router.add_delete("/calendar/v3/calendars/{calendar_id}/events/{event_id}", self.delete_event)
        app.router.add_post("/calendar/v3/freeBusy", self.freebusy)
        return app

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        self.requests.append({
            "method": request.method, "path": request.path, "query": dict(request.query),
            "headers": dict(request.headers), "body": body,
        })
        if request.path != "/token":
            if self.fail_api == "hang":
                await self.release.wait()
            elif isinstance(self.fail_api, int):
                return _error(self.fail_api, "backendError" if self.fail_api >= 500 else "forbidden")
            auth = request.headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or auth.removeprefix("Bearer ") not in self.tokens:
                return _error(401, "authError")
        return await handler(request)

    def api_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] != "/token"]

    async def token(self, request: web.Request) -> web.Response:
        if self.fail_token:
            return web.json_response({"error": "invalid_grant", "error_description": "refused"}, status=self.fail_token)
        form = await request.post()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        header, payload, signature = str(form["assertion"]).split(".")
        try:
            self.public_key.verify(
                _b64decode(signature), f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except Exception:  # cryptography's InvalidSignature, or a mangled assertion
            return web.json_response({"error": "invalid_grant", "error_description": "bad signature"}, status=400)
        self.assertions.append(json.loads(_b64decode(payload)))
        token = "ya29.fake-" + secrets.token_urlsafe(16)
        self.tokens.add(token)
        return web.json_response({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    async def insert_event(self, request: web.Request) -> web.Response:
        if request.query.get("conferenceDataVersion") != "1":
            return _error(400, "invalid", "conferenceDataVersion=1 is required to create a conference")
        body = await request.json()
        create = body.get("conferenceData", {}).get("createRequest", {})
        if not create.get("requestId") or create.get("conferenceSolutionKey", {}).get("type") != "hangoutsMeet":
            return _error(400, "invalid", "Invalid conference type value.")
        event_id = secrets.token_hex(13)
        code = "-".join("".join(secrets.choice(string.ascii_lowercase) for _ in range(n)) for n in (3, 4, 3))
        link = f"https://meet.google.com/{code}"
        event = {
            "kind": "calendar#event",
            "id": event_id,
            "status": "confirmed",
            "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}",
            "summary": body.get("summary"),
            "description": body.get("description"),
            "start": body["start"],
            "end": body["end"],
            "attendees": [{**a, "responseStatus": "needsAction"} for a in body.get("attendees", [])],
            "conferenceData": {
                "createRequest": {**create, "status": {"statusCode": "success"}},
                "entryPoints": [
                    {"entryPointType": "video", "uri": link, "label": link.removeprefix("https://")},
                    {"entryPointType": "more", "uri": "https://tel.meet/" + code},
                ],
                "conferenceSolution": {"key": {"type": "hangoutsMeet"}, "name": "Google Meet"},
                "conferenceId": code,
            },
        }
        if self.hangout_link:
            event["hangoutLink"] = link
        self.events[event_id] = event
        return web.json_response(event)

    async def delete_event(self, request: web.Request) -> web.Response:
        if self.events.pop(request.match_info["event_id"], None) is None:
            return _error(404, "notFound", "Not Found")
        return web.Response(status=204)

    async def freebusy(self, request: web.Request) -> web.Response:
        body = await request.json()
        calendars = {}
        for item in body.get("items", []):
            if item["id"] in self.busy:
                calendars[item["id"]] = {"busy": self.busy[item["id"]]}
            else:
                calendars[item["id"]] = {"busy": [], "errors": [{"domain": "global", "reason": "notFound"}]}
        answer = {"kind": "calendar#freeBusy", "timeMin": body["timeMin"], "timeMax": body["timeMax"]}
        return web.json_response({**answer, "calendars": calendars})


def _error(status: int, reason: str, message: str = "error") -> web.Response:
    body = {"error": {"code": status, "message": message, "errors": [{"domain": "global", "reason": reason}]}}
    return web.json_response(body, status=status)
