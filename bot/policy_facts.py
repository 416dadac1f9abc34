"""The one sentence of the support policy that answers a question.

A policy section holds many facts ("we set the ticket to pending after 5 business days",
"the rest is invoiced on delivery", "an agent joins in business hours"). Retrieval picks
the section; this module picks the fact inside it, so the answer's first sentence is the
fact asked and the section stays behind "more details". It also finds a fact when
retrieval is unsure which section a question is about ("does anyone read my email at
night?" is a channels fact that no section's phrasings resemble).

The facts are the sections as the assistant renders them (bot/policy_answers.py), cut
into units: a sentence, or one named item of a list ("Live webinars: every Tuesday at
10:00 …"). A list of unnamed items ("Please include: your name …, the product …") is one
unit: its items answer one question together. Nothing here is written by hand; the
policy file stays the only source.

The decision (which unit, and whether any) is measured on data/policy_facts/ (dev and
test): `python -m bot.policy_facts eval --split dev|test`. A wrong fact is the costly
error: the customer reads a confident, wrong sentence from the policy. An abstention
costs little: the section (or the "did you mean" buttons) is shown as before.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bot.policy import SupportPolicy
from bot.policy_answers import contact_details, policy_answer

# The sections whose facts are units of their rendered text. The others compose their
# fact from the question already (hours and days, response times for a severity, the
# product and version asked, one contact detail, one exclusion, one change), or are one
# fact as a whole (the introduction).
FACT_TOPICS = (
    "process",
    "escalation",
    "responsibilities",
    "maintenance",
    "liability",
    "custom_solutions",
    "training",
    "third_party",
    "channels",
    "self_service",
)

# The sections searched when retrieval is unsure which section is asked: the fact
# sections and the contact details, one fact each ("how do I report a security hole?" is
# the security address, which retrieval, torn between the contact section and what to
# include in a request, left to "did you mean"). The contact section itself composes
# its answer from the question (bot/policy_answers.py), so `within` leaves it alone.
ACROSS_TOPICS = (*FACT_TOPICS, "contact")
# The most facts of one section an answer gives before the section itself is better.
MAX_FACTS = 3

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_ITEM = re.compile(r"^(?:- |\d+\. )")
# A named list item reads "Name: what it is" (the name is short and has no full stop).
_NAMED = re.compile(r"^[^.:]{2,80}:\s")
# A duration stated in a policy sentence ("within 5 business days", "every 4 hours").
_DURATION = re.compile(r"\b\d+(?:[.,]\d+)?\s+(?:business\s+|working\s+|calendar\s+)?(?:minutes?|hours?|days?|weeks?|months?)\b", re.I)


@dataclass(frozen=True)
class Fact:
    topic: str
    text: str
    # What a question is compared with: the text, and for a list each of its items under
    # its heading (a long list read as one text is close to no question in particular).
    probes: tuple[str, ...] = ()

    def compared(self) -> tuple[str, ...]:
        return (self.text, *self.probes)


def units(topic: str, rendered: str) -> list[Fact]:
    """The facts of one rendered section: its sentences, each named list item, and each
    list of unnamed items as a whole (with its heading)."""
    facts: list[Fact] = []
    heading = ""
    unnamed: list[str] = []

    def flush() -> None:
        if unnamed:
            facts.append(Fact(topic, f"{heading} " + " ".join(unnamed), tuple(f"{heading} {item}" for item in unnamed)))
            unnamed.clear()

    for line in rendered.splitlines():
        line = line.strip()
        if not line:
            continue
        if _ITEM.match(line):
            item = _ITEM.sub("", line)
            if _NAMED.match(item):
                facts.append(Fact(topic, item))
            else:
                unnamed.append(item)
            continue
        flush()
        if line.endswith(":"):
            heading = line
            continue
        heading = ""
        facts.extend(Fact(topic, s) for s in sentences(line))
    flush()
    return facts


def sentences(text: str) -> list[str]:
    """The sentences of a line of rendered policy text (a full stop before a capital ends one)."""
    return [s for s in _SENTENCE_END.split(text) if s.strip()]


def policy_facts(policy: SupportPolicy, now: dt.datetime, topics: Sequence[str] = FACT_TOPICS) -> list[Fact]:
    """Every fact of the given sections at instant `now`, in the policy's order."""
    return [fact for topic in topics for fact in section_facts(topic, policy, now)]


def section_facts(topic: str, policy: SupportPolicy, now: dt.datetime) -> list[Fact]:
    """The facts of one section: the units of its rendered text, or for the contact
    section (which renders its details in one line) each detail's own sentence."""
    if topic == "contact":
        return [Fact(topic, text) for text in contact_details(policy).values()]
    return units(topic, policy_answer(topic, policy, now))


