"""Dialogue verbs: small classes that each carry out one engine command on the call.

Each verb's `run(session)` returns when done; every wait has a timeout. Hang-up is not
handled here: the runtime raises `CallGone` into the dialogue greenlet, which ends any verb
mid-wait (it skips the queue).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import soundfile
from gevent.queue import Empty

from controller.dialogue.control import ControlError
from controller.dialogue.events import Dtmf, PlaybackStarted, PlaybackStopped
from controller.media.pipeline import StreamConnected, StreamLost, Utterance
from controller.media.turns import BargeIn, NoInput, SpeechStarted
from core.dialogue.engine import Say

log = logging.getLogger(__name__)
PLAY_START_TIMEOUT = 5.0  # the switch should start a queued prompt within this
PLAY_SLACK = 3.0  # beyond the prompt's own length


class MediaUnavailable(RuntimeError):
    """The audio fork could not be (re)established: the call must end, not go silent."""


@dataclass
class TurnLog:
    speaker: str
    text: str
    node: str | None
    intent: str | None
    start_ms: int
    end_ms: int
    interrupted: bool = False


def _duration(path: str) -> float:
    try:
        return soundfile.info(path).duration
    except (RuntimeError, soundfile.LibsndfileError):
        return 30.0


class PlayVerb:
    """Play one prompt; an interruptible one ends early on barge-in."""

    def __init__(self, say: Say):
        self.say = say
        self.interrupted = False

    def run(self, s) -> bool:
        """True when the callee barged in."""
        path = s.resolve_prompt(self.say)
        if path is None:
            return False
        s.mark_play_sent()
        try:
            s.control.play(path, self.say.interruptible)
        except ControlError as exc:
            log.warning("%s: prompt not played: %s", s.uuid, exc)
            return False
        start_ms = s.media.t_ms
        started = False
        deadline = time.monotonic() + PLAY_START_TIMEOUT
        while True:
            ev = s.next_event(max(0.01, deadline - time.monotonic()))
            if ev is None:
                if started:
                    log.info("%s: no PLAYBACK_STOP for %s; going on", s.uuid, path)
                break
            if isinstance(ev, PlaybackStarted):
                started = True
                start_ms = s.media.t_ms
                s.media.prompt_started(self.say.interruptible)
                deadline = time.monotonic() + _duration(path) + PLAY_SLACK
            elif isinstance(ev, PlaybackStopped):
                break
            elif isinstance(ev, BargeIn):
                if self.say.interruptible and started:
                    self.interrupted = True
                    # stop_playback already went out from the media greenlet (on_barge_in)
                    deadline = min(deadline, time.monotonic() + 1.0)
            elif isinstance(ev, Utterance):
                s.stash(ev)
            elif not s.handle_common(ev):
                continue
        s.media.prompt_stopped()
        s.turns.append(TurnLog("robot", self.say.text, self.say.node, None, start_ms,
                               s.media.t_ms, self.interrupted))
        return self.interrupted


class ListenVerb:
    """Wait for the callee's next utterance (or DTMF), or for the no-input timeout."""

    def __init__(self, no_input_ms: int):
        self.no_input_ms = no_input_ms

    def run(self, s):
        """An `Utterance`, a DTMF `Dtmf`, or `NoInput`."""
        stashed = s.take_stash()
        if stashed is not None:
            return stashed
        s.media.listen(self.no_input_ms)
        ts = s.turn_settings
        # Audio time drives the no-input timer; this wall-clock guard only covers a stream
        # that stopped delivering frames.
        guard = (self.no_input_ms + ts.max_utterance_ms) / 1000 + s.asr_timeout + 5
        deadline = time.monotonic() + guard
        try:
            while True:
                ev = s.next_event(max(0.01, deadline - time.monotonic()))
                if ev is None:
                    return NoInput(s.media.t_ms)
                if isinstance(ev, Utterance | NoInput | Dtmf):
                    return ev
                if isinstance(ev, SpeechStarted):
                    deadline = time.monotonic() + guard
                    continue
                s.handle_common(ev)
        finally:
            s.media.cancel_listen()


class HangupVerb:
    def __init__(self, cause: str = "NORMAL_CLEARING"):
        self.cause = cause

    def run(self, s) -> None:
        s.hangup_side = s.hangup_side or "robot"
        s.control.hangup(self.cause)


def handle_common(s, ev) -> bool:
    """Events every verb treats the same; True when `ev` was one of them."""
    if isinstance(ev, StreamLost):
        s.reconnect_media()
        return True
    if isinstance(ev, StreamConnected | SpeechStarted | BargeIn | PlaybackStarted
                  | PlaybackStopped):
        return True
    return False


def drain(queue) -> None:
    try:
        while True:
            queue.get_nowait()
    except Empty:
        return

