"""The ESL adapter (one place where header dicts become typed events) and the dial string."""

from __future__ import annotations

from controller.call_machine import CallPlan
from controller.calls import dial_string
from controller.events import (
    Announcement,
    Answered,
    CaptureReader,
    ExecuteComplete,
    ForHandler,
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


def test_dial_string_starts_the_announcement_detector_only_when_asked():
    assert "tonedetect" not in dial_string(PLAN)
    s = dial_string(PLAN, "tonedetect")
    assert "execute_on_pre_answer=start_tonedetect" in s
    assert "tonedetect_autohangup=false" in s  # the call machine hangs up, knowing why


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


def test_subscription_puts_every_subclass_after_custom():
    from controller.events import SUBSCRIBE, subscription

    assert subscription(("A", "CUSTOM", "x::y"), ("B", "CUSTOM", "z"), ("a",)) == (
        "A", "B", "CUSTOM", "x::y", "z")
    custom = SUBSCRIBE.index("CUSTOM")
    # FreeSWITCH reads every token after CUSTOM as a subclass (PROTOCOL.md §3.1).
    for name in ("PLAYBACK_START", "PLAYBACK_STOP", "DTMF", "CHANNEL_HANGUP",
                 "CHANNEL_HANGUP_COMPLETE", "BACKGROUND_JOB"):
        assert SUBSCRIBE.index(name) < custom
    for sub in ("simswitch::callee_speech", "mod_audio_fork::connect_failed", "tonedetect"):
        assert SUBSCRIBE.index(sub) > custom


def test_dialogue_events_reach_the_handler_typed():
    from controller.dialogue import events as dialogue

    def ev(**h):
        return from_esl("fs1", {"Unique-ID": "u-1", "Event-Date-Timestamp": "1700000000000000",
                                **h})

    assert ev(**{"Event-Name": "DTMF", "DTMF-Digit": "5"}) == ForHandler(
        "fs1", "u-1", 1700000000.0, dialogue.Dtmf("5"))
    assert ev(**{"Event-Name": "PLAYBACK_STOP", "Playback-File-Path": "/p.wav",
                 "Playback-Status": "break"}).event == dialogue.PlaybackStopped("/p.wav", "break")
    assert ev(**{"Event-Name": "CHANNEL_HANGUP", "Hangup-Cause": "NORMAL_CLEARING",
                 "variable_sip_hangup_disposition": "recv_bye"}).event == dialogue.HungUp(
        "NORMAL_CLEARING", "callee")
    assert ev(**{"Event-Name": "CUSTOM", "Event-Subclass": "simswitch::callee_speech",
                 "Speech-Text": "可以"}).event == dialogue.CalleeSpeech("可以")
    assert isinstance(ev(**{"Event-Name": "CHANNEL_HANGUP_COMPLETE"}), HungUp)  # the dialer's


def test_real_switch_events_the_dialogue_needs_carry_our_variable_but_dtmf():
    """On FreeSWITCH, PLAYBACK_*, CHANNEL_HANGUP and mod_audio_fork's CUSTOM events carry the
    channel's variables (so `variable_cc_controller` lets them through); DTMF carries none,
    hence its own Event-Name filter (PROTOCOL.md §5.3; the real 1.10.12 captures)."""
    from controller.service import node_filters

    seen = {}
    for name in ("02_plain_loopback_lifecycle.txt", "16_plain_audio_fork.txt"):
        for h, _ in CaptureReader().feed((REAL / name).read_bytes()):
            kind = h.get("Event-Subclass") or h.get("Event-Name")
            has_vars = any(k.startswith("variable_") for k in h)
            seen.setdefault(kind, set()).add(has_vars)
    for kind in ("PLAYBACK_START", "PLAYBACK_STOP", "CHANNEL_HANGUP",
                 "mod_audio_fork::connect", "mod_audio_fork::connect_failed"):
        assert seen[kind] == {True}, kind
    assert seen["DTMF"] == {False}
    assert ("Event-Name", "DTMF") in node_filters("ctl-a")


def test_the_subscription_and_filters_let_a_calls_dialogue_events_through(tmp_path):
    """Against simswitch's Event Socket (FreeSWITCH's subscription and filter rules): our
    channel's playback, DTMF, fork failure and hang-up arrive; another controller's don't."""
    import json

    import gevent

    from controller.dialogue import events as dialogue
    from controller.esl import NodeLink
    from controller.service import node_filters
    from core.settings import FsNode
    from simswitch import SimSwitch
    from simswitch.clock import FastClock

    scenario = tmp_path / "s.json"
    scenario.write_text(json.dumps({
        "seed": 1, "gateways": {"gw1": {"proxy": "127.0.0.1", "state": "REGED"}},
        "outcomes": {"talk": {"result": "answer", "after": 0.1, "hangup_after": 60}},
        "distribution": [{"outcome": "talk", "weight": 1}]}))
    got: list = []
    with SimSwitch(esl_port=0, scenario=scenario, recordings_dir=tmp_path,
                   clock=FastClock(10), heartbeat=False) as sw:
        from controller.events import SUBSCRIBE
        link = NodeLink(FsNode("sim", "127.0.0.1", sw.port, "ClueCon"), events=SUBSCRIBE,
                        filters=node_filters("ctl-a"),
                        on_event=lambda n, h, b: got.append(from_esl(n, h, b)))
        runner = gevent.spawn(link.run)
        try:
            assert link.up.wait(5)
            ours, theirs = "11111111-0000-4000-8000-000000000001", \
                "11111111-0000-4000-8000-000000000002"
            for uuid, owner in ((ours, "ctl-a"), (theirs, "ctl-b")):
                assert link.api(f"originate {{origination_uuid={uuid},cc_controller={owner}}}"
                                "sofia/gateway/gw1/13800000001 &park()").startswith("+OK")
            for uuid in (ours, theirs):
                link.api(f"uuid_broadcast {uuid} tone_stream://%(200,0,440);loops=1 aleg")
                link.api(f"uuid_recv_dtmf {uuid} 7")
                link.api(f"uuid_audio_fork {uuid} start ws://127.0.0.1:9/fork mono 8k {{}}")
            gevent.sleep(1.0)
            for uuid in (ours, theirs):
                link.api(f"uuid_kill {uuid}")
            gevent.sleep(0.5)
        finally:
            link.stop()
            runner.kill()
    mine = {type(e.event) for e in got if isinstance(e, ForHandler) and e.uuid == ours}
    assert {dialogue.PlaybackStarted, dialogue.PlaybackStopped, dialogue.Dtmf,
            dialogue.ForkFailed, dialogue.HungUp} <= mine
    others = [e for e in got if isinstance(e, ForHandler) and e.uuid == theirs]
    # Only DTMF (no variables to filter on) comes for a channel that is not ours; the
    # router drops it (no driver has that uuid).
    assert {type(e.event) for e in others} <= {dialogue.Dtmf}
