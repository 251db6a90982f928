"""The transfer runner: ring a group's agents one by one and bridge the first who answers.

    plan (core.transfer) → music on the customer → for each target:
        claim the agent in presence (compare-and-set: no other controller offers them)
        → screen pop → bgapi originate {…}user/<ext> &park() with the ring timeout
        → answered: stop music, uuid_bridge customer ↔ agent  → SUCCESS
        → no answer / busy / not registered: release the agent, next target
    → nobody: stop music → FAILED with the fallback (AI closing line, or the AI dialogue
      for predictive calls with 人工全忙转AI) and whether to pause the task (转人工全忙暂停).

No database inside: the caller stores `TransferResult.record` in Call.transfer, runs the
fallback and pauses the task. Everything that happens is also passed to `on_event`
(dicts, see README.md), which the caller publishes (screen pop, live views).

A runner stopped while an agent rings (the controller stops, or the call's dialogue ends
under it: GreenletExit, CallGone …) first hangs up the agent's leg and gives the agent back
(released, not counted as a miss), then lets the exception go on: nobody would follow that
leg or move that agent out of "ringing" otherwise.
"""

from __future__ import annotations

import logging
import random
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import gevent
import redis

from controller.esl import EslError
from controller.transfer.events import EslEvents
from core import transfer as rules
from core.presence import Presence, Release
from core.transfer import (
    DEFAULT_MUSIC,
    AgentView,
    FailReason,
    Fallback,
    Target,
    TransferGroupSpec,
    TransferState,
    Trigger,
    TryResult,
)

log = logging.getLogger(__name__)

SLACK_S = 5.0  # beyond the ring timeout before a silent switch counts as failed

OnEvent = Callable[[dict], None]


@dataclass
class TransferResult:
    state: TransferState
    target: Target | None = None
    reason: FailReason | None = None
    tries: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    agent_uuid: str | None = None  # the agent's leg, bridged to the customer on success
    fallback: Fallback | None = None  # what the AI does now (on failure)
    pause_task: bool = False  # 转人工全忙暂停: the caller pauses the task
    record: dict = field(default_factory=dict)  # the JSON for Call.transfer

    @property
    def ok(self) -> bool:
        return self.state == TransferState.SUCCESS


class _CustomerGone(Exception):
    pass


def _views(presence: Presence, group: TransferGroupSpec) -> dict[int, AgentView]:
    try:
        snaps = presence.many(m.user_id for m in group.members)
    except redis.RedisError as exc:  # no presence: nobody can be offered safely
        log.warning("presence unavailable, no agent is offered: %s", exc)
        return {}
    return {uid: AgentView(str(s.state), s.registered, s.calls, s.idle_since)
            for uid, s in snaps.items()}


def _music(link, call_uuid: str, music: str | None) -> None:
    source = music or DEFAULT_MUSIC
    app = "playback" if source.startswith("tone_stream://") else "endless_playback"
    try:
        link.api(f"uuid_break {call_uuid} all")
        link.api(f"uuid_broadcast {call_uuid} {app}::{source} aleg")
    except EslError as exc:  # music is a nicety; the transfer goes on without it
        log.warning("%s: no transfer music: %s", call_uuid, exc)


def _stop_music(link, call_uuid: str) -> None:
    try:
        link.api(f"uuid_break {call_uuid} all")
    except EslError as exc:
        log.warning("%s: cannot stop transfer music: %s", call_uuid, exc)


def _exists(link, call_uuid: str) -> bool:
    try:
        return link.api(f"uuid_exists {call_uuid}").strip() == "true"
    except EslError:
        return False


