"""The rule "grade reaches A during the call → transfer" (Task.dialogue_settings
["transfer_on_grades"]) end to end against simswitch, and the agent's screen pop showing the
dialogue so far: the transcript, the grade and the tags, though the turns are saved only
when the dialogue ends (and then once)."""

from __future__ import annotations

import json

import pytest
import redis

from core import clock
from core.presence import AgentState, agent_channel
from tests.controller.conftest import wait_until
from tests.integration.conftest import (
    SPEED,
    add_group,
    add_script,
    agents_online,
    callee,
    example_script,
    only_call,
    turns,
)
from tests.integration.test_dialogue_calls import finished

pytestmark = pytest.mark.slow

OFFER = "我们最近有一个宽带提速的优惠活动，您有兴趣了解一下吗？"
GOODBYE = "好的，稍后会有专员联系您，感谢您的接听，再见。"  # EXAMPLE's "interested" node


class Pops:
    """The screen pops published on an agent's channel (cc:agent:<user_id>)."""

    def __init__(self, world, user_id: int):
        self.sub = redis.Redis.from_url(world.redis_url).pubsub()
        self.sub.subscribe(agent_channel(user_id))
        self.got: list[dict] = []

    def __call__(self) -> list[dict]:
        while (message := self.sub.get_message(timeout=0.05)) is not None:
            if message["type"] == "message":
                data = json.loads(message["data"])
                if data.get("type") == "screen_pop":
                    self.got.append(data)
        return self.got


def interested(voice, **extra) -> dict:
    """A callee who answers the opening, then says yes to the offer (→ tag 有意向: grade A)."""
    return callee([{"say": voice("是我，你说吧"), "after_prompt": 1, "delay": 0.3},
                   {"say": voice("可以，我有兴趣"), "after_prompt": 2, "delay": 0.3}], **extra)


def test_grade_a_during_the_call_transfers_and_the_agent_sees_the_dialogue_so_far(
        world, voice):
    sw = world.simswitch({"13800000001": "c"}, speed=SPEED,
                         agents={"1001": {"answer_after": 1}},
                         outcomes={"c": interested(voice, hangup_after=60)})
    group_id, (agent,) = add_group(world, ["1001"])
    presence = agents_online(world, [agent])
    pops = Pops(world, agent)
    script_id = add_script(world, example_script())
    task_id, _ = world.seed(["13800000001"], script_id=script_id, started_at=clock.now(),
                            transfer_group_id=group_id,
                            dialogue_settings={"transfer_on_grades": ["A"]})
    world.controller(sw.port, handler=None, env={"AGENT_WRAP_UP_S": "30"})
    wait_until(lambda: presence.get(agent).state == AgentState.IN_CALL, 60)
    finished(world, task_id)  # the customer hangs up while bridged

    call = only_call(world, task_id)
    assert call.transfer["state"] == "success" and call.transfer["trigger"] == "grade"
    assert call.transfer["group_id"] == group_id and call.agent_id == agent
    assert call.grade == "A" and call.tags == ["有意向"]
    rows = turns(world, call.id)
    # The grade came with the callee's yes: the script's goodbye gave way to the transfer.
    assert [(t.speaker, t.text) for t in rows][-2:] == [("robot", OFFER),
                                                        ("callee", "可以，我有兴趣")]
    assert GOODBYE not in [t.text for t in rows]
    assert [t.seq for t in rows] == [1, 2, 3, 4]  # saved once, at the end
    ringing, answered = [p for p in pops() if p["state"] in ("ringing", "answered")]
    for pop in (ringing["pop"], answered["pop"]):
        assert pop["transcript"] == [{"speaker": t.speaker, "text": t.text} for t in rows]
        assert pop["grade"] == "A" and pop["tags"] == ["有意向"]


def test_nobody_takes_a_grade_transfer_the_ai_says_its_closing_line(world, voice):
    sw = world.simswitch({"13800000001": "c"}, speed=SPEED,
                         agents={"1002": {"answers": False}},
                         outcomes={"c": interested(voice)})
    group_id, (agent,) = add_group(world, ["1002"], ring_timeout_s=3)
    agents_online(world, [agent])
    pops = Pops(world, agent)
    script_id = add_script(world, example_script())
    closing = "抱歉，客服正忙，我们稍后联系您，再见。"
    task_id, _ = world.seed(["13800000001"], script_id=script_id, started_at=clock.now(),
                            transfer_group_id=group_id,
                            dialogue_settings={"transfer_on_grades": ["A", "B"],
                                               "closing_prompt": closing})
    world.controller(sw.port, handler=None)
    finished(world, task_id)

    call = only_call(world, task_id)
    assert call.transfer["trigger"] == "grade" and call.transfer["state"] == "failed"
    assert call.transfer["reason"] == "no_answer" and call.transfer["fallback"] == "ai_closing"
    rows = turns(world, call.id)
    assert [t.text for t in rows if t.speaker == "robot"] == [rows[0].text, OFFER, closing]
    assert call.hangup_side == "robot" and call.grade == "A"
    (ringing,) = [p for p in pops() if p["state"] == "ringing"]
    assert [t["text"] for t in ringing["pop"]["transcript"]] == [t.text for t in rows[:4]]
    assert ringing["pop"]["grade"] == "A"