@dataclass(frozen=True)
class FactMatch:
    fact: Fact
    similarity: float
    # How far the best fact is ahead of the best fact of another section (1.0 when it is
    # the only section searched).
    margin: float


@dataclass(frozen=True)
class FactSettings:
    """The operating points, chosen on the dev splits.

    `within`: the similarity at which a fact of the section retrieval chose leads the
    answer; `spread`: how far below it another fact of the section still comes too;
    `opening_margin`: how far ahead of the section's opening sentence the best fact must
    be to lead instead of the whole section. `across`: the similarity at which a fact is
    the answer when retrieval is unsure which section (or whether any) is asked;
    `across_margin`: how far it must be ahead of the best fact of any other section.

    `across` 0.6: on data/policy_facts dev (`eval --pipeline facts --across A`), 0.5,
    0.55, 0.6 and 0.65 answered 53, 52, 48 and 44 of 88 right with 16, 12, 12 and 12
    wrong; at 0.55 the conversation eval's dev split got two new wrong answers ("could
    you open a ticket for me about this" got the sentence on one ticket per problem
    instead of the ticket form, "how do I report a security vulnerability" the sentence
    on changing a severity), so 0.6.

    `across_agreed`: the same, for a fact of a section retrieval hesitated between (its two
    best candidates): two readings agree, so less similarity is needed. On data/policy_facts
    dev (`eval --pipeline facts --across-agreed A`), 0.6, 0.55, 0.5 and 0.45 answered 52,
    56, 57 and 58 of 88 right with 7, 7, 8 and 8 wrong, so 0.55 (test: 34 right and 11
    wrong at 0.6, 35 and 10 at 0.55).

    `spread` 0.15 (was 0.1): the facts an answer gives are in order of closeness, the
    closest first (they were in the section's order, so a closer fact could come second).
    On data/policy_facts (`eval --pipeline facts --spread S`, stop 45) 0.1 and 0.15 answer
    the same (dev 61 right, 8 wrong; test 36 and 9), and closest-first puts the fact asked
    in the reply's first 200 characters for dev 49 (46 in section order) and test 29 (27).
    0.15 keeps the cap in "what's the most Makana would be liable for?", whose nearest
    sentence is the one on indirect losses (0.67 against 0.54)."""

    within: float = 0.35
    spread: float = 0.15
    opening_margin: float = 0.05
    across: float = 0.6
    across_margin: float = 0.05
    across_agreed: float = 0.55


def states_duration(text: str) -> bool:
    """Whether a policy sentence states a length of time (what a "how long" asks for)."""
    return bool(_DURATION.search(text))


def _best_of(ranked: Sequence[tuple[Fact, float]]) -> FactMatch | None:
    """The best fact, with its margin over the best fact of another section."""
    if not ranked:
        return None
    fact, score = ranked[0]
    other = next((s for f, s in ranked[1:] if f.topic != fact.topic), None)
    return FactMatch(fact, score, 1.0 if other is None else score - other)


