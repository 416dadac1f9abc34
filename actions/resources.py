"""What the actions share, created on first use and kept for the server's lifetime.

This is the action server's entry point for configuration: settings are read from
the environment once, here. The encoder and index load lazily (in a worker thread,
so the event loop keeps serving), because loading them at import breaks the action
server's start.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import time
from typing import Any, Callable, Sequence, TypeVar

from rasa_sdk import Tracker

from bot.faq import FaqAnswerer, FaqResult, open_answerer
from bot.form_replies import FormReplyModel
from bot.web.identity import unseal
from bot.google_calendar import Calendar, calendar_from_settings
from bot.policy import SupportPolicy, load_policy
from bot.settings import Settings
from bot.store import Store, Ticket
from bot.triage import TriageModel

log = logging.getLogger(__name__)
T = TypeVar("T")

_settings: Settings | None = None
_policy: SupportPolicy | None = None
_answerer: FaqAnswerer | None = None
_answerer_lock = asyncio.Lock()
_store: Store | None = None


_clock_origin: tuple[dt.datetime, float] | None = None


def now() -> dt.datetime:
    """The current instant (one place to fix the clock in tests). With `clock_start` set
    (SUPPORT_CLOCK_START, for replaying dated evaluation cases) the clock starts at that
    instant on first use and runs on in real time."""
    global _clock_origin
    start = settings().clock_start
    if not start:
        return dt.datetime.now(dt.timezone.utc)
    if _clock_origin is None:
        log.warning("the clock starts at %s (SUPPORT_CLOCK_START), not the real time", start)
        _clock_origin = (dt.datetime.fromisoformat(start).astimezone(dt.timezone.utc), time.monotonic())
    origin, started = _clock_origin
    return origin + dt.timedelta(seconds=time.monotonic() - started)


def settings() -> Settings:
    global _settings
    if _settings is None:
        _settings = Settings.from_env()
    return _settings


def policy() -> SupportPolicy:
    global _policy
    if _policy is None:
        _policy = load_policy(settings().policy_path)
    return _policy


_index_stamp: float | None = None

# The builds under way, by name. A build runs as its own task: a request that stops
# waiting for it (Sanic's response timeout on a busy machine, a client gone) does not
# discard it, and the next caller waits for the same build instead of starting another.
_building: dict[str, asyncio.Task] = {}


async def _built(name: str, build: Callable[..., T], *args: Any) -> T:
    """`build(*args)` run once in a worker thread, shielded from the caller's cancellation."""
    task = _building.get(name)
    if task is None:
        task = _building[name] = asyncio.get_running_loop().create_task(asyncio.to_thread(build, *args))
    try:
        return await asyncio.shield(task)
    finally:
        if task.done():
            _building.pop(name, None)


async def answerer() -> FaqAnswerer:
    """The FAQ answerer over the built index; reloaded when the index is rebuilt."""
    global _answerer, _index_stamp
    stamp = _index_mtime(settings())
    async with _answerer_lock:
        if _answerer is None or stamp != _index_stamp:
            _answerer = await _built("answerer", _load_answerer, settings(), policy())
            _index_stamp = stamp
    return _answerer


def _index_mtime(settings: Settings) -> float | None:
    # A rebuild replaces the folder atomically, so its meta.json gets a new mtime.
    try:
        return (settings.index_dir / "meta.json").stat().st_mtime
    except OSError:
        return None


def _load_answerer(settings: Settings, policy: SupportPolicy) -> FaqAnswerer:
    log.info("loading the knowledge-base index from %s", settings.index_dir)
    return open_answerer(settings.kb_dir, settings.index_dir, policy)


_triage: TriageModel | None = None
_triage_lock = asyncio.Lock()


async def triage() -> TriageModel:
    """The triage model (bot/triage.py); built on first use if missing or out of date."""
    global _triage
    async with _triage_lock:
        if _triage is None:
            _triage = await _built("triage", _load_triage, settings(), policy())
    return _triage


_triage_warm_up: asyncio.Task | None = None


