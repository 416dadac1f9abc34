"""Journey 1 and 2: answer a customer's question from the knowledge base and the policy.

`FaqAnswerer.answer` takes the message and the current instant and returns what to
say: a confident answer (rendered from the policy when the entry is a policy topic),
"did you mean ...?" suggestions when the search is unsure, or a miss. A question that
names a third-party product gets the policy's exclusion clause and the vendor route,
never an FAQ guess.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, Sequence

from bot.answers import mentioned_third_party, policy_answer, render_answer
from bot.policy import SupportPolicy


SCOPE_QUESTION = re.compile(
    r"\b(support(s|ed)?|cover(s|ed)?|help(s)? (me )?with|troubleshoot|fix|compatible|responsible|assist)\b", re.IGNORECASE
)


class Hit(Protocol):
    entry_id: str
    title: str
    score: float


class SearchResult(Protocol):
    answer: Hit | None
    candidates: Sequence[Hit]


class Index(Protocol):
    def search(self, query: str, k: int = 3) -> SearchResult: ...


@dataclass(frozen=True)
class KbEntry:
    """What the answerer needs of a knowledge-base entry."""

    id: str
    title: str
    answer: str = ""
    policy_answer: str | None = None


@dataclass(frozen=True)
class FaqResult:
    kind: Literal["answer", "suggest", "miss"]
    text: str = ""
    entry_id: str | None = None
    score: float | None = None
    suggestions: list[tuple[str, str]] = field(default_factory=list)  # (entry id, title)


class FaqAnswerer:
    """Answers from an index over KB entries, rendering policy values at answer time."""

    def __init__(self, index: Index, entries: Sequence[KbEntry], policy: SupportPolicy, suggest_min_score: float = 0.2) -> None:
        self._index = index
        self._entries = {e.id: e for e in entries}
        self._policy = policy
        self._suggest_min_score = suggest_min_score

    def render(self, entry_id: str, now: dt.datetime, message: str = "") -> str:
        """The answer text of one entry at instant `now`."""
        entry = self._entries[entry_id]
        if entry.policy_answer:
            return policy_answer(entry.policy_answer, self._policy, now, message)
        return render_answer(entry.answer, self._policy, now)

    def has(self, entry_id: str) -> bool:
        return entry_id in self._entries

    def answer(self, message: str, now: dt.datetime) -> FaqResult:
        """Answer `message`, suggest close entries, or report a miss."""
        if mentioned_third_party(self._policy, message) and SCOPE_QUESTION.search(message):
            # "Do you support the Stripe plugin?" is a scope question: the policy answers
            # it, not whichever FAQ entry mentions payments.
            return FaqResult("answer", policy_answer("third_party", self._policy, now, message), "third_party", 1.0)
        result = self._index.search(message, k=3)
        if result.answer is not None and result.answer.entry_id in self._entries:
            hit = result.answer
            return FaqResult("answer", self.render(hit.entry_id, now, message), hit.entry_id, hit.score)
        suggestions = [
            (c.entry_id, self._entries[c.entry_id].title)
            for c in result.candidates
            if c.entry_id in self._entries and c.score >= self._suggest_min_score
        ]
        if suggestions:
            text = "I'm not sure I understood. Did you mean one of these?"
            return FaqResult("suggest", text, suggestions=suggestions, score=result.candidates[0].score)
        return FaqResult("miss")


def open_answerer(kb_dir: Path, index_dir: Path, policy: SupportPolicy) -> FaqAnswerer:
    """Load the knowledge base and its built index (built by `python -m kb_index build`).

    Raises kb_index.IndexFolderError when the index is missing or older than the
    knowledge base: a server must not spend minutes building one on a request.
    """
    from kb_index import FaqIndex, IndexFolderError, IndexSettings, content_hash, load_kb_yaml  # heavy: on use

    entries = load_kb_yaml(kb_dir)
    index = FaqIndex.load(index_dir)
    if index.meta.get("hash") != content_hash(entries, IndexSettings()):
        raise IndexFolderError(f"{index_dir} is out of date for {kb_dir}; run `python -m kb_index build` (make index)")
    kb = [KbEntry(e.id, e.title, e.answer, e.policy_answer) for e in entries]
    return FaqAnswerer(index, kb, policy)
