"""People first: frustration, anger, repeated failure or a request for a person, anywhere in a message.

Such a message gets an apology and the offer of a person before anything else. The
decision is by meaning: the bundled MiniLM encoder embeds each sentence of the message
(and the message whole), a logistic regression trained on the labelled sentences in
`data/people_first/dev.jsonl` scores each, and the highest score decides, so a request
for a person at the end of a long message counts as much as a message that is only that.

Error costs: missing an angry customer (a plain article to someone threatening to
leave) is worse than an apology that was not needed, so the threshold is chosen on the
dev set's cross-validated scores for recall of at least `TARGET_RECALL`, at the best
precision that reaches it. The model is small and fitted when first used (seconds).

    python -m bot.frustration eval --cases data/people_first/test.jsonl   # last line: JSON
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from bot.cases import CasesError, read_cases

ROOT = Path(__file__).resolve().parent.parent
DEV_CASES = ROOT / "data" / "people_first" / "dev.jsonl"
TARGET_RECALL = 0.9
_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+|,\s+(?=(?:and|but|also|so)\b)", re.IGNORECASE)


@dataclass(frozen=True)
class Case:
    text: str
    people_first: bool


def load_cases(path: str | Path) -> list[Case]:
    cases = read_cases(path, lambda raw: Case(str(raw["text"]), bool(raw["people_first"])))
    if len({c.people_first for c in cases}) < 2:
        raise CasesError(f"{path}: needs cases of both kinds")
    return cases


# Markup is not what a person says: pasted HTML ("<img src=x onerror=…>") is read without it.
_MARKUP = re.compile(r"<[^<>]{0,500}>")


def sentences(message: str) -> list[str]:
    """The message's sentences (markup taken out), plus the message itself when it has several."""
    message = _MARKUP.sub(" ", message)
    parts = [p.strip() for p in _SENTENCE.split(message) if p and p.strip()]
    return parts + [message.strip()] if len(parts) > 1 else [message.strip()]


class FrustrationModel:
    """Sentence embeddings → logistic regression; a message scores its highest sentence."""

    def __init__(self, encoder: Any, head: Any, threshold: float) -> None:
        self._encoder = encoder
        self._head = head
        self.threshold = threshold

    @classmethod
    def fit(cls, encoder: Any, cases: Sequence[Case], target_recall: float = TARGET_RECALL) -> "FrustrationModel":
        """Train on `cases`; the threshold comes from 5-fold cross-validated scores."""
        import numpy as np
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import cross_val_predict

        x = encoder.encode([c.text for c in cases])
        y = np.array([c.people_first for c in cases])
        head = LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000)
        scores = cross_val_predict(head, x, y, cv=5, method="predict_proba")[:, 1]
        threshold = choose_threshold(scores, y, target_recall)
        return cls(encoder, head.fit(x, y), threshold)

    def score(self, message: str) -> float:
        """The highest probability over the message's sentences."""
        parts = sentences(message)
        return float(self._head.predict_proba(self._encoder.encode(parts))[:, 1].max())

    def people_first(self, message: str) -> bool:
        if not re.search(r"[^\W\d_]{2,}", _MARKUP.sub(" ", message)):
            return False  # nothing but markup, digits or symbols: no words to be upset in
        return self.score(message) >= self.threshold


def choose_threshold(scores: Any, gold: Any, target_recall: float) -> float:
    """The highest threshold whose recall reaches `target_recall` (best precision)."""
    positives = sorted((float(s) for s, g in zip(scores, gold) if g), reverse=True)
    keep = max(1, int(-(-target_recall * len(positives) // 1)))
    return round(positives[keep - 1] - 1e-6, 6)


def evaluate(model: FrustrationModel, cases: Sequence[Case]) -> dict[str, Any]:
    decided = [(model.people_first(c.text), c.people_first) for c in cases]
    tp = sum(d and g for d, g in decided)
    fp = sum(d and not g for d, g in decided)
    fn = sum(g and not d for d, g in decided)
    return {
        "cases": len(cases),
        "recall": round(tp / (tp + fn), 4) if tp + fn else None,
        "precision": round(tp / (tp + fp), 4) if tp + fp else None,
        "missed": fn,
        "needless_apologies": fp,
        "threshold": model.threshold,
    }


def load_model(cases_path: Path = DEV_CASES) -> FrustrationModel:
    """Fit the model on the dev cases with the bundled encoder (a few seconds)."""
    from kb_index import default_encoder

    return FrustrationModel.fit(default_encoder(None), load_cases(cases_path))


def main(argv: list[str] | None = None) -> int:
    top = argparse.ArgumentParser(prog="python -m bot.frustration")
    commands = top.add_subparsers(dest="command", required=True)
    ev = commands.add_parser("eval", help="fit on the dev cases, score labelled cases")
    ev.add_argument("--cases", type=Path, default=ROOT / "data" / "people_first" / "test.jsonl")
    score = commands.add_parser("score", help="score one message")
    score.add_argument("message")
    args = top.parse_args(argv)
    try:
        model = load_model()
        if args.command == "score":
            print(json.dumps({"score": round(model.score(args.message), 4), "people_first": model.people_first(args.message)}))
            return 0
        print(json.dumps(evaluate(model, load_cases(args.cases))))
    except CasesError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
