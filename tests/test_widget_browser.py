"""The chat widget and the in-app pane in a real headless Chromium, against the running
services: FAQ answer and quick replies, history across navigation and reload, script
injection shown as text and stored verbatim, escalation into a ticket, verified and
forged identity in the pane, the keyboard, and an unreachable or rate-limiting server.

Screenshots of the widget (desktop and phone) and of the pane go to docs/screenshots/.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright import sync_api as playwright_api

from bot.web import identity
from bot.settings import ROOT
from bot.store import Store
from tests.conftest import http

expect = playwright_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.services]

SCREENSHOTS = ROOT / "docs" / "screenshots"
NUMBER = re.compile(r"\bMK-[2-9A-HJ-NP-Z]{6}\b")
XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
ANONYMOUS_NOTICE = "We couldn't confirm your sign-in; you're chatting anonymously"
WEB_CONVERSATION_KEY = "makana-support:conversation:web_chat:anonymous"

CUSTOMER = '[data-testid="message"][data-from="customer"]'
ASSISTANT = '[data-testid="message"][data-from="assistant"]'
SYSTEM = '[data-testid="message"][data-from="system"]'

expect.set_options(timeout=20_000)  # an answer goes through Rasa and the FAQ index


def open_page(browser, **context_options):
    """A page in a fresh browser profile that fails the test on a script error or CSP violation."""
    context = browser.new_context(**{"viewport": {"width": 1280, "height": 800}, **context_options})
    context.set_default_timeout(20_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda m: problems.append(f"console: {m.text}")
        if m.type == "error" and ("Content Security Policy" in m.text or "Refused to" in m.text)
        else None,
    )
    page.problems = problems
    return page


@pytest.fixture
def page(browser):
    page = open_page(browser)
    yield page
    page.context.close()
    assert page.problems == []


def cors_headers(stack) -> dict[str, str]:
    """What the web service adds for the demo site's origin: a made-up answer needs them too."""
    return {"Access-Control-Allow-Origin": stack.demo, "Access-Control-Expose-Headers": "Retry-After", "Vary": "Origin"}


def open_widget(page, url: str) -> None:
    page.goto(url)
    launcher = page.get_by_test_id("launcher")
    launcher.click()
    expect(launcher).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_test_id("panel")).to_be_visible()
    expect(page.get_by_test_id("input")).to_be_enabled()


def exchange(page, act) -> str:
    """Do `act` (which sends one customer message); wait for it to be answered; return the answer."""
    customers = page.locator(CUSTOMER)
    before = customers.count()
    act()
    sent = customers.nth(before)
    expect(sent).to_have_attribute("data-state", "sent")
    expect(page.get_by_test_id("typing")).to_be_hidden()
    return sent.evaluate(
        "el => { const t = []; for (let s = el.nextElementSibling; s; s = s.nextElementSibling) t.push(s.innerText);"
        " return t.join('\\n'); }"
    )


def say(page, text: str) -> str:
    box = page.get_by_test_id("input")

    def act():
        box.fill(text)
        box.press("Enter")

    return exchange(page, act)


def choose(page, title: str) -> str:
    button = page.get_by_test_id("quick-reply").filter(has_text=re.compile(f"^{re.escape(title)}$"))
    return exchange(page, lambda: button.click())


def fill_form(page, reply: str, answers: dict[str, tuple[str, str]]) -> str:
    """Answer the support request form until its summary; `answers` maps a prompt to (say|choose, text)."""
    for _ in range(12):
        if "Here's what I'll send" in reply:
            return reply
        prompt = next((p for p in answers if p in reply), None)
        assert prompt, reply
        how, text = answers[prompt]
        reply = say(page, text) if how == "say" else choose(page, text)
    raise AssertionError(f"the form never reached its summary: {reply}")


def tickets_of(stack, sender: str):
    """The tickets of a conversation, read from the service's database."""

    async def read():
        store = await Store.open(stack.settings.database_url)
        try:
            return await store.tickets_for_conversation(sender)
        finally:
            await store.close()

    # Playwright's sync API keeps an event loop on this thread; the store needs its own.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, read()).result(timeout=30)


