"""core.cdr against mod_json_cdr documents shaped like FreeSWITCH 1.10's (values from the
real captures in shared/fixtures/esl/real: 06 answered + remote BYE, 07 486 busy)."""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from core.cdr import CdrError, apply_cdr
from core.db import session_factory
from core.enums import CallStatus, Direction, HangupSide, TaskState
from core.models import Call, Task, TaskNumber
from tests import factories as f

UUID = "4434ab3c-61e1-4fde-a4eb-5c3bca2814aa"


def sample_cdr(uuid: str = UUID, **variables) -> dict:
    """An answered outbound call the callee hung up (capture 06), as mod_json_cdr posts it."""
    base = {
        "direction": "outbound", "is_outbound": "true", "uuid": uuid, "call_uuid": uuid,
        "origination_uuid": uuid, "origination_caller_id_number": "02161234567",
        "sofia_profile_name": "external", "sip_gateway_name": "gw1",
        "sip_term_status": "200", "proto_specific_hangup_cause": "sip:200",
        "sip_term_cause": "16", "sip_hangup_disposition": "recv_bye",
        "hangup_cause": "NORMAL_CLEARING", "hangup_cause_q850": "16",
        "start_epoch": "1795470129", "start_uepoch": "1795470129546980",
        "answer_epoch": "1795470130", "answer_uepoch": "1795470130066941",
        "progress_epoch": "1795470129", "progress_uepoch": "1795470129566936",
        "progress_media_epoch": "0", "progress_media_uepoch": "0",
        "end_epoch": "1795470134", "end_uepoch": "1795470134086943",
        "duration": "5", "billsec": "4", "progresssec": "0", "answersec": "1",
        "last_app": "park", "read_codec": "PCMA", "write_codec": "PCMA",
    }
    base.update({k: str(v) for k, v in variables.items()})
    return {
        "core-uuid": "2a9b7c1e-9d0e-4c47-8f5a-2b1f1e0c9a11", "switchname": "fs1",
        "channel_data": {"state": "CS_REPORTING", "direction": base["direction"],
                         "state_number": "11", "flags": "0=1;1=1", "caps": "1=1;2=1"},
        "callStats": {"audio": {"inbound": {"raw_bytes": 32000}}},
        "variables": base,
        "app_log": {"applications": [{"app_name": "park", "app_data": "",
                                      "app_stamp": "1795470130067012"}]},
        "callflow": [{"dialplan": "XML", "profile_index": "1", "times": {},
                      # As FreeSWITCH reports an answered outbound leg: caller and
                      # callee flipped (channel_cid_flipped).
                      "caller_profile": {"username": "", "dialplan": "XML",
                                         "caller_id_name": "", "caller_id_number": "13800138000",
                                         "destination_number": "13800138000",
                                         "uuid": uuid, "context": "default"}}],
    }


def busy_cdr(uuid: str = UUID, **variables) -> dict:
    """486 Busy Here before answer (capture 07)."""
    cdr = sample_cdr(uuid, **variables)
    v = cdr["variables"]
    for name in ("answer_epoch", "answer_uepoch", "billsec"):
        v[name] = "0"
    v.update(sip_term_status="486", proto_specific_hangup_cause="sip:486",
             sip_hangup_disposition="recv_refuse", hangup_cause="USER_BUSY",
             hangup_cause_q850="17", end_epoch="1795470131", end_uepoch="1795470131066000")
    v.update({k: str(val) for k, val in variables.items()})
    return cdr


@pytest.fixture
def session(any_db_url):
    s = session_factory(any_db_url)()
    yield s
    s.rollback()
    s.close()


@pytest.fixture
def world(session):
    acct = f.account(session, "A")
    other = f.account(session, "B")
    line = f.line(session, acct)
    task = Task(account_id=acct.id, name="T", line_id=line.id, state=TaskState.RUNNING)
    session.add(task)
    session.flush()
    number = TaskNumber(account_id=acct.id, task_id=task.id, phone="13800138000",
                        raw_phone="13800138000")
    session.add(number)
    session.commit()
    return {"a": acct.id, "b": other.id, "line": line.id, "task": task.id, "number": number.id}


def _call(session, world, **extra) -> Call:
    call = Call(account_id=world["a"], uuid=UUID, phone="13800138000", task_id=world["task"],
                line_id=world["line"], **extra)
    session.add(call)
    session.commit()
    return call


def _columns(call: Call) -> dict:
    return {c.key: getattr(call, c.key) for c in Call.__table__.columns}


def test_answered_call_gets_the_switch_timings(session, world):
    _call(session, world)
    call = apply_cdr(session, sample_cdr(), fs_node="fs1")
    session.commit()
    assert call.originated_at == datetime(2026, 11, 23, 21, 42, 9, 546980, tzinfo=UTC)
    assert call.ringing_at == datetime(2026, 11, 23, 21, 42, 9, 566936, tzinfo=UTC)
    assert call.answered_at == datetime(2026, 11, 23, 21, 42, 10, 66941, tzinfo=UTC)
    assert call.ended_at == datetime(2026, 11, 23, 21, 42, 14, 86943, tzinfo=UTC)
    assert (call.ring_seconds, call.talk_seconds) == (1, 4)
    assert (call.sip_code, call.hangup_cause) == (200, "NORMAL_CLEARING")
    assert call.hangup_side == HangupSide.CALLEE
    assert call.cdr["variables"]["uuid"] == UUID
    assert call.status == CallStatus.ANSWERED


def test_unanswered_call_rings_until_the_end(session, world):
    _call(session, world)
    call = apply_cdr(session, busy_cdr())
    assert call.answered_at is None and call.talk_seconds == 0
    assert call.ring_seconds == 2  # 21:42:09.55 → 21:42:11.07
    assert (call.sip_code, call.hangup_cause) == (486, "USER_BUSY")
    assert call.hangup_side == HangupSide.CALLEE
    assert call.status == CallStatus.BUSY


