"""What people see, in a real headless Chromium against the running services (issue 20):

- one clock: the widget's banner and the assistant's messages give the same moment, on
  the visitor's clock with the company's beside it, for visitors in Los Angeles, UTC and
  Honolulu;
- the console at 1280 and 1440 px: every queue column visible without scrolling, compact
  rows, the ticket pane only while a ticket is open, Markdown rendered in transcripts;
- long unbroken words wrap: no horizontal overflow on the console, the report and the
  widget with a 5,000-character word in a conversation;
- 44 px touch targets;
- axe-core (bundled) finds no serious or critical violation on the widget, the pane,
  the full-page chat, the console and the report.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.request
import uuid
from zoneinfo import ZoneInfo

import pytest

from bot.policy_answers import status_text
from tests.accessibility import axe_violations
from tests.test_staff_browser import chat_ticket, sign_in, staff_token
from tests.test_widget_browser import (
    ASSISTANT,
    expect,
    open_page,
    open_widget,
    say,
    screenshot,
    token,
)

pytestmark = [pytest.mark.browser, pytest.mark.services]

# One unbroken word as long as the issue's: it reaches Rasa directly (the web service
# caps messages at 2,000 characters), as a long paste through an older limit would have.
LONG_WORD = "Aloha" * 1000
MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"


def rasa_say(stack, sender: str, text: str) -> list[dict]:
    """A message straight to Rasa's REST channel, with the internal token (the tests know it)."""
    request = urllib.request.Request(
        stack.settings.rasa_url_list[0].rstrip("/") + "/webhooks/rest/webhook",
        data=json.dumps({"sender": sender, "message": text}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {stack.settings.rasa_token}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def long_ticket(stack) -> str:
    """A ticket whose transcript holds a bold FAQ answer and a 5,000-character word."""
    sender = f"ui-{uuid.uuid4().hex}"
    answer = "\n".join(m.get("text") or "" for m in stack.say(sender, "how do I reset my password?"))
    assert "**" in answer  # the raw text the console must render, not show
    rasa_say(stack, sender, LONG_WORD)
    return chat_ticket(stack, sender, {
        "What's your name?": "Pua Kanoho",
        "Which email address": "pua.kanoho@example.com",
        "Which product": "Makana POS",
        "Which version": "4",
        "describe the problem": "Receipts print twice on the kitchen printer",
        "already tried": "Restarted the printer",
        "affect your business": "Annoying, we waste paper",
        "I'd rate this": "Yes, Low",
    })


def no_horizontal_overflow(page) -> None:
    sizes = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert sizes[0] <= sizes[1], f"the page is {sizes[0]} px wide in a {sizes[1]} px window"


def assert_queue_fits(page) -> None:
    """Every column of the queue lies inside its box, and the box does not scroll sideways."""
    box = page.evaluate(
        """() => {
            const wrap = document.querySelector('.table-wrap');
            const right = wrap.getBoundingClientRect().right;
            return {
                scroll: wrap.scrollWidth, client: wrap.clientWidth,
                outside: [...document.querySelectorAll('.tickets th')]
                    .filter(th => th.getBoundingClientRect().right > right + 0.5 || th.getBoundingClientRect().width < 30)
                    .map(th => th.textContent),
                headers: [...document.querySelectorAll('.tickets th')].map(th => th.textContent),
            };
        }"""
    )
    assert box["headers"] == ["Ticket", "Severity", "Status", "Product", "Customer", "Assignee", "First response"]
    assert box["outside"] == [] and box["scroll"] <= box["client"], box


# -- one clock ----------------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "UTC", "Pacific/Honolulu"])
def test_banner_and_chat_give_the_same_moment_on_the_visitors_clock(stack, browser, policy, zone):
    page = open_page(browser, timezone_id=zone)
    sent: list[dict] = []
    page.on("request", lambda r: sent.append(json.loads(r.post_data)) if r.url.endswith("/api/chat") else None)
    try:
        open_widget(page, stack.demo + "/demo/site")
        status = page.get_by_test_id("status")
        expect(status).to_contain_text("We're")
        banner = status.inner_text()
        # The banner is the policy's state on the visitor's clock…
        assert banner == status_text(policy, dt.datetime.now(dt.timezone.utc), ZoneInfo(zone))
        if zone == "Pacific/Honolulu":
            assert "(Hawaii time)" in banner and "your time" not in banner
        else:
            assert re.search(r"\d+:\d\d your time \((\w+ )?\d+:\d\d Hawaii time\)", banner), banner

        # …and the assistant's message gives the same moment, word for word.
        reply = say(page, "I want to talk to a human")
        assert sent[-1]["timezone"] == zone
        assert banner in reply, f"banner: {banner!r}\nchat: {reply!r}"
        assert ("your time" in reply) == (zone != "Pacific/Honolulu")

        notices = page.get_by_test_id("notice")
        for i in range(notices.count()):  # a maintenance window is announced: dated, both clocks
            when = notices.nth(i).locator("summary").inner_text()
            assert re.search(rf"(today|tomorrow|\d+ ({MONTHS}))", when), when
            assert ("your time" in when) == (zone != "Pacific/Honolulu"), when
        say(page, "cancel")
        assert page.problems == []
    finally:
        page.context.close()


# -- the console and the report at desktop widths ----------------------------------------


@pytest.mark.parametrize("width", [1280, 1440])
def test_console_shows_every_column_and_the_ticket_only_when_open(stack, browser, long_ticket, width):
    page = open_page(browser, viewport={"width": width, "height": 800})
    try:
        page.goto(stack.web + "/staff")
        sign_in(page, staff_token(stack))
        rows = page.get_by_test_id("queue-row")
        expect(rows.first).to_be_visible()

        # No ticket open: no ticket pane, and the queue has the page's width.
        expect(page.get_by_test_id("ticket-view")).to_be_hidden()
        queue, main = page.locator(".queue").bounding_box(), page.locator("main").bounding_box()
        assert queue["width"] > 0.9 * main["width"]
        assert_queue_fits(page)

        page.evaluate("number => { location.hash = number; }", long_ticket)
        expect(page.get_by_test_id("ticket-title")).to_contain_text(long_ticket)
        assert_queue_fits(page)
        no_horizontal_overflow(page)
        # Compact rows: one line each, two at most where the deadline's words wrap.
        line = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector('.tickets td')).lineHeight)")
        heights = rows.evaluate_all("rs => rs.map(r => r.getBoundingClientRect().height)")
        assert max(heights) <= 2 * line + 12, (line, heights)

        # The transcript: the long word wraps inside the pane; Markdown is rendered, not shown.
        texts = page.get_by_test_id("transcript-text")
        long_turn = texts.filter(has_text=LONG_WORD[:200])
        expect(long_turn).to_have_count(1)
        pane, turn = page.get_by_test_id("ticket-view").bounding_box(), long_turn.bounding_box()
        assert turn["x"] + turn["width"] <= pane["x"] + pane["width"]
        assert not any("**" in t for t in texts.all_inner_texts())
        expect(page.locator('[data-speaker="assistant"] [data-testid="transcript-text"] strong').first).to_be_visible()
        if width == 1280:
            screenshot(page, "console-1280.png")

        page.locator("#close-ticket").click()
        expect(page.get_by_test_id("ticket-view")).to_be_hidden()
        assert page.locator(".queue").bounding_box()["width"] > 0.9 * main["width"]
        assert page.problems == []
    finally:
        page.context.close()


