"""What the assistant deflects: figures for the team's report page.

Conversations and FAQ outcomes are read from Rasa's tracker store (its ``events``
table, read-only); tickets, first responses and ratings from the product's store.
Questions the assistant could not answer are grouped by similarity (TF-IDF over word
and character n-grams, agglomerative clustering) so the team can add FAQ entries.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any, Sequence

import sqlalchemy as sa

from bot.live import live_report
from bot.policy import SEVERITY_ORDER, SupportPolicy
from bot.store import Store, tickets
from bot.tracker_store import TrackerEvent, TrackerStore

FAQ_OUTCOMES = ("answered", "suggested", "missed")


def faq_outcomes(events: Sequence[TrackerEvent]) -> tuple[Counter, list[str]]:
    """How often the FAQ answered, suggested or missed; and the questions it could not answer."""
    counts: Counter = Counter()
    unanswered: list[str] = []
    last_text: dict[str, str] = {}
    for event in events:
        if event.type_name == "user":
            text = event.data.get("text") or ""
            if text and not text.startswith("/"):
                last_text[event.sender_id] = text
        elif event.data.get("name") == "faq_outcome" and event.data.get("value") in FAQ_OUTCOMES:
            counts[event.data["value"]] += 1
            if event.data["value"] != "answered" and event.sender_id in last_text:
                unanswered.append(last_text[event.sender_id])
    return counts, unanswered


def languages(events: Sequence[TrackerEvent]) -> dict[str, int]:
    """How many questions came in each language (the `language` slot, bot/language.py)."""
    counts = Counter(
        str(e.data["value"]) for e in events if e.data.get("name") == "language" and isinstance(e.data.get("value"), str)
    )
    return dict(counts.most_common())


def group_questions(texts: Sequence[str], max_groups: int = 20, examples: int = 5) -> list[dict[str, Any]]:
    """Similar questions together, biggest group first."""
    unique = list(dict.fromkeys(t.strip() for t in texts if t.strip()))
    if not unique:
        return []
    if len(unique) == 1:
        return [{"count": sum(1 for t in texts if t.strip() == unique[0]), "examples": unique}]
    from scipy.sparse import hstack
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.feature_extraction.text import TfidfVectorizer

    words = TfidfVectorizer(ngram_range=(1, 2), stop_words="english").fit_transform(unique) if any(
        len(t.split()) > 1 for t in unique
    ) else None
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5)).fit_transform(unique)
    matrix = hstack([m for m in (words, chars) if m is not None]).toarray()
    labels = AgglomerativeClustering(
        n_clusters=None, metric="cosine", linkage="average", distance_threshold=0.75
    ).fit_predict(matrix)
    frequency = Counter(t.strip() for t in texts)
    groups: dict[int, list[str]] = {}
    for text, label in zip(unique, labels):
        groups.setdefault(int(label), []).append(text)
    result = [
        {"count": sum(frequency[t] for t in members), "examples": sorted(members, key=lambda t: -frequency[t])[:examples]}
        for members in groups.values()
    ]
    result.sort(key=lambda g: (-g["count"], g["examples"][0]))
    return result[:max_groups]


async def build_report(
    store: Store, policy: SupportPolicy, tracker: TrackerStore, now: dt.datetime, days: int
) -> dict[str, Any]:
    """The figures of the report page for the last `days` days (company-local dates)."""
    today = now.astimezone(policy.tz).date()
    first_day = today - dt.timedelta(days=days - 1)
    since = dt.datetime.combine(first_day, dt.time(), tzinfo=policy.tz)
    events = await tracker.events_since(since)
    async with store.engine.connect() as conn:
        ticket_rows = (
            await conn.execute(
                sa.select(
                    tickets.c.conversation_id, tickets.c.severity, tickets.c.created_at, tickets.c.response_due_at,
                    tickets.c.first_response_at, tickets.c.csat_rating, tickets.c.proposed_severity,
                    tickets.c.submitted_severity,
                ).where(tickets.c.created_at >= since.astimezone(dt.timezone.utc))
            )
        ).fetchall()

    conversation_day: dict[str, dt.date] = {}
    for event in events:
        if event.type_name == "user" and event.sender_id not in conversation_day:
            conversation_day[event.sender_id] = event.at.astimezone(policy.tz).date()
    escalated = {row.conversation_id for row in ticket_rows}
    per_day = []
    for offset in range(days):
        day = first_day + dt.timedelta(days=offset)
        senders = [s for s, d in conversation_day.items() if d == day]
        per_day.append(
            {"date": day.isoformat(), "conversations": len(senders), "escalated": sum(1 for s in senders if s in escalated)}
        )
    total = len(conversation_day)
    escalated_count = sum(1 for s in conversation_day if s in escalated)
    outcomes, unanswered = faq_outcomes(events)

    sla = {s: {"severity": s, "met": 0, "missed": 0, "pending": 0} for s in SEVERITY_ORDER}
    ratings: Counter = Counter()
    for row in ticket_rows:
        due = _aware(row.response_due_at)
        first = _aware(row.first_response_at)
        bucket = sla[row.severity]
        if first is not None:
            bucket["met" if first <= due else "missed"] += 1
        elif due < now:
            bucket["missed"] += 1
        else:
            bucket["pending"] += 1
        if row.csat_rating:
            ratings[int(row.csat_rating)] += 1
    rated = sum(ratings.values())
    return {
        "from": first_day.isoformat(),
        "to": today.isoformat(),
        "days": per_day,
        "totals": {
            "conversations": total,
            "escalated": escalated_count,
            "self_service": total - escalated_count,
            "deflection_rate": round((total - escalated_count) / total, 4) if total else None,
            "faq_answered": outcomes["answered"],
            "faq_suggested": outcomes["suggested"],
            "faq_missed": outcomes["missed"],
        },
        "sla": list(sla.values()),
        "csat": {
            "ratings": {str(r): ratings[r] for r in range(1, 6)},
            "average": round(sum(r * n for r, n in ratings.items()) / rated, 2) if rated else None,
            "count": rated,
        },
        "triage": triage_outcomes(ticket_rows),
        "languages": languages(events),
        "unanswered": group_questions(unanswered),
        "live": await live_report(store, policy, first_day, days),
    }


def triage_outcomes(rows: Sequence[Any]) -> list[dict[str, Any]]:
    """Per proposed severity: how often the proposal was kept, changed by the customer, changed by staff.

    A ticket counts as changed by the customer when it was submitted with another
    severity than proposed, and as changed by staff when its severity is no longer the
    submitted one (a ticket can be both); kept when neither. Tickets opened before the
    proposal was stored are left out.
    """
    out = {s: {"severity": s, "proposed": 0, "kept": 0, "changed_by_customer": 0, "changed_by_staff": 0}
           for s in SEVERITY_ORDER}
    for row in rows:
        proposed, submitted = row.proposed_severity, row.submitted_severity
        if proposed not in out or submitted is None:
            continue
        bucket = out[proposed]
        bucket["proposed"] += 1
        by_customer, by_staff = submitted != proposed, row.severity != submitted
        bucket["changed_by_customer"] += by_customer
        bucket["changed_by_staff"] += by_staff
        bucket["kept"] += not (by_customer or by_staff)
    return list(out.values())


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value
