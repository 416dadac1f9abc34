"""FAQ semantic index: load a knowledge base, build or reuse its index, search it.

Typical use::

    entries = load_kb_yaml("data/faq")
    index = ensure_index(entries, "kb_index/build", IndexSettings(), default_encoder)
    result = index.search("how do I reset my password")
    result.answer      # Hit(entry_id, title, score, similarity) or None (abstained)
    result.candidates  # top-k Hits, best first

Importing this package loads no model and opens no file.
"""

from kb_index.encoder import AdaptSettings, Encoder, SentenceEncoder, default_encoder
from kb_index.index import (
    FaqIndex,
    Hit,
    IndexFolderError,
    IndexSettings,
    SearchResult,
    build_index,
    content_hash,
    ensure_index,
    update_index,
)
from kb_index.knowledge import Entry, KnowledgeError, load_faq_jsonl, load_kb_yaml

__all__ = [
    "AdaptSettings",
    "Encoder",
    "Entry",
    "FaqIndex",
    "Hit",
    "IndexFolderError",
    "IndexSettings",
    "KnowledgeError",
    "SearchResult",
    "SentenceEncoder",
    "build_index",
    "content_hash",
    "default_encoder",
    "ensure_index",
    "load_faq_jsonl",
    "load_kb_yaml",
    "update_index",
]
