"""Route check: does a message Rasa sent to a journey really ask for that journey?

Rasa's NLU picks one of a few coarse intents, and five of them start a journey that is
not an answer: `book_call` (offer a call with the technical team), `check_ticket_status`
(ask for a ticket number), `bot_capabilities` (say what the assistant does), and
`cancel_call` / `move_call` (ask which ticket's call). When
Rasa picks one of them for a message that only shares its words ("share my Google
Calendar", "what can a viewer role do", "the best laptop"), the customer gets a journey
instead of an answer. Before such a journey starts, this model reads the message by
meaning and confirms the route; a message it does not confirm is answered like any other
question (and declined when it is not about Makana).

The model: the bundled MiniLM encoder, then a multinomial logistic regression over six
classes (the five routes and `other`), trained on
- Rasa's own NLU examples of the five intents (entity markup taken out) and of the
  other intents that mean questions (`ask_question`, `out_of_scope`, `request_human`),
- the knowledge base's phrasings as `other`, less those that are themselves a request for
  one of the routes (cosine ≥ `KB_OVERLAP` to one of its NLU examples: "can I get a video
  call with your engineers" is a phrasing of the channels entry),
- the labelled dev cases in `data/routes/dev.jsonl`.

A route is confirmed when the probability of its journey (the call's three routes count
together) reaches `threshold`. Error costs: sending a
question down a journey (a tax question gets "a call is booked for a Critical or High
ticket") is a wrong answer, cost 2; answering a real request as a question costs 1, since
the knowledge base's channels and ticket entries still say how to book a call or check a
ticket, and the customer loses one turn. The threshold minimises that cost on the dev
cases' 5-fold cross-validated scores.

    python -m bot.routes eval [--cases data/routes/test.jsonl]   # last line: JSON
    python -m bot.routes cv                                        # dev, 5-fold
    python -m bot.routes score "what can you do"
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from bot.cases import CasesError, InvalidCase, read_cases

ROOT = Path(__file__).resolve().parent.parent
DEV_CASES = ROOT / "data" / "routes" / "dev.jsonl"
NLU_DIR = ROOT / "data" / "nlu"
KB_DIR = ROOT / "data" / "faq"
ROUTES = ("book_call", "check_ticket_status", "bot_capabilities", "cancel_call", "move_call")
CLASSES = ROUTES + ("other",)
# Routes of one journey: Rasa telling "move my call" from "cancel my call" is not checked
# here (both actions ask which ticket's call), only that the message is about the call.
JOURNEYS = {"call": ("book_call", "cancel_call", "move_call"), "status": ("check_ticket_status",), "about": ("bot_capabilities",)}
JOURNEY_OF = {route: name for name, routes in JOURNEYS.items() for route in routes}
OTHER_INTENTS = ("ask_question", "out_of_scope", "request_human")
KB_OVERLAP = 0.75
CASE_WEIGHT = 3.0  # a labelled case counts as three NLU examples (5-fold CV on dev: cost 10 → 8)
COST_WRONG_JOURNEY = 2.0
COST_MISSED_ROUTE = 1.0
_CLAUSE = re.compile(r"[.!?;,]\s+|\n+")
_ENTITY = re.compile(r"\[([^\]]+)\]\([^)]+\)|\[([^\]]+)\]\{[^}]+\}")


@dataclass(frozen=True)
class Case:
    text: str
    route: str


def _case(raw: Any) -> Case:
    case = Case(str(raw["text"]), str(raw["route"]))
    if case.route not in CLASSES:
        raise InvalidCase(f"route {case.route!r} is not one of {', '.join(CLASSES)}")
    return case


def load_cases(path: str | Path) -> list[Case]:
    cases = read_cases(path, _case)
    if not cases:
        raise CasesError(f"{path}: no cases")
    return cases


def clauses(message: str) -> list[str]:
    """The message, and its clauses of three words or more when it has several."""
    parts = [p.strip() for p in _CLAUSE.split(message) if len(re.findall(r"[\w'’]+", p)) >= 3]
    return [message] + parts if len(parts) > 1 else [message]


def nlu_examples(folder: Path = NLU_DIR) -> dict[str, list[str]]:
    """Rasa's NLU examples by intent, with entity markup turned back into plain text."""
    import yaml

    examples: dict[str, list[str]] = {}
    for path in sorted(folder.glob("*.yml")):
        for item in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu", []) or []:
            if not isinstance(item, dict) or "intent" not in item:
                continue
            lines = str(item.get("examples") or "").splitlines()
            texts = [_ENTITY.sub(lambda m: m.group(1) or m.group(2), ln.strip()[2:]) for ln in lines if ln.strip().startswith("- ")]
            examples.setdefault(str(item["intent"]), []).extend(t for t in texts if t)
    return examples


