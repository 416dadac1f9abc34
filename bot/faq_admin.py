"""Add an FAQ entry to the knowledge base and rebuild the index: one command for the team.

    python -m bot add-faq --id pay_in_crypto --title "Paying in cryptocurrency" \\
        --question "can I pay in bitcoin" --question "do you accept crypto" \\
        --answer "We don't accept cryptocurrencies; see {{ url.help_centre }}/payment-methods."

The entry is validated (the same checks as the index build, and the answer's policy
placeholders), appended to data/faq/added.yml, and the index is rebuilt. A running
action server picks the new index up on its next question (bot/faq.py reloads it).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from bot.policy_answers import render_answer
from bot.policy import SupportPolicy

if TYPE_CHECKING:
    from kb_index import IndexSettings

ADDED_FILE = "added.yml"


def add_entry(
    kb_dir: Path, index_dir: Path, policy: SupportPolicy, entry_id: str, title: str, questions: list[str], answer: str,
    tags: list[str] | None = None, index_settings: "IndexSettings | None" = None,
) -> int:
    """Append the entry, rebuild the index; return the number of entries. Raises on bad input."""
    from kb_index import IndexSettings, ensure_index, load_kb_yaml
    from kb_index.knowledge import KnowledgeError, entry_from_mapping

    raw = {"id": entry_id, "title": title, "questions": questions, "answer": answer, "tags": tags or ["added"]}
    entry_from_mapping(raw, "the new entry")  # field checks
    render_answer(answer, policy, dt.datetime.now(dt.timezone.utc))  # placeholder names exist
    existing = load_kb_yaml(kb_dir)
    if any(e.id == entry_id for e in existing):
        raise KnowledgeError(f"an entry with id {entry_id!r} already exists in {kb_dir}")
    path = kb_dir / ADDED_FILE
    current = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else []
    text = yaml.safe_dump((current or []) + [raw], sort_keys=False, allow_unicode=True, width=100)
    tmp = path.with_suffix(".yml.tmp")
    tmp.write_text("# Entries added with `python -m bot add-faq`.\n" + text, encoding="utf-8")
    tmp.replace(path)
    entries = load_kb_yaml(kb_dir)
    ensure_index(entries, index_dir, index_settings or IndexSettings())
    return len(entries)
