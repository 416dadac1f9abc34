"""The conversation eval: labelled customer messages replayed against the running assistant.

    python -m bot.eval conversations --cases tests/conversations/ --url http://127.0.0.1:8080 [--split dev|dev_long|test|holdout|all]

Each case (JSON Lines, one file per split: `dev.jsonl`, `dev_long.jsonl`, `test.jsonl`, `holdout.jsonl`) is sent as the
first message of a fresh conversation through the web service's chat API, so the
whole stack (Rasa, the action server, the index, the policy) answers it. A case has:

- `message`: what the customer writes;
- `category`: policy, product, out_of_scope, multi, language or frustration;
- `expect`: regular expressions that must all appear in the replies (case-insensitive);
  `@declined` means the assistant must decline (miss, "not something I can answer");
- `must_not`: regular expressions that must not appear (a wrong fact, a buried answer);
- `first`: patterns the first reply must match (the apology comes before anything else);
- optional `section` (the policy section asked about) and `time` (a time or deadline);
- optional `urgent`: the message reports a Critical or High problem, so the urgent
  ticket should be offered (true), or it should not (false, the default; frustration
  cases default to null, not judged). The offer is counted apart from the answer
  (`urgent_unwanted`, `urgent_missed`): it comes beside the answer, so it does not make
  the answer right or wrong.

Outcome per case: `right` (every expected pattern, no forbidden one), `abstained` (the
assistant declined and said nothing forbidden), else `wrong`. Answered precision is
right / (right + wrong). Error costs: a wrong answer costs more than an abstention (the
customer acts on it; an abstention offers a person), so precision is reported apart.

`python -m bot.eval kb [--queries tests/kb_queries.jsonl] [--split dev|test|all]` runs the
answerer itself (bot/faq.py: the index, its negatives, the object check and the
third-party route) on labelled knowledge-base queries, in process: an answer is right
when it comes from the labelled entry; a decline, a miss or "did you mean" is an
abstention (right for an out-of-scope query). It prints the risk-coverage curve of the
answers (precision when only the most confident are given) on stderr.

Progress goes to stderr; the last stdout line is the JSON figures. Exit status 2 means
bad input (a missing folder, a bad case line, an unreachable URL).
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

CATEGORIES = ("policy", "product", "out_of_scope", "multi", "language", "frustration")
DECLINED = "@declined"
# What the assistant says when it declines; the texts live in domain.yml and bot/faq.py.
DECLINE_MARKERS = re.compile(
    r"couldn't find an answer|not something I can answer|Did you mean one of these|"
    r"third-party product|not covered by our support",
    re.IGNORECASE,
)


class CasesError(ValueError):
    """A cases folder or line is missing or malformed."""


@dataclass(frozen=True)
class Case:
    id: str
    message: str
    category: str
    expect: tuple[str, ...]
    must_not: tuple[str, ...] = ()
    first: tuple[str, ...] = ()
    section: str | None = None
    time: bool = False
    split: str = "dev"
    # Whether the message reports a Critical or High problem, so that offering the urgent
    # ticket is right (True), wrong (False) or not judged (None: frustration cases, whose
    # severity is the team's call). Unlabelled: False, but None for frustration.
    urgent: bool | None = False


@dataclass
class Judged:
    case: Case
    outcome: str  # right | wrong | abstained
    replies: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    forbidden: list[str] = field(default_factory=list)


def _patterns(raw: object, where: str, name: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(p, str) and p for p in raw):
        raise CasesError(f"{where}: `{name}` must be a list of non-empty strings")
    for p in raw:
        if p != DECLINED:
            try:
                re.compile(p)
            except re.error as err:
                raise CasesError(f"{where}: bad pattern {p!r} in `{name}` ({err})") from None
    return tuple(raw)


# dev: tuned on; dev_long: tuned on too, long messages with context before the question
# (written in stop 30, kept apart from the CI subset of dev); test: checked (run many
# times by now); holdout: written after the last round of tuning and run once before any
# change it prompted (README: the conversation eval).
CONVERSATION_SPLITS = ("dev", "dev_long", "test", "holdout")


def load_cases(folder: str | Path, splits: Sequence[str] = ("dev", "test")) -> list[Case]:
    """Read `<split>.jsonl` of each split in `folder`; CasesError names the bad line."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CasesError(f"{folder}: cases folder not found")
    cases: list[Case] = []
    seen: set[str] = set()
    for split in splits:
        path = folder / f"{split}.jsonl"
        if not path.is_file():
            raise CasesError(f"{path}: no such split file")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as err:
                raise CasesError(f"{where}: not valid JSON ({err.msg})") from None
            if not isinstance(raw, dict) or not isinstance(raw.get("message"), str) or not raw["message"].strip():
                raise CasesError(f"{where}: a case needs a non-empty `message`")
            if raw.get("category") not in CATEGORIES:
                raise CasesError(f"{where}: `category` must be one of {', '.join(CATEGORIES)}")
            expect = _patterns(raw.get("expect"), where, "expect")
            if not expect:
                raise CasesError(f"{where}: `expect` needs at least one pattern")
            case_id = str(raw.get("id") or f"{split}-{number}")
            if case_id in seen:
                raise CasesError(f"{where}: duplicate case id {case_id!r}")
            seen.add(case_id)
            cases.append(
                Case(
                    id=case_id,
                    message=raw["message"],
                    category=raw["category"],
                    expect=expect,
                    must_not=_patterns(raw.get("must_not"), where, "must_not"),
                    first=_patterns(raw.get("first"), where, "first"),
                    section=raw.get("section"),
                    time=bool(raw.get("time", False)),
                    split=split,
                    urgent=_urgent(raw, where),
                )
            )
    return cases