class FactFinder:
    """Picks the policy fact closest in meaning to a question (cosine of the encoder's
    L2-normalised embeddings). Fact vectors are cached by text: most facts never change,
    and the few that quote dates are re-encoded when their text does."""

    def __init__(self, encoder: Any, policy: SupportPolicy, settings: FactSettings | None = None) -> None:
        self._encoder = encoder
        self._policy = policy
        self.settings = settings or FactSettings()
        self._cache: dict[str, np.ndarray] = {}

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            for text, vector in zip(missing, self._encoder.encode(missing)):
                self._cache[text] = vector
        return np.stack([self._cache[t] for t in texts])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._encoder.encode(list(texts)))

    def durations(self, message: str, now: dt.datetime, vector: np.ndarray | None = None) -> list[tuple[Fact, float]]:
        """Every fact that states a duration, the response times' lines among them, with
        its similarity to `message`, best first (what a "how long" question can ask;
        bot/time_questions). `vector`: the message's, when the caller has it."""
        ranked = self.ranked(message, now, (*ACROSS_TOPICS, "response_times"), vector)
        return [(f, s) for f, s in ranked if states_duration(f.text)]

    def timed_answer(self, durations: Sequence[tuple[Fact, float]]) -> Fact | None:
        """From `durations` (as `durations` gives them): the closest fact of another
        section than the response times, with those of its section as close; None when a
        line of the response times is closer ("how long would it take you to actually fix
        something like that?" is asked of their resolution targets, which the
        response-time answer gives for the severity described)."""
        if not durations or durations[0][0].topic == "response_times":
            return None
        best, top = durations[0]
        return Fact(best.topic, " ".join(self._close_to(top, best.topic, durations)))

    def ranked(
        self, message: str, now: dt.datetime, topics: Sequence[str] = FACT_TOPICS, vector: np.ndarray | None = None,
    ) -> list[tuple[Fact, float]]:
        """Every fact of `topics` with its similarity to `message` (or to `vector`, its
        embedding), best first."""
        facts = policy_facts(self._policy, now, topics)
        if not facts:
            return []
        if vector is None:
            vector = self._encoder.encode([message])[0]
        probes = [(i, text) for i, f in enumerate(facts) for text in f.compared()]
        similarities = self._vectors([text for _, text in probes]) @ vector
        scores = np.full(len(facts), -1.0, dtype=np.float32)
        for (i, _), similarity in zip(probes, similarities):
            scores[i] = max(scores[i], similarity)
        order = np.argsort(-scores, kind="stable")
        return [(facts[i], float(scores[i])) for i in order]

    def best(
        self, message: str, now: dt.datetime, topics: Sequence[str] = ACROSS_TOPICS,
        ranked: Sequence[tuple[Fact, float]] | None = None,
    ) -> FactMatch | None:
        """The closest fact of `topics`. `ranked`: the message ranked against a set of facts
        that holds `topics` (`ranked`), when the caller has it; only the facts of `topics`
        count."""
        if ranked is None:
            return _best_of(self.ranked(message, now, topics))
        return _best_of([(fact, score) for fact, score in ranked if fact.topic in topics])

    def within(self, topic: str, message: str, now: dt.datetime, questions: Sequence[str] = ()) -> str | None:
        """The facts of `topic` that answer the question, the closest first, or None
        (the section as a whole). Facts as close as the best, within `settings.spread`,
        come too, up to three: "can you build a report, and what does it cost?" asks two
        facts of one section.

        `questions`: the parts of the message that ask something (bot/faq `asked_questions`).
        Each one's own best fact comes first, in the order asked, then the whole message's:
        "Is Makana liable for lost sales like that? What's the max you'd ever pay out?" asks
        two facts of the liability section, and the whole message, nearer the first, left the
        cap out. Only when the whole message is answered by facts: when it is the whole
        section, that stays."""
        whole = self._within_one(topic, message, now)
        if whole is None:
            return None
        told: list[str] = []
        for question in questions:
            told += [text for text in self._within_one(topic, question, now, best_only=True) or () if text not in told]
        told += [text for text in whole if text not in told]
        return " ".join(told[:MAX_FACTS])

    def _within_one(self, topic: str, message: str, now: dt.datetime, best_only: bool = False) -> list[str] | None:
        """`within` for one text: its facts (the closest first, or its best alone), or
        None (the whole section)."""
        if topic not in FACT_TOPICS:
            return None
        ranked = self.ranked(message, now, (topic,))
        if not ranked or ranked[0][1] < self.settings.within:
            return None
        top = ranked[0][1]
        # The section's opening is its general answer: another fact moves up only when the
        # question is clearly closer to it ("can your team build a custom report, and what
        # does it cost?" keeps the whole custom-solutions section, price included).
        opening = policy_facts(self._policy, now, (topic,))[0].text
        if next(score for f, score in ranked if f.text == opening) >= top - self.settings.opening_margin:
            return None
        return [ranked[0][0].text] if best_only else self._close_to(top, topic, ranked)

    def across(
        self, message: str, now: dt.datetime, leaning: Sequence[str] = (),
        ranked: Sequence[tuple[Fact, float]] | None = None,
    ) -> Fact | None:
        """The fact that answers a question retrieval was unsure of, or None. `leaning`:
        the sections retrieval hesitated between; a fact of one of them needs less
        similarity (`settings.across_agreed`), the two readings agreeing. `ranked`: the
        message's `ranked(…, ACROSS_TOPICS)`, when the caller has it."""
        s = self.settings
        if ranked is None:
            ranked = self.ranked(message, now, ACROSS_TOPICS)
        match = _best_of(ranked)
        if match is None:
            return None
        threshold = min(s.across, s.across_agreed) if match.fact.topic in leaning else s.across
        if not (match.similarity >= threshold and match.margin >= s.across_margin):
            return None
        # Facts of the same section as close as the best come too, as `within` does: "I
        # didn't answer your agent's email for a week, what happens to my ticket?" is
        # near both the sentence on replying from the ticket's address and the one on
        # tickets set to pending.
        told = self._close_to(match.similarity, match.fact.topic, ranked)
        return match.fact if len(told) == 1 else Fact(match.fact.topic, " ".join(told))

    def _close_to(self, top: float, topic: str, ranked: Sequence[tuple[Fact, float]]) -> list[str]:
        """The facts of `topic` within `settings.spread` of the best (`top`), the closest
        `MAX_FACTS` of them, the closest first."""
        return [f.text for f, score in ranked if f.topic == topic and score >= top - self.settings.spread][:MAX_FACTS]


