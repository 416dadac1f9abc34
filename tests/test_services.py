"""The running assistant end to end: chat, health, and bad input at the web service."""

import json
import uuid

import pytest

from tests.conftest import http

pytestmark = pytest.mark.services


LONG_ID = "test-" + uuid.uuid4().hex  # a well-formed conversation id


def new_sender() -> str:
    return "test-" + uuid.uuid4().hex


def texts(messages: list[dict]) -> str:
    return " ".join(m["text"] or "" for m in messages)


def test_hello_gets_a_real_reply_from_rasa(stack):
    replies = stack.say(new_sender(), "hello")
    assert "I'm the support assistant" in texts(replies)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("bye for now", "Goodbye"),
        ("thank you so much", "You're welcome"),
        ("what can you do", "I can answer questions"),
    ],
)
def test_small_talk(stack, message, expected):
    assert expected in texts(stack.say(new_sender(), message))


def test_talk_to_a_human_gives_the_team_hours(stack):
    reply = texts(stack.say(new_sender(), "I want to speak to a real person"))
    assert "Monday to Saturday, 9:30 to 18:30" in reply


def test_chat_page_is_served(stack):
    import urllib.request

    with urllib.request.urlopen(stack.web + "/", timeout=10) as response:
        page = response.read().decode()
    assert '<script src="/widget.js" data-mode="pane"' in page  # the full-page chat is the widget's pane
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")


def test_healthz_reports_the_stopped_action_server(stack):
    status, body = http("GET", stack.web + "/healthz")
    assert (status, body["components"]) == (200, {"rasa": "up", "actions": "up", "database": "up", "outbox": "up"})
    stack.services["actions"].stop()
    try:
        status, body = http("GET", stack.web + "/healthz")
        assert status == 503
        assert body["down"] == ["actions"]
    finally:
        stack.services["actions"].start()
        stack.services["actions"].wait_ready(120)
    status, body = http("GET", stack.web + "/healthz")
    assert status == 200 and body["down"] == []


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"not json", "application/json", 400, "invalid_json"),
        (b"", "application/json", 400, "empty_body"),
        (b"[1, 2]", "application/json", 400, "invalid_json"),
        (b"\xff\xfe{}", "application/json", 400, "invalid_encoding"),
        (json.dumps({"sender": LONG_ID, "message": ""}).encode(), "application/json", 422, "empty_message"),
        (json.dumps({"sender": LONG_ID, "message": "   "}).encode(), "application/json", 422, "empty_message"),
        (json.dumps({"sender": LONG_ID, "message": "x" * 2001}).encode(), "application/json", 413, "message_too_long"),
        (json.dumps({"sender": "a b" + LONG_ID, "message": "hi"}).encode(), "application/json", 422, "invalid_sender"),
        (json.dumps({"message": "hi"}).encode(), "application/json", 422, "invalid_sender"),
        (json.dumps({"sender": LONG_ID, "message": 5}).encode(), "application/json", 422, "invalid_message"),
        (b"{" + b" " * 70000 + b"}", "application/json", 413, "body_too_large"),
    ],
)
def test_bad_chat_requests_get_a_json_error_and_the_service_survives(stack, body, content_type, status, code):
    got_status, got = http("POST", stack.web + "/api/chat", body, content_type)
    assert (got_status, got["error"]["code"]) == (status, code)
    assert got["error"]["message"]
    assert "I'm the support assistant" in texts(stack.say(new_sender(), "hi"))


def test_unknown_path_and_method_are_json_errors(stack):
    assert http("GET", stack.web + "/api/nope")[0] == 404
    status, body = http("GET", stack.web + "/api/chat")
    assert status == 405 and body["error"]["code"] == "method_not_allowed"