def _originate_args(target: Target, agent_uuid: str, call_uuid: str, timeout: int,
                    caller_id: str | None, extra_vars: dict | None = None) -> str:
    variables = {
        **(extra_vars or {}),
        "origination_uuid": agent_uuid,
        "originate_timeout": str(timeout),
        "ignore_early_media": "true",  # a carrier's early media is not an answer
        "hangup_after_bridge": "true",
        "cc_transfer_call": call_uuid,
        "sip_h_X-CC-Call": call_uuid,  # the browser phone matches it to the screen pop
    }
    if caller_id:
        variables["origination_caller_id_number"] = caller_id
        variables["origination_caller_id_name"] = caller_id
    # Values are ours (uuids, digits, ids); commas would split the variable list.
    inner = ",".join(f"{k}={str(v).replace(',', '')}" for k, v in variables.items())
    return f"originate {{{inner}}}{target.dial} &park()"


def _ring(link, events: EslEvents | None, call_uuid: str, target: Target, agent_uuid: str,
          timeout: int, caller_id: str | None, extra_vars: dict | None) -> tuple[TryResult, str]:
    """Originate the target's leg; (result, FreeSWITCH cause or '+OK')."""
    command = _originate_args(target, agent_uuid, call_uuid, timeout, caller_id, extra_vars)
    if events is None:
        # Without an event feed: a blocking api originate (holds this link's commands
        # back for up to the ring timeout; pass `events` in production).
        try:
            reply = link.api(command, timeout=timeout + SLACK_S)
        except EslError as exc:
            return TryResult.FAILED, str(exc)
        if not _exists(link, call_uuid):
            if reply.startswith("+OK"):
                _kill(link, agent_uuid)
            raise _CustomerGone
        return _reply(reply)
    job_uuid = str(uuidlib.uuid4())
    waiter = events.expect_job(job_uuid)
    customer_gone = events.hangup_event(call_uuid)
    try:
        link.bgapi(f"{command}\nJob-UUID: {job_uuid}")
        body = events.wait_any(waiter, customer_gone, timeout=timeout + SLACK_S)
    except EslError as exc:
        events.forget_job(job_uuid)
        return TryResult.FAILED, str(exc)
    if body is None:
        events.forget_job(job_uuid)
        _kill(link, agent_uuid, "ORIGINATOR_CANCEL")
        if customer_gone.is_set():
            raise _CustomerGone
        return TryResult.NO_ANSWER, "TIMEOUT"
    if customer_gone.is_set():
        _kill(link, agent_uuid, "ORIGINATOR_CANCEL")
        raise _CustomerGone
    return _reply(body)


def _reply(body: str) -> tuple[TryResult, str]:
    body = body.strip()
    if body.startswith("+OK"):
        return TryResult.ANSWERED, "+OK"
    cause = body.removeprefix("-ERR").strip() or "UNKNOWN"
    return rules.classify_cause(cause), cause


def _kill(link, uuid: str, cause: str = "NORMAL_CLEARING") -> None:
    try:
        link.api(f"uuid_kill {uuid} {cause}")
    except EslError:
        pass


def _now(clock) -> datetime:
    return clock() if callable(clock) else clock.now()


