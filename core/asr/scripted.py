"""The scripted recogniser (rehearsal and tests): simswitch says what its callee says in a
`CUSTOM simswitch::callee_speech` event; the dialogue passes that text in with
`hint(call_id, text)`, and the next utterance of that call that ends returns it. The audio
itself is only listened to by the VAD."""

from __future__ import annotations

from collections import deque

import numpy as np

from core.asr.base import AsrResult


class ScriptedCall:
    def __init__(self, pending: deque):
        self._pending = pending

    def begin(self) -> None:
        pass

    def feed(self, pcm: np.ndarray) -> None:
        pass

    def partial(self) -> str:
        return "".join(self._pending)

    def end(self, timeout: float) -> AsrResult:
        text = "".join(self._pending)
        self._pending.clear()
        return AsrResult(text)

    def close(self) -> None:
        pass


class ScriptedRecognizer:
    name = "scripted"

    def __init__(self):
        self._pending: dict[str, deque] = {}

    def hint(self, call_id: str, text: str) -> None:
        if text:
            self._pending.setdefault(call_id, deque()).append(text)

    def discard(self, call_id: str) -> None:
        """Forget what was said (speech the robot talked over) or the whole call."""
        self._pending.pop(call_id, None)

    def open(self, call_id: str, sample_rate: int) -> ScriptedCall:
        return ScriptedCall(self._pending.setdefault(call_id, deque()))
