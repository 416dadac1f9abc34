"""Settings: built once from the environment at start-up and passed down.

Only the entry points (`python -m bot ...`, the action server's package init and the
test fixtures) call `Settings.from_env`; nothing deeper reads `os.environ`. Every
variable is listed in the README's configuration table.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Mapping
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """An environment variable has a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with the defaults of a single-machine install."""

    # Public and internal binds are separate: customers reach the web service on `host`;
    # Rasa and the action server listen on `internal_host` only (README, "Security").
    host: str = "127.0.0.1"
    internal_host: str = "127.0.0.1"
    rasa_port: int = 5005
    actions_port: int = 5055
    web_port: int = 8080
    public_url: str = ""  # how customers reach the web service; default: http://{host}:{web_port}
    rasa_url: str = ""  # default: http://{internal_host}:{rasa_port}
    actions_url: str = ""  # default: http://{internal_host}:{actions_port}
    # Shared secrets of the internal services. Rasa's HTTP API and REST channel require
    # rasa_token; the action server refuses calls without actions_token. Unset, `python -m
    # bot run` generates both once and keeps them in {data_dir}/internal-tokens.json (mode 600).
    rasa_token: str = field(default="", repr=False)
    actions_token: str = field(default="", repr=False)
    # Scale-out (README, "Scaled-out topology"): `replicas` Rasa servers, each with its own
    # action server, on consecutive ports from rasa_port and actions_port, unless rasa_urls
    # and actions_urls (comma-separated, paired by position) name them. The web service
    # spreads messages across the Rasa servers; several need Rasa's Redis lock store
    # (lock_store_url, redis://[:password@]host:port/db) and a shared tracker store.
    replicas: int = 1
    rasa_urls: str = ""
    actions_urls: str = ""
    lock_store_url: str = field(default="", repr=False)
    data_dir: Path = ROOT / "var"
    database_url: str = ""  # default: sqlite in data_dir
    tracker_store_url: str = ""  # default: sqlite in data_dir
    policy_path: Path = ROOT / "data" / "support_policy.yml"
    kb_dir: Path = ROOT / "data" / "faq"
    index_dir: Path = ROOT / "kb_index" / "build"
    # The triage model (bot/triage.py): built from the policy and these cases, cached here.
    triage_dir: Path = ROOT / "models" / "triage"
    triage_cases: Path = ROOT / "data" / "triage" / "dev.jsonl"
    model_dir: Path = ROOT / "models"
    max_message_chars: int = 2000
    rasa_timeout_s: float = 30.0
    startup_timeout_s: float = 300.0
    log_level: str = "INFO"
    # Team notifications. Email is sent when smtp_host is set; the webhook when
    # webhook_url is set (signed with webhook_secret, HMAC-SHA256 of the body).
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_starttls: str = "auto"  # auto | always | never
    smtp_timeout_s: float = 10.0
    mail_from: str = "assistant@makana.example"
    team_email: str = "support-team@makana.example"
    webhook_url: str = ""
    webhook_secret: str = field(default="", repr=False)
    webhook_timeout_s: float = 5.0
    outbox_interval_s: float = 2.0
    # In-app pane: the secret shared with the company's app back end (HMAC-SHA256).
    identity_secret: str = field(default="", repr=False)
    # Chat rate limits: per conversation and per client address (requests per minute).
    rate_per_conversation: float = 60.0
    rate_burst_conversation: int = 20
    rate_per_client: float = 240.0
    rate_burst_client: int = 120
    # Reverse proxies in front of the web service that append to X-Forwarded-For (0: none,
    # the connection's address is the client's). With N, the client is the address N hops
    # from the right; the client-supplied left part is never trusted.
    trusted_proxies: int = 0
    # Reads of history, ratings, invitations and "my tickets": requests per minute per client.
    rate_reads_per_client: float = 120.0
    rate_burst_reads_client: int = 60
    # A request body must arrive within this time (slow-body clients get a 408).
    body_timeout_s: float = 10.0
    # Cross-origin access to the customer API: exact origins (scheme://host[:port]),
    # comma-separated. Default: the demo site's origin when the demo pages are on.
    allowed_origins: str = ""
    # Host names the web service answers to (DNS-rebinding defence), comma-separated.
    # Default: the host of public_url, `host`, and localhost/127.0.0.1 when bound to loopback.
    allowed_hosts: str = ""
    # Support staff API: "name:token,name:token" (tokens of 16+ characters). Empty: no staff access.
    staff_tokens: str = field(default="", repr=False)
    # The demo website and app (pages that embed the widget) on a second origin, so that the
    # demo exercises the cross-origin path a real site takes.
    demo_pages: bool = True
    demo_port: int = 8081
    # Calls with the technical team (bot/booking.py, bot/meetings.py). Without a Google
    # service-account file, every call uses the fixed Meet room below (a placeholder:
    # set the team's real room). google_api_endpoint is the root of Google's APIs
    # (empty = https://www.googleapis.com/), for a proxy or the tests' fake server.
    meeting_minutes: int = 30
    meeting_min_notice_minutes: int = 120
    google_service_account_file: str = ""  # path to the service account's JSON key
    google_calendar_id: str = "primary"  # the team calendar the events go in
    google_subject: str = ""  # Workspace user to act as (domain-wide delegation), if any
    google_api_endpoint: str = ""
    google_timeout_s: float = 10.0
    meet_room_url: str = "https://meet.google.com/makana-support-room"
    # Live chat (bot/live.py): a waiting customer is offered a ticket after this long, and
    # an agent counts as online while the console's heartbeat is younger than this.
    live_wait_timeout_s: float = 180.0
    live_presence_stale_s: float = 60.0

    def __post_init__(self) -> None:
        # Derived defaults, so that changing a port moves every URL that uses it.
        if not self.public_url:
            object.__setattr__(self, "public_url", f"http://{self.host}:{self.web_port}")
        if not self.rasa_url:
            object.__setattr__(self, "rasa_url", f"http://{self.internal_host}:{self.rasa_port}")
        if not self.actions_url:
            object.__setattr__(self, "actions_url", f"http://{self.internal_host}:{self.actions_port}")
        if self.trusted_proxies < 0:
            raise SettingsError("SUPPORT_TRUSTED_PROXIES must be 0 or more")
        if not self.allowed_origins and self.demo_pages:
            object.__setattr__(self, "allowed_origins", self.demo_origin)
        for origin in self.allowed_origin_list:
            if not ORIGIN_RE.match(origin):
                raise SettingsError(
                    f"SUPPORT_ALLOWED_ORIGINS: {origin!r} is not an origin (scheme://host[:port], no path or slash)"
                )
        if self.replicas < 1:
            raise SettingsError(f"SUPPORT_REPLICAS={self.replicas}: at least one Rasa server is needed")
        if not self.rasa_urls:
            object.__setattr__(self, "rasa_urls", self._replica_urls(self.rasa_url, self.rasa_port))
        if not self.actions_urls:
            object.__setattr__(self, "actions_urls", self._replica_urls(self.actions_url, self.actions_port))
        if len(self.rasa_url_list) != len(self.actions_url_list):
            raise SettingsError("SUPPORT_RASA_URLS and SUPPORT_ACTIONS_URLS must name as many servers each (they are paired)")
        if len(self.rasa_url_list) > 1 and not self.lock_store_url:
            raise SettingsError(
                "several Rasa servers need SUPPORT_LOCK_STORE_URL (Rasa's Redis lock store); without it two of "
                "them could handle messages of one conversation at once and lose one"
            )
        if self.lock_store_url and not self.lock_store_url.startswith("redis://"):
            raise SettingsError("SUPPORT_LOCK_STORE_URL must be a redis:// URL (redis://:password@host:port/db)")
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.data_dir / 'support.db'}")
        if not self.tracker_store_url:
            object.__setattr__(self, "tracker_store_url", f"sqlite:///{self.data_dir / 'rasa_tracker.db'}")

    def _replica_urls(self, first: str, port: int) -> str:
        if self.replicas == 1:
            return first
        return ",".join(f"http://{self.internal_host}:{port + i}" for i in range(self.replicas))

    @property
    def demo_origin(self) -> str:
        """Where the demo website is served (another origin than the web service)."""
        return f"http://{self.host}:{self.demo_port}"

    @property
    def allowed_origin_list(self) -> list[str]:
        return _url_list(self.allowed_origins)

    @property
    def allowed_host_list(self) -> list[str]:
        """Host names (no port) the web service accepts in the Host header."""
        if self.allowed_hosts:
            return [h.lower() for h in _url_list(self.allowed_hosts)]
        hosts = {urlparse(self.public_url).hostname or "", self.host}
        if self.host in ("127.0.0.1", "localhost", "::1"):
            hosts |= {"127.0.0.1", "localhost", "::1"}
        return sorted(h.lower() for h in hosts if h)

    @property
    def rasa_url_list(self) -> list[str]:
        """Every Rasa server the web service spreads messages across."""
        return _url_list(self.rasa_urls)

    @property
    def actions_url_list(self) -> list[str]:
        """Every action server; the i-th serves the i-th Rasa server."""
        return _url_list(self.actions_urls)

    def to_env(self) -> dict[str, str]:
        """The SUPPORT_* variables that rebuild these settings in a child process."""
        return {f"SUPPORT_{f.name.upper()}": str(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Build settings from SUPPORT_* variables (see README); unknown ones are ignored."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = environ.get(f"SUPPORT_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = _convert(f.name, f.type, raw)
        return cls(**values)  # type: ignore[arg-type]


ORIGIN_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$|^https?://\[[0-9A-Fa-f:]+\](:\d{1,5})?$")


def _url_list(urls: str) -> list[str]:
    return [u.strip() for u in urls.split(",") if u.strip()]


def replica_name(kind: str, index: int, count: int) -> str:
    """A service's name in logs and health: "rasa" alone, "rasa-1", "rasa-2"… when replicated."""
    return kind if count == 1 else f"{kind}-{index + 1}"


def _convert(name: str, type_name: object, raw: str) -> object:
    kind = str(type_name)
    try:
        if kind == "int":
            value: object = int(raw)
            if name.endswith("port") and not 0 < int(raw) < 65536:
                raise ValueError
            return value
        if kind == "float":
            return float(raw)
    except ValueError:
        raise SettingsError(f"SUPPORT_{name.upper()}={raw!r} is not a valid {kind}") from None
    if kind == "Path":
        return Path(raw).expanduser().resolve()
    if kind == "bool":
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"SUPPORT_{name.upper()}={raw!r} is not a valid boolean (true or false)")
    return raw
