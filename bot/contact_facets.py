"""Which contact detail a message asks for: the phone, an email, the postal address, a channel.

"What's your number?" gets the phone line alone, "where do I report a phishing email?"
the security address, "does it matter which address I reply from?" the support email
(not the postal address), "how can I reach you?" every channel (no facet: the contact
section as a whole). The contact answer (bot/policy_answers.py) composes its sentences
from the facets chosen here.

The decision is by meaning. For each facet the message (and each of its questions) is
compared with a few descriptions of that facet, written from the policy
(`DESCRIPTIONS`, the bundled or adapted encoder, cosine); the facet's similarity, its
lead over the other facets, whether it is the nearest, and the word patterns of
`bot.policy_answers.facet_words` (evidence, not the decision) are the features of one
logistic regression shared by all facets, trained on `data/contact_facets` dev. A facet
is given when its probability reaches the threshold.

Error costs: a wrong detail (the postal address to someone who asked where to reply)
costs `WRONG_DETAIL_COST` (3), a detail left out costs 1 (when nothing is chosen the
whole section is shown, which holds it). The threshold minimises that cost on the dev
set's cross-validated probabilities.

    python -m bot.contact_facets eval --split dev|test   # last line: JSON
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from bot.cases import InvalidCase, read_cases
from bot.cost_threshold import least_cost_threshold, logistic_head

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "data" / "contact_facets" / "cases.jsonl"
FACETS = ("phone", "email", "billing", "security", "address", "chat", "in_app", "meet")
WRONG_DETAIL_COST = 3.0

# What each facet is, in a customer's terms, written from the policy's contact and
# channels sections (not from the labelled cases).
DESCRIPTIONS = {
    "phone": ("what is your support phone number", "can I call you and talk to someone by voice"),
    "email": ("what is your support email address", "where do I email my question or send a file"),
    "billing": ("who do I ask about a charge, invoice or payment for my Makana subscription", "billing email address"),
    "security": ("where do I report a security vulnerability or a hacked account", "security email for a breach or phishing"),
    "address": ("what is your postal address", "where is your office located, where do I mail a letter"),
    "chat": ("is there a live chat on your website", "can I chat with an agent on makana.example"),
    "in_app": ("can I contact support from inside the Makana app", "the help pane in Makana Books or the POS"),
    "meet": ("can we have a video call with your technical team on Google Meet", "screen share with an engineer"),
}


@dataclass(frozen=True)
class Case:
    text: str
    facets: tuple[str, ...]
    split: str


def load_cases(path: str | Path = CASES, split: str | None = None) -> list[Case]:
    def parse(raw: dict) -> Case:
        facets = tuple(raw["facets"])
        unknown = [f for f in facets if f not in FACETS]
        if unknown:
            raise InvalidCase(f"unknown facet {unknown[0]!r}; known: {', '.join(FACETS)}")
        if raw["split"] not in ("dev", "test"):
            raise InvalidCase("`split` must be dev or test")
        return Case(str(raw["text"]), facets, raw["split"])

    cases = read_cases(path, parse)
    return [c for c in cases if split is None or c.split == split]


class FacetChooser:
    """Features per (message, facet) → one logistic regression → the facets above the threshold."""

    def __init__(self, encoder: Any, head: Any = None, threshold: float = 0.5) -> None:
        import numpy as np

        self._encoder = encoder
        self._head = head
        self.threshold = threshold
        self._descriptions = [np.asarray(encoder.encode(list(DESCRIPTIONS[f]))) for f in FACETS]

    def features(self, message: str) -> Any:
        """One row per facet: similarity (best over the message and its questions), the
        whole message's similarity, the lead over the best other facet, nearest or not,
        the word patterns' vote for the facet and how many facets they name."""
        import numpy as np

        from bot.faq import questions_in
        from bot.policy_answers import facet_words

        parts = [message, *[p for p in questions_in(message) if p != message]]
        vectors = np.asarray(self._encoder.encode(parts))
        # parts × facets: each part's similarity to each facet (its nearest description).
        sims = np.stack([(vectors @ d.T).max(axis=1) for d in self._descriptions], axis=1)
        best, whole = sims.max(axis=0), sims[0]
        lead = _leads(best[None])[0]
        # A facet's lead in the part that leans to it most: in "what's the phone number,
        # and is there a way to message you from within the till app?" each facet leads
        # in its own question, though only one leads over the whole message.
        part_lead = _leads(sims)[1:].max(axis=0) if len(parts) > 1 else _leads(sims)[0]
        words = facet_words(message)
        rows = []
        for i, facet in enumerate(FACETS):
            rows.append([
                best[i], whole[i], lead[i], float(best[i] >= best.max()), float(facet in words), float(len(words)),
                float(part_lead[i]),
            ])
        return np.array(rows)

    def probabilities(self, message: str) -> dict[str, float]:
        p = self._head.predict_proba(self.features(message))[:, 1]
        return {facet: float(v) for facet, v in zip(FACETS, p)}

    def choose(self, message: str) -> list[str]:
        """The facets asked, most probable first ([] for the whole section)."""
        p = self.probabilities(message)
        return [f for f in sorted(FACETS, key=lambda f: -p[f]) if p[f] >= self.threshold]

    @classmethod
    def fit(cls, encoder: Any, cases: Sequence[Case]) -> "FacetChooser":
        """Train on `cases`; the threshold from 5-fold cross-validated probabilities."""
        import numpy as np
        from sklearn.model_selection import KFold

        chooser = cls(encoder)
        x = np.stack([chooser.features(c.text) for c in cases])  # cases × facets × features
        y = np.array([[f in c.facets for f in FACETS] for c in cases])
        oof = np.zeros(y.shape)
        for train, held in KFold(5, shuffle=True, random_state=0).split(x):
            head = logistic_head().fit(x[train].reshape(-1, x.shape[2]), y[train].ravel())
            oof[held] = head.predict_proba(x[held].reshape(-1, x.shape[2]))[:, 1].reshape(len(held), -1)
        chooser.threshold = choose_threshold(oof, y)
        chooser._head = logistic_head().fit(x.reshape(-1, x.shape[2]), y.ravel())
        return chooser


