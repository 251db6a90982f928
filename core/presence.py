"""Agent presence (坐席状态), kept in Redis so that every controller and console agrees.

    offline ⇄ available ⇄ break            (the agent, in the console)
    available → ringing → in_call → wrap_up → available
                  └─ missed → available, or break after `max_missed` misses in a row

Each agent is one hash `cc:presence:<user_id>`; every transition is one Lua script, so two
controllers can never offer the same agent two calls (`claim` is a compare-and-set), and a
late event for an old call cannot move the agent (transitions name the call they are for).
Wrap-up ends by itself: an agent whose wrap-up time has passed reads, and is claimed, as
available. A state the agent chooses while ringing or talking (break, offline) is kept in
`after` and applied when that call ends.

Each change is published on the agent's channel `cc:agent:<user_id>` as
{"type": "presence", …} for the agent's console page.

Fields: state, since, registered (0/1), calls, idle_since, missed, reason, call,
wrap_until, ring_until, after.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import redis

from core import clock as core_clock

log = logging.getLogger(__name__)

KEY = "cc:presence:{}"
MAX_RING_S = 180.0  # a claim's longest ring unless the caller says less


def agent_channel(user_id: int) -> str:
    """The pub/sub channel of one agent's live events (presence, screen pop)."""
    return f"cc:agent:{user_id}"


def last_pop_key(user_id: int) -> str:
    """The agent's last screen pop, kept briefly for a console page that (re)connects."""
    return f"cc:agent:{user_id}:pop"


class AgentState(StrEnum):
    OFFLINE = "offline"
    AVAILABLE = "available"
    RINGING = "ringing"
    IN_CALL = "in_call"
    WRAP_UP = "wrap_up"
    BREAK = "break"


MANUAL_STATES = (AgentState.OFFLINE, AgentState.AVAILABLE, AgentState.BREAK)


class Release(StrEnum):
    """Why a ringing offer ended without the agent taking the call."""

    MISSED = "missed"  # rang out or declined: counts towards max_missed
    NOT_REGISTERED = "not_registered"  # the switch had no registration: phone flag off
    CANCELLED = "cancelled"  # the customer hung up or the switch failed: not the agent's fault


@dataclass(frozen=True)
class Snapshot:
    """One agent's presence as read now (an expired wrap-up already reads as available)."""

    user_id: int
    state: AgentState
    registered: bool
    since: float
    calls: int
    idle_since: float
    missed: int
    reason: str
    call: str
    wrap_until: float
    after: str

    def as_dict(self) -> dict:
        return {"user_id": self.user_id, "state": str(self.state),
                "registered": self.registered, "since": self.since, "calls": self.calls,
                "idle_since": self.idle_since, "missed": self.missed, "reason": self.reason,
                "call": self.call, "wrap_until": self.wrap_until, "after": self.after}


# Lua helpers shared by the scripts: the effective state (wrap-up expires by itself, and so
# does a ringing offer nobody ended — its controller was killed — at its `ring_until`).
_EFFECTIVE = """
local function effective(key, now)
  local st = redis.call('HGET', key, 'state') or 'offline'
  local field = nil
  if st == 'wrap_up' then field = 'wrap_until' elseif st == 'ringing' then field = 'ring_until' end
  if field then
    local untl = tonumber(redis.call('HGET', key, field) or '0')
    if untl > 0 and untl <= now then
      local after = redis.call('HGET', key, 'after') or ''
      st = 'available'
      if after ~= '' then st = after end
      redis.call('HSET', key, 'state', st, 'since', untl, 'call', '', 'after', '')
    end
  end
  return st
end
"""

# KEYS[1] agent; ARGV: wanted, now, reason → the state now in force (or 'after:<wanted>').
_SET_MANUAL = _EFFECTIVE + """
local now = tonumber(ARGV[2])
local st = effective(KEYS[1], now)
local wanted = ARGV[1]
if st == 'ringing' or st == 'in_call' then
  redis.call('HSET', KEYS[1], 'after', wanted)
  return 'after:' .. wanted
end
if st == 'wrap_up' then
  if wanted == 'available' then
    redis.call('HSET', KEYS[1], 'after', '')
  else
    redis.call('HSET', KEYS[1], 'after', wanted)
  end
  return 'after:' .. wanted
end
if st ~= wanted then
  redis.call('HSET', KEYS[1], 'state', wanted, 'since', now)
  if wanted == 'available' then
    redis.call('HSET', KEYS[1], 'idle_since', now, 'missed', 0)
  end
end
redis.call('HSET', KEYS[1], 'reason', ARGV[3])
return wanted
"""

