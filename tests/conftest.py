"""Shared fixtures. The running services are started once per test session."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.launcher import Service, ensure_model, free_local_port, start_all, stop_all
from bot.policy import load_policy
from bot.settings import ROOT, Settings
from tests.measured import MEASUREMENTS

POLICY_FILE = ROOT / "data" / "support_policy.yml"


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if MEASUREMENTS:
        terminalreporter.section("measured")
        for line in MEASUREMENTS:
            terminalreporter.write_line(line)


def unavailable(reason: str) -> None:
    """Skip a test whose external part is missing, but fail under `make test`, which
    provides every part (SUPPORT_TEST_REQUIRE_ALL=1): a skipped check there would hide."""
    if os.environ.get("SUPPORT_TEST_REQUIRE_ALL") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


free_port = free_local_port  # the stacks' ports: below the ephemeral range (bot/launcher.py)


@pytest.fixture(scope="session")
def policy():
    return load_policy(POLICY_FILE)


@dataclass
class Stack:
    """The three running services of one test session, and how to reach them."""

    settings: Settings
    services: dict[str, Service]

    @property
    def web(self) -> str:
        return f"http://{self.settings.host}:{self.settings.web_port}"

    @property
    def demo(self) -> str:
        """The demo website: another origin than the web service, as a company's site is."""
        return self.settings.demo_origin

    def say(self, sender: str, text: str) -> list[dict]:
        """Send one message through the web service's chat API; return the replies."""
        status, body = http("POST", self.web + "/api/chat", json.dumps({"sender": sender, "message": text}).encode())
        assert status == 200, body
        return body["messages"]

    def restart(self, name: str, **env: str) -> None:
        """Stop one service and start it again (with extra environment, if given)."""
        service = self.services[name]
        service.stop()
        service.env.update(env)
        service.start()
        service.wait_ready(self.settings.startup_timeout_s)


def start_stack(
    data_dir: Path, database_url: str | None = None, replicas: int = 1, lock_store_url: str = "",
    policy_file: Path = POLICY_FILE, staff: tuple[str, ...] = ("tester",),
) -> Stack:
    """Rasa, the action server and the web service on free ports, with their own data.

    `replicas` > 1 starts that many Rasa servers, each with its own action server, behind
    the web service (the scaled-out topology; it needs `lock_store_url`)."""
    policy_copy = data_dir / "support_policy.yml"
    shutil.copy(policy_file, policy_copy)
    database_url = database_url or f"sqlite:///{data_dir / 'support.db'}"
    settings = Settings(
        rasa_port=free_port(),
        actions_port=free_port(),
        web_port=free_port(),
        demo_port=free_port(),
        data_dir=data_dir,
        # The internal services' shared secrets, made per run (never stored).
        rasa_token=secrets.token_urlsafe(24),
        actions_token=secrets.token_urlsafe(24),
        policy_path=policy_copy,
        database_url=database_url,
        # Rasa's conversations go to the same kind of database as the tickets.
        tracker_store_url=database_url if database_url.startswith("postgresql") else "",
        identity_secret=secrets.token_hex(16),  # the pane's shared secret, made per run
        staff_tokens=",".join(f"{name}:{secrets.token_urlsafe(24)}" for name in staff),
        # Tests type faster than people; the limits themselves are tested in test_web.py.
        rate_per_conversation=6000,
        rate_burst_conversation=1000,
        rate_per_client=60000,
        rate_burst_client=10000,
        replicas=replicas,
        rasa_urls=",".join(f"http://127.0.0.1:{free_port()}" for _ in range(replicas)) if replicas > 1 else "",
        actions_urls=",".join(f"http://127.0.0.1:{free_port()}" for _ in range(replicas)) if replicas > 1 else "",
        lock_store_url=lock_store_url,
    )
    from bot.migrations import upgrade

    upgrade(settings.database_url)
    model = ensure_model(settings)
    services = start_all(settings, model)
    return Stack(settings, {s.name: s for s in services})


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Stack:
    """The services on SQLite (the default install)."""
    started = start_stack(tmp_path_factory.mktemp("var"))
    yield started
    stop_all(list(started.services.values()))


@pytest.fixture(scope="session")
def pg_stack(tmp_path_factory) -> Stack:
    """The services with tickets and Rasa's tracker store on PostgreSQL."""
    url = os.environ.get("SUPPORT_TEST_DATABASE_URL", "")
    if not url.startswith("postgresql://"):
        unavailable("SUPPORT_TEST_DATABASE_URL is not a postgresql:// URL (make test starts one)")
    started = start_stack(tmp_path_factory.mktemp("var-pg"), url)
    yield started
    stop_all(list(started.services.values()))


@pytest.fixture(scope="session")
def scaled_stack(tmp_path_factory) -> Stack:
    """The scaled-out topology: PostgreSQL, Redis lock store, two Rasa and two action servers."""
    url = os.environ.get("SUPPORT_TEST_SCALED_DATABASE_URL", "")
    redis = os.environ.get("SUPPORT_TEST_REDIS_URL", "")
    if not url.startswith("postgresql://") or not redis.startswith("redis://"):
        unavailable("SUPPORT_TEST_SCALED_DATABASE_URL and SUPPORT_TEST_REDIS_URL are not set (make test starts both)")
    started = start_stack(tmp_path_factory.mktemp("var-scaled"), url, replicas=2, lock_store_url=redis)
    yield started
    stop_all(list(started.services.values()))


@pytest.fixture(params=["sqlite", "postgresql"])
def any_stack(request) -> Stack:
    """Run a test against both database back ends."""
    return request.getfixturevalue("stack" if request.param == "sqlite" else "pg_stack")


def http(method: str, url: str, body: bytes | None = None, content_type: str = "application/json") -> tuple[int, dict]:
    """One HTTP request; returns (status, JSON body) for success and error answers alike."""
    headers = {"Content-Type": content_type} if body is not None else {}
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (Debian's package, `make browser`), driven by Playwright."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is not installed (make browser installs it)")
    from playwright import sync_api as playwright_api

    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Inbox:
    """What a local SMTP server (aiosmtpd) received."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # aiosmtpd's protocol
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp():
    """A real SMTP server on loopback: (controller, inbox)."""
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


async def unit_database(url: str) -> str:
    """`url` with the database `<name>_unit` on the same server, created when missing."""
    import asyncpg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    name = f"{parsed.database}_unit"
    conn = await asyncpg.connect(
        user=parsed.username, password=parsed.password, host=parsed.host, port=parsed.port, database="postgres"
    )
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return parsed.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request, tmp_path):
    """A migrated, empty store on a real SQLite file, and on PostgreSQL when configured."""
    from bot.migrations import upgrade
    from bot.store import Store

    import asyncio

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'support.db'}"
    else:
        url = os.environ.get("SUPPORT_TEST_DATABASE_URL", "")
        if not url.startswith("postgresql://"):
            unavailable("SUPPORT_TEST_DATABASE_URL is not a postgresql:// URL (make test sets it)")
        # Not the database of `pg_stack`: its web service delivers the outbox in the
        # background and would claim this test's notifications.
        url = await unit_database(url)
    await asyncio.to_thread(upgrade, url)
    store = await Store.open(url)
    if request.param == "postgresql":
        import sqlalchemy as sa

        async with store.engine.begin() as conn:  # each test starts from empty tables
            await conn.execute(sa.text("TRUNCATE tickets, notifications, audit_log, live_chats, live_events, live_agents RESTART IDENTITY CASCADE"))
    yield store
    await store.close()
