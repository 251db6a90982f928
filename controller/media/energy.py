"""A minimal energy VAD with vad_model's interface, used only when `vad_model` cannot be
imported (the package ships its own, better fallback: `load_vad(kind="energy")`)."""

from __future__ import annotations

import numpy as np


class _Stream:
    def __init__(self, margin_db: float):
        self.floor = 30.0
        self.margin_db = margin_db
        self.last = 0.0

    def push(self, frame) -> float:
        x = np.asarray(frame, dtype=np.float32)
        if not len(x):
            return self.last
        db = 10 * np.log10(float(np.dot(x, x)) / len(x) + 1.0)
        self.floor = min(db, self.floor + 0.05) if db > self.floor else db
        self.last = float(1 / (1 + np.exp(-(db - self.floor - self.margin_db) / 2)))
        return self.last


class EnergyVad:
    sample_rate = 8000
    frame_ms = 20
    kind = "energy-min"

    def __init__(self, margin_db: float = 9.0):
        self.margin_db = margin_db

    def stream(self) -> _Stream:
        return _Stream(self.margin_db)

    def speech_probs(self, pcm: np.ndarray) -> np.ndarray:
        s = self.stream()
        n = len(pcm) // 160
        return np.array([s.push(pcm[i * 160:(i + 1) * 160]) for i in range(n)], np.float32)
