"""Pacing (FEATURES.md C1, T1, T2): how fast and in what order a task dials.

Pure rules (functions of their arguments, `now` passed in):

- `SlotPacer`: a task's concurrency slots and the per-slot call interval (呼叫时间间隔);
- `fair_order`: which task on a line gets the next free line slot;
- `RateLimiter`: a node's calls-per-second limit (auto interval);
- `settle_number`: what becomes of a number after an attempt (redial rules, max attempts);
- `pick_node`: which FreeSWITCH node takes a new call.

And one Redis-backed part, `LineSlots`: the line's concurrency shared by every controller.
Each live call holds a slot on its line and on its task as a lease (a sorted-set member
scored by its expiry time); a controller renews the leases of its live calls, so a dead
controller's slots come back by themselves once their leases run out.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import redis

from core.enums import NumberState

AUTO_INTERVAL = 0.0  # "auto": no per-slot pause; the node's CPS limit spaces calls out


class PacingError(Exception):
    """Redis refused or failed a slot operation."""


# ---------------------------------------------------------------------------------------
# A task's slots


@dataclass
class SlotPacer:
    """A task's `size` concurrency slots. A slot is free again `interval` seconds after the
    call it carried ended (呼叫时间间隔 per slot; 0 = auto, at once)."""

    size: int
    interval: float = AUTO_INTERVAL
    active: int = 0
    _ready: list[float] = field(default_factory=list)  # heap of times freed slots reopen

    def resize(self, size: int, interval: float) -> None:
        self.size, self.interval = max(0, size), max(0.0, interval)

    def free(self, now: float) -> int:
        """Slots that may start a call at `now`."""
        waiting = sum(1 for t in self._ready if t > now)
        return max(0, self.size - self.active - waiting)

    def next_ready(self, now: float) -> float | None:
        """When the next cooling slot reopens (None if none is cooling)."""
        later = [t for t in self._ready if t > now]
        return min(later) if later else None

    def take(self, now: float) -> bool:
        """Use one free slot; False when none is free."""
        self._drop_ready(now)
        if self.free(now) <= 0:
            return False
        self.active += 1
        return True

    def release(self, now: float) -> None:
        """The call on a slot ended (or never started): the slot cools for `interval`."""
        self.active = max(0, self.active - 1)
        self._drop_ready(now)
        if self.interval > 0:
            heapq.heappush(self._ready, now + self.interval)

    def _drop_ready(self, now: float) -> None:
        while self._ready and self._ready[0] <= now:
            heapq.heappop(self._ready)


# ---------------------------------------------------------------------------------------
# Fair share on a line


@dataclass(frozen=True)
class Demand:
    task_id: int
    active: int  # the task's live calls (all controllers)
    maximum: int  # the task's concurrency
    last_dial: float = 0.0  # when it last got a slot (ties go to the one waiting longest)


def fair_order(demands: Iterable[Demand]) -> list[int]:
    """Task ids in the order they should get the line's next free slot: the task using the
    smallest share of its own concurrency first, then the one that waited longest. Tasks at
    their maximum are left out."""
    wanting = [d for d in demands if d.maximum > 0 and d.active < d.maximum]
    wanting.sort(key=lambda d: (d.active / d.maximum, d.last_dial, d.task_id))
    return [d.task_id for d in wanting]


# ---------------------------------------------------------------------------------------
# Calls per second


@dataclass
class RateLimiter:
    """A token bucket: at most `rate` starts per second, bursts of up to `burst`."""

    rate: float
    burst: float = 1.0
    _tokens: float = -1.0
    _at: float = 0.0

    def try_take(self, now: float) -> bool:
        if self._tokens < 0:
            self._tokens, self._at = self.burst, now
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


# ---------------------------------------------------------------------------------------
# After an attempt


@dataclass(frozen=True)
class RedialRule:
    max_attempts: int = 1
    statuses: frozenset[str] = frozenset()  # statuses worth another attempt
    interval_s: int = 600


def settle_number(status: str | None, attempts: int, rule: RedialRule,
                  now: datetime) -> tuple[NumberState, datetime | None]:
    """A number's state after an attempt ended with `status` (attempts already counted):
    pending again (with the time of the next try) when the rule redials that status and
    attempts remain, else done."""
    if status and status in rule.statuses and attempts < rule.max_attempts:
        return NumberState.PENDING, now + timedelta(seconds=rule.interval_s)
    return NumberState.DONE, None


def pick_node(preferred: str | None, up: Sequence[str], load: dict[str, int]) -> str | None:
    """The node for a new call: the line's own node while it is up, else the least loaded
    node that is up (a node that is down takes no new calls). None when no node is up."""
    if preferred and preferred in up:
        return preferred
    if not up:
        return None
    return min(up, key=lambda n: (load.get(n, 0), n))


# ---------------------------------------------------------------------------------------
# The line's concurrency in Redis

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local lease = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
  redis.call('ZADD', KEYS[2], now + lease, ARGV[1])
  return 1
end
if tonumber(ARGV[2]) >= 0 and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
if tonumber(ARGV[3]) >= 0 and redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
  return -1
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('ZADD', KEYS[2], now + lease, ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(lease * 4) + 1)
redis.call('EXPIRE', KEYS[2], math.ceil(lease * 4) + 1)
return 1
"""