def test_report_keeps_to_the_window_with_a_long_unanswered_message(stack, browser, long_ticket):
    page = open_page(browser, viewport={"width": 1280, "height": 800})
    try:
        page.goto(stack.web + "/staff/report")
        sign_in(page, staff_token(stack))
        unanswered = page.get_by_test_id("unanswered-group").filter(has_text=LONG_WORD[:200])
        expect(unanswered).to_have_count(1)  # the long word is one of the questions not answered
        no_horizontal_overflow(page)
        box, list_box = unanswered.bounding_box(), page.get_by_test_id("unanswered").bounding_box()
        assert box["x"] + box["width"] <= list_box["x"] + list_box["width"]
        assert page.problems == []
    finally:
        page.context.close()


def test_widget_wraps_a_long_word(stack, browser):
    page = open_page(browser)
    try:
        open_widget(page, stack.demo + "/demo/site")
        word = "Mahalo" * 333  # 1,998 characters: within the web service's limit
        say(page, word)
        log = page.get_by_test_id("log")
        expect(log).to_contain_text(word)
        sizes = log.evaluate("el => [el.scrollWidth, el.clientWidth]")
        assert sizes[0] <= sizes[1], sizes
        no_horizontal_overflow(page)
        # The renderer shared with the console came in /widget.js, inside the widget's scope.
        assert page.evaluate("() => typeof window.MakanaRichText") == "undefined"
        assert page.problems == []
    finally:
        page.context.close()


