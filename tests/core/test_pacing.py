"""Pacing rules (property tests) and the Redis line-slot leases on a real Redis."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from core.enums import NumberState
from core.pacing import (
    Demand,
    LineSlots,
    RateLimiter,
    RedialRule,
    SlotPacer,
    fair_order,
    pick_node,
    settle_number,
)

# -- SlotPacer ------------------------------------------------------------------------------

ops = st.lists(st.tuples(st.sampled_from(["take", "release"]),
                         st.floats(0, 5, allow_nan=False)), max_size=60)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 8), st.sampled_from([0, 1, 3]), ops)
def test_pacer_never_exceeds_its_size_and_respects_the_interval(size, interval, steps):
    pacer = SlotPacer(size, interval)
    now = 0.0
    released_at: list[float] = []
    for op, dt in steps:
        now += dt
        if op == "take":
            before = pacer.active
            if pacer.take(now):
                assert pacer.active == before + 1
                # A slot was free: fewer than `size` calls live or cooling.
                cooling = sum(1 for t in released_at if t + interval > now)
                assert before + cooling < size
        elif pacer.active:
            pacer.release(now)
            released_at.append(now)
        assert 0 <= pacer.active <= size


def test_pacer_interval_per_slot():
    pacer = SlotPacer(2, interval=3)
    assert pacer.take(0) and pacer.take(0) and not pacer.take(0)
    pacer.release(10)
    assert not pacer.take(12.9)
    assert pacer.next_ready(12.9) == 13
    assert pacer.take(13)
    pacer.resize(3, 0)
    assert pacer.take(13) and not pacer.take(13)


def test_auto_interval_frees_at_once():
    pacer = SlotPacer(1)
    assert pacer.take(0)
    pacer.release(1)
    assert pacer.take(1)


# -- fair share -----------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 20), st.integers(0, 20)), min_size=1, max_size=5),
       st.integers(1, 60))
def test_fair_share_splits_a_line_in_proportion(tasks, line_max):
    """Hand out a line's slots one at a time by fair_order: no task exceeds its maximum, and
    shares stay within one slot of proportional while every task still wants more."""
    maxima = {i: m for i, (m, _) in enumerate(tasks)}
    active = dict.fromkeys(maxima, 0)
    for _ in range(line_max):
        order = fair_order(Demand(t, active[t], maxima[t], 0.0) for t in maxima)
        if not order:
            break
        active[order[0]] += 1
        assert all(active[t] <= maxima[t] for t in maxima)
        wanting = [t for t in maxima if active[t] < maxima[t]]
        for a in wanting:
            for b in maxima:
                # b got more than its share relative to a by more than one slot: unfair.
                assert active[b] / maxima[b] <= active[a] / maxima[a] + 1 / maxima[b] + 1e-9


def test_fair_share_ties_go_to_the_longest_waiting():
    order = fair_order([Demand(1, 1, 2, last_dial=5.0), Demand(2, 1, 2, last_dial=3.0),
                        Demand(3, 2, 2)])
    assert order == [2, 1]


# -- rate, redial, node ---------------------------------------------------------------------

def test_rate_limiter_caps_starts_per_second():
    limiter = RateLimiter(rate=10, burst=2)
    starts = sum(limiter.try_take(i / 1000) for i in range(3000))  # 3 s in 1 ms steps
    assert 30 <= starts <= 32


NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_settle_number_redials_by_rule_up_to_max_attempts():
    rule = RedialRule(max_attempts=3, statuses=frozenset({"busy", "no_answer"}), interval_s=60)
    assert settle_number("busy", 1, rule, NOW) == (NumberState.PENDING, NOW + timedelta(seconds=60))
    assert settle_number("busy", 3, rule, NOW) == (NumberState.DONE, None)
    assert settle_number("answered", 1, rule, NOW) == (NumberState.DONE, None)
    assert settle_number(None, 1, rule, NOW) == (NumberState.DONE, None)
    assert settle_number("busy", 1, RedialRule(), NOW) == (NumberState.DONE, None)


def test_pick_node_moves_a_down_nodes_line_to_the_nodes_up():
    assert pick_node("fs1", ["fs1", "fs2"], {}) == "fs1"
    assert pick_node("fs1", ["fs2", "fs3"], {"fs2": 5, "fs3": 1}) == "fs3"
    assert pick_node(None, ["fs2", "fs3"], {"fs2": 0, "fs3": 1}) == "fs2"
    assert pick_node(None, [], {}) is None


# -- LineSlots on a real Redis --------------------------------------------------------------

def test_line_slots_enforce_line_and_task_limits(redis_url):
    slots = LineSlots(redis.Redis.from_url(redis_url))
    assert slots.acquire(1, 10, "a", line_max=3, task_max=2)
    assert slots.acquire(1, 10, "b", 3, 2)
    assert not slots.acquire(1, 10, "c", 3, 2)  # the task is full
    assert slots.acquire(1, 11, "c", 3, 2)
    assert not slots.acquire(1, 11, "d", 3, 2)  # the line is full
    assert slots.acquire(1, 10, "a", 3, 2)  # renewing a held slot always works
    assert (slots.line_count(1), slots.task_count(10), slots.task_count(11)) == (3, 2, 1)
    slots.release(1, 10, "a")
    assert slots.acquire(1, 11, "d", 3, 2)
    assert slots.acquire(1, 12, "e", -1, -1)  # adoption after a restart: no limit
    assert slots.line_count(1) == 4


def test_line_slots_leases_lapse_unless_renewed(redis_url):
    slots = LineSlots(redis.Redis.from_url(redis_url), lease_s=0.3)
    assert slots.acquire(1, 10, "kept", 2, 2)
    assert slots.acquire(1, 10, "dead", 2, 2)
    for _ in range(3):
        time.sleep(0.15)
        slots.renew({(1, 10): ["kept"]})
    assert slots.line_count(1) == 1  # the dead controller's slot came back
    assert slots.acquire(1, 10, "new", 2, 2)


def test_line_slots_are_atomic_across_controllers(redis_url):
    """Eight 'controllers' race for a 5-slot line shared by two tasks: never more than 5."""
    got: list[str] = []
    lock = threading.Lock()

    def controller(n: int) -> None:
        slots = LineSlots(redis.Redis.from_url(redis_url))
        for i in range(50):
            uuid = f"c{n}-{i}"
            if slots.acquire(7, n % 2, uuid, line_max=5, task_max=5):
                with lock:
                    got.append(uuid)
                    assert slots.line_count(7) <= 5

    threads = [threading.Thread(target=controller, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(got) == 5
    assert LineSlots(redis.Redis.from_url(redis_url)).line_count(7) == 5