def screenshot(page, name: str, full_page: bool = False) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=full_page)


def token(stack, name: str, email: str, secret: str | None = None) -> str:
    expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    return identity.sign(secret or stack.settings.identity_secret, "u-" + uuid.uuid4().hex[:8], name, email, expires)


def test_faq_answer_quick_reply_and_history_across_pages(stack, page):
    open_widget(page, stack.demo + "/demo/site")
    expect(page.get_by_test_id("status")).to_contain_text(re.compile(r"We're (open|closed)"))

    answer = say(page, "how do I reset my password?")
    assert "Forgot password?" in answer and "**" not in answer  # Markdown bold rendered, not shown
    expect(page.locator(ASSISTANT + " strong").first).to_be_visible()
    guide = page.locator(ASSISTANT + ' a[href^="https://learn.makana.example/"]').first
    expect(guide).to_have_attribute("rel", "noopener noreferrer")
    expect(guide).to_have_attribute("target", "_blank")
    assert "Did this answer your question?" in answer
    expect(page.get_by_test_id("quick-reply")).to_have_count(2)

    assert "glad I could help" in choose(page, "Yes, thanks")
    expect(page.locator(CUSTOMER).last).to_contain_text("Yes, thanks")  # the title, not "/affirm"
    expect(page.get_by_test_id("quick-reply")).to_have_count(0)  # answered, so gone
    sender = page.evaluate(f"() => localStorage.getItem({json.dumps(WEB_CONVERSATION_KEY)})")
    assert re.fullmatch(r"w-[0-9a-f]{32}", sender)
    before = page.get_by_test_id("message").all_inner_texts()
    screenshot(page, "widget-desktop.png")

    page.locator('nav a[href="/demo/site/pricing"]').click()
    page.wait_for_url("**/demo/site/pricing")
    page.reload()
    expect(page.get_by_test_id("panel")).to_be_visible()  # it was open: still open
    expect(page.get_by_test_id("launcher")).to_have_attribute("aria-expanded", "true")
    expect(page.locator(CUSTOMER)).to_have_count(2)
    expect(page.get_by_test_id("log")).to_have_attribute("aria-busy", "false")
    assert page.get_by_test_id("message").all_inner_texts() == before
    assert page.evaluate(f"() => localStorage.getItem({json.dumps(WEB_CONVERSATION_KEY)})") == sender

    page.get_by_test_id("new-conversation").click()
    expect(page.get_by_test_id("message")).to_have_count(0)
    say(page, "hello")
    fresh = page.evaluate(f"() => localStorage.getItem({json.dumps(WEB_CONVERSATION_KEY)})")
    assert re.fullmatch(r"w-[0-9a-f]{32}", fresh) and fresh != sender


def test_phone_sized_screen_gets_a_full_screen_panel(stack, browser):
    page = open_page(browser, viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True)
    try:
        open_widget(page, stack.demo + "/demo/site")
        assert "Did this answer your question?" in say(page, "how do I reset my password?")
        box = page.get_by_test_id("panel").bounding_box()
        assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, 390, 844)
        screenshot(page, "widget-phone.png")
        page.get_by_test_id("close").click()
        expect(page.get_by_test_id("panel")).to_be_hidden()
        expect(page.get_by_test_id("launcher")).to_be_focused()
        assert page.problems == []
    finally:
        page.context.close()


