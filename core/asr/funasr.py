"""FunASR runtime WebSocket client, 2-pass mode (runtime/docs/websocket_protocol.md).

Per utterance: connect, send the JSON start message (`mode: 2pass`, `audio_fs`, `chunk_size`,
`is_speaking: true`), binary PCM chunks, then `{"is_speaking": false}`. The server answers
`2pass-online` partials while audio flows and `2pass-offline` corrected text per segment; the
utterance's text is the offline segments joined (the online text if none came).
"""

from __future__ import annotations

import json
import logging

import gevent
import numpy as np
from gevent.event import Event

from core.asr import websocket as ws
from core.asr.base import AsrResult

log = logging.getLogger(__name__)
CHUNK_MS = 60  # what chunk_size [5,10,5] / chunk_interval 10 sends
SETTLE_S = 0.3  # after the end flag, how long to wait for more offline segments


class FunAsrCall:
    def __init__(self, url: str, call_id: str, rate: int, hotwords: str):
        self.url, self.call_id, self.rate, self.hotwords = url, call_id, rate, hotwords
        self._conn: ws.Connection | None = None
        self._online: list[str] = []
        self._offline: list[str] = []
        self._final = Event()
        self._got_offline = Event()
        self._reader = None
        self._buf = bytearray()
        self._error: str | None = None
        self._n = 0

    def begin(self) -> None:
        self._reset()
        self._n += 1
        try:
            self._conn = ws.connect(self.url, timeout=2.0)
            self._conn.send_text(json.dumps({
                "mode": "2pass", "wav_name": f"{self.call_id}-{self._n}", "wav_format": "pcm",
                "audio_fs": self.rate, "is_speaking": True, "chunk_size": [5, 10, 5],
                "chunk_interval": 10, "itn": True, "hotwords": self.hotwords}))
        except OSError as exc:
            self._error = f"FunASR connect failed: {exc}"
            self._conn = None
            return
        self._reader = gevent.spawn(self._read, self._conn, self._online, self._offline,
                                    self._final, self._got_offline)

    def _reset(self) -> None:
        self.close()
        self._online, self._offline, self._buf = [], [], bytearray()
        self._final, self._got_offline = Event(), Event()
        self._error = None

    @staticmethod
    def _read(conn: ws.Connection, online: list, offline: list, final: Event,
              got_offline: Event) -> None:
        # Bound to one utterance's lists and events: a late reader never touches the next.
        while True:
            msg = conn.recv()
            if msg is None:
                final.set()
                return
            opcode, payload = msg
            if opcode != ws.OP_TEXT:
                continue
            try:
                data = json.loads(payload)
            except ValueError:
                continue
            mode, text = str(data.get("mode", "")), data.get("text") or ""
            if mode.endswith("online"):
                online.append(text)
            else:  # 2pass-offline or offline
                offline.append(text)
                got_offline.set()
            if data.get("is_final") and not mode.endswith("online"):
                final.set()

    def feed(self, pcm: np.ndarray) -> None:
        if self._conn is None:
            return
        self._buf += pcm.astype("<i2").tobytes()
        chunk = self.rate * 2 * CHUNK_MS // 1000
        try:
            while len(self._buf) >= chunk:
                self._conn.send_binary(bytes(self._buf[:chunk]))
                del self._buf[:chunk]
        except OSError as exc:
            self._error = f"FunASR send failed: {exc}"
            self._conn = None

    def partial(self) -> str:
        return "".join(self._offline) + "".join(self._online[-1:]) if self._online else \
            "".join(self._offline)

    def end(self, timeout: float) -> AsrResult:
        conn = self._conn
        if conn is None:
            return AsrResult("", ok=False, error=self._error or "FunASR not connected")
        try:
            if self._buf:
                conn.send_binary(bytes(self._buf))
                self._buf.clear()
            conn.send_text(json.dumps({"is_speaking": False}))
        except OSError as exc:
            return AsrResult("", ok=False, error=f"FunASR send failed: {exc}")
        with gevent.Timeout(timeout, False):
            # Either a final flag, or the offline text followed by a quiet moment.
            while not self._final.is_set():
                if self._got_offline.wait(0.05):
                    self._got_offline.clear()
                    if not self._final.wait(SETTLE_S) and not self._got_offline.is_set():
                        break
        text = "".join(self._offline) or "".join(self._online)
        done = self._final.is_set() or bool(self._offline)
        self.close()
        if not done:
            return AsrResult(text, ok=False, error=f"FunASR gave no final text in {timeout:g} s")
        return AsrResult(text)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        if self._reader is not None:
            self._reader.kill(block=False)
            self._reader = None


class FunAsrRecognizer:
    name = "funasr"

    def __init__(self, url: str, hotwords: str = ""):
        self.url, self.hotwords = url, hotwords

    def open(self, call_id: str, sample_rate: int) -> FunAsrCall:
        return FunAsrCall(self.url, call_id, sample_rate, self.hotwords)
