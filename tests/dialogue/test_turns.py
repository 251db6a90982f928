"""Turn-taking state machine: probabilities (and frames) in, typed events out, in order."""

import numpy as np
import pytest

from controller.media import turns
from controller.media.turns import (
    BargeIn,
    NoInput,
    SpeechStarted,
    TurnDetector,
    TurnSettings,
    UtteranceEnded,
)
from tests.dialogue import audio as A


def run(det, probs, frames=None, t0=0):
    out = []
    for i, p in enumerate(probs):
        frame = frames[i] if frames is not None else None
        out += [(t0 + i * 20, e) for e in det.step(p, frame, t0 + i * 20)]
    return out


def test_utterance_end_after_max_pause():
    det = TurnDetector(TurnSettings(max_pause_ms=400, min_speech_ms=100, guard=False))
    probs = [0.0] * 5 + [0.9] * 30 + [0.1] * 30
    events = [e for _, e in run(det, probs)]
    assert events == [SpeechStarted(100, False), UtteranceEnded(100, 700, False)]


def test_short_pauses_do_not_split_an_utterance():
    det = TurnDetector(TurnSettings(max_pause_ms=400, min_speech_ms=100, guard=False))
    probs = [0.9] * 20 + [0.0] * 15 + [0.9] * 20 + [0.0] * 25
    ends = [e for _, e in run(det, probs) if isinstance(e, UtteranceEnded)]
    assert ends == [UtteranceEnded(0, 1100, False)]


def test_blips_shorter_than_min_speech_are_ignored():
    det = TurnDetector(TurnSettings(min_speech_ms=160, guard=False))
    assert run(det, [0.9] * 7 + [0.0] * 10 + [0.9] * 3 + [0.0] * 10) == []


def test_a_speech_start_bridges_a_two_frame_dip():
    """A VAD wavering for 40 ms inside a short syllable does not restart the start count;
    a longer gap does (two blips are not one word)."""
    det = TurnDetector(TurnSettings(min_speech_ms=160, guard=False))
    starts = [e for _, e in run(det, [0.9] * 5 + [0.3] * 2 + [0.9] * 3 + [0.0] * 20)
              if isinstance(e, SpeechStarted)]
    assert len(starts) == 1
    det = TurnDetector(TurnSettings(min_speech_ms=160, guard=False))
    assert not [e for _, e in run(det, [0.9] * 5 + [0.3] * 3 + [0.9] * 3 + [0.0] * 20)
                if isinstance(e, SpeechStarted)]


def test_barge_in_only_during_an_interruptible_prompt():
    s = TurnSettings(barge_in_ms=400, min_speech_ms=100, guard=False)
    det = TurnDetector(s)
    det.prompt_started(interruptible=True)
    events = run(det, [0.9] * 30)
    barge = [(t, e) for t, e in events if isinstance(e, BargeIn)]
    assert barge and barge[0][1].at_ms - barge[0][1].start_ms == 400
    det = TurnDetector(s)
    det.prompt_started(interruptible=False)
    assert not [e for _, e in run(det, [0.9] * 30) if isinstance(e, BargeIn)]


def test_no_input_in_audio_time_and_not_while_playing():
    det = TurnDetector(TurnSettings(no_input_ms=1000, guard=False))
    det.prompt_started(True)
    assert run(det, [0.0] * 100) == []  # a prompt is playing: no timer
    det.prompt_stopped()
    det.listen()
    events = run(det, [0.0] * 60, t0=2000)
    assert [e for _, e in events] == [NoInput(2980)]  # armed at the last frame seen


def test_max_utterance_forces_an_end():
    det = TurnDetector(TurnSettings(max_utterance_ms=1000, min_speech_ms=100, guard=False))
    ends = [e for _, e in run(det, [0.9] * 80) if isinstance(e, UtteranceEnded)]
    assert ends[0].forced and ends[0].end_ms - ends[0].start_ms <= 1020


def test_speech_over_a_prompt_without_barge_in_is_dropped():
    det = TurnDetector(TurnSettings(barge_in_ms=2000, min_speech_ms=100, max_pause_ms=200,
                                    guard=False))
    det.prompt_started(True)
    ended = [e for _, e in run(det, [0.9] * 20 + [0.0] * 20) if isinstance(e, UtteranceEnded)]
    assert not det.utterance_counts(ended[0])