def test_the_controllers_status_is_kept(session, world):
    """It may have heard a carrier announcement (e.g. 关机) the CDR knows nothing of."""
    _call(session, world, status=CallStatus.POWERED_OFF)
    assert apply_cdr(session, busy_cdr()).status == CallStatus.POWERED_OFF


@pytest.mark.parametrize("disposition,side", [
    ("recv_cancel", HangupSide.CALLEE), ("send_bye", HangupSide.ROBOT),
    ("send_cancel", HangupSide.SYSTEM), ("send_refuse", HangupSide.SYSTEM),
])
def test_hangup_side_from_the_sip_disposition(session, world, disposition, side):
    _call(session, world)
    call = apply_cdr(session, sample_cdr(sip_hangup_disposition=disposition))
    assert call.hangup_side == side


def test_the_controllers_hangup_side_is_kept(session, world):
    _call(session, world, hangup_side=HangupSide.AGENT)
    assert apply_cdr(session, sample_cdr(sip_hangup_disposition="send_bye")).hangup_side \
        == HangupSide.AGENT


def test_sip_code_falls_back_to_the_protocol_causes(session, world):
    _call(session, world)
    cdr = busy_cdr()
    del cdr["variables"]["sip_term_status"]
    cdr["variables"]["proto_specific_hangup_cause"] = "sip:404"
    assert apply_cdr(session, cdr).sip_code == 404
    cdr["variables"]["last_bridge_proto_specific_hangup_cause"] = "sip:503"
    assert apply_cdr(session, cdr).sip_code == 503


def test_url_encoded_values_read_the_same(session, world):
    """encode-values=true (mod_json_cdr's default) percent-encodes every value."""
    _call(session, world)
    call = apply_cdr(session, sample_cdr(sip_term_status="", proto_specific_hangup_cause="sip%3A486",
                                         cc_recording_path="%2Fdata%2Frec%2Fa.wav"))
    assert call.sip_code == 486 and call.recording_path == "/data/rec/a.wav"


def test_recording_path_is_taken_when_set(session, world):
    _call(session, world, recording_path="/old.wav")
    assert apply_cdr(session, sample_cdr()).recording_path == "/old.wav"
    assert apply_cdr(session, sample_cdr(cc_recording_path="/rec/x.wav")).recording_path \
        == "/rec/x.wav"


def test_posting_the_same_cdr_twice_changes_nothing(session, world):
    _call(session, world)
    apply_cdr(session, sample_cdr())
    session.commit()
    row = session.scalar(select(Call).where(Call.uuid == UUID))
    before = _columns(row)
    again = apply_cdr(session, copy.deepcopy(sample_cdr()))
    assert again.id == row.id
    assert not session.dirty and not session.new
    session.commit()
    session.expire_all()
    assert _columns(session.scalar(select(Call).where(Call.uuid == UUID))) == before
    assert session.scalar(select(Call.id).where(Call.uuid == UUID).limit(2)) == row.id


def test_missing_row_is_created_from_the_cc_variables(session, world):
    cdr = sample_cdr(cc_account_id=world["a"], cc_task_id=world["task"],
                     cc_number_id=world["number"], cc_line_id=world["line"])
    call = apply_cdr(session, cdr, fs_node="fs1")
    session.commit()
    assert call.id is not None and call.uuid == UUID
    assert (call.account_id, call.task_id, call.task_number_id, call.line_id) == (
        world["a"], world["task"], world["number"], world["line"])
    assert (call.phone, call.caller_id, call.direction, call.fs_node) == (
        "13800138000", "02161234567", Direction.OUTBOUND, "fs1")
    assert call.talk_seconds == 4
    # And a second post finds it instead of making another.
    assert apply_cdr(session, cdr).id == call.id
    session.commit()
    assert len(session.scalars(select(Call)).all()) == 1


def test_inbound_call_swaps_phone_and_caller_id(session, world):
    cdr = sample_cdr(cc_account_id=world["a"], cc_line_id=world["line"], direction="inbound")
    cdr["callflow"][0]["caller_profile"].update(caller_id_number="13900139000",
                                                destination_number="02161230000")
    call = apply_cdr(session, cdr)
    assert (call.direction, call.phone, call.caller_id) == (
        Direction.INBOUND, "13900139000", "02161230000")


def test_no_row_and_no_account_is_skipped(session, world, caplog):
    caplog.set_level(logging.WARNING, "core.cdr")
    assert apply_cdr(session, sample_cdr()) is None
    assert apply_cdr(session, sample_cdr(cc_account_id=999999)) is None
    assert apply_cdr(session, sample_cdr(cc_account_id="abc")) is None
    assert session.scalars(select(Call)).all() == []
    assert "not recorded" in caplog.text


def test_ids_of_another_account_are_never_linked(session, world):
    cdr = sample_cdr(cc_account_id=world["b"], cc_task_id=world["task"],
                     cc_line_id=world["line"], cc_number_id=world["number"])
    call = apply_cdr(session, cdr)
    session.commit()
    assert call.account_id == world["b"]
    assert (call.task_id, call.line_id, call.task_number_id) == (None, None, None)


@pytest.mark.parametrize("cdr,message", [
    ({}, "no variables"), ({"variables": []}, "no variables"),
    ({"variables": {"hangup_cause": "NORMAL_CLEARING"}}, "no variables.uuid"),
])
def test_unusable_documents_are_refused(session, cdr, message):
    with pytest.raises(CdrError, match=message):
        apply_cdr(session, cdr)
