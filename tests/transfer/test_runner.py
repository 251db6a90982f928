"""The transfer runner end to end against simswitch's agents (user/<ext>): every strategy's
order of tries, no-answer and not-registered fall-through, all-fail fallback to the AI,
predictive mode with all agents busy, the customer hanging up, and the bridge itself."""

import json
import random

import gevent
import pytest

from controller.transfer import follow_bridge, run_transfer
from controller.transfer.screen_pop import publisher
from core import clock
from core.enums import TransferStrategy as S
from core.presence import AgentState
from core.transfer import Member, TransferGroupSpec, Trigger, order_members

# user ids 1..5 ↔ extensions 1001..1005 (see conftest.AGENTS); position = place in the list


def group(strategy, uids, ring=3, **kw):
    members = tuple(Member(u, f"100{u}", pos, f"agent{u}") for pos, u in enumerate(uids))
    return TransferGroupSpec(id=9, name="sales", strategy=strategy, ring_timeout_s=ring,
                             members=members, **kw)


def run(h, call, g, **kw):
    return run_transfer(h.link, call, g, h.presence, clock.now, h.on_event,
                        events=h.events, **kw)


def tried(result):
    return [(t.get("extension") or t.get("dial"), t["result"]) for t in result.tries]


def test_order_falls_through_no_answer_and_not_registered_to_the_one_who_answers(harness):
    h = harness
    h.agents_online(2, 3, 1)
    call = h.customer()
    result = run(h, call, group(S.ORDER, [2, 3, 1]))
    assert tried(result) == [("1002", "no_answer"), ("1003", "not_registered"),
                             ("1001", "answered")]
    assert result.ok and result.target.user_id == 1
    assert h.bridged(call) == result.agent_uuid
    rec = result.record
    assert rec["state"] == "success" and rec["target"]["extension"] == "1001"
    assert [t["result"] for t in rec["tries"]] == ["no_answer", "not_registered", "answered"]
    assert h.presence.get(1).state == AgentState.IN_CALL
    assert h.presence.get(2).missed == 1 and h.presence.get(2).state == AgentState.AVAILABLE
    assert not h.presence.get(3).registered  # the switch said so: not offered again
    assert [e["event"] for e in h.seen] == ["started", "offer", "try", "offer", "try",
                                            "offer", "answered", "succeeded"]
    # the agent hangs up: presence goes to wrap-up
    waiter = gevent.spawn(follow_bridge, h.events, h.presence, call, result, 20)
    h.link.api(f"uuid_kill {result.agent_uuid}")
    assert waiter.get(timeout=20)
    assert h.presence.get(1).state == AgentState.WRAP_UP


def test_average_tries_least_calls_then_longest_idle(harness):
    h = harness
    h.agents_online(1, 4, 5)
    for uid, calls in ((1, 3), (4, 1), (5, 0)):
        h.conn.hset(f"cc:presence:{uid}", "calls", calls)
    h.conn.hset("cc:presence:5", "registered", 1)
    call = h.customer()
    result = run(h, call, group(S.AVERAGE, [1, 4, 5]))
    assert tried(result) == [("1005", "answered")]
    h.conn.hset("cc:presence:5", "state", "in_call")  # 1005 busy now; 4 and 1 remain
    call2 = h.customer()
    result2 = run(h, call2, group(S.AVERAGE, [1, 4, 5]))
    assert tried(result2) == [("1004", "answered")]
    assert {s["user_id"]: s["reason"] for s in result2.skipped} == {5: "busy"}


def test_random_order_follows_the_seed(harness):
    h = harness
    h.agents_online(2, 3, 1)
    expected = [f"100{m.user_id}" for m in
                order_members(S.RANDOM, group(S.RANDOM, [2, 3, 1]).members, {},
                              random.Random(3))]
    call = h.customer()
    result = run(h, call, group(S.RANDOM, [2, 3, 1]), rng=random.Random(3))
    got = [t[0] for t in tried(result)]
    assert got == expected[:len(got)] and got[-1] == "1001"


def test_remote_strategy_dials_the_external_number_through_the_line(harness):
    h = harness
    call = h.customer()
    result = run(h, call, group(S.REMOTE, [], remote_dial="sofia/gateway/gw1/95555"))
    assert result.ok and tried(result) == [("sofia/gateway/gw1/95555", "answered")]
    busy = run(h, h.customer(), group(S.REMOTE, [], remote_dial="sofia/gateway/gw1/95556"))
    assert not busy.ok and busy.reason == "all_busy"
    assert tried(busy) == [("sofia/gateway/gw1/95556", "busy")]


def test_all_fail_goes_back_to_the_ai_closing_line(harness):
    h = harness
    h.agents_online(2, 3)
    call = h.customer()
    result = run(h, call, group(S.ORDER, [2, 3]))
    assert not result.ok and result.reason == "no_answer"
    assert result.fallback == "ai_closing" and not result.pause_task
    assert result.record["state"] == "failed" and result.record["reason"] == "no_answer"
    assert h.switch.switch.get(call) is not None  # the customer is still there for the AI
    assert h.bridged(call) is None


