"""The scripted recogniser (rehearsal and tests): simswitch says what its callee says in a
`CUSTOM simswitch::callee_speech` event; the dialogue passes that text in with
`hint(call_id, text)`, and the next utterance of that call that ends returns it. The audio
itself is only listened to by the VAD."""

from __future__ import annotations

import logging
from collections import deque

import numpy as np
from gevent.event import Event

from core.asr.base import AsrResult

# simswitch says the text when the callee starts speaking, so it is normally there long
# before the utterance ends; on a loaded machine the event can trail the audio, and the
# turn would be taken for silence. Like a real recogniser's final, it is waited for.
TEXT_WAIT_S = 1.0
log = logging.getLogger(__name__)


class ScriptedCall:
    def __init__(self, call_id: str, pending: deque, arrived: Event):
        self._call_id = call_id
        self._pending = pending
        self._arrived = arrived

    def begin(self) -> None:
        pass

    def feed(self, pcm: np.ndarray) -> None:
        pass

    def partial(self) -> str:
        return "".join(self._pending)

    def end(self, timeout: float) -> AsrResult:
        if not self._pending and TEXT_WAIT_S > 0:
            self._arrived.clear()
            if not self._arrived.wait(min(timeout, TEXT_WAIT_S)):
                # Noise, or simswitch's text trailing its audio by more than the wait: a
                # test that then misses a turn says which in its captured log.
                log.info("%s: no callee_speech text within %.1f s of the utterance's end",
                         self._call_id, TEXT_WAIT_S)
        text = "".join(self._pending)
        self._pending.clear()
        return AsrResult(text)

    def close(self) -> None:
        pass


class ScriptedRecognizer:
    name = "scripted"

    def __init__(self):
        self._pending: dict[str, deque] = {}
        self._arrived: dict[str, Event] = {}

    def hint(self, call_id: str, text: str) -> None:
        if text:
            self._pending.setdefault(call_id, deque()).append(text)
            self._arrived.setdefault(call_id, Event()).set()

    def discard(self, call_id: str) -> None:
        """Forget what was said (speech the robot talked over) or the whole call."""
        self._pending.pop(call_id, None)
        self._arrived.pop(call_id, None)

    def open(self, call_id: str, sample_rate: int) -> ScriptedCall:
        return ScriptedCall(call_id, self._pending.setdefault(call_id, deque()),
                            self._arrived.setdefault(call_id, Event()))
