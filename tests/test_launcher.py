"""Start-up on a busy machine: the action server's loading outlasting one request.

The warm-up request can outlast Sanic's response timeout (the server answers 5xx while
the loading goes on); the launcher asks again, and the loading a cancelled request began
is kept for the next one instead of starting over.
"""

from __future__ import annotations

import asyncio
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from actions import resources
from bot.launcher import LaunchError, warm_up_actions


class _Server:
    """A local HTTP server answering `statuses` in turn (the last one from then on)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.requests: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                owner.requests.append(self.headers.get("Authorization", ""))
                status = owner.statuses[min(len(owner.requests), len(owner.statuses)) - 1]
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(request):
    made: list[_Server] = []

    def make(statuses: list[int]) -> _Server:
        made.append(_Server(statuses))
        return made[-1]

    yield make
    for s in made:
        s.close()


def test_the_warm_up_asks_again_while_the_server_times_out(server):
    s = server([503, 500, 200])
    warm_up_actions(s.url, "secret-token", timeout_s=30)
    assert len(s.requests) == 3
    assert s.requests == ["Bearer secret-token"] * 3


def test_the_warm_up_gives_up_when_the_time_is_up(server):
    s = server([503])
    started = time.monotonic()
    with pytest.raises(LaunchError, match="could not load its models and index"):
        warm_up_actions(s.url, "t", timeout_s=3)
    assert time.monotonic() - started < 10
    assert len(s.requests) >= 2


def test_a_refused_token_is_not_asked_again(server):
    s = server([401, 200])
    with pytest.raises(LaunchError, match="401"):
        warm_up_actions(s.url, "wrong", timeout_s=30)
    assert len(s.requests) == 1


async def test_a_build_a_cancelled_request_began_is_kept_for_the_next_one():
    builds: list[int] = []
    release = threading.Event()

    def build(value: int) -> int:
        builds.append(value)
        release.wait(10)
        return value * 2

    first = asyncio.create_task(resources._built("test-build", build, 21))
    await asyncio.sleep(0.1)
    first.cancel()  # the request's timeout
    with pytest.raises(asyncio.CancelledError):
        await first
    second = asyncio.create_task(resources._built("test-build", build, 99))
    await asyncio.sleep(0.1)
    release.set()
    assert await second == 42  # the first build's result: it was not started again
    assert builds == [21]
    assert "test-build" not in resources._building
