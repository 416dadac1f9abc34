"""Triage end to end against the running services: an outage with a call request reaches
call-slot buttons in at most nine customer turns with a Critical ticket; a question is
answered, not routed; a billing request skips product and version; the report counts
kept and changed proposals."""

import datetime as dt
import json
import uuid

import pytest

from tests.conftest import http
from tests.test_escalation_e2e import NUMBER, buttons, stored_ticket, texts
from tests.test_security_e2e import staff

pytestmark = pytest.mark.services


class Customer:
    """One conversation that counts what the customer sends."""

    def __init__(self, stack) -> None:
        self.stack = stack
        self.sender = "triage-" + uuid.uuid4().hex
        self.turns = 0

    def say(self, text: str) -> list[dict]:
        self.turns += 1
        return self.stack.say(self.sender, text)


def answer_form(customer: Customer, reply: list[dict], answers: dict[str, str]) -> list[dict]:
    """Answer whatever the form asks, by its question, until the summary."""
    questions = {
        "What's your name?": "name", "Which email address": "email", "Which product": "product",
        "Which version of": "version", "Please describe the problem": "description",
        "What have you already tried": "tried", "How does this affect your business": "impact",
        "I'd rate this": "severity",
    }
    asked: list[str] = []
    for _ in range(10):
        said = texts(reply)
        if "Here's what I'll send" in said:
            return reply
        field = next((f for q, f in questions.items() if q in said), None)
        assert field is not None, said
        asked.append(field)
        value = answers[field]
        if field == "severity":
            value = next(p for t, p in buttons(reply).items() if t.startswith("Yes, "))
        reply = customer.say(value)
    raise AssertionError(f"the form did not end; asked {asked}")


def slot_buttons(reply: list[dict]) -> list[dict]:
    return [b for m in reply for b in m["buttons"] if b["payload"].startswith("/choose_slot")]


ANSWERS = {
    "name": "Leilani Kahale", "email": "leilani@example.com", "product": "Makana Books", "version": "cloud",
    "description": "nothing loads for any of us since this morning", "tried": "restarted, other browsers",
    "impact": "all 18 of us are stopped", "severity": "",
}


async def test_an_outage_with_a_call_request_reaches_call_slots_in_nine_turns(stack, policy):
    customer = Customer(stack)
    reply = customer.say("our whole system is down for everyone, I need a Google Meet call with your engineers")
    said = texts(reply)
    assert "that sounds urgent" in said and "I'd rate this Critical" in said
    assert "first response within 1 hour" in said
    assert "A call with our technical team is booked for a Critical or High ticket" in said
    [(title, payload)] = buttons(reply).items()  # one button
    assert title == "Open a Critical ticket now"

    reply = answer_form(customer, customer.say(payload), ANSWERS)
    summary = texts(reply)
    assert "- Severity: Critical" in summary
    assert "- Problem: our whole system is down for everyone" in summary
    reply = customer.say(buttons(reply)["Yes, open the ticket"])
    said = texts(reply)
    [number] = NUMBER.findall(said)
    slots = slot_buttons(reply)
    assert slots, said
    now = dt.datetime.now(dt.timezone.utc)
    if not policy.is_open(now):
        assert "on-call engineer, who responds within 1 hour" in said and len(slots) == 1
    else:
        assert len(slots) == 3
    assert customer.turns <= 9, customer.turns

    ticket = await stored_ticket(stack, number)
    assert (ticket.severity, ticket.proposed_severity, ticket.submitted_severity) == ("critical", "critical", "critical")


async def test_questions_are_answered_not_routed(stack):
    for question in ("what are your opening hours on saturday?", "how do I change the logo on my invoices"):
        reply = Customer(stack).say(question)
        assert "that sounds urgent" not in texts(reply), question
        assert not any(t.startswith("Open a") for t in buttons(reply)), question


async def test_a_billing_request_skips_product_and_version_and_the_report_counts_it(stack):
    customer = Customer(stack)
    billing = "you charged our card twice for this month's subscription, please refund one"
    customer.say(billing)
    reply = customer.say("/request_human")  # the billing message is the description
    assert "What's your name?" in texts(reply)
    answers = dict(ANSWERS, description=billing, impact="no rush, it's just money", tried="checked the bank statement")
    reply = answer_form(customer, reply, answers)
    assert "Which product" not in json.dumps(reply)
    summary = texts(reply)
    assert "- Product:" not in summary and "- Version:" not in summary
    reply = customer.say(buttons(reply)["Yes, open the ticket"])
    [number] = NUMBER.findall(texts(reply))
    ticket = await stored_ticket(stack, number)
    assert ticket.category == "customer_service" and (ticket.product, ticket.version) == ("", "")
    assert ticket.severity in ("medium", "low") and ticket.proposed_severity == ticket.severity

    # Staff raise it; the report shows the proposal as changed by staff.
    status, body = staff(stack, "POST", f"/api/staff/tickets/{number}/severity", {"severity": "high"})
    assert status == 200 and body["severity"] == "high" and body["proposed_severity"] == ticket.proposed_severity
    status, report = staff(stack, "GET", "/api/staff/report?days=2")
    assert status == 200
    row = next(r for r in report["triage"] if r["severity"] == ticket.proposed_severity)
    assert row["changed_by_staff"] >= 1
    assert staff(stack, "POST", f"/api/staff/tickets/{number}/severity", {"severity": "urgent"})[0] == 422
    status, _ = http("POST", f"{stack.web}/api/staff/tickets/{number}/severity", json.dumps({"severity": "low"}).encode())
    assert status == 401  # no token
