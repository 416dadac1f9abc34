"""The calendar invitation (RFC 5545 .ics) for a booked call, made with `icalendar`.

One VCALENDAR (METHOD:REQUEST) with one VEVENT in UTC: the team organises, the
customer attends, and the description gives the Meet link, the ticket number and the
time in both the customer's zone and the company's.
"""

from __future__ import annotations

import datetime as dt

import icalendar

from bot.call_slots import Slot
from bot.clock import customer_zone
from bot.policy import SupportPolicy
from bot.settings import Settings
from bot.store import Booking, Ticket

PRODID = "-//Makana//Support assistant//EN"


def invitation(ticket: Ticket, booking: Booking, policy: SupportPolicy, settings: Settings, now: dt.datetime) -> bytes:
    """The .ics bytes inviting the customer to the call `booking` holds for `ticket`."""
    slot = Slot(booking.starts_at, booking.ends_at)
    zone = customer_zone(booking.customer_tz)
    times = [slot.label(policy, zone)] if zone and zone.key != policy.tz.key else []
    times.append(slot.label(policy))
    link = booking.meet_url
    description = [
        f"Call with the Makana technical team about ticket {ticket.number}.",
        "When: " + " = ".join(times),
        f"Google Meet: {link}" if link else "Google Meet: the link will follow by email.",
        f"Ticket: {ticket.number} ({ticket.product} {ticket.version})",
    ]

    event = icalendar.Event()
    domain = settings.team_email.rpartition("@")[2] or "makana.example"
    event.add("uid", f"booking-{booking.id}-{ticket.number}@{domain}")
    event.add("dtstamp", now.astimezone(dt.timezone.utc))
    event.add("dtstart", booking.starts_at.astimezone(dt.timezone.utc))
    event.add("dtend", booking.ends_at.astimezone(dt.timezone.utc))
    event.add("summary", f"Makana support call – ticket {ticket.number}")
    event.add("description", "\n".join(description))
    if link:
        event.add("location", link)
        event.add("url", link)
    event.add("status", "CONFIRMED")
    event.add("sequence", 0)
    organizer = icalendar.vCalAddress(f"mailto:{settings.team_email}")
    organizer.params["cn"] = icalendar.vText(f"{policy.doc.company.name} support")
    event.add("organizer", organizer)
    attendee = icalendar.vCalAddress(f"mailto:{ticket.email}")
    attendee.params["cn"] = icalendar.vText(ticket.name)
    attendee.params["role"] = icalendar.vText("REQ-PARTICIPANT")
    attendee.params["partstat"] = icalendar.vText("NEEDS-ACTION")
    attendee.params["rsvp"] = icalendar.vText("TRUE")
    event.add("attendee", attendee)

    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "REQUEST")
    calendar.add_component(event)
    return calendar.to_ical()

