"""Offline evaluation of an index against labelled queries (the `eval` command's figures).

Queries are JSON Lines `{"text": ..., "faq_id": ... | null}`; `null` marks an
out-of-scope query that should get no answer. Predictions are made for every query
before any label is looked at.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from kb_index.index import FaqIndex, SearchResult


@dataclass(frozen=True)
class Query:
    """One labelled query; `faq_id` is None for out-of-scope."""

    text: str
    faq_id: str | None


def load_queries(path: str | Path) -> list[Query]:
    """Read labelled queries from JSON Lines; raises ValueError naming the bad line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: queries file not found")
    queries = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                queries.append(Query(text=str(raw["text"]), faq_id=raw.get("faq_id")))
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise ValueError(f"{path}:{number}: bad query line ({err})") from None
    return queries


def split_of(text: str) -> str:
    """`dev` or `test`: a fixed half of any labelled query file, by a hash of the query's
    text, so thresholds and negatives are chosen on dev and figures reported on test."""
    return "dev" if hashlib.sha1(text.encode("utf-8")).digest()[0] % 2 == 0 else "test"


def predict(index: FaqIndex, texts: Sequence[str], k: int = 3, batch: int = 256) -> tuple[list[SearchResult], float]:
    """Search every text; returns the results and the mean milliseconds per query."""
    results: list[SearchResult] = []
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        results.extend(index.search_many(texts[start : start + batch], k))
    elapsed = time.perf_counter() - started
    return results, 1000.0 * elapsed / max(1, len(texts))


def without_declines(results: Sequence[SearchResult], declines: set[str]) -> list[SearchResult]:
    """Results with an answer from a negative entry (tagged `decline`) turned into an
    abstention: the assistant declines those questions."""
    return [
        SearchResult(r.query, None, r.candidates) if r.answer is not None and r.answer.entry_id in declines else r
        for r in results
    ]


def risk_coverage(queries: Sequence[Query], results: Sequence[SearchResult], declines: set[str] = frozenset()) -> list[dict]:
    """Answered precision at each coverage, best-scored queries answered first.

    Each query's best non-negative candidate is its would-be answer; sorted by its
    confidence, the top n are answered at threshold = the n-th confidence. A query whose
    best candidate is a negative counts as declined at every threshold."""
    scored = []
    for query, result in zip(queries, results):
        top = result.candidates[0] if result.candidates else None
        if top is None or top.entry_id in declines:
            continue
        scored.append((top.score, top.entry_id == query.faq_id))
    return coverage_curve(scored, len(queries))


def coverage_curve(answered: Sequence[tuple[float, bool]], total: int) -> list[dict]:
    """Precision of the n most confident answers (confidence, right) at every twentieth of
    `total` queries answered, and at the last answer: coverage, precision, threshold."""
    ordered = sorted(answered, key=lambda a: -a[0])
    points, right = [], 0
    marks = {max(1, round(total * c / 20)) for c in range(1, 21)}
    for n, (confidence, correct) in enumerate(ordered, 1):
        right += correct
        if n in marks or n == len(ordered):
            points.append({"coverage": round(n / total, 3), "precision": round(right / n, 4), "threshold": round(confidence, 4)})
    return points


def score(queries: Sequence[Query], results: Sequence[SearchResult]) -> dict:
    """Accuracy, ranking and abstention figures of `results` against the labels."""
    in_scope = [(q, r) for q, r in zip(queries, results) if q.faq_id is not None]
    out_scope = [r for q, r in zip(queries, results) if q.faq_id is None]

    def ratio(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None

    top1 = reciprocal = top3 = answered_right = 0
    for query, result in in_scope:
        ranked = [hit.entry_id for hit in result.candidates]
        if ranked and ranked[0] == query.faq_id:
            top1 += 1
        if query.faq_id in ranked[:3]:
            top3 += 1
        if query.faq_id in ranked:
            reciprocal += 1.0 / (ranked.index(query.faq_id) + 1)
        if result.answer is not None and result.answer.entry_id == query.faq_id:
            answered_right += 1
    answers = sum(1 for r in results if r.answer is not None)
    abstained_oos = sum(1 for r in out_scope if r.answer is None)
    abstentions = len(results) - answers
    return {
        "accuracy_at_1": ratio(top1, len(in_scope)),
        "recall_at_3": ratio(top3, len(in_scope)),
        "mrr": round(reciprocal / len(in_scope), 4) if in_scope else None,
        "in_scope_accuracy": ratio(answered_right, len(in_scope)),
        "oos_recall": ratio(abstained_oos, len(out_scope)),
        "oos_precision": ratio(abstained_oos, abstentions) if out_scope else None,
        "answered_precision": ratio(answered_right, answers),
        "queries": len(queries),
        "in_scope_queries": len(in_scope),
        "oos_queries": len(out_scope),
    }


def evaluate(index: FaqIndex, queries: Sequence[Query], k: int = 3) -> dict:
    """Predict all queries (labels unseen), then score; adds `ms_per_query` and the
    risk-coverage curve. Answers from negative entries (tag `decline`) are abstentions."""
    results, ms = predict(index, [q.text for q in queries], k)
    declines = {e.id for e in index.entries if "decline" in e.tags}
    figures = score(queries, without_declines(results, declines))
    figures["ms_per_query"] = round(ms, 2)
    figures["risk_coverage"] = risk_coverage(queries, results, declines)
    return figures


def coverage_table(points: Sequence[dict]) -> str:
    """The risk-coverage curve as a text table (printed on stderr by the eval command)."""
    lines = ["coverage  precision  threshold"]
    lines += [f"{p['coverage']:>8.3f}  {p['precision']:>9.4f}  {p['threshold']:>9.4f}" for p in points]
    return "\n".join(lines)


def confidence_examples(index: FaqIndex, queries: Sequence[Query], batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """For each query, the best entry's (similarity, margin over the best other entry)
    and whether that entry is the labelled one (an out-of-scope query is never right)."""
    from kb_index.index import margins

    features, right = [], []
    for start in range(0, len(queries), batch):
        chunk = queries[start : start + batch]
        vectors = index.encoder.encode([q.text for q in chunk])
        for query, hits in zip(chunk, index.rank(vectors, k=3)):
            if not hits:
                continue
            similarities = np.array([h.similarity for h in hits])
            features.append((similarities[0], margins(similarities)[0]))
            right.append(hits[0].entry_id == query.faq_id)
    return np.asarray(features, dtype=np.float64), np.asarray(right, dtype=bool)


def fit_confidence(features: np.ndarray, right: np.ndarray) -> tuple[float, float, float]:
    """(bias, w_similarity, w_margin) of a logistic regression of "the best entry is
    right" on (similarity, margin): the coefficients IndexSettings.confidence_* hold."""
    from sklearn.linear_model import LogisticRegression

    if len(set(right.tolist())) < 2:
        raise ValueError("fitting the confidence needs queries answered rightly and wrongly")
    model = LogisticRegression(C=100.0, max_iter=2000).fit(features, right)
    return (round(float(model.intercept_[0]), 3), round(float(model.coef_[0][0]), 3), round(float(model.coef_[0][1]), 3))