_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local lease = tonumber(ARGV[1])
local kept = 0
for i = 2, #ARGV do
  if redis.call('ZADD', KEYS[1], 'XX', 'CH', now + lease, ARGV[i]) == 1 then kept = kept + 1 end
end
redis.call('EXPIRE', KEYS[1], math.ceil(lease * 4) + 1)
return kept
"""

_COUNT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""


class LineSlots:
    """Per-line and per-task concurrency shared by all controllers through Redis.

    A slot is a lease named by the call's uuid; `lease_s` after its last renewal it lapses.
    Redis's own clock times the leases, so controllers' clocks need not agree.
    """

    def __init__(self, conn: redis.Redis, lease_s: float = 30.0, prefix: str = "cc"):
        self.conn, self.lease_s, self.prefix = conn, lease_s, prefix
        self._acquire = conn.register_script(_ACQUIRE)
        self._renew = conn.register_script(_RENEW)
        self._count = conn.register_script(_COUNT)

    def line_key(self, line_id: int) -> str:
        return f"{self.prefix}:line:{line_id}:slots"

    def task_key(self, task_id: int) -> str:
        return f"{self.prefix}:task:{task_id}:slots"

    def acquire(self, line_id: int, task_id: int, call_uuid: str, line_max: int,
                task_max: int) -> bool:
        """Take a slot for `call_uuid` if both the line and the task have room (a negative
        maximum means "no limit": used to re-adopt live calls after a restart)."""
        try:
            got = self._acquire(keys=[self.line_key(line_id), self.task_key(task_id)],
                                args=[call_uuid, line_max, task_max, self.lease_s])
        except redis.RedisError as exc:
            raise PacingError(f"cannot take a slot on line {line_id}: {exc}") from exc
        return got == 1

    def release(self, line_id: int, task_id: int, call_uuid: str) -> None:
        try:
            pipe = self.conn.pipeline(transaction=True)
            pipe.zrem(self.line_key(line_id), call_uuid)
            pipe.zrem(self.task_key(task_id), call_uuid)
            pipe.execute()
        except redis.RedisError as exc:
            raise PacingError(f"cannot release slot {call_uuid}: {exc}") from exc

    def renew(self, held: dict[tuple[int, int], list[str]]) -> None:
        """Extend the leases of live calls, `{(line_id, task_id): [uuid, …]}`."""
        try:
            pipe = self.conn.pipeline(transaction=False)
            for (line_id, task_id), uuids in held.items():
                if uuids:
                    self._renew(keys=[self.line_key(line_id)], args=[self.lease_s, *uuids],
                                client=pipe)
                    self._renew(keys=[self.task_key(task_id)], args=[self.lease_s, *uuids],
                                client=pipe)
            pipe.execute()
        except redis.RedisError as exc:
            raise PacingError(f"cannot renew slots: {exc}") from exc

    def line_count(self, line_id: int) -> int:
        return int(self._count(keys=[self.line_key(line_id)]))

    def task_count(self, task_id: int) -> int:
        return int(self._count(keys=[self.task_key(task_id)]))
