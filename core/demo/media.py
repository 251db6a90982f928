"""The demo's audio, made at set-up with espeak-ng (Debian package espeak-ng): the callees'
words, the carrier's announcements, the agent's greeting, background voices under a noisy
callee, and the robot's recorded prompts. Every file is 8 kHz mono 16-bit WAV, named by a
hash of what it says and how, so that a second set-up reuses it; one phrase is made once
however many numbers say it. About forty short files: a few seconds on two cores.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.tts.audio import CALL_RATE, read_mono, resample, write_wav

BABBLE_LINES = ("今天的天气非常好我们一起去公园散步吧", "请问这个东西多少钱可以便宜一点吗",
                "明天上午九点开会记得带上材料", "这家饭店的菜味道还不错下次再来")


class DemoAudioError(RuntimeError):
    """espeak-ng is missing or failed; the message says what to install."""


@dataclass(frozen=True)
class Phrase:
    """One file to make: `text` in `voice`; `english` is said after it (carriers' bilingual
    announcements); `noisy` mixes background voices under it."""

    text: str
    voice: str
    english: str = ""
    noisy: bool = False
    speed: int = 175

    @property
    def file_name(self) -> str:
        key = "\0".join((self.text, self.voice, self.english, str(self.noisy), str(self.speed)))
        return hashlib.sha1(key.encode()).hexdigest()[:16] + ".wav"


def require_espeak() -> None:
    if shutil.which("espeak-ng") is None:
        raise DemoAudioError("espeak-ng is not installed: run scripts/setup.sh as root "
                             "(or apt-get install espeak-ng)")


def _espeak(text: str, voice: str, speed: int, pitch: int = 50) -> np.ndarray:
    with tempfile.NamedTemporaryFile(suffix=".wav") as raw:
        try:
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch),
                            "-w", raw.name, "--", text], check=True, capture_output=True,
                           timeout=30)
        except (OSError, subprocess.SubprocessError) as exc:
            raise DemoAudioError(f"espeak-ng failed on {text!r}: {exc}") from None
        x, rate = read_mono(raw.name)
    return _trim(resample(x, rate, CALL_RATE))


def _trim(x: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    """Without espeak's leading and trailing silence (a callee's utterance ends when the
    words do), keeping 60 ms either side."""
    loud = np.flatnonzero(np.abs(x) > threshold)
    if not len(loud):
        return x
    pad = int(0.06 * CALL_RATE)
    return x[max(0, loud[0] - pad):loud[-1] + pad]


def _level(x: np.ndarray, dbfs: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(x ** 2))) + 1e-12
    return x / rms * 10 ** (dbfs / 20)


def _babble(n: int) -> np.ndarray:
    """Several talkers at once, far away: a street or an office behind the callee."""
    out = np.zeros(n)
    for k, line in enumerate(BABBLE_LINES):
        voice = _espeak(line, ("cmn+m1", "cmn+f2", "cmn+m3", "cmn+f4")[k], 150 + 20 * k,
                        30 + 10 * k)
        voice = np.tile(voice, n // max(1, len(voice)) + 2)
        start = (k * 3217) % max(1, len(voice) - n)
        out += voice[start:start + n]
    return _level(out, -32.0)


def render(phrase: Phrase) -> np.ndarray:
    """The samples of one phrase (float, peak about -6 dBFS)."""
    x = _espeak(phrase.text, phrase.voice, phrase.speed)
    x = x / (np.abs(x).max() + 1e-9) * 0.5
    if phrase.english:
        gap = np.zeros(int(0.4 * CALL_RATE))
        en = _espeak(phrase.english, "en+f2", 165)
        x = np.concatenate([x, gap, en / (np.abs(en).max() + 1e-9) * 0.5])
    if phrase.noisy:
        x = x + _babble(len(x))
    return np.clip(x, -1.0, 1.0)


def prompt(text: str, voice: str, speed: int = 200) -> np.ndarray:
    """A robot line as if recorded: the TTS voice, trimmed, peak about -2 dBFS."""
    x = _espeak(text, voice, speed)
    return x / (np.abs(x).max() + 1e-9) * 0.8


def write(path: Path, samples: np.ndarray) -> Path:
    write_wav(path, samples, CALL_RATE)
    return path


def make_all(phrases: Iterable[Phrase], directory: Path) -> dict[Phrase, Path]:
    """Write every phrase missing from `directory` (in parallel: espeak-ng is a process
    each); returns phrase → path."""
    require_espeak()
    directory.mkdir(parents=True, exist_ok=True)
    wanted = {p: directory / p.file_name for p in dict.fromkeys(phrases)}
    missing = [p for p, path in wanted.items() if not path.is_file()]

    def make(p: Phrase) -> None:
        write_wav(wanted[p], render(p), CALL_RATE)

    if missing:
        with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
            list(pool.map(make, missing))
    return wanted
