"""The recogniser interface and the factory that picks an adapter from settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class AsrResult:
    text: str
    ok: bool = True
    error: str | None = None


class CallRecognizer(Protocol):
    """One utterance: begin() → feed()* → end(timeout) (never raises) → close()."""

    def begin(self) -> None: ...
    def feed(self, pcm: np.ndarray) -> None: ...
    def partial(self) -> str: ...
    def end(self, timeout: float) -> AsrResult: ...
    def close(self) -> None: ...


class Recognizer(Protocol):
    """An adapter; `open()` is called once per utterance (several may overlap in a call)."""

    name: str

    def open(self, call_id: str, sample_rate: int) -> CallRecognizer: ...


def make_recognizer(conf: dict) -> Recognizer:
    """An adapter from {"kind": scripted|funasr|openai, "url", "model", "api_key", …}."""
    kind = (conf.get("kind") or "scripted").lower()
    if kind == "scripted":
        from core.asr.scripted import ScriptedRecognizer
        return ScriptedRecognizer()
    if kind == "funasr":
        from core.asr.funasr import FunAsrRecognizer
        if not conf.get("url"):
            raise ValueError("FunASR needs a ws:// URL (FUNASR_URL or the task's ASR URL)")
        return FunAsrRecognizer(conf["url"], hotwords=conf.get("hotwords") or "")
    if kind == "openai":
        from core.asr.openai import OpenAiTranscriber
        if not conf.get("url"):
            raise ValueError("the transcription endpoint needs a URL (STT_URL)")
        return OpenAiTranscriber(conf["url"], conf.get("model") or "whisper-1",
                                 conf.get("api_key") or None, conf.get("language") or "zh")
    raise ValueError(f"unknown ASR kind {kind!r} (scripted, funasr, openai)")
