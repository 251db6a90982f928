"""A controller process stopped (SIGTERM) or killed (SIGKILL) in the middle of a dialogue and
started again: the call is taken over, not dialled again, its script not run again from the
start, and what the first process saved is kept as it was."""

from __future__ import annotations

import signal
from collections import Counter

import gevent
import pytest

from controller.esl import NodeLink
from core import clock
from core.enums import NumberState, TaskState
from core.settings import FsNode
from tests.controller.conftest import wait_until
from tests.controller.test_restart import _controller_process
from tests.integration.conftest import SPEED, add_script, callee, example_script, turns

pytestmark = pytest.mark.slow


class Playbacks:
    """Counts PLAYBACK_START per channel on a second Event Socket connection."""

    def __init__(self, port: int):
        self.started: Counter[str] = Counter()
        self.created: list[str] = []
        self.link = NodeLink(FsNode("watch", "127.0.0.1", port, "ClueCon"),
                             events=("PLAYBACK_START", "CHANNEL_CREATE"), on_event=self.seen)
        gevent.spawn(self.link.run)
        assert self.link.up.wait(5)

    def seen(self, _node, headers, _body):
        if headers.get("Event-Name") == "CHANNEL_CREATE":
            self.created.append(headers.get("Unique-ID"))
        else:
            self.started[headers.get("Unique-ID")] += 1


@pytest.mark.parametrize("how", ["term", "kill"])
def test_a_controller_restarted_mid_dialogue_neither_repeats_nor_loses_it(world, voice, how):
    # The callee answers the opening, then stays silent: the offer, a re-prompt and the
    # goodbye take about 15 s of the switch's time — the window to stop the controller in.
    sw = world.simswitch({"13800000001": "c"}, speed=SPEED, outcomes={"c": callee([
        {"say": voice("是我，你说吧"), "after_prompt": 1, "delay": 0.3}], hangup_after=300)})
    watch = Playbacks(sw.port)
    script_id = add_script(world, example_script())
    task_id, _ = world.seed(["13800000001"], script_id=script_id, started_at=clock.now())

    first = _controller_process(world, sw.port)
    wait_until(lambda: sum(watch.started.values()) >= 2, 90)  # the offer is playing
    first.send_signal(signal.SIGTERM if how == "term" else signal.SIGKILL)
    first.wait(20)
    played = sum(watch.started.values())
    (call,) = world.calls(task_id)
    saved = [(t.seq, t.speaker, t.text) for t in turns(world, call.id)]
    if how == "term":  # it saved the dialogue so far: the opening and the answer (at least)
        assert [s for _, s, _ in saved[:2]] == ["robot", "callee"] and call.grade
        assert call.state != "ended"  # the call goes on: the next controller takes it over
    else:
        assert saved == [] and call.grade is None  # died with it, nothing to keep

    _controller_process(world, sw.port)
    log = world.tmp / "controller1.log"
    wait_until(lambda: world.task(task_id).state == TaskState.FINISHED, 60)
    (call,) = world.calls(task_id)
    assert call.state == "ended" and call.status == "answered"
    assert [(t.seq, t.speaker, t.text) for t in turns(world, call.id)] == saved
    assert sum(watch.started.values()) == played  # no prompt played after the restart
    assert watch.created == [call.uuid]  # dialled once
    (number,) = world.numbers(task_id)
    assert number.state == NumberState.DONE and number.attempts == 1
    assert "taken over mid-call" in log.read_text()


