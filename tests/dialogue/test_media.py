"""The audio-fork server and stream failures: binding by metadata, unknown calls, 16 kHz
forks, a stream that breaks mid-call (reconnected) or cannot come back (call ended)."""

import copy
import json

import gevent
import numpy as np
import pytest
from gevent.queue import Queue

from controller.media import turns
from controller.media.hub import MediaHub
from controller.media.pipeline import CallMedia, StreamConnected, StreamLost, Utterance
from controller.media.server import MediaServer
from controller.media.turns import SpeechStarted, TurnSettings
from core.asr import make_recognizer, scripted
from core.asr import websocket as ws
from core.dialogue import schema
from tests.dialogue import audio as A
from tests.dialogue.harness import Rig


def send_audio(conn, pcm, rate=8000):
    step = rate // 50
    for i in range(0, len(pcm) - step + 1, step):
        conn.send_binary(pcm[i:i + step].astype("<i2").tobytes())
    gevent.sleep(0.2)


def test_stream_binds_by_metadata_and_feeds_the_pipeline():
    A.require_espeak()
    hub = MediaHub(vad=A.energy_vad())
    server = MediaServer(hub, port=0).start()
    try:
        rec = make_recognizer({"kind": "scripted"})
        media = hub.register("call-1", TurnSettings(), rec, Queue())
        conn = ws.connect(server.url("127.0.0.1"), "audio.drachtio.org")
        conn.send_text(json.dumps({"callid": "call-1"}))
        media.hint("不需要")
        send_audio(conn, np.concatenate([A.silence(0.5), A.speech("不需要"), A.silence(1.2)]))
        events = [media.inbox.get(timeout=2) for _ in range(3)]
        assert isinstance(events[0], StreamConnected)
        assert isinstance(events[1], SpeechStarted)
        assert isinstance(events[2], Utterance) and events[2].text == "不需要"
        assert events[2].end_ms > events[2].start_ms >= 400
        conn.close()
        assert isinstance(media.inbox.get(timeout=2), StreamLost)
        # a stream for a call nobody registered is closed at once
        stray = ws.connect(server.url("127.0.0.1"), "audio.drachtio.org")
        stray.send_text(json.dumps({"callid": "nobody"}))
        assert stray.recv() is None
    finally:
        server.stop()


def test_16k_fork_is_brought_to_8k():
    A.require_espeak()
    hub = MediaHub(vad=A.energy_vad())
    server = MediaServer(hub, port=0).start()
    try:
        media = hub.register("c16", TurnSettings(), None, Queue())
        conn = ws.connect(server.url("127.0.0.1") + "?rate=16000", "audio.drachtio.org")
        conn.send_text(json.dumps({"callid": "c16"}))
        pcm8 = np.concatenate([A.silence(0.5), A.speech("可以"), A.silence(1.0)])
        pcm16 = np.repeat(pcm8, 2)
        send_audio(conn, pcm16, 16000)
        assert media.rate == 16000 and media.t_ms == len(pcm8) // 160 * 20
        kinds = [type(media.inbox.get(timeout=2)).__name__ for _ in range(3)]
        assert kinds == ["StreamConnected", "SpeechStarted", "Utterance"]
        conn.close()
    finally:
        server.stop()


def two_turns(voice_file):
    return {"numbers": {"13800000001": "c"}, "outcomes": {"c": {
        "result": "answer", "after": 0.5, "hangup_after": 60, "callee": [
            {"say": {"file": voice_file("是的"), "text": "是的"}, "after_prompt": 1,
             "delay": 0.3},
            {"say": {"file": voice_file("可以"), "text": "可以"}, "after_prompt": 2,
             "delay": 0.3}]}}}


def make_voice(tmp_path):
    def voice(text):
        name = f"v{abs(hash(text))}.wav"
        A.write(tmp_path / name, A.speech(text))
        return name
    return voice


def test_broken_stream_is_reconnected(tmp_path):
    A.require_espeak()
    with Rig(tmp_path, two_turns(make_voice(tmp_path))) as rig:
        def breaker():
            while not rig.hub.calls:
                gevent.sleep(0.05)
            media = next(iter(rig.hub.calls.values()))
            media.connected.wait(5)
            # Break while the opening prompt plays: the callee speaks only after it, so the
            # reconnect must be done in time and no words are lost (breaking at a fixed
            # time could cut the callee's answer on a slow machine).
            while not any(h.get("Event-Name") == "PLAYBACK_START" for h in rig.events_seen):
                gevent.sleep(0.01)
            media.conn.close()  # the WebSocket drops mid-call
        g = gevent.spawn(breaker)
        result = rig.call(copy.deepcopy(schema.EXAMPLE))
        g.join(1)
    starts = [c for c in rig.control.sent if c.startswith("uuid_audio_fork") and " start " in c]
    assert len(starts) == 2
    # Both answers heard (a short 是的 used to be dropped as noise at some frame phases: see
    # test_a_short_answer_is_heard_wherever_the_frames_fall).
    assert [t.text for t in result.turns if t.speaker == "callee"] == ["是的", "可以"], \
        result.turns
    assert (result.end_reason, result.grade) == ("script", "A"), result.turns