def training_set(encoder: Any, cases: Sequence[Case], kb_dir: Path = KB_DIR) -> tuple[Any, Any]:
    """(vectors, labels) from the NLU examples, the knowledge base's phrasings and `cases` (last)."""
    import numpy as np

    from kb_index.knowledge import load_kb_yaml

    nlu = nlu_examples()
    texts: list[str] = []
    labels: list[str] = []
    for route in ROUTES:
        texts += nlu.get(route, [])
        labels += [route] * len(nlu.get(route, []))
    for intent in OTHER_INTENTS:
        texts += nlu.get(intent, [])
        labels += ["other"] * len(nlu.get(intent, []))
    kb = [q for entry in load_kb_yaml(kb_dir) for q in entry.questions] if kb_dir.is_dir() else []
    x_routes = encoder.encode(texts) if texts else np.zeros((0, 384))
    if kb:
        x_kb = encoder.encode(kb)
        route_rows = np.array([label in ROUTES for label in labels])
        overlap = (x_kb @ x_routes[route_rows].T).max(axis=1) if route_rows.any() else np.zeros(len(kb))
        keep = overlap < KB_OVERLAP
        x_routes = np.vstack([x_routes, x_kb[keep]])
        labels += ["other"] * int(keep.sum())
    if cases:
        x_routes = np.vstack([x_routes, encoder.encode([c.text for c in cases])])
        labels += [c.route for c in cases]
    return x_routes, np.array(labels)


def _head() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=8.0, class_weight="balanced", max_iter=3000)


def journey_scores(row: Any) -> dict[str, float]:
    """Probabilities per journey from one row of route probabilities (columns in ROUTES order)."""
    return {name: float(sum(row[ROUTES.index(r)] for r in routes)) for name, routes in JOURNEYS.items()}


def cost_of(scores: Sequence[dict[str, float]], gold: Sequence[str], threshold: float) -> tuple[float, dict[str, int]]:
    """The error cost of `threshold` when each case is checked against every journey;
    `scores` holds each case's journey probabilities (`journey_scores`, `RouteModel.journeys`).

    Rasa may send any message to any route, so a case is checked against each journey: a
    confirmed journey that is not the case's own is a wrong journey; the case's own
    journey not confirmed is a missed route.
    """
    wrong = missed = 0
    for journeys, route in zip(scores, gold):
        own = JOURNEY_OF.get(route)
        for name, score in journeys.items():
            confirmed = score >= threshold
            if name == own and not confirmed:
                missed += 1
            elif name != own and confirmed:
                wrong += 1
    return COST_WRONG_JOURNEY * wrong + COST_MISSED_ROUTE * missed, {"wrong_journey": wrong, "missed_route": missed}


class RouteModel:
    def __init__(self, encoder: Any, head: Any, threshold: float) -> None:
        self._encoder = encoder
        self._head = head
        self.threshold = threshold

    @classmethod
    def fit(cls, encoder: Any, cases: Sequence[Case], kb_dir: Path = KB_DIR) -> "RouteModel":
        """Train on the NLU examples, the knowledge base and `cases`; the threshold from 5-fold CV on `cases`."""
        import numpy as np

        base_x, base_y = training_set(encoder, [], kb_dir)
        threshold = choose_threshold(cross_validated(encoder, base_x, base_y, cases), cases) if cases else 0.5
        x, y = training_set(encoder, cases, kb_dir)
        weights = np.concatenate([np.ones(len(base_y)), np.full(len(cases), CASE_WEIGHT)])
        return cls(encoder, _head().fit(x, y, sample_weight=weights), threshold)

    def probabilities(self, message: str) -> dict[str, float]:
        """Each class's probability: the highest over the message and its clauses, so that
        "…not a single till takes cards, get me a call with your engineers" asks for a call."""
        rows = self._rows(message)
        return {label: float(rows[:, k].max()) for k, label in enumerate(self._head.classes_)}

    def _rows(self, message: str) -> Any:
        return self._head.predict_proba(self._encoder.encode(clauses(message)))

    def journeys(self, message: str) -> dict[str, float]:
        """Each journey's probability: its routes summed within a clause, the best clause."""
        classes = list(self._head.classes_)
        per_clause = [journey_scores(row) for row in self._rows(message)[:, [classes.index(r) for r in ROUTES]]]
        return {name: max(scores[name] for scores in per_clause) for name in JOURNEYS}

    def confirms(self, route: str, message: str) -> bool:
        """Whether `message` asks for `route` (one of ROUTES)."""
        if route not in ROUTES:
            raise ValueError(f"unknown route {route!r}")
        if message.startswith("/"):
            return True  # a button's payload names the route itself
        return self.journeys(message)[JOURNEY_OF[route]] >= self.threshold


