"""Links that drop and controllers that die: no attempt lost, none duplicated, CDRs reconcile."""

from __future__ import annotations

import itertools
import os
import re
import signal
import socket
import subprocess
import sys
from collections import Counter

import gevent
import pytest

from controller.esl import EslError
from core.enums import NumberState, TaskState
from core.settings import ROOT
from tests.controller.conftest import EXPECTED, phones, wait_until

pytestmark = pytest.mark.slow

LONG_PROMPT = {"opening_prompt": "tone_stream://%(60000,0,440);loops=1"}


def mixed(numbers, names):
    cycle = itertools.cycle(names)
    return {n: next(cycle) for n in numbers}


def check_campaign(world, task_id, plan, created):
    calls = world.calls(task_id)
    by_phone = Counter(c.phone for c in calls)
    assert set(by_phone) == set(plan) and set(by_phone.values()) == {1}, by_phone
    assert len(created) == len(set(created)) == len(plan)  # the switch saw each number once
    for call in calls:
        assert call.state == "ended", call.phone
        assert call.status == EXPECTED[plan[call.phone]], (
            call.phone, plan[call.phone], call.status, call.sip_code, call.hangup_cause)
    assert all(n.state == NumberState.DONE and n.attempts == 1
               for n in world.numbers(task_id))


def test_esl_drop_reconnects_and_resyncs(world):
    numbers = phones(60)
    plan = mixed(numbers, ["talk_long", "busy", "vacant", "no_answer"])
    sw = world.simswitch(plan, cdr=True)
    obs = world.observe(sw)
    task_id, _ = world.seed(numbers, task_max=20, line_max=20, dialogue_settings=LONG_PROMPT)
    ctl = world.controller(sw.port, cdr_wait_s=3)
    link = ctl.links["sim"]
    wait_until(lambda: len(obs.created) >= 25 and obs.live >= 10, 30)

    # The connection drops under the controller, and stays down for a while.
    connect = link._connect
    link._connect = lambda: (_ for _ in ()).throw(EslError("node unreachable"))
    link._conn.sock.shutdown(socket.SHUT_RDWR)
    wait_until(lambda: not link.up.is_set(), 5)
    gevent.sleep(1.5)
    link._connect = connect
    wait_until(lambda: link.up.is_set(), 10)  # it reconnects with back-off …

    wait_until(lambda: world.task(task_id).state == TaskState.FINISHED, 90)
    # … and resynchronised: calls that ended while it was away were ended, not lost.
    assert ctl.dialer.vanished > 0
    try:
        wait_until(lambda: all(c.status for c in world.calls(task_id)), 20)  # CDRs reconcile
    except AssertionError:
        raise AssertionError([(c.phone, plan[c.phone], c.state, c.sip_code, c.hangup_cause,
                               c.cdr is not None, c.answered_at)
                              for c in world.calls(task_id) if not c.status]) from None
    check_campaign(world, task_id, plan, obs.created)
    assert obs.peak <= 20


def _controller_process(world, port, **settings):
    """`manage run controller` as its own (monkey-patched) process; `settings` add to its
    environment."""
    _, env = world.settings(port, FS_SESSIONS_PER_SECOND="200", LOG_LEVEL="INFO", **settings)
    env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    log = open(world.tmp / f"controller{len(world.controllers)}.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "scripts.manage", "run", "controller"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    world.controllers.append(_Proc(proc))
    return proc


class _Proc:
    def __init__(self, proc):
        self.proc = proc

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def test_kill_the_controller_mid_campaign_and_start_it_again(world):
    numbers = phones(80)
    plan = mixed(numbers, ["talk_long", "busy", "no_answer", "vacant", "talk_long"])
    sw = world.simswitch(plan, cdr=True, speed=5)
    obs = world.observe(sw)
    task_id, _ = world.seed(numbers, task_max=20, line_max=20, dialogue_settings=LONG_PROMPT)

    first = _controller_process(world, sw.port)
    wait_until(lambda: len(obs.created) >= 30 and obs.live >= 10, 60)
    first.send_signal(signal.SIGKILL)  # no goodbye: calls go on without it
    first.wait(10)
    live_at_kill = obs.live
    gevent.sleep(0.5)  # some calls end while no controller is there
    assert live_at_kill > 0

    _controller_process(world, sw.port)
    log = world.tmp / "controller1.log"
    wait_until(lambda: "resynchronised" in log.read_text(), 30)
    # It took over the calls still live on the switch.
    assert re.search(r"resynchronised \(([1-9]\d*) live channels\)", log.read_text())
    wait_until(lambda: world.task(task_id).state == TaskState.FINISHED, 120)
    wait_until(lambda: all(c.status for c in world.calls(task_id)), 30)
    check_campaign(world, task_id, plan, obs.created)
    assert obs.peak <= 20
    # Every attempt's CDR reached the console and was reconciled into its row.
    assert world.cdr.count >= len(numbers)
    assert all(c.cdr is not None for c in world.calls(task_id))


def test_a_node_that_is_down_takes_no_calls_its_line_moves_to_the_node_up(world):
    numbers = phones(30)
    plan = dict.fromkeys(numbers, "talk_long")
    sw1, sw2 = world.simswitch(plan), world.simswitch(plan)
    obs1, obs2 = world.observe(sw1), world.observe(sw2)
    task_id, line_id = world.seed(numbers, task_max=6, line_max=6,
                                  dialogue_settings=LONG_PROMPT)
    with world.sessions() as s:
        from core.models import Line

        s.get(Line, line_id).fs_node = "fs1"  # the line prefers fs1
        s.commit()
    from controller.service import build

    settings, _ = world.settings(
        0, FS_NODES=f"fs1=127.0.0.1:{sw1.port}:ClueCon,fs2=127.0.0.1:{sw2.port}:ClueCon")
    ctl = build(settings, tick=0.02, reload_s=0.5, cps=200, lease_s=3, node_lost_s=2,
                cdr_wait_s=2).start()
    world.controllers.append(ctl)
    wait_until(lambda: len(obs1.created) >= 6, 20)
    assert obs2.created == []  # fs1 is up: the line's calls go there

    link = ctl.links["fs1"]
    link._connect = lambda: (_ for _ in ()).throw(EslError("node unreachable"))
    link._conn.sock.shutdown(socket.SHUT_RDWR)  # fs1 goes away
    wait_until(lambda: not link.up.is_set(), 5)
    before = len(obs1.created)
    try:
        wait_until(lambda: world.task(task_id).state == TaskState.FINISHED, 90)
    except AssertionError:
        raise AssertionError((Counter(n.state for n in world.numbers(task_id)),
                              [(c.state, c.status, c.hangup_cause, c.fs_node)
                               for c in world.calls(task_id) if c.status is None],
                              ctl.dialer.tasks.keys(), ctl.dialer.idle_until)) from None
    assert len(obs1.created) == before  # no new call on the node that is down
    assert len(obs2.created) > 0
    assert obs2.peak <= 6
    calls = world.calls(task_id)
    assert Counter(c.phone for c in calls) == dict.fromkeys(numbers, 1)
    assert {c.fs_node for c in calls} == {"fs1", "fs2"}