def test_script_injection_is_text_everywhere_and_reaches_the_ticket_verbatim(stack, page):
    open_widget(page, stack.demo + "/demo/site")
    say(page, XSS)
    expect(page.locator(CUSTOMER + ' [data-testid="message-text"]').first).to_have_text(XSS)
    reply = say(page, "I need to talk to a human")
    description = "The invoice page shows this text after saving: " + XSS
    summary = fill_form(page, reply, {
        "What's your name?": ("say", "Ana López"),
        "Which email address": ("say", "ana.lopez@example.com"),
        "Which product": ("choose", "Makana Books"),
        "Which version": ("say", "6.1"),
        "describe the problem": ("say", description),
        "already tried": ("say", "Reloaded the page twice"),
        "affect your business": ("say", "The whole team cannot send invoices today"),
        "I'd rate this": ("choose", "Yes, High"),
    })
    assert f"- Problem: {description}" in summary  # the assistant's echo is text too

    confirmation = choose(page, "Yes, open the ticket")
    [number] = NUMBER.findall(confirmation)
    expect(page.locator(ASSISTANT).last).to_contain_text(number)
    # Nothing the customer typed became markup, and none of it ran; nor after a reload (history).
    markup = "() => document.querySelector('[data-makana-support]').shadowRoot.querySelectorAll('img, script').length"
    assert page.evaluate(markup) == 0
    assert page.evaluate("() => window.__xss") is None
    page.reload()
    expect(page.locator(CUSTOMER + ' [data-testid="message-text"]').first).to_have_text(XSS)
    expect(page.locator(ASSISTANT).filter(has_text="- Problem: ")).to_contain_text(XSS)
    assert page.evaluate(markup) == 0
    assert page.evaluate("() => window.__xss") is None

    sender = page.evaluate(f"() => localStorage.getItem({json.dumps(WEB_CONVERSATION_KEY)})")
    [ticket] = tickets_of(stack, sender)
    assert (ticket.number, ticket.description, ticket.channel) == (number, description, "web_chat")


def test_pane_with_a_verified_identity_skips_name_and_email_and_lists_the_ticket(stack, page):
    email = f"kai.{uuid.uuid4().hex[:8]}@example.com"
    page.goto(stack.demo + "/demo/app?identity=" + token(stack, "Kai Kealoha", email))
    expect(page.get_by_test_id("signed-in")).to_contain_text("Signed in as Kai Kealoha")
    expect(page.get_by_test_id("tickets-section")).to_contain_text("You have no tickets yet.")
    expect(page.get_by_test_id("launcher")).to_have_count(0)  # inline, no floating button

    reply = say(page, "I need to talk to a human")
    assert "What's your name?" not in reply and "Which email" not in reply
    summary = fill_form(page, reply, {
        "Which product": ("choose", "Makana Books"),
        "Which version": ("say", "6.1"),
        "describe the problem": ("say", "The bank feed import stops at 40 percent with error E-311"),
        "already tried": ("say", "Restarted the import and signed out and in"),
        "affect your business": ("say", "The whole team cannot reconcile payments today"),
        "I'd rate this": ("choose", "Yes, High"),
    })
    assert f"- Email: {email}" in summary and "- Name: Kai Kealoha" in summary
    [number] = NUMBER.findall(choose(page, "Yes, open the ticket"))

    ticket = page.get_by_test_id("ticket").filter(has_text=number)
    expect(ticket).to_contain_text("Open")
    expect(ticket).to_contain_text("Makana Books")
    expect(ticket).to_contain_text("First response due")
    expect(page.locator(SYSTEM)).to_have_count(0)  # no anonymous fallback
    screenshot(page, "pane.png")


def test_pane_with_a_forged_identity_falls_back_to_anonymous_and_still_chats(stack, page):
    bodies: list[dict] = []
    page.on(
        "request",
        lambda r: bodies.append(json.loads(r.post_data)) if r.url.endswith("/api/chat") and r.method == "POST" else None,
    )
    # Let the chat be the one to find out the token is bad (the tickets list cannot load).
    page.route("**/api/me/tickets*", lambda route: route.abort())  # with ?tz= or without
    forged = token(stack, "Mallory", "mallory@example.com", secret="not-the-secret")
    page.goto(stack.demo + "/demo/app?identity=" + forged)

    assert "I'm the support assistant" in say(page, "hello")
    expect(page.locator(SYSTEM)).to_have_count(1)
    expect(page.locator(SYSTEM)).to_contain_text(ANONYMOUS_NOTICE)
    expect(page.locator(CUSTOMER)).to_have_count(1)  # resent, shown once
    assert [("identity" in b, b["message"], b["channel"]) for b in bodies] == [
        (True, "hello", "in_app"), (False, "hello", "in_app")
    ]
    expect(page.get_by_test_id("tickets-section")).to_contain_text("Sign in again")

    say(page, "thank you so much")
    assert "identity" not in bodies[-1]  # stays anonymous
    expect(page.locator(SYSTEM)).to_have_count(1)