async def warmed_up() -> None:
    """Load the triage model and the checks built on it, once, and wait for them.

    The launcher's warm-up (actions/answers.ActionWarmUp) waits here, so a server it calls
    ready has them loaded. When they loaded in the background, the first message after a
    start waited for them, and on a slow machine (stop 50: a CI run whose tests took 40 min
    instead of 24) that outlasted the web service's 30 s timeout to Rasa: three service
    tests got "assistant_unavailable" on the first message after the action server
    (re)started. The loading runs in its own task, shielded: if the wait outlasts the
    server's response timeout, the launcher asks again (bot/launcher.warm_up_actions) and
    waits on the same task."""
    global _triage_warm_up
    if _triage_warm_up is None:
        _triage_warm_up = asyncio.get_running_loop().create_task(_warm_up())
    await asyncio.shield(_triage_warm_up)


async def _warm_up() -> None:
    await triage()
    await form_replies()
    await route_confirmed("book_call", "warm up the route check")
    await _inquiry_model()
    await problem_ongoing("warm up the ongoing-problem check")


def _load_triage(settings: Settings, policy: SupportPolicy) -> TriageModel:
    from bot.triage import ensure_model

    log.info("loading the triage model from %s", settings.triage_dir)
    model = ensure_model(policy, settings.triage_cases, settings.triage_dir, log=log.info)
    model.propose("warm up the encoder")
    return model


_form_replies: FormReplyModel | None = None
_form_replies_lock = asyncio.Lock()


async def form_replies() -> FormReplyModel:
    """The form-reply classifier (bot/form_replies.py), fitted on first use over the triage model's encoder."""
    global _form_replies
    async with _form_replies_lock:
        if _form_replies is None:
            encoder = (await triage()).encoder
            faq = await answerer()
            _form_replies = await _built("form_replies", _build_form_replies, encoder, faq, policy())
    return _form_replies


def _build_form_replies(encoder: object, faq: FaqAnswerer, policy: SupportPolicy) -> FormReplyModel:
    from bot.form_replies import DEFAULT_CASES, evidence_from, form_questions, load_replies

    log.info("fitting the form-reply classifier on %s", DEFAULT_CASES)
    replies = load_replies(DEFAULT_CASES)
    return FormReplyModel.build(encoder, form_questions(policy), replies, evidence_from(policy, faq))


async def store() -> Store:
    """The ticket store (the schema is migrated by `python -m bot run` / the tests)."""
    global _store
    if _store is None:
        _store = await Store.open(settings().database_url)
    return _store


def notify_kinds() -> tuple[str, ...]:
    from bot.notify import enabled_kinds

    return enabled_kinds(settings())


def verified_identity(tracker: Tracker) -> dict[str, str] | None:
    """The in-app user's identity {user_id, name, email}: verified by the web service and
    sealed for this conversation; checked here again, so forged metadata is ignored."""
    metadata = (tracker.latest_message.get("metadata") or {}).get("identity")
    who = unseal(settings().identity_secret, tracker.sender_id, metadata, now())
    return who.to_metadata() if who is not None else None


_calendar: Calendar | None = None


def calendar() -> Calendar:
    """The team calendar: Google Calendar when credentials are configured, else the fixed room."""
    global _calendar
    if _calendar is None:
        _calendar = calendar_from_settings(settings())
    return _calendar


# The checks fitted (or loaded) once on first use, by name.
_checks: dict[str, Any] = {}
_check_locks: dict[str, asyncio.Lock] = {}


async def _check(module: str, what: str, load: str = "load_model") -> Any:
    """`module`'s `load()` (imported on first use), run once in a worker thread and kept."""
    if module not in _checks:
        async with _check_locks.setdefault(module, asyncio.Lock()):
            if module not in _checks:
                import importlib

                log.info("preparing %s", what)
                _checks[module] = await _built(module, getattr(importlib.import_module(module), load))
    return _checks[module]


async def foreign_language(message: str) -> str | None:
    """The code of the language other than English the message is written in (bot/language.py)."""
    detector = await _check("bot.language", "the language detector", load="LanguageDetector")
    return await asyncio.to_thread(detector.foreign, message)


async def people_first(message: str) -> bool:
    """Frustration, anger, repeated failure or a request for a person in the message (bot/frustration.py)."""
    model = await _check("bot.frustration", "the people-first model")
    return await asyncio.to_thread(model.people_first, message)