def frames_of(pcm):
    pcm = np.concatenate([A.silence(1.0), pcm, A.silence(1.5)])
    return [pcm[i * 160:(i + 1) * 160] for i in range(len(pcm) // 160)]


@pytest.mark.parametrize("kind", ["busy", "ringback", "us_busy", "us_ringback", "dtmf", "music",
                                  "babble", "babble3"])
def test_voice_guard_refuses_noise_that_an_energy_vad_calls_speech(kind):
    A.require_espeak()
    pcm = {"ringback": lambda: A.tones(6, "ringback"), "us_ringback": lambda: A.tones(6, kind),
           "music": lambda: A.music(3), "babble": lambda: A.babble(3),
           "babble3": lambda: A.babble(3, talkers=3)}.get(kind, lambda: A.tones(3, kind))()
    frames = frames_of(pcm)
    stream = A.energy_vad().stream()
    probs = [stream.push(f) for f in frames]
    assert sum(p >= 0.5 for p in probs) > 10 or kind == "music"  # energy alone says speech
    det = TurnDetector(TurnSettings(barge_in_ms=500))
    det.prompt_started(True)
    assert not [e for _, e in run(det, probs, frames) if isinstance(e, BargeIn)]


@pytest.mark.parametrize("text", ["不需要，谢谢", "可以，我有兴趣", "你是机器人吗", "我在开会"])
def test_voice_guard_lets_speech_barge_in(text):
    A.require_espeak()
    frames = frames_of(A.speech(text))
    stream = A.energy_vad().stream()
    probs = [stream.push(f) for f in frames]
    det = TurnDetector(TurnSettings(barge_in_ms=500))
    det.prompt_started(True)
    assert [e for _, e in run(det, probs, frames) if isinstance(e, BargeIn)]


def test_task_settings_parse():
    s = TurnSettings.from_task({"barge_in_ms": 800, "max_pause_ms": 500, "bogus": 1,
                                "no_input_ms": "x", "vad_threshold": 0.6, "background_db": 0})
    assert (s.barge_in_ms, s.max_pause_ms, s.no_input_ms, s.threshold) == (800, 500, 6000, 0.6)
    assert (s.background_db, TurnSettings.from_task({}).background_db) == (0, 15)


@pytest.mark.parametrize("kind", ["busy", "ringback", "us_busy", "dtmf"])
def test_a_tone_after_a_prompt_is_noise_not_left_to_the_recogniser(kind):
    frames = frames_of(A.tones(3, kind))
    stream = A.energy_vad().stream()
    probs = [stream.push(f) for f in frames]
    det = TurnDetector(TurnSettings())
    verdicts = []  # judged as the pipeline does: when the utterance ends
    for i, (p, f) in enumerate(zip(probs, frames, strict=True)):
        verdicts += [det.verdict(e) for e in det.step(p, f, i * 20)
                     if isinstance(e, UtteranceEnded)]
    assert verdicts and set(verdicts) == {turns.NOISE}


@pytest.mark.parametrize("text", ["嗯", "好", "对", "喂", "是的"])
def test_short_answers_are_heard_at_every_frame_alignment(text):
    """The shipped VAD and the turn detector together: a one-syllable answer after a prompt is
    never lost, wherever the 20 ms frame boundaries fall in it (in a call they fall anywhere).
    A lost 嗯 leaves the robot waiting for no-input; a doubtful one still reaches the
    recogniser, so it is heard too."""
    from vad_model import load_vad

    A.require_espeak()
    vad, speech = load_vad(), A.speech(text)
    rng = np.random.default_rng(len(text))
    missed = []
    for offset in range(0, 160, 10):
        line = A.silence(1.0 + offset / 8000)
        pcm = np.concatenate([line, speech, A.silence(1.5)])
        pcm = np.clip(pcm + rng.normal(0, 30, len(pcm)), -32768, 32767).astype(np.int16)
        frames = [pcm[i * 160:(i + 1) * 160] for i in range(len(pcm) // 160)]
        stream, det = vad.stream(), TurnDetector(TurnSettings())
        det.listen()
        verdicts = [det.verdict(e) for i, f in enumerate(frames)
                    for e in det.step(stream.push(f), f, i * 20) if isinstance(e, UtteranceEnded)]
        if verdicts not in ([turns.TURN], [turns.DOUBTFUL]):
            missed.append((offset, verdicts))
    assert not missed, missed


def quieter(pcm, db):
    return (pcm.astype(np.float64) * 10 ** (-db / 20)).astype(np.int16)


class Call:
    """One call's audio through the shipped VAD and a detector, judged as the pipeline does:
    a verdict per ended utterance, and `callee_spoke` for each turn (the scripted recogniser
    always has words)."""

    def __init__(self, settings):
        from vad_model import load_vad
        vad = load_vad()
        self.vad, self.det, self.t = vad.stream(), TurnDetector.for_vad(vad, settings), 0
        self.rng = np.random.default_rng(5)

    def hear(self, pcm, prompt=False):
        """`pcm` between 0.5 s and 1.5 s of line noise; during an interruptible prompt when
        `prompt`."""
        if prompt:
            self.det.prompt_started(True)
        else:
            self.det.listen()
        pcm = np.concatenate([A.silence(0.5), pcm, A.silence(1.5)])
        pcm = np.clip(pcm + self.rng.normal(0, 30, len(pcm)), -32768, 32767).astype(np.int16)
        verdicts, barged = [], False
        for i in range(len(pcm) // 160):
            frame = pcm[i * 160:(i + 1) * 160]
            for e in self.det.step(self.vad.push(frame), frame, self.t):
                barged |= isinstance(e, BargeIn)
                if isinstance(e, UtteranceEnded):
                    verdicts.append(self.det.verdict(e))
                    if verdicts[-1] == turns.TURN:
                        self.det.callee_spoke(e)
            self.t += 20
        self.det.prompt_stopped()
        return verdicts, barged


def test_a_voice_far_under_the_callee_neither_barges_in_nor_takes_a_turn():
    """Someone talking near the callee, 20 dB under them: once the callee has been heard, that
    voice cuts no prompt and is no answer; the callee 6 dB quieter than before still is. With
    the gate off (`background_db` 0) the same voice barges in and is taken as the callee."""
    A.require_espeak()
    callee = A.speech("是我，你说吧")
    nearby = quieter(A.speech("你把那个文件发给我看一下", speed=150, pitch=30), 20)
    answer = quieter(A.speech("可以，我有兴趣"), 6)
    call = Call(TurnSettings(barge_in_ms=500))
    assert call.hear(callee) == ([turns.TURN], False)
    assert call.hear(nearby, prompt=True) == ([turns.TALKED_OVER], False)
    assert call.hear(nearby) == ([turns.BACKGROUND], False)
    assert call.hear(answer) == ([turns.TURN], False)
    off = Call(TurnSettings(barge_in_ms=500, background_db=0))
    assert off.hear(callee) == ([turns.TURN], False)
    assert off.hear(nearby, prompt=True) == ([turns.TURN], True)
    assert off.hear(nearby) == ([turns.TURN], False)


def test_quiet_voices_then_no_input_forget_the_callee_level():
    """A callee who moves to speakerphone sounds like someone behind them: after one no-input
    their old level no longer holds, and the quiet voice is taken as an answer."""
    A.require_espeak()
    call = Call(TurnSettings(no_input_ms=1000))
    call.hear(A.speech("是我，你说吧"))
    far = quieter(A.speech("不需要，谢谢"), 20)
    assert call.det.callee_db is not None
    assert call.hear(far) == ([turns.BACKGROUND], False)
    call.det.resume_listen()  # as the pipeline does after a voice that is not a turn
    assert [e for e in call.det.step(0.0, A.silence(0.02), call.t + 1000)
            if isinstance(e, NoInput)]
    assert call.det.callee_db is None
    assert call.hear(far) == ([turns.TURN], False)


def test_frames_the_vad_is_sure_of_need_no_periodic_frame_near():
    """A detector that needs a strongly periodic frame near its voiced ones takes no turn from
    aperiodic audio, however high the VAD's probability; with `sure_prob` the frames at or over
    it count as voice anyway, and those under it still need one."""
    rng = np.random.default_rng(3)
    pcm = np.concatenate([A.silence(0.5), rng.normal(0, 3000, 160 * 40), A.silence(1.5)])
    frames = [pcm[i * 160:(i + 1) * 160].astype(np.int16) for i in range(len(pcm) // 160)]

    def verdicts(det, p):
        det.listen()
        probs = [p if 25 <= i < 65 else 0.01 for i in range(len(frames))]
        return [det.verdict(e) for i, f in enumerate(frames)
                for e in det.step(probs[i], f, i * 20) if isinstance(e, UtteranceEnded)]

    assert verdicts(TurnDetector(TurnSettings()), 0.99) == []
    assert verdicts(TurnDetector(TurnSettings(), sure_prob=turns.SURE_PROB), 0.99) == [turns.DOUBTFUL]
    assert verdicts(TurnDetector(TurnSettings(), sure_prob=turns.SURE_PROB), 0.9) == []


@pytest.mark.parametrize("text", ["对", "好的", "是的"])
def test_a_deep_voice_the_trained_vad_is_sure_of_is_heard(text):
    """espeak-ng at its lowest pitch speaks under the guard's 80 Hz floor, where few frames are
    strongly periodic at a voice pitch; frames the trained VAD is sure of (`SURE_PROB`) count as
    voice anyway, so the answer is heard."""
    from vad_model import load_vad

    A.require_espeak()
    vad = load_vad()
    pcm = np.concatenate([A.silence(0.5), A.speech(text, pitch=0), A.silence(1.5)])
    frames = [pcm[i * 160:(i + 1) * 160] for i in range(len(pcm) // 160)]

    def verdicts(det):
        stream = vad.stream()
        det.listen()
        return [det.verdict(e) for i, f in enumerate(frames)
                for e in det.step(stream.push(f), f, i * 20) if isinstance(e, UtteranceEnded)]

    assert verdicts(TurnDetector.for_vad(vad, TurnSettings())) in ([turns.TURN], [turns.DOUBTFUL])
    assert TurnDetector.for_vad(vad, TurnSettings()).sure_prob == turns.SURE_PROB
    assert TurnDetector.for_vad(A.energy_vad(), TurnSettings()).sure_prob is None
