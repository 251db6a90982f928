"""The pure transfer rules: order of tries per strategy, skips, failure reasons, fallbacks."""

import random

import pytest

from core import transfer as t
from core.enums import TransferStrategy as S


def group(strategy, members, **kw):
    return t.TransferGroupSpec(id=1, name="sales", strategy=strategy, members=tuple(members), **kw)


M = [t.Member(10, "1001", 0, "A"), t.Member(11, "1002", 1, "B"), t.Member(12, "1003", 2, "C")]


def free(calls=0, idle=0.0):
    return t.AgentView("available", True, calls, idle)


def exts(plan):
    return [x.extension for x in plan.targets]


def test_order_is_top_down():
    agents = {10: free(5), 11: free(0), 12: free(9)}
    assert exts(t.plan(group(S.ORDER, reversed(M)), agents)) == ["1001", "1002", "1003"]


def test_average_takes_least_calls_then_longest_idle():
    agents = {10: free(3, 100.0), 11: free(1, 500.0), 12: free(1, 200.0)}
    assert exts(t.plan(group(S.AVERAGE, M), agents)) == ["1003", "1002", "1001"]
    # all equal: the group's order decides
    agents = {10: free(), 11: free(), 12: free()}
    assert exts(t.plan(group(S.AVERAGE, M), agents)) == ["1001", "1002", "1003"]


def test_random_is_a_seeded_permutation_that_varies():
    agents = {10: free(), 11: free(), 12: free()}
    seen = set()
    for seed in range(30):
        order = exts(t.plan(group(S.RANDOM, M), agents, random.Random(seed)))
        assert sorted(order) == ["1001", "1002", "1003"]
        seen.add(tuple(order))
    assert len(seen) > 3
    again = [exts(t.plan(group(S.RANDOM, M), agents, random.Random(4))) for _ in range(2)]
    assert again[0] == again[1]


def test_remote_tries_the_external_number_only():
    p = t.plan(group(S.REMOTE, M, remote_dial="sofia/gateway/gw1/95555"), {})
    assert [x.dial for x in p.targets] == ["sofia/gateway/gw1/95555"]
    assert t.plan(group(S.REMOTE, M), {}).targets == ()


def test_busy_offline_break_unregistered_are_skipped_with_reasons():
    members = M + [t.Member(13, "1004", 3), t.Member(14, None, 4), t.Member(15, "1006", 5)]
    agents = {10: t.AgentView("in_call", True), 11: t.AgentView("break", True),
              12: t.AgentView("available", False), 13: free(), 14: free(),
              15: t.AgentView("wrap_up", True)}
    p = t.plan(group(S.ORDER, members), agents)
    assert exts(p) == ["1004"]
    assert {s["user_id"]: s["reason"] for s in p.skipped} == {
        10: "busy", 11: "break", 12: "not_registered", 14: "no_extension", 15: "busy"}
    p = t.plan(group(S.ORDER, [t.Member(99, "1099")]), {})
    assert p.skipped[0]["reason"] == "offline"


@pytest.mark.parametrize("cause,result", [
    ("NO_ANSWER", "no_answer"), ("ORIGINATOR_CANCEL", "no_answer"), ("USER_BUSY", "busy"),
    ("CALL_REJECTED", "rejected"), ("USER_NOT_REGISTERED", "not_registered"),
    ("NORMAL_TEMPORARY_FAILURE", "failed"), ("whatever", "failed")])
def test_causes(cause, result):
    assert t.classify_cause(cause) == result


def test_failure_reasons():
    g = group(S.ORDER, M)
    assert t.failure_reason(group(S.ORDER, []), []) == "no_members"
    assert t.failure_reason(g, []) == "all_busy"
    assert t.failure_reason(g, [{"result": "not_registered"}, {"result": "busy"}]) == "all_busy"
    assert t.failure_reason(g, [{"result": "not_registered"}, {"result": "no_answer"}]) \
        == "no_answer"
    assert t.failure_reason(g, [{"result": "failed"}]) == "switch_error"


def test_fallbacks_and_pause():
    assert t.fallback(t.Trigger.SCRIPT, True) == t.Fallback.AI_CLOSING
    assert t.fallback(t.Trigger.GRADE, False) == t.Fallback.AI_CLOSING
    assert t.fallback(t.Trigger.PREDICTIVE, True) == t.Fallback.AI_DIALOGUE
    assert t.fallback(t.Trigger.PREDICTIVE, False) == t.Fallback.AI_CLOSING
    assert t.pause_task(True, t.FailReason.ALL_BUSY)
    assert not t.pause_task(True, t.FailReason.NO_ANSWER)
    assert not t.pause_task(False, t.FailReason.ALL_BUSY)


def test_dial_gate():
    kw = dict(predictive=False, pause_when_agents_busy=False, predictive_busy_to_ai=False)
    assert t.dial_gate(**kw, free_agents=0) == t.Gate.DIAL
    assert t.dial_gate(**{**kw, "pause_when_agents_busy": True}, free_agents=0) == t.Gate.PAUSE
    pred = {**kw, "predictive": True}
    assert t.dial_gate(**pred, free_agents=2, predictive_in_flight=1) == t.Gate.DIAL
    assert t.dial_gate(**pred, free_agents=2, predictive_in_flight=2) == t.Gate.HOLD
    assert t.dial_gate(**{**pred, "predictive_busy_to_ai": True}, free_agents=0) == t.Gate.DIAL


def test_mask_and_screen_pop():
    assert t.mask_phone("13800138000") == "138****8000"
    assert t.mask_phone("13800138000", "none") == "13800138000"
    assert t.mask_phone("13800138000", "all") == "*********00"
    pop = t.screen_pop(call_uuid="u", call_id=3, phone="13800138000", mask="middle",
                       variables={"name": "王"}, transcript=[{"speaker": "robot", "text": "您好",
                                                              "x": 1}], grade="A", tags=["vip"])
    assert pop["phone"] == "138****8000" and pop["transcript"] == [{"speaker": "robot",
                                                                    "text": "您好"}]


def test_record_shape():
    g = group(S.ORDER, M)
    target = t.Target("user/1001", 10, "1001", "A")
    rec = t.record(t.TransferState.SUCCESS, trigger=t.Trigger.SCRIPT, group=g, target=target,
                   reason=None, tries=[{"extension": "1001", "result": "answered"}])
    assert rec["state"] == "success" and rec["target"] == {"dial": "user/1001", "user_id": 10,
                                                           "extension": "1001", "name": "A"}


def test_grade_trigger():
    settings = {"transfer_on_grades": ["A"]}
    assert t.grade_trigger(settings, "A")
    assert not t.grade_trigger(settings, "B")
    assert not t.grade_trigger(settings, "A", {"state": "failed"})  # once per call
    assert not t.grade_trigger({}, "A") and not t.grade_trigger(None, None)