async def problem_ongoing(message: str) -> bool:
    """Whether the problem the message reports is happening now (bot/ongoing.py)."""
    model = await _check("bot.ongoing", "the ongoing-problem check")
    return await asyncio.to_thread(model.ongoing, message)


async def _inquiry_model() -> Any:
    return await _check("bot.inquiry", "the person-or-question check")


async def asks_how_people_help(tracker: Tracker, results: Sequence[FaqResult] | None = None) -> bool:
    """The customer's typed words, which Rasa heard as a request for a person, ask how
    people get involved instead ("if the agent can't fix it, who looks at it next?"), and
    the policy answers that: bot/inquiry.py reads the difference, and the answerer must
    give one of the policy entries about people and channels (`results`, the answerer's
    results for the message when the caller has them). Outside a form only."""
    from bot.inquiry import POLICY_ENTRIES

    text = str((tracker.latest_message or {}).get("text") or "")
    if not text or text.startswith("/") or tracker.active_loop_name:
        return False
    model = await _inquiry_model()
    if not await asyncio.to_thread(model.asks_how, text):
        return False
    if results is None:
        results = (await answerer()).answer_all(text, now())
    return any(r.kind == "answer" and r.entry_id in POLICY_ENTRIES for r in results)


TICKET_REFERENCE = re.compile(r"\bMK-?[A-Za-z0-9]{4,8}\b", re.IGNORECASE)


def ticket_reference(text: str) -> re.Match[str] | None:
    """The first ticket number in the text, valid or mistyped; an error code the shape of
    the knowledge base's ("MK-S409", "MK-D210": a letter and three digits) is none."""
    from bot.faq import ERROR_CODE

    for match in TICKET_REFERENCE.finditer(text):
        if not ERROR_CODE.fullmatch(match.group(0)):
            return match
    return None


async def _route_model() -> Any:
    return await _check("bot.routes", "the route check")


async def route_confirmed(route: str, message: str) -> bool:
    """Whether the message really asks for the journey Rasa picked (bot/routes.py)."""
    model = await _route_model()
    return await asyncio.to_thread(model.confirms, route, message)


async def asks_for_person(tracker: Tracker) -> bool:
    """The customer's own words ask for a person or a ticket, whatever intent Rasa heard
    ("create a ticket for me" came as submit_request, "hand me over to a colleague of
    yours" as cancel): the person check of bot/routes.py. Typed text outside a form only."""
    text = str((tracker.latest_message or {}).get("text") or "")
    if not text or text.startswith("/") or tracker.active_loop_name:
        return False
    model = await _route_model()
    return await asyncio.to_thread(model.asks_for_person, text)


async def person_sentences(sentences: Sequence[str]) -> list[bool]:
    """For each sentence, whether it asks for a person (the person check of bot/routes.py)."""
    model = await _route_model()
    return await asyncio.to_thread(model.person_sentences, sentences)


async def visible_ticket(tracker: Tracker, number: str) -> Ticket | None:
    """The ticket if this conversation, or the verified in-app user, may see it (bot/tickets.py)."""
    from bot.tickets import visible_ticket as lookup

    who = verified_identity(tracker)
    return await lookup(await store(), number, tracker.sender_id, who["user_id"] if who else None)


async def misrouted(tracker: Tracker) -> bool:
    """Rasa picked one of the checked journeys (bot.routes.CHECKED) for the customer's own
    words, and the route check reads them otherwise.

    Only outside a form (the form reads its replies itself), for typed text (a button names
    its route), and without a ticket reference in the message, valid or mistyped ("MK-ABC123"
    names a ticket to act on: the journey says what a number looks like).
    """
    from bot.routes import CHECKED

    latest = tracker.latest_message or {}
    text = str(latest.get("text") or "")
    route = (latest.get("intent") or {}).get("name")
    if route not in CHECKED or not text or text.startswith("/"):
        return False
    if tracker.active_loop_name or next(tracker.get_latest_entity_values("ticket_number"), None):
        return False
    if ticket_reference(text):
        return False
    return not await route_confirmed(route, text)