# KEYS[1] agent; ARGV: call, now → 'ok' or the state that refused (or 'not_registered').
_CLAIM = _EFFECTIVE + """
local now = tonumber(ARGV[2])
local st = effective(KEYS[1], now)
if st ~= 'available' then return st end
if redis.call('HGET', KEYS[1], 'registered') ~= '1' then return 'not_registered' end
redis.call('HSET', KEYS[1], 'state', 'ringing', 'since', now, 'call', ARGV[1],
           'ring_until', now + tonumber(ARGV[3]))
return 'ok'
"""

# KEYS[1] agent; ARGV: call, now → 1 when the agent was ringing for that call.
_ANSWERED = """
if redis.call('HGET', KEYS[1], 'state') ~= 'ringing' then return 0 end
if redis.call('HGET', KEYS[1], 'call') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'in_call', 'since', ARGV[2], 'missed', 0, 'reason', '')
redis.call('HINCRBY', KEYS[1], 'calls', 1)
return 1
"""

# KEYS[1] agent; ARGV: call, now, release, max_missed → the new state, or '' if not ringing.
_RELEASE = """
if redis.call('HGET', KEYS[1], 'state') ~= 'ringing' then return '' end
if redis.call('HGET', KEYS[1], 'call') ~= ARGV[1] then return '' end
local now = ARGV[2]
local after = redis.call('HGET', KEYS[1], 'after') or ''
local st = 'available'
local reason = redis.call('HGET', KEYS[1], 'reason') or ''
if ARGV[3] == 'missed' then
  local missed = redis.call('HINCRBY', KEYS[1], 'missed', 1)
  if missed >= tonumber(ARGV[4]) then
    st = 'break'
    reason = 'missed:' .. missed
  end
elseif ARGV[3] == 'not_registered' then
  redis.call('HSET', KEYS[1], 'registered', 0)
end
if after ~= '' and st == 'available' then st = after end
redis.call('HSET', KEYS[1], 'state', st, 'since', now, 'call', '', 'after', '', 'reason', reason)
return st
"""

# KEYS[1] agent; ARGV: call, now, wrap_s → the new state, or '' if not in that call.
_ENDED = """
local st = redis.call('HGET', KEYS[1], 'state')
if st ~= 'in_call' and st ~= 'ringing' then return '' end
if redis.call('HGET', KEYS[1], 'call') ~= ARGV[1] then return '' end
local now = tonumber(ARGV[2])
local untl = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'idle_since', untl)
if tonumber(ARGV[3]) <= 0 then
  local after = redis.call('HGET', KEYS[1], 'after') or ''
  local nst = 'available'
  if after ~= '' then nst = after end
  redis.call('HSET', KEYS[1], 'state', nst, 'since', now, 'call', '', 'after', '')
  return nst
end
redis.call('HSET', KEYS[1], 'state', 'wrap_up', 'since', now, 'wrap_until', untl)
return 'wrap_up'
"""

_READ = _EFFECTIVE + """
local now = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then effective(key, now) end
  out[i] = redis.call('HGETALL', key)
end
return out
"""


def _num(value, cast=float, default=0):
    try:
        return cast(float(value))
    except (TypeError, ValueError):
        return default


