"""The dialer against simswitch (fast clock): campaigns, fair share, windows, task control,
blacklist."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import UTC, datetime

import gevent
import pytest
import redis

from core import clock
from core.enums import CallStatus, NumberState, TaskState
from core.models import BlacklistEntry, BlacklistGroup, Task
from core.redis_conn import publish_task_change
from tests.controller.conftest import EXPECTED, OUTCOMES, phones, wait_until

pytestmark = pytest.mark.slow


def mix(numbers: list[str]) -> dict[str, str]:
    names = itertools.cycle(sorted(OUTCOMES))
    return {n: next(names) for n in numbers}


def test_campaign_of_200_numbers(world):
    numbers = phones(200)
    plan = mix(numbers)
    sw = world.simswitch(plan)
    obs = world.observe(sw)
    task_id, _ = world.seed(numbers, line_max=10, task_max=10)
    world.controller(sw.port)

    wait_until(lambda: world.task(task_id).state == TaskState.FINISHED, 120)

    calls = world.calls(task_id)
    assert len(calls) == 200  # exactly one attempt per number
    assert len({c.uuid for c in calls}) == 200
    assert sorted(c.phone for c in calls) == sorted(numbers)
    for call in calls:
        assert call.status == EXPECTED[plan[call.phone]], (call.phone, plan[call.phone],
                                                            call.sip_code, call.hangup_cause)
        assert call.state == "ended" and call.fs_node == "sim"
        assert call.ended_at is not None and call.originated_at is not None
    answered = [c for c in calls if c.status == CallStatus.ANSWERED]
    assert answered and all(c.answered_at and c.recording_path for c in answered)
    assert all(c.hangup_side == "robot" for c in answered)  # we hung up after the prompt
    assert all(c.recording_path is None for c in calls if c.status != CallStatus.ANSWERED)
    assert {c.hangup_side for c in calls if c.status == CallStatus.BUSY} == {"callee"}
    numbers_rows = world.numbers(task_id)
    assert all(n.state == NumberState.DONE and n.attempts == 1 for n in numbers_rows)
    # Concurrency the switch saw: never above the task's (= the line's) limit.
    assert len(obs.created) == 200
    assert 5 <= obs.peak <= 10
    # The recordings exist, stereo, in a dated layout.
    import soundfile

    rec = answered[0].recording_path
    assert "/rec/" in rec and rec.endswith(f"{answered[0].uuid}.wav")
    info = soundfile.info(rec)
    assert info.channels == 2


def test_two_tasks_share_a_line_fairly_and_never_exceed_it(world):
    a, b = phones(60), phones(60, start=1000)
    sw = world.simswitch(dict.fromkeys(a + b, "talk"))
    obs = world.observe(sw)
    task_a, line_id = world.seed(a, line_max=8, task_max=8)
    task_b, _ = world.seed(b, task_max=8, line_id=line_id)
    world.controller(sw.port)

    samples = []

    def sample():
        samples.append((obs.by_task.get(str(task_a), 0), obs.by_task.get(str(task_b), 0)))
        return world.task(task_a).state == TaskState.FINISHED \
            and world.task(task_b).state == TaskState.FINISHED

    wait_until(sample, 120, step=0.1)
    assert obs.peak <= 8
    busy = [(x, y) for x, y in samples if x + y >= 7 and x and y]
    assert busy, samples
    # Fair share while both have numbers: neither gets much more than half the line.
    assert max(max(x, y) for x, y in busy) <= 5
    assert len(world.calls(task_a)) == 60 and len(world.calls(task_b)) == 60


def test_no_originate_outside_the_window_and_holidays_skipped(world, monkeypatch):
    numbers = phones(5)
    sw = world.simswitch(dict.fromkeys(numbers, "busy"))
    obs = world.observe(sw)
    weekdays = {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
    task_id, _ = world.seed(numbers, weekly=weekdays, skip_holidays=True)
    # 2025-10-01 10:00 Shanghai: a Wednesday inside the hours, but National Day.
    now = [datetime(2025, 10, 1, 2, 0, tzinfo=UTC)]
    monkeypatch.setattr(clock, "now", lambda: now[0])
    world.controller(sw.port)
    gevent.sleep(1.5)
    assert obs.created == [] and world.calls(task_id) == []
    now[0] = datetime(2025, 10, 9, 11, 0, tzinfo=UTC)  # 19:00 local on a workday: closed
    gevent.sleep(1.0)
    assert obs.created == []
    now[0] = datetime(2025, 10, 9, 1, 0, tzinfo=UTC)  # 09:00 local on a workday: open
    wait_until(lambda: len(obs.created) == 5, 20)
    wait_until(lambda: world.task(task_id).state == TaskState.FINISHED, 30)


def test_pause_lets_live_calls_finish_and_resume_goes_on(world):
    numbers = phones(40)
    sw = world.simswitch(dict.fromkeys(numbers, "talk"))
    obs = world.observe(sw)
    task_id, _ = world.seed(numbers, task_max=5, line_max=5)
    world.controller(sw.port)
    conn = redis.Redis.from_url(world.redis_url)
    wait_until(lambda: len(obs.created) >= 8, 30)

    with world.sessions() as s:
        s.get(Task, task_id).state = TaskState.PAUSED
        s.commit()
    publish_task_change(conn, task_id, TaskState.PAUSED)
    gevent.sleep(0.3)  # a notice takes effect well within a second
    created_at_pause = len(obs.created)
    wait_until(lambda: obs.live == 0, 30)  # live calls finish on their own
    gevent.sleep(1.0)
    assert len(obs.created) == created_at_pause
    assert all(c.state == "ended" for c in world.calls(task_id))
    assert all(c.status == CallStatus.ANSWERED for c in world.calls(task_id))

    with world.sessions() as s:
        s.get(Task, task_id).state = TaskState.RUNNING
        s.commit()
    publish_task_change(conn, task_id, TaskState.RUNNING)
    wait_until(lambda: len(obs.created) > created_at_pause, 2)
    wait_until(lambda: world.task(task_id).state == TaskState.FINISHED, 60)
    assert len(world.calls(task_id)) == 40 and len(obs.created) == 40


def test_stop_ends_dialling(world):
    numbers = phones(40)
    sw = world.simswitch(dict.fromkeys(numbers, "talk"))
    obs = world.observe(sw)
    task_id, _ = world.seed(numbers, task_max=4, line_max=4)
    world.controller(sw.port)
    wait_until(lambda: len(obs.created) >= 4, 30)
    with world.sessions() as s:
        task = s.get(Task, task_id)
        task.state = TaskState.FINISHED
        s.commit()
    publish_task_change(redis.Redis.from_url(world.redis_url), task_id, TaskState.FINISHED)
    gevent.sleep(0.3)
    stopped_at = len(obs.created)
    wait_until(lambda: obs.live == 0, 30)
    gevent.sleep(1.0)
    assert len(obs.created) == stopped_at < 40
    pending = [n for n in world.numbers(task_id) if n.state == NumberState.PENDING]
    assert len(pending) == 40 - stopped_at


def test_blacklisted_numbers_are_not_dialled(world):
    numbers = phones(10)
    sw = world.simswitch(dict.fromkeys(numbers, "busy"))
    obs = world.observe(sw)
    with world.sessions() as s:
        from core.models import Account

        account = Account(name="acme")
        s.add(account)
        s.flush()
        group = BlacklistGroup(account_id=account.id, name="投诉")
        s.add(group)
        s.flush()
        s.add_all([BlacklistEntry(account_id=account.id, group_id=group.id, phone=numbers[3]),
                   BlacklistEntry(account_id=account.id, group_id=group.id, phone=numbers[7],
                                  expires_at=datetime(2000, 1, 1, tzinfo=UTC))])  # released
        s.commit()
        group_id = group.id
    task_id, _ = world.seed(numbers)
    with world.sessions() as s:
        task = s.get(Task, task_id)
        task.blacklist_groups = [s.get(BlacklistGroup, group_id)]
        s.commit()
    world.controller(sw.port)
    wait_until(lambda: world.task(task_id).state == TaskState.FINISHED, 30)
    assert numbers[3] not in {c for c in obs.created}  # uuids, so check by calls below
    calls = world.calls(task_id)
    by_phone = {c.phone: c for c in calls}
    assert by_phone[numbers[3]].status == CallStatus.BLACKLISTED
    assert by_phone[numbers[3]].fs_node is None
    assert by_phone[numbers[7]].status == CallStatus.BUSY  # a released entry does not block
    assert len(obs.created) == 9
    states = Counter(n.state for n in world.numbers(task_id))
    assert states == {NumberState.DONE: 9, NumberState.SKIPPED: 1}


def test_redial_by_rule_up_to_max_attempts(world):
    numbers = phones(3)
    sw = world.simswitch(dict.fromkeys(numbers, "busy"))
    obs = world.observe(sw)
    task_id, _ = world.seed(numbers, max_attempts=2, redial_statuses=["busy"],
                            redial_interval_s=0)
    world.controller(sw.port)
    wait_until(lambda: world.task(task_id).state == TaskState.FINISHED, 30)
    assert len(obs.created) == 6
    assert all(n.attempts == 2 and n.state == NumberState.DONE for n in world.numbers(task_id))
    assert Counter(c.phone for c in world.calls(task_id)) == dict.fromkeys(numbers, 2)


def test_live_transitions_are_published_per_task(world):
    numbers = phones(2)
    sw = world.simswitch(dict.fromkeys(numbers, "talk"))
    task_id, _ = world.seed(numbers)
    pubsub = redis.Redis.from_url(world.redis_url).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(f"cc:task:{task_id}:calls")
    world.controller(sw.port)
    seen = []

    def got_all():
        while (m := pubsub.get_message(timeout=0.0)) is not None:
            seen.append(json.loads(m["data"]))
        return sum(1 for e in seen if e["state"] == "ended") == 2

    wait_until(got_all, 30)
    states = [e["state"] for e in seen if e["phone"] == numbers[0]]
    assert states == ["originating", "ringing", "answered", "in_dialogue", "ended"], states
    assert states[-1] == "ended"
