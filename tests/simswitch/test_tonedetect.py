"""The announcement detector simswitch plays (mod_ring_asr's mod_tonedetect, CPA.md §4.3):
started by an execute_on_pre_answer variable, it reports the carrier recording's category
in a CUSTOM tonedetect event once the recording has been heard, and hangs up unless told
not to."""

from tests.simswitch.conftest import scenario_file, start_switch

U = "5e7d0c6a-0000-4000-8000-0000000000d1"
OFF = {"result": "sip", "sip": 480, "after": 8.0, "category": "关机",
       "early_media": {"seconds": 1.5, "text": "您拨打的电话已关机"}}


def _off(audio_dir) -> dict:
    """OFF with a real recording: 1.5 s of sound, no pause."""
    return {**OFF, "early_media": {"file": str(audio_dir / "announcement.wav"),
                                   "text": "您拨打的电话已关机"}}


def _dial(fs, variables: str) -> None:
    fs.send(f"bgapi originate {{origination_uuid={U},{variables}}}"
            "sofia/gateway/gw1/13800138000 &park()")


def _switch(tmp_path, outcome: dict):
    return start_switch(tmp_path, scenario_file(tmp_path, {"outcomes": {"only": outcome}}))


def test_the_verdict_comes_after_one_play_and_the_module_hangs_up(tmp_path, audio_dir,
                                                                  make_client):
    sw = _switch(tmp_path, _off(audio_dir))
    try:
        fs = make_client(sw.port)
        _dial(fs, "execute_on_pre_answer_cpa=start_tonedetect")
        media = fs.wait_for(lambda e: e.get("Event-Name") == "CHANNEL_PROGRESS_MEDIA")
        verdict = fs.wait_for(lambda e: e.get("Event-Subclass") == "tonedetect")
        assert verdict["Unique-ID"] == U and verdict["Answer-State"] == "early"
        assert (verdict["tonedetect_source"], verdict["tonedetect_da_tone"],
                verdict["tonedetect_da_accuracy"], verdict["tonedetect_da_category"],
                verdict["tonedetect_da_alias"]) == ("server", "sample", "ACCURACY", "关机",
                                                    "power off")
        heard_s = (int(verdict["Event-Date-Timestamp"])
                   - int(media["Event-Date-Timestamp"])) / 1e6
        assert 1.5 + 0.2 <= heard_s < 3.0  # the recording, its pause, the server's answer
        hangup = fs.wait_for(lambda e: e.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE")
        assert hangup["Hangup-Cause"] == "NORMAL_CLEARING"
        assert hangup["variable_tonedetect_da_category"] == "关机"
        assert hangup["variable_sip_hangup_disposition"] == "send_cancel"
    finally:
        sw.stop()


def test_without_autohangup_the_carrier_s_final_answer_still_ends_it(tmp_path, make_client):
    sw = _switch(tmp_path, OFF)
    try:
        fs = make_client(sw.port)
        _dial(fs, "execute_on_pre_answer=start_tonedetect,tonedetect_autohangup=false")
        fs.wait_for(lambda e: e.get("Event-Subclass") == "tonedetect")
        hangup = fs.wait_for(lambda e: e.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE")
        assert hangup["variable_sip_term_status"] == "480"
    finally:
        sw.stop()


def test_no_verdict_without_the_hook_or_for_a_colour_ring_back(tmp_path, make_client):
    ring_back = {"result": "answer", "after": 2.5,
                 "early_media": {"seconds": 1.0, "text": "（彩铃音乐）"}}
    for outcome, variables in ((OFF, "ignore_early_media=false"),
                               (ring_back, "execute_on_pre_answer=start_tonedetect")):
        sw = _switch(tmp_path, outcome)
        try:
            fs = make_client(sw.port)
            _dial(fs, variables)
            fs.wait_for(lambda e: e.get("Event-Name") in ("CHANNEL_HANGUP", "CHANNEL_ANSWER"))
            assert not [e for e in fs.seen if e.get("Event-Subclass") == "tonedetect"]
            fs.send(f"api uuid_kill {U}")
        finally:
            sw.stop()


def test_the_server_answers_at_the_first_pause_of_a_two_part_recording(tmp_path):
    """"您拨打的电话已关机，" then its English half: the verdict needs only the first part."""
    import numpy as np
    import soundfile

    from simswitch import media
    from simswitch.tonedetect import first_segment_s
    from tests.simswitch.conftest import write_tone

    rate = 8000
    chinese = write_tone(tmp_path / "zh.wav", 0.8, 450)
    english = write_tone(tmp_path / "en.wav", 1.0, 600)
    lead, gap = np.zeros(int(0.3 * rate), np.float32), np.zeros(int(0.5 * rate), np.float32)
    both = np.concatenate([lead, soundfile.read(chinese, dtype="float32")[0], gap,
                           soundfile.read(english, dtype="float32")[0]])
    soundfile.write(tmp_path / "both.wav", both, rate, subtype="PCM_16")
    samples = media.load_file(str(tmp_path / "both.wav"), rate)
    assert abs(first_segment_s(samples, rate) - (0.3 + 0.8 + 0.2)) < 0.05
    # no pause: the whole recording; silence only: its length
    assert abs(first_segment_s(media.load_file(str(english), rate), rate) - 1.0) < 0.03
    assert first_segment_s(np.zeros(rate, np.int16), rate) == 1.0
