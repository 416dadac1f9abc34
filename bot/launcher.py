"""Start, watch and stop the assistant's services; train the Rasa model.

`python -m bot run` uses this to bring up the Rasa server, the action server and the
web service (or, scaled out, `replicas` pairs of Rasa and action servers) as child processes (each in its own process group, so that stopping one
also stops its workers), wait until each answers, and stop all of them on Ctrl-C.
The test suite's session fixture uses the same code.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlencode, urlparse

from bot.settings import ROOT, Settings, replica_name

RASA_BIN = ROOT / ".venv-rasa" / "bin" / "rasa"
RASA_PYTHON = ROOT / ".venv-rasa" / "bin" / "python"
APP_PYTHON = ROOT / ".venv" / "bin" / "python"
MODEL_NAME = "support"
TRAINING_INPUTS = ("config.yml", "domain.yml", "data/nlu", "data/rules", "data/stories")


class LaunchError(RuntimeError):
    """A service did not start, or the environment it needs is missing."""



_given_ports: set[int] = set()


def free_local_port() -> int:
    """A free loopback port below Linux's ephemeral range (32768-60999), never the same twice
    in one process. A port the kernel picks (bind to 0) comes from that range, so an
    outgoing connection (to PostgreSQL, to the action server) can take it before the
    service binds it: "address already in use". For tests and benchmarks."""
    for _ in range(200):
        port = random.randint(20000, 32000)
        if port in _given_ports:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _given_ports.add(port)
        return port
    raise RuntimeError("no free port between 20000 and 32000")

@dataclass
class Service:
    """A child process with a readiness check and a clean stop."""

    name: str
    argv: list[str]
    env: dict[str, str]
    ready: Callable[[], bool]
    log_path: Path
    # Runs once the service answers (e.g. have the action server load its model).
    warm_up: Callable[[float], None] | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it for its lifetime
        self.process = subprocess.Popen(
            self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running():
                raise LaunchError(f"{self.name} exited with code {self.process.returncode if self.process else '?'}; see {self.log_path}")
            if self.ready():
                if self.warm_up is not None:
                    self.warm_up(max(deadline - time.monotonic(), 1.0))
                return
            time.sleep(0.5)
        raise LaunchError(f"{self.name} did not become ready in {timeout_s:.0f} s; see {self.log_path}")

    def stop(self, timeout_s: float = 20) -> None:
        """SIGTERM the whole process group, then SIGKILL what is left after the timeout."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # workers that ignored SIGTERM
        except ProcessLookupError:
            pass
        self.process.wait()
        self.process = None


def http_ok(url: str, predicate: Callable[[bytes], bool] = lambda _: True) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200 and predicate(response.read())
        except (urllib.error.URLError, OSError, ValueError):
            return False

    return check


def _model_loaded(body: bytes) -> bool:
    try:
        status = json.loads(body)
    except ValueError:
        return False
    return bool(status.get("model_id") or status.get("model_file"))


def lock_store_env(url: str) -> dict[str, str]:
    """endpoints.yml's lock-store variables for SUPPORT_LOCK_STORE_URL (empty: in memory)."""
    if not url:
        return {"LOCK_STORE_TYPE": "in_memory", "LOCK_STORE_HOST": "", "LOCK_STORE_PORT": "",
                "LOCK_STORE_PASSWORD": "", "LOCK_STORE_DB": ""}
    parts = urlparse(url)
    return {
        # Rasa's Redis lock store with atomic ticket bookkeeping (see rasa_plugins/stores.py).
        "LOCK_STORE_TYPE": "rasa_plugins.stores.AtomicRedisLockStore",
        "LOCK_STORE_HOST": parts.hostname or "127.0.0.1",
        "LOCK_STORE_PORT": str(parts.port or 6379),
        "LOCK_STORE_PASSWORD": unquote(parts.password or ""),
        "LOCK_STORE_DB": parts.path.strip("/") or "1",
    }


