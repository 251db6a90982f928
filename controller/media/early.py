"""Early-media hook: the audio a failing call plays before its final answer (carrier
announcements 关机 / 空号 / 停机 …) can be classified into a call status.

The controller may start the fork during early media (`uuid_audio_fork` works once the
channel has media) with the hub's `register_early(uuid, classifier)`; when the call fails it
asks `tap.classify()` for an announcement class to feed its status mapping. The classifier
itself is a later issue: `NoClassifier` answers None (no opinion).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from gevent.event import Event

MAX_SECONDS = 12.0


class AnnouncementClassifier(Protocol):
    def classify(self, pcm: np.ndarray, sample_rate: int) -> str | None:
        """A `core.enums.CallStatus` value (powered_off, vacant, suspended …) or None."""


class NoClassifier:
    def classify(self, pcm: np.ndarray, sample_rate: int) -> str | None:
        return None


class EarlyMediaTap:
    """Collects up to MAX_SECONDS of a call's early media; same fork-side methods as
    `CallMedia` so the media server binds it the same way."""

    def __init__(self, uuid: str, classifier: AnnouncementClassifier | None = None,
                 max_seconds: float = MAX_SECONDS):
        self.uuid = uuid
        self.classifier = classifier or NoClassifier()
        self.max_seconds = max_seconds
        self.rate = 8000
        self.conn = None
        self.connected = Event()
        self._chunks: list[bytes] = []
        self._bytes = 0

    def attach(self, conn, metadata: dict, rate: int = 8000) -> None:
        self.conn, self.rate = conn, rate
        self.connected.set()

    def detach(self, conn, reason: str) -> None:
        if conn is self.conn:
            self.conn = None

    def on_audio(self, payload: bytes) -> None:
        if self._bytes < self.max_seconds * self.rate * 2:
            self._chunks.append(payload)
            self._bytes += len(payload)

    def audio(self) -> np.ndarray:
        return np.frombuffer(b"".join(self._chunks), dtype="<i2")

    def classify(self) -> str | None:
        return self.classifier.classify(self.audio(), self.rate)

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()