def test_keyboard_reaches_opens_and_closes_the_widget(stack, page):
    page.goto(stack.demo + "/demo/site")
    launcher = page.get_by_test_id("launcher")
    for _ in range(30):
        page.keyboard.press("Tab")
        if launcher.evaluate("el => el.getRootNode().activeElement === el"):
            break
    else:
        raise AssertionError("Tab never reached the launcher")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("panel")).to_be_visible()
    expect(page.get_by_role("dialog", name="Makana support chat")).to_be_visible()
    expect(launcher).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_test_id("input")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_test_id("send")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_test_id("new-conversation")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("panel")).to_be_hidden()
    expect(launcher).to_have_attribute("aria-expanded", "false")
    expect(launcher).to_be_focused()


def test_unreachable_assistant_keeps_the_message_and_delivers_it_once(stack, page):
    attempts: list[str] = []
    delivered: list[str] = []

    def flaky(route):
        body = json.loads(route.request.post_data)
        attempts.append(body["message"])
        if len(attempts) == 1:
            route.abort("connectionrefused")
        elif len(attempts) == 2:
            route.fulfill(status=503, content_type="application/json", headers=cors_headers(stack), body=json.dumps(
                {"error": {"code": "assistant_unavailable", "message": "The assistant is not reachable right now."}}
            ))
        else:
            delivered.append(body["message"])
            route.continue_()

    open_widget(page, stack.demo + "/demo/site")
    expect(page.get_by_test_id("status")).to_contain_text("We're")  # channels known before the outage
    page.route("**/api/chat", flaky)
    box = page.get_by_test_id("input")
    box.fill("how do I reset my password?")
    box.press("Enter")

    notice = page.locator(SYSTEM + '[data-notice="unreachable"]')
    expect(notice).to_contain_text("can't be reached")
    expect(notice.get_by_test_id("contact-channels")).to_contain_text("support@makana.example")
    expect(notice.get_by_test_id("contact-channels")).to_contain_text("+1 808 555 0142")
    expect(page.locator(CUSTOMER).last).to_have_attribute("data-state", "queued")
    expect(notice.get_by_test_id("retry")).to_be_visible()

    # The automatic retry (after 2 s) meets the 503; then the customer presses "Retry now".
    expect(notice.get_by_test_id("retry-countdown")).to_contain_text("4 s", timeout=10_000)
    assert len(attempts) == 2
    notice.get_by_test_id("retry").click()

    expect(page.locator(ASSISTANT).first).to_contain_text("Forgot password?")
    expect(notice.get_by_test_id("retry")).to_have_count(0)
    expect(notice).to_contain_text("We're back")
    expect(page.locator(CUSTOMER)).to_have_count(1)
    expect(page.locator(CUSTOMER).first).to_have_attribute("data-state", "sent")
    # No late duplicate: the widget sends in order, so once a second message has been
    # answered, a repeat of the first would already have been delivered.
    box.fill("thanks")
    box.press("Enter")
    expect(page.locator(CUSTOMER).nth(1)).to_have_attribute("data-state", "sent")
    assert delivered == ["how do I reset my password?", "thanks"]
    sender = page.evaluate(f"() => localStorage.getItem({json.dumps(WEB_CONVERSATION_KEY)})")
    status, history = http("GET", f"{stack.web}/api/conversations/{sender}/history")
    assert status == 200
    assert [t["text"] for t in history["messages"] if t["speaker"] == "customer"] == ["how do I reset my password?", "thanks"]


