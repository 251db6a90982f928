"""The ESL adapter (one place where header dicts become typed events) and the dial string."""

from __future__ import annotations

from controller.call_machine import CallPlan
from controller.calls import dial_string
from controller.events import (
    Announcement,
    Answered,
    CaptureReader,
    ExecuteComplete,
    HungUp,
    JobDone,
    Progress,
    from_esl,
)
from tests.core.test_call_status import REAL

PLAN = CallPlan(uuid="u-1", node="fs1", account_id=1, task_id=2, number_id=3, line_id=4,
                phone="13800000001", gateway="gw1", caller_id="02100000000",
                ring_timeout_s=30, max_call_s=300,
                recording_path="/data/rec/2026/01/01/u-1.wav", controller="ctl-a")


def test_dial_string_carries_ids_caller_id_timeout_and_headers():
    s = dial_string(PLAN)
    assert s.startswith("originate {") and s.endswith("}sofia/gateway/gw1/13800000001 &park()")
    for part in ("origination_uuid=u-1", "originate_timeout=30", "cc_account_id=1",
                 "cc_task_id=2", "cc_number_id=3", "cc_line_id=4", "cc_controller=ctl-a",
                 "cc_recording_path=/data/rec/2026/01/01/u-1.wav", "RECORD_STEREO=true",
                 "sip_h_X-CC-Task=2", "sip_h_X-CC-Number=3",
                 "origination_caller_id_number=02100000000"):
        assert part in s
    assert "ignore_early_media" not in s  # early media is kept for detectors


def test_dial_string_quotes_values_with_commas_or_spaces():
    from dataclasses import replace

    s = dial_string(replace(PLAN, recording_path="/data/my rec,1/u-1.wav"))
    assert "cc_recording_path='/data/my rec,1/u-1.wav'" in s


def test_real_stream_adapts_to_typed_events_in_any_segmentation():
    raw = (REAL / "05_plain_sip_answer_fs_hangup.txt").read_bytes()
    whole = [from_esl("fs1", h, b) for h, b in CaptureReader().feed(raw)]
    reader, pieces = CaptureReader(), []
    for i in range(0, len(raw), 7):  # packets split across reads
        pieces.extend(from_esl("fs1", h, b) for h, b in reader.feed(raw[i:i + 7]))
    assert pieces == whole
    kinds = [type(e) for e in whole if e is not None]
    assert Progress in kinds and Answered in kinds and HungUp in kinds and JobDone in kinds
    job = next(e for e in whole if isinstance(e, JobDone))
    assert job.ok and job.text == "17a90c2b-0ef1-4e7d-a2b5-351fb079ec28"


def test_detector_events_become_announcements():
    base = {"Event-Name": "CUSTOM", "Unique-ID": "u-1", "Event-Date-Timestamp": "1700000000000000"}
    sure = from_esl("fs1", {**base, "Event-Subclass": "tonedetect",
                            "tonedetect_da_category": "空号", "tonedetect_da_accuracy": "ACCURACY"})
    assert sure == Announcement("fs1", "u-1", 1700000000.0, category="空号")
    assert from_esl("fs1", {**base, "Event-Subclass": "tonedetect",
                            "tonedetect_da_category": "空号",
                            "tonedetect_da_accuracy": "LOOSE"}) is None
    assert from_esl("fs1", {**base, "Event-Subclass": "da", "da_type": "关机"}).category == "关机"
    assert from_esl("fs1", {**base, "Event-Subclass": "cc::announcement",
                            "Announcement-Class": "停机"}).category == "停机"
    tone = from_esl("fs1", {**base, "Event-Name": "DETECTED_TONE", "Detected-Tone": "BUSY_TONE"})
    assert tone.category == "用户正忙"


def test_execute_complete_keeps_the_application_uuid():
    event = from_esl("fs1", {"Event-Name": "CHANNEL_EXECUTE_COMPLETE", "Unique-ID": "u-1",
                             "Application": "playback", "Application-UUID": "app-9",
                             "Application-Response": "FILE PLAYED"})
    assert event == ExecuteComplete("fs1", "u-1", 0.0, application="playback",
                                    app_uuid="app-9", response="FILE PLAYED")


def test_failed_job_body_gives_the_cause():
    event = from_esl("fs1", {"Event-Name": "BACKGROUND_JOB", "Job-UUID": "j"},
                     "-ERR USER_BUSY\n")
    assert event == JobDone("fs1", "j", False, "USER_BUSY")
