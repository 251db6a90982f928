"""Call status mapping: the documented table row by row, and real FreeSWITCH captures."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.events import CaptureReader, HungUp, JobDone, from_esl
from core.call_status import ANNOUNCEMENTS, classify, describe
from core.enums import CallStatus as S

REAL = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "esl" / "real"
if not REAL.exists():  # the repository may be checked out beside shared/, or inside it
    REAL = Path("/work/shared/fixtures/esl/real")

TABLE = [
    # sip, cause, answered, announcement → status
    (200, "NORMAL_CLEARING", True, None, S.ANSWERED),
    (None, "NORMAL_CLEARING", True, None, S.ANSWERED),
    (200, "NORMAL_CLEARING", True, "来电提醒", S.SCREENED),
    (200, "NORMAL_CLEARING", True, "关机", S.ANSWERED),  # heard after answer: not CPA
    (486, "USER_BUSY", False, None, S.BUSY),
    (600, "USER_BUSY", False, None, S.BUSY),
    (None, "USER_BUSY", False, None, S.BUSY),
    (404, "UNALLOCATED_NUMBER", False, None, S.VACANT),
    (604, "NO_ROUTE_DESTINATION", False, None, S.VACANT),
    (None, "UNALLOCATED_NUMBER", False, None, S.VACANT),
    (480, "NO_USER_RESPONSE", False, None, S.NO_ANSWER),
    (408, "RECOVERY_ON_TIMER_EXPIRE", False, None, S.NO_ANSWER),
    (487, "NO_ANSWER", False, None, S.NO_ANSWER),  # our originate timeout
    (None, "NO_ANSWER", False, None, S.NO_ANSWER),
    (603, "CALL_REJECTED", False, None, S.REJECTED),
    (607, "UNWANTED", False, None, S.REJECTED),
    (None, "CALL_REJECTED", False, None, S.REJECTED),
    (403, "CALL_REJECTED", False, None, S.CARRIER_BLOCKED),
    (608, "CALL_REJECTED", False, None, S.CARRIER_BLOCKED),
    (480, "SUBSCRIBER_ABSENT", False, None, S.NO_ANSWER),  # the SIP code speaks first
    (None, "SUBSCRIBER_ABSENT", False, None, S.POWERED_OFF),
    (None, "INCOMING_CALL_BARRED", False, None, S.BARRED),
    (None, "OUTGOING_CALL_BARRED", False, None, S.CARRIER_BLOCKED),
    (503, "NORMAL_TEMPORARY_FAILURE", False, None, S.FAILED),
    (None, "GATEWAY_DOWN", False, None, S.FAILED),
    # Announcements decide over SIP for unanswered calls.
    (480, "NO_USER_RESPONSE", False, "关机", S.POWERED_OFF),
    (503, "NORMAL_TEMPORARY_FAILURE", False, "停机", S.SUSPENDED),
    (487, "ORIGINATOR_CANCEL", False, "空号", S.VACANT),
    (480, "NO_USER_RESPONSE", False, "欠费", S.ARREARS),
    (480, "NO_USER_RESPONSE", False, "呼入限制", S.BARRED),
    (486, "USER_BUSY", False, "正在通话中", S.BUSY),
    # An announcement class with no certain meaning leaves the SIP reading in charge.
    (480, "NO_USER_RESPONSE", False, "稍后再拨", S.NO_ANSWER),
    # Unmapped: raw code and cause are kept, nothing is guessed.
    (487, "ORIGINATOR_CANCEL", False, None, None),
    (None, "NORMAL_UNSPECIFIED", False, None, None),
    (484, "INVALID_NUMBER_FORMAT", False, None, None),
    (None, None, False, None, None),
    (410, "NUMBER_CHANGED", False, None, None),
]


@pytest.mark.parametrize("sip,cause,answered,announcement,expected", TABLE)
def test_mapping_table(sip, cause, answered, announcement, expected):
    assert classify(sip, cause, answered, announcement) == expected


def test_cause_names_are_case_insensitive():
    assert classify(None, "user_busy", False) == S.BUSY


def test_every_announcement_maps_to_a_seed_status():
    assert set(ANNOUNCEMENTS.values()) <= set(S)


def test_describe_shows_raw_values_when_unmapped():
    assert describe(None, 487, "ORIGINATOR_CANCEL") == "487 ORIGINATOR_CANCEL"
    assert describe(None, None, None) == "unknown"
    assert describe(S.BUSY, 486, "USER_BUSY") == "busy"


def _capture_events(name: str):
    reader = CaptureReader()
    frames = reader.feed((REAL / name).read_bytes())
    return [from_esl("fs1", headers, body) for headers, body in frames]


CAPTURES = [
    # file, uuid of the sofia leg, status
    ("07_plain_sip_486_busy.txt", "118415ac-eac9-4e2d-ae80-17da4058fd32", S.BUSY),
    ("08_plain_sip_404_not_found.txt", "34c9a499-583c-4137-a868-bb65b9e5b1f6", S.VACANT),
    ("06_plain_sip_answer_remote_bye.txt", "4434ab3c-61e1-4fde-a4eb-5c3bca2814aa", S.ANSWERED),
    ("05_plain_sip_answer_fs_hangup.txt", "17a90c2b-0ef1-4e7d-a2b5-351fb079ec28", S.ANSWERED),
]


@pytest.mark.parametrize("name,uuid,expected", CAPTURES)
def test_real_captures_classify(name, uuid, expected):
    hangups = [e for e in _capture_events(name) if isinstance(e, HungUp) and e.uuid == uuid]
    assert len(hangups) == 1
    h = hangups[0]
    assert classify(h.sip_code, h.cause, h.answered) == expected
    if expected == S.ANSWERED:
        assert h.answered and h.answer_epoch and h.end_epoch >= h.answer_epoch
    else:
        assert not h.answered and h.billsec == 0
        assert h.disposition == "recv_refuse"


def test_real_capture_hangup_side_fields():
    bye = [e for e in _capture_events("06_plain_sip_answer_remote_bye.txt")
           if isinstance(e, HungUp)]
    assert any(e.disposition == "recv_bye" for e in bye)
    ours = [e for e in _capture_events("05_plain_sip_answer_fs_hangup.txt")
            if isinstance(e, HungUp)]
    assert any(e.disposition == "send_bye" for e in ours)


def test_real_capture_originate_failures_classify_from_job_and_cause():
    events = _capture_events("04_plain_originate_failures.txt")
    jobs = {e.text for e in events if isinstance(e, JobDone) and not e.ok}
    assert {"USER_BUSY", "CALL_REJECTED", "NO_ANSWER", "NORMAL_TEMPORARY_FAILURE"} <= jobs
    causes = {e.cause: classify(e.sip_code, e.cause, e.answered)
              for e in events if isinstance(e, HungUp)}
    assert causes["USER_BUSY"] == S.BUSY
    assert causes["CALL_REJECTED"] == S.REJECTED
    assert causes["NO_ANSWER"] == S.NO_ANSWER
    assert causes["NO_ROUTE_DESTINATION"] is None  # unmapped: shown raw
