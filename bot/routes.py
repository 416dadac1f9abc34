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

The person check. A sixth intent, `request_human`, opens the ticket form (a person from
the team takes the request). Rasa's NLU is wrong both ways here: "I want to stop my
makana subscription" and "how do I connect my airpods" came as `request_human` and got a
form, while "create a ticket for me", "hand me over to a colleague" and "please open a
ticket for this" came as other intents and got an article or "did you mean". So a second
head, a binary logistic regression on the same encoder, reads "does this ask for a person
or a ticket?": trained on Rasa's `request_human` examples (positive), the question
intents' examples and the knowledge base's phrasings (negative, less the phrasings within
`KB_OVERLAP` of a person request), and the labelled cases (`request_human` positive; call
cases left out, since asking for an engineer's call is asking for a person too). Its
threshold minimises the same costs on its own 5-fold cross-validated scores: a question
sent to the ticket form is a wrong journey (2), a request for a person answered as a
question is a missed route (1; the people-first offer and the "talk to a person" button
are still there).

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
# The person check's own labelled requests and lookalike questions (it also reads the
# journeys' cases, less the call's, as questions); the journey head does not read them.
PERSON_DEV_CASES = ROOT / "data" / "routes" / "person_dev.jsonl"
NLU_DIR = ROOT / "data" / "nlu"
KB_DIR = ROOT / "data" / "faq"
ROUTES = ("book_call", "check_ticket_status", "bot_capabilities", "cancel_call", "move_call")
PERSON = "request_human"  # the person check's route: the ticket form, a person behind it
CHECKED = ROUTES + (PERSON,)  # the routes whose journey the customer's words must ask for
CLASSES = CHECKED + ("other",)
CALL_ROUTES = ("book_call", "cancel_call", "move_call")
# Routes of one journey: Rasa telling "move my call" from "cancel my call" is not checked
# here (both actions ask which ticket's call), only that the message is about the call.
JOURNEYS = {
    "call": CALL_ROUTES,
    "status": ("check_ticket_status",),
    "about": ("bot_capabilities",),
    "person": (PERSON,),
}
JOURNEY_OF = {route: name for name, routes in JOURNEYS.items() for route in routes}
OTHER_INTENTS = ("ask_question", "out_of_scope", PERSON)
PERSON_NEGATIVE_INTENTS = ("ask_question", "out_of_scope")
KB_OVERLAP = 0.75
CASE_WEIGHT = 3.0  # a labelled case counts as three NLU examples (5-fold CV on dev: cost 10 → 8)
COST_WRONG_JOURNEY = 2.0
COST_MISSED_ROUTE = 1.0
# When Rasa heard a request for a person, the person check answers the message instead only
# below the score that keeps this share of dev's requests (out of fold): a person asked
# for and refused costs more than a question that gets the form (which says "cancel").
TARGET_RECALL = 0.9
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


@dataclass(frozen=True)
class Task:
    """What one head reads: its routes (columns), its journeys, the intents it learns as
    `other`, and the labelled cases it leaves out."""

    routes: tuple[str, ...]
    other_intents: tuple[str, ...]
    leaves_out: tuple[str, ...] = ()

    @property
    def journeys(self) -> dict[str, tuple[str, ...]]:
        return {name: routes for name, routes in JOURNEYS.items() if set(routes) <= set(self.routes)}

    def cases(self, cases: Sequence[Case]) -> list[Case]:
        """The labelled cases it learns from, a route it does not have read as `other`."""
        return [
            c if c.route in self.routes else Case(c.text, "other") for c in cases if c.route not in self.leaves_out
        ]


# The journey head: the five routes; a person request is none of them (and is left out of
# its cases, as before the person check existed). The person head: one route; a call
# request is left out (asking for an engineer's call is asking for a person too).
JOURNEY_TASK = Task(ROUTES, OTHER_INTENTS, leaves_out=(PERSON,))
PERSON_TASK = Task((PERSON,), PERSON_NEGATIVE_INTENTS, leaves_out=CALL_ROUTES)


def training_set(
    encoder: Any, cases: Sequence[Case], kb_dir: Path = KB_DIR, task: Task = JOURNEY_TASK
) -> tuple[Any, Any]:
    """(vectors, labels) from the NLU examples, the knowledge base's phrasings and `cases` (last)."""
    import numpy as np

    from kb_index.knowledge import load_kb_yaml

    nlu = nlu_examples()
    texts: list[str] = []
    labels: list[str] = []
    for route in task.routes:
        texts += nlu.get(route, [])
        labels += [route] * len(nlu.get(route, []))
    for intent in task.other_intents:
        texts += nlu.get(intent, [])
        labels += ["other"] * len(nlu.get(intent, []))
    kb = [q for entry in load_kb_yaml(kb_dir) for q in entry.questions] if kb_dir.is_dir() else []
    x_routes = encoder.encode(texts) if texts else np.zeros((0, 384))
    if kb:
        x_kb = encoder.encode(kb)
        route_rows = np.array([label in task.routes for label in labels])
        overlap = (x_kb @ x_routes[route_rows].T).max(axis=1) if route_rows.any() else np.zeros(len(kb))
        keep = overlap < KB_OVERLAP
        x_routes = np.vstack([x_routes, x_kb[keep]])
        labels += ["other"] * int(keep.sum())
    cases = task.cases(cases)
    if cases:
        x_routes = np.vstack([x_routes, encoder.encode([c.text for c in cases])])
        labels += [c.route for c in cases]
    return x_routes, np.array(labels)


def _head() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=8.0, class_weight="balanced", max_iter=3000)


