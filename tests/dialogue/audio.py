"""Real test audio: espeak-ng speech (Mandarin) and numpy-synthesised noise — babble, music,
tones — at 8 kHz int16, written with soundfile when a file is needed."""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

from core.tts.audio import read_mono, resample

RATE = 8000


def require_espeak() -> None:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: run scripts/test (its set-up installs the "
                    "Debian package espeak-ng)")


@functools.lru_cache(maxsize=64)
def speech(text: str, voice: str = "cmn", speed: int = 170, pitch: int = 50) -> np.ndarray:
    """espeak-ng speaking `text`, 8 kHz int16 (peak about -6 dBFS)."""
    require_espeak()
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w",
                        f.name, "--", text], check=True, capture_output=True, timeout=20)
        x, rate = read_mono(f.name)
    y = resample(x, rate, RATE)
    y = y / (np.abs(y).max() + 1e-9) * 0.5
    return (y * 32767).astype(np.int16)


def babble(seconds: float, talkers: int = 6, dbfs: float = -24.0, seed: int = 1) -> np.ndarray:
    """Several talkers at once (background voices): the seed counts this as noise."""
    rng = np.random.default_rng(seed)
    lines = ["今天的天气非常好我们一起去公园散步吧", "请问这个东西多少钱可以便宜一点吗",
             "明天上午九点开会记得带上材料", "我刚才在地铁上遇到一个老同学",
             "这家饭店的菜味道还不错下次再来", "你把那个文件发给我看一下",
             "周末要不要一起去看电影", "孩子的作业还没有写完呢"]
    n = int(seconds * RATE)
    out = np.zeros(n, dtype=np.float64)
    for k in range(talkers):
        voice = speech(lines[k % len(lines)], speed=150 + 15 * k, pitch=30 + 8 * k)
        voice = np.tile(voice, n // len(voice) + 2)
        off = int(rng.integers(0, len(voice) - n))
        out += voice[off:off + n].astype(np.float64)
    return _level(out, dbfs)


def music(seconds: float, dbfs: float = -20.0) -> np.ndarray:
    """Chords with harmonics, a note change every half second, and a soft attack."""
    t = np.arange(int(seconds * RATE)) / RATE
    chords = [(261.6, 329.6, 392.0), (220.0, 261.6, 329.6), (174.6, 220.0, 261.6),
              (196.0, 246.9, 293.7)]
    out = np.zeros_like(t)
    for i in range(int(np.ceil(seconds * 2))):
        seg = (t >= i * 0.5) & (t < (i + 1) * 0.5)
        tt = t[seg] - i * 0.5
        env = np.minimum(1, tt / 0.03) * np.exp(-tt * 0.8)
        for f in chords[i % len(chords)]:
            for h in range(1, 5):
                out[seg] += env * np.sin(2 * np.pi * f * h * tt) / h
    return _level(out, dbfs)


TONES = {  # (frequencies Hz, on s, off s)
    "busy": ((450,), 0.35, 0.35),  # China
    "ringback": ((450,), 1.0, 4.0),  # China
    "us_busy": ((480, 620), 0.5, 0.5),
    "us_ringback": ((440, 480), 2.0, 4.0),
    "dtmf": ((697, 1336), 0.5, 0.3),  # the key 2, held down again and again
}


def tones(seconds: float, kind: str = "busy", dbfs: float = -16.0) -> np.ndarray:
    """Call-progress tones: China's 450 Hz busy 350/350 ms and ring-back 1 s / 4 s, the dual
    tones of the North American plan, DTMF."""
    t = np.arange(int(seconds * RATE)) / RATE
    freqs, on, off = TONES[kind]
    wave = sum(np.sin(2 * np.pi * f * t) for f in freqs)
    return _level(wave * ((t % (on + off)) < on), dbfs, ref=wave)


def silence(seconds: float, dbfs: float | None = -60.0, seed: int = 3) -> np.ndarray:
    n = int(seconds * RATE)
    if dbfs is None:
        return np.zeros(n, dtype=np.int16)
    rng = np.random.default_rng(seed)
    return _level(rng.normal(0, 1, n), dbfs)


def _level(x: np.ndarray, dbfs: float, ref: np.ndarray | None = None) -> np.ndarray:
    rms = np.sqrt(np.mean((ref if ref is not None else x) ** 2)) + 1e-12
    y = x / rms * 32767 * 10 ** (dbfs / 20)
    return np.clip(y, -32768, 32767).astype(np.int16)


def write(path: Path, pcm: np.ndarray) -> Path:
    soundfile.write(path, pcm, RATE, subtype="PCM_16")
    return path


def energy_vad():
    """vad_model's energy VAD (the fallback every deployment has)."""
    from vad_model import load_vad
    return load_vad(kind="energy")
