"""The real Google client library against a local fake of Google (token endpoint and
Calendar API), the handoff journey on top of it, the .ics invitation and the team's
booking email through a real SMTP server (aiosmtpd)."""

import asyncio
import datetime as dt
import email
import email.policy
import json
import time
from zoneinfo import ZoneInfo

import aiohttp
import icalendar
import pytest
from aiohttp import web

from bot.call_slots import Slot
from bot.google_calendar import CalendarUnavailable, FixedRoom, GoogleCalendar, calendar_from_settings
from bot.call_booking import book, cancel, move, offer_slots
from bot.invite import invitation
from bot.notify import SIGNATURE_HEADER, Notifier, deliver_due, sign
from bot.settings import Settings, SettingsError
from bot.tickets import SupportRequest, open_ticket
from tests.conftest import free_port
from tests.fake_google import CLIENT_EMAIL, FakeGoogle, make_key, service_account_info
from tests.test_tickets import CONVERSATION, REQUEST, SATURDAY_1829

HNL = ZoneInfo("Pacific/Honolulu")
UTC = dt.timezone.utc
CALENDAR_ID = "support-team@makana.example"
SATURDAY_1900 = dt.datetime(2026, 11, 28, 19, 0, tzinfo=HNL)
MONDAY_0930 = dt.datetime(2026, 11, 30, 9, 30, tzinfo=HNL)
SLOT = Slot(MONDAY_0930.astimezone(UTC), (MONDAY_0930 + dt.timedelta(minutes=30)).astimezone(UTC))


@pytest.fixture(scope="module")
def key():
    return make_key()  # made per run: no key file in the repository


@pytest.fixture
async def google(aiohttp_server, key):
    fake = FakeGoogle(key.public_key())
    fake.busy[CALENDAR_ID] = []
    server = await aiohttp_server(fake.app())
    yield fake, server
    fake.release.set()  # let a hanging request finish before the server stops


def client_for(server, key, timeout_s: float = 3.0, endpoint: str | None = None) -> GoogleCalendar:
    info = service_account_info(key, str(server.make_url("/token")))
    return GoogleCalendar(info, CALENDAR_ID, timeout_s, endpoint or str(server.make_url("/")))


def settings_for(server=None, smtp_port: int = 0, **extra) -> Settings:
    values = dict(
        smtp_host="127.0.0.1", smtp_port=smtp_port or free_port(), smtp_starttls="never", smtp_timeout_s=5,
        team_email="team@makana.example", google_calendar_id=CALENDAR_ID,
    )
    return Settings(**{**values, **extra})


async def a_ticket(store, policy, conversation: str = "call-1", severity: str = "high"):
    request = SupportRequest(**{**REQUEST.__dict__, "severity": severity})
    ticket, _ = await open_ticket(store, policy, request, conversation, "web_chat", CONVERSATION, SATURDAY_1829)
    return ticket


# -- the Google client against the fake -----------------------------------------------------


async def test_create_meeting_sends_googles_request_shape_and_reads_the_meet_link(store, policy, google, key):
    fake, server = google
    ticket = await a_ticket(store, policy)
    meeting = await client_for(server, key).create_meeting(ticket, SLOT, [ticket.email])
    assert meeting.event_id in fake.events
    assert meeting.meet_url == fake.events[meeting.event_id]["hangoutLink"]
    assert meeting.meet_url.startswith("https://meet.google.com/")
    [claims] = fake.assertions  # a JWT signed with the service account's key
    # google-auth posts to the key's token_uri; the assertion's audience stays Google's.
    assert claims["iss"] == CLIENT_EMAIL and claims["aud"] == "https://oauth2.googleapis.com/token"
    assert fake.requests[0]["path"] == "/token"
    assert "https://www.googleapis.com/auth/calendar.events" in claims["scope"].split()
    [call] = fake.api_requests()
    assert call["method"] == "POST" and call["path"] == f"/calendar/v3/calendars/{CALENDAR_ID}/events"
    assert call["query"]["conferenceDataVersion"] == "1" and call["query"]["sendUpdates"] == "none"
    assert call["headers"]["Authorization"].startswith("Bearer ya29.fake-")
    body = json.loads(call["body"])
    assert body["conferenceData"]["createRequest"]["conferenceSolutionKey"] == {"type": "hangoutsMeet"}
    assert len(body["conferenceData"]["createRequest"]["requestId"]) >= 16
    assert dt.datetime.fromisoformat(body["start"]["dateTime"]) == MONDAY_0930
    assert dt.datetime.fromisoformat(body["end"]["dateTime"]) == MONDAY_0930 + dt.timedelta(minutes=30)
    assert body["attendees"] == [{"email": "ana@example.com"}]
    assert ticket.number in body["summary"]


