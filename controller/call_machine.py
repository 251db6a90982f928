"""One state machine per call: `step(call, event, now) -> (call, commands)`, no I/O inside.

States (core.call_status.CallState): originating → ringing → early_media → answered →
in_dialogue (→ transferring → bridged, reported by the answered-call handler while it
transfers) → ended. The driver (controller/calls.py) feeds events in, carries commands out,
and persists and publishes every change of the returned `CallRecord`.

An answered call's handler (the dialogue) may still be writing its result when the channel
ends. The attempt is only finished once the handler is done (`HandlerDone`), so that the
final record — and the after-call rules it triggers — see the dialogue's grade: a hang-up
while the handler runs marks the record `ending` (outcome kept), tells the handler
(`CallOver`) and waits for it, at most `WRAP_UP_S`.

Timers are commands too: `ring` (a backstop a little after the switch's own
originate_timeout), `max_call` (the longest an answered call may last; not once bridged to
an agent), `settle` (after we asked the switch to end a call, or its originate job failed,
how long to wait for the channel's CHANNEL_HANGUP_COMPLETE before ending the attempt
without it), `wrap_up` (how long an ended call waits for its handler).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from controller.events import (
    Adopt,
    Announcement,
    Answered,
    CallOver,
    CancelTimer,
    Command,
    DialogueStarted,
    Event,
    Finish,
    HandlerDone,
    HandOff,
    Hangup,
    HungUp,
    JobDone,
    NotDialled,
    Originate,
    Progress,
    SetTimer,
    Start,
    StartRecording,
    Timer,
    TransferEnded,
    TransferStarted,
    Vanished,
)
from core.call_status import ANNOUNCEMENTS, CallState, classify
from core.enums import CallStatus, HangupSide

RING_GRACE_S = 5.0
SETTLE_S = 10.0
WRAP_UP_S = 15.0  # the dialogue stops its fork (an API call) and commits its result

PRE_ANSWER = frozenset({CallState.ORIGINATING, CallState.RINGING, CallState.EARLY_MEDIA})
ANSWERED_STATES = frozenset({CallState.ANSWERED, CallState.IN_DIALOGUE,
                             CallState.TRANSFERRING, CallState.BRIDGED})
TIMERS = ("ring", "max_call", "settle", "wrap_up")


@dataclass(frozen=True, slots=True)
class CallPlan:
    """What the dialer decided for one attempt; fixed for the call's life."""

    uuid: str
    node: str
    account_id: int
    task_id: int
    number_id: int
    line_id: int
    phone: str
    gateway: str
    caller_id: str | None
    ring_timeout_s: int
    max_call_s: int
    recording_path: str
    prompt: str | None = None
    controller: str = ""


@dataclass(frozen=True, slots=True)
class CallRecord:
    """The state of one attempt. Times are seconds since the epoch."""

    plan: CallPlan
    state: CallState | None = None
    ringing_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    announcement: str | None = None
    job_error: str | None = None
    hangup_requested: str | None = None
    outcome: HungUp | None = None
    status: CallStatus | None = None
    dialled: bool = True
    handler: bool = False  # the answered-call handler runs
    ending: bool = False  # the channel is gone; waiting for the handler (outcome kept)

    @property
    def visible(self) -> tuple:
        """What the call's row and the console see while it is live (Store.apply); the
        machine's own bookkeeping (handler, ending, job_error …) is not published."""
        return (self.state, self.ringing_at, self.answered_at, self.announcement)


def hangup_side(disposition: str | None, requested: str | None) -> HangupSide | None:
    """Who ended the call, from sip_hangup_disposition (recv_* the far end, send_* us)."""
    if disposition in ("recv_bye", "recv_cancel", "recv_refuse"):
        return HangupSide.CALLEE
    if disposition == "send_bye":
        return HangupSide.ROBOT
    if disposition in ("send_cancel", "send_refuse") or requested:
        return HangupSide.SYSTEM
    return None


def _end(call: CallRecord, now: float, outcome: HungUp | None) -> tuple[CallRecord, list]:
    if outcome is not None:
        status = classify(outcome.sip_code, outcome.cause, outcome.answered, call.announcement)
    elif call.answered_at is not None:
        status = classify(None, None, True, call.announcement)
    elif call.job_error or call.announcement:
        status = classify(None, call.job_error, False, call.announcement)
    else:
        status = None  # we do not know: the CDR will tell (core/cdr.py)
    ended = replace(call, state=CallState.ENDED, ended_at=now, outcome=outcome, status=status)
    return ended, [*(CancelTimer(t) for t in TIMERS), Finish()]


def _gone(call: CallRecord, now: float, outcome: HungUp | None) -> tuple[CallRecord, list]:
    """The channel ended (or is taken as ended): finish, or wait for a running handler."""
    if not call.handler:
        return _end(call, now, outcome)
    if call.ending:  # already waiting; a real hang-up still improves on a missing one
        return (replace(call, outcome=outcome), []) if outcome and not call.outcome \
            else (call, [])
    return replace(call, ending=True, ended_at=now, outcome=outcome), [
        *(CancelTimer(t) for t in TIMERS), CallOver(), SetTimer("wrap_up", WRAP_UP_S)]