def service_env(settings: Settings, replica: int = 0) -> dict[str, str]:
    """The environment every child gets: the caller's, plus what Rasa's YAML reads.

    `replica` picks the action server Rasa server number `replica` calls.
    """
    env = dict(os.environ)
    env.update(
        {
            "RASA_TELEMETRY_ENABLED": "false",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
            "ACTION_ENDPOINT_URL": settings.actions_url_list[replica].rstrip("/") + "/webhook",
            "TRACKER_STORE_URL": settings.tracker_store_url,
            "SANIC_HOST": settings.internal_host,
            **lock_store_env(settings.lock_store_url),
        }
    )
    # Every child rebuilds exactly these settings (secrets included) from its environment.
    env.update(settings.to_env())
    return env


def _port(url: str) -> int:
    parts = urlparse(url)
    if parts.port is None:
        raise LaunchError(f"{url}: a service started here needs an explicit port")
    return parts.port


def rasa_service(settings: Settings, model_path: Path, replica: int = 0) -> Service:
    url = settings.rasa_url_list[replica]
    name = replica_name("rasa", replica, len(settings.rasa_url_list))
    return Service(
        name=name,
        # rasa_plugins' entry point adds --auth-token from the environment (never argv).
        argv=[
            str(RASA_PYTHON), "-m", "rasa_plugins", "run", "--enable-api",
            "--interface", settings.internal_host, "--port", str(_port(url)),
            "--model", str(model_path),
            "--endpoints", str(ROOT / "endpoints.yml"), "--credentials", str(ROOT / "credentials.yml"),
        ],
        # PYTHONPATH: the classes endpoints.yml and credentials.yml name live in this
        # project (rasa_plugins/).
        env={**service_env(settings, replica), "PYTHONPATH": str(ROOT)},
        ready=http_ok(url.rstrip("/") + "/status?" + urlencode({"token": settings.rasa_token}), _model_loaded),
        log_path=settings.data_dir / "logs" / f"{name}.log",
    )


def actions_service(settings: Settings, replica: int = 0) -> Service:
    url = settings.actions_url_list[replica]
    name = replica_name("actions", replica, len(settings.actions_url_list))
    return Service(
        name=name,
        argv=[str(APP_PYTHON), "-m", "rasa_sdk", "--actions", "actions", "--port", str(_port(url))],
        env=service_env(settings, replica),
        ready=http_ok(url.rstrip("/") + "/health"),
        log_path=settings.data_dir / "logs" / f"{name}.log",
        warm_up=lambda timeout_s: warm_up_actions(url, settings.actions_token, timeout_s),
    )


def web_service(settings: Settings) -> Service:
    return Service(
        name="web",
        argv=[str(APP_PYTHON), "-m", "bot", "web"],
        env=service_env(settings),
        ready=http_ok(f"http://{settings.host}:{settings.web_port}/static/chat.html"),
        log_path=settings.data_dir / "logs" / "web.log",
    )


def training_fingerprint() -> str:
    """A hash of every file Rasa trains on (the policy and FAQ are read at run time)."""
    digest = hashlib.sha256()
    for name in TRAINING_INPUTS:
        path = ROOT / name
        if not path.exists():
            continue  # e.g. no data/stories: a folder git does not keep while empty
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def ensure_model(settings: Settings, log: Callable[[str], None] = print) -> Path:
    """Train the Rasa model unless one for the current training data exists."""
    model = settings.model_dir / f"{MODEL_NAME}.tar.gz"
    stamp = settings.model_dir / f"{MODEL_NAME}.fingerprint"
    fingerprint = training_fingerprint()
    if model.exists() and stamp.exists() and stamp.read_text().strip() == fingerprint:
        log(f"model up to date: {model.relative_to(ROOT) if model.is_relative_to(ROOT) else model}")
        return model
    if not RASA_BIN.exists():
        raise LaunchError(f"{RASA_BIN} is missing; run `make setup` first")
    log("training the Rasa model (config.yml, domain.yml or data/ changed)…")
    env = service_env(settings)
    result = subprocess.run(
        [str(RASA_BIN), "train", "--fixed-model-name", MODEL_NAME, "--out", str(settings.model_dir), "--force"],
        cwd=ROOT, env=env,
    )
    if result.returncode != 0 or not model.exists():
        raise LaunchError(f"rasa train failed with exit code {result.returncode}")
    stamp.write_text(fingerprint)
    return model