def run_transfer(link, call_uuid: str, group: TransferGroupSpec, presence: Presence, clock,
                 on_event: OnEvent | None = None, *, events: EslEvents | None = None,
                 trigger: Trigger = Trigger.SCRIPT, predictive_busy_to_ai: bool = False,
                 pause_when_agents_busy: bool = False, caller_id: str | None = None,
                 extra_vars: dict | None = None,
                 rng: random.Random | None = None) -> TransferResult:
    """Transfer the answered, parked customer leg `call_uuid` to `group`.

    `link`: a NodeLink (api/bgapi) to the customer's node; `presence`: agents' presence;
    `clock`: core.clock.now (or anything with .now()); `on_event(dict)`: told of each step;
    `events`: the node's EslEvents feed (without it originate blocks the link, see _ring);
    `trigger` and the task's flags pick the fallback; `caller_id`: what agents' phones show;
    `extra_vars`: channel variables for each agent leg (e.g. cc_controller, so that the
    controller's event filter lets the leg's events through).
    Returns a TransferResult (never raises for call-level failures; a dead link is a
    FAILED try and then a failed transfer with reason switch_error).
    """
    emit = on_event or (lambda _event: None)
    started = _now(clock)
    plan = rules.plan(group, _views(presence, group), rng)
    tries: list[dict] = []
    base = {"call_uuid": call_uuid, "group_id": group.id, "trigger": str(trigger)}
    emit({**base, "event": "started", "targets": [t.describe() for t in plan.targets],
          "skipped": list(plan.skipped)})

    def finish(state, target=None, reason=None, agent_uuid=None) -> TransferResult:
        fb = None if state == TransferState.SUCCESS else rules.fallback(
            trigger, predictive_busy_to_ai)
        pause = state == TransferState.FAILED and rules.pause_task(
            pause_when_agents_busy, reason)
        record = rules.record(state, trigger=trigger, group=group, target=target,
                              reason=reason, tries=tries, skipped=plan.skipped,
                              fallback_to=fb, paused=pause)
        record["started_at"] = started.isoformat()
        record["ended_at"] = _now(clock).isoformat()
        if agent_uuid:  # a restarted controller follows the bridge by it (hook.bridged)
            record["agent_uuid"] = agent_uuid
        result = TransferResult(state, target, reason, tries, list(plan.skipped),
                                agent_uuid, fb, pause, record)
        emit({**base, "event": "succeeded" if result.ok else "failed", "record": record})
        return result

    if not plan.targets:
        return finish(TransferState.FAILED, reason=rules.failure_reason(group, []))
    if events is not None:
        events.hangup_event(call_uuid)
    if (events is not None and events.is_gone(call_uuid)) or not _exists(link, call_uuid):
        return finish(TransferState.FAILED, reason=FailReason.CUSTOMER_HUNG_UP)
    _music(link, call_uuid, group.music)
    try:
        for target in plan.targets:
            outcome = _try(link, events, call_uuid, target, group, presence, clock, emit,
                           base, tries, caller_id, extra_vars)
            if outcome is not None:
                return finish(TransferState.SUCCESS, target=target, agent_uuid=outcome)
            if tries and tries[-1].get("result") == "bridge_failed":
                _stop_music(link, call_uuid)
                return finish(TransferState.FAILED, reason=FailReason.BRIDGE_FAILED)
    except _CustomerGone:
        return finish(TransferState.FAILED, reason=FailReason.CUSTOMER_HUNG_UP)
    finally:
        if events is not None:
            events.unwatch(call_uuid)
    _stop_music(link, call_uuid)
    return finish(TransferState.FAILED, reason=rules.failure_reason(group, tries))


def _try(link, events, call_uuid, target: Target, group: TransferGroupSpec,
         presence: Presence, clock, emit, base, tries, caller_id, extra_vars) -> str | None:
    """One try; returns the agent's leg uuid when bridged, else None (appends to `tries`)."""
    entry = {**target.describe(), "at": _now(clock).isoformat()}
    if target.user_id is not None:
        entry.pop("dial", None)
        try:
            # Past the runner's own give-up (ring timeout + SLACK_S): only an offer whose
            # runner died is still ringing then.
            claim = presence.claim(target.user_id, call_uuid,
                                   group.ring_timeout_s + 2 * SLACK_S)
        except redis.RedisError as exc:
            claim = f"presence unavailable: {exc}"
        if claim != "ok":  # taken by another controller since the plan, or went away
            result = TryResult.NOT_REGISTERED if claim == "not_registered" else TryResult.BUSY
            tries.append({**entry, "result": str(result), "detail": claim})
            return None
    leg = _Leg(str(uuidlib.uuid4()))
    try:
        return _offer(link, events, call_uuid, target, leg, group, presence, clock, emit,
                      base, tries, entry, caller_id, extra_vars)
    except _CustomerGone:
        raise
    except BaseException:
        if not leg.bridged:
            _abandon(link, presence, target, call_uuid, leg.uuid)
        raise


@dataclass
class _Leg:
    """The agent's leg of one try; `bridged` once the customer is joined to it (from then
    on a stopped runner leaves the call to whoever follows it: Transfers.bridged)."""

    uuid: str
    bridged: bool = False


