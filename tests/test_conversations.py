"""The conversation eval (bot/eval.py): its judging, its cases, and a subset in CI."""

from __future__ import annotations

import json
import uuid

import pytest

from bot.eval import CATEGORIES, CONVERSATION_SPLITS, Case, CasesError, figures, judge, kb_figures, load_cases, run_cases
from bot.faq import FaqResult
from kb_index.evaluation import Query, split_of
from bot.settings import ROOT

CASES = ROOT / "tests" / "conversations"


def case(**kw) -> Case:
    return Case(id="x", message="m", category=kw.pop("category", "policy"), expect=kw.pop("expect", ("808 555",)), **kw)


def test_right_wrong_and_abstained():
    assert judge(case(), ["Call us on +1 808 555 0142."]).outcome == "right"
    assert judge(case(), ["Our hours are 9:30 to 18:30."]).outcome == "wrong"
    abstained = judge(case(), ["Sorry, I couldn't find an answer to that in our help centre."])
    assert abstained.outcome == "abstained" and abstained.missing == ["808 555"]
    forbidden = judge(case(must_not=("Bishop",)), ["808 555 0142, 1003 Bishop Street"])
    assert forbidden.outcome == "wrong" and forbidden.forbidden == ["Bishop"]


def test_out_of_scope_is_right_only_when_declined():
    oos = case(category="out_of_scope", expect=("@declined",))
    assert judge(oos, ["Sorry, I couldn't find an answer to that in our help centre."]).outcome == "right"
    assert judge(oos, ["Go to Settings → Subscription → Cancel subscription."]).outcome == "wrong"


def test_first_reply_must_come_first():
    angry = case(category="frustration", expect=("sorry", "person"), first=("sorry",))
    assert judge(angry, ["I'm sorry. Would you like a person?", "Here is how"]).outcome == "right"
    assert judge(angry, ["Here is how", "I'm sorry. Would you like a person?"]).outcome == "wrong"


def test_urgent_offers_are_counted_apart_from_the_answer(tmp_path):
    offer = "I'm sorry, that sounds urgent. I'd rate this Critical: you said … Call us on +1 808 555 0142."
    plain = case()
    outage = case(urgent=True)
    judged = [judge(plain, [offer]), judge(outage, ["Call us on +1 808 555 0142."]), judge(outage, [offer])]
    assert [j.outcome for j in judged] == ["right", "right", "right"]  # the answer is judged on its own
    got = figures(judged)
    assert (got["urgent_unwanted"], got["urgent_missed"]) == (1, 1)
    sorry = judge(case(), ["I'm sorry this has been frustrating. A person from our support team…", "Call us on +1 808 555 0142."])
    assert figures([sorry])["needless_apologies"] == 1 and figures(judged)["needless_apologies"] == 0
    # Sympathy for a reported outage is not needless.
    stuck = judge(outage, ["I'm sorry this has been frustrating. A person from our support team…", offer])
    assert figures([stuck])["needless_apologies"] == 0
    # Frustration cases are not judged on the offer unless labelled; a bad label is refused.
    (tmp_path / "dev.jsonl").write_text(
        '{"message": "m", "category": "frustration", "expect": ["x"]}\n{"message": "n", "category": "policy", "expect": ["x"]}\n',
        encoding="utf-8",
    )
    assert [c.urgent for c in load_cases(tmp_path, ("dev",))] == [None, False]
    (tmp_path / "dev.jsonl").write_text('{"message": "m", "category": "policy", "expect": ["x"], "urgent": "yes"}\n', encoding="utf-8")
    with pytest.raises(CasesError, match="`urgent` must be true, false or null"):
        load_cases(tmp_path, ("dev",))