def test_rate_limited_message_waits_for_retry_after(stack, page):
    attempts: list[float] = []

    def limited(route):
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            route.fulfill(status=429, content_type="application/json", headers={
                    "Retry-After": "2", **cors_headers(stack)}, body=json.dumps(
                {"error": {"code": "rate_limited", "message": "Too many messages in this conversation."}}
            ))
        else:
            route.continue_()

    open_widget(page, stack.demo + "/demo/site")
    page.route("**/api/chat", limited)
    box = page.get_by_test_id("input")
    box.fill("hello")
    box.press("Enter")
    expect(page.locator(SYSTEM)).to_contain_text("will be sent in 2 s")
    expect(page.locator(ASSISTANT).first).to_contain_text("I'm the support assistant")
    assert len(attempts) == 2
    assert attempts[1] - attempts[0] >= 1.9  # Retry-After (2 s) is respected
    expect(page.locator(CUSTOMER)).to_have_count(1)


def test_full_page_chat_is_the_pane_without_identity(stack, page):
    bodies: list[dict] = []
    page.on(
        "request",
        lambda r: bodies.append(json.loads(r.post_data)) if r.url.endswith("/api/chat") and r.method == "POST" else None,
    )
    page.goto(stack.web + "/")
    expect(page.get_by_test_id("launcher")).to_have_count(0)
    expect(page.get_by_test_id("tickets-section")).to_have_count(0)
    assert "I'm the support assistant" in say(page, "hello")
    zone = page.evaluate("() => Intl.DateTimeFormat().resolvedOptions().timeZone")
    assert bodies == [{"sender": bodies[0]["sender"], "message": "hello", "channel": "web_chat", "timezone": zone}]


# -- cross-origin: the widget on the company's site, another origin than the service ----


def test_widget_and_pane_on_an_allowed_origin_reach_the_assistant(stack, page):
    assert stack.demo != stack.web and stack.demo in stack.settings.allowed_origin_list
    open_widget(page, stack.demo + "/demo/site")
    assert page.evaluate("location.origin") == stack.demo
    assert "I'm the support assistant" in say(page, "hello")
    email = f"ana.{uuid.uuid4().hex[:8]}@example.com"
    page.goto(stack.demo + "/demo/app?identity=" + token(stack, "Ana Kahale", email))
    expect(page.get_by_test_id("signed-in")).to_contain_text("Signed in as Ana Kahale")  # the identity header passed
    assert "I'm the support assistant" in say(page, "hi there")


@pytest.fixture
def foreign_site(stack):
    """A page on an origin that is not in SUPPORT_ALLOWED_ORIGINS, embedding the widget."""
    import http.server
    import threading

    html = f'<!doctype html><title>Not ours</title><script src="{stack.web}/widget.js" defer></script>'.encode()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_page_on_another_origin_cannot_use_the_assistant(stack, page, foreign_site):
    assert foreign_site not in stack.settings.allowed_origin_list
    page.goto(foreign_site + "/")
    page.get_by_test_id("launcher").click()
    box = page.get_by_test_id("input")
    expect(box).to_be_enabled()
    box.fill("hello from a site that is not allowed")
    box.press("Enter")
    # The browser refuses to hand the answers to the page: the widget can only say it
    # cannot reach the assistant, and keeps the message.
    expect(page.locator(SYSTEM + '[data-notice="unreachable"]')).to_be_visible()
    expect(page.locator(CUSTOMER).first).to_have_attribute("data-state", "queued")


def test_a_link_the_customer_typed_is_not_made_clickable_when_repeated(stack, page):
    open_widget(page, stack.demo + "/demo/site")
    reply = say(page, "talk to a human please")
    for _ in range(3):  # to the email question, whatever comes first
        if "email" in reply.lower():
            break
        reply = say(page, "Ana Kahale")
    reply = say(page, "https://evil.example/login")
    assert "https://evil.example/login" in reply  # repeated in the "not a valid email" answer…
    assert page.locator('a[href^="https://evil.example"]').count() == 0  # …as text, not a link
    policy_link = page.locator('a[href^="https://help.makana.example"]')
    say(page, "cancel")
    say(page, "what user roles are there?")
    expect(policy_link.first).to_be_visible()  # the company's own links still are