async def test_meet_link_from_the_conference_entry_points(store, policy, google, key):
    fake, server = google
    fake.hangout_link = False
    ticket = await a_ticket(store, policy)
    meeting = await client_for(server, key).create_meeting(ticket, SLOT, [ticket.email])
    video = fake.events[meeting.event_id]["conferenceData"]["entryPoints"][0]
    assert "hangoutLink" not in fake.events[meeting.event_id] and meeting.meet_url == video["uri"]


async def test_delete_and_busy(store, policy, google, key):
    fake, server = google
    client = client_for(server, key)
    ticket = await a_ticket(store, policy)
    meeting = await client.create_meeting(ticket, SLOT, [ticket.email])
    await client.delete_meeting(meeting.event_id)
    assert fake.events == {}
    assert fake.api_requests()[-1]["method"] == "DELETE"
    await client.delete_meeting(meeting.event_id)  # already gone: fine
    fake.busy[CALENDAR_ID] = [{"start": "2026-11-30T19:30:00Z", "end": "2026-11-30T20:30:00Z"}]
    busy = await client.busy(SATURDAY_1900, SATURDAY_1900 + dt.timedelta(days=7))
    assert busy == [(MONDAY_0930, MONDAY_0930 + dt.timedelta(hours=1))]
    query = json.loads(fake.api_requests()[-1]["body"])
    assert query["items"] == [{"id": CALENDAR_ID}]
    assert dt.datetime.fromisoformat(query["timeMin"]) == SATURDAY_1900


@pytest.mark.parametrize("failure", ["hang", 401, 403, 500, "token", "refused", "unknown calendar"])
async def test_failures_raise_calendar_unavailable_quickly(store, policy, google, key, failure):
    fake, server = google
    endpoint = None
    if failure == "token":
        fake.fail_token = 401
    elif failure == "refused":
        endpoint = f"http://127.0.0.1:{free_port()}/"  # nothing listens there
    elif failure == "unknown calendar":
        fake.busy.clear()
    else:
        fake.fail_api = failure
    client = client_for(server, key, timeout_s=0.5, endpoint=endpoint)
    ticket = await a_ticket(store, policy)
    began = time.monotonic()
    with pytest.raises(CalendarUnavailable):
        if failure == "unknown calendar":
            await client.busy(SATURDAY_1900, SATURDAY_1900 + dt.timedelta(days=1))
        else:
            await client.create_meeting(ticket, SLOT, [ticket.email])
    assert time.monotonic() - began < 2.5


# -- the handoff journey ----------------------------------------------------------------------