def warm_up_actions(actions_url: str, token: str, timeout_s: float) -> None:
    """Have the action server load its encoder and index before the first customer."""
    body = json.dumps(
        {"next_action": "action_warm_up", "sender_id": "launcher-warm-up", "tracker": {"sender_id": "launcher-warm-up",
         "slots": {}, "latest_message": {}, "events": [], "paused": False, "followup_action": None,
         "active_loop": {}, "latest_action_name": None}, "domain": {}, "version": "3.6.21"}
    ).encode()
    request = urllib.request.Request(
        actions_url.rstrip("/") + "/webhook", data=body,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    # On a busy machine the loading can outlast the server's response timeout (Sanic
    # answers 5xx): the loading goes on in the server (actions/resources.py), so ask again
    # until it is done or the time is up.
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(request, timeout=max(deadline - time.monotonic(), 1.0)) as response:
                response.read()
            return
        except (urllib.error.URLError, OSError) as exc:  # HTTPError is a URLError
            busy = isinstance(exc, urllib.error.HTTPError) and exc.code >= 500
            if not busy or time.monotonic() >= deadline:
                raise LaunchError(f"the action server could not load its models and index: {exc}") from exc
            time.sleep(2)


def start_all(settings: Settings, model: Path, log: Callable[[str], None] = print) -> list[Service]:
    """Start the action servers, the Rasa servers and the web service; return them once all answer.

    They start together: Rasa servers load their model (about a minute each) in parallel.
    """
    replicas = range(len(settings.rasa_url_list))
    services = (
        [actions_service(settings, i) for i in replicas]
        + [rasa_service(settings, model, i) for i in replicas]
        + [web_service(settings)]
    )
    try:
        for service in services:
            service.start()
        for service in services:
            log(f"waiting for {service.name}…")
            service.wait_ready(settings.startup_timeout_s)
    except BaseException:
        stop_all(services)
        raise
    return services


def stop_all(services: list[Service]) -> None:
    for service in reversed(services):
        service.stop()


def with_internal_tokens(settings: Settings) -> Settings:
    """`settings` with the internal services' tokens, generated once when not configured.

    They are kept in {data_dir}/internal-tokens.json (mode 600, under the git-ignored
    var/), so that a restart or a separately started web service uses the same ones.
    """
    if settings.rasa_token and settings.actions_token:
        return settings
    path = settings.data_dir / "internal-tokens.json"
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        stored = {}
    tokens = {name: stored.get(name) or secrets.token_urlsafe(32) for name in ("rasa_token", "actions_token")}
    if tokens != stored:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            json.dump(tokens, out)
    os.chmod(path, 0o600)
    return settings.with_changes(
        rasa_token=settings.rasa_token or tokens["rasa_token"],
        actions_token=settings.actions_token or tokens["actions_token"],
    )


def run_forever(settings: Settings) -> int:
    """`python -m bot run`: train if needed, start everything, stop it all on Ctrl-C."""
    settings = with_internal_tokens(settings)
    model = ensure_model(settings)
    started = time.monotonic()
    services = start_all(settings, model)
    print(
        f"\nThe assistant is ready after {time.monotonic() - started:.0f} s "
        f"({len(settings.rasa_url_list)} Rasa server(s), lock store: {'Redis' if settings.lock_store_url else 'in memory'}).\n"
        f"  Chat page:  http://{settings.host}:{settings.web_port}/\n"
        + (f"  Demo site:  {settings.demo_origin}/demo/site (another origin, as the company's site is)\n"
           if settings.demo_pages else "")
        + f"  Health:     http://{settings.host}:{settings.web_port}/healthz\n"
        f"  Logs:       {settings.data_dir / 'logs'}\n"
        "Press Ctrl-C to stop.",
        flush=True,
    )
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        while not stopping:
            for service in services:
                if not service.running() and not stopping:
                    # A supervisor's job: bring a crashed service back, don't take the rest down.
                    print(f"{service.name} stopped unexpectedly; restarting it (log: {service.log_path})", file=sys.stderr)
                    service.stop()
                    service.start()
            time.sleep(1)
    finally:
        print("stopping…", flush=True)
        stop_all(services)
    print("all services stopped.")
    return 0