# -- touch screens -----------------------------------------------------------------------


def test_touch_targets_are_at_least_44_px(stack, browser):
    phone = open_page(browser, viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                      has_touch=True)
    tablet = open_page(browser, viewport={"width": 1280, "height": 800}, has_touch=True)
    try:
        assert phone.evaluate("() => matchMedia('(pointer: coarse)').matches")
        open_widget(phone, stack.demo + "/demo/site")
        assert "Did this answer your question?" in say(phone, "how do I reset my password?")
        targets = phone.locator(
            '[data-testid="quick-reply"], [data-testid="send"], [data-testid="close"], [data-testid="new-conversation"]'
        )
        expect(phone.get_by_test_id("quick-reply")).to_have_count(2)
        heights = targets.evaluate_all("bs => bs.map(b => [b.textContent, b.getBoundingClientRect().height])")
        assert len(heights) == 5 and all(h >= 44 for _, h in heights), heights

        # The staff console on a touch screen (a tablet), with a ticket open.
        tablet.goto(stack.web + "/staff")
        sign_in(tablet, staff_token(stack))
        tablet.get_by_test_id("queue-row").first.locator("a").click()
        expect(tablet.get_by_test_id("ticket-actions")).to_be_visible()
        small = tablet.locator("button:visible").evaluate_all(
            "bs => bs.map(b => [b.textContent.trim(), b.getBoundingClientRect().height]).filter(([, h]) => h < 44)"
        )
        assert small == []
        assert phone.problems == [] and tablet.problems == []
    finally:
        phone.context.close()
        tablet.context.close()


# -- accessibility -------------------------------------------------------------------------


def test_axe_finds_no_serious_violation(stack, browser, long_ticket):
    page = open_page(browser)
    found: dict[str, list[dict]] = {}
    try:
        open_widget(page, stack.demo + "/demo/site")
        say(page, "how do I reset my password?")
        expect(page.locator(ASSISTANT + " strong").first).to_be_visible()
        found["widget"] = axe_violations(page)

        email = f"kai.{uuid.uuid4().hex[:8]}@example.com"
        page.goto(stack.demo + "/demo/app?identity=" + token(stack, "Kai Kealoha", email))
        expect(page.get_by_test_id("tickets-section")).to_contain_text("You have no tickets yet.")
        say(page, "hello")
        found["pane"] = axe_violations(page)

        page.goto(stack.web + "/")
        say(page, "hello")
        found["chat page"] = axe_violations(page)

        page.goto(stack.web + "/staff")
        found["sign-in"] = axe_violations(page)
        sign_in(page, staff_token(stack))
        page.evaluate("number => { location.hash = number; }", long_ticket)
        expect(page.get_by_test_id("ticket-title")).to_contain_text(long_ticket)
        expect(page.get_by_test_id("transcript-turn").first).to_be_visible()
        found["console"] = axe_violations(page)

        page.goto(stack.web + "/staff/report")
        expect(page.get_by_test_id("chart-csat").locator("svg")).to_have_count(1)
        found["report"] = axe_violations(page)
        bad = {name: v for name, v in found.items() if v}
        assert bad == {}, json.dumps(bad, indent=1)
        assert page.problems == []
    finally:
        page.context.close()
