"""Settings: built once from the environment at start-up and passed down.

A pydantic-settings model: each field is read from `SUPPORT_<NAME>` and converted and
checked by its type (ints, floats, booleans as true/false/yes/no/1/0/on/off, paths,
port ranges). Only the entry points (`python -m bot ...`, the action server's package
init and the test fixtures) call `Settings.from_env`; constructing `Settings(...)` reads
no environment, so nothing deeper depends on `os.environ`. Every variable is listed in
the README's configuration table.
"""

from __future__ import annotations

import contextvars
from datetime import datetime
import os
import re
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlparse

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """An environment variable has a value that cannot be used."""


_ENVIRON: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar("support_environ", default=None)


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping (os.environ or a test's)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._environ.items() if v != ""}


class Settings(BaseSettings):
    """Everything configurable, with the defaults of a single-machine install."""

    model_config = SettingsConfigDict(
        env_prefix="SUPPORT_", case_sensitive=False, env_ignore_empty=True, frozen=True, extra="ignore",
    )

    # Public and internal binds are separate: customers reach the web service on `host`;
    # Rasa and the action server listen on `internal_host` only (README, "Security").
    host: str = "127.0.0.1"
    internal_host: str = "127.0.0.1"
    rasa_port: int = Field(default=5005, gt=0, lt=65536)
    actions_port: int = Field(default=5055, gt=0, lt=65536)
    web_port: int = Field(default=8080, gt=0, lt=65536)
    public_url: str = ""  # how customers reach the web service; default: http://{host}:{web_port}
    rasa_url: str = ""  # default: http://{internal_host}:{rasa_port}
    actions_url: str = ""  # default: http://{internal_host}:{actions_port}
    # Shared secrets of the internal services. Rasa's HTTP API and REST channel require
    # rasa_token; the action server refuses calls without actions_token. Unset, `python -m
    # bot run` generates both once and keeps them in {data_dir}/internal-tokens.json (mode 600).
    rasa_token: str = Field(default="", repr=False)
    actions_token: str = Field(default="", repr=False)
    # Scale-out (README, "Scaled-out topology"): `replicas` Rasa servers, each with its own
    # action server, on consecutive ports from rasa_port and actions_port, unless rasa_urls
    # and actions_urls (comma-separated, paired by position) name them. The web service
    # spreads messages across the Rasa servers; several need Rasa's Redis lock store
    # (lock_store_url, redis://[:password@]host:port/db) and a shared tracker store.
    replicas: int = 1
    rasa_urls: str = ""
    actions_urls: str = ""
    lock_store_url: str = Field(default="", repr=False)
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
    smtp_port: int = Field(default=25, gt=0, lt=65536)
    smtp_username: str = ""
    smtp_password: str = Field(default="", repr=False)
    smtp_starttls: str = "auto"  # auto | always | never
    smtp_timeout_s: float = 10.0
    mail_from: str = "assistant@makana.example"
    team_email: str = "support-team@makana.example"
    webhook_url: str = ""
    webhook_secret: str = Field(default="", repr=False)
    webhook_timeout_s: float = 5.0
    outbox_interval_s: float = 2.0
    # In-app pane: the secret shared with the company's app back end (HMAC-SHA256).
    identity_secret: str = Field(default="", repr=False)
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
    staff_tokens: str = Field(default="", repr=False)
    # The demo website and app (pages that embed the widget) on a second origin, so that the
    # demo exercises the cross-origin path a real site takes.
    demo_pages: bool = True
    demo_port: int = Field(default=8081, gt=0, lt=65536)
    # Calls with the technical team (bot/call_slots.py, bot/google_calendar.py). Without a Google
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
    # Replaying dated evaluation cases only: the action server's clock starts at this
    # instant (ISO 8601 with its offset) and runs on from there. The policy's dates (a
    # maintenance window, a holiday) are what some cases ask about; once the day has
    # passed, their answers change. Empty (the default): the real clock.
    clock_start: str = ""

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource, *args: Any, **kwargs: Any
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Settings(...) takes its arguments only; from_env adds the environment it is given.
        environ = _ENVIRON.get()
        return (init_settings,) if environ is None else (init_settings, _MappingEnvSource(settings_cls, environ))

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsError(_explain(exc)) from None

    @field_validator("clock_start")
    @classmethod
    def _instant(cls, value: str) -> str:
        if value:
            try:
                instant = datetime.fromisoformat(value)
            except ValueError:
                raise ValueError(f"must be an ISO 8601 instant such as 2026-12-05T10:00:00-10:00, not {value!r}") from None
            if instant.tzinfo is None:
                raise ValueError(f"needs its UTC offset (such as -10:00): {value!r}")
        return value

    @field_validator("data_dir", "policy_path", "kb_dir", "index_dir", "triage_dir", "triage_cases", "model_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return Path(value).expanduser().resolve()

    @model_validator(mode="after")
    def _derive_and_check(self) -> "Settings":
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
        return self

    def with_changes(self, **changes: Any) -> "Settings":
        """A copy with some fields changed, checked and derived again (an emptied URL is derived anew)."""
        return type(self)(**{**self.model_dump(), **changes})

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
        return {f"SUPPORT_{name.upper()}": str(getattr(self, name)) for name in type(self).model_fields}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Build settings from SUPPORT_* variables (see README); unknown ones are ignored."""
        token = _ENVIRON.set(os.environ if environ is None else environ)
        try:
            return cls()
        finally:
            _ENVIRON.reset(token)


ORIGIN_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$|^https?://\[[0-9A-Fa-f:]+\](:\d{1,5})?$")


def _url_list(urls: str) -> list[str]:
    return [u.strip() for u in urls.split(",") if u.strip()]


def replica_name(kind: str, index: int, count: int) -> str:
    """A service's name in logs and health: "rasa" alone, "rasa-1", "rasa-2"… when replicated."""
    return kind if count == 1 else f"{kind}-{index + 1}"


def _explain(exc: ValidationError) -> str:
    """One line per wrong setting, naming its variable, its value and what is expected."""
    lines = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        if error["type"] == "value_error" and "error" in error.get("ctx", {}):
            lines.append(str(error["ctx"]["error"]))
            continue
        field = Settings.model_fields.get(name)
        kind = getattr(field.annotation, "__name__", str(field.annotation)) if field else "value"
        expected = {"bool": "boolean (true or false)"}.get(kind, kind)
        detail = "" if error["type"].endswith(("_parsing", "_type")) else f" ({error['msg']})"
        lines.append(f"SUPPORT_{name.upper()}={error.get('input')!r} is not a valid {expected}{detail}")
    return "; ".join(lines)
