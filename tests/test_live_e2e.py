"""Live chat through the running services: Rasa, the action server and the web service.

With PostgreSQL configured (SUPPORT_TEST_DATABASE_URL) the stack runs two web service
processes on one database: the customer talks to one, the agent to the other, so every
message crosses processes through LISTEN/NOTIFY. Without it, one process on SQLite.
The policy is made open around the clock so that the test does not depend on the hour;
the closed-hours path is tested with a fixed clock in tests/test_live.py and below.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import secrets
import re
import time
import urllib.request
from pathlib import Path

import aiohttp
import pytest
import yaml

from bot.launcher import stop_all, web_service
from tests.conftest import POLICY_FILE, free_port, start_stack

KB_FIRST_SEARCH_MS = 90_000  # the Live view's first knowledge-base search loads the encoder

def open_all_day_policy(folder: Path) -> Path:
    doc = yaml.safe_load(POLICY_FILE.read_text(encoding="utf-8"))
    doc["business_hours"] = {"days": ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
                             "opens": "00:00", "closes": "23:59"}
    path = folder / "open_policy.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


async def fresh_database(url: str, name: str) -> str:
    import asyncpg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    conn = await asyncpg.connect(user=parsed.username, password=parsed.password, host=parsed.host, port=parsed.port,
                                 database="postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return parsed.set(database=name).render_as_string(hide_password=False)


@dataclasses.dataclass
class LiveStack:
    customer: str  # the web service the customer's widget talks to
    agent: str  # the one the agent's console talks to (another process on PostgreSQL)
    token: str
    processes: int
    demo: str  # the demo website that embeds the widget (another origin)
    tokens: dict  # every staff member's token by name: tester, and carol to transfer to


@pytest.fixture(scope="module")
def live_stack(tmp_path_factory):
    folder = tmp_path_factory.mktemp("var-live")
    policy = open_all_day_policy(folder)
    url = os.environ.get("SUPPORT_TEST_DATABASE_URL", "")
    database = asyncio.run(fresh_database(url, "makana_live_test")) if url.startswith("postgresql://") else None
    stack = start_stack(folder, database, policy_file=policy, staff=("tester", "carol"))
    services = list(stack.services.values())
    agent_url = stack.web
    if database:
        port = free_port()
        second = web_service(stack.settings.with_changes(web_port=port, demo_pages=False))
        second.name, second.log_path = "web-2", folder / "logs" / "web-2.log"
        second.start()
        services.append(second)
        second.wait_ready(stack.settings.startup_timeout_s)
        agent_url = f"http://{stack.settings.host}:{port}"
    tokens = dict(pair.split(":", 1) for pair in stack.settings.staff_tokens.split(","))
    yield LiveStack(stack.web, agent_url, tokens["tester"], 2 if database else 1, stack.demo, tokens)
    stop_all(services)


def conversation() -> str:
    return "w-" + secrets.token_hex(16)


class Client:
    """JSON calls on one web service, as the widget or the console makes them."""

    def __init__(self, session: aiohttp.ClientSession, base: str, token: str | None = None) -> None:
        self.session, self.base, self.token = session, base, token

    async def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self.session.request(method, self.base + path, json=body, headers=headers) as response:
            return response.status, await response.json()

    async def say(self, sender: str, text: str, client_id: str | None = None) -> dict:
        body = {"sender": sender, "message": text, **({"client_id": client_id} if client_id else {})}
        status, answer = await self.call("POST", "/api/chat", body)
        assert status == 200, answer
        return answer


async def read_stream(session: aiohttp.ClientSession, url: str, headers: dict, into: list[dict], stop: asyncio.Event):
    """Collect server-sent `live` events (with their ids) until the stream ends or `stop`."""
    async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=None)) as response:
        assert response.status == 200 and response.headers["Content-Type"].startswith("text/event-stream")
        block: dict[str, str] = {}
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if not line:
                if block.get("event") == "live":
                    into.append({**json.loads(block["data"]), "_id": int(block["id"]), "_at": time.monotonic()})
                elif block.get("event") == "queue":
                    into.append({"kind": "queue", **json.loads(block["data"])})
                block = {}
                if stop.is_set():
                    return
                continue
            if line.startswith(":"):
                continue
            key, _, value = line.partition(":")
            block[key] = value.lstrip(" ")


async def wait_for(predicate, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_nobody_online_takes_the_ticket_path(live_stack):
    async with aiohttp.ClientSession() as session:
        customer = Client(session, live_stack.customer)
        sender = conversation()
        answer = await customer.say(sender, "I want to talk to a human please")
        assert not any((m.get("custom") or {}).get("live_offer") for m in answer["messages"])
        assert any("name" in (m.get("text") or "").lower() for m in answer["messages"])  # the form asks
        status, body = await customer.call("POST", f"/api/conversations/{sender}/live", {"channel": "web_chat"})
        assert (status, body["error"]["code"]) == (409, "live_nobody_online")
        status, state = await customer.call("GET", f"/api/conversations/{sender}/live")
        assert (status, state["available"], state["reason"]) == (200, False, "nobody_online")


async def test_an_agent_takes_over_and_hands_back(live_stack):
    async with aiohttp.ClientSession() as session:
        customer = Client(session, live_stack.customer)
        agent = Client(session, live_stack.agent, live_stack.token)
        anonymous = Client(session, live_stack.agent)
        status, _ = await anonymous.call("POST", "/api/staff/live/presence", {"status": "online"})
        assert status == 401
        status, _ = await agent.call("POST", "/api/staff/live/presence", {"status": "online"})
        assert status == 200

        sender = conversation()
        await customer.say(sender, "The POS app crashes when I print a receipt")
        answer = await customer.say(sender, "I want to talk to a human please")
        assert any((m.get("custom") or {}).get("live_offer") for m in answer["messages"]), answer
        status, started = await customer.call("POST", f"/api/conversations/{sender}/live", {"channel": "web_chat"})
        assert status == 201, started
        assert started["queue"]["position"] == 1 and started["queue"]["estimated_wait_s"] > 0
        chat_id = started["chat"]["id"]

        # While waiting, the bot is paused: a message goes to the queue, not to Rasa's answers.
        waiting = await customer.say(sender, "Are you there?", client_id="m0")
        assert waiting["messages"] == [] and waiting["live"]["status"] == "waiting"

        got_customer: list[dict] = []
        got_agent: list[dict] = []
        stop = asyncio.Event()
        customer_stream = asyncio.create_task(read_stream(
            session, f"{live_stack.customer}/api/conversations/{sender}/live/stream", {}, got_customer, stop))

        status, queue = await agent.call("GET", "/api/staff/live")
        assert status == 200 and queue["chats"][0]["id"] == chat_id and queue["presence"]["tester"] == "online"
        status, detail = await agent.call("GET", f"/api/staff/live/{chat_id}")
        assert any("talk to a human" in t["text"] for t in detail["bot_transcript"])
        assert [e["text"] for e in detail["events"] if e["kind"] == "message"] == ["Are you there?"]

        status, claimed = await agent.call("POST", f"/api/staff/live/{chat_id}/claim")
        assert status == 200 and claimed["chat"]["agent"] == "tester"
        status, again = await agent.call("POST", f"/api/staff/live/{chat_id}/claim")
        assert (status, again["error"]["code"]) == (409, "live_chat_conflict")
        agent_stream = asyncio.create_task(read_stream(
            session, f"{live_stack.agent}/api/staff/live/{chat_id}/stream?after=0",
            {"Authorization": f"Bearer {live_stack.token}"}, got_agent, stop))
        await wait_for(lambda: any(e.get("text") == "claimed" for e in got_customer))

        for i in range(1, 6):
            said = await customer.say(sender, f"customer message {i}", client_id=f"m{i}")
            assert said["messages"] == []
            status, _ = await agent.call("POST", f"/api/staff/live/{chat_id}/messages", {"text": f"agent reply {i}"})
            assert status == 201
        await customer.say(sender, "customer message 5", client_id="m5")  # a resend: relayed once
        status, _ = await customer.call("POST", f"/api/conversations/{sender}/live/typing")
        assert status == 200
        status, _ = await agent.call("POST", f"/api/staff/live/{chat_id}/typing")
        assert status == 200

        def texts(events, sender_kind):
            return [e["text"] for e in events if e.get("kind") == "message" and e["sender"] == sender_kind]

        expected_customer = ["Are you there?"] + [f"customer message {i}" for i in range(1, 6)]
        expected_agent = [f"agent reply {i}" for i in range(1, 6)]
        await wait_for(lambda: texts(got_agent, "customer") == expected_customer
                       and any(e.get("kind") == "typing" and e["sender"] == "customer" for e in got_agent))
        await wait_for(lambda: texts(got_customer, "agent") == expected_agent
                       and any(e.get("kind") == "typing" and e["sender"] == "agent" for e in got_customer))
        ids = [e["_id"] for e in got_agent]
        assert ids == sorted(set(ids)), "in order, once"

        # A client that reconnects after seq 3 gets exactly what followed.
        status, missed = await customer.call("GET", f"/api/conversations/{sender}/live/events?after=3")
        assert [e["seq"] for e in missed["events"]] == [e["_id"] for e in got_agent if e["_id"] > 3]
        status, _ = await customer.call("POST", f"/api/conversations/{sender}/live/read", {"seq": ids[-1]})
        assert status == 200

        status, ended = await agent.call("POST", f"/api/staff/live/{chat_id}/handback")
        assert status == 200, ended
        number = ended["chat"]["ticket_number"]
        await asyncio.wait_for(customer_stream, 10)  # the stream ends with the chat
        stop.set()
        agent_stream.cancel()
        assert got_customer[-1]["text"] == "handed_back"

        # The bot answers again, and the customer is asked to rate the chat as for tickets.
        after = await customer.say(sender, "hello")
        assert after["messages"] and "live" not in after
        status, csat = await customer.call("GET", f"/api/conversations/{sender}/csat")
        assert [t["number"] for t in csat["pending"]] == [number]
        status, ticket = await agent.call("GET", f"/api/staff/tickets/{number}")
        assert ticket["status"] == "resolved" and ticket["assignee"] == "tester"
        speakers = [(t["speaker"], t["text"]) for t in ticket["transcript"]]
        assert ("customer", "I want to talk to a human please") in speakers
        assert ("agent", "agent reply 5") in speakers and ("customer", "customer message 5") in speakers
        assert sum(1 for s in speakers if s == ("customer", "customer message 5")) == 1
        assert any("First agent reply" in n["text"] for n in ticket["notes"])
        # Rasa's tracker keeps the whole conversation, the live turns included.
        status, history = await customer.call("GET", f"/api/conversations/{sender}/history")
        turns = [(t["speaker"], t["text"]) for t in history["messages"]]
        assert ("agent", "agent reply 5") in turns and ("customer", "customer message 5") in turns
        assert turns.index(("agent", "agent reply 5")) < turns.index(("customer", "hello"))


async def test_leaving_the_queue_for_a_ticket_keeps_what_was_written(live_stack):
    async with aiohttp.ClientSession() as session:
        customer = Client(session, live_stack.customer)
        agent = Client(session, live_stack.agent, live_stack.token)
        await agent.call("POST", "/api/staff/live/presence", {"status": "online"})
        sender = conversation()
        await customer.say(sender, "I want to talk to a human please")
        status, started = await customer.call("POST", f"/api/conversations/{sender}/live", {"channel": "web_chat"})
        assert status == 201
        problem = "Makana Books 4.2 stops exporting invoices to PDF since this morning's update"
        said = await customer.say(sender, problem)
        assert said["messages"] == [] and said["live"]["status"] == "waiting"
        status, left = await customer.call("POST", f"/api/conversations/{sender}/live/leave", {"ticket": True})
        assert status == 200 and left["chat"]["end_reason"] == "ticket"
        texts = " ".join(m.get("text") or "" for m in left["messages"])
        assert "I'll pass this to our support team" in texts  # the ticket form, without a second offer
        assert not any((m.get("custom") or {}).get("live_offer") for m in left["messages"])
        status, history = await customer.call("GET", f"/api/conversations/{sender}/history")
        assert ("customer", problem) in [(t["speaker"], t["text"]) for t in history["messages"]]
        status, queue = await agent.call("GET", "/api/staff/live")
        assert started["chat"]["id"] not in [c["id"] for c in queue["chats"]]


# -- in a real browser: the customer's widget and the agent's console side by side --------


@pytest.mark.browser
def test_widget_and_console_in_a_browser(live_stack, browser):
    from playwright.sync_api import expect

    from tests.test_staff_browser import sign_in
    from tests.test_widget_browser import CUSTOMER, open_page, open_widget, say, screenshot

    customer = open_page(browser)
    agent = open_page(browser)
    try:
        agent.goto(live_stack.agent + "/staff/live")
        sign_in(agent, live_stack.token)
        expect(agent.get_by_test_id("presence")).to_have_value("online")
        expect(agent.get_by_test_id("live-status")).to_contain_text("Customers are offered a live chat")

        open_widget(customer, live_stack.demo + "/demo/site")
        say(customer, "The POS app crashes every time I print a receipt")
        say(customer, "I want to talk to a human")
        customer.get_by_test_id("live-start").click()
        expect(customer.get_by_test_id("live-queue")).to_contain_text("You're number 1 in the queue")

        item = agent.get_by_test_id("live-queue-item").first
        expect(item).to_have_attribute("data-status", "waiting")
        item.click()
        expect(agent.get_by_test_id("chat-log")).to_contain_text("talk to a human")
        agent.get_by_test_id("claim").click()
        expect(customer.get_by_test_id("log")).to_contain_text("tester from our support team joined the chat.")
        expect(customer.get_by_test_id("live-queue")).to_have_count(0)

        # The customer types: the agent sees it, then the message.
        box = customer.get_by_test_id("input")
        box.fill("It started after <b>yesterday's</b> update")
        expect(agent.get_by_test_id("customer-typing")).to_be_visible()
        box.press("Enter")
        expect(agent.get_by_test_id("chat-log")).to_contain_text("It started after <b>yesterday's</b> update")

        # The agent types and answers; the customer sees the name, "typing…", the answer,
        # and their own message marked read.
        agent.get_by_test_id("reply").fill("Thanks! Please open Settings > Printer and tap <i>Reset</i>.")
        expect(customer.get_by_test_id("agent-typing")).to_contain_text("tester is typing…")
        agent.get_by_test_id("send-reply").click()
        agent_message = customer.locator('[data-testid="message"][data-from="agent"]').last
        expect(agent_message).to_contain_text("Thanks! Please open Settings > Printer and tap <i>Reset</i>.")
        expect(agent_message.get_by_test_id("agent-name")).to_have_text("tester · support team")
        expect(customer.locator(CUSTOMER).last).to_have_attribute("data-state", "read")
        assert customer.locator("i").count() == 0 and customer.evaluate("document.querySelectorAll('b').length") == 0
        screenshot(customer, "live-widget.png")
        screenshot(agent, "live-console.png", full_page=True)  # the queue, the chat both ways, the reply box

        # A reload keeps the live chat: the turns are back, and messages still flow.
        customer.reload()
        expect(customer.get_by_test_id("input")).to_be_enabled()
        if not customer.get_by_test_id("panel").is_visible():
            customer.get_by_test_id("launcher").click()
        expect(customer.locator('[data-testid="message"][data-from="agent"]')).to_have_count(1)
        expect(customer.get_by_test_id("input")).to_have_attribute("placeholder", "Message our team…")
        box = customer.get_by_test_id("input")
        box.fill("Reset worked, thank you")
        box.press("Enter")
        expect(agent.get_by_test_id("chat-log")).to_contain_text("Reset worked, thank you")
        assert customer.locator(CUSTOMER).filter(has_text="Reset worked, thank you").count() == 1

        # Hand back: the bot is back, the customer is asked for a rating, the ticket has it all.
        agent.get_by_test_id("handback").click()
        expect(agent.get_by_test_id("chat-log")).to_contain_text(re.compile(r"Recorded as ticket MK-[A-Z0-9]{6}"))
        expect(customer.get_by_test_id("log")).to_contain_text("You're back with the assistant.")
        expect(customer.get_by_test_id("csat-prompt")).to_be_visible()
        number = re.search(r"MK-[A-Z0-9]{6}", agent.get_by_test_id("chat-log").inner_text()).group(0)
        request = urllib.request.Request(live_stack.agent + f"/api/staff/tickets/{number}",
                                         headers={"Authorization": f"Bearer {live_stack.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            ticket = json.loads(response.read())
        speakers = [(t["speaker"], t["text"]) for t in ticket["transcript"]]
        assert ("agent", "Thanks! Please open Settings > Printer and tap <i>Reset</i>.") in speakers
        assert ("customer", "Reset worked, thank you") in speakers
        assert customer.problems == [] and agent.problems == []
    finally:
        customer.context.close()
        agent.context.close()


@pytest.mark.browser
def test_knowledge_base_answer_transfer_and_end_in_a_browser(live_stack, browser):
    """The agent inserts a knowledge-base answer, transfers the chat to a colleague on
    another page, who ends it; the customer sees each step and is asked for a rating."""
    from playwright.sync_api import expect

    from tests.test_staff_browser import sign_in
    from tests.test_widget_browser import open_page, open_widget, say, screenshot

    customer, first, second = open_page(browser), open_page(browser), open_page(browser)
    try:
        for page, name in ((first, "tester"), (second, "carol")):
            page.goto(live_stack.agent + "/staff/live")
            sign_in(page, live_stack.tokens[name])
            expect(page.get_by_test_id("presence")).to_have_value("online")

        open_widget(customer, live_stack.demo + "/demo/site")
        say(customer, "my card reader is not showing up over bluetooth")
        say(customer, "I want to talk to a human")
        expect(customer.get_by_test_id("live-start")).to_be_visible()
        customer.get_by_test_id("live-start").click()
        expect(customer.get_by_test_id("live-queue")).to_contain_text("in the queue")

        first.locator('[data-testid="live-queue-item"][data-status="waiting"]').first.click()
        # The agent starts a knowledge-base search while the claim is on its way (held here
        # until the query is typed): the reply box must not take the focus, and the typing, from it.
        held = []
        claim_url = "**/api/staff/live/*/claim"
        first.route(claim_url, lambda route: held.append(route))
        first.get_by_test_id("claim").click()
        for _ in range(200):
            if held:
                break
            first.wait_for_timeout(50)
        kb_query = first.get_by_test_id("kb-query")
        kb_query.fill("card reader not found over bluetooth")
        assert held, "the claim request never left the page"
        held[0].continue_()
        first.unroute(claim_url)
        expect(first.get_by_test_id("reply")).to_be_enabled()
        expect(kb_query).to_be_focused()
        expect(kb_query).to_have_value("card reader not found over bluetooth")
        expect(customer.get_by_test_id("log")).to_contain_text("tester from our support team joined the chat.")

        # The knowledge base, searched from the Live view: the answer goes into the reply box.
        first.get_by_test_id("kb-search").click()
        result = first.get_by_test_id("kb-result").first
        # The first search loads the encoder and the index into the web service (torch's
        # import alone takes over 10 s on two busy cores): a longer wait for this one only.
        answered = first.locator('[data-testid="kb-result"], [data-testid="kb-error"]:not([hidden])').first
        expect(answered).to_be_visible(timeout=KB_FIRST_SEARCH_MS)
        expect(first.get_by_test_id("kb-error")).to_be_hidden()
        expect(result).to_have_attribute("data-entry", "pair_card_reader")
        result.get_by_test_id("kb-insert").click()
        expect(first.get_by_test_id("reply")).to_have_value(re.compile(r"Makana Reader"))
        screenshot(first, "live-console-kb.png", full_page=True)
        first.get_by_test_id("send-reply").click()
        expect(customer.locator('[data-testid="message"][data-from="agent"]').last).to_contain_text("Makana Reader")

        # Transfer to carol: her page takes over, the customer is told, the first agent can no longer write.
        first.get_by_test_id("transfer-to").select_option("carol")
        first.get_by_test_id("transfer").click()
        expect(customer.get_by_test_id("log")).to_contain_text("carol took over the chat.")
        expect(first.get_by_test_id("reply")).to_be_disabled()
        second.get_by_test_id("live-queue-item").filter(has_text="with carol").first.click()
        expect(second.get_by_test_id("chat-meta")).to_contain_text("agent: carol")
        second.get_by_test_id("reply").fill("Hi, carol here. Did pairing work?")
        second.get_by_test_id("send-reply").click()
        expect(customer.locator('[data-testid="message"][data-from="agent"]').last).to_contain_text("carol here")

        # carol ends the chat: the bot is back and the customer is asked for a rating.
        second.get_by_test_id("end").click()
        expect(customer.get_by_test_id("log")).to_contain_text("The agent ended the chat.")
        expect(customer.get_by_test_id("csat-prompt")).to_be_visible()
        expect(second.get_by_test_id("chat-log")).to_contain_text("Chat ended.")
        assert customer.problems == [] and first.problems == [] and second.problems == []
    finally:
        for page in (customer, first, second):
            page.context.close()