async def test_book_with_google_then_cancel(store, policy, google, key):
    fake, server = google
    calendar, settings = client_for(server, key), settings_for()
    ticket = await a_ticket(store, policy)
    offer = await offer_slots(store, calendar, policy, settings, SATURDAY_1900, customer_tz="America/Los_Angeles")
    assert offer.calendar_checked and offer.slots[0] == SLOT
    assert offer.labels[0] == "Mon 30 Nov, 11:30–12:00 your time (9:30–10:00 Hawaii time)"
    outcome = await book(store, calendar, policy, settings, ticket, SLOT.start, "America/Los_Angeles", SATURDAY_1900)
    assert outcome.status == "booked" and outcome.meet_url.startswith("https://meet.google.com/")
    booking = await store.booking_for_ticket(ticket.id)
    assert booking.calendar_event_id in fake.events and booking.customer_tz == "America/Los_Angeles"
    assert [(r["kind"], r["event"]) for r in await store.notifications_for(ticket.id)] == [("email", "booking_created")]
    # The slot is no longer offered; booking it again for another ticket is refused.
    other = await a_ticket(store, policy, "call-2")
    later = await offer_slots(store, calendar, policy, settings, SATURDAY_1900)
    assert SLOT not in later.slots
    taken = await book(store, calendar, policy, settings, other, SLOT.start, None, SATURDAY_1900)
    assert taken.status in ("taken", "unavailable")
    # Cancelling frees the slot and deletes the event.
    cancelled = await cancel(store, calendar, settings, ticket, SATURDAY_1900)
    assert cancelled.status == "cancelled" and fake.events == {}
    assert (await book(store, calendar, policy, settings, other, SLOT.start, None, SATURDAY_1900)).status == "booked"


async def test_calendar_busy_times_are_not_offered_and_a_dead_calendar_is_flagged(store, policy, google, key):
    fake, server = google
    settings = settings_for()
    fake.busy[CALENDAR_ID] = [{"start": "2026-11-30T19:30:00Z", "end": "2026-11-30T20:30:00Z"}]
    offer = await offer_slots(store, client_for(server, key), policy, settings, SATURDAY_1900)
    assert offer.slots[0].start == MONDAY_0930 + dt.timedelta(hours=1)
    fake.fail_api = 500
    fallback = await offer_slots(store, client_for(server, key), policy, settings, SATURDAY_1900)
    assert not fallback.calendar_checked and fallback.slots[0] == SLOT


async def test_book_with_a_failing_calendar_keeps_a_pending_booking(store, policy, google, key):
    fake, server = google
    fake.fail_api = 500
    calendar, settings = client_for(server, key, timeout_s=1.0), settings_for()
    ticket = await a_ticket(store, policy)
    outcome = await book(store, calendar, policy, settings, ticket, SLOT.start, None, SATURDAY_1900)
    assert outcome.status == "pending" and outcome.meet_url is None and "HTTP 500" in outcome.calendar_error
    booking = await store.booking_for_ticket(ticket.id)
    assert booking.status == "pending_calendar" and booking.starts_at == SLOT.start
    [row] = await store.notifications_for(ticket.id)
    assert (row["kind"], row["event"], row["booking_id"]) == ("email", "booking_pending", booking.id)
    # The held slot is not offered to anyone else.
    assert SLOT not in (await offer_slots(store, FixedRoom("x"), policy, settings, SATURDAY_1900)).slots


async def test_cancel_with_the_calendar_down_frees_the_slot_and_asks_the_team_to_clean_up(store, policy, google, key):
    fake, server = google
    calendar, settings = client_for(server, key, timeout_s=1.0), settings_for()
    ticket = await a_ticket(store, policy)
    booked = await book(store, calendar, policy, settings, ticket, SLOT.start, None, SATURDAY_1900)
    fake.fail_api = 500
    cancelled = await cancel(store, calendar, settings, ticket, SATURDAY_1900)
    assert cancelled.status == "cancelled" and booked.booking.calendar_event_id in fake.events
    events = [(r["event"], r["booking_id"]) for r in await store.notifications_for(ticket.id)]
    assert events == [(e, booked.booking.id) for e in ("booking_created", "booking_cancelled", "calendar_cleanup")]
    assert await cancel(store, calendar, settings, ticket, SATURDAY_1900) is None  # nothing left to cancel


