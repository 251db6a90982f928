"""ASR adapters against local servers speaking their protocols."""

import gevent
import pytest

from core.asr import make_recognizer
from tests.dialogue.fakes import FakeFunAsr, FakeOpenAi, tone


def feed(call, seconds):
    pcm = tone(seconds)
    for i in range(0, len(pcm), 160):
        call.feed(pcm[i:i + 160])


def test_funasr_two_pass_protocol():
    with FakeFunAsr(["可以的，我有兴趣", "不需要"]) as srv:
        call = make_recognizer({"kind": "funasr", "url": srv.url}).open("c1", 8000)
        call.begin()
        feed(call, 1.3)
        gevent.sleep(0.05)
        assert call.partial()  # 2pass-online partial arrived while audio flowed
        assert call.end(timeout=2).text == "可以的，我有兴趣"
        call.begin()
        feed(call, 0.5)
        assert call.end(timeout=2).text == "不需要"
        start = srv.starts[0]
        assert start["mode"] == "2pass" and start["audio_fs"] == 8000
        assert start["is_speaking"] is True and start["wav_format"] == "pcm"
        assert srv.audio_bytes[0] == int(1.3 * 8000) * 2  # every sample arrived
        call.close()


def test_funasr_timeout_and_refused_degrade_to_no_text():
    with FakeFunAsr(["x"], silent=True) as srv:
        call = make_recognizer({"kind": "funasr", "url": srv.url}).open("c1", 8000)
        call.begin()
        feed(call, 0.2)
        res = call.end(timeout=0.3)
        assert not res.ok and res.text == "" and "no final" in res.error
    call = make_recognizer({"kind": "funasr", "url": "ws://127.0.0.1:9"}).open("c", 8000)
    call.begin()
    feed(call, 0.1)
    res = call.end(timeout=0.5)
    assert not res.ok and "connect" in res.error


def test_openai_transcription_posts_the_utterance_as_wav():
    with FakeOpenAi(transcript="我在开会") as srv:
        call = make_recognizer({"kind": "openai", "url": srv.url, "model": "whisper-1"}).open(
            "c", 8000)
        call.begin()
        feed(call, 0.8)
        assert call.end(timeout=3).text == "我在开会"
        assert abs(srv.requests[0]["wav"] - 0.8) < 0.01


def test_openai_transcription_timeout():
    with FakeOpenAi(transcript="late", delay=1.0) as srv:
        call = make_recognizer({"kind": "openai", "url": srv.url}).open("c", 8000)
        call.begin()
        feed(call, 0.2)
        t = gevent.get_hub().loop.now()
        res = call.end(timeout=0.3)
        assert not res.ok and res.text == ""
        assert gevent.get_hub().loop.now() - t < 1.0


def test_scripted_returns_hints_once():
    rec = make_recognizer({"kind": "scripted"})
    rec.hint("c", "喂，")
    rec.hint("c", "你好")
    rec.hint("other", "不")
    call = rec.open("c", 8000)
    call.begin()
    assert call.end(1).text == "喂，你好"
    assert rec.open("c", 8000).end(1).text == ""


def test_scripted_waits_a_moment_for_text_that_trails_the_audio(caplog):
    caplog.set_level("INFO", logger="core.asr.scripted")
    rec = make_recognizer({"kind": "scripted"})
    call = rec.open("c", 8000)
    call.begin()
    gevent.spawn_later(0.2, rec.hint, "c", "这个多少钱")  # the event came after the audio
    t = gevent.get_hub().loop.now()
    assert call.end(4).text == "这个多少钱"
    assert gevent.get_hub().loop.now() - t < 0.5  # as soon as it came
    t = gevent.get_hub().loop.now()
    assert rec.open("c", 8000).end(4).text == ""  # nothing came: given up after a second
    assert 0.9 < gevent.get_hub().loop.now() - t < 2.0
    assert [r.getMessage() for r in caplog.records] == [
        "c: no callee_speech text within 1.0 s of the utterance's end"]  # said once, the miss


def test_unknown_kind():
    with pytest.raises(ValueError):
        make_recognizer({"kind": "nope"})