class Presence:
    """Agents' presence in Redis. The connection is passed in; `clock` returns aware UTC.

    `wrap_up_s`: seconds of wrap-up after each call (AGENT_WRAP_UP_S); `max_missed`: missed
    offers in a row that put an agent on break (AGENT_MAX_MISSED). Raises redis.RedisError
    when Redis does not answer: callers decide (the runner treats it as "nobody free").
    """

    def __init__(self, conn: redis.Redis, *, wrap_up_s: int = 15, max_missed: int = 3,
                 clock: Callable[[], datetime] = core_clock.now):
        self.conn = conn
        self.wrap_up_s = wrap_up_s
        self.max_missed = max_missed
        self.clock = clock
        self._set_manual = conn.register_script(_SET_MANUAL)
        self._claim = conn.register_script(_CLAIM)
        self._answered = conn.register_script(_ANSWERED)
        self._release = conn.register_script(_RELEASE)
        self._ended = conn.register_script(_ENDED)
        self._read = conn.register_script(_READ)

    def _now(self) -> float:
        return self.clock().timestamp()

    @staticmethod
    def _text(value) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    def _publish(self, user_id: int, **event) -> None:
        event = {"type": "presence", **event, "user_id": user_id}
        try:
            self.conn.publish(agent_channel(user_id), json.dumps(event))
        except redis.RedisError as exc:  # the state is stored; only the live hint is lost
            log.warning("cannot publish presence of agent %s: %s", user_id, exc)

    def _publish_snapshot(self, user_id: int) -> None:
        snap = self.get(user_id).as_dict()
        snap.pop("user_id")
        self._publish(user_id, **snap)

    # --- the agent, in the console ------------------------------------------------------
    def set_state(self, user_id: int, state: AgentState | str, reason: str = "") -> str:
        """Set online (available) / offline / break. While ringing, talking or in wrap-up
        the choice waits for the call to end; returns 'after:<state>' then, else the state."""
        state = AgentState(state)
        if state not in MANUAL_STATES:
            raise ValueError(f"an agent cannot choose {state}")
        out = self._text(self._set_manual(keys=[KEY.format(user_id)],
                                          args=[str(state), self._now(), reason]))
        self._publish_snapshot(user_id)
        return out

    def set_registered(self, user_id: int, registered: bool) -> None:
        """The agent's phone registered with (or left) FreeSWITCH."""
        self.conn.hset(KEY.format(user_id), "registered", int(bool(registered)))
        self._publish_snapshot(user_id)

    # --- the transfer runner --------------------------------------------------------------
    def claim(self, user_id: int, call_uuid: str, ring_s: float = MAX_RING_S) -> str:
        """Atomically move an available, registered agent to ringing for `call_uuid`, for at
        most `ring_s` (the offer's ring timeout and some grace): an offer that was never
        ended — its controller died — frees the agent then. Returns 'ok', or why not: the
        agent's state or 'not_registered'."""
        out = self._text(self._claim(keys=[KEY.format(user_id)],
                                     args=[call_uuid, self._now(), ring_s]))
        if out == "ok":
            self._publish(user_id, state=str(AgentState.RINGING), call=call_uuid)
        return out

    def answered(self, user_id: int, call_uuid: str) -> bool:
        ok = bool(self._answered(keys=[KEY.format(user_id)], args=[call_uuid, self._now()]))
        if ok:
            self._publish(user_id, state=str(AgentState.IN_CALL), call=call_uuid)
        return ok

    def release(self, user_id: int, call_uuid: str, why: Release | str) -> str:
        """A ringing offer ended untaken. Returns the new state ('' if no longer ringing for
        that call); 'break' tells that the agent just reached max_missed."""
        out = self._text(self._release(keys=[KEY.format(user_id)],
                                       args=[call_uuid, self._now(), str(Release(why)),
                                             self.max_missed]))
        if out:
            self._publish_snapshot(user_id)
        return out

    def ended(self, user_id: int, call_uuid: str) -> str:
        """The agent's call ended: wrap-up for wrap_up_s, then available (or what they
        chose meanwhile). Returns the new state, '' if the agent was not in that call."""
        out = self._text(self._ended(keys=[KEY.format(user_id)],
                                     args=[call_uuid, self._now(), self.wrap_up_s]))
        if out:
            self._publish_snapshot(user_id)
        return out

    # --- reading ---------------------------------------------------------------------------
    def get(self, user_id: int) -> Snapshot:
        return self.many([user_id])[user_id]

    def many(self, user_ids: Iterable[int]) -> dict[int, Snapshot]:
        """Snapshots of several agents in one round trip (absent agents read offline)."""
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return {}
        rows = self._read(keys=[KEY.format(u) for u in ids], args=[self._now()])
        out = {}
        for user_id, flat in zip(ids, rows, strict=True):
            h = {self._text(flat[i]): self._text(flat[i + 1]) for i in range(0, len(flat), 2)}
            try:
                state = AgentState(h.get("state", "offline"))
            except ValueError:
                state = AgentState.OFFLINE
            out[user_id] = Snapshot(
                user_id=user_id, state=state, registered=h.get("registered") == "1",
                since=_num(h.get("since")), calls=_num(h.get("calls"), int),
                idle_since=_num(h.get("idle_since")), missed=_num(h.get("missed"), int),
                reason=h.get("reason", ""), call=h.get("call", ""),
                wrap_until=_num(h.get("wrap_until")), after=h.get("after", ""))
        return out

    def free_count(self, user_ids: Iterable[int]) -> int:
        """How many of these agents could be offered a call now."""
        return sum(1 for s in self.many(user_ids).values()
                   if s.state == AgentState.AVAILABLE and s.registered)