def cross_validated(encoder: Any, base_x: Any, base_y: Any, cases: Sequence[Case], folds: int = 5) -> Any:
    """Out-of-fold route probabilities (columns in ROUTES order) for `cases`."""
    import numpy as np

    x_cases = encoder.encode([c.text for c in cases])
    y_cases = np.array([c.route for c in cases])
    out = np.zeros((len(cases), len(ROUTES)))
    order = np.arange(len(cases))
    for fold in range(folds):
        test = order % folds == fold
        weights = np.concatenate([np.ones(len(base_y)), np.full(int((~test).sum()), CASE_WEIGHT)])
        head = _head().fit(
            np.vstack([base_x, x_cases[~test]]), np.concatenate([base_y, y_cases[~test]]), sample_weight=weights
        )
        proba = head.predict_proba(x_cases[test])
        columns = [list(head.classes_).index(r) for r in ROUTES]
        out[test] = proba[:, columns]
    return out


def choose_threshold(rows: Any, cases: Sequence[Case]) -> float:
    """The threshold of least cost on out-of-fold route probabilities `rows` (ties: nearest 0.5)."""
    scores = [journey_scores(row) for row in rows]
    gold = [c.route for c in cases]
    grid = [round(0.2 + 0.025 * i, 3) for i in range(29)]  # 0.2 … 0.9
    return min(grid, key=lambda t: (cost_of(scores, gold, t)[0], abs(t - 0.5)))


def evaluate(model: RouteModel, cases: Sequence[Case]) -> dict[str, Any]:
    scored = [model.journeys(c.text) for c in cases]
    gold = [c.route for c in cases]
    cost, errors = cost_of(scored, gold, model.threshold)
    per_journey = {}
    for name in JOURNEYS:
        confirmed = [s[name] >= model.threshold for s in scored]
        positives = [ok for ok, g in zip(confirmed, gold) if JOURNEY_OF.get(g) == name]
        others = [ok for ok, g in zip(confirmed, gold) if JOURNEY_OF.get(g) != name]
        per_journey[name] = {
            "cases": len(positives),
            "recall": round(sum(positives) / len(positives), 4) if positives else None,
            "wrongly_confirmed": int(sum(others)),
        }
    return {"cases": len(cases), "threshold": model.threshold, "cost": cost, **errors, "journeys": per_journey}


def load_model(cases_path: Path = DEV_CASES) -> RouteModel:
    from kb_index import default_encoder

    return RouteModel.fit(default_encoder(None), load_cases(cases_path))


def main(argv: list[str] | None = None) -> int:
    top = argparse.ArgumentParser(prog="python -m bot.routes")
    commands = top.add_subparsers(dest="command", required=True)
    ev = commands.add_parser("eval", help="fit on the dev cases, score labelled cases")
    ev.add_argument("--cases", type=Path, default=ROOT / "data" / "routes" / "test.jsonl")
    ev.add_argument("-v", "--verbose", action="store_true", help="list the errors")
    commands.add_parser("cv", help="5-fold cross-validation on the dev cases")
    score = commands.add_parser("score", help="route probabilities of one message")
    score.add_argument("message")
    args = top.parse_args(argv)
    try:
        if args.command == "cv":
            import numpy as np

            from kb_index import default_encoder

            encoder = default_encoder(None)
            cases = load_cases(DEV_CASES)
            base_x, base_y = training_set(encoder, [])
            rows = cross_validated(encoder, base_x, base_y, cases)
            scores = [journey_scores(row) for row in rows]
            gold = [c.route for c in cases]
            for t in (0.3, 0.4, 0.5, 0.6, 0.7):
                cost, errors = cost_of(scores, gold, t)
                print(f"threshold {t:.2f}: cost {cost:.0f} {errors}", file=sys.stderr)
            chosen = choose_threshold(rows, cases)
            cost, errors = cost_of(scores, gold, chosen)
            print(json.dumps({"cases": len(cases), "threshold": chosen, "cost": cost, **errors,
                              "mean_top": round(float(np.max(rows, axis=1).mean()), 4)}))
            return 0
        model = load_model()
        if args.command == "score":
            probs = model.probabilities(args.message)
            print(json.dumps({k: round(v, 4) for k, v in probs.items()} | {"threshold": model.threshold}))
            return 0
        cases = load_cases(args.cases)
        if args.verbose:
            for c in cases:
                scores = model.journeys(c.text)
                confirmed = [name for name, p in scores.items() if p >= model.threshold]
                if confirmed != ([JOURNEY_OF[c.route]] if c.route in ROUTES else []):
                    print(f"[{c.route}] {c.text!r} confirmed={confirmed} "
                          + " ".join(f"{n}={p:.2f}" for n, p in scores.items()), file=sys.stderr)
        print(json.dumps(evaluate(model, cases)))
    except CasesError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
