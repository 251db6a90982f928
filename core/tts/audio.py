"""Audio file helpers: read any format libsndfile knows (WAV, FLAC, OGG, MP3, AIFF …) as mono,
resample to the call's rate with a windowed-sinc low-pass, write 16-bit PCM WAV."""

from __future__ import annotations

import os
import tempfile
from math import gcd
from pathlib import Path

import numpy as np
import soundfile

CALL_RATE = 8000


class AudioError(ValueError):
    """The file is not audio we can read."""


def read_mono(path_or_file) -> tuple[np.ndarray, int]:
    """float32 mono samples in [-1, 1] and their rate; raises AudioError."""
    try:
        data, rate = soundfile.read(path_or_file, dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError, TypeError) as exc:
        raise AudioError(f"not a readable audio file: {exc}") from None
    if not len(data):
        raise AudioError("the audio file is empty")
    return data.mean(axis=1), int(rate)


def resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Rational resampling (up, low-pass, down) good enough for telephone-band prompts."""
    if src == dst or not len(x):
        return x.astype(np.float32)
    g = gcd(src, dst)
    up, down = dst // g, src // g
    if up > 64 or down > 64:  # odd rates: linear interpolation after a low-pass
        cutoff = min(src, dst) / 2 / src
        x = _lowpass(x, cutoff)
        n = int(round(len(x) * dst / src))
        return np.interp(np.linspace(0, len(x) - 1, n), np.arange(len(x)), x).astype(np.float32)
    stuffed = np.zeros(len(x) * up, dtype=np.float32)
    stuffed[::up] = x
    y = _lowpass(stuffed, 0.5 / max(up, down)) * up
    return y[::down].astype(np.float32)


def _lowpass(x: np.ndarray, cutoff: float, taps: int = 101) -> np.ndarray:
    n = np.arange(taps) - (taps - 1) / 2
    h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.hamming(taps)
    h /= h.sum()
    return np.convolve(x, h, mode="same").astype(np.float32)


def write_wav(path: str | Path, samples: np.ndarray, rate: int = CALL_RATE) -> None:
    """Write float samples as 16-bit mono WAV atomically (readers never see half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.wav")
    os.close(fd)
    try:
        soundfile.write(tmp, np.clip(samples, -1, 1), rate, subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def convert_file(src, dest: str | Path, rate: int = CALL_RATE) -> int:
    """Convert an uploaded prompt to `rate` Hz mono 16-bit WAV at `dest`; returns its ms."""
    x, src_rate = read_mono(src)
    y = resample(x, src_rate, rate)
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    if peak > 1.0:
        y = y / peak
    write_wav(dest, y, rate)
    return int(len(y) * 1000 / rate)