def _offer(link, events, call_uuid, target: Target, leg: _Leg, group, presence, clock, emit,
           base, tries, entry, caller_id, extra_vars) -> str | None:
    agent_uuid = leg.uuid
    emit({**base, "event": "offer", "target": target.describe(), "agent_uuid": agent_uuid,
          "ring_timeout_s": group.ring_timeout_s})
    t0 = _now(clock)
    try:
        result, cause = _ring(link, events, call_uuid, target, agent_uuid,
                              group.ring_timeout_s, caller_id, extra_vars)
    except _CustomerGone:
        _release(presence, target, call_uuid, Release.CANCELLED)
        tries.append({**entry, "result": "customer_hung_up"})
        emit({**base, "event": "try", "target": target.describe(), "result": "customer_hung_up"})
        raise
    entry["ring_s"] = round((_now(clock) - t0).total_seconds(), 1)
    if result == TryResult.ANSWERED:
        _stop_music(link, call_uuid)
        try:
            reply = link.api(f"uuid_bridge {call_uuid} {agent_uuid}")
        except EslError as exc:
            reply = f"-ERR {exc}"
        if reply.startswith("+OK"):
            leg.bridged = True
            if target.user_id is not None:
                try:
                    presence.answered(target.user_id, call_uuid)
                except redis.RedisError as exc:
                    log.warning("%s: presence not updated on answer: %s", call_uuid, exc)
            tries.append({**entry, "result": str(TryResult.ANSWERED)})
            emit({**base, "event": "answered", "target": target.describe(),
                  "agent_uuid": agent_uuid})
            return agent_uuid
        _kill(link, agent_uuid)
        _release(presence, target, call_uuid, Release.CANCELLED)
        tries.append({**entry, "result": "bridge_failed", "cause": reply.strip()})
        emit({**base, "event": "try", "target": target.describe(), "result": "bridge_failed"})
        if not _exists(link, call_uuid):
            raise _CustomerGone
        return None
    why = {TryResult.NOT_REGISTERED: Release.NOT_REGISTERED,
           TryResult.FAILED: Release.CANCELLED}.get(result, Release.MISSED)
    new_state = _release(presence, target, call_uuid, why)
    tries.append({**entry, "result": str(result), "cause": cause})
    emit({**base, "event": "try", "target": target.describe(), "result": str(result),
          "cause": cause, "agent_state": new_state})
    return None


def _abandon(link, presence: Presence, target: Target, call_uuid: str, agent_uuid: str) -> None:
    """The runner was stopped during this try, before the bridge: give the agent back and
    end their leg (ringing, or answered and not joined yet). Presence first: Redis answers
    at once, while a stopping process may not wait the switch's reply out."""
    log.info("%s: transfer stopped while %s rang: freeing the agent, hanging up their leg",
             call_uuid, target.dial)
    _release(presence, target, call_uuid, Release.CANCELLED)
    _kill(link, agent_uuid, "ORIGINATOR_CANCEL")


def _release(presence: Presence, target: Target, call_uuid: str, why: Release) -> str:
    if target.user_id is None:
        return ""
    try:
        return presence.release(target.user_id, call_uuid, why)
    except redis.RedisError as exc:
        log.warning("%s: presence not released: %s", call_uuid, exc)
        return ""


def follow_bridge(events: EslEvents, presence: Presence, call_uuid: str,
                  result: TransferResult, timeout: float | None = None) -> bool:
    """After a successful transfer, wait until either leg hangs up and move the agent to
    wrap-up. Run it in the call's greenlet group. Returns False on timeout."""
    if not result.ok or result.agent_uuid is None:
        return True
    legs = [events.hangup_event(call_uuid), events.hangup_event(result.agent_uuid)]
    ready = gevent.wait(legs, timeout=timeout, count=1)
    events.unwatch(call_uuid)
    events.unwatch(result.agent_uuid)
    if not ready:
        return False
    if result.target is not None and result.target.user_id is not None:
        presence.ended(result.target.user_id, call_uuid)
    return True
