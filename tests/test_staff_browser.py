"""The staff console, the report page and the widget's satisfaction question in a real
headless Chromium, against the running services.

A customer escalates a critical problem in the widget; a staff member signs in at
/staff, finds the ticket first in the queue, reads the transcript (a script injection
in it stays text), assigns it, adds a note, exports the queue and resolves it; the
customer opens the widget again, is asked for a rating once, and the rating reaches the
database. The report page draws a chart for each figure of /api/staff/report.

Screenshots go to docs/screenshots/console.png and report.png.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.live_store import LiveStore
from bot.store import Store
from tests.test_widget_browser import (
    NUMBER,
    choose,
    expect,
    fill_form,
    open_page,
    open_widget,
    say,
    screenshot,
)

pytestmark = [pytest.mark.browser, pytest.mark.services]

INJECTION = "<img src=x onerror=window.__x=1>"
DESCRIPTION = f"Production is down for all users, nobody can log in. The login page shows {INJECTION}"
CHARTS = ("conversations", "deflection", "faq", "sla", "csat")


def staff_token(stack) -> str:
    return stack.settings.staff_tokens.split(",")[0].split(":", 1)[1]


def staff_call(stack, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    """One staff API request with the bearer token; (status, JSON body)."""
    request = urllib.request.Request(
        stack.web + path,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {staff_token(stack)}", "Content-Type": "application/json"},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def stored_ticket(stack, number: str):
    async def read():
        store = await Store.open(stack.settings.database_url)
        try:
            return await store.get_ticket(number)
        finally:
            await store.close()

    # Playwright's sync API keeps an event loop on this thread; the store needs its own.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, read()).result(timeout=30)


def chat_ticket(stack, sender: str, answers: dict[str, str]) -> str:
    """Escalate a conversation through the chat API, answering the form; the ticket number."""
    reply = stack.say(sender, "I need to talk to a human")
    for _ in range(12):
        text = "\n".join(m["text"] or "" for m in reply)
        buttons = {b["title"]: b["payload"] for m in reply for b in m["buttons"]}
        if "Here's what I'll send" in text:
            [number] = NUMBER.findall("\n".join(m["text"] or "" for m in stack.say(sender, buttons["Yes, open the ticket"])))
            return number
        prompt = next((p for p in answers if p in text), None)
        assert prompt, text
        reply = stack.say(sender, buttons.get(answers[prompt], answers[prompt]))
    raise AssertionError("the form never reached its summary")


def sign_in(page, token: str) -> None:
    field = page.get_by_label("Staff token")
    expect(field).to_be_visible()
    field.fill(token)
    page.get_by_role("button", name="Sign in").click()


def test_critical_ticket_from_chat_to_console_to_a_rating(stack, browser):
    customer = open_page(browser)
    staff = open_page(browser)
    try:
        # The customer escalates a critical problem in the widget.
        open_widget(customer, stack.demo + "/demo/site")
        reply = say(customer, "I need to talk to a human")
        fill_form(customer, reply, {
            "What's your name?": ("say", "Lani Akana"),
            "Which email address": ("say", "lani.akana@example.com"),
            "Which product": ("choose", "Makana Books"),
            "Which version": ("say", "6.1"),
            "describe the problem": ("say", DESCRIPTION),
            "already tried": ("say", "Cleared the browser cache"),
            "affect your business": ("say", "All 40 staff are blocked"),
            "I'd rate this": ("choose", "Yes, Critical"),
        })
        [number] = NUMBER.findall(choose(customer, "Yes, open the ticket"))
        # Another customer's less urgent problem, which sorts after it.
        other = chat_ticket(stack, f"staff-{uuid.uuid4().hex}", {
            "What's your name?": "Pua Kanoho",
            "Which email address": "pua@example.com",
            "Which product": "Makana POS",
            "Which version": "4",
            "describe the problem": "Receipts print twice on the kitchen printer",
            "already tried": "Restarted the printer",
            "affect your business": "Annoying, we waste paper",
            "I'd rate this": "Yes, Low",
        })

        # A wrong token is refused with the server's message; the right one signs in.
        staff.goto(stack.web + "/staff")
        sign_in(staff, "not-a-staff-token-at-all")
        expect(staff.get_by_test_id("sign-in-error")).to_contain_text("staff bearer token")
        sign_in(staff, staff_token(stack))
        expect(staff.get_by_test_id("sign-out")).to_be_visible()

        # Critical (one hour, around the clock): first in the open queue, flagged as urgent.
        first = staff.get_by_test_id("queue-row").first
        expect(first).to_have_attribute("data-number", number)
        expect(first).to_have_class(re.compile(r"row-(due-soon|overdue)"))
        expect(first.get_by_test_id("queue-clock")).to_have_text(re.compile(r"(Due soon|Overdue)\s*(Due|Overdue)"))
        expect(first).to_contain_text("Critical")
        expect(first).to_contain_text("Lani Akana")
        expect(staff.get_by_test_id("queue-row").filter(has_text=other)).to_contain_text("Pua Kanoho")
        numbers = staff.get_by_test_id("queue-row").evaluate_all("rows => rows.map(r => r.dataset.number)")
        assert numbers.index(number) < numbers.index(other)

        # The export carries the bearer header and arrives as a file.
        with staff.expect_download() as download:
            staff.get_by_test_id("export-csv").click()
        assert download.value.suggested_filename == "tickets.csv"
        exported = open(download.value.path(), encoding="utf-8").read()
        assert exported.startswith("number,status,severity") and number in exported

        # Open the ticket from the keyboard: the transcript shows the injection as text.
        first.get_by_role("link", name=number).focus()
        staff.keyboard.press("Enter")
        expect(staff.get_by_test_id("ticket-title")).to_contain_text(number)
        expect(staff.get_by_test_id("ticket-title")).to_be_focused()
        expect(staff.get_by_test_id("ticket-description-text")).to_have_text(DESCRIPTION)
        expect(staff.get_by_test_id("ticket-impact-text")).to_have_text("All 40 staff are blocked")
        customer_turns = staff.locator('[data-testid="transcript-turn"][data-speaker="customer"]')
        expect(customer_turns.filter(has_text=INJECTION)).to_have_count(1)
        expect(staff.locator('[data-testid="transcript-turn"][data-speaker="assistant"]').first).to_be_visible()
        assert staff.locator("#ticket img").count() == 0
        assert staff.evaluate("() => window.__x") is None
        expect(staff.get_by_test_id("ticket-booking")).to_contain_text("No call booked")

        # Only the transitions an open ticket allows are offered.
        expect(staff.get_by_test_id("status-pending")).to_be_visible()
        expect(staff.get_by_test_id("status-resolved")).to_be_visible()
        expect(staff.get_by_test_id("status-closed")).to_have_count(0)

        staff.get_by_label("Assignee").fill("Keoni")
        staff.get_by_test_id("assign").click()
        expect(staff.get_by_test_id("ticket-assignee")).to_have_text("Keoni")
        staff.get_by_label("Add a note (only the team sees it)").fill("Paged the on-call engineer.")
        staff.get_by_test_id("add-note").click()
        expect(staff.get_by_test_id("note")).to_have_count(1)
        expect(staff.get_by_test_id("note")).to_contain_text("tester")
        expect(first).to_contain_text("Keoni")
        staff.evaluate("() => window.scrollTo(0, 0)")
        screenshot(staff, "console.png")

        staff.get_by_test_id("status-resolved").click()
        expect(staff.get_by_test_id("ticket-status")).to_have_text("Resolved")
        expect(staff.get_by_test_id("status-open")).to_have_text("Reopen")
        expect(staff.get_by_test_id("status-closed")).to_be_visible()
        expect(staff.get_by_test_id("queue-row").filter(has_text=number)).to_have_count(0)  # left the open queue

        # Someone else closes it meanwhile: "Reopen" is refused, and the console says why.
        assert staff_call(stack, "POST", f"/api/staff/tickets/{number}/status", {"status": "closed"})[0] == 200
        staff.get_by_test_id("status-open").click()
        expect(staff.get_by_test_id("ticket-error")).to_contain_text("A closed ticket cannot become open")
        expect(staff.get_by_test_id("ticket-status")).to_have_text("Closed")
        expect(staff.get_by_test_id("status-open")).to_have_count(0)

        # The customer comes back to the widget: asked once, rates 5.
        customer.get_by_test_id("close").click()
        customer.get_by_test_id("launcher").click()
        prompt = customer.get_by_test_id("csat-prompt")
        expect(prompt).to_contain_text(f"How satisfied are you with how we handled {number}?")
        expect(prompt.get_by_role("button", name="1, very dissatisfied")).to_be_visible()
        prompt.get_by_role("button", name="5, very satisfied").click()
        expect(prompt).to_contain_text("Thanks for your rating.")
        expect(customer.get_by_test_id("csat-rating-5")).to_have_count(0)
        assert stored_ticket(stack, number).csat_rating == 5
        assert customer.evaluate("() => window.__x") is None

        customer.reload()
        expect(customer.get_by_test_id("panel")).to_be_visible()
        say(customer, "thank you")
        expect(customer.get_by_test_id("csat-prompt")).to_have_count(0)

        # Sign out: back to the form; the token is gone from the tab.
        staff.get_by_test_id("sign-out").click()
        expect(staff.get_by_label("Staff token")).to_be_visible()
        assert staff.evaluate("() => sessionStorage.length") == 0
        assert customer.problems == [] and staff.problems == []
    finally:
        customer.context.close()
        staff.context.close()


def add_live_chat(stack) -> None:
    """One live chat ten minutes ago, taken after 30 s, answered a minute later, ended."""
    async def write():
        store = await Store.open(stack.settings.database_url)
        try:
            live = LiveStore(store.engine)
            asked = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10)
            chat, _ = await live.start("w-report-" + uuid.uuid4().hex, "web_chat", "medium", {}, asked)
            await live.claim(chat.id, "tester", asked + dt.timedelta(seconds=30))
            await live.append(chat.id, "message", "agent", "tester", "hello", asked + dt.timedelta(seconds=90), agent="tester")
            await live.end(chat.id, "ended", asked + dt.timedelta(minutes=8), agent="tester")
        finally:
            await store.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, write()).result(timeout=30)


def test_report_page_draws_the_figures_of_the_api(stack, browser):
    add_live_chat(stack)
    status, report = staff_call(stack, "GET", "/api/staff/report?days=30")
    assert status == 200, report
    page = open_page(browser)
    try:
        page.goto(stack.web + "/staff/report")
        sign_in(page, staff_token(stack))
        for name in CHARTS:
            svg = page.get_by_test_id(f"chart-{name}").locator("svg")
            expect(svg).to_have_count(1)
            expect(svg).to_have_attribute("role", "img")
            expect(page.get_by_test_id(f"summary-{name}")).not_to_be_empty()
        totals = report["totals"]
        expect(page.get_by_test_id("total-conversations")).to_have_text(str(totals["conversations"]))
        expect(page.get_by_test_id("total-escalated")).to_have_text(str(totals["escalated"]))
        # One bar group per day, each with its counts in its tooltip.
        assert page.locator('[data-testid="svg-conversations"] g[data-date]').count() == len(report["days"]) == 30
        csat = report["csat"]
        if csat["count"]:
            assert float(page.get_by_test_id("csat-average").inner_text()) == csat["average"]
            expect(page.get_by_test_id("summary-csat")).to_contain_text(f"from {csat['count']} rating")
        groups = page.get_by_test_id("unanswered-group")
        expect(groups).to_have_count(len(report["unanswered"]))
        if report["unanswered"]:
            expect(groups.first).to_contain_text(report["unanswered"][0]["examples"][0])
        else:
            expect(page.get_by_test_id("unanswered-none")).to_be_visible()
        expect(page.get_by_test_id("unanswered")).to_contain_text("make index")
        live = report["live"]
        assert live["requested"] >= 1 and live["duration"]["median_s"] is not None
        summary = page.get_by_test_id("summary-live")
        expect(summary).to_contain_text(f"{live['requested']} live chat")
        expect(summary).to_contain_text("Wait for an agent: median ")
        expect(summary).to_contain_text("Length of a chat with an agent: median ")
        policy = live["first_reply_within_policy"]
        expect(summary).to_contain_text(f"Within the policy's first-response time: {policy['met']} of {policy['met'] + policy['missed']}.")
        expect(page.get_by_test_id("live-days").locator("tbody tr")).to_have_count(sum(1 for d in live["days"] if d["requested"]))
        screenshot(page, "report.png")

        page.get_by_label("Period", exact=True).select_option("7")
        expect(page.get_by_test_id("report-status")).to_contain_text("Last 7 days")
        assert page.locator('[data-testid="svg-conversations"] g[data-date]').count() == 7
        assert page.problems == []
    finally:
        page.context.close()