# --- the labelled set and its eval -------------------------------------------------------

CASES = Path(__file__).resolve().parent.parent / "data" / "policy_facts" / "cases.jsonl"


@dataclass(frozen=True)
class Case:
    text: str
    fact: str | None
    expect: str | None
    split: str


def load_cases(path: Path = CASES, split: str | None = None) -> list[Case]:
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            case = Case(raw["text"], raw.get("fact"), raw.get("expect"), raw["split"])
            if case.expect is not None:
                re.compile(case.expect)
        except (ValueError, KeyError, re.error) as error:
            raise ValueError(f"{path}:{number}: {error}") from error
        if split is None or case.split == split:
            cases.append(case)
    return cases


def score(cases: Sequence[Case], matches: Sequence[FactMatch | None], across: float, margin: float) -> dict[str, Any]:
    """Right, wrong and abstained at one operating point of `across`.

    A question with a fact is right when the chosen fact carries it (its pattern matches),
    wrong when another fact is chosen, abstained when none is. A question the policy does
    not answer is right when no fact is chosen."""
    right = wrong = abstained = declined = negatives = 0
    for case, match in zip(cases, matches):
        chosen = match is not None and match.similarity >= across and match.margin >= margin
        if case.expect is None:
            negatives += 1
            declined += not chosen
            wrong += chosen
        elif not chosen:
            abstained += 1
        elif re.search(case.expect, match.fact.text):
            right += 1
        else:
            wrong += 1
    positives = len(cases) - negatives
    answered = right + wrong
    return {
        "positives": positives,
        "right": right,
        "abstained": abstained,
        "wrong": wrong,
        "coverage": round(right / positives, 4) if positives else None,
        "answered_precision": round(right / answered, 4) if answered else None,
        "negatives": negatives,
        "negatives_declined": round(declined / negatives, 4) if negatives else None,
    }


def choose(cases: Sequence[Case], matches: Sequence[FactMatch | None], min_precision: float = 0.95) -> tuple[float, float]:
    """The (across, margin) with the most right answers at answered precision ≥
    `min_precision` (wrong facts on negatives count as wrong answers)."""
    best = (-1, 1.0, 0.0)
    for across in np.arange(0.30, 0.86, 0.01):
        for margin in (0.0, 0.02, 0.05, 0.08, 0.1):
            s = score(cases, matches, float(across), margin)
            if s["answered_precision"] is not None and s["answered_precision"] >= min_precision and s["right"] > best[0]:
                best = (s["right"], round(float(across), 2), margin)
    return best[1], best[2]


def pipeline(
    cases: Sequence[Case], settings: Any, policy: SupportPolicy, now: dt.datetime, facts: bool, verbose: bool,
    fact_settings: FactSettings | None = None,
) -> dict[str, Any]:
    """The whole answerer on the labelled questions. A question with a fact is right when
    the reply carries it (`lead`: within the reply's first 200 characters), wrong when
    the reply is an answer without it, abstained otherwise; a question the policy does
    not answer is wrong when a policy section answers it."""
    from bot.faq import open_answerer

    answerer = open_answerer(settings.kb_dir, settings.index_dir, policy, (fact_settings or FactSettings()) if facts else None)
    right = lead = wrong = abstained = negatives = declined = 0
    for number, case in enumerate(cases, 1):
        results = answerer.answer_all(case.text, now)
        text = "\n".join(r.text for r in results if r.kind == "answer")
        policy_answered = any(r.kind == "answer" and answerer.topic(r.entry_id) for r in results)
        if case.expect is None:
            negatives += 1
            ok = not policy_answered
            declined += ok
            wrong += not ok
        elif not text:
            ok = False
            abstained += 1
        elif re.search(case.expect, text):
            ok = True
            right += 1
            lead += bool(re.search(case.expect, text[:200]))
        else:
            ok = False
            wrong += 1
        if verbose and not ok:
            print(f"[{'abstained' if case.expect and not text else 'wrong'}] {case.text}\n    -> {text[:140]!r}", file=sys.stderr)
        if number % 50 == 0:
            print(f"  {number}/{len(cases)} questions", file=sys.stderr)
    positives = len(cases) - negatives
    return {
        "positives": positives, "right": right, "lead": lead, "abstained": abstained, "wrong": wrong,
        "coverage": round(right / positives, 4) if positives else None,
        "answered_precision": round(right / (right + wrong), 4) if right + wrong else None,
        "negatives": negatives, "negatives_declined": round(declined / negatives, 4) if negatives else None,
    }