def test_missed_offers_put_an_agent_on_break(harness):
    h = harness
    h.agents_online(2)
    for _ in range(2):
        run(h, h.customer(), group(S.ORDER, [2], ring=1))
    snap = h.presence.get(2)
    assert snap.state == AgentState.BREAK and snap.reason == "missed:2"


@pytest.mark.parametrize("busy_to_ai,pause", [(True, False), (False, True), (False, False)])
def test_predictive_with_all_agents_busy(harness, busy_to_ai, pause):
    h = harness
    h.agents_online(1, 4)
    h.conn.hset("cc:presence:1", "state", "in_call")
    h.presence.set_state(4, "break")
    call = h.customer()
    result = run(h, call, group(S.ORDER, [1, 4]), trigger=Trigger.PREDICTIVE,
                 predictive_busy_to_ai=busy_to_ai, pause_when_agents_busy=pause)
    assert not result.ok and result.reason == "all_busy" and result.tries == []
    assert result.fallback == ("ai_dialogue" if busy_to_ai else "ai_closing")
    assert result.pause_task is pause
    assert result.record.get("paused_task", False) is pause
    assert {s["reason"] for s in result.skipped} == {"busy", "break"}


def test_predictive_on_answer_goes_straight_to_an_agent(harness):
    h = harness
    h.agents_online(4)
    call = h.customer()
    result = run(h, call, group(S.ORDER, [4]), trigger=Trigger.PREDICTIVE,
                 predictive_busy_to_ai=True)
    assert result.ok and result.record["trigger"] == "predictive"


def test_customer_hanging_up_while_agents_ring(harness):
    h = harness
    h.agents_online(2)
    call = h.customer()
    killer = gevent.spawn_later(0.3, h.link.api, f"uuid_kill {call}")
    result = run(h, call, group(S.ORDER, [2], ring=30))
    killer.join()
    assert result.reason == "customer_hung_up"
    assert h.presence.get(2).state == AgentState.AVAILABLE and h.presence.get(2).missed == 0


def test_without_an_event_feed_the_blocking_originate_works_too(harness):
    h = harness
    h.agents_online(3, 4)
    call = h.customer()
    result = run_transfer(h.link, call, group(S.ORDER, [3, 4]), h.presence, clock.now)
    assert tried(result) == [("1003", "not_registered"), ("1004", "answered")]


def test_screen_pop_is_published_to_the_offered_agent(harness):
    h = harness
    h.agents_online(2, 4)
    sub = h.conn.pubsub()
    sub.subscribe("cc:agent:2", "cc:agent:4")
    call = h.customer()
    pop = {"phone": "138****0001", "transcript": [{"speaker": "robot", "text": "您好"}]}
    result = run_transfer(h.link, call, group(S.ORDER, [2, 4], ring=1), h.presence, clock.now,
                          publisher(h.conn, pop), events=h.events)
    assert result.ok
    got = []
    while (m := sub.get_message(timeout=0.5)) is not None:
        if m["type"] == "message":
            got.append((m["channel"].decode(), json.loads(m["data"])))
    pops = [(ch, d["state"]) for ch, d in got if d["type"] == "screen_pop"]
    assert pops == [("cc:agent:2", "ringing"), ("cc:agent:2", "missed"),
                    ("cc:agent:4", "ringing"), ("cc:agent:4", "answered")]
    ringing = next(d for ch, d in got if d["type"] == "screen_pop" and d["state"] == "ringing")
    assert ringing["pop"] == pop and ringing["call_uuid"] == call


@pytest.mark.parametrize("stop", [gevent.GreenletExit, RuntimeError])
def test_a_runner_stopped_while_an_agent_rings_hangs_up_the_leg_and_frees_the_agent(
        harness, stop):
    # A controller that stops (GreenletExit), or a dialogue that ends under its transfer
    # (CallGone): nobody would follow the agent's leg or move the agent out of "ringing".
    h = harness
    h.agents_online(2)
    call = h.customer()
    ringing = gevent.spawn(run, h, call, group(S.ORDER, [2], ring=60))
    with gevent.Timeout(10):
        while h.presence.get(2).state != AgentState.RINGING or len(h.switch.switch.sessions) < 2:
            gevent.sleep(0.05)
    (agent_leg,) = [u for u in h.switch.switch.sessions if u != call]
    ringing.kill(stop)
    assert ringing.dead
    with gevent.Timeout(10):
        while h.switch.switch.get(agent_leg) is not None:
            gevent.sleep(0.05)
    agent = h.presence.get(2)
    assert agent.state == AgentState.AVAILABLE and agent.missed == 0 and agent.call == ""
    assert h.switch.switch.get(call) is not None  # the customer is left to the next owner
