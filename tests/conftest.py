"""Shared fixtures. The running services are started once per test session."""

from __future__ import annotations

import json
import os
import shutil
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.launcher import Service, ensure_model, start_all, stop_all
from bot.policy import load_policy
from bot.settings import ROOT, Settings

POLICY_FILE = ROOT / "data" / "support_policy.yml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Stack:
    """Rasa, the action server and the web service on free ports, with their own data."""
    data_dir = tmp_path_factory.mktemp("var")
    policy_copy = data_dir / "support_policy.yml"
    shutil.copy(POLICY_FILE, policy_copy)
    database_url = os.environ.get("SUPPORT_TEST_DATABASE_URL") or f"sqlite:///{data_dir / 'support.db'}"
    settings = Settings(
        rasa_port=free_port(),
        actions_port=free_port(),
        web_port=free_port(),
        data_dir=data_dir,
        policy_path=policy_copy,
        database_url=database_url,
    )
    from bot.migrations import upgrade

    upgrade(settings.database_url)
    model = ensure_model(settings)
    services = start_all(settings, model)
    yield Stack(settings, {s.name: s for s in services})
    stop_all(services)


def http(method: str, url: str, body: bytes | None = None, content_type: str = "application/json") -> tuple[int, dict]:
    """One HTTP request; returns (status, JSON body) for success and error answers alike."""
    headers = {"Content-Type": content_type} if body is not None else {}
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())
