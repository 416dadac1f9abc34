"""High or Medium: does work go on?

The policy's High is "an important feature is broken for many users or blocks daily work,
and there is no reasonable workaround"; its Medium is "a feature does not work as
documented for some users, but there is a workaround and work can continue". The triage's
severity heads (bot/triage.py) read the words of a problem and over-rate on purpose, and
a report that says how work goes on was rated High on the triage's held-out files ("The
single sign-on configuration fails for a couple of users … They log in with their password
meanwhile.", "Customer statements fail to email for some customers, but downloading and
sending them myself works") and in the conversation holdout (email receipts failing on two
of three iPads while staff hand out printed ones: told four hours, and offered an urgent
ticket). This check reads that one difference, by meaning: is it some users, or does work
go on another reasonable way (Medium), or are many blocked with nothing reasonable to do
(High)? A stopgap nobody can keep up ("we're keying 300 orders by hand") is no workaround.

The model: the bundled encoder and a logistic regression, blended half and half with a
logistic regression on character n-grams (bot/blend.py). Trained on
`data/severity_boundary/cases.jsonl` dev (written in stop 49 by a helper that read only
the policy and the knowledge base) and on the triage's dev reports labelled High or
Medium. The triage asks it only about a report its heads rate High.

Error costs: a High report read as Medium costs `DEMOTED_COST` (3: a blocked team is told
nine business hours instead of four and gets no urgent ticket); a Medium report left at
High costs 1 (an over-rating: an earlier deadline and an urgent offer nobody needed). The
threshold is the least cost on 5-fold out-of-fold probabilities of the training cases (on a
tie, the highest: the fewest High reports lowered).

    python -m bot.severity_boundary eval [--split test] [-v]   # last line: JSON
    python -m bot.severity_boundary score "two of our five users can't export, the others do it for them"
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from bot.blend import BlendedCheck
from bot.cases import CasesError, InvalidCase, read_cases

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "data" / "severity_boundary" / "cases.jsonl"
LABELS = ("high", "medium")
DEMOTED_COST = 3.0
THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(4, 20))  # 0.2 … 0.95


@dataclass(frozen=True)
class Case:
    text: str
    medium: bool
    split: str = "dev"
    group: str = ""


def _case(raw: Any) -> Case:
    if raw.get("severity") not in LABELS:
        raise InvalidCase(f"`severity` must be one of {', '.join(LABELS)}")
    if raw.get("split") not in ("dev", "test"):
        raise InvalidCase("`split` must be dev or test")
    return Case(str(raw["text"]), raw["severity"] == "medium", raw["split"], str(raw.get("group", "")))


def load_cases(path: str | Path = CASES, split: str | None = None) -> list[Case]:
    cases = [c for c in read_cases(path, _case) if split is None or c.split == split]
    if len({c.medium for c in cases}) < 2:
        raise CasesError(f"{path}: needs cases of both severities")
    return cases


def triage_cases(cases: Sequence[Any]) -> list[Case]:
    """The triage's reports labelled High or Medium (bot.triage cases)."""
    from bot.triage import problem_text

    return [
        Case(problem_text(c.description, c.impact), c.severity == "medium")
        for c in cases if c.kind == "problem" and c.severity in LABELS
    ]


def cost(scores: Sequence[float], gold: Sequence[bool], threshold: float) -> float:
    demoted = sum(bool(s >= threshold and not g) for s, g in zip(scores, gold))
    left = sum(bool(s < threshold and g) for s, g in zip(scores, gold))
    return DEMOTED_COST * demoted + left


def _least_cost(scores: Any, gold: Any) -> float:
    """Least cost; on a tie the highest threshold (the fewest High reports lowered)."""
    return min(THRESHOLDS, key=lambda t: (cost(scores, gold, t), -t))


class BoundaryModel(BlendedCheck):
    """P(a report rated High is Medium: some users, or work goes on another way)."""

    @classmethod
    def fit(cls, encoder: Any, cases: Sequence[Case]) -> "BoundaryModel":
        return cls.fit_blend(encoder, [], [(c.text, c.medium) for c in cases], _least_cost)

    def p_medium(self, message: str) -> float:
        return self.probability(message)

    def medium(self, texts: Sequence[str]) -> list[bool]:
        """Whether each report is Medium (its probability reaches the threshold)."""
        return [self.probability(t) >= self.threshold for t in texts]


def evaluate(model: BoundaryModel, cases: Sequence[Case]) -> dict[str, Any]:
    scores = [model.p_medium(c.text) for c in cases]
    gold = [c.medium for c in cases]
    return {
        "cases": len(cases),
        "high": len(gold) - sum(gold),
        "high_lowered": sum(bool(s >= model.threshold and not g) for s, g in zip(scores, gold)),
        "medium": sum(gold),
        "medium_caught": sum(bool(s >= model.threshold and g) for s, g in zip(scores, gold)),
        "cost": cost(scores, gold, model.threshold),
        "threshold": model.threshold,
    }


def training_cases(triage: Sequence[Any], path: str | Path = CASES) -> list[Case]:
    """The dev cases and the triage's High and Medium training reports."""
    return [*load_cases(path, "dev"), *triage_cases(triage)]


def default_model(triage: Sequence[Any], encoder: Any = None) -> BoundaryModel:
    """Fitted on the dev cases and the triage's cases (`triage`, bot.triage cases), over
    `encoder` (the triage's; the bundled one when None). A few seconds."""
    if encoder is None:
        from kb_index import default_encoder

        encoder = default_encoder(None)
    return BoundaryModel.fit(encoder, training_cases(triage))


def main(argv: list[str] | None = None) -> int:
    top = argparse.ArgumentParser(prog="python -m bot.severity_boundary", description=__doc__.split("\n\n")[0])
    commands = top.add_subparsers(dest="command", required=True)
    ev = commands.add_parser("eval", help="fit on the dev cases, score labelled cases")
    ev.add_argument("--cases", type=Path, default=CASES)
    ev.add_argument("--split", choices=("dev", "test"), default="test")
    ev.add_argument("-v", "--verbose", action="store_true", help="list every case decided wrong on stderr")
    score = commands.add_parser("score", help="P(Medium) of one report rated High")
    score.add_argument("message")
    args = top.parse_args(argv)
    from bot.settings import Settings
    from bot.triage import load_cases as load_triage

    try:
        print("fitting on the dev cases and the triage's High and Medium reports…", file=sys.stderr)
        model = default_model(load_triage(Settings.from_env().triage_cases))
        if args.command == "score":
            p = model.p_medium(args.message)
            print(json.dumps({"p_medium": round(p, 4), "medium": p >= model.threshold, "threshold": model.threshold}))
            return 0
        cases = load_cases(args.cases, args.split)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.verbose:
        for case in cases:
            p = model.p_medium(case.text)
            if (p >= model.threshold) != case.medium:
                print(f"[medium={case.medium} p={p:.2f}] {case.text}", file=sys.stderr)
    print(json.dumps(evaluate(model, cases)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
