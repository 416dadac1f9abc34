"""Knowledge-base entries and the two source formats they are read from.

`load_kb_yaml` reads the product knowledge base (a folder of YAML lists, one file per
topic); `load_faq_jsonl` reads the development data format (`{"id","title","questions"}`
per line). Both validate as they go and raise `KnowledgeError` naming the file and
the entry, so an author can fix the source without reading a traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable


class KnowledgeError(ValueError):
    """A knowledge-base source is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class Entry:
    """One FAQ entry: the phrasings that ask for it and what to answer.

    `policy_answer` names a policy topic rendered by the bot at answer time; the index
    only carries it through.
    """

    id: str
    title: str
    questions: list[str]
    answer: str = ""
    tags: list[str] = field(default_factory=list)
    policy_answer: str | None = None


_REQUIRED = ("id", "title", "questions")
_KNOWN = {"id", "title", "questions", "answer", "tags", "policy_answer"}


def entry_from_mapping(raw: Any, where: str) -> Entry:
    """Validate one raw mapping and turn it into an `Entry`; `where` names its place in errors."""
    if not isinstance(raw, dict):
        raise KnowledgeError(f"{where}: an entry must be a mapping, got {type(raw).__name__}")
    entry_id = raw.get("id")
    label = f"{where}, entry {entry_id!r}" if entry_id is not None else where
    missing = [key for key in _REQUIRED if key not in raw]
    if missing:
        raise KnowledgeError(f"{label}: missing field(s) {', '.join(missing)}")
    unknown = sorted(set(raw) - _KNOWN)
    if unknown:
        # A typo such as `question:` would otherwise silently drop the phrasings.
        raise KnowledgeError(f"{label}: unknown field(s) {', '.join(unknown)}")
    if not isinstance(entry_id, str) or not entry_id.strip():
        raise KnowledgeError(f"{label}: `id` must be a non-empty string")
    title = raw["title"]
    if not isinstance(title, str) or not title.strip():
        raise KnowledgeError(f"{label}: `title` must be a non-empty string")
    questions = raw["questions"]
    if not isinstance(questions, list) or not questions:
        raise KnowledgeError(f"{label}: `questions` must be a non-empty list")
    cleaned = []
    for number, question in enumerate(questions, 1):
        if not isinstance(question, str) or not question.strip():
            raise KnowledgeError(f"{label}: question {number} must be a non-empty string")
        cleaned.append(question.strip())
    answer = raw.get("answer") or ""
    if not isinstance(answer, str):
        raise KnowledgeError(f"{label}: `answer` must be a string")
    tags = raw.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise KnowledgeError(f"{label}: `tags` must be a list of strings")
    policy_answer = raw.get("policy_answer")
    if policy_answer is not None and not isinstance(policy_answer, str):
        raise KnowledgeError(f"{label}: `policy_answer` must be a string")
    return Entry(
        id=entry_id.strip(),
        title=title.strip(),
        questions=cleaned,
        answer=answer,
        tags=list(tags),
        policy_answer=policy_answer,
    )


def check_unique(entries: Iterable[tuple[Entry, str]]) -> list[Entry]:
    """Return the entries, refusing a second entry with an id already seen (names both places)."""
    seen: dict[str, str] = {}
    result = []
    for entry, where in entries:
        if entry.id in seen:
            raise KnowledgeError(f"{where}: duplicate entry id {entry.id!r} (first defined in {seen[entry.id]})")
        seen[entry.id] = where
        result.append(entry)
    if not result:
        raise KnowledgeError("the knowledge base has no entries")
    return result


def load_faq_jsonl(path: str | Path) -> list[Entry]:
    """Read a JSON Lines FAQ file (one `{"id","title","questions"}` object per line)."""
    path = Path(path)
    if not path.is_file():
        raise KnowledgeError(f"{path}: FAQ file not found")
    pairs = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as err:
                raise KnowledgeError(f"{where}: not valid JSON ({err.msg})") from None
            pairs.append((entry_from_mapping(raw, where), where))
    return check_unique(pairs)


def load_kb_yaml(folder: str | Path) -> list[Entry]:
    """Read every `*.yml` file of a folder (sorted by name), each a YAML list of entries."""
    import yaml  # only the YAML path needs it

    folder = Path(folder)
    if not folder.is_dir():
        raise KnowledgeError(f"{folder}: knowledge-base folder not found")
    files = sorted(folder.glob("*.yml"))
    if not files:
        raise KnowledgeError(f"{folder}: no *.yml files in the knowledge-base folder")
    pairs = []
    for file in files:
        try:
            raw = yaml.safe_load(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            raise KnowledgeError(f"{file}: not valid YAML ({err})") from None
        if raw is None:
            continue
        if not isinstance(raw, list):
            raise KnowledgeError(f"{file}: expected a YAML list of entries, got {type(raw).__name__}")
        for number, item in enumerate(raw, 1):
            where = f"{file} (item {number})"
            pairs.append((entry_from_mapping(item, where), where))
    return check_unique(pairs)