def step(call: CallRecord, event: Event, now: float) -> tuple[CallRecord, list[Command]]:
    """Apply one event to a call; returns the new record and the commands to carry out.
    Events that mean nothing in the current state leave the record as it is."""
    state = call.state
    plan = call.plan
    if state == CallState.ENDED:
        return call, []

    if isinstance(event, Start) and state is None:
        return replace(call, state=CallState.ORIGINATING), [
            Originate(), SetTimer("ring", plan.ring_timeout_s + RING_GRACE_S)]

    if isinstance(event, Adopt) and state is None:
        callstate = event.callstate.upper()
        if callstate in ("ACTIVE", "HELD", "UNHELD"):
            return replace(call, state=CallState.ANSWERED, answered_at=now, handler=True), [
                SetTimer("max_call", plan.max_call_s), HandOff(resumed=True)]
        new = CallState.EARLY_MEDIA if callstate == "EARLY" else CallState.RINGING
        return replace(call, state=new, ringing_at=now), [
            SetTimer("ring", plan.ring_timeout_s + RING_GRACE_S)]

    if isinstance(event, HungUp):
        return _gone(call, now, event)

    if isinstance(event, HandlerDone) and call.handler:
        call = replace(call, handler=False)
        return _end(call, call.ended_at or now, call.outcome) if call.ending else (call, [])

    if call.ending:
        if isinstance(event, Timer) and event.name == "wrap_up":
            return _end(call, call.ended_at or now, call.outcome)
        if isinstance(event, Announcement):  # the handler's verdict (an assistant answered)
            return replace(call, announcement=event.category), []
        return call, []  # the channel is gone: only the handler's end matters now

    if isinstance(event, (Vanished, NotDialled)):
        if isinstance(event, NotDialled):
            call = replace(call, dialled=False, job_error=event.reason)
            ended, commands = _end(call, now, None)
            return replace(ended, status=None), commands
        return _gone(call, now, None)

    if isinstance(event, Progress) and state in PRE_ANSWER:
        ringing_at = call.ringing_at or now
        if event.media:
            return replace(call, state=CallState.EARLY_MEDIA, ringing_at=ringing_at), []
        if state == CallState.ORIGINATING:
            return replace(call, state=CallState.RINGING, ringing_at=ringing_at), []
        return call, []

    if isinstance(event, Answered) and state in PRE_ANSWER:
        return replace(call, state=CallState.ANSWERED, answered_at=now,
                       ringing_at=call.ringing_at or now, handler=True), [
            CancelTimer("ring"), SetTimer("max_call", plan.max_call_s),
            StartRecording(plan.recording_path), HandOff()]

    if isinstance(event, DialogueStarted) and state == CallState.ANSWERED:
        return replace(call, state=CallState.IN_DIALOGUE), []

    if isinstance(event, TransferStarted) and state in (CallState.ANSWERED,
                                                        CallState.IN_DIALOGUE):
        return replace(call, state=CallState.TRANSFERRING), []

    if isinstance(event, TransferEnded) and state == CallState.TRANSFERRING:
        if event.ok:
            # A customer talking to an agent is not cut at the robot's maximum call length.
            return replace(call, state=CallState.BRIDGED), [CancelTimer("max_call")]
        return replace(call, state=CallState.IN_DIALOGUE), []

    if isinstance(event, Announcement):
        call = replace(call, announcement=event.category)
        if state in PRE_ANSWER and event.category in ANNOUNCEMENTS \
                and call.hangup_requested is None:
            # A confident verdict: stop listening to a looping carrier recording (CPA.md §5).
            return replace(call, hangup_requested="NORMAL_CLEARING"), [
                CancelTimer("ring"), Hangup("NORMAL_CLEARING"), SetTimer("settle", SETTLE_S)]
        return call, []

    if isinstance(event, JobDone):
        if event.ok:
            return call, []
        call = replace(call, job_error=event.text or None)
        return call, [SetTimer("settle", SETTLE_S)]

    if isinstance(event, Timer):
        if event.name == "ring" and state in PRE_ANSWER and call.hangup_requested is None:
            return replace(call, hangup_requested="NO_ANSWER"), [
                Hangup("NO_ANSWER"), SetTimer("settle", SETTLE_S)]
        if event.name == "max_call" and state in ANSWERED_STATES \
                and call.hangup_requested is None:
            return replace(call, hangup_requested="ALLOTTED_TIMEOUT"), [
                Hangup("ALLOTTED_TIMEOUT"), SetTimer("settle", SETTLE_S)]
        if event.name == "settle":
            return _gone(call, now, None)
    return call, []