async def test_move_creates_the_new_event_and_deletes_the_old(store, policy, google, key):
    fake, server = google
    calendar, settings = client_for(server, key), settings_for()
    ticket = await a_ticket(store, policy)
    first = await book(store, calendar, policy, settings, ticket, SLOT.start, None, SATURDAY_1900)
    later = SLOT.start + dt.timedelta(hours=2)
    moved = await move(store, calendar, policy, settings, ticket, later, SATURDAY_1900)
    assert moved.status == "booked" and moved.booking.starts_at == later
    assert list(fake.events) == [moved.booking.calendar_event_id] != [first.booking.calendar_event_id]
    assert (await store.get_booking(first.booking.id)).status == "cancelled"
    # A move to a taken slot leaves the call where it was.
    other = await a_ticket(store, policy, "call-2")
    await book(store, calendar, policy, settings, other, SLOT.start, None, SATURDAY_1900)
    refused = await move(store, calendar, policy, settings, ticket, SLOT.start, SATURDAY_1900)
    assert refused.status in ("taken", "unavailable") and refused.booking.starts_at == later
    assert (await store.booking_for_ticket(ticket.id)).id == moved.booking.id


async def test_fixed_room_and_eligibility(store, policy):
    settings = Settings()
    calendar = calendar_from_settings(settings)
    assert isinstance(calendar, FixedRoom)
    ticket = await a_ticket(store, policy)
    outcome = await book(store, calendar, policy, settings, ticket, SLOT.start, None, SATURDAY_1900)
    assert outcome.status == "booked" and outcome.meet_url == "https://meet.google.com/makana-support-room"
    assert outcome.booking.calendar_event_id is None
    later = SLOT.start + dt.timedelta(hours=1)
    again = await book(store, calendar, policy, settings, ticket, later, None, SATURDAY_1900)
    assert again.status == "already_booked" and again.booking.id == outcome.booking.id
    low = await a_ticket(store, policy, "call-low", severity="low")
    assert (await book(store, calendar, policy, settings, low, later, None, SATURDAY_1900)).status == "not_eligible"
    high = await a_ticket(store, policy, "call-high")
    sunday = dt.datetime(2026, 11, 29, 10, 0, tzinfo=HNL)
    assert (await book(store, calendar, policy, settings, high, sunday, None, SATURDAY_1900)).status == "unavailable"


def test_google_calendar_from_a_key_file(tmp_path, key):
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps(service_account_info(key, "http://127.0.0.1:9/token")))
    settings = Settings(google_service_account_file=str(path), google_api_endpoint="http://127.0.0.1:9")
    assert isinstance(calendar_from_settings(settings), GoogleCalendar)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(SettingsError):
        calendar_from_settings(Settings(google_service_account_file=str(tmp_path / "broken.json")))


# -- the invitation and the team's email --------------------------------------------------------


async def test_invitation_parses_back(store, policy):
    ticket = await a_ticket(store, policy)
    booking = await store.book_slot(ticket.id, SLOT.start, SLOT.end, "America/Los_Angeles", SATURDAY_1900)
    link = "https://meet.google.com/abc-defg-hij"
    booking = await store.set_booking_calendar(booking.id, "booked", link, "e1", SATURDAY_1900)
    ics = invitation(ticket, booking, policy, Settings(team_email="team@makana.example"), SATURDAY_1900)
    assert isinstance(ics, bytes)
    calendar = icalendar.Calendar.from_ical(ics)
    assert str(calendar["method"]) == "REQUEST" and str(calendar["version"]) == "2.0"
    [event] = calendar.walk("VEVENT")
    assert event.decoded("dtstart") == SLOT.start and event.decoded("dtstart").utcoffset() == dt.timedelta(0)
    assert event.decoded("dtend") == SLOT.end
    assert b"DTSTART:20261130T193000Z" in ics
    assert str(event["url"]) == str(event["location"]) == "https://meet.google.com/abc-defg-hij"
    description = str(event["description"])
    assert "https://meet.google.com/abc-defg-hij" in description and ticket.number in description
    assert "11:30–12:00 Los Angeles time" in description and "9:30–10:00 Hawaii time" in description
    assert ticket.number in str(event["summary"])
    assert str(event["organizer"]) == "mailto:team@makana.example"
    assert str(event["attendee"]) == "mailto:ana@example.com"


