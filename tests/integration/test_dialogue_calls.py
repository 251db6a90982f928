"""The product's call flow end to end, in-process: the dialer dials, the answered call runs its
task's script with real speech from the callee, the transfer rings simswitch's agents, and
the database ends with the call, its turns, its grade and the after-call jobs that grade
asked for. simswitch runs on a fast clock (SPEED)."""

from __future__ import annotations

import json
from datetime import time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis

from core import clock
from core.enums import ScriptMode, TaskState
from core.presence import AgentState
from tests.controller.conftest import wait_until
from tests.integration.conftest import (
    SPEED,
    add_group,
    add_script,
    agents_online,
    callee,
    example_script,
    only_call,
    outbox,
    set_variables,
    sms_rule_on_grade,
    turns,
)

pytestmark = pytest.mark.slow


def finished(world, task_id, timeout=60):
    try:
        wait_until(lambda: world.task(task_id).state == TaskState.FINISHED, timeout)
    except AssertionError:
        raise AssertionError([(c.phone, c.state, c.status, c.grade, c.transfer)
                              for c in world.calls(task_id)]) from None


def transfer_script(target: str = "") -> dict:
    """EXAMPLE, where "yes" to the offer goes to a human."""
    body = example_script()
    body["nodes"]["offer"]["branches"][-1]["goto"] = "human"
    body["nodes"]["human"] = {"prompt": {"text": "好的，现在为您转接人工客服，请稍等。"},
                              "interruptible": False,
                              "actions": [{"type": "tag", "value": "转人工"},
                                          {"type": "transfer", "target": target}]}
    return body


def test_the_answered_call_runs_its_script_and_the_after_call_rules_see_the_grade(
        world, voice):
    sw = world.simswitch({"13800000001": "c", "13800000002": "busy"}, speed=SPEED,
                         outcomes={"c": callee([
                             {"say": voice("是我，你说吧"), "after_prompt": 1, "delay": 0.3},
                             {"say": voice("可以，我有兴趣"), "after_prompt": 2,
                              "delay": 0.3}])})
    script_id = add_script(world, example_script())
    rule_id, template_id = sms_rule_on_grade(world, "A")
    task_id, _ = world.seed(["13800000001", "13800000002"], script_id=script_id,
                            started_at=clock.now())
    set_variables(world, task_id, {"姓名": "王先生"})
    world.controller(sw.port, handler=None)
    finished(world, task_id)

    answered, busy = sorted(world.calls(task_id), key=lambda c: c.phone)
    assert answered.state == "ended" and answered.status == "answered"
    assert answered.grade == "A" and answered.grade_source == "auto"
    assert answered.grade_reasons and answered.tags == ["有意向"] and answered.score == 10
    assert answered.interactions == 2 and answered.unrecognised == 0
    assert (answered.script_id, answered.script_version) == (script_id, 1)
    assert answered.hangup_side == "robot"
    assert answered.recording_path and Path(answered.recording_path).is_file()
    rows = turns(world, answered.id)
    assert [t.seq for t in rows] == list(range(1, len(rows) + 1))
    assert [t.speaker for t in rows] == ["robot", "callee", "robot", "callee", "robot"]
    assert "王先生" in rows[0].text  # the number's imported variable, spoken
    assert [t.text for t in rows if t.speaker == "callee"] == ["是我，你说吧", "可以，我有兴趣"]
    assert [t.node for t in rows] == ["opening", "opening", "offer", "offer", "interested"]
    # The after-call rule "grade A → SMS" saw the dialogue's grade.
    jobs = outbox(world, answered.id)
    assert [j.key for j in jobs] == [f"call:{answered.id}:rule:{rule_id}:sms:{template_id}"]
    assert answered.sms == {"state": "queued"}
    # A call the dialogue never ran is as before: no turns, no grade, no jobs.
    assert busy.status == "busy" and busy.grade is None
    assert turns(world, busy.id) == [] and outbox(world, busy.id) == []


def test_a_script_transfer_bridges_the_customer_to_an_agent(world, voice):
    sw = world.simswitch({"13800000001": "c"}, speed=SPEED,
                         agents={"1001": {"answer_after": 1}},
                         outcomes={"c": callee([
                             {"say": voice("是我，你说吧"), "after_prompt": 1, "delay": 0.3},
                             {"say": voice("可以，我有兴趣"), "after_prompt": 2,
                              "delay": 0.3}], hangup_after=60)})
    group_id, (agent,) = add_group(world, ["1001"])
    presence = agents_online(world, [agent])
    script_id = add_script(world, transfer_script(f"group:{group_id}"))
    task_id, _ = world.seed(["13800000001"], script_id=script_id, started_at=clock.now())
    states = live_states(world, task_id)
    world.controller(sw.port, handler=None, env={"AGENT_WRAP_UP_S": "30"})
    wait_until(lambda: presence.get(agent).state == AgentState.IN_CALL, 60)
    finished(world, task_id)  # the customer hangs up (hangup_after) while bridged

    call = only_call(world, task_id)
    assert call.transfer["state"] == "success" and call.transfer["trigger"] == "script"
    assert call.transfer["target"]["extension"] == "1001" and call.agent_id == agent
    assert call.status == "answered" and "转人工" in call.tags
    assert [t.text for t in turns(world, call.id) if t.speaker == "robot"][-1] \
        == "好的，现在为您转接人工客服，请稍等。"
    assert call.hangup_side == "callee"  # the customer ended the call with the agent
    assert presence.get(agent).state == AgentState.WRAP_UP  # followed to the end
    assert {"in_dialogue", "transferring", "bridged", "ended"} <= set(states())


