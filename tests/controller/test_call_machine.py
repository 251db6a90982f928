"""The call state machine: events in, commands out, no switch needed."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.call_machine import (
    RING_GRACE_S,
    SETTLE_S,
    WRAP_UP_S,
    CallPlan,
    CallRecord,
    hangup_side,
    step,
)
from controller.events import (
    Adopt,
    Announcement,
    Answered,
    CallOver,
    CancelTimer,
    DialogueStarted,
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
from core.call_status import CallState
from core.enums import CallStatus, HangupSide

U = "5f1c0000-0000-4000-8000-000000000001"
PLAN = CallPlan(uuid=U, node="fs1", account_id=1, task_id=2, number_id=3, line_id=4,
                phone="13800000001", gateway="gw1", caller_id="02100000000",
                ring_timeout_s=30, max_call_s=300, recording_path="/rec/2026/01/01/x.wav")


def run(*events, call: CallRecord | None = None):
    """Feed events in order; returns the final record, the states passed and all commands."""
    call = call or CallRecord(PLAN)
    states, commands = [], []
    for i, event in enumerate(events):
        call, out = step(call, event, 1000.0 + i)
        states.append(call.state)
        commands.extend(out)
    return call, states, commands


def hung(**kw):
    return HungUp("fs1", U, 0.0, **kw)


def test_answered_call_records_and_hands_over():
    call, states, cmds = run(Start(U), Progress("fs1", U, 0, media=False),
                             Progress("fs1", U, 0, media=True), JobDone("fs1", U, True, U),
                             Answered("fs1", U, 0), DialogueStarted(U), HandlerDone(U),
                             hung(cause="NORMAL_CLEARING", sip_code=200, answered=True,
                                  disposition="recv_bye", billsec=12))
    assert states == [CallState.ORIGINATING, CallState.RINGING, CallState.EARLY_MEDIA,
                      CallState.EARLY_MEDIA, CallState.ANSWERED, CallState.IN_DIALOGUE,
                      CallState.IN_DIALOGUE, CallState.ENDED]
    assert cmds[:2] == [Originate(), SetTimer("ring", 30 + RING_GRACE_S)]
    assert cmds[2:6] == [CancelTimer("ring"), SetTimer("max_call", 300),
                         StartRecording(PLAN.recording_path), HandOff()]
    assert cmds[-1] == Finish()
    assert call.status == CallStatus.ANSWERED
    assert call.ringing_at == 1001.0 and call.answered_at == 1004.0 and call.ended_at == 1007.0


def test_a_hangup_while_the_handler_runs_waits_for_it():
    answered, _, _ = run(Start(U), Answered("fs1", U, 0), DialogueStarted(U))
    bye = hung(cause="NORMAL_CLEARING", sip_code=200, answered=True, disposition="recv_bye")
    call, states, cmds = run(bye, Progress("fs1", U, 0), Timer(U, "max_call"), HandlerDone(U),
                             call=answered)
    assert states[:3] == [CallState.IN_DIALOGUE] * 3 and states[3] == CallState.ENDED
    assert CallOver() in cmds and SetTimer("wrap_up", WRAP_UP_S) in cmds
    assert not any(isinstance(c, Hangup) for c in cmds)  # the channel is gone already
    assert cmds.count(Finish()) == 1 and cmds[-1] == Finish()
    assert call.ended_at == 1000.0 and call.outcome == bye  # the hang-up's, not the handler's
    assert call.status == CallStatus.ANSWERED and not call.handler


def test_a_handler_that_never_returns_is_given_up_after_the_wrap_up():
    answered, _, _ = run(Start(U), Answered("fs1", U, 0))
    call, _, cmds = run(Vanished(U), Timer(U, "wrap_up"), HandlerDone(U), call=answered)
    assert call.state == CallState.ENDED and cmds.count(Finish()) == 1
    assert call.status == CallStatus.ANSWERED  # answered, outcome unknown (CDR fills it in)


def test_a_handler_done_first_lets_the_hangup_finish_at_once():
    call, _, cmds = run(Start(U), Answered("fs1", U, 0), HandlerDone(U),
                        hung(cause="NORMAL_CLEARING", answered=True))
    assert call.state == CallState.ENDED and CallOver() not in cmds and cmds[-1] == Finish()


def test_transfer_states_and_no_max_call_once_bridged():
    answered, _, _ = run(Start(U), Answered("fs1", U, 0), DialogueStarted(U))
    call, states, cmds = run(TransferStarted(U), TransferEnded(U, False), TransferStarted(U),
                             TransferEnded(U, True), call=answered)
    assert states == [CallState.TRANSFERRING, CallState.IN_DIALOGUE, CallState.TRANSFERRING,
                      CallState.BRIDGED]
    assert cmds == [CancelTimer("max_call")]
    assert run(TransferEnded(U, True), call=answered)[0].state == CallState.IN_DIALOGUE


def test_busy_without_answer():
    call, states, cmds = run(Start(U), JobDone("fs1", U, False, "USER_BUSY"),
                             hung(cause="USER_BUSY", sip_code=486, disposition="recv_refuse"))
    assert states[-1] == CallState.ENDED and call.status == CallStatus.BUSY
    assert SetTimer("settle", SETTLE_S) in cmds and cmds[-1] == Finish()


def test_hangup_before_the_job_result_and_duplicates_are_ignored():
    call, _, cmds = run(Start(U), hung(cause="UNALLOCATED_NUMBER", sip_code=404),
                        JobDone("fs1", U, False, "UNALLOCATED_NUMBER"),
                        hung(cause="UNALLOCATED_NUMBER", sip_code=404))
    assert call.status == CallStatus.VACANT
    assert cmds.count(Finish()) == 1


def test_failed_job_without_a_channel_settles_from_the_job_cause():
    call, states, cmds = run(Start(U), JobDone("fs1", U, False, "GATEWAY_DOWN"),
                             Timer(U, "settle"))
    assert states[-1] == CallState.ENDED and call.status == CallStatus.FAILED
    assert call.outcome is None and cmds[-1] == Finish()


def test_ring_timeout_backstop_hangs_up_then_settles():
    call, _, cmds = run(Start(U), Progress("fs1", U, 0), Timer(U, "ring"))
    assert Hangup("NO_ANSWER") in cmds and call.state == CallState.RINGING
    call, _, cmds2 = run(hung(cause="NO_ANSWER", sip_code=487), call=call)
    assert call.status == CallStatus.NO_ANSWER and cmds2[-1] == Finish()


def test_max_call_length_hangs_up_answered_calls_once():
    call, _, cmds = run(Start(U), Answered("fs1", U, 0), Timer(U, "max_call"),
                        Timer(U, "max_call"))
    assert cmds.count(Hangup("ALLOTTED_TIMEOUT")) == 1


def test_ring_timer_after_answer_does_nothing():
    _, _, cmds = run(Start(U), Answered("fs1", U, 0), Timer(U, "ring"))
    assert not any(isinstance(c, Hangup) for c in cmds)


def test_confident_announcement_ends_early_media_and_decides_the_status():
    call, _, cmds = run(Start(U), Progress("fs1", U, 0, media=True),
                        Announcement("fs1", U, 0, category="空号"))
    assert Hangup("NORMAL_CLEARING") in cmds
    call, _, _ = run(hung(cause="ORIGINATOR_CANCEL", sip_code=487), call=call)
    assert call.status == CallStatus.VACANT


def test_an_assistant_heard_by_the_dialogue_screens_the_call_even_after_the_hang_up():
    bye = hung(cause="NORMAL_CLEARING", answered=True)
    for order in ((Announcement("fs1", U, 0, category="智能助理"), bye),
                  (bye, Announcement("fs1", U, 0, category="智能助理"))):
        call, _, _ = run(Start(U), Answered("fs1", U, 0), *order, HandlerDone(U))
        assert call.state == CallState.ENDED and call.status == CallStatus.SCREENED
    call, _, _ = run(Start(U), Answered("fs1", U, 0), bye, HandlerDone(U))
    assert call.status == CallStatus.ANSWERED


def test_unmapped_outcome_keeps_raw_values_and_no_status():
    call, _, _ = run(Start(U), hung(cause="NORMAL_UNSPECIFIED", sip_code=None))
    assert call.status is None and call.outcome.cause == "NORMAL_UNSPECIFIED"


def test_vanished_call_ends_without_a_guess():
    call, _, cmds = run(Start(U), Progress("fs1", U, 0), Vanished(U))
    assert call.state == CallState.ENDED and call.status is None and cmds[-1] == Finish()


def test_not_dialled_is_marked_so():
    call, _, cmds = run(Start(U), NotDialled(U, "node down"))
    assert call.state == CallState.ENDED and not call.dialled and cmds[-1] == Finish()


def test_adopted_calls_resume_in_the_matching_state():
    call, _, cmds = run(Adopt(U, "ACTIVE"))
    assert call.state == CallState.ANSWERED and HandOff(resumed=True) in cmds
    call, _, cmds = run(Adopt(U, "EARLY"))
    assert call.state == CallState.EARLY_MEDIA
    assert SetTimer("ring", 30 + RING_GRACE_S) in cmds


def test_hangup_side_from_disposition():
    assert hangup_side("recv_bye", None) == HangupSide.CALLEE
    assert hangup_side("recv_refuse", None) == HangupSide.CALLEE
    assert hangup_side("send_bye", None) == HangupSide.ROBOT
    assert hangup_side("send_cancel", None) == HangupSide.SYSTEM
    assert hangup_side(None, "NO_ANSWER") == HangupSide.SYSTEM
    assert hangup_side(None, None) is None


EVENTS = st.sampled_from([
    Start(U), Adopt(U, "RINGING"), Progress("fs1", U, 0), Progress("fs1", U, 0, media=True),
    Answered("fs1", U, 0), DialogueStarted(U), JobDone("fs1", U, True, U),
    JobDone("fs1", U, False, "USER_BUSY"), Announcement("fs1", U, 0, category="关机"),
    Timer(U, "ring"), Timer(U, "max_call"), Timer(U, "settle"), Vanished(U),
    hung(cause="USER_BUSY", sip_code=486), hung(cause="NORMAL_CLEARING", answered=True),
    HandlerDone(U), TransferStarted(U), TransferEnded(U, True), Timer(U, "wrap_up"),
])


@settings(max_examples=400, deadline=None)
@given(st.lists(EVENTS, max_size=20))
def test_any_event_order_finishes_at_most_once_and_never_leaves_ended(events):
    call = CallRecord(PLAN)
    finishes = 0
    ended = False
    for i, event in enumerate(events):
        call, cmds = step(call, event, float(i))
        finishes += cmds.count(Finish())
        if ended:
            assert call.state == CallState.ENDED and not cmds
        ended = call.state == CallState.ENDED
        # No I/O: a record is a value; stepping twice from the same record is repeatable.
        assert step(replace(call), event, float(i)) == step(call, event, float(i))
    assert finishes == (1 if ended else 0)
