"""One call's audio path: fork frames → VAD stream → turn detector → ASR → typed events.

`CallMedia.on_audio()` runs on the fork connection's reader greenlet, frame by frame, and
never blocks: ASR results are awaited on greenlets of the call's own group. Events go to
`inbox` (the dialogue's queue); a barge-in also calls `on_barge_in` at once, skipping the
queue, so the prompt is cut without waiting for the dialogue greenlet.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from dataclasses import dataclass

import gevent
import numpy as np
from gevent.event import Event
from gevent.pool import Group
from gevent.queue import Queue

from controller.media.turns import (
    DOUBTFUL,
    TURN,
    BargeIn,
    NoInput,
    SpeechStarted,
    TurnDetector,
    TurnSettings,
    UtteranceEnded,
)

log = logging.getLogger(__name__)
FRAME_MS = 20
PRE_ROLL_MS = 300  # audio kept before a speech start is declared, so ASR hears the onset
ASR_TIMEOUT_S = 4.0


@dataclass(frozen=True)
class StreamConnected:
    metadata: dict


@dataclass(frozen=True)
class StreamLost:
    reason: str


@dataclass(frozen=True)
class Utterance:
    """A finished callee turn with its text (empty when ASR heard nothing or failed)."""

    text: str
    start_ms: int
    end_ms: int
    barged_in: bool
    asr_ok: bool
    asr_error: str | None
    vad_end_at: float  # monotonic time the VAD decided the utterance was over
    asr_seconds: float  # time spent waiting for the recogniser (external)


class CallMedia:
    """Audio state of one call, created by the hub for the dialogue and the fork server."""

    def __init__(self, uuid: str, vad, turn_settings: TurnSettings | None = None,
                 recognizer=None, inbox: Queue | None = None,
                 asr_timeout: float = ASR_TIMEOUT_S):
        self.uuid = uuid
        self.vad = vad
        self.vad_stream = vad.stream()
        self.turns = TurnDetector.for_vad(vad, turn_settings or TurnSettings())
        self.recognizer = recognizer
        self.asr_timeout = asr_timeout
        self.inbox: Queue = inbox if inbox is not None else Queue()
        self.group = Group()
        self.connected = Event()
        self.lost = Event()
        self.conn = None
        self.metadata: dict = {}
        self.rate = 8000
        self.t_ms = 0  # audio time: 20 ms per frame received
        self.frames = 0
        self.cpu_seconds = 0.0
        self.on_barge_in = None  # callable(BargeIn), set by the dialogue
        self._pre_roll: deque = deque(maxlen=PRE_ROLL_MS // FRAME_MS)
        self._asr = None
        self._pending = bytearray()

    # --- fork side (server greenlet) -----------------------------------------------------
    def attach(self, conn, metadata: dict, rate: int = 8000) -> None:
        if self.conn is not None and self.conn is not conn:
            self.conn.close()
        self.conn, self.metadata, self.rate = conn, metadata, rate
        # A new stream starts on a frame boundary: bytes of a frame the old one left half
        # sent would shift every frame of this one (mod_audio_fork sends whatever its buffer
        # holds, not whole 20 ms frames).
        self._pending.clear()
        self.lost.clear()
        self.connected.set()
        log.debug("%s: stream attached at %d ms (%d Hz)", self.uuid, self.t_ms, rate)
        self.inbox.put(StreamConnected(metadata))

    def detach(self, conn, reason: str) -> None:
        if conn is not self.conn:
            return  # an older stream that a reconnect replaced
        self.conn = None
        self.connected.clear()
        self.lost.set()
        self.inbox.put(StreamLost(reason))

    def on_audio(self, payload: bytes) -> None:
        """Binary L16 little-endian frames from mod_audio_fork (any multiple of 2 bytes)."""
        started = time.process_time()
        step = self.rate * 2 * FRAME_MS // 1000
        if not self._pending and len(payload) == step:  # the usual case: one 20 ms frame
            self._frame(self._as_8k(np.frombuffer(payload, dtype="<i2")))
        else:
            self._pending += payload
            while len(self._pending) >= step:
                frame = np.frombuffer(bytes(self._pending[:step]), dtype="<i2")
                del self._pending[:step]
                self._frame(self._as_8k(frame))
        self.cpu_seconds += time.process_time() - started

    def _as_8k(self, frame: np.ndarray) -> np.ndarray:
        if self.rate == 8000:
            return frame
        # 16k forks: the VAD runs at 8 kHz (pairs averaged: a crude but adequate low-pass)
        return frame.reshape(-1, self.rate // 8000).mean(axis=1).astype(np.int16)

    def _frame(self, frame: np.ndarray) -> None:
        prob = self.vad_stream.push(frame)
        events = self.turns.step(prob, frame, self.t_ms)
        self.t_ms += FRAME_MS
        self.frames += 1
        if self._asr is not None:
            self._asr.feed(frame)
        else:
            self._pre_roll.append(frame)
        for event in events:
            self._on_turn_event(event)

    def _on_turn_event(self, event) -> None:
        log.debug("%s: %s", self.uuid, event)
        if isinstance(event, SpeechStarted):
            self._open_asr()
            self.inbox.put(event)
        elif isinstance(event, BargeIn):
            if self.on_barge_in is not None:
                self.on_barge_in(event)  # skips the queue: cut the prompt now
            self.inbox.put(event)
        elif isinstance(event, UtteranceEnded):
            asr, self._asr = self._asr, None
            verdict = self.turns.verdict(event)
            if verdict == TURN:
                self.group.spawn(self._finish, asr, event, time.monotonic())
            elif verdict == DOUBTFUL and asr is not None:
                # Voiced, but the guard cannot tell a short answer from noise: words decide.
                log.debug("%s: doubtful, the recogniser decides: %s", self.uuid, event)
                self.group.spawn(self._finish, asr, event, time.monotonic(), True)
            else:
                log.debug("%s: not a turn (%s): %s", self.uuid, verdict, event)
                if asr is not None:
                    self.group.spawn(self._drop, asr)
                self.turns.resume_listen()
        elif isinstance(event, NoInput):
            self.inbox.put(event)

    def _open_asr(self) -> None:
        if self.recognizer is None:
            return
        asr = self.recognizer.open(self.uuid, 8000)
        asr.begin()
        for frame in self._pre_roll:
            asr.feed(frame)
        self._pre_roll.clear()
        self._asr = asr

    def _drop(self, asr) -> None:
        # Speech the robot talked over: the recogniser's text for it is thrown away.
        asr.end(0.5)
        asr.close()

    def _finish(self, asr, ended: UtteranceEnded, vad_end_at: float,
                doubtful: bool = False) -> None:
        t0 = time.monotonic()
        if asr is None:
            text, ok, err = "", True, None
        else:
            res = asr.end(self.asr_timeout)
            asr.close()
            text, ok, err = res.text, res.ok, res.error
            if doubtful and not (ok and text.strip()):
                # No words in what the guard doubted: noise after all, as if never heard.
                log.debug("%s: not a turn (no words): %s", self.uuid, ended)
                self.turns.resume_listen()
                return
            if not ok:
                log.info("%s: ASR failed (%s); the turn counts as unrecognised", self.uuid, err)
            elif text.strip():
                self.turns.callee_spoke(ended)  # words: this is the callee's own level
        self.inbox.put(Utterance(text, ended.start_ms, ended.end_ms, ended.barged_in, ok, err,
                                 vad_end_at, time.monotonic() - t0))

    # --- dialogue side --------------------------------------------------------------------
    def hint(self, text: str) -> None:
        """What the callee says, from simswitch (the scripted recogniser's input)."""
        hint = getattr(self.recognizer, "hint", None)
        if hint is not None:
            hint(self.uuid, text)

    def prompt_started(self, interruptible: bool) -> None:
        self.turns.prompt_started(interruptible)

    def prompt_stopped(self) -> None:
        self.turns.prompt_stopped()

    def listen(self, no_input_ms: int | None = None) -> None:
        self.turns.listen(no_input_ms)

    def cancel_listen(self) -> None:
        self.turns.cancel_listen()

    def send_text(self, message: dict) -> bool:
        """A JSON text frame to mod_audio_fork (e.g. {"type": "killAudio"})."""
        conn = self.conn
        if conn is None:
            return False
        try:
            conn.send_text(json.dumps(message, ensure_ascii=False))
            return True
        except OSError:
            return False

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    def close(self) -> None:
        self.group.kill(block=False)
        if self._asr is not None:
            self._asr.close()
            self._asr = None
        discard = getattr(self.recognizer, "discard", None)
        if discard is not None:
            discard(self.uuid)
        conn, self.conn = self.conn, None
        if conn is not None:
            gevent.spawn(conn.close)
