"""Journey 1 and 2: answer a customer's question from the knowledge base and the policy.

`FaqAnswerer.answer_all` takes the message and the current instant and returns what to
say, one result per question in the message (up to three): a confident answer (for a
policy topic, the fact asked first, the full section behind "more details"), "did you
mean ...?" suggestions when the search is unsure, a decline, or a miss.

Precision comes before coverage. The index holds negatives beside the real entries
(data/faq/declines.yml: other companies' products, the policy's third-party list,
questions unrelated to Makana); a question that lands on one is declined. And a
question that names another company's product is answered only by an entry about that
product (the object check): "cancel my Netflix subscription" is not a question about
cancelling Makana. A named third-party product from the policy gets the policy's
exclusion clause and the vendor route.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Protocol, Sequence

from bot.policy_answers import (
    NOT_COVERED_TOPICS, VERSION, Situation, contact_details, described_severity, listed_version,
    maintenance_on_asked_days, mentioned_products, mentioned_third_party, policy_answer, policy_fact, render_answer,
    whole_word,
)
from bot.form_replies import question_form
from bot.policy_facts import ACROSS_TOPICS, Fact, sentences
from bot.policy import SupportPolicy

if TYPE_CHECKING:
    from bot.policy_facts import FactFinder, FactSettings

SCOPE_QUESTION = re.compile(
    r"\b(support(s|ed)?|cover(s|ed)?|help(s)? (me )?with|troubleshoot|fix|compatible|responsible|assist)\b", re.IGNORECASE
)
DECLINE_TAG = "decline"
# "Did you mean" needs a question near the knowledge base: below this cosine similarity
# to the nearest phrasing, the question is not about anything we have ("what's the
# capital of Australia" was offered "contact us"), and it gets the plain "couldn't
# find" with the offer of a person. Chosen on dev (conversation dev and dev_long, KB dev
# queries): no suggestion that held the right entry falls below 0.50; 0.46 leaves a
# margin. Measured in stop 37 on test and holdout: 12 out-of-scope questions more get
# "couldn't find" and no covered question loses a suggestion; on the KB test queries,
# one out-of-scope query more and one right suggestion lost.
SUGGEST_MIN_SIMILARITY = 0.46
VENDOR_TAG = "vendor:"
DECLINE_TEXT = (
    "Sorry, that's not something I can answer: I know about Makana's products, your Makana account "
    "and our support policy. If your question is about Makana, try rephrasing it, or ask for a person."
)
SUGGEST_TEXT = "I'm not sure I understood. Did you mean one of these?"
# Below this P(another duration) (bot/time_questions) an unsure question whose nearest
# entry is the response times gets our first-response deadline. On dev's 5-fold
# out-of-fold probabilities no question about another duration falls under 0.1 (the
# lowest: 0.106), and 21 of the 60 first-response questions do (stop 44); on test, none
# of the other kind (lowest 0.118).
SURE_FIRST_RESPONSE = 0.1
MAX_QUESTIONS = 3
# In a message of several questions, an unsure one gets its own suggestions when its best
# candidate is this similar to it (cosine): a question about Makana, not the complaint or
# greeting around the question ("I've asked three times now" scores 0.42, "how do I turn on
# two-factor?" 0.58).
MULTI_SUGGEST_MIN_SIMILARITY = 0.5
# The confidence a sentence that asks nothing needs for an answer of its own, beside a
# sentence that asks (answer_all).
STATEMENT_SURE = 0.62
# A clause that starts a new question after "and"/"also" ("…, and how do I …").
_NEXT_QUESTION = re.compile(
    r",?\s+(?:and|also|plus)\s+(?:also\s+)?(?=(?:what|what's|how|where|when|which|who|why|is|are|do|does|can|could|will|should|would|am|may|did)\b)"
    r"|\s*;\s*|(?<=[?!.])\s+|\n+|(?<=:)\s+(?=(?:what|how|where|when|which|who|why|is|are|do|does|can)\b)",
    re.IGNORECASE,
)


# A word that refers back to something named before it ("any idea how to reset it?"): a
# question that has one leans on the sentence before it, a question without one stands alone.
_MAKANA = re.compile(r"\bmakana\b", re.IGNORECASE)
_REFERS_BACK = re.compile(r"\b(?:it|its|they|them|this|these|those)\b", re.IGNORECASE)

# A version referred back to: "will you even help with that version?"
_THAT_VERSION = re.compile(r"\b(?:that|this|the same|our|my|the old) version\b", re.IGNORECASE)

# A question word anywhere in a clause, not only at its start.
_ASKING = re.compile(r"\b(?:what|how|where|when|which|who|why)(?:['’]?s)?\b|\bwhether\b", re.IGNORECASE)


def _joined(first: FaqResult, second: FaqResult) -> FaqResult:
    """`first` with the sentences of `second` it does not already say (two facts of one section)."""
    said = set(sentences(first.text))
    extra = [s for s in sentences(second.text) if s not in said]
    if not extra:
        return first
    return replace(first, text=first.text.rstrip() + " " + " ".join(extra), question=f"{first.question} {second.question}")


class Hit(Protocol):
    entry_id: str
    title: str
    score: float  # calibrated confidence
    similarity: float  # cosine similarity to the entry


class SearchResult(Protocol):
    answer: Hit | None
    candidates: Sequence[Hit]


class Index(Protocol):
    def search(self, query: str, k: int = 3) -> SearchResult: ...


@dataclass(frozen=True)
class KbEntry:
    """What the answerer needs of a knowledge-base entry."""

    id: str
    title: str
    answer: str = ""
    policy_answer: str | None = None
    tags: tuple[str, ...] = ()
    questions: tuple[str, ...] = ()

    @property
    def declines(self) -> bool:
        return DECLINE_TAG in self.tags


@dataclass(frozen=True)
class FaqResult:
    """What to say for one question.

    `details`: the answer is the fact asked of a policy section, and the full section is
    there on request. `feedback`: ask "did this help?" (a how-to or troubleshooting
    article; not a policy fact, which needs no confirmation)."""

    kind: Literal["answer", "suggest", "miss", "decline"]
    text: str = ""
    entry_id: str | None = None
    score: float | None = None
    suggestions: list[tuple[str, str]] = field(default_factory=list)  # (entry id, title)
    details: bool = False
    feedback: bool = False
    question: str = ""
    similarity: float | None = None  # of the best candidate, for a suggestion


# An error code the knowledge base documents ("MK-403", "mk 423", "MK-D210"): an identifier,
# not wording, so the entry that names it is what a message quoting it asks about, whatever
# else the message says. Ticket numbers (six characters after "MK-") never match.
ERROR_CODE = re.compile(r"(?<![\w-])MK[-\s]?([A-Z]?\d{3})(?![\w-])", re.IGNORECASE)


def error_codes(text: str) -> set[str]:
    """The error codes in a text, as "MK-403"."""
    return {f"MK-{m.group(1).upper()}" for m in ERROR_CODE.finditer(text)}


# Words that name nothing: a part made of these alone ("and for how long?", "and when
# exactly?") asks about what the part before it named.
_FUNCTION_WORDS = frozenset(
    """a an the and or but so also plus then too either what what's whats how where when which
    who whom whose why whether is are was were be been do does did doing done can could will
    would shall should may might must am i me my we us our you your it its they them their this
    that these those there here of for to in on at by with from about into over under after
    before until till during as if than not no yes any some much many long soon often far
    exactly roughly about approximately really just still though ok okay sure please again
    else more less ever usually normally typically""".split()
)


def _names_nothing(part: str) -> bool:
    return all(w in _FUNCTION_WORDS for w in re.findall(r"[a-z']+", part.lower().replace("’", "'")))


def _word_count(text: str) -> int:
    return len(re.findall(r"[\w'’]+", text))


def questions_in(message: str) -> list[str]:
    """The questions of a message: its sentences and "…, and how …" clauses (at least
    three words each), in order. A part that names nothing of its own ("and for how
    long?") is read with the part before it: "if I cancel our plan can I still log in
    afterwards? and for how long?" is one question, not a second one about how long
    something takes (it got the holiday closures)."""
    parts: list[str] = []
    for p in _NEXT_QUESTION.split(message):
        p = (p or "").strip(" ,;:-")
        if not p:
            continue
        if parts and _names_nothing(p):
            parts[-1] = f"{parts[-1]} {p}"
        else:
            parts.append(p)
    return [p for p in parts if _word_count(p) >= 3]


def _says_no_problem(part: str) -> bool:
    """A sentence that, less its negated phrases ("Nothing is broken", "no rush"), is
    under three words: it says what is not wrong, and asks about nothing."""
    from bot.triage import negations, without_negations

    return bool(negations(part)) and _word_count(without_negations(part)) < 3


def asks_something(text: str) -> bool:
    """Whether a part of a message asks something: the form of a question, or a question
    word anywhere ("…, how do I do that" is a question however it is punctuated)."""
    return _is_question(text) or bool(_ASKING.search(text))


def asked_questions(message: str) -> list[str]:
    """The parts of a message that ask something, when it has two parts or more (a
    sentence that sets the scene asks nothing)."""
    parts = questions_in(message)
    return [p for p in parts if asks_something(p)] if len(parts) >= 2 else []


def _is_question(text: str) -> bool:
    """The grammatical form of a question: it ends with "?" or opens like one."""
    return any(question_form(text))


def _nearest(found: SearchResult) -> str | None:
    """The entry a search ranks first, however unsure."""
    return found.candidates[0].entry_id if found.candidates else None


def _first_choice(result: FaqResult) -> str | None:
    """The entry a result answers with, or its first suggestion."""
    if result.kind == "suggest" and result.suggestions:
        return result.suggestions[0][0]
    return result.entry_id


class FaqAnswerer:
    """Answers from an index over KB entries, rendering policy values at answer time."""

    def __init__(
        self,
        index: Index,
        entries: Sequence[KbEntry],
        policy: SupportPolicy,
        suggest_min_score: float = 0.2,
        suggest_min_similarity: float = SUGGEST_MIN_SIMILARITY,
        closest: Callable[[str, Sequence[str]], int] | None = None,
        answer_min_score: float | None = None,
        facts: FactFinder | None = None,
        facets: Callable[[str], list[str]] | None = None,
        time_questions: Any = None,
    ) -> None:
        self._index = index
        # Whether a "how long" question asks for our first response (bot/time_questions).
        self._time_questions = time_questions
        # Picks the sentence of a policy section that answers the question (bot/policy_facts).
        self._facts = facts
        # The confidence that candidates agreeing on one fact need together (_agreed_fact):
        # the index's own answer threshold unless given.
        settings = getattr(index, "settings", None)
        self._answer_min_score = answer_min_score if answer_min_score is not None else getattr(settings, "threshold", 0.55)
        self._entries = {e.id: e for e in entries}
        # The entry that renders each policy topic (the first, when several do).
        self._topic_entries: dict[str, str] = {}
        for e in entries:
            if e.policy_answer and not e.declines:
                self._topic_entries.setdefault(e.policy_answer, e.id)
        self._policy = policy
        self._suggest_min_score = suggest_min_score
        self._suggest_min_similarity = suggest_min_similarity
        self._closest = closest
        # Which contact detail a message asks for (bot/contact_facets.py; None: the words).
        self._facets = facets
        vendors = {t[len(VENDOR_TAG):] for e in entries for t in e.tags if t.startswith(VENDOR_TAG)}
        # Each error code named in exactly one entry's title or phrasings identifies it.
        owners: dict[str, set[str]] = {}
        for e in entries:
            if not e.declines:
                for code in error_codes(" ".join((e.title, *e.questions))):
                    owners.setdefault(code, set()).add(e.id)
        self._coded = {code: next(iter(ids)) for code, ids in owners.items() if len(ids) == 1}
        self._vendors = sorted(vendors | set(policy.doc.scope.third_party_products), key=len, reverse=True)

    def render(self, entry_id: str, now: dt.datetime, message: str = "") -> str:
        """The full answer text of one entry at instant `now`."""
        entry = self._entries[entry_id]
        if entry.declines:
            return DECLINE_TEXT
        if entry.policy_answer:
            return policy_answer(entry.policy_answer, self._policy, now, message)
        return render_answer(entry.answer, self._policy, now)

    def answer_entry(self, entry_id: str, now: dt.datetime) -> FaqResult:
        """The full answer of one entry (a "did you mean" or "more details" button)."""
        entry = self._entries[entry_id]
        if entry.declines:
            return FaqResult("decline", DECLINE_TEXT, entry_id)
        return FaqResult("answer", self.render(entry_id, now), entry_id, 1.0, feedback=not entry.policy_answer)

    def has(self, entry_id: str) -> bool:
        return entry_id in self._entries

    def topic(self, entry_id: str | None) -> str | None:
        """The policy topic an entry renders (None for an article or an unknown id)."""
        entry = self._entries.get(entry_id or "")
        return entry.policy_answer if entry else None

    def not_covered(self, results: list[FaqResult]) -> bool:
        """Every question is answered, each from a topic on what support does not cover
        (NOT_COVERED_TOPICS): the message is about someone else's product, custom work or
        an exclusion, whatever urgency it reads with."""
        return bool(results) and all(
            r.kind == "answer" and (self.topic(r.entry_id) in NOT_COVERED_TOPICS or self._unsupported_only(r))
            for r in results
        )

    def _unsupported_only(self, result: FaqResult) -> bool:
        """The answer is the supported versions, and every version the question names is
        one the policy no longer supports: "Our accounts PC still has Makana Books 4 … it's
        started throwing odd errors … will your people even look at it on that version?"
        is answered "No, Makana Books 4 is no longer supported", and that problem is no
        covered product down (it got "that sounds urgent, I'd rate this High")."""
        if self.topic(result.entry_id) != "products":
            return False
        named = [(product, version) for product, version in mentioned_products(self._policy, result.question) if version]
        return bool(named) and all(version in product.unsupported_versions for product, version in named)

    def named_vendor(self, message: str) -> str | None:
        """Another company's product named in the message (policy list or declines file)."""
        for name in self._vendors:
            if whole_word(message, name):
                return name
        return None

    def _about(self, entry: KbEntry, vendor: str) -> bool:
        text = " ".join((entry.title, entry.answer, *entry.questions))
        return bool(whole_word(text, vendor))

    def asked_details(self, message: str) -> list[str]:
        """The contact details a message asks for, one sentence each (the contact-facet
        model's choice among the details the policy lists; none when it is unsure, or
        without the model). "I'm done with the bot. Give me a phone number so I can talk to
        an actual human being" asks for a person and for the phone line: the handover
        says the number too."""
        if self._facets is None:
            return []
        details = contact_details(self._policy)
        return [details[f] for f in self._facets(message) if f in details]

    def _object_is_makana(self, message: str) -> bool:
        """The question names Makana too ("moving from Xero to Makana, how do I bring my
        data"): its object is Makana, so the other product named is not what it asks about.
        Unless a part that asks names the other product and not Makana: in "We've moved
        everything over to Makana now. How do I cancel our QuickBooks Online subscription?"
        Makana is the scene, and the subscription asked about is QuickBooks'."""
        if not self._names_makana(message):
            return False
        # The parts in the form of a question, when there are any: "For now I send those
        # from Outlook myself, which works" tells how the customer gets by; the question
        # after it ("how long before I'd hear back?") is about Makana.
        asking = asked_questions(message)
        parts = [p for p in asking if _is_question(p)] or asking
        return not any(self.named_vendor(p) and not self._names_makana(p) for p in parts)

    def _names_makana(self, text: str) -> bool:
        """"Makana", or one of the policy's names for its products of two words or more
        ("can I put the till app on my iPhone?": the phone is where the app runs, the app
        is what is asked about), unless another company's name comes just before it ("the
        Clover point of sale"). One-word names ("sync", "books", "api") are everyday words."""
        if _MAKANA.search(text):
            return True
        for product in self._policy.doc.scope.products:
            for name in (n for n in product.aliases if len(n.split()) >= 2):
                hit = whole_word(text, name)
                if hit and not any(whole_word(" ".join(text[: hit.start()].split()[-3:]), v) for v in self._vendors):
                    return True
        return False

    def lookup(self, query: str, now: dt.datetime, k: int = 3) -> list[dict[str, Any]]:
        """The `k` entries closest to `query` with their rendered answers, best first,
        whatever their confidence: for a person choosing what to send (the Live view)."""
        hits = self._index.search(query, k=k).candidates
        return [
            {"id": h.entry_id, "title": h.title, "score": round(float(h.score), 3), "answer": self.render(h.entry_id, now, query)}
            for h in hits
            if h.entry_id in self._entries
        ]

    def relevance(self, message: str) -> float:
        """How close `message` is to its nearest entry (cosine similarity, not a confidence):
        evidence for models that read customer text, steady when the confidence model is refitted."""
        candidates = self._index.search(message, k=1).candidates
        return float(candidates[0].similarity) if candidates else 0.0

    def answer(self, message: str, now: dt.datetime, severity: str | None = None) -> FaqResult:
        """Answer `message` as one question: answer, suggest, decline or miss."""
        return self._judge(message, self._index.search(message, k=3), now, severity)

    def answer_all(self, message: str, now: dt.datetime, severity: str | None = None) -> list[FaqResult]:
        """One result per question in the message (up to three), in the order asked.

        Each question is searched on its own; when two or more of them get confident
        answers from different entries, each is answered. Otherwise the message is one
        question, answered from the whole text, or from its one confident question when
        the whole text is unsure (a greeting or a complaint around a question)."""
        whole = self.answer(message, now, severity)
        parts = questions_in(message)
        if len(parts) < 2:
            return [whole]
        forms = [_is_question(p) for p in parts]
        asks = [asks_something(p) for p in parts]
        # A question that names no product of its own ("any idea how to reset it?" after "the
        # verifone terminal keeps showing an error") asks about the product the message names.
        about_makana = self._object_is_makana(message)
        named = None if about_makana else self.named_vendor(message)
        # Only a question that refers back leans on it: "Also, I got locked out after too many
        # wrong passwords - how long does the lock last?" after a question about Shopify is
        # about Makana.
        read = self._with_named_products(message, parts)
        searches = [self._index.search(r, k=3) for r in read]
        results = [
            self._judge(
                r, found, now, severity, p,
                context_vendor=named if i and _REFERS_BACK.search(p) else None, whole=message,
            )
            for i, (p, r, found) in enumerate(zip(parts, read, searches))
        ]
        if any(asks):
            # A sentence that asks nothing, beside one that asks, is answered on its own only
            # when the index is sure of it: a problem stated beside a question is often a
            # second question ("Got an automated email from you saying our webhook endpoint
            # has been switched off."), but a sentence that tells the story is near some
            # entry too, and its article came beside the answer ("The rest of Books behaves
            # normally, but our approval workflow won't let a bill through without the
            # document" got the card-decline article at 0.62, with its one-hour line, beside
            # a High deadline; "we're closing the shop for good at the end of june." got
            # the holiday closures at 0.58).
            # Nor is a sentence that only says what is not wrong ("Nothing is broken,
            # everything works." got the outage checklist, with its one-hour line, beside
            # the answer to a feature request's time question): less its negated phrases
            # (bot.triage.without_negations), it says next to nothing.
            results = [
                FaqResult("miss", question=r.question) if not asking and (
                    (r.kind == "answer" and r.score is not None and r.score < STATEMENT_SURE) or _says_no_problem(p)
                ) else r
                for r, asking, p in zip(results, asks, parts)
            ]
        # A question that refers back to the sentence before it, a statement, and that the
        # index is unsure of alone, asks about that statement: "the invoices you send us
        # for the plan still go to my private gmail; could they go to the office inbox as
        # well?" (alone, "could they go…" leaned to the channels at 0.37). Read together,
        # sure (as a statement must be to be answered) and of the entry the statement alone
        # leaned to, the statement is the question's context, no question of its own.
        for i in range(1, len(parts)):
            if (
                asks[i] and not asks[i - 1] and results[i].kind != "answer" and _REFERS_BACK.search(parts[i])
                and results[i - 1].kind != "answer"
            ):
                both = f"{read[i - 1]} {read[i]}"
                joined = self._judge(both, self._index.search(both, k=3), now, severity, parts[i], whole=message,
                                     vendor_free=about_makana)
                if joined.kind == "answer" and joined.entry_id == _nearest(searches[i - 1]) and (
                    joined.score is None or joined.score >= STATEMENT_SURE
                ):
                    results[i - 1], results[i] = FaqResult("miss", question=parts[i - 1]), joined
        if any(r.kind == "answer" and r.entry_id == "products" for r in results):
            # A statement naming a product's version, beside the question whether that version
            # is supported, is the question's context: "The register at our market stall is
            # an old iPad on Makana POS 2." is no question about installing the app.
            results = [
                FaqResult("miss", question=r.question) if not asking and r.entry_id != "products" and any(
                    version for _, version in mentioned_products(self._policy, p)
                ) else r
                for r, asking, p in zip(results, asks, parts)
            ]
        if about_makana and self.named_vendor(message):
            # The message is about Makana, and a sentence that is no question names another
            # company's product on the way ("For now I send those PDFs from Outlook myself,
            # which works"; "your invoices still go to my personal gmail, I'd like them to go
            # to the shop's inbox"): that sentence is read as about Makana too, not declined
            # as a question about the other product; it is answered when an entry is sure of
            # it, and is no question of its own otherwise.
            results = [
                self._about_makana(q, found, now, severity, p, message)
                if r.kind == "decline" and r.entry_id is None and not form else r
                for r, form, p, q, found in zip(results, forms, parts, read, searches)
            ]
        if whole.kind == "answer":
            # A question the index was unsure of, when the whole message is sure of the entry
            # that question leaned to, is answered by it: "is sync 1.8 still ok to use? also
            # we're replacing the server it runs on, how do i move it across" (the second
            # question alone hesitates between moving and upgrading; the whole message picks
            # moving), and the first question keeps its own answer.
            others = {r.entry_id for r in results if r.kind == "answer"}
            results = [
                replace(whole, question=p) if (
                    r.kind == "suggest" and _first_choice(r) == whole.entry_id and whole.entry_id not in others and asking
                ) else r
                for r, p, asking in zip(results, parts, asks)
            ]
        answered: list[FaqResult] = []
        for r in results:
            same = next((i for i, a in enumerate(answered) if a.entry_id == r.entry_id), None)
            if r.kind in ("answer", "decline") and same is None:
                answered.append(r)
            elif r.kind == "answer" and same is not None and self.topic(r.entry_id) is not None:
                # Two questions about one policy section, each asking its own fact: "Is there
                # a phone number I can ring you on? And if I'd rather write, what email
                # address do I send things to?" got the phone line alone.
                merged = _joined(answered[same], r)
                results = [merged if x is answered[same] else x for x in results]
                answered[same] = merged
        confident = [r for r in answered if r.kind == "answer"]
        # A question the index is unsure of, beside one it answers, is not dropped: it
        # gets its own "did you mean" (when its best candidate is close enough to be a
        # question about Makana, not a greeting or a complaint around the question).
        answered_ids = {a.entry_id for a in answered}
        # Only a part that asks something, when one does: a sentence that sets the scene
        # ("we're planning a big year-end cleanup the first weekend of december.") got
        # "About …: did you mean one of these?" beside the answer to the question after it.
        # A message of statements alone ("the server that ran the sync agent died. the dead
        # one still shows up as offline") asks through them, and each keeps its own.
        unsure = [
            r for r, asking in zip(results, asks)
            if (asking or not any(asks)) and r.kind == "suggest" and (r.similarity or 0.0) >= MULTI_SUGGEST_MIN_SIMILARITY
            and r.suggestions[0][0] not in answered_ids
        ]
        each_question = confident and unsure and (
            len(answered) >= 2 or whole.entry_id in answered_ids or whole.kind != "answer"
        )
        # The whole message matched an entry that none of its questions is about: a blend of
        # two questions ("how long till a card refund shows up … and who do I write to about
        # a charge on our subscription" matched the subscription refund policy). Each question
        # gets its own answer or "did you mean" instead.
        # Only when two of the parts are questions: beside a sentence of context, a question
        # that leans on it ("is there a way to make it do that automatically?") is no
        # question of its own, and the whole message is what it asks.
        # A question that leans on the one before it and names nothing the index knows ("If
        # your team sends follow-up questions on my open ticket while I'm away, what happens
        # to it? Will it still be there when I get back?") is that question's follow-up, not
        # a second one: the whole message (the rule on tickets left pending) stays.
        own_questions = sum(
            form and not (i and r.kind == "miss" and _REFERS_BACK.search(p))
            for i, (form, p, r) in enumerate(zip(forms, parts, results))
        )
        blended = (
            whole.kind == "answer" and (answered or unsure) and own_questions >= 2
            and all(_first_choice(r) != whole.entry_id for r in results)
        )
        if each_question or blended:
            kept = {id(r) for r in [*answered, *unsure]}
            return [r for r in results if id(r) in kept][:MAX_QUESTIONS]
        # A sentence that only sets the scene ("Suppose I email you on a Sunday afternoon.
        # When would somebody read it?") is no question of its own: when the whole message
        # is answered by the entry its one question gets, the whole message is answered
        # (its scene is the question's situation).
        # Only a scene before the question, with no question word of its own.
        lone_question = asks == [False] * (len(parts) - 1) + [True]
        if (
            lone_question and whole.kind == "answer" and self.topic(whole.entry_id) is None
            and results[-1].kind == "answer" and self.topic(results[-1].entry_id) == "response_times"
        ):
            # The story is about the product, the one question about when we answer: "the sales
            # report shows odd totals, but the CSV export is right so we're getting by. How
            # long would it take you to fix something like that?" matched the export
            # article on its story; what it asks is a response time (for the severity the
            # story describes, which `severity` carries). The time comes first, the article
            # after it (it may solve the problem before anyone answers). Only a time
            # question: another policy answer to a question that leans on the story
            # ("anything I can do on my end?" got what support does not cover) is no
            # question of its own.
            return [results[-1], whole]
        premise = lone_question and whole.kind == "answer" and results[-1].entry_id == whole.entry_id
        if len(answered) >= 2 and confident and not premise:
            return answered[:MAX_QUESTIONS]
        if whole.kind != "answer" and confident:
            # A sentence that sets the scene is not answered on its own when the question
            # after it stands alone (its own words, no "it" or "that" leaning back) and is
            # unsure: "A client is 90 days late paying three of my invoices. … can I take him
            # to small claims court myself?" got the article on undelivered invoices. A
            # question that leans on the scene ("our bank feed stopped. how do i fix
            # that?") or says nothing of its own ("What should I do?", a miss) is answered
            # through it, as before.
            asking = {id(r): a for r, a in zip(results, asks)}
            stands_alone = any(
                a and r.kind == "suggest" and not _REFERS_BACK.search(p) for r, p, a in zip(results, parts, asks)
            )
            if stands_alone:
                confident = [r for r in confident if asking[id(r)]]
            if confident:
                return confident[:1]
        return [whole]

    def _about_makana(
        self, text: str, found: SearchResult, now: dt.datetime, severity: str | None, question: str, whole: str
    ) -> FaqResult:
        """`text` (its search result `found`) judged with the other company's product it
        names left aside: its answer, or a miss."""
        result = self._judge(text, found, now, severity, question, whole=whole, vendor_free=True)
        return result if result.kind == "answer" else FaqResult("miss", question=question)

    def _with_named_products(self, message: str, parts: Sequence[str]) -> list[str]:
        """Each part as it is searched: a version written without its product ("is 1.8
        something your team still looks at?"), which the message names with it elsewhere
        ("We've got Makana Sync 1.8 on the back-office server"), is read with the product's
        name. The part alone asked nothing the index knew (0.40)."""
        named = [(product, version) for product, version in mentioned_products(self._policy, message) if version]
        if not named:
            return list(parts)

        def with_name(m: re.Match[str]) -> str:
            owners = [product for product, version in named if listed_version(product, m.group(1) or "") == version]
            return f"{owners[0].name} {m.group(0)}" if len(owners) == 1 else m.group(0)

        # "that version" in a part whose message names one product's version is that version.
        alone = f"{named[0][0].name} {named[0][1]}" if len(named) == 1 else None

        def read(part: str) -> str:
            if mentioned_products(self._policy, part):
                return part
            part = VERSION.sub(with_name, part)
            return _THAT_VERSION.sub(alone, part) if alone else part

        return [read(p) for p in parts]

    def _judge(
        self, message: str, result: SearchResult, now: dt.datetime, severity: str | None, question: str = "",
        context_vendor: str | None = None, whole: str = "", vendor_free: bool = False,
    ) -> FaqResult:
        question = question or message
        vendor = None if vendor_free else self.named_vendor(message) or context_vendor
        third_party = None if vendor_free else mentioned_third_party(self._policy, message)
        if third_party and SCOPE_QUESTION.search(message):
            # "Do you support the Stripe plugin?" is a scope question: the policy answers
            # it, not whichever FAQ entry mentions payments.
            return self._third_party(message, now, question)
        leans = bool(result.candidates) and result.candidates[0].entry_id == "products"
        if (SCOPE_QUESTION.search(message) or leans) and any(
            version for _, version in mentioned_products(self._policy, message)
        ):
            # "Do you still support POS 2?" names a product and a version: whether it is
            # supported is the policy's answer, not an article about that product. So when
            # retrieval's nearest entry is the supported products, however unsure: "we still
            # run POS version 2 on an old tablet … will your team look at it on that
            # version?" (0.48).
            entry = self._entries.get("products")
            if entry is not None:
                return self._answer(entry, message, now, severity, 1.0, question, whole)
        coded = {self._coded[c] for c in error_codes(message) if c in self._coded}
        if len(coded) == 1 and (not vendor or self._object_is_makana(message)):
            # The error the customer quotes: its entry, however the rest of the message reads.
            entry_id = next(iter(coded))
            if result.answer is None or result.answer.entry_id != entry_id:
                return self._answer(self._entries[entry_id], message, now, severity, 1.0, question, whole)
        hit = result.answer
        entry = self._entries.get(hit.entry_id) if hit is not None else None
        if (
            entry is not None and vendor and not entry.declines and not self._about(entry, vendor)
            and entry.id != "third_party" and not self._object_is_makana(message)
        ):
            # The object check: the entry is about Makana's version of the thing asked,
            # not about the other company's product the question names.
            if third_party:
                return self._third_party(message, now, question)
            return FaqResult("decline", DECLINE_TEXT, question=question)
        if entry is not None and entry.declines:
            if third_party:
                return self._third_party(message, now, question)
            return FaqResult("decline", DECLINE_TEXT, entry.id, hit.score if hit else None, question=question)
        if entry is not None and hit is not None:
            return self._answer(entry, message, now, severity, hit.score, question, whole)
        agreed = None if vendor else self._agreed_fact(result, message, now, severity, question)
        if agreed is not None:
            return agreed
        first = None if vendor else self._first_response(result, message, now, severity, question, whole)
        if first is not None:
            return first
        detail = None if vendor else self._contact_detail(result, message, now, severity, question)
        if detail is not None:
            return detail
        leaning = [self.topic(c.entry_id) for c in result.candidates[:2]]
        # The message ranked against every policy sentence once: the fact across sections and
        # the planned work below both read it.
        ranked = None if vendor or self._facts is None else self._facts.ranked(message, now, ACROSS_TOPICS)
        fact = None if ranked is None else self._facts.across(message, now, [t for t in leaning if t], ranked)
        topic_entry = self._topic_entries.get(fact.topic) if fact is not None else None
        if topic_entry is not None and topic_entry not in [c.entry_id for c in result.candidates[:2]]:
            # Retrieval torn between two sections is not a question about a third: "what's the
            # resolution target for a critical ticket" (severities or response times) got
            # the process sentence on critical tickets being paged. Measured in stop 36: on
            # the conversation cases that one wrong answer becomes "did you mean" and nothing
            # else changes; on data/policy_facts test one right answer is lost too.
            topic_entry = None
        if topic_entry is not None:
            # Retrieval was unsure which section the question is about, but one sentence of
            # the policy answers it ("does anyone read my email at night?").
            return FaqResult("answer", fact.text, topic_entry, None, details=True, question=question)
        planned = None if ranked is None else self._planned_work(message, now, question, ranked)
        if planned is not None:
            return planned
        near = bool(result.candidates) and result.candidates[0].similarity >= self._suggest_min_similarity
        suggestions = [
            (c.entry_id, self._entries[c.entry_id].title)
            for c in result.candidates
            if c.entry_id in self._entries and not self._entries[c.entry_id].declines and c.score >= self._suggest_min_score
        ] if near else []
        if suggestions and not vendor:
            top = result.candidates[0]
            return FaqResult(
                "suggest", SUGGEST_TEXT, suggestions=suggestions, score=top.score, question=question, similarity=top.similarity
            )
        if vendor and not third_party and not self._object_is_makana(message):
            # Another company's product, and no entry about it: the object check declines
            # it ("our clover terminal keeps rebooting"), as it does when a Makana entry is
            # the nearest; a miss would leave it to be triaged as a Makana problem. (A
            # product on the policy's third-party list is often used with Makana, "load my
            # customer list from excel": that stays a miss.)
            return FaqResult("decline", DECLINE_TEXT, question=question)
        return FaqResult("miss", question=question)

    def _planned_work(
        self, message: str, now: dt.datetime, question: str, ranked: Sequence[tuple[Fact, float]]
    ) -> FaqResult | None:
        """The maintenance window on a day the message names, when the policy sentence
        nearest the message is that window's: "I batch-send my invoices at 3am on Sundays,
        is anything planned this Sunday that would get in the way?" is near no section's
        phrasings (retrieval unsure, the window's sentence 0.41, under the bar of a fact
        found across sections), but it names the window's day and no sentence of the policy
        is nearer. Two readings that agree: the day (the policy's windows) and the meaning.
        `ranked`: the message against every policy sentence (`FactFinder.ranked`)."""
        entry = self._topic_entries.get("maintenance")
        if entry is None or not maintenance_on_asked_days(self._policy, now, message):
            return None
        best = self._facts.best(message, now, ranked=ranked)
        if best is None or best.fact.topic != "maintenance":
            return None
        return FaqResult("answer", best.fact.text, entry, None, details=True, question=question)

    def _agreed_fact(
        self, result: SearchResult, message: str, now: dt.datetime, severity: str | None, question: str
    ) -> FaqResult | None:
        """The fact that several unsure candidates agree on, when together they are sure.

        Neighbouring policy topics often compose the same fact ("what number do I ring?"
        is a contact question and a channels question, and both answer with the phone
        line), so the index's confidence, split between them, falls below the threshold
        although the answer does not depend on which of them is right. The probability
        that the answer is right is the sum of the calibrated confidences of the
        candidates that give it; the answer is given when that sum reaches the threshold."""
        situation = Situation(message, severity, self._closest, self._facets)
        totals: dict[str, tuple[float, list[str]]] = {}
        for candidate in result.candidates:
            entry = self._entries.get(candidate.entry_id)
            if entry is None or entry.declines or not entry.policy_answer:
                continue
            fact = policy_fact(entry.policy_answer, self._policy, now, situation)
            if fact is None:
                continue
            score, ids = totals.get(fact, (0.0, []))
            totals[fact] = (score + float(candidate.score), [*ids, entry.id])
        agreed = [(score, fact, ids) for fact, (score, ids) in totals.items() if len(ids) >= 2]
        if not agreed:
            return None
        score, fact, ids = max(agreed)
        if score < self._answer_min_score:
            return None
        return FaqResult("answer", fact, ids[0], round(min(score, 1.0), 6), details=True, question=question)

    def _first_response(
        self, result: SearchResult, message: str, now: dt.datetime, severity: str | None, question: str, whole: str
    ) -> FaqResult | None:
        """Our first-response deadline, when retrieval is unsure but its nearest entry is
        the response times and the time-question model is sure the question asks when we
        will first answer (P(another duration) < `SURE_FIRST_RESPONSE`).

        "Not a big deal at all, … the date column … is slightly cut off. If I report it,
        how long does it usually take before somebody gets back to me?" was torn (0.53,
        under the answer threshold) although nothing else was near; the deadline for the
        severity described is its answer."""
        if self._time_questions is None or not result.candidates:
            return None
        top = result.candidates[0]
        entry = self._entries.get(top.entry_id)
        if (
            entry is None or entry.policy_answer != "response_times"
            or top.score < self._suggest_min_score or top.similarity < self._suggest_min_similarity
        ):
            return None
        if self._time_questions.p_other(message, now) >= SURE_FIRST_RESPONSE:
            return None
        return self._answer(entry, message, now, severity, top.score, question, whole)

    def _contact_detail(
        self, result: SearchResult, message: str, now: dt.datetime, severity: str | None, question: str
    ) -> FaqResult | None:
        """One contact detail, when retrieval is unsure but leans to how to reach us and the
        contact-facet model (bot/contact_facets) is sure which detail is asked.

        "is there a number I can ring when I'd rather talk than type?" is torn between the
        channels and the open-now entries (0.34 and 0.18), both of which would give the
        phone line; the facet model gives it P(phone) 0.92. Only when the contact or
        channels section is one of the "did you mean" choices: the facet model alone is not
        asked to tell a contact question from any other."""
        if self._facets is None or "contact" not in self._topic_entries or not result.candidates:
            return None
        # Only what would otherwise be a "did you mean" offering one of those sections ("how
        # do I block a number on my phone" and "what's the capital of Australia" have them
        # among their candidates too, far below that: measured on the conversation cases).
        if result.candidates[0].similarity < self._suggest_min_similarity:
            return None
        # Nor when retrieval's other reading is out of scope: "how do I block a number on my
        # phone" is torn between the contact entry and the other-companies' decline.
        if any(self._entries[c.entry_id].declines for c in result.candidates[:2] if c.entry_id in self._entries):
            return None
        leaning = next((
            c.entry_id for c in result.candidates[:2]
            if c.score >= self._suggest_min_score and self.topic(c.entry_id) in ("contact", "channels")
        ), None)
        if leaning is None:
            return None
        fact = policy_fact("contact", self._policy, now, Situation(message, severity, self._closest, self._facets))
        if fact is None:
            return None
        # The section retrieval leaned to (its full text is the "more details").
        return FaqResult("answer", fact, leaning, None, details=True, question=question)

    def _third_party(self, message: str, now: dt.datetime, question: str) -> FaqResult:
        return FaqResult("answer", policy_answer("third_party", self._policy, now, message), "third_party", 1.0, question=question)

    def _answer(
        self, entry: KbEntry, message: str, now: dt.datetime, severity: str | None, score: float, question: str,
        whole: str = "",
    ) -> FaqResult:
        """`whole`: the message `message` is one question of (a severity named or a calm
        word there is the customer's, for this question too)."""
        times = entry.policy_answer == "response_times" and self._facts is not None
        if (
            times and severity not in ("critical", "high")
            and described_severity(message, None, False) is None and described_severity(whole, None, False) is None
        ):
            # With no urgent situation to answer for, a policy sentence that clearly answers
            # the question comes before the deadlines ("my ticket got switched to pending,
            # how long until you shut it for good?" is the sentence on pending tickets, not
            # a first-response deadline). Not when the question names a severity or says it
            # is not urgent, nor for a Critical or High problem the message describes (its
            # deadline is the answer); a Low or Medium triage of the message does not stop
            # it ("How long can a ticket sit waiting on my reply before you close it out?
            # Also I need our invoices sent to accounts@…" was triaged Low and got the Low
            # deadline). Which duration a question asks for is bot/time_questions' decision
            # (before stop 42 the closest policy sentence whenever it was close enough: "how
            # long do you take to answer a ticket" got the one on replying from the ticket's
            # address).
            other = self._time_questions.other_fact(message, now) if self._time_questions is not None else None
            topic_entry = self._topic_entries.get(other.topic) if other is not None else None
            if topic_entry is not None:
                return FaqResult("answer", other.text, topic_entry, score, details=True, question=question)
        if entry.policy_answer:
            fact = policy_fact(entry.policy_answer, self._policy, now, Situation(message, severity, self._closest, self._facets))
            if fact is None and self._facts is not None:
                fact = self._facts.within(entry.policy_answer, message, now, asked_questions(message))
            if fact is not None:
                return FaqResult("answer", fact, entry.id, score, details=True, question=question)
            return FaqResult("answer", self.render(entry.id, now, message), entry.id, score, question=question)
        return FaqResult("answer", self.render(entry.id, now, message), entry.id, score, feedback=True, question=question)


def encoder_closest(encoder) -> Callable[[str, Sequence[str]], int]:
    """The index of the text closest in meaning to a message (cosine of the embeddings)."""

    def closest(message: str, texts: Sequence[str]) -> int:
        vectors = encoder.encode([message, *texts])
        scores = vectors[1:] @ vectors[0]
        return int(scores.argmax())

    return closest


def open_answerer(kb_dir: Path, index_dir: Path, policy: SupportPolicy, facts: FactSettings | None | bool = True) -> FaqAnswerer:
    """Load the knowledge base and its built index (built by `python -m kb_index build`).

    `facts`: the operating point of the policy fact finder (True: its defaults; False or
    None: answers without it, for comparison).

    Raises kb_index.IndexFolderError when the index is missing or older than the
    knowledge base: a server must not spend minutes building one on a request.
    """
    from kb_index import FaqIndex, IndexFolderError, IndexSettings, content_hash, load_kb_yaml  # heavy: on use

    entries = load_kb_yaml(kb_dir)
    index = FaqIndex.load(index_dir)
    if index.meta.get("hash") != content_hash(entries, IndexSettings()):
        raise IndexFolderError(f"{index_dir} is out of date for {kb_dir}; run `python -m kb_index build` (make index)")
    kb = [KbEntry(e.id, e.title, e.answer, e.policy_answer, tuple(e.tags), tuple(e.questions)) for e in entries]
    from bot.policy_facts import FactFinder

    finder = None if facts is None or facts is False else FactFinder(index.encoder, policy, None if facts is True else facts)
    from bot.contact_facets import FacetChooser, load_cases

    facets = FacetChooser.fit(index.encoder, load_cases(split="dev"))
    times = None
    if finder is not None:
        from bot import time_questions

        now = dt.datetime.now(dt.timezone.utc)
        times = time_questions.TimeQuestionModel.fit(finder, time_questions.load_cases(split="dev"), now)
    return FaqAnswerer(
        index, kb, policy, closest=encoder_closest(index.encoder), facts=finder, facets=facets.choose, time_questions=times
    )
