"""Audio of a call: prompts (files, tone_stream, silence_stream), callee speech, noise, and
the per-leg timeline that the audio fork and the recorder read from.

Nothing pumps frames unless someone listens: a ``MediaTimeline`` keeps the segments each
side produced with their start times, and a 20 ms frame (or a whole recording) is cut out
of it on demand.
"""

import functools
import re

import numpy as np
import soundfile

FRAME_SECONDS = 0.02
_TONE = re.compile(r"%\(([^)]*)\)")


@functools.lru_cache(maxsize=256)
def load_file(path: str, rate: int) -> np.ndarray | None:
    """A sound file as mono int16 at ``rate`` Hz, or None when it cannot be read."""
    try:
        data, src_rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (OSError, RuntimeError, soundfile.LibsndfileError):
        return None
    mono = data.mean(axis=1)
    if src_rate != rate and len(mono):
        # Linear interpolation is enough for telephone-band audio.
        n_out = int(round(len(mono) * rate / src_rate))
        mono = np.interp(np.linspace(0, len(mono) - 1, n_out), np.arange(len(mono)), mono)
    pcm = np.clip(mono * 32767.0, -32768, 32767).astype(np.int16)
    pcm.setflags(write=False)
    return pcm


def tone_stream(spec: str, rate: int) -> np.ndarray:
    """Samples of a ``tone_stream://%(on,off,f1[,f2…]);loops=N`` string (teletone subset)."""
    loops = 1
    m = re.search(r"loops=(-?\d+)", spec)
    if m:
        loops = max(1, int(m.group(1)))  # loops=-1 (forever) is cut to one pass
    chunks = []
    for group in _TONE.findall(spec):
        fields = [float(x) for x in group.split(",") if x.strip()]
        on_ms, off_ms, freqs = fields[0], fields[1], fields[2:] or [0.0]
        t = np.arange(int(rate * on_ms / 1000)) / rate
        tone = sum(np.sin(2 * np.pi * f * t) for f in freqs) / max(1, len(freqs))
        chunks.append((tone * 8000).astype(np.int16))
        chunks.append(np.zeros(int(rate * off_ms / 1000), dtype=np.int16))
    one = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    return np.tile(one, loops)


def prompt(target: str, rate: int) -> np.ndarray | None:
    """Samples for what ``playback`` would play, or None for FILE NOT FOUND."""
    if target.startswith("silence_stream://"):
        ms = target[len("silence_stream://") :].split(",")[0]
        return np.zeros(int(rate * max(0, int(ms or 0)) / 1000), dtype=np.int16)
    if target.startswith("tone_stream://"):
        return tone_stream(target, rate)
    return load_file(target, rate)


def synth_voice(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """A voiced, syllable-shaped signal (harmonics of ~140 Hz at 4 syllables/s).

    Stands in for speech when a scenario gives only the text: a VAD hears voice-like
    energy, an ASR hears nothing meaningful (the scripted recogniser uses the text).
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    f0 = 140 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = np.clip(np.sin(2 * np.pi * 2 * t), 0, None) ** 0.5
    noise = rng.normal(0, 0.02, len(t))
    return np.clip((voice * envelope * 0.3 + noise) * 32767, -32768, 32767).astype(np.int16)


def noise(seconds: float, rate: int, dbfs: float, seed: int) -> np.ndarray:
    """White background noise at ``dbfs`` RMS."""
    rms = 32767 * 10 ** (dbfs / 20)
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(0, rms, int(rate * seconds)), -32768, 32767).astype(np.int16)


class Segment:
    """Audio placed on a timeline at ``start`` (simulated seconds); ``end`` may be cut short."""

    __slots__ = ("start", "samples", "rate", "end")

    def __init__(self, start: float, samples: np.ndarray, rate: int):
        self.start = start
        self.samples = samples
        self.rate = rate
        self.end = start + len(samples) / rate

    def cut(self, at: float) -> None:
        """Stop the segment at ``at`` (uuid_break, barge-in, hang-up)."""
        self.end = max(self.start, min(self.end, at))


class MediaTimeline:
    """What each side of one leg sends: ``callee`` (read stream) and ``robot`` (write stream)."""

    def __init__(self, rate: int = 8000, noise_dbfs: float | None = None, seed: int = 0):
        self.rate = rate
        self.callee: list[Segment] = []
        self.robot: list[Segment] = []
        self.noise_dbfs = noise_dbfs
        self.seed = seed
        self._noise: np.ndarray | None = None

    def _noise_slice(self, start: float, n: int) -> np.ndarray:
        # One 10 s noise buffer per leg, read cyclically by time: cheap per 20 ms frame.
        if self._noise is None:
            self._noise = noise(10.0, self.rate, self.noise_dbfs, self.seed)
        buf = self._noise
        pos = int(round(start * self.rate)) % len(buf)
        if pos + n <= len(buf):
            return buf[pos : pos + n]
        # Past the buffer's end: wrap around, as often as needed (a whole recording is
        # rendered at once and may be longer than the buffer).
        return np.resize(np.roll(buf, -pos), n)

    def add(self, side: str, start: float, samples: np.ndarray) -> Segment:
        seg = Segment(start, samples, self.rate)
        getattr(self, side).append(seg)
        return seg

    def render(self, side: str, start: float, end: float, rate: int | None = None) -> np.ndarray:
        """int16 samples of ``side`` over [start, end), resampled to ``rate`` if given."""
        own = self.rate
        n = max(0, int(round((end - start) * own)))
        segments = [seg for seg in getattr(self, side) if seg.start < end and seg.end > start]
        with_noise = side == "callee" and self.noise_dbfs is not None and n > 0
        if not segments:
            # The common 20 ms case: silence or noise only, no mixing needed.
            pcm = self._noise_slice(start, n) if with_noise else np.zeros(n, dtype=np.int16)
            return _resample(pcm, own, rate) if rate and rate != own and n else pcm
        out = np.zeros(n, dtype=np.int32)
        for seg in segments:
            lo, hi = max(start, seg.start), min(end, seg.end)
            if hi <= lo:
                continue
            a = int(round((lo - seg.start) * own))
            o = int(round((lo - start) * own))
            length = min(int(round((hi - lo) * own)), n - o, len(seg.samples) - a)
            if length > 0:
                out[o : o + length] += seg.samples[a : a + length]
        if with_noise:
            out += self._noise_slice(start, n)
        pcm = np.clip(out, -32768, 32767).astype(np.int16)
        return _resample(pcm, own, rate) if rate and rate != own and n else pcm


def _resample(pcm: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Linear-interpolation resampling of a short int16 block (8k ↔ 16k forks)."""
    n = len(pcm)
    n_out = int(round(n * dst / src))
    return np.interp(np.linspace(0, n - 1, n_out), np.arange(n), pcm).astype(np.int16)
