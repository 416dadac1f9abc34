"""The running assistant answers questions about every policy section from the policy
file, and a changed policy file changes the answers after a restart (no code change)."""

import datetime as dt
import uuid

import pytest

from bot.policy_answers import format_hours, hours_text
from bot.policy import load_policy

pytestmark = pytest.mark.services


def ask(stack, question: str) -> str:
    replies = stack.say("policy-" + uuid.uuid4().hex, question)
    return "\n".join(m["text"] or "" for m in replies)


def expectations(policy):
    doc = policy.doc
    window = doc.availability.maintenance_windows
    now = dt.datetime.now(dt.timezone.utc)
    upcoming = [w for w in window if w.ends > now]
    return [
        ("what do you promise your customers when it comes to support?", doc.introduction[:60]),
        ("which of your products and versions get support", doc.scope.products[0].name),
        ("are plugins made by other companies covered?", doc.third_party_support[:50]),
        ("do you support the Stripe plugin?", "Stripe is a third-party product"),
        ("when can I reach someone?", hours_text(policy)),
        ("are you open now?", "We're open now" if policy.is_open(now) else "We're closed now"),
        ("what ways are there to get hold of your team", doc.channels[0].name),
        ("can I find answers myself somewhere without waiting", doc.self_service[0].url),
        (
            "how fast will you answer a critical outage?",
            f"first response within {format_hours(policy.severity('critical').first_response_hours)}",
        ),
        ("what makes an issue high priority versus medium", policy.severity("high").definition[:40]),
        ("how do you decide which tickets get handled first", doc.process.prioritisation[:40]),
        # The fact asked leads (bot/policy_facts.py): when the agent's level moves a ticket up.
        # (Its first letter is lower-cased: "… moves up … when the fault needs an engineer".)
        ("my problem is stuck with the agent, can it go up a level", doc.process.escalation_levels[1].moves_up_when[1:40]),
        ("what information do I have to give you when I report something", doc.customer_responsibilities.required_information[0]),
        ("are you closed on public holidays?", "public holidays"),
        ("is there maintenance planned?", upcoming[0].notice[:40] if upcoming else "No maintenance is planned"),
        ("what's your liability?", next(x for x in doc.liability.split(". ") if "liability" in x)[:40]),
        ("can you build a custom integration for us and what does it cost?", f"US${doc.custom_solutions.hourly_rate_usd:,.0f} per hour"),
        ("is there training?", doc.training[0].name),
        ("what changed in the policy?", doc.updates.changelog[0].changes[0]),
        ("how do I contact you?", doc.contact.email),
    ]


@pytest.mark.parametrize("index", range(20))
def test_each_policy_section_is_answered_from_the_file(stack, policy, index):
    question, expected = expectations(policy)[index]
    assert expected in ask(stack, question)


def test_editing_the_policy_file_changes_the_answers_after_a_restart(stack):
    path = stack.settings.policy_path
    original = path.read_text()
    edited = (
        original.replace('closes: "18:30"', 'closes: "17:15"')
        .replace("first_response_hours: 1\n", "first_response_hours: 2\n", 1)
        .replace(
            "  maintenance_windows:\n",
            "  maintenance_windows:\n"
            "    - id: mw-test\n"
            "      starts: \"2099-01-02T01:00:00-10:00\"\n"
            "      ends: \"2099-01-02T03:00:00-10:00\"\n"
            "      notice_days: 36500\n"
            "      notice: Test window for the payroll module upgrade.\n",
        )
    )
    assert edited.count("17:15") == 1 and "first_response_hours: 2\n" in edited
    try:
        path.write_text(edited)
        load_policy(path)  # still a valid policy
        stack.restart("actions")
        assert "9:30 to 17:15" in ask(stack, "when are you open?")
        assert "first response within 2 hours" in ask(stack, "how fast do you respond to a critical problem?")
        assert "payroll module upgrade" in ask(stack, "any maintenance coming up?")
    finally:
        path.write_text(original)
        stack.restart("actions")
    assert "9:30 to 18:30" in ask(stack, "when are you open?")