def journey_scores(row: Any, task: Task = JOURNEY_TASK) -> dict[str, float]:
    """Probabilities per journey from one row of route probabilities (columns in the task's route order)."""
    return {name: float(sum(row[task.routes.index(r)] for r in routes)) for name, routes in task.journeys.items()}


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


@dataclass
class Head:
    """One fitted head of a task: its classifier, its threshold (least cost on dev's
    out-of-fold scores) and its floor (the highest threshold that keeps `TARGET_RECALL` of
    dev's requests, out of fold)."""

    task: Task
    classifier: Any
    threshold: float
    floor: float

    @classmethod
    def fit(cls, encoder: Any, cases: Sequence[Case], task: Task, kb_dir: Path = KB_DIR) -> "Head":
        """Train on the NLU examples, the knowledge base and `cases`; the thresholds from 5-fold CV on `cases`."""
        import numpy as np

        own, (base_x, base_y), rows = out_of_fold(encoder, cases, task, kb_dir)
        threshold = floor = 0.5
        x, y = base_x, base_y
        if own:
            threshold, floor = choose_threshold(rows, own, task), recall_floor(rows, own, task)
            x = np.vstack([base_x, encoder.encode([c.text for c in own])])
            y = np.concatenate([base_y, [c.route for c in own]])
        weights = np.concatenate([np.ones(len(base_y)), np.full(len(own), CASE_WEIGHT)])
        return cls(task, _head().fit(x, y, sample_weight=weights), threshold, floor)

    def journeys(self, vectors: Any) -> dict[str, float]:
        """Each journey's probability: its routes summed within a clause (a row of
        `vectors`), the best clause."""
        classes = list(self.classifier.classes_)
        rows = self.classifier.predict_proba(vectors)[:, [classes.index(r) for r in self.task.routes]]
        per_clause = [journey_scores(row, self.task) for row in rows]
        return {name: max(scores[name] for scores in per_clause) for name in self.task.journeys}


class RouteModel:
    """The journey head (call, ticket status, about the assistant) and the person head.

    The person head is read two ways. When Rasa heard a request for a person, the check
    only overrides it for a message that is clearly something else: below the head's
    floor ("I want to stop my makana subscription" scores 0.01). When Rasa heard anything
    else, a message starts the request form only above the head's least-cost threshold."""

    def __init__(self, encoder: Any, head: Head, person: Head) -> None:
        self._encoder = encoder
        self._head = head
        self._person = person

    @property
    def threshold(self) -> float:
        return self._head.threshold

    @property
    def person_threshold(self) -> float:
        return self._person.threshold

    @property
    def person_floor(self) -> float:
        return self._person.floor

    @classmethod
    def fit(
        cls, encoder: Any, cases: Sequence[Case], person_cases: Sequence[Case] = (), kb_dir: Path = KB_DIR
    ) -> "RouteModel":
        return cls(
            encoder,
            Head.fit(encoder, cases, JOURNEY_TASK, kb_dir),
            Head.fit(encoder, [*cases, *person_cases], PERSON_TASK, kb_dir),
        )

    def _vectors(self, message: str) -> Any:
        return self._encoder.encode(clauses(message))

    def probabilities(self, message: str) -> dict[str, float]:
        """Each class's probability: the highest over the message and its clauses, so that
        "…not a single till takes cards, get me a call with your engineers" asks for a call."""
        vectors = self._vectors(message)
        rows = self._head.classifier.predict_proba(vectors)
        found = {label: float(rows[:, k].max()) for k, label in enumerate(self._head.classifier.classes_)}
        return found | {PERSON: self.journeys(message, vectors)["person"]}

    def journeys(self, message: str, vectors: Any = None) -> dict[str, float]:
        """Each journey's probability (the person journey from the person head)."""
        vectors = self._vectors(message) if vectors is None else vectors
        return self._head.journeys(vectors) | self._person.journeys(vectors)

    def confirms(self, route: str, message: str) -> bool:
        """Whether `message`, which Rasa sent to `route` (one of CHECKED), asks for it."""
        if route not in CHECKED:
            raise ValueError(f"unknown route {route!r}")
        if message.startswith("/"):
            return True  # a button's payload names the route itself
        if route == PERSON:
            return self._person.journeys(self._vectors(message))["person"] >= self._person.floor
        return self._head.journeys(self._vectors(message))[JOURNEY_OF[route]] >= self._head.threshold

    def asks_for_person(self, message: str) -> bool:
        """Whether `message`, which Rasa sent elsewhere, asks for a person or a ticket."""
        return self._person.journeys(self._vectors(message))["person"] >= self._person.threshold

    def person_sentences(self, sentences: Sequence[str]) -> list[bool]:
        """For each sentence, read on its own, whether it asks for a person or a ticket (at
        the floor that keeps the requests: a request left in reads as part of the problem)."""
        if not sentences:
            return []
        rows = self._encoder.encode(list(sentences))
        return [self._person.journeys(rows[i:i + 1])["person"] >= self._person.floor for i in range(len(sentences))]