def _open(index_dir: Path, which: str = "index"):
    """The index's encoder (adapted to the knowledge base at build time) or the bundled one."""
    if which == "base":
        from kb_index.encoder import SentenceEncoder  # heavy: on use

        return SentenceEncoder()
    from kb_index import FaqIndex  # heavy: on use

    return FaqIndex.load(index_dir).encoder


def main(argv: Sequence[str] | None = None) -> int:
    from bot.policy import load_policy
    from bot.settings import Settings

    parser = argparse.ArgumentParser(prog="python -m bot.policy_facts", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("eval", help="score the fact finder on the labelled questions")
    ev.add_argument("--cases", type=Path, default=CASES)
    ev.add_argument("--split", choices=("dev", "test"), default="dev")
    ev.add_argument("--choose", action="store_true", help="also print the operating point chosen on these cases")
    ev.add_argument(
        "--pipeline", choices=("facts", "no-facts"),
        help="score the whole answerer (knowledge base, policy topics, facts) instead of the finder alone",
    )
    ev.add_argument("--encoder", choices=("index", "base"), default="index")
    ev.add_argument("--within", type=float, default=FactSettings.within)
    ev.add_argument("--spread", type=float, default=FactSettings.spread)
    ev.add_argument("--opening-margin", type=float, default=FactSettings.opening_margin)
    ev.add_argument("--across", type=float, default=FactSettings.across)
    ev.add_argument("--margin", type=float, default=FactSettings.across_margin)
    ev.add_argument("--across-agreed", type=float, default=FactSettings.across_agreed)
    ev.add_argument("-v", "--verbose", action="store_true", help="list every wrong or abstained question on stderr")
    sub.add_parser("show", help="print the facts the policy is cut into")
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    policy = load_policy(settings.policy_path)
    now = dt.datetime.now(policy.tz)
    if args.command == "show":
        for fact in policy_facts(policy, now, ACROSS_TOPICS):
            print(f"{fact.topic:18} {fact.text}")
        return 0
    try:
        cases = load_cases(args.cases, args.split)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from kb_index import IndexFolderError  # heavy: on use

    try:
        return _evaluate(args, settings, policy, now, cases)
    except IndexFolderError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _evaluate(args: argparse.Namespace, settings: Any, policy: SupportPolicy, now: dt.datetime, cases: list[Case]) -> int:
    if args.pipeline:
        fs = FactSettings(args.within, args.spread, args.opening_margin, args.across, args.margin, args.across_agreed)
        figures = pipeline(cases, settings, policy, now, args.pipeline == "facts", args.verbose, fs)
        print(json.dumps({"split": args.split, "pipeline": args.pipeline, "settings": fs.__dict__, **figures}))
        return 0
    finder = FactFinder(_open(settings.index_dir, args.encoder), policy)
    # A fact the finder's sections do not hold (a response time, a supported version) is
    # composed by its own section: the finder is right to choose nothing for it.
    facts = policy_facts(policy, now, ACROSS_TOPICS)
    cases = [c if c.expect is None or any(re.search(c.expect, f.text) for f in facts) else Case(c.text, None, None, c.split) for c in cases]
    matches = []
    for number, case in enumerate(cases, 1):
        matches.append(finder.best(case.text, now))
        if number % 50 == 0:
            print(f"  {number}/{len(cases)} questions", file=sys.stderr)
    s = finder.settings
    result = {"split": args.split, "across": s.across, "margin": s.across_margin, **score(cases, matches, s.across, s.across_margin)}
    if args.verbose:
        for case, match in zip(cases, matches):
            chosen = match is not None and match.similarity >= s.across and match.margin >= s.across_margin
            ok = (not chosen) if case.expect is None else (chosen and re.search(case.expect, match.fact.text))
            if not ok and match is not None:
                verdict = "abstained" if not chosen else "wrong"
                print(f"[{verdict} {match.similarity:.2f}/{match.margin:.2f}] {case.text}\n    -> {match.fact.text[:110]}", file=sys.stderr)
    if args.choose:
        across, margin = choose(cases, matches)
        result["chosen"] = {"across": across, "margin": margin, **score(cases, matches, across, margin)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