def test_nobody_answers_the_transfer_the_ai_says_its_closing_line_and_hangs_up(world, voice):
    sw = world.simswitch({"13800000001": "c"}, speed=SPEED,
                         agents={"1002": {"answers": False}},
                         outcomes={"c": callee([
                             {"say": voice("是我，你说吧"), "after_prompt": 1, "delay": 0.3},
                             {"say": voice("可以，我有兴趣"), "after_prompt": 2,
                              "delay": 0.3}])})
    group_id, (agent,) = add_group(world, ["1002"], ring_timeout_s=3)
    presence = agents_online(world, [agent])
    script_id = add_script(world, transfer_script(""))
    closing = "抱歉，客服正忙，我们稍后联系您，再见。"
    task_id, _ = world.seed(["13800000001"], script_id=script_id, started_at=clock.now(),
                            transfer_group_id=group_id,  # the script names no group
                            dialogue_settings={"closing_prompt": closing})
    world.controller(sw.port, handler=None)
    finished(world, task_id)

    call = only_call(world, task_id)
    assert call.transfer["state"] == "failed" and call.transfer["reason"] == "no_answer"
    assert call.transfer["fallback"] == "ai_closing"
    assert [t["result"] for t in call.transfer["tries"]] == ["no_answer"]
    robot = [t.text for t in turns(world, call.id) if t.speaker == "robot"]
    assert robot[-2:] == ["好的，现在为您转接人工客服，请稍等。", closing]
    assert call.hangup_side == "robot" and call.status == "answered" and call.grade
    assert presence.get(agent).state == AgentState.AVAILABLE  # one miss, offered again


def test_a_by_time_task_runs_the_script_of_the_hour_or_its_fallback(world):
    def one_line(text):
        return {"start": "n", "nodes": {"n": {"prompt": {"text": text},
                                              "actions": [{"type": "hangup"}]}}}

    sw = world.simswitch({"13800000001": "c", "13800000002": "c"}, speed=SPEED,
                         outcomes={"c": callee([])})
    now = clock.now().astimezone(ZoneInfo("Asia/Shanghai"))
    here = [{"start": f"{(now - timedelta(hours=1)):%H:%M}",
             "end": f"{(now + timedelta(hours=1)):%H:%M}", "script_id": None}]
    elsewhere = [{"start": f"{(now + timedelta(hours=2)):%H:%M}",
                  "end": f"{(now + timedelta(hours=3)):%H:%M}", "script_id": None}]
    timed, fallback = add_script(world, one_line("现在是白天的话术。")), \
        add_script(world, one_line("这是兜底话术。"))
    for slots in (here, elsewhere):
        slots[0]["script_id"] = timed
    tasks = [world.seed([phone], script_mode=ScriptMode.BY_TIME, timed_scripts=slots,
                        fallback_script_id=fallback, started_at=clock.now())[0]
             for phone, slots in (("13800000001", here), ("13800000002", elsewhere))]
    world.controller(sw.port, handler=None)
    for task_id in tasks:
        finished(world, task_id)
    said = [[t.text for t in turns(world, only_call(world, task_id).id)] for task_id in tasks]
    assert said == [["现在是白天的话术。"], ["这是兜底话术。"]]
    assert [only_call(world, t).script_id for t in tasks] == [timed, fallback]


def test_a_predictive_task_goes_straight_to_an_agent_and_dials_one_call_per_free_agent(
        world):
    numbers = ["13800000001", "13800000002", "13800000003"]
    sw = world.simswitch(dict.fromkeys(numbers, "c"), speed=SPEED,
                         agents={"1004": {"answer_after": 0.5}},
                         outcomes={"c": callee([], hangup_after=8)})
    obs = world.observe(sw)
    group_id, (agent,) = add_group(world, ["1004"])
    agents_online(world, [agent])
    script_id = add_script(world, example_script())
    task_id, _ = world.seed(numbers, script_id=script_id, started_at=clock.now(),
                            transfer_group_id=group_id, predictive=True, task_max=3)
    states = live_states(world, task_id)
    world.controller(sw.port, handler=None, env={"AGENT_WRAP_UP_S": "0"})
    finished(world, task_id, timeout=90)

    calls = world.calls(task_id)
    assert len(calls) == 3 and {c.status for c in calls} == {"answered"}
    for call in calls:
        assert call.transfer["state"] == "success" and call.transfer["trigger"] == "predictive"
        assert call.agent_id == agent
        assert turns(world, call.id) == [] and call.grade is None  # no AI on these calls
    # One free agent: never more than one customer leg waiting for or talking to them
    # (customers' legs are tagged with their task; agents' legs are not).
    assert obs.peak_by_task[str(task_id)] == 1
    assert {"transferring", "bridged"} <= set(states())