def _leads(sims: Any) -> Any:
    """Per row, each facet's similarity minus the best of the other facets' (rows × facets)."""
    import numpy as np

    others = np.stack([np.delete(sims, i, axis=1).max(axis=1) for i in range(sims.shape[1])], axis=1)
    return sims - others


def cost(chosen: Sequence[set[str]], gold: Sequence[set[str]]) -> dict[str, Any]:
    """Messages given a wrong detail, messages missing a detail asked, and their cost."""
    wrong = sum(bool(c - g) for c, g in zip(chosen, gold))
    missing = sum(bool(g - c) for c, g in zip(chosen, gold))
    return {
        "messages": len(gold),
        "exact": sum(c == g for c, g in zip(chosen, gold)),
        "wrong_detail": wrong,
        "missing_detail": missing,
        "cost": WRONG_DETAIL_COST * wrong + missing,
    }


def choose_threshold(probabilities: Any, gold: Any) -> float:
    """The threshold of least cost on `probabilities` (messages × facets)."""
    import numpy as np

    truth = [{FACETS[j] for j in np.flatnonzero(row)} for row in gold]
    return least_cost_threshold(
        probabilities, lambda chosen: cost([{FACETS[j] for j in np.flatnonzero(row)} for row in chosen], truth)["cost"]
    )


def evaluate(chooser: FacetChooser, cases: Sequence[Case]) -> dict[str, Any]:
    from bot.policy_answers import facet_words

    gold = [set(c.facets) for c in cases]
    figures = cost([set(chooser.choose(c.text)) for c in cases], gold)
    figures["word_patterns_alone"] = cost([set(facet_words(c.text)) for c in cases], gold)
    figures["threshold"] = chooser.threshold
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.contact_facets", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("eval", help="fit on dev, score a split (and the word patterns alone)")
    ev.add_argument("--cases", type=Path, default=CASES)
    ev.add_argument("--split", choices=("dev", "test"), default="test")
    ev.add_argument("-v", "--verbose", action="store_true", help="list every message chosen wrong on stderr")
    args = parser.parse_args(argv)
    try:
        dev, cases = load_cases(args.cases, "dev"), load_cases(args.cases, args.split)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from bot.settings import Settings

    chooser = FacetChooser.fit(open_encoder(Settings.from_env().index_dir), dev)
    if args.verbose:
        for case in cases:
            chosen = chooser.choose(case.text)
            if set(chosen) != set(case.facets):
                print(f"[gold {list(case.facets)} chosen {chosen}] {case.text}", file=sys.stderr)
    print(json.dumps({"split": args.split, **evaluate(chooser, cases)}))
    return 0


def open_encoder(index_dir: Path) -> Any:
    """The index's encoder (the one the answerer uses), or the bundled one without an index."""
    from kb_index import FaqIndex, IndexFolderError, default_encoder

    try:
        return FaqIndex.load(index_dir).encoder
    except IndexFolderError:
        return default_encoder(None)


if __name__ == "__main__":
    raise SystemExit(main())