def test_stream_that_cannot_come_back_ends_the_call(tmp_path):
    A.require_espeak()
    with Rig(tmp_path, two_turns(make_voice(tmp_path))) as rig:
        def breaker():
            while not rig.hub.calls:
                gevent.sleep(0.05)
            media = next(iter(rig.hub.calls.values()))
            media.connected.wait(5)
            gevent.sleep(0.5)
            rig.server.stop()  # the media server is gone: reconnects fail
            if media.conn is not None:
                media.conn.close()
        g = gevent.spawn(breaker)
        result = rig.call(copy.deepcopy(schema.EXAMPLE))
        g.join(1)
    assert result.end_reason == "media unavailable"
    assert result.hangup_side == "robot"
    assert any(c.startswith("uuid_kill") for c in rig.control.sent)


def test_early_media_hook_hands_the_audio_to_a_classifier():
    class Classifier:
        def classify(self, pcm, rate):
            self.seen = (len(pcm), rate)
            return "powered_off"

    hub = MediaHub(vad=A.energy_vad())
    server = MediaServer(hub, port=0).start()
    try:
        clf = Classifier()
        tap = hub.register_early("ringing-1", clf)
        conn = ws.connect(server.url("127.0.0.1"), "audio.drachtio.org")
        conn.send_text(json.dumps({"callid": "ringing-1"}))
        send_audio(conn, A.tones(1.0, "ringback"))
        assert tap.classify() == "powered_off" and clf.seen == (8000, 8000)
        conn.close()
        hub.release("ringing-1")
    finally:
        server.stop()


def short_answer_at(phase: int, vad, hint: str | None, listen_ms: int | None = None):
    """"是的" fed to a call's pipeline `phase` samples after a 20 ms frame boundary; the
    events it put on the inbox."""
    media = CallMedia("c", vad, TurnSettings(), make_recognizer({"kind": "scripted"}), Queue())
    if listen_ms is not None:
        media.listen(listen_ms)
    if hint:
        media.hint(hint)
    pcm = np.concatenate([A.silence(0.5 + phase / 8000), A.speech("是的"),
                          A.silence(1.0 + (listen_ms or 0) / 1000)])
    for i in range(0, len(pcm) - 159, 160):
        media.on_audio(pcm[i:i + 160].astype("<i2").tobytes())
        gevent.sleep(0)  # one frame per turn, as the fork server reads them
    media.group.join(timeout=2)
    events = []
    while not media.inbox.empty():
        events.append(media.inbox.get())
    return events


def test_a_short_answer_is_heard_wherever_the_frames_fall():
    """The flaky reconnect test's real cause: espeak's 是的 has few strongly periodic frames,
    and whether it passed the voice guard depended only on the frame phase (about 1 phase in
    9 lost it: the callee's answer was dropped as noise and the call ended in no-input)."""
    A.require_espeak()
    from vad_model import load_vad
    vad = load_vad()
    lost = [phase for phase in range(0, 160, 4)
            if not [e for e in short_answer_at(phase, vad, "是的")
                    if isinstance(e, Utterance) and e.text == "是的"]]
    assert lost == []


@pytest.mark.parametrize("verdict, hint, heard", [
    (turns.DOUBTFUL, "是的", True),  # the guard was unsure; the recogniser heard words
    (turns.DOUBTFUL, None, False),  # unsure and no words: noise, the no-input timer runs on
    (turns.NOISE, "是的", False),  # a tone is never a turn, whatever the recogniser says
    (turns.TALKED_OVER, "是的", False),
])
def test_the_recogniser_decides_what_the_guard_doubts(monkeypatch, verdict, hint, heard):
    A.require_espeak()
    monkeypatch.setattr(turns.TurnDetector, "verdict", lambda self, ended: verdict)
    # The audio goes in faster than real time here: no waiting for text that never comes.
    monkeypatch.setattr(scripted, "TEXT_WAIT_S", 0.0)
    events = short_answer_at(0, A.energy_vad(), hint, listen_ms=1000)
    kinds = [type(e).__name__ for e in events]
    if heard:
        assert kinds == ["SpeechStarted", "Utterance"] and events[1].text == "是的"
    else:
        assert kinds == ["SpeechStarted", "NoInput"]  # dropped, then the listen resumed


def test_a_new_stream_starts_on_a_frame_boundary():
    """mod_audio_fork sends what its buffer holds, not whole frames: half a frame left by a
    stream that broke must not shift every frame of the one that replaces it."""
    class Conn:
        def close(self):
            pass

    class Recorder:
        def __init__(self):
            self.frames = []

        def stream(self):
            return self

        def push(self, frame):
            self.frames.append(frame.copy())
            return 0.0

    vad = Recorder()
    media = CallMedia("c", vad, TurnSettings(guard=False))
    old, new = Conn(), Conn()
    media.attach(old, {"callid": "c"})
    media.on_audio(np.full(50, 7, "<i2").tobytes())  # 100 bytes: the stream breaks mid-frame
    media.detach(old, "closed")
    media.attach(new, {"callid": "c"})
    frame = np.arange(160, dtype="<i2")
    media.on_audio(frame.tobytes())
    assert len(vad.frames) == 1 and np.array_equal(vad.frames[0], frame)