def out_of_fold(
    encoder: Any, cases: Sequence[Case], task: Task, kb_dir: Path = KB_DIR
) -> tuple[list[Case], tuple[Any, Any], Any]:
    """The labelled cases `task` reads, the training set without them (NLU examples and
    knowledge base), and the cases' out-of-fold route probabilities (5-fold; None without cases)."""
    own = task.cases(cases)
    base_x, base_y = training_set(encoder, [], kb_dir, task)
    return own, (base_x, base_y), cross_validated(encoder, base_x, base_y, own, task) if own else None


def cross_validated(encoder: Any, base_x: Any, base_y: Any, cases: Sequence[Case], task: Task = JOURNEY_TASK, folds: int = 5) -> Any:
    """Out-of-fold route probabilities (columns in the task's route order) for `cases`."""
    import numpy as np

    x_cases = encoder.encode([c.text for c in cases])
    y_cases = np.array([c.route for c in cases])
    out = np.zeros((len(cases), len(task.routes)))
    order = np.arange(len(cases))
    for fold in range(folds):
        test = order % folds == fold
        weights = np.concatenate([np.ones(len(base_y)), np.full(int((~test).sum()), CASE_WEIGHT)])
        head = _head().fit(
            np.vstack([base_x, x_cases[~test]]), np.concatenate([base_y, y_cases[~test]]), sample_weight=weights
        )
        proba = head.predict_proba(x_cases[test])
        columns = [list(head.classes_).index(r) for r in task.routes]
        out[test] = proba[:, columns]
    return out


def choose_threshold(rows: Any, cases: Sequence[Case], task: Task = JOURNEY_TASK) -> float:
    """The threshold of least cost on out-of-fold route probabilities `rows` (ties: nearest 0.5)."""
    scores = [journey_scores(row, task) for row in rows]
    gold = [c.route for c in cases]
    grid = [round(0.2 + 0.025 * i, 3) for i in range(29)]  # 0.2 … 0.9
    return min(grid, key=lambda t: (cost_of(scores, gold, t)[0], abs(t - 0.5)))


def recall_floor(rows: Any, cases: Sequence[Case], task: Task) -> float:
    """The highest threshold (on the grid) at which the out-of-fold scores `rows` still
    confirm `TARGET_RECALL` of the cases that ask for one of the task's journeys."""
    scores = [journey_scores(row, task) for row in rows]
    own = [s[JOURNEY_OF[c.route]] for s, c in zip(scores, cases) if c.route in task.routes]
    grid = [round(0.025 * i, 3) for i in range(1, 37)]  # 0.025 … 0.9
    kept = [t for t in grid if own and sum(p >= t for p in own) >= TARGET_RECALL * len(own)]
    return max(kept) if kept else grid[0]


