"""The team calendar: creating and deleting Google Meet calls, and reading busy times.

Two implementations of one small interface (`create_meeting`, `delete_meeting`,
`busy`):

* `GoogleCalendar` talks to the Google Calendar API with Google's own client library
  and a service account (optionally acting for a Workspace user through domain-wide
  delegation, which Google needs before a service account may add attendees). The
  sync client runs in a worker thread; every call has a socket timeout and an overall
  timeout of `google_timeout_s`.
* `FixedRoom` is the default when no service account is configured: every call uses
  the team's fixed Meet room and no calendar event is made.

Every method raises `CalendarUnavailable` when the calendar cannot do what was asked
(timeout, refused connection, token refused, HTTP 401/403/5xx or any other error
answer); the caller decides what to keep (see bot/call_booking.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import google.auth.exceptions
import google_auth_httplib2
import httplib2
from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from bot.call_slots import Slot
from bot.settings import Settings, SettingsError
from bot.store import Ticket

log = logging.getLogger(__name__)

SCOPES = ["https://www.googleapis.com/auth/calendar.events", "https://www.googleapis.com/auth/calendar.readonly"]
SERVICE_PATH = "calendar/v3/"


class CalendarUnavailable(RuntimeError):
    """The calendar could not be reached or refused the request."""


@dataclass(frozen=True)
class Meeting:
    """A created call: the calendar event (None for the fixed room) and its Meet link.

    `meet_url` is None when Google accepted the event but has not made the Meet
    conference yet.
    """

    event_id: str | None
    meet_url: str | None


class Calendar(Protocol):
    async def create_meeting(self, ticket: Ticket, slot: Slot, attendees: list[str]) -> Meeting: ...

    async def delete_meeting(self, event_id: str) -> None: ...

    async def busy(self, from_: dt.datetime, to: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]: ...


class FixedRoom:
    """Every call in the team's fixed Meet room; no calendar, so nothing is ever busy."""

    def __init__(self, room_url: str) -> None:
        self.room_url = room_url

    async def create_meeting(self, ticket: Ticket, slot: Slot, attendees: list[str]) -> Meeting:
        return Meeting(event_id=None, meet_url=self.room_url)

    async def delete_meeting(self, event_id: str) -> None:
        return None

    async def busy(self, from_: dt.datetime, to: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
        return []


class GoogleCalendar:
    """Google Calendar API v3 through googleapiclient, as a service account."""

    def __init__(
        self,
        service_account_info: dict[str, Any],
        calendar_id: str = "primary",
        timeout_s: float = 10.0,
        api_endpoint: str = "",
        subject: str = "",
    ) -> None:
        # The token URI comes from the service-account JSON (Google's, or a test server).
        credentials = service_account.Credentials.from_service_account_info(service_account_info, scopes=SCOPES)
        if subject:
            credentials = credentials.with_subject(subject)
        self._credentials = credentials
        self._calendar_id = calendar_id
        self._timeout_s = timeout_s
        options = {"api_endpoint": api_endpoint.rstrip("/") + "/" + SERVICE_PATH} if api_endpoint else None
        # The bundled discovery document: building downloads nothing.
        self._service = build(
            "calendar", "v3", http=self._http(), static_discovery=True, cache_discovery=False, client_options=options
        )

    def _http(self) -> google_auth_httplib2.AuthorizedHttp:
        # httplib2 objects are not thread-safe: each request gets its own.
        return google_auth_httplib2.AuthorizedHttp(self._credentials, http=httplib2.Http(timeout=self._timeout_s))

    async def create_meeting(self, ticket: Ticket, slot: Slot, attendees: list[str]) -> Meeting:
        """Create the event with a new Meet conference; no email goes out from Google."""
        body = {
            "summary": f"Makana support call – ticket {ticket.number}",
            "description": (
                f"Call with {ticket.name} about ticket {ticket.number} ({ticket.severity}): "
                f"{ticket.product} {ticket.version}."
            ),
            "start": {"dateTime": slot.start.isoformat()},
            "end": {"dateTime": slot.end.isoformat()},
            "attendees": [{"email": email} for email in attendees],
            "conferenceData": {
                "createRequest": {"requestId": uuid.uuid4().hex, "conferenceSolutionKey": {"type": "hangoutsMeet"}}
            },
            "extendedProperties": {"private": {"makana_ticket": ticket.number}},
        }
        request = self._service.events().insert(
            calendarId=self._calendar_id, body=body, conferenceDataVersion=1, sendUpdates="none"
        )
        event = await self._run(request, "create the event")
        if not isinstance(event, dict) or not event.get("id"):
            raise CalendarUnavailable("calendar answered the event insert without an event id")
        return Meeting(event_id=event["id"], meet_url=meet_link(event))

    async def delete_meeting(self, event_id: str) -> None:
        """Delete the event; an event that is already gone counts as deleted."""
        request = self._service.events().delete(calendarId=self._calendar_id, eventId=event_id, sendUpdates="none")
        await self._run(request, "delete the event", gone_ok=True)

    async def busy(self, from_: dt.datetime, to: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
        """The team calendar's busy periods overlapping [from_, to)."""
        body = {"timeMin": from_.isoformat(), "timeMax": to.isoformat(), "items": [{"id": self._calendar_id}]}
        answer = await self._run(self._service.freebusy().query(body=body), "read busy times")
        found = answer.get("calendars", {}).get(self._calendar_id, {})
        if found.get("errors"):
            reasons = ", ".join(e.get("reason", "?") for e in found["errors"])
            raise CalendarUnavailable(f"calendar could not read busy times: {reasons}")
        return [(_instant(b["start"]), _instant(b["end"])) for b in found.get("busy", [])]

    async def _run(self, request: Any, what: str, gone_ok: bool = False) -> Any:
        call = functools.partial(request.execute, http=self._http(), num_retries=0)
        try:
            return await asyncio.wait_for(asyncio.to_thread(call), timeout=self._timeout_s)
        except HttpError as exc:
            if gone_ok and exc.resp.status in (404, 410):
                return None
            raise CalendarUnavailable(f"calendar could not {what}: HTTP {exc.resp.status}") from exc
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise CalendarUnavailable(f"calendar could not {what}: no answer in {self._timeout_s:g} s") from exc
        except google.auth.exceptions.GoogleAuthError as exc:  # token refused, token endpoint down
            raise CalendarUnavailable(f"calendar could not {what}: {type(exc).__name__}") from exc
        except (httplib2.HttpLib2Error, OSError, ValueError, KeyError) as exc:
            raise CalendarUnavailable(f"calendar could not {what}: {type(exc).__name__}: {exc}") from exc


def meet_link(event: dict[str, Any]) -> str | None:
    """The Meet link of an event: hangoutLink, else the conference's video entry point."""
    if event.get("hangoutLink"):
        return event["hangoutLink"]
    for entry in event.get("conferenceData", {}).get("entryPoints", []):
        if entry.get("entryPointType") == "video" and entry.get("uri"):
            return entry["uri"]
    return None


def _instant(value: str) -> dt.datetime:
    at = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if at.tzinfo is None:
        raise ValueError(f"calendar returned a time without offset: {value!r}")
    return at


def calendar_from_settings(settings: Settings) -> GoogleCalendar | FixedRoom:
    """GoogleCalendar when a service-account file is configured, else the fixed Meet room."""
    if not settings.google_service_account_file:
        return FixedRoom(settings.meet_room_url)
    path = settings.google_service_account_file
    try:
        with open(path, encoding="utf-8") as file:
            info = json.load(file)
    except (OSError, ValueError) as exc:
        raise SettingsError(f"SUPPORT_GOOGLE_SERVICE_ACCOUNT_FILE={path!r} is not a readable JSON key: {exc}") from exc
    try:
        return GoogleCalendar(
            info, settings.google_calendar_id, settings.google_timeout_s, settings.google_api_endpoint,
            settings.google_subject,
        )
    except (ValueError, KeyError) as exc:
        raise SettingsError(f"{path} is not a service-account key: {exc}") from exc
