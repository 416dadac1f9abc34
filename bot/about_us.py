"""About us or about someone else: may a question get Makana's own policy facts?

"What time does the post office open on Saturday?" and "what's the capital of Australia?"
land on Makana's hours and postal address: the words are those of a policy question, the
object is another organisation, place or general knowledge. The answerer (bot/faq.py)
would ask this model before answering from a policy topic about Makana itself (hours,
contact, holidays, …; `ABOUT_US_TOPICS`), and decline a question about someone else.

**Measured and not kept (stop 33).** Asked before every policy answer about Makana, it
declined "what's the capital of Australia" and "the first ferry to Maui" but also "do you
take the 4th of July off" and "is the old desktop accounting app version 3 still getting
support": on the running stack out of scope declined +3 (dev_long 8 → 9 of 10, holdout
46 → 48 of 54) against covered −4 (dev 83 → 81, test 59 → 58, holdout 169 → 168) and two
two-question cases fewer; KB answered precision 0.952/0.960 → 0.951/0.959 (dev/test). The
answerer does not use it; this module stays to measure the labelled set.

The decision is by meaning: the bundled MiniLM encoder embeds the question, and a
logistic regression trained on `data/about_us/dev.jsonl` (questions labelled `us` or
`other`, topics balanced across both labels so that topic words give nothing away)
scores P(other). The knowledge base's own policy phrasings (`data/faq/policy.yml`) are
added as `us` examples.

Error costs: declining a question about Makana ("holiday hours christmas eve?") leaves a
basic question unanswered, where answering a question about someone else with our
hours is a wrong answer the customer can see is beside the point. A decline of a
question about us costs `US_DECLINED_COST` (3), an answer to a question about someone
else 1; the threshold minimises that cost on the dev set's cross-validated scores.

    python -m bot.about_us eval --cases data/about_us/test.jsonl   # last line: JSON
    python -m bot.about_us score "what time does the bank open"
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Sequence

from bot.cases import CasesError, InvalidCase, read_cases
from bot.policy_answers import NOT_COVERED_TOPICS, TOPICS

ROOT = Path(__file__).resolve().parent.parent
DEV_CASES = ROOT / "data" / "about_us" / "dev.jsonl"
POLICY_PHRASINGS = ROOT / "data" / "faq" / "policy.yml"
US_DECLINED_COST = 3.0
# The policy topics that state facts about Makana itself: all but those on what support
# does not cover, which are about other things by design.
ABOUT_US_TOPICS = frozenset(TOPICS) - NOT_COVERED_TOPICS


@dataclass(frozen=True)
class Case:
    text: str
    other: bool


def _case(raw: Any) -> Case:
    label = raw["label"]
    if label not in ("us", "other"):
        raise InvalidCase(f"label must be 'us' or 'other', not {label!r}")
    return Case(str(raw["text"]), label == "other")


def load_cases(path: str | Path) -> list[Case]:
    cases = read_cases(path, _case)
    if len({c.other for c in cases}) < 2:
        raise CasesError(f"{path}: needs cases of both labels")
    return cases


def policy_phrasings(path: Path = POLICY_PHRASINGS, topics: Collection[str] = ABOUT_US_TOPICS) -> list[str]:
    """The knowledge base's phrasings of the policy entries that answer `topics` (by
    default the topics about Makana, all `us`)."""
    import yaml

    entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    return [str(q) for e in entries if e.get("policy_answer") in topics for q in e.get("questions", [])]


class AboutUsModel:
    """Question embedding → logistic regression → P(about someone else)."""

    def __init__(self, encoder: Any, head: Any, threshold: float) -> None:
        self._encoder = encoder
        self._head = head
        self.threshold = threshold

    @classmethod
    def fit(cls, encoder: Any, cases: Sequence[Case], extra_us: Sequence[str] = ()) -> "AboutUsModel":
        """Train on `cases` (and `extra_us`); the threshold comes from cross-validated scores
        of `cases` (the extra phrasings are always in training, never scored)."""
        import numpy as np
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold

        x = encoder.encode([c.text for c in cases])
        y = np.array([c.other for c in cases])
        x_extra = encoder.encode(list(extra_us)) if extra_us else np.zeros((0, x.shape[1]))
        y_extra = np.zeros(len(x_extra), dtype=bool)

        def head() -> Any:
            return LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000)

        scores = np.zeros(len(cases))
        for train, held in StratifiedKFold(n_splits=5, shuffle=True, random_state=0).split(x, y):
            fold = head().fit(np.vstack([x[train], x_extra]), np.concatenate([y[train], y_extra]))
            scores[held] = fold.predict_proba(x[held])[:, 1]
        threshold = choose_threshold(scores, y, US_DECLINED_COST)
        return cls(encoder, head().fit(np.vstack([x, x_extra]), np.concatenate([y, y_extra])), threshold)

    def score(self, question: str) -> float:
        """P(the question is about someone else)."""
        return float(self._head.predict_proba(self._encoder.encode([question]))[0, 1])

    def about_other(self, question: str) -> bool:
        return self.score(question) >= self.threshold


def choose_threshold(scores: Any, other: Any, us_declined_cost: float) -> float:
    """The threshold of least cost: `us_declined_cost` for each question about us at or
    above it, 1 for each question about someone else below it; of equal costs the highest."""
    candidates = sorted({round(float(s), 6) for s in scores} | {1.0})
    cost = [
        us_declined_cost * sum(1 for s, o in zip(scores, other) if not o and s >= t)
        + sum(1 for s, o in zip(scores, other) if o and s < t)
        for t in candidates
    ]
    best = min(cost)
    return max(t for t, c in zip(candidates, cost) if c == best)


def evaluate(model: AboutUsModel, cases: Sequence[Case]) -> dict[str, Any]:
    decided = [(model.about_other(c.text), c.other) for c in cases]
    us_declined = sum(d and not o for d, o in decided)
    other_answered = sum(o and not d for d, o in decided)
    n_us = sum(1 for c in cases if not c.other)
    n_other = len(cases) - n_us
    return {
        "cases": len(cases),
        "accuracy": round(sum(d == o for d, o in decided) / len(cases), 4),
        "us_declined": us_declined,
        "us_kept": round(1 - us_declined / n_us, 4) if n_us else None,
        "other_answered": other_answered,
        "other_declined": round(1 - other_answered / n_other, 4) if n_other else None,
        "cost": us_declined * US_DECLINED_COST + other_answered,
        "threshold": model.threshold,
    }


def load_model(cases_path: Path = DEV_CASES) -> AboutUsModel:
    """Fit the model on the dev cases with the bundled encoder (a few seconds)."""
    from kb_index import default_encoder

    return AboutUsModel.fit(default_encoder(None), load_cases(cases_path), policy_phrasings())


def main(argv: list[str] | None = None) -> int:
    top = argparse.ArgumentParser(prog="python -m bot.about_us")
    commands = top.add_subparsers(dest="command", required=True)
    ev = commands.add_parser("eval", help="fit on the dev cases, score labelled cases")
    ev.add_argument("--cases", type=Path, default=ROOT / "data" / "about_us" / "test.jsonl")
    ev.add_argument("-v", "--verbose", action="store_true", help="print every case decided wrongly")
    score = commands.add_parser("score", help="score one question")
    score.add_argument("question")
    args = top.parse_args(argv)
    try:
        model = load_model()
        if args.command == "score":
            print(json.dumps({"p_other": round(model.score(args.question), 4), "about_other": model.about_other(args.question)}))
            return 0
        cases = load_cases(args.cases)
        if args.verbose:
            for c in cases:
                p = model.score(c.text)
                if (p >= model.threshold) != c.other:
                    print(f"[{'other' if c.other else 'us'} read as {'us' if c.other else 'other'}] {p:.3f} {c.text}")
        print(json.dumps(evaluate(model, cases)))
    except CasesError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
