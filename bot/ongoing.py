"""Is the problem in the message happening now?

An urgent ticket helps a problem that is going on while the customer writes. The triage's
problem-or-question head (bot/triage.py) reads the words of a problem, and its threshold
is set low for recall, so a question about a problem that is over got "I'm sorry, that
sounds urgent. I'd rate this Critical" in the conversation holdout: "Last month Makana was
down for about half a day … Do you reimburse that sort of loss?", "Your outage last Friday
meant our shop couldn't run invoices … Is Makana going to compensate us?", "last time
makana had a hiccup … where do you post live updates?". What tells them apart is when the
problem happens, which this check reads by meaning.

The model: the bundled MiniLM encoder and a logistic regression, blended half and half
with a logistic regression on character n-grams (bot/blend.py, as bot/inquiry.py). Trained on
`data/ongoing/cases.jsonl` dev (written in stop 48 by a helper that read only the policy
and the knowledge base: current problems, some told in the past tense, against questions
about a problem that is over, hypothetical and planned situations, questions with alarming
words and calm questions) and on the triage's dev cases (problem reports are happening
now; questions are not).

Error costs: a problem going on now read as over costs `MISSED_COST` (5: an urgent problem
loses its ticket offer, though the answer and "did this help?" still lead to a person); a
question read as a current problem costs 1 (an offer nobody needed). The threshold is the
least cost on 5-fold out-of-fold scores of the dev cases. Below it, no urgent offer.

    python -m bot.ongoing eval [--split test]   # last line: JSON
    python -m bot.ongoing score "our outage last friday cost us sales, do you compensate?"
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from bot.blend import LEXICAL_WEIGHT, BlendedCheck
from bot.cases import CasesError, InvalidCase, read_cases

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "data" / "ongoing" / "cases.jsonl"
MISSED_COST = 5.0
THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 19))  # 0.05 … 0.9


@dataclass(frozen=True)
class Case:
    text: str
    ongoing: bool
    split: str = "dev"
    group: str = ""


def _case(raw: Any) -> Case:
    if not isinstance(raw.get("ongoing"), bool):
        raise InvalidCase("`ongoing` must be true or false")
    if raw.get("split") not in ("dev", "test"):
        raise InvalidCase("`split` must be dev or test")
    return Case(str(raw["text"]), raw["ongoing"], raw["split"], str(raw.get("group", "")))


def load_cases(path: str | Path = CASES, split: str | None = None) -> list[Case]:
    cases = [c for c in read_cases(path, _case) if split is None or c.split == split]
    if len({c.ongoing for c in cases}) < 2:
        raise CasesError(f"{path}: needs cases of both kinds")
    return cases


def triage_cases(path: str | Path) -> list[Case]:
    """The triage's labelled cases: a problem report is going on now, a question is not."""
    from bot.triage import load_cases as load_triage, problem_text

    return [Case(problem_text(c.description, c.impact), c.kind == "problem") for c in load_triage(path)]


def cost(scores: Sequence[float], gold: Sequence[bool], threshold: float) -> float:
    missed = sum(bool(s < threshold and g) for s, g in zip(scores, gold))
    unwanted = sum(bool(s >= threshold and not g) for s, g in zip(scores, gold))
    return MISSED_COST * missed + unwanted


class OngoingModel(BlendedCheck):
    """P(the message reports a problem that is happening now)."""

    @classmethod
    def fit(cls, encoder: Any, cases: Sequence[Case], lexical_weight: float = LEXICAL_WEIGHT) -> "OngoingModel":
        """Train on `cases`; the threshold of least cost on their 5-fold out-of-fold scores."""
        return cls.fit_blend(encoder, [], [(c.text, c.ongoing) for c in cases], _least_cost, lexical_weight)

    def p_ongoing(self, message: str) -> float:
        return self.probability(message)

    def ongoing(self, message: str) -> bool:
        return self.p_ongoing(message) >= self.threshold


def _least_cost(scores: Any, gold: Any) -> float:
    """Least cost; on a tie the lowest threshold (the fewest current problems lost)."""
    return min(THRESHOLDS, key=lambda t: (cost(scores, gold, t), t))


def evaluate(model: OngoingModel, cases: Sequence[Case]) -> dict[str, Any]:
    scores = [model.p_ongoing(c.text) for c in cases]
    gold = [c.ongoing for c in cases]
    return {
        "cases": len(cases),
        "ongoing": sum(gold),
        "ongoing_kept": sum(bool(s >= model.threshold and g) for s, g in zip(scores, gold)),
        "not_ongoing": len(gold) - sum(gold),
        "not_ongoing_caught": sum(bool(s < model.threshold and not g) for s, g in zip(scores, gold)),
        "cost": cost(scores, gold, model.threshold),
        "threshold": model.threshold,
    }


def training_cases(cases_path: Path = CASES, triage_path: Path | None = None) -> list[Case]:
    from bot.settings import Settings

    return [*load_cases(cases_path, "dev"), *triage_cases(triage_path or Settings.from_env().triage_cases)]


def load_model(cases_path: Path = CASES) -> OngoingModel:
    """Fit on the dev cases and the triage's dev cases with the bundled encoder (a few seconds)."""
    from kb_index import default_encoder

    return OngoingModel.fit(default_encoder(None), training_cases(cases_path))


def main(argv: list[str] | None = None) -> int:
    top = argparse.ArgumentParser(prog="python -m bot.ongoing", description=__doc__.split("\n\n")[0])
    commands = top.add_subparsers(dest="command", required=True)
    ev = commands.add_parser("eval", help="fit on the dev cases, score labelled cases")
    ev.add_argument("--cases", type=Path, default=CASES)
    ev.add_argument("--split", choices=("dev", "test"), default="test")
    ev.add_argument("--triage", type=Path, help="score a triage case file instead (problems are ongoing)")
    ev.add_argument("-v", "--verbose", action="store_true", help="list every case decided wrong on stderr")
    score = commands.add_parser("score", help="P(ongoing) of one message")
    score.add_argument("message")
    args = top.parse_args(argv)
    try:
        model = load_model()
        if args.command == "score":
            p = model.p_ongoing(args.message)
            print(json.dumps({"p_ongoing": round(p, 4), "ongoing": p >= model.threshold, "threshold": model.threshold}))
            return 0
        cases = triage_cases(args.triage) if args.triage else load_cases(args.cases, args.split)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.verbose:
        for case in cases:
            p = model.p_ongoing(case.text)
            if (p >= model.threshold) != case.ongoing:
                print(f"[ongoing={case.ongoing} p={p:.2f}] {case.text}", file=sys.stderr)
    print(json.dumps(evaluate(model, cases)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