def test_kb_figures_count_abstentions_apart_and_draw_the_curve():
    queries = [Query("a", "x"), Query("b", "y"), Query("c", None), Query("d", None)]
    results = [
        FaqResult("answer", entry_id="x", score=0.9),
        FaqResult("answer", entry_id="x", score=0.6),  # wrong entry
        FaqResult("decline"),  # out of scope, declined: right
        FaqResult("answer", entry_id="x", score=0.95),  # out of scope, answered: wrong
    ]
    got = kb_figures(queries, results)
    assert (got["answered"], got["answered_precision"], got["in_scope_accuracy"], got["oos_declined"]) == (3, 0.3333, 0.5, 0.5)
    # Most confident first: the wrong out-of-scope answer, then the right one, then the wrong one.
    assert [p["precision"] for p in got["risk_coverage"]] == [0.0, 0.5, 0.3333]


def test_split_is_a_fixed_half():
    texts = [f"query number {n}" for n in range(400)]
    dev = [t for t in texts if split_of(t) == "dev"]
    assert 150 < len(dev) < 250 and all(split_of(t) == "dev" for t in dev)


def test_bad_cases_are_refused_with_the_line(tmp_path):
    (tmp_path / "dev.jsonl").write_text('{"message": "hi", "category": "policy", "expect": ["("]}\n')
    with pytest.raises(CasesError, match=r"dev.jsonl:1: bad pattern"):
        load_cases(tmp_path, ("dev",))
    (tmp_path / "dev.jsonl").write_text('{"message": "hi", "category": "weather", "expect": ["x"]}\n')
    with pytest.raises(CasesError, match="category"):
        load_cases(tmp_path, ("dev",))
    with pytest.raises(CasesError, match="no such split"):
        load_cases(tmp_path, ("test",))


def test_the_cases_cover_what_the_issue_asks():
    cases = load_cases(CASES, CONVERSATION_SPLITS)
    assert len(cases) >= 200
    assert {c.category for c in cases} == set(CATEGORIES)
    assert len({c.section for c in cases if c.section}) >= 13
    assert len({c.message.lower() for c in cases}) == len(cases)
    assert len({c.id for c in cases}) == len(cases)  # no message or id in two splits


def ci_subset() -> list[Case]:
    """Every fourth dev case of each category: about forty messages, a minute or two."""
    dev = load_cases(CASES, ("dev",))
    return [c for cat in CATEGORIES for i, c in enumerate(x for x in dev if x.category == cat) if i % 4 == 0]


def test_conversation_subset_against_the_stack(stack):
    judged = run_cases(ci_subset(), lambda sender, text: stack.say(sender, text))
    result = figures(judged)
    misses = [f"{j.case.id} {j.outcome}: {j.case.message} -> {j.replies[:2]}" for j in judged if j.outcome != "right"]
    print(json.dumps(result))
    assert result["time_wrong"] == 0, misses
    assert result["multi_all_answered"] == 1.0, misses
    assert result["covered"]["right_rate"] >= 0.85, misses
    assert result["out_of_scope_declined"] >= 0.85, misses
    for category in ("language", "frustration"):
        assert result["categories"][category]["right_rate"] >= 0.8, misses


@pytest.mark.parametrize(
    "text, button",
    [
        # Rasa's NLU hears these as "yes" (it has no Chinese, Japanese or Korean words).
        ("我们店下个月要关门了，可以退还年费吗？", "与工作人员交谈"),
        ("店を閉めることになったので、年間プランの返金はできますか？", "担当者と話す"),
        ("가게 문을 닫게 되었는데 연간 요금을 환불받을 수 있나요?", "직원과 상담하기"),
    ],
)
def test_a_question_in_chinese_japanese_or_korean_gets_the_reply_in_it_not_didnt_understand(stack, text, button):
    [reply] = stack.say("lang-" + uuid.uuid4().hex, text)
    assert "didn't understand" not in reply["text"], reply
    assert "support@makana.example" in reply["text"]
    assert [b["title"] for b in reply["buttons"]] == [button]
    # A yes with nothing asked is still not understood.
    [plain] = stack.say("lang-" + uuid.uuid4().hex, "yep")
    assert "didn't understand" in plain["text"]