def live_states(world, task_id):
    """Collect the states the dialer publishes for a task's calls (cc:task:<id>:calls)."""
    sub = redis.Redis.from_url(world.redis_url).pubsub()
    sub.subscribe(f"cc:task:{task_id}:calls")
    seen: list[str] = []

    def states() -> list[str]:
        while (message := sub.get_message(timeout=0.05)) is not None:
            if message["type"] == "message":
                seen.append(json.loads(message["data"])["state"])
        return seen
    return states


def test_script_for_picks_the_range_holding_the_local_time():
    from types import SimpleNamespace

    from controller.conversation import script_for

    task = SimpleNamespace(script_mode=ScriptMode.BY_TIME, script_id=9, fallback_script_id=5,
                           timed_scripts=[{"start": "09:00", "end": "12:00", "script_id": 1},
                                          {"start": "22:00", "end": "02:00", "script_id": 2},
                                          {"start": "bad", "end": "13:00", "script_id": 3}])
    assert script_for(task, time(9, 0)) == 1 and script_for(task, time(11, 59)) == 1
    assert script_for(task, time(12, 0)) == 5  # end excluded → fallback
    assert script_for(task, time(23, 30)) == 2 and script_for(task, time(1, 0)) == 2
    assert script_for(task, time(12, 30)) == 5
    task.script_mode = ScriptMode.UNIFIED
    assert script_for(task, time(10, 0)) == 9


def test_a_callee_who_hangs_up_mid_dialogue_still_gets_the_rules_of_its_grade(world, voice):
    # The hang-up reaches the dialer before the dialogue has saved its result; the attempt
    # waits for it, so the after-call rules see the grade.
    sw = world.simswitch({"13800000001": "c"}, speed=SPEED, outcomes={"c": callee([
        {"say": voice("是我，你说吧"), "after_prompt": 1, "delay": 0.3},
        {"hangup": True, "barge_in": 1.0}])})
    rule_id, template_id = sms_rule_on_grade(world, "A")
    with world.sessions() as s:  # any grade at all → SMS
        from core.models import PostCallRule

        s.get(PostCallRule, rule_id).conditions = {"match": "all", "items": [
            {"field": "grade", "op": "in", "value": list("ABCDEF")}]}
        s.commit()
    script_id = add_script(world, example_script())
    task_id, _ = world.seed(["13800000001"], script_id=script_id, started_at=clock.now())
    world.controller(sw.port, handler=None)
    finished(world, task_id)

    call = only_call(world, task_id)
    assert call.hangup_side == "callee" and call.status == "answered" and call.grade
    assert [t.speaker for t in turns(world, call.id)][:2] == ["robot", "callee"]
    assert [j.key for j in outbox(world, call.id)] == [
        f"call:{call.id}:rule:{rule_id}:sms:{template_id}"]


def test_a_screening_assistant_that_answers_ends_as_screened_with_grade_f(world, voice):
    line = "您好，我是机主的智能助理，请问您有什么事？"
    sw = world.simswitch({"13800000001": "c"}, speed=SPEED, outcomes={"c": callee([
        {"say": voice(line), "after_prompt": 1, "delay": 0.2},
        {"hangup": True, "after_silence": 3}])})
    script_id = add_script(world, example_script())
    task_id, _ = world.seed(["13800000001"], script_id=script_id, started_at=clock.now())
    world.controller(sw.port, handler=None)
    finished(world, task_id)

    call = only_call(world, task_id)
    # answered (and recorded), but by the assistant: 用户屏蔽, not 呼叫成功
    assert (call.status, call.grade, call.announcement) == ("screened", "F", "智能助理")
    assert call.answered_at and call.recording_path


def test_a_task_that_pauses_when_agents_are_busy_does_not_dial_without_a_free_agent(world):
    sw = world.simswitch({"13800000001": "talk"}, speed=SPEED)
    group_id, _agents = add_group(world, ["1001"])  # offline: nobody is free
    task_id, _ = world.seed(["13800000001"], transfer_group_id=group_id,
                            pause_when_agents_busy=True)
    notices = redis.Redis.from_url(world.redis_url).pubsub()
    notices.subscribe("cc:tasks")
    world.controller(sw.port)
    wait_until(lambda: world.task(task_id).state == TaskState.PAUSED, 10)
    assert world.calls(task_id) == []
    got = [json.loads(m["data"]) for m in iter(lambda: notices.get_message(timeout=0.2), None)
           if m["type"] == "message"]
    assert {"task_id": task_id, "state": "paused"} in got
