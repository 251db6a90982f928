"""End to end: greenswitch drives a call through simswitch — originate, answer, playback,
audio fork with real audio reaching a WebSocket server, barge-in, record, transfer to a
user/ agent, hang-up, CDR."""

import json

import gevent
import numpy as np
import soundfile

from tests.simswitch.conftest import scenario_file, start_switch

U = "5e7d0c6a-0000-4000-8000-000000000001"


def _rms(x):
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if len(x) else 0.0


def test_call_end_to_end(tmp_path, audio_dir, ws_sink, cdr_sink, make_client):
    doc = {
        "outcomes": {
            "talk": {
                "result": "answer",
                "after": 1.0,
                "callee": [
                    {"say": {"file": str(audio_dir / "hello.wav"), "text": "喂，你好"}, "at": 0.3},
                    {"say": {"file": str(audio_dir / "yes.wav"), "text": "可以"}, "barge_in": 0.5},
                ],
            }
        },
        "agents": {"1001": {"answer_after": 1.0}},
    }
    sw = start_switch(tmp_path, scenario_file(tmp_path, doc), cdr_url=cdr_sink.url, cdr_retry_delay=1.0)
    try:
        fs = make_client(sw.port)
        r = fs.send(f"bgapi originate {{origination_uuid={U},ignore_early_media=true}}sofia/gateway/gw1/13800138000 &park()")
        job = r.headers["Job-UUID"]
        answer = fs.wait_for(lambda e: e.get("Event-Name") == "CHANNEL_ANSWER" and e.get("Unique-ID") == U)
        assert answer["Answer-State"] == "answered"
        fs.wait_for(lambda e: e.get("Event-Name") == "BACKGROUND_JOB" and e.get("Job-UUID") == job)

        meta = json.dumps({"callid": U})
        assert fs.send(f"api uuid_audio_fork {U} start {ws_sink.url} mono 8k {meta}").data == "+OK Success\n"
        fs.wait_for(lambda e: e.get("Event-Subclass") == "mod_audio_fork::connect")
        assert fs.send(f"api uuid_record {U} start {tmp_path}/call.wav").data == "+OK Success\n"

        # The robot speaks; the callee barges in 0.5 s into the prompt; the controller breaks it.
        assert fs.send(f"api uuid_broadcast {U} {audio_dir}/prompt1.wav aleg").data == "+OK Message sent\n"
        fs.wait_for(lambda e: e.get("Event-Name") == "PLAYBACK_START")
        speech = fs.wait_for(lambda e: e.get("Event-Subclass") == "simswitch::callee_speech" and e.get("Speech-Text") == "可以")
        assert speech["Speech-Barge-In"] == "true"
        assert fs.send(f"api uuid_break {U}").data == "+OK\n"
        stop = fs.wait_for(lambda e: e.get("Event-Name") == "PLAYBACK_STOP")
        assert stop["Playback-Status"] == "break"
        done = fs.wait_for(lambda e: e.get("Event-Name") == "CHANNEL_EXECUTE_COMPLETE" and e.get("Application") == "playback")
        assert done["Application-Response"] == "FILE PLAYED"
        assert int(done["variable_playback_ms"]) < 2000  # cut before its real 2 s

        # The fork server talks back.
        ws_sink.send_json(0, {"type": "transcription", "data": {"text": "可以", "is_final": True}})
        fs.wait_for(lambda e: e.get("Event-Subclass") == "mod_audio_fork::transcription")

        gevent.sleep(0.2)
        assert fs.send(f"api uuid_record {U} stop {tmp_path}/call.wav").data == "+OK Success\n"
        fs.wait_for(lambda e: e.get("Event-Name") == "RECORD_STOP")

        # Transfer to an agent: the modelled dialplan bridges user/1001.
        assert fs.send(f"api uuid_transfer {U} 1001 XML default").data == "+OK\n"
        bridge = fs.wait_for(lambda e: e.get("Event-Name") == "CHANNEL_BRIDGE")
        assert bridge["Bridge-A-Unique-ID"] == U
        assert bridge["Other-Leg-Destination-Number"] == "1001"
        b_uuid = bridge["Bridge-B-Unique-ID"]

        assert fs.send(f"api uuid_kill {U}").data == "+OK\n"
        for uuid in (U, b_uuid):
            fs.wait_for(lambda e, u=uuid: e.get("Event-Name") == "CHANNEL_DESTROY" and e.get("Unique-ID") == u)
        hc = fs.wait_for(lambda e: e.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE" and e.get("Unique-ID") == U)
        assert hc["variable_hangup_cause"] == "NORMAL_CLEARING"
        assert int(hc["variable_billsec"]) >= 1

        names = fs.names_for(U)
        order = ["CHANNEL_CREATE", "CHANNEL_PROGRESS", "CHANNEL_ANSWER", "CHANNEL_PARK", "RECORD_START", "PLAYBACK_START",
                 "PLAYBACK_STOP", "RECORD_STOP", "CHANNEL_UNPARK", "CHANNEL_BRIDGE",
                 "CHANNEL_HANGUP", "CHANNEL_UNBRIDGE", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY"]
        positions = [names.index(n) for n in order]
        assert positions == sorted(positions), names

        # CDR: the first POST fails with 500, the retry delivers both legs.
        sw.cdr.drain(timeout=10)
        assert cdr_sink.attempts >= 3
        by_uuid = {c["variables"]["uuid"]: c for c in cdr_sink.cdrs}
        assert set(by_uuid) == {U, b_uuid}
        assert by_uuid[U]["variables"]["sip_gateway_name"] == "gw1"
        assert by_uuid[U]["callflow"][0]["caller_profile"]["destination_number"] == "13800138000"
    finally:
        sw.stop()

    # Real audio reached the WebSocket server: metadata first, then L16 frames of the callee.
    conn = ws_sink.connections[0]
    assert conn["protocols"] == ["audio.drachtio.org"]
    assert conn["texts"][0] == meta
    pcm = np.frombuffer(bytes(conn["binary"]), dtype="<i2")
    assert len(conn["binary"]) % 320 == 0 and conn["frames"] > 20
    frames = pcm[: len(pcm) // 160 * 160].reshape(-1, 160)
    energy = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1))
    assert energy.max() > 5000  # the callee's 0.6-amplitude speech tones
    assert energy.min() < 100  # and silence between them (mono = callee only, no robot)

    # The recording is a real stereo WAV: callee left, robot right.
    data, rate = soundfile.read(str(tmp_path / "call.wav"), dtype="int16")
    assert rate == 8000 and data.ndim == 2 and data.shape[1] == 2
    assert _rms(data[:, 0]) > 500 and _rms(data[:, 1]) > 500
    spectrum = np.abs(np.fft.rfft(data[:, 1].astype(np.float64)))
    assert abs(np.argmax(spectrum) * rate / len(data) - 440) < 5  # the prompt's tone


def test_dropped_fork_is_not_reconnected_until_stopped_and_started(tmp_path, ws_sink, make_client):
    """As drachtio's mod_audio_fork: when the server drops the WebSocket the module fires
    ``disconnect`` and streams nothing more, but the media bug stays on the channel — a new
    ``start`` fails ("bug already attached") until ``stop`` removes it; then a fresh stream
    opens with its metadata."""
    doc = {"outcomes": {"talk": {"result": "answer", "after": 0.5}}}
    sw = start_switch(tmp_path, scenario_file(tmp_path, doc))
    try:
        fs = make_client(sw.port)
        fs.send(f"bgapi originate {{origination_uuid={U}}}sofia/gateway/gw1/13800138000 &park()")
        fs.wait_for(lambda e: e.get("Event-Name") == "CHANNEL_ANSWER" and e.get("Unique-ID") == U)
        start = f"api uuid_audio_fork {U} start {ws_sink.url} mono 8k "
        assert fs.send(start + '{"attempt":1}').data == "+OK Success\n"
        connected = fs.wait_for(lambda e: e.get("Event-Subclass") == "mod_audio_fork::connect")
        gevent.sleep(0.2)
        first = ws_sink.connections[0]
        assert first["texts"] == ['{"attempt":1}'] and first["frames"] > 0
        first["sock"].shutdown(2)  # the server side goes away
        fs.wait_for(lambda e: e.get("Event-Subclass") == "mod_audio_fork::disconnect")
        assert fs.send(start + '{"attempt":2}').data == "-ERR Operation Failed\n"
        assert len(ws_sink.connections) == 1  # no reconnect of its own
        assert fs.send(f"api uuid_audio_fork {U} stop").data == "+OK Success\n"
        fs.wait_for(lambda e: e.get("Event-Name") == "MEDIA_BUG_STOP")
        assert fs.send(start + '{"attempt":2}').data == "+OK Success\n"
        fs.wait_for(lambda e: e.get("Event-Subclass") == "mod_audio_fork::connect" and e is not connected)
        with gevent.Timeout(5):
            while len(ws_sink.connections) < 2 or not ws_sink.connections[1]["frames"]:
                gevent.sleep(0.05)
        assert ws_sink.connections[1]["texts"] == ['{"attempt":2}']
        assert fs.send(f"api uuid_kill {U}").data == "+OK\n"
    finally:
        sw.stop()
