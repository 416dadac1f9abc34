"""The support policy: its schema, its loader, and the time rules it implies.

The policy lives in one YAML file (``data/support_policy.yml``). This module validates
it (naming the bad field and its line), and answers the time questions the assistant
and the ticket store ask: is support open at a given instant, when does it open next,
when is a first response due, which maintenance notices are active. Every function
takes the instant it reasons about; nothing here reads the clock.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SEVERITY_ORDER = ("critical", "high", "medium", "low")


class PolicyError(ValueError):
    """The policy file is missing, not YAML, or does not match the schema."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Company(_Model):
    name: str
    address: str
    timezone: str
    timezone_label: str

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (expected an IANA name such as Pacific/Honolulu)") from exc
        return value


class Product(_Model):
    id: str
    name: str
    aliases: tuple[str, ...] = ()
    description: str
    supported_versions: tuple[str, ...] = Field(min_length=1)
    unsupported_versions: tuple[str, ...] = ()


REQUEST_FIELDS = ("name", "email", "product", "version", "description", "tried", "impact")
CATEGORY_IDS = ("technical_support", "customer_service", "troubleshooting")


class SupportType(_Model):
    """A ticket category and the details the assistant asks for it."""

    id: Literal[CATEGORY_IDS]  # type: ignore[valid-type]
    name: str
    description: str
    request_fields: tuple[Literal[REQUEST_FIELDS], ...] = REQUEST_FIELDS  # type: ignore[valid-type]

    @field_validator("request_fields")
    @classmethod
    def _needs_contact_and_problem(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        missing = [f for f in ("name", "email", "description") if f not in value]
        if missing:
            raise ValueError(f"every category needs {', '.join(missing)}")
        if "version" in value and "product" not in value:
            raise ValueError("a category that asks for the version must ask for the product")
        if len(set(value)) != len(value):
            raise ValueError("a field is listed twice")
        return value


class Scope(_Model):
    products: tuple[Product, ...] = Field(min_length=1)
    support_types: tuple[SupportType, ...] = Field(min_length=1)
    exclusions: tuple[str, ...] = Field(min_length=1)
    third_party_products: tuple[str, ...] = ()


class Channel(_Model):
    id: str
    name: str
    how: str
    always_open: bool


class BusinessHours(_Model):
    days: tuple[Literal[WEEKDAYS], ...] = Field(min_length=1)  # type: ignore[valid-type]
    opens: dt.time
    closes: dt.time

    @model_validator(mode="after")
    def _opens_before_closes(self) -> "BusinessHours":
        if self.opens >= self.closes:
            raise ValueError(f"opens ({self.opens:%H:%M}) must be before closes ({self.closes:%H:%M})")
        return self


class Resource(_Model):
    name: str
    url: str
    description: str


class Severity(_Model):
    id: Literal["critical", "high", "medium", "low"]
    name: str
    definition: str
    examples: tuple[str, ...] = Field(min_length=1)
    first_response_hours: float = Field(gt=0)
    resolution_hours: float = Field(gt=0)
    clock: Literal["business_hours", "around_the_clock"]
    # Short phrases that complete "our policy treats ... as <name>": the reason the
    # assistant gives for a proposal, and training examples for the triage model.
    criteria: tuple[str, ...] = Field(min_length=1)
    # Words in a customer's description or impact that point to this severity. They are
    # evidence for the triage model (bot/triage.py), weighed against the meaning; a
    # signal inside a negation ("not urgent") never counts.
    triage_signals: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _response_before_resolution(self) -> "Severity":
        if self.first_response_hours > self.resolution_hours:
            raise ValueError("first_response_hours cannot exceed resolution_hours")
        return self


class EscalationLevel(_Model):
    level: int = Field(ge=1)
    name: str
    handles: str
    moves_up_when: str


class Process(_Model):
    submission: str
    categorisation: str
    prioritisation: str
    escalation_levels: tuple[EscalationLevel, ...] = Field(min_length=1)
    meeting_severities: tuple[Literal["critical", "high", "medium", "low"], ...] = ()


class RequestField(_Model):
    id: Literal[REQUEST_FIELDS]  # type: ignore[valid-type]
    label: str
    question: str


class CustomerResponsibilities(_Model):
    required_information: tuple[str, ...] = Field(min_length=1)
    request_fields: tuple[RequestField, ...]
    communication: str

    @field_validator("request_fields")
    @classmethod
    def _every_field_once(cls, value: tuple[RequestField, ...]) -> tuple[RequestField, ...]:
        ids = [f.id for f in value]
        if sorted(ids) != sorted(REQUEST_FIELDS):
            raise ValueError(f"needs exactly one entry for each of {', '.join(REQUEST_FIELDS)}; found {ids}")
        return value


class HolidayRegion(_Model):
    country: str
    subdivision: str | None = None

    @model_validator(mode="after")
    def _known_region(self) -> "HolidayRegion":
        try:
            holidays.country_holidays(self.country, subdiv=self.subdivision, years=2026)
        except NotImplementedError as exc:
            raise ValueError(f"the holidays package does not know {self.country}/{self.subdivision}") from exc
        return self


class Closure(_Model):
    date: dt.date
    name: str


class MaintenanceWindow(_Model):
    id: str
    starts: dt.datetime
    ends: dt.datetime
    notice_days: float = Field(ge=0)
    support_closed: bool = False
    notice: str

    @model_validator(mode="after")
    def _aware_and_ordered(self) -> "MaintenanceWindow":
        if self.starts.tzinfo is None or self.ends.tzinfo is None:
            raise ValueError("starts and ends need a UTC offset, e.g. 2026-12-06T02:00:00-10:00")
        if self.starts >= self.ends:
            raise ValueError("starts must be before ends")
        return self

    @property
    def announced_from(self) -> dt.datetime:
        return self.starts - dt.timedelta(days=self.notice_days)


class Availability(_Model):
    holidays: HolidayRegion
    company_closures: tuple[Closure, ...] = ()
    maintenance_windows: tuple[MaintenanceWindow, ...] = ()


class CustomSolutions(_Model):
    description: str
    hourly_rate_usd: float = Field(gt=0)
    minimum_hours: float = Field(ge=0)
    quote_business_days: int = Field(ge=1)
    conditions: str


class Training(_Model):
    name: str
    schedule: str
    url: str


class Change(_Model):
    version: str
    date: dt.date
    changes: tuple[str, ...] = Field(min_length=1)


class Updates(_Model):
    version: str
    effective: dt.date
    how_notified: str
    changelog: tuple[Change, ...] = Field(min_length=1)


class Contact(_Model):
    email: str
    phone: str
    billing_email: str
    security_email: str
    address: str


class PolicyDocument(_Model):
    """The schema of the policy file, one field per section."""

    company: Company
    introduction: str
    scope: Scope
    channels: tuple[Channel, ...] = Field(min_length=1)
    business_hours: BusinessHours
    self_service: tuple[Resource, ...] = Field(min_length=1)
    severities: tuple[Severity, ...]
    process: Process
    customer_responsibilities: CustomerResponsibilities
    availability: Availability
    liability: str
    third_party_support: str
    custom_solutions: CustomSolutions
    training: tuple[Training, ...] = Field(min_length=1)
    updates: Updates
    contact: Contact

    @field_validator("scope")
    @classmethod
    def _all_three_categories(cls, value: Scope) -> Scope:
        ids = [t.id for t in value.support_types]
        if sorted(ids) != sorted(CATEGORY_IDS):
            raise ValueError(f"support_types needs exactly one entry for each of {', '.join(CATEGORY_IDS)}; found {ids}")
        return value

    @field_validator("severities")
    @classmethod
    def _all_four_severities(cls, value: tuple[Severity, ...]) -> tuple[Severity, ...]:
        ids = [s.id for s in value]
        if sorted(ids) != sorted(SEVERITY_ORDER):
            raise ValueError(f"needs exactly one entry for each of {', '.join(SEVERITY_ORDER)}; found {ids}")
        return value


@dataclass(frozen=True)
class Notice:
    """A maintenance window as announced to customers."""

    id: str
    starts: dt.datetime
    ends: dt.datetime
    text: str
    support_closed: bool


def load_policy(path: str | Path) -> "SupportPolicy":
    """Read and validate the policy file; raise PolicyError naming the field and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read the support policy {path}: {exc.strerror}") from exc
    try:
        raw = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise PolicyError(f"{path}: expected a mapping of policy sections at the top level")
    try:
        document = PolicyDocument.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = [part for part in error["loc"] if not (isinstance(part, str) and "[" in part)]
            field = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in loc).replace(".[", "[")
            line = _line_of(root, loc)
            where = f"line {line}: " if line else ""
            problems.append(f"{path} {where}{field or '(top level)'}: {error['msg']}")
        raise PolicyError("invalid support policy:\n  " + "\n  ".join(problems)) from None
    return SupportPolicy(document)


def _line_of(node: yaml.Node | None, loc: list) -> int | None:
    """The 1-based line of the deepest YAML node that `loc` reaches."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            node = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


class SupportPolicy:
    """A validated policy plus the time rules it implies (hours, holidays, SLAs)."""

    def __init__(self, document: PolicyDocument) -> None:
        self.doc = document
        self.tz = ZoneInfo(document.company.timezone)
        self._open_days = {WEEKDAYS.index(day) for day in document.business_hours.days}
        self._closures = {c.date: c.name for c in document.availability.company_closures}
        self._holiday_years: dict[int, holidays.HolidayBase] = {}

    # -- lookups -------------------------------------------------------------------

    def link_hosts(self) -> list[str]:
        """The hosts of every web address the policy publishes (help centre, status page…):
        the only links besides the service's own that the widget makes clickable."""
        found = re.findall(r"https?://([A-Za-z0-9.-]+(?::\d+)?)", json.dumps(self.doc.model_dump(mode="json")))
        return sorted({host.lower() for host in found})

    def request_field(self, field_id: str) -> RequestField:
        return next(f for f in self.doc.customer_responsibilities.request_fields if f.id == field_id)

    def support_type(self, category_id: str) -> SupportType:
        return next(t for t in self.doc.scope.support_types if t.id == category_id)

    def fields_for(self, category_id: str | None) -> tuple[str, ...]:
        """The request fields asked for a category, in the policy's order (all when unknown)."""
        order = [f.id for f in self.doc.customer_responsibilities.request_fields]
        if category_id is None:
            return tuple(order)
        needed = set(self.support_type(category_id).request_fields)
        return tuple(f for f in order if f in needed)

    def severity(self, severity_id: str) -> Severity:
        for severity in self.doc.severities:
            if severity.id == severity_id:
                return severity
        raise KeyError(f"unknown severity {severity_id!r}; expected one of {', '.join(SEVERITY_ORDER)}")

    def holiday(self, day: dt.date) -> str | None:
        """The public holiday or company closure on `day` (company-local date), or None."""
        if day in self._closures:
            return self._closures[day]
        holiday = self._holidays(day.year).get(day)
        return str(holiday) if holiday else None

    def closed_reason(self, day: dt.date) -> str | None:
        """Why support is closed all day on `day` (company-local date), or None."""
        holiday = self.holiday(day)
        if holiday:
            return holiday
        if day.weekday() not in self._open_days:
            return WEEKDAYS[day.weekday()].capitalize()
        return None

    def _holidays(self, year: int) -> holidays.HolidayBase:
        if year not in self._holiday_years:
            region = self.doc.availability.holidays
            self._holiday_years[year] = holidays.country_holidays(region.country, subdiv=region.subdivision, years=year)
        return self._holiday_years[year]

    # -- the clock rules -------------------------------------------------------------

    def is_open(self, at: dt.datetime) -> bool:
        """Whether people answer support requests at instant `at`."""
        _require_aware(at)
        start, _ = next(self.open_intervals(at))
        return start <= at

    def next_opening(self, at: dt.datetime) -> dt.datetime:
        """The first instant at or after `at` when support is open (`at` itself if open)."""
        _require_aware(at)
        start, _ = next(self.open_intervals(at))
        return max(start, at).astimezone(self.tz)

    def closes_at(self, at: dt.datetime) -> dt.datetime | None:
        """When the open period containing `at` ends, or None if closed at `at`."""
        start, end = next(self.open_intervals(at))
        return end.astimezone(self.tz) if start <= at else None

    def open_intervals(self, since: dt.datetime) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        """Open periods, in order, that end after `since` (the first may contain it).

        Business days and hours in the company's zone, minus holidays, company
        closures and maintenance windows that close support.
        """
        _require_aware(since)
        hours = self.doc.business_hours
        day = since.astimezone(self.tz).date()
        for _ in range(3660):  # ten years without an open day means a broken policy
            if self.closed_reason(day) is None:
                start = dt.datetime.combine(day, hours.opens, tzinfo=self.tz)
                end = dt.datetime.combine(day, hours.closes, tzinfo=self.tz)
                for piece in self._minus_closing_windows(start, end):
                    if piece[1] > since:
                        yield piece
            day += dt.timedelta(days=1)
        raise PolicyError("the policy has no open business day in ten years")

    def _minus_closing_windows(self, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
        pieces = [(start, end)]
        for window in self.doc.availability.maintenance_windows:
            if not window.support_closed:
                continue
            cut = []
            for s, e in pieces:
                if window.ends <= s or window.starts >= e:
                    cut.append((s, e))
                    continue
                if s < window.starts:
                    cut.append((s, window.starts))
                if window.ends < e:
                    cut.append((window.ends, e))
            pieces = cut
        return pieces

    def response_due(self, severity_id: str, submitted_at: dt.datetime) -> dt.datetime:
        """The first-response deadline for a request of that severity submitted then."""
        return self._add_clock_hours(self.severity(severity_id), severity_id, submitted_at, "first_response_hours")

    def resolution_due(self, severity_id: str, submitted_at: dt.datetime) -> dt.datetime:
        """The resolution target for a request of that severity submitted then."""
        return self._add_clock_hours(self.severity(severity_id), severity_id, submitted_at, "resolution_hours")

    def _add_clock_hours(self, severity: Severity, severity_id: str, at: dt.datetime, field: str) -> dt.datetime:
        _require_aware(at)
        remaining = dt.timedelta(hours=getattr(severity, field))
        if severity.clock == "around_the_clock":
            return (at + remaining).astimezone(self.tz)
        return self.add_business_time(at, remaining)

    def add_business_time(self, at: dt.datetime, duration: dt.timedelta) -> dt.datetime:
        """The instant when `duration` of open time has passed since `at`."""
        remaining = duration
        for start, end in self.open_intervals(at):
            start = max(start, at)
            if end - start >= remaining:
                return (start + remaining).astimezone(self.tz)
            remaining -= end - start
        raise AssertionError("open_intervals is endless")  # pragma: no cover

    def business_time_between(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        """Open time between two instants (negative when `end` is before `start`)."""
        if end < start:
            return -self.business_time_between(end, start)
        total = dt.timedelta()
        for s, e in self.open_intervals(start):
            if s >= end:
                break
            total += min(e, end) - max(s, start)
        return total

    def active_notices(self, at: dt.datetime) -> list[Notice]:
        """Maintenance windows to announce at `at`: from their notice period to their end."""
        _require_aware(at)
        return [
            Notice(w.id, w.starts.astimezone(self.tz), w.ends.astimezone(self.tz), w.notice, w.support_closed)
            for w in sorted(self.doc.availability.maintenance_windows, key=lambda w: w.starts)
            if w.announced_from <= at < w.ends
        ]

    def in_maintenance(self, at: dt.datetime) -> list[Notice]:
        """Maintenance windows in progress at `at`."""
        return [n for n in self.active_notices(at) if n.starts <= at]


def _require_aware(at: dt.datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("policy times must be time-zone aware (got a naive datetime)")
