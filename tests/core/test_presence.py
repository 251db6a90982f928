"""Agent presence in a real Redis: the state machine, wrap-up, missed offers, and two
controller processes that share it without ever offering one agent two calls."""

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta

import pytest
import redis

from core.presence import AgentState, Presence, Release, agent_channel
from core.settings import ROOT


class Clock:
    def __init__(self):
        self.t = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self):
        return self.t

    def advance(self, s):
        self.t += timedelta(seconds=s)


@pytest.fixture
def conn(redis_url):
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def presence(conn, clock):
    return Presence(conn, wrap_up_s=10, max_missed=2, clock=clock)


def online(p, uid):
    p.set_state(uid, "available")
    p.set_registered(uid, True)


def test_unknown_agent_is_offline(presence):
    s = presence.get(1)
    assert s.state == AgentState.OFFLINE and not s.registered


def test_full_cycle_with_wrap_up(presence, clock):
    online(presence, 1)
    assert presence.claim(1, "c1") == "ok"
    assert presence.claim(1, "c2") == "ringing"  # taken: nobody else can offer it
    assert presence.get(1).state == AgentState.RINGING
    assert presence.answered(1, "c1")
    assert presence.get(1).state == AgentState.IN_CALL and presence.get(1).calls == 1
    assert presence.ended(1, "other") == ""  # a stale event for another call changes nothing
    assert presence.ended(1, "c1") == "wrap_up"
    assert presence.claim(1, "c3") == "wrap_up"
    clock.advance(9)
    assert presence.get(1).state == AgentState.WRAP_UP
    clock.advance(1)
    assert presence.get(1).state == AgentState.AVAILABLE
    assert presence.claim(1, "c3") == "ok"


def test_an_offer_nobody_ended_frees_the_agent_at_its_ring_limit(presence, clock):
    # its controller was killed while the agent's phone rang: no release ever comes
    online(presence, 1)
    assert presence.claim(1, "c1", ring_s=40) == "ok"
    presence.set_state(1, "break")  # chosen while ringing: applies when the offer ends
    clock.advance(39)
    assert presence.get(1).state == AgentState.RINGING
    assert presence.claim(1, "c2") == "ringing"
    clock.advance(1)
    s = presence.get(1)
    assert (s.state, s.call) == (AgentState.BREAK, "")
    assert presence.release(1, "c1", Release.MISSED) == ""  # a late runner changes nothing
    assert presence.get(1).missed == 0
    online(presence, 1)
    assert presence.claim(1, "c2", ring_s=40) == "ok" and presence.answered(1, "c2")
    clock.advance(100)  # a taken call does not expire
    assert presence.get(1).state == AgentState.IN_CALL


def test_unregistered_agent_is_not_offered(presence):
    presence.set_state(1, "available")
    assert presence.claim(1, "c1") == "not_registered"
    presence.set_registered(1, True)
    assert presence.claim(1, "c1") == "ok"
    assert presence.release(1, "c1", Release.NOT_REGISTERED) == "available"
    assert not presence.get(1).registered
    assert presence.claim(1, "c2") == "not_registered"


def test_missed_offers_put_the_agent_on_break_with_a_reason(presence, conn):
    sub = conn.pubsub()
    sub.subscribe(agent_channel(1))
    online(presence, 1)
    assert presence.claim(1, "c1") == "ok"
    assert presence.release(1, "c1", Release.MISSED) == "available"
    assert presence.claim(1, "c2") == "ok"
    assert presence.release(1, "c2", Release.MISSED) == "break"
    s = presence.get(1)
    assert s.state == AgentState.BREAK and s.reason == "missed:2"
    assert presence.claim(1, "c3") == "break"
    events = []
    while (m := sub.get_message(timeout=0.5)) is not None:
        if m["type"] == "message":
            events.append(json.loads(m["data"]))
    assert events[-1]["state"] == "break" and events[-1]["reason"] == "missed:2"
    presence.set_state(1, "available")
    assert presence.get(1).missed == 0 and presence.get(1).reason == ""


def test_answer_resets_the_missed_count_and_cancel_does_not_count(presence):
    online(presence, 1)
    presence.claim(1, "c1")
    presence.release(1, "c1", Release.MISSED)
    presence.claim(1, "c2")
    presence.release(1, "c2", Release.CANCELLED)
    assert presence.get(1).missed == 1
    presence.claim(1, "c3")
    presence.answered(1, "c3")
    assert presence.get(1).missed == 0


def test_break_chosen_during_a_call_applies_when_it_ends(presence, clock):
    online(presence, 1)
    presence.claim(1, "c1")
    presence.answered(1, "c1")
    assert presence.set_state(1, "break") == "after:break"
    assert presence.get(1).state == AgentState.IN_CALL
    presence.ended(1, "c1")
    clock.advance(10)
    assert presence.get(1).state == AgentState.BREAK


def test_manual_states_only(presence):
    with pytest.raises(ValueError):
        presence.set_state(1, "in_call")


def test_free_count_and_many(presence):
    online(presence, 1)
    online(presence, 2)
    presence.set_state(3, "available")
    presence.claim(2, "x")
    assert presence.free_count([1, 2, 3, 4]) == 1
    assert set(presence.many([1, 2, 3])) == {1, 2, 3}


WORKER = textwrap.dedent("""
    import sys, time, redis
    from core.presence import Presence
    conn = redis.Redis.from_url(sys.argv[1])
    p = Presence(conn, wrap_up_s=0, max_missed=1000)
    name, rounds, agents = sys.argv[2], int(sys.argv[3]), [1, 2, 3]
    conn.incr("test:ready")
    while int(conn.get("test:ready")) < 2:  # start together, to really race
        time.sleep(0.001)
    taken = 0
    for i in range(rounds):
        call = f"{name}-{i}"
        for a in agents:
            if p.claim(a, call) == "ok":
                if conn.incr(f"test:holding:{a}") != 1:
                    conn.incr("test:overlap")
                p.answered(a, call)
                conn.decr(f"test:holding:{a}")
                p.ended(a, call)
                taken += 1
                break
    conn.incrby(f"test:taken:{name}", taken)
    print(taken)
""")


def test_two_controller_processes_share_presence(presence, conn, redis_url):
    for a in (1, 2, 3):
        online(presence, a)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, redis_url, name, "300"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
             for name in ("ctl-a", "ctl-b")]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert conn.get("test:overlap") is None  # no agent was ever offered two calls at once
    taken = [int(o.strip()) for o in outs]
    assert all(n > 0 for n in taken)  # both processes really took calls
    assert sum(presence.get(a).calls for a in (1, 2, 3)) == sum(taken)
    # A state one process writes is what the other reads.
    presence.set_state(2, "break")
    other = subprocess.run(
        [sys.executable, "-c", "import sys, redis; from core.presence import Presence; "
         "print(Presence(redis.Redis.from_url(sys.argv[1])).get(2).state)", redis_url],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert other.stdout.strip() == "break"
