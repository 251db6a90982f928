"""Turn-taking: a pure state machine over one call's VAD probabilities.

`TurnDetector.step(prob, frame, t_ms)` → list of typed events (`SpeechStarted`, `BargeIn`,
`UtteranceEnded`, `NoInput`). Time is audio time (20 ms per frame), so a fast simulated
clock and a real one behave the same. No I/O.

Noise must not cut prompts: a barge-in needs `barge_in_ms` of speech (most frames voiced)
during an interruptible prompt and must pass the `VoiceGuard` — steady tones (ring-back,
busy, SIT) and audio without a talker's syllable rhythm (music, babble) are refused. With the
trained TDNN+LSTM VAD the guard is a second opinion; with the energy fallback it is what
keeps tones and music out.

An ended utterance gets a verdict (`TurnDetector.verdict`): a turn, speech the robot talked
over, noise (a steady tone), or doubtful — voiced, but with too few strongly periodic frames
to be sure. A short 是的 can be doubtful or not depending only on where the 20 ms frame
boundaries fall, so a doubtful utterance is not thrown away here: the pipeline lets the
recogniser decide (words → a turn; nothing → noise).

People talking near the callee are not the callee, and to a VAD a nearby voice is a voice. What
tells them apart in a call is the callee's own level: a phone held to the mouth hears its
talker far louder than anyone across the room. Once the recogniser has heard words from the
callee (`callee_spoke`), a voice `background_db` or more under their level neither barges in
nor counts as a turn (`BACKGROUND`). If such voices were all the robot heard before a no-input,
they may have been the callee, gone to speakerphone or away from the phone: their level is
forgotten, so the gate costs at most one re-prompt.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

VOICE_HOLD_MS = 400  # how long after a periodic frame other voiced frames still count
START_GAP_MS = 40  # unvoiced frames a speech start may bridge (the labels bridge < 100 ms)
SURE_PROB = 0.95  # the trained VAD this sure is heard without a periodic frame near
TONE_FFT = 1024  # a 20 ms frame zero-padded: peaks placed to a few Hz
TONE_LINE_HZ = 75  # a steady tone's energy in 20 ms lies within this of its peak

# Verdicts on an ended utterance (`TurnDetector.verdict`).
TURN = "turn"
TALKED_OVER = "talked over"  # began during a prompt that still plays and never barged in
NOISE = "noise"  # a steady tone, or nothing the guard could judge as voiced
DOUBTFUL = "doubtful"  # voiced, not a tone, but too little periodicity to be sure
BACKGROUND = "background"  # a voice well under the callee's own level: someone near them
CALLEE_TURNS = 5  # the callee's level is the median of their latest recognised turns


@dataclass(frozen=True)
class TurnSettings:
    """Per task (呼叫设置-其他); milliseconds."""

    barge_in_ms: int = 600  # 打断时间: speech this long interrupts an interruptible prompt
    max_pause_ms: int = 700  # 最大停顿时间: silence this long ends an utterance
    no_input_ms: int = 6000  # nothing said this long after a prompt → no-input
    max_utterance_ms: int = 15000
    min_speech_ms: int = 160  # voiced this long before a speech start counts
    threshold: float = 0.5
    guard: bool = True
    background_db: int = 15  # 背景人声: a voice this far under the callee's level (0: off)

    @classmethod
    def from_task(cls, settings: dict | None) -> TurnSettings:
        s = settings or {}
        kw = {}
        for name in ("barge_in_ms", "max_pause_ms", "no_input_ms", "max_utterance_ms",
                     "min_speech_ms", "background_db"):
            if isinstance(s.get(name), int | float) and s[name] >= 0:
                kw[name] = int(s[name])
        if isinstance(s.get("vad_threshold"), int | float) and 0 < s["vad_threshold"] < 1:
            kw["threshold"] = float(s["vad_threshold"])
        return cls(**kw)


@dataclass(frozen=True)
class SpeechStarted:
    start_ms: int
    during_prompt: bool


@dataclass(frozen=True)
class BargeIn:
    start_ms: int
    at_ms: int


@dataclass(frozen=True)
class UtteranceEnded:
    start_ms: int
    end_ms: int
    barged_in: bool
    forced: bool = False  # cut at max_utterance_ms
    level_db: float | None = None  # loudness (see `TurnDetector.loudness`); None without guard


@dataclass(frozen=True)
class NoInput:
    at_ms: int


class VoiceGuard:
    """Cheap checks that a voiced stretch is one talker, not a tone, music or a crowd.

    Per voiced frame: whether one spectral peak, or two that are not harmonics of one pitch,
    hold most of the energy (a steady tone: China's 450 Hz, or the dual tones of other plans
    and DTMF) and whether the frame is strongly periodic at a voice pitch (normalised
    autocorrelation > 0.8 at a lag of 2.5–12.5 ms). A single talker's voiced frames are often
    strongly periodic; overlapping voices (babble) and chords rarely are. Over the stretch: the
    spread of frame levels (syllables rise and fall; a crowd or a held chord much less).
    """

    def __init__(self, max_tonal: float = 0.5, min_periodic: float = 0.2,
                 min_spread_db: float = 8.0):
        self.max_tonal = max_tonal
        self.min_periodic, self.min_spread_db = min_periodic, min_spread_db
        self.periodic_r, self.tonal_r = 0.8, 0.97
        # rows: the 160 samples that start 20..100 samples before the current frame
        self._lag_index = np.arange(60, 141)[:, None] + np.arange(160)[None, :]
        self._prev = np.zeros(160, dtype=np.float32)
        self._hann = np.hanning(160).astype(np.float32)
        self._hz = np.fft.rfftfreq(TONE_FFT, 1 / 8000)

    def frame_features(self, frame: np.ndarray, voiced: bool = True):
        """(level dB, tonal?, periodic?) of one 20 ms int16 frame (None, None when the frame
        is not voiced or too quiet to judge), from its normalised autocorrelation at lags
        of 2.5–12.5 ms against the previous frame: a talker's voiced frame correlates
        strongly (> 0.8), and so does a steady tone, which `_tonal` then tells apart."""
        x = frame.astype(np.float32)
        prev, self._prev = self._prev, x
        energy = float(np.dot(x, x)) / max(1, len(x))
        level = 10 * np.log10(energy + 1.0)
        if not voiced or len(x) != 160 or energy < 1e4:
            return level, None, None
        buf = np.concatenate([prev, x])
        dots = buf[self._lag_index] @ x
        sq = np.cumsum(buf * buf)
        energies = sq[219:300] - sq[59:140]
        r = float((dots / np.sqrt(energies * float(np.dot(x, x)) + 1e-9)).max())
        periodic = r > self.periodic_r
        return level, periodic and self._tonal(x, r), periodic

    def _tonal(self, x: np.ndarray, r: float) -> bool:
        """Whether one spectral line (when the frame correlates almost perfectly, as a single
        steady tone does: r > `tonal_r`), or two, hold > 85 % of the frame's energy, the two
        not harmonics of one voice pitch (a voice with its energy in two lines has them at
        2f and 3f, say; a dual tone has 480 and 620 Hz, or DTMF's 697 and 1336 Hz)."""
        spec = np.abs(np.fft.rfft(x * self._hann, TONE_FFT)) ** 2
        total = float(spec.sum()) + 1e-9
        peaks, rest = [], spec.copy()
        for _ in range(2):
            k = int(np.argmax(rest))
            if 0 < k < len(rest) - 1:  # the peak's frequency between bins (parabola)
                a, b, c = np.log(spec[k - 1:k + 2] + 1e-9)
                k_hz = self._hz[k] + (a - c) / (2 * (a - 2 * b + c) - 1e-12) * self._hz[1]
            else:
                k_hz = self._hz[k]
            near = np.abs(self._hz - self._hz[k]) <= TONE_LINE_HZ
            peaks.append((k_hz, float(rest[near].sum())))
            rest[near] = 0
        if peaks[0][1] > 0.85 * total:
            return r > self.tonal_r
        (f1, e1), (f2, e2) = sorted(peaks)
        if e1 + e2 <= 0.85 * total or f1 < 60:
            return False
        for n in range(1, 5):  # f1 the n-th harmonic of a pitch; is f2 one of it too?
            f0 = f1 / n
            if f0 >= 60 and abs(f2 - round(f2 / f0) * f0) < 0.025 * f2:
                return False
        return True

    def is_tone(self, tonal: list) -> bool:
        """No voiced frame to judge, or mostly one steady spectral line (ring-back, busy,
        SIT): certainly not a talker, whatever a recogniser would make of it."""
        judged = [t for t in tonal if t is not None]
        return not judged or sum(judged) > self.max_tonal * len(judged)

    def is_voice(self, levels: list[float], tonal: list, periodic: list,
                 spread: bool = True) -> bool:
        """`tonal` / `periodic` per frame: True/False for voiced frames, None for others."""
        judged = [(t, p) for t, p in zip(tonal, periodic, strict=True) if t is not None]
        if not judged:
            return False
        n = len(judged)
        if sum(t for t, _ in judged) > self.max_tonal * n:
            return False
        # Accepting a finished utterance is lenient (losing a short 是的 costs more than an
        # unrecognised turn); cutting a prompt is strict.
        if sum(p for _, p in judged) < (self.min_periodic if spread else 0.1) * n:
            return False
        if not spread:
            return True
        lv = np.asarray(levels)
        return float(np.percentile(lv, 95) - np.percentile(lv, 10)) >= self.min_spread_db


class TurnDetector:
    """One call's turn-taking state."""

    def __init__(self, settings: TurnSettings, guard: VoiceGuard | None = None,
                 sure_prob: float | None = None):
        self.s = settings
        self.guard = (guard or VoiceGuard()) if settings.guard else None
        self.sure_prob = sure_prob  # None: every voiced frame needs a periodic one near it
        self.playing = False
        self.interruptible = False
        self._in_speech = False
        self._run = 0  # ms voiced before a start, bridged dips included
        self._gap = 0  # unvoiced ms of the dip the run is bridging now
        self._start = 0
        self._last_voice = 0
        self._voiced = 0
        self._frames = 0
        self._barged = False
        self._started_in_prompt = False
        self._no_input_at: int | None = None
        self._listen_ms: int | None = None  # the armed no-input span, kept across noise
        self._judge = True
        self._last_periodic = -10**9
        self._levels: deque = deque(maxlen=150)
        self._tonal: deque = deque(maxlen=150)
        self._periodic: deque = deque(maxlen=150)
        self._callee_db: deque = deque(maxlen=CALLEE_TURNS)
        self._background_heard = False  # since the robot last listened
        self.t_ms = 0

    @classmethod
    def for_vad(cls, vad, settings: TurnSettings) -> TurnDetector:
        """The detector for this VAD. The trained one's sure frames (`SURE_PROB`) are voice
        even with no strongly periodic frame near: voices pitched under the guard's 80 Hz,
        breathy ones, speech deep in noise. The energy VAD's probability is loudness, so its
        frames always need the guard's periodicity."""
        trained = getattr(vad, "kind", None) == "tdnn_lstm"
        return cls(settings, sure_prob=SURE_PROB if trained else None)

    # --- the dialogue tells us what the robot is doing -------------------------------------
    def prompt_started(self, interruptible: bool) -> None:
        self.playing, self.interruptible = True, interruptible
        self._no_input_at = self._listen_ms = None

    def prompt_stopped(self) -> None:
        self.playing = False

    def listen(self, no_input_ms: int | None = None) -> None:
        """Arm the no-input timer from now (audio time)."""
        self._listen_ms = self.s.no_input_ms if no_input_ms is None else no_input_ms
        self._no_input_at = self.t_ms + self._listen_ms
        self._background_heard = False

    def cancel_listen(self) -> None:
        self._no_input_at = self._listen_ms = None

    def resume_listen(self) -> None:
        """Noise that was not a turn ended: the no-input timer runs again from now."""
        if self._listen_ms is not None and not self._in_speech:
            self._no_input_at = self.t_ms + self._listen_ms

    def callee_spoke(self, ended: UtteranceEnded) -> None:
        """The recogniser heard words in this utterance: its loudness is the callee's own."""
        if ended.level_db is not None:
            self._callee_db.append(ended.level_db)

    @property
    def callee_db(self) -> float | None:
        """The callee's level: the median of their latest recognised turns (None before)."""
        return float(np.median(self._callee_db)) if self._callee_db else None

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    # --- one 20 ms frame ---------------------------------------------------------------------
    def step(self, prob: float, frame: np.ndarray | None, t_ms: int, frame_ms: int = 20):
        self.t_ms = t_ms
        events = []
        voiced = prob >= self.s.threshold
        if self.guard is not None and frame is not None:
            # Tone and periodicity are shares: every other voiced frame is enough for them.
            self._judge = not self._judge if voiced else True
            level, tonal, periodic = self.guard.frame_features(frame, voiced and self._judge)
            self._levels.append(level)
            self._tonal.append(tonal)
            self._periodic.append(periodic)
            if periodic:
                self._last_periodic = t_ms
            # Energy alone is fooled by noise: a frame counts as voice only near a voiced
            # (periodic) one, so noise neither starts nor prolongs an utterance, unless the
            # trained VAD is sure of it.
            sure = self.sure_prob is not None and prob >= self.sure_prob
            voiced = voiced and (sure or t_ms - self._last_periodic <= VOICE_HOLD_MS)
        if not self._in_speech:
            if voiced:
                self._run, self._gap = self._run + self._gap + frame_ms, 0  # the gap joins the run
            elif self._run and self._gap + frame_ms <= START_GAP_MS:
                # A frame or two under the threshold inside a syllable is the VAD wavering,
                # not a pause: a short 嗯 must not lose its count to it.
                self._gap += frame_ms
            else:
                self._run, self._gap = 0, 0
            if self._run >= self.s.min_speech_ms:
                self._in_speech = True
                self._start = t_ms + frame_ms - self._run
                self._last_voice = t_ms + frame_ms
                self._voiced = self._frames = self._run // frame_ms
                self._barged = False
                self._started_in_prompt = self.playing
                self._no_input_at = None
                events.append(SpeechStarted(self._start, self.playing))
            elif self._no_input_at is not None and not self.playing and t_ms >= self._no_input_at:
                self._no_input_at = None
                if self._background_heard:
                    self._callee_db.clear()
                events.append(NoInput(t_ms))
            return events
        self._frames += 1
        if voiced:
            self._voiced += 1
            self._last_voice = t_ms + frame_ms
        now = t_ms + frame_ms
        if (voiced and self.playing and self.interruptible and not self._barged
                and now - self._start >= self.s.barge_in_ms
                and self._voiced >= 0.6 * self._frames and self._is_voice()
                and not self._is_background(self.loudness(self._start, now))):
            self._barged = True
            events.append(BargeIn(self._start, now))
        if now - self._last_voice >= self.s.max_pause_ms:
            events.append(self._end(forced=False))
        elif now - self._start >= self.s.max_utterance_ms:
            events.append(self._end(forced=True))
        return events

    def _is_voice(self) -> bool:
        # The latest second of this stretch: a long noise that ends in silence must not
        # look like syllables because of its own ending.
        return self._span_is_voice(max(self._start, self._last_voice - 1000), self._last_voice)

    def _span(self, start_ms: int, end_ms: int) -> tuple[list, list, list]:
        """The guard's (levels, tonal, periodic) for the frames in [start_ms, end_ms]."""
        # The newest level is the frame at t_ms; frame x sits (t_ms - x) / 20 places back.
        last = len(self._levels) - 1
        lo = max(0, last - (self.t_ms - start_ms) // 20)
        hi = max(lo + 1, last - (self.t_ms - end_ms) // 20 + 1)
        return (list(self._levels)[lo:hi], list(self._tonal)[lo:hi],
                list(self._periodic)[lo:hi])

    def loudness(self, start_ms: int, end_ms: int) -> float | None:
        """A stretch's loudness in dB: the 90th percentile of its frame levels, near its
        syllables' peaks whatever its pauses (None without the guard's levels)."""
        levels = self._span(start_ms, end_ms)[0] if self.guard is not None else []
        return float(np.percentile(levels, 90)) if levels else None

    def _is_background(self, level_db: float | None) -> bool:
        ref = self.callee_db
        return (self.s.background_db > 0 and ref is not None and level_db is not None
                and level_db <= ref - self.s.background_db)

    def _span_is_voice(self, start_ms: int, end_ms: int, spread: bool = True) -> bool:
        if self.guard is None:
            return True
        levels, tonal, periodic = self._span(start_ms, end_ms)
        return self.guard.is_voice(levels, tonal, periodic, spread)

    def _end(self, forced: bool) -> UtteranceEnded:
        self._in_speech = False
        self._run = 0
        level = self.loudness(self._start, self._last_voice)
        if not self._barged and self._is_background(level):
            self._background_heard = True
        return UtteranceEnded(self._start, self._last_voice, self._barged, forced, level)

    def verdict(self, ended: UtteranceEnded) -> str:
        """What an ended utterance is: `TALKED_OVER` when it began during a prompt that still
        plays and never barged in (the robot talked over it); `BACKGROUND` when it is
        `background_db` under the callee's level; `TURN` when it barged in or passes the
        guard; `NOISE` when it is a steady tone; else `DOUBTFUL`. Accepting a
        finished utterance is lenient (losing a short 是的 costs more than an unrecognised
        turn): a short 嗯 has little level spread, so periodicity and no tone are enough, and
        a doubtful one is left to the recogniser."""
        if self.playing and not ended.barged_in:
            return TALKED_OVER
        if not ended.barged_in and self._is_background(ended.level_db):
            return BACKGROUND
        if ended.barged_in or self._span_is_voice(ended.start_ms, ended.end_ms, False):
            return TURN
        if self.guard.is_tone(self._span(ended.start_ms, ended.end_ms)[1]):
            return NOISE
        return DOUBTFUL

    def utterance_counts(self, ended: UtteranceEnded) -> bool:
        """Whether an ended utterance is a turn on the guard's word alone (see `verdict`)."""
        return self.verdict(ended) == TURN
