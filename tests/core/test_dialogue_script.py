"""Script schema, intents, interpreter and grading (pure)."""

import copy

import pytest

from core.dialogue import grading, intents, schema
from core.dialogue.engine import Hangup, Listen, Say, ScriptEngine, SendSms, Transfer
from core.enums import Grade


def flow(body=None):
    return schema.parse(copy.deepcopy(body or schema.EXAMPLE))


@pytest.mark.parametrize("text,want", [
    ("可以的", "affirm"), ("嗯，你说吧", "affirm"), ("好啊好啊", "affirm"),
    ("不需要，谢谢", "deny"), ("不感兴趣", "deny"), ("我不要", "deny"),
    ("别再打了，再打我投诉你", "refuse"), ("我在开会，晚点再说", "busy"),
    ("你是机器人吧", "robot"), ("你是不是AI啊", "robot"),
    ("您好，我是机主的智能助理，请问您有什么事？", "assistant"),
    ("没问题", "affirm"), ("", None), ("今天天气", None),
])
def test_builtin_intents(text, want):
    got = intents.match(text, list(intents.BUILTIN.values()))
    assert (got.intent if got else None) == want


def test_normalise_full_width_and_punctuation():
    assert intents.normalise("ＯＫ， 好的！") == "ok好的"


def test_script_intent_keywords_synonyms_regex_priority():
    a = intents.Intent.build("price", keywords=["多少钱"], synonyms=["价格"], regexes=[r"贵不贵"])
    b = intents.Intent.build("cheap", keywords=["价格"], priority=5)
    assert intents.match("价格怎么样", [a, b]).intent == "cheap"
    assert intents.match("这个贵不贵", [a, b]).intent == "price"


def test_validate_lists_every_problem():
    body = {"start": "x", "nodes": {"a": {"prompt": "hi", "branches": [
        {"intents": ["nope"], "goto": "zz"}], "actions": [{"type": "explode"}]}},
        "intents": [{"name": "bad", "regexes": ["("]}], "grading": [{"grade": "Z"}]}
    errors = schema.validate(body)
    text = " | ".join(errors)
    for part in ("start node 'x'", "unknown intent 'nope'", "missing node 'zz'",
                 "unknown type 'explode'", "bad regular expression", "grade must be"):
        assert part in text
    assert schema.validate(schema.EXAMPLE) == []
    with pytest.raises(schema.ScriptError):
        schema.parse(body)


def test_branching_on_intents_and_variables():
    e = ScriptEngine(flow(), {"姓名": "王先生"})
    cmds = e.start()
    assert isinstance(cmds[0], Say) and "王先生" in cmds[0].text and cmds[0].interruptible
    assert cmds[-1] == Listen("opening")
    cmds = e.on_utterance("是我，你说")
    assert cmds[0].node == "offer"
    cmds = e.on_utterance("可以，我有兴趣")
    assert [type(c) for c in cmds] == [Say, Hangup]
    assert not cmds[0].interruptible and cmds[0].kind == "closing"
    assert e.state.tags == ["有意向"] and e.state.score == 10
    assert e.state.nodes == ["opening", "offer", "interested"]
    assert e.on_utterance("还在吗") == []  # ended


def test_knowledge_answer_then_return():
    e = ScriptEngine(flow(), {})
    e.start()
    e.on_utterance("嗯")
    cmds = e.on_utterance("这个多少钱？")
    assert cmds[0].kind == "knowledge" and "十元" in cmds[0].text
    assert cmds[1].node == "offer" and cmds[1].kind == "prompt"
    assert cmds[-1] == Listen("offer")
    assert e.state.knowledge == ["价格"]
    cmds = e.on_utterance("你是机器人吗")  # built-in intent used as knowledge
    assert "智能客服" in cmds[0].text


def test_no_input_reprompt_then_goto():
    e = ScriptEngine(flow(), {})
    e.start()
    cmds = e.on_no_input()
    assert cmds[0].kind == "no_input" and cmds[-1] == Listen("opening")
    cmds = e.on_no_input()  # max 1 → goto bye (closing + hangup)
    assert cmds[0].node == "bye" and isinstance(cmds[-1], Hangup)


def test_no_match_counts_and_hangup_without_goto():
    body = copy.deepcopy(schema.EXAMPLE)
    body["no_match"] = {"prompt": {"text": "再说一遍？"}, "max": 1}
    e = ScriptEngine(flow(body), {})
    e.start()
    assert e.on_utterance("今天天气不错")[0].kind == "no_match"
    assert e.on_utterance("随便聊聊") == [Hangup(reason="no_match")]
    assert e.state.unrecognised == 2


def test_actions_sms_transfer_next_and_catch_all():
    body = {"start": "a", "nodes": {
        "a": {"prompt": "第一句", "next": "b"},
        "b": {"prompt": "第二句", "branches": [{"intents": ["*"], "goto": "c"}]},
        "c": {"prompt": "转人工", "actions": [{"type": "sms", "template_id": 7},
                                            {"type": "transfer", "target": "group:1"}]}}}
    e = ScriptEngine(flow(body), {})
    cmds = e.start()
    assert [c.text for c in cmds if isinstance(c, Say)] == ["第一句", "第二句"]
    cmds = e.on_utterance("随便什么")
    assert cmds == [SendSms(7), Say("转人工", None, False, "c", "closing"), Transfer("group:1")]


@pytest.mark.parametrize("facts,want", [
    (grading.CallFacts(assistant=True, intents=("affirm",)), Grade.F),
    (grading.CallFacts(intents=("busy",), turns=1), Grade.D),
    (grading.CallFacts(intents=("busy", "affirm"), turns=2, score=10), Grade.A),
    (grading.CallFacts(tags=("有意向",), turns=2), Grade.A),
    (grading.CallFacts(intents=("refuse",), turns=1), Grade.C),
    (grading.CallFacts(intents=("affirm", "deny"), turns=2), Grade.C),
    (grading.CallFacts(intents=("affirm", "affirm"), turns=2), Grade.B),
    (grading.CallFacts(turns=0), Grade.E),
])
def test_default_grades(facts, want):
    got, reasons = grading.grade(facts)
    assert got == want and reasons


def test_script_rules_come_first_with_reasons():
    rules = flow({**schema.EXAMPLE, "grading": [
        {"grade": "B", "when": {"duration_gte": 20, "turns_gte": 1}}]}).grading
    got, reasons = grading.grade(grading.CallFacts(turns=1, duration_s=25, intents=("deny",)),
                                 rules)
    assert got == Grade.B and reasons[0] == "script rule 1"
    assert any("duration 25" in r for r in reasons)