def _urgent(raw: dict, where: str) -> bool | None:
    value = raw.get("urgent", None if raw.get("category") == "frustration" else False)
    if value is not None and not isinstance(value, bool):
        raise CasesError(f"{where}: `urgent` must be true, false or null")
    return value


# The urgent offer (bot/intake.py urgent_text): "I'm sorry, that sounds urgent. I'd rate this Critical…"
URGENT_OFFER = re.compile(r"I'd rate this (?:Critical|High)\b")
# The people-first apology (actions/answers.py PEOPLE_FIRST) and the handover's.
APOLOGY = re.compile(r"I'm sorry this has been frustrating|I'm sorry about the trouble")


def reply_texts(messages: Sequence[dict]) -> list[str]:
    """The text of each reply (button titles are not what the assistant said)."""
    return [str(m.get("text") or "") for m in messages]


def judge(case: Case, replies: Sequence[str]) -> Judged:
    """Right, wrong or abstained, with the patterns that were missing or forbidden."""
    text = "\n".join(replies)
    declined = bool(DECLINE_MARKERS.search(text))
    missing = [
        p for p in case.expect if not (declined if p == DECLINED else re.search(p, text, re.IGNORECASE | re.DOTALL))
    ]
    head = replies[0] if replies else ""
    missing += [f"first: {p}" for p in case.first if not re.search(p, head, re.IGNORECASE)]
    forbidden = [p for p in case.must_not if re.search(p, text, re.IGNORECASE | re.DOTALL)]
    if not missing and not forbidden:
        outcome = "right"
    elif declined and not forbidden and DECLINED not in case.expect:
        outcome = "abstained"
    else:
        outcome = "wrong"
    return Judged(case, outcome, list(replies), missing, forbidden)


def side_errors(j: Judged) -> list[str]:
    """What a reply got wrong beside its answer: an urgent ticket offered for a message
    that reports no urgent problem, one not offered for an urgent problem, and an apology
    where nobody was upset, asked for a person or reported an urgent problem."""
    said = "\n".join(j.replies)
    errors = []
    if j.case.urgent is False and URGENT_OFFER.search(said):
        errors.append("urgent offer unwanted")
    if j.case.urgent and not URGENT_OFFER.search(said):
        errors.append("urgent problem missed")
    # Sympathy for a reported outage is no needless apology ("I'm sorry, that sounds urgent").
    if j.case.category not in ("frustration", "language") and not j.case.urgent and APOLOGY.search(said):
        errors.append("needless apology")
    return errors