def test_a_call_bridged_to_an_agent_survives_a_controller_restart(world):
    """Stopped while the customer talks to an agent: the call is left alone, and the next
    controller follows the bridge (the agent goes to wrap-up when it ends)."""
    from core.presence import AgentState
    from tests.integration.conftest import add_group, agents_online, only_call

    sw = world.simswitch({"13800000001": "c"}, speed=SPEED,
                         agents={"1004": {"answer_after": 0.5}},
                         outcomes={"c": callee([], hangup_after=40)})
    group_id, (agent,) = add_group(world, ["1004"])
    presence = agents_online(world, [agent])
    task_id, _ = world.seed(["13800000001"], transfer_group_id=group_id, predictive=True,
                            started_at=clock.now())
    first = world.controller(sw.port, handler=None, env={"AGENT_WRAP_UP_S": "30"})
    wait_until(lambda: presence.get(agent).state == AgentState.IN_CALL, 30)
    first.stop()
    world.controllers.remove(first)
    assert only_call(world, task_id).state == "bridged"  # left on the switch, not ended

    world.controller(sw.port, handler=None, env={"AGENT_WRAP_UP_S": "30"})
    wait_until(lambda: world.task(task_id).state == TaskState.FINISHED, 30)
    call = only_call(world, task_id)
    assert call.status == "answered" and call.transfer["state"] == "success"
    assert call.hangup_side == "callee"  # the customer ended it, not a controller
    assert presence.get(agent).state == AgentState.WRAP_UP


@pytest.mark.parametrize("how", ["script", "predictive"])
def test_a_controller_stopped_while_an_agent_rings_frees_the_agent_and_ends_their_leg(
        world, voice, how, tmp_path):
    """SIGTERM while the agent's phone rings: the stopping controller hangs up the agent's
    leg and gives the agent back; the next one takes the customer over and hangs up. The
    script variant runs its dialogue in the real (monkey-patched) process with a cold TTS
    cache: every prompt is synthesised there."""
    from core.presence import AgentState
    from tests.integration.conftest import add_group, agents_online, only_call
    from tests.integration.test_dialogue_calls import transfer_script

    steps = [{"say": voice("是我，你说吧"), "after_prompt": 1, "delay": 0.3},
             {"say": voice("可以，我有兴趣"), "after_prompt": 2, "delay": 0.3}]
    sw = world.simswitch({"13800000001": "c"}, speed=SPEED,
                         agents={"1002": {"answers": False}},
                         outcomes={"c": callee(steps if how == "script" else [],
                                               hangup_after=600)})
    obs = world.observe(sw)
    group_id, (agent,) = add_group(world, ["1002"], ring_timeout_s=600)
    presence = agents_online(world, [agent])
    fields = {"predictive": True} if how == "predictive" else \
        {"script_id": add_script(world, transfer_script(f"group:{group_id}"))}
    task_id, _ = world.seed(["13800000001"], transfer_group_id=group_id,
                            started_at=clock.now(), **fields)
    cold = tmp_path / "cold-prompts"
    first = _controller_process(world, sw.port, PROMPTS_DIR=str(cold))
    wait_until(lambda: presence.get(agent).state == AgentState.RINGING and obs.live == 2, 90)
    first.send_signal(signal.SIGTERM)
    # Waited for cooperatively: simswitch, in this process, must answer what it sends.
    wait_until(lambda: first.poll() is not None, 20)
    assert first.returncode == 0
    snap = presence.get(agent)
    assert snap.state == AgentState.AVAILABLE and snap.call == "" and snap.missed == 0
    wait_until(lambda: obs.live == 1, 10)  # the customer's leg only
    call = only_call(world, task_id)
    assert call.state == "transferring"  # left on the switch for the next controller
    if how == "script":
        robot = [t.text for t in turns(world, call.id) if t.speaker == "robot"]
        assert robot[-1] == "好的，现在为您转接人工客服，请稍等。"
        assert len(list(cold.rglob("*.wav"))) >= len(robot)  # synthesised in that process

    _controller_process(world, sw.port, PROMPTS_DIR=str(cold))
    wait_until(lambda: world.task(task_id).state == TaskState.FINISHED, 60)
    call = only_call(world, task_id)
    assert call.state == "ended" and call.status == "answered"
    assert presence.get(agent).state == AgentState.AVAILABLE
    assert obs.live == 0 and len(obs.created) == 2  # the customer, and one agent leg
