"""OpenAI-compatible `/v1/audio/transcriptions` (whisper, SenseVoice servers, vLLM …):
utterance level — the audio is buffered and posted as one WAV when the utterance ends."""

from __future__ import annotations

import io
import json
import uuid

import numpy as np
import soundfile

from core.asr.base import AsrResult
from core.llm.http import HttpError, post

MAX_SECONDS = 60


class OpenAiCall:
    def __init__(self, owner: OpenAiTranscriber, rate: int):
        self.owner, self.rate = owner, rate
        self._chunks: list[np.ndarray] = []
        self._n = 0

    def begin(self) -> None:
        self._chunks, self._n = [], 0

    def feed(self, pcm: np.ndarray) -> None:
        if self._n < MAX_SECONDS * self.rate:
            self._chunks.append(np.asarray(pcm, dtype=np.int16))
            self._n += len(pcm)

    def partial(self) -> str:
        return ""

    def end(self, timeout: float) -> AsrResult:
        if not self._chunks:
            return AsrResult("")
        buf = io.BytesIO()
        soundfile.write(buf, np.concatenate(self._chunks), self.rate, format="WAV",
                        subtype="PCM_16")
        self._chunks = []
        return self.owner.transcribe(buf.getvalue(), timeout)

    def close(self) -> None:
        self._chunks = []


class OpenAiTranscriber:
    name = "openai"

    def __init__(self, base_url: str, model: str, api_key: str | None = None,
                 language: str = "zh"):
        base = base_url.rstrip("/")
        self.url = (base if base.endswith("/v1") else base + "/v1") + "/audio/transcriptions"
        self.model, self.api_key, self.language = model, api_key, language

    def open(self, call_id: str, sample_rate: int) -> OpenAiCall:
        return OpenAiCall(self, sample_rate)

    def transcribe(self, wav: bytes, timeout: float) -> AsrResult:
        boundary = uuid.uuid4().hex
        fields = {"model": self.model, "language": self.language, "response_format": "json"}
        body = bytearray()
        for name, value in fields.items():
            body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                     f"{value}\r\n").encode()
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                 f"filename=\"utterance.wav\"\r\nContent-Type: audio/wav\r\n\r\n").encode()
        body += wav + f"\r\n--{boundary}--\r\n".encode()
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            raw = post(self.url, bytes(body), headers, timeout)
            text = json.loads(raw).get("text", "")
        except HttpError as exc:
            return AsrResult("", ok=False, error=str(exc))
        except (ValueError, AttributeError):
            return AsrResult("", ok=False, error="the transcription answer is not JSON")
        return AsrResult(str(text).strip())