Send = Callable[[str, str], list[dict]]


def http_sender(url: str, timeout_s: float = 60.0) -> Send:
    """Send one message to the chat API at `url`; waits out 429s (Retry-After).

    Raises CasesError when the service cannot be reached."""
    endpoint = url.rstrip("/") + "/api/chat"

    def send(sender: str, message: str) -> list[dict]:
        body = json.dumps({"sender": sender, "message": message}).encode()
        for _ in range(20):
            request = urllib.request.Request(endpoint, data=body, headers={"Content-Type": "application/json"}, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=timeout_s) as response:
                    return list(json.loads(response.read())["messages"])
            except urllib.error.HTTPError as err:
                if err.code == 429:
                    time.sleep(float(err.headers.get("Retry-After") or 1))
                    continue
                raise CasesError(f"{endpoint}: HTTP {err.code} for {message!r}: {err.read()[:200]!r}") from None
            except (urllib.error.URLError, OSError) as err:
                raise CasesError(f"{endpoint}: cannot reach the chat API ({err})") from None
        raise CasesError(f"{endpoint}: still rate-limited after 20 tries")

    return send


def run_cases(cases: Sequence[Case], send: Send, progress: Callable[[Judged], None] | None = None) -> list[Judged]:
    """Each case as the first message of its own conversation."""
    judged = []
    for case in cases:
        sender = f"eval-{secrets.token_hex(16)}"
        result = judge(case, reply_texts(send(sender, case.message)))
        judged.append(result)
        if progress:
            progress(result)
    return judged


def figures(judged: Sequence[Judged]) -> dict:
    """Per category (and overall): right, wrong, abstained, answered precision, right rate."""

    def block(rows: Sequence[Judged]) -> dict:
        counts = Counter(j.outcome for j in rows)
        answered = counts["right"] + counts["wrong"]
        return {
            "cases": len(rows),
            "right": counts["right"],
            "wrong": counts["wrong"],
            "abstained": counts["abstained"],
            "right_rate": round(counts["right"] / len(rows), 4) if rows else None,
            "answered_precision": round(counts["right"] / answered, 4) if answered else None,
        }

    by_category = {cat: block([j for j in judged if j.case.category == cat]) for cat in CATEGORIES}
    covered = [j for j in judged if j.case.category in ("policy", "product")]
    timed = [j for j in judged if j.case.time]
    sections = Counter(j.case.section for j in judged if j.case.section)
    errors = [side_errors(j) for j in judged]
    return {
        "categories": {k: v for k, v in by_category.items() if v["cases"]},
        "covered": block(covered),
        "out_of_scope_declined": by_category["out_of_scope"]["right_rate"],
        "time_wrong": sum(1 for j in timed if j.outcome == "wrong"),
        "time_cases": len(timed),
        "multi_all_answered": by_category["multi"]["right_rate"],
        "policy_sections": len(sections),
        # Urgent tickets offered for messages that report no urgent problem (a question
        # routed as an outage), and urgent problems not offered one.
        "urgent_unwanted": sum("urgent offer unwanted" in e for e in errors),
        "urgent_missed": sum("urgent problem missed" in e for e in errors),
        # People first where nobody was upset or asked for a person (the cheap error).
        "needless_apologies": sum("needless apology" in e for e in errors),
        "all": block(judged),
    }


def kb_figures(queries: Sequence, results: Sequence) -> dict:
    """Answerer figures on labelled KB queries (kb_index.evaluation.Query) and their
    FaqResults: answered precision, in-scope accuracy, out-of-scope declined, and the
    risk-coverage curve (answers sorted by confidence, precision of the top n)."""
    from kb_index.evaluation import coverage_curve

    in_scope = [(q, r) for q, r in zip(queries, results) if q.faq_id is not None]
    oos = [r for q, r in zip(queries, results) if q.faq_id is None]
    answered = [(r.score or 0.0, r.entry_id == q.faq_id) for q, r in zip(queries, results) if r.kind == "answer"]
    right = sum(ok for _, ok in answered)
    curve = coverage_curve(answered, len(queries))

    def ratio(a: int, b: int) -> float | None:
        return round(a / b, 4) if b else None

    return {
        "queries": len(queries),
        "in_scope_queries": len(in_scope),
        "oos_queries": len(oos),
        "answered": len(answered),
        "answered_precision": ratio(right, len(answered)),
        "in_scope_accuracy": ratio(sum(1 for q, r in in_scope if r.kind == "answer" and r.entry_id == q.faq_id), len(in_scope)),
        "oos_declined": ratio(sum(1 for r in oos if r.kind != "answer"), len(oos)),
        "risk_coverage": curve,
    }


