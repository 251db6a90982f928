"""Text-to-speech engines behind one interface, and the cache in front of them."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Protocol

from core.tts.audio import CALL_RATE, AudioError, read_mono, resample, write_wav


class TtsError(RuntimeError):
    """The engine is missing, failed or timed out."""


class TextToSpeech(Protocol):
    """An engine: `name` (part of the cache key) and `render(text, voice, dest, rate)`, which
    writes a `rate` Hz mono 16-bit WAV to `dest` or raises TtsError. Cloud engines implement
    the same two members."""

    name: str

    def render(self, text: str, voice: str, dest: Path, rate: int) -> None: ...


class EspeakTts:
    """espeak-ng (Debian package `espeak-ng`, installed by scripts/setup.sh)."""

    name = "espeak-ng"

    def __init__(self, binary: str = "espeak-ng", speed: int = 170, timeout: float = 15.0):
        self.binary, self.speed, self.timeout = binary, speed, timeout

    def available(self) -> bool:
        return shutil.which(self.binary) is not None

    def render(self, text: str, voice: str, dest: Path, rate: int = CALL_RATE) -> None:
        if not self.available():
            raise TtsError("espeak-ng is not installed: run scripts/setup.sh as root "
                           "(or apt-get install espeak-ng)")
        with tempfile.NamedTemporaryFile(suffix=".wav") as raw:
            try:
                subprocess.run([self.binary, "-v", voice or "cmn", "-s", str(self.speed),
                                "-w", raw.name, "--", text], check=True, timeout=self.timeout,
                               capture_output=True)
                x, src = read_mono(raw.name)
            except subprocess.TimeoutExpired:
                raise TtsError("espeak-ng timed out") from None
            except (subprocess.CalledProcessError, AudioError) as exc:
                raise TtsError(f"espeak-ng failed: {exc}") from None
        write_wav(dest, resample(x, src, rate) * 0.9, rate)


class CachedTts:
    """Generated audio cached on disk by (engine, voice, rate, text): the same text costs one
    synthesis per voice, whichever call or process asks first."""

    def __init__(self, engine: TextToSpeech, cache_dir: str | Path, voice: str = "cmn",
                 rate: int = CALL_RATE):
        self.engine, self.voice, self.rate = engine, voice, rate
        self.cache_dir = Path(cache_dir)
        self.hits = self.misses = 0

    def path_for(self, text: str, voice: str | None = None) -> Path:
        key = "\0".join((self.engine.name, voice or self.voice, str(self.rate), text))
        digest = hashlib.sha256(key.encode()).hexdigest()
        return self.cache_dir / digest[:2] / f"{digest}.wav"

    def synthesize(self, text: str, voice: str | None = None) -> Path:
        """The WAV for `text`, generated once; raises TtsError."""
        path = self.path_for(text, voice)
        if path.exists():
            self.hits += 1
            return path
        self.misses += 1
        self.engine.render(text, voice or self.voice, path, self.rate)
        return path