async def test_pending_booking_email_carries_the_invitation(store, policy, google, key, smtp):  # noqa: F811
    fake, server = google
    controller, inbox = smtp
    fake.fail_api = 503
    settings = settings_for(smtp_port=controller.port)
    ticket = await a_ticket(store, policy)
    outcome = await book(
        store, client_for(server, key, timeout_s=1.0), policy, settings, ticket, SLOT.start, "Europe/Paris",
        SATURDAY_1900,
    )
    assert outcome.status == "pending"
    async with aiohttp.ClientSession() as session:
        assert await deliver_due(store, Notifier(settings, policy, session), SATURDAY_1900) == 1
    [envelope] = inbox.messages
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert ticket.number in message["Subject"] and "NOT created" in message["Subject"]
    text = message.get_body(("plain",)).get_content()
    assert "Calendar event: NOT created" in text and "20:30–21:00 Paris time" in text
    [attachment] = [part for part in message.iter_attachments()]
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_param("method") == "REQUEST" and attachment.get_filename() == f"call-{ticket.number}.ics"
    [event] = icalendar.Calendar.from_ical(attachment.get_content()).walk("VEVENT")
    assert event.decoded("dtstart") == SLOT.start and "url" not in event


async def test_booked_email_says_the_event_exists(store, policy, google, key, smtp):  # noqa: F811
    fake, server = google
    controller, inbox = smtp
    settings = settings_for(smtp_port=controller.port)
    ticket = await a_ticket(store, policy)
    outcome = await book(store, client_for(server, key), policy, settings, ticket, SLOT.start, None, SATURDAY_1900)
    async with aiohttp.ClientSession() as session:
        assert await deliver_due(store, Notifier(settings, policy, session), SATURDAY_1900) == 1
    message = email.message_from_bytes(inbox.messages[0].content, policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()
    assert f"created in the team calendar (id {outcome.booking.calendar_event_id})" in text
    assert outcome.meet_url in text
    [attachment] = list(message.iter_attachments())
    [event] = icalendar.Calendar.from_ical(attachment.get_content()).walk("VEVENT")
    assert str(event["url"]) == outcome.meet_url


async def test_booking_webhook_is_signed_and_describes_the_call(store, policy, aiohttp_server):
    received = []

    async def hook(request):
        received.append((request.headers[SIGNATURE_HEADER], await request.read()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = await aiohttp_server(app)
    settings = Settings(webhook_url=str(server.make_url("/hook")), webhook_secret="test-secret-not-real")
    ticket = await a_ticket(store, policy)
    outcome = await book(store, FixedRoom("https://meet.google.com/room"), policy, settings, ticket, SLOT.start,
                         "Asia/Tokyo", SATURDAY_1900)
    async with aiohttp.ClientSession() as session:
        assert await deliver_due(store, Notifier(settings, policy, session), SATURDAY_1900) == 1
    [(signature, body)] = received
    assert signature == sign("test-secret-not-real", body)
    payload = json.loads(body)
    assert payload["event"] == "booking_created" and payload["ticket"]["number"] == ticket.number
    assert payload["booking"]["id"] == outcome.booking.id and payload["booking"]["status"] == "booked"
    assert payload["booking"]["meet_url"] == "https://meet.google.com/room"
    assert payload["booking"]["starts_at"] == "2026-11-30T19:30:00+00:00"
    assert payload["booking"]["customer_tz"] == "Asia/Tokyo"


async def test_concurrent_handoff_bookings_of_one_slot(store, policy):
    calendar, settings = FixedRoom("https://meet.google.com/room"), Settings()
    made = [await a_ticket(store, policy, f"race-{i}") for i in range(5)]
    outcomes = await asyncio.gather(
        *[book(store, calendar, policy, settings, t, SLOT.start, None, SATURDAY_1900) for t in made]
    )
    statuses = [o.status for o in outcomes]
    # Late arrivals see the booking when they check the slot, or lose at the unique index.
    assert statuses.count("booked") == 1 and set(statuses) <= {"booked", "taken", "unavailable"}
    assert len(await store.active_bookings(SLOT.start, SLOT.end)) == 1