def run_kb(args: argparse.Namespace) -> dict:
    """The answerer on labelled KB queries, in process (no running stack needed)."""
    import datetime as dt

    from bot.faq import open_answerer
    from bot.policy import load_policy
    from kb_index.evaluation import coverage_table, load_queries, split_of

    queries = [q for q in load_queries(args.queries) if args.split in ("all", split_of(q.text))]
    answerer = open_answerer(args.kb, args.index, load_policy(args.policy))
    now = dt.datetime.now(dt.timezone.utc)
    results = [answerer.answer(q.text, now) for q in queries]
    if args.verbose:
        for q, r in zip(queries, results):
            if (r.kind == "answer") != (q.faq_id is not None) or (r.kind == "answer" and r.entry_id != q.faq_id):
                print(f"[{r.kind} {r.entry_id} {r.score}] expected {q.faq_id}: {q.text}", file=sys.stderr)
    result = kb_figures(queries, results)
    print("risk-coverage (answered precision when only the most confident answers are given):", file=sys.stderr)
    print(coverage_table(result["risk_coverage"]), file=sys.stderr)
    result["split"] = args.split
    return result


def main(argv: list[str] | None = None) -> int:
    top = argparse.ArgumentParser(prog="python -m bot.eval", description="evaluations against the running assistant")
    commands = top.add_subparsers(dest="command", required=True)
    conv = commands.add_parser("conversations", help="replay labelled conversation cases")
    conv.add_argument("--cases", type=Path, default=Path("tests/conversations"))
    conv.add_argument("--url", required=True, help="the web service, e.g. http://127.0.0.1:8080")
    conv.add_argument("--split", choices=(*CONVERSATION_SPLITS, "all"), default="dev")
    conv.add_argument("--category", choices=CATEGORIES, help="only this category")
    conv.add_argument("-v", "--verbose", action="store_true", help="print every case that is not right or has a side error (urgent offer, apology)")
    kb = commands.add_parser("kb", help="the answerer on labelled knowledge-base queries, in process")
    kb.add_argument("--kb", type=Path, default=Path("data/faq"))
    kb.add_argument("--index", type=Path, default=Path("kb_index/build"))
    kb.add_argument("--policy", type=Path, default=Path("data/support_policy.yml"))
    kb.add_argument("--queries", type=Path, default=Path("tests/kb_queries.jsonl"))
    kb.add_argument("--split", choices=("dev", "test", "all"), default="dev")
    kb.add_argument("-v", "--verbose", action="store_true", help="print every query answered wrongly or declined wrongly")
    args = top.parse_args(argv)
    if args.command == "kb":
        from kb_index import IndexFolderError

        try:
            print(json.dumps(run_kb(args)))
        except (IndexFolderError, FileNotFoundError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        return 0
    try:
        splits = CONVERSATION_SPLITS if args.split == "all" else (args.split,)
        cases = [c for c in load_cases(args.cases, splits) if args.category in (None, c.category)]

        def progress(j: Judged) -> None:
            errors = side_errors(j) if args.verbose else []
            if args.verbose and (j.outcome != "right" or errors):
                print(
                    f"[{', '.join([j.outcome, *errors])}] {j.case.id}: {j.case.message}\n"
                    f"  missing={j.missing} forbidden={j.forbidden}\n  "
                    + "\n  ".join(r.replace("\n", " ")[:300] for r in j.replies),
                    file=sys.stderr,
                )

        started = time.perf_counter()
        judged = run_cases(cases, http_sender(args.url), progress)
    except CasesError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    result = figures(judged)
    result["split"] = args.split
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