def evaluate(model: RouteModel, cases: Sequence[Case], person_cases: Sequence[Case] = ()) -> dict[str, Any]:
    """The journey head's cost and figures on `cases`; the person head's on `cases` (less the
    call's) and `person_cases`, at its threshold and at its floor."""
    scored = [model.journeys(c.text) for c in cases]
    per_journey: dict[str, Any] = {}
    wrong = missed = 0
    for name in JOURNEY_TASK.journeys:
        judged = [(s[name] >= model.threshold, c.route) for s, c in zip(scored, cases)]
        positives = [ok for ok, g in judged if JOURNEY_OF.get(g) == name]
        others = [ok for ok, g in judged if JOURNEY_OF.get(g) != name]
        per_journey[name] = {
            "cases": len(positives),
            "recall": round(sum(positives) / len(positives), 4) if positives else None,
            "wrongly_confirmed": int(sum(others)),
        }
        wrong += int(sum(others))
        missed += len(positives) - int(sum(positives))
    person_read = PERSON_TASK.cases([*cases, *person_cases])
    person = [model.journeys(c.text)["person"] for c in person_read]
    asked = [p for p, c in zip(person, person_read) if c.route == PERSON]
    others = [p for p, c in zip(person, person_read) if c.route != PERSON]

    def share(values: list[bool]) -> float | None:
        return round(sum(values) / len(values), 4) if values else None

    return {
        "cases": len(cases), "threshold": model.threshold,
        "cost": COST_WRONG_JOURNEY * wrong + COST_MISSED_ROUTE * missed, "wrong_journey": wrong,
        "missed_route": missed, "journeys": per_journey,
        "person": {
            "cases": len(person_read), "requests": len(asked),
            # Rasa heard something else: the form starts above the threshold.
            "threshold": model.person_threshold,
            "recall": share([p >= model.person_threshold for p in asked]),
            "questions_sent_to_the_form": int(sum(p >= model.person_threshold for p in others)),
            # Rasa heard a person: the message is answered instead below the floor.
            "floor": model.person_floor,
            "requests_kept": share([p >= model.person_floor for p in asked]),
            "questions_answered": share([p < model.person_floor for p in others]),
        },
    }


def load_model(cases_path: Path = DEV_CASES, person_path: Path = PERSON_DEV_CASES) -> RouteModel:
    from kb_index import default_encoder

    return RouteModel.fit(default_encoder(None), load_cases(cases_path), load_cases(person_path))


def main(argv: list[str] | None = None) -> int:
    top = argparse.ArgumentParser(prog="python -m bot.routes")
    commands = top.add_subparsers(dest="command", required=True)
    ev = commands.add_parser("eval", help="fit on the dev cases, score labelled cases")
    ev.add_argument("--cases", type=Path, default=ROOT / "data" / "routes" / "test.jsonl")
    ev.add_argument("--person-cases", type=Path, default=ROOT / "data" / "routes" / "person_test.jsonl")
    ev.add_argument("-v", "--verbose", action="store_true", help="list the errors")
    commands.add_parser("cv", help="5-fold cross-validation on the dev cases")
    score = commands.add_parser("score", help="route probabilities of one message")
    score.add_argument("message")
    args = top.parse_args(argv)
    try:
        if args.command == "cv":
            from kb_index import default_encoder

            encoder = default_encoder(None)
            cases = load_cases(DEV_CASES)
            person_cases = load_cases(PERSON_DEV_CASES)
            figures = {}
            for name, task, read in (("journeys", JOURNEY_TASK, cases), ("person", PERSON_TASK, [*cases, *person_cases])):
                own, _, rows = out_of_fold(encoder, read, task)
                scores = [journey_scores(row, task) for row in rows]
                gold = [c.route for c in own]
                for t in (0.3, 0.4, 0.5, 0.6, 0.7):
                    cost, errors = cost_of(scores, gold, t)
                    print(f"{name}, threshold {t:.2f}: cost {cost:.0f} {errors}", file=sys.stderr)
                chosen = choose_threshold(rows, own, task)
                cost, errors = cost_of(scores, gold, chosen)
                figures[name] = {"cases": len(own), "threshold": chosen, "cost": cost, **errors}
                if task is PERSON_TASK:
                    figures[name]["floor"] = recall_floor(rows, own, task)
            print(json.dumps(figures))
            return 0
        model = load_model()
        if args.command == "score":
            probs = model.probabilities(args.message)
            print(json.dumps({k: round(v, 4) for k, v in probs.items()}
                             | {"threshold": model.threshold, "person_threshold": model.person_threshold}))
            return 0
        cases = load_cases(args.cases)
        person_cases = load_cases(args.person_cases)
        if args.verbose:
            for c in cases:
                scores = model.journeys(c.text)
                confirmed = [n for n in JOURNEY_TASK.journeys if scores[n] >= model.threshold]
                own = JOURNEY_OF.get(c.route) if c.route in ROUTES else None
                if confirmed != ([own] if own else []):
                    print(f"[{c.route}] {c.text!r} confirmed={confirmed} "
                          + " ".join(f"{n}={p:.2f}" for n, p in scores.items()), file=sys.stderr)
            for c in PERSON_TASK.cases([*cases, *person_cases]):
                p = model.journeys(c.text)["person"]
                if (c.route == PERSON) != (p >= model.person_threshold):
                    print(f"[{c.route}] {c.text!r} person={p:.2f}", file=sys.stderr)
        print(json.dumps(evaluate(model, cases, person_cases)))
    except CasesError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
