"""Typed call events the dialogue consumes, and the one adapter from ESL headers to them.

The controller puts these on the dialogue's `events` queue (its ESL handler only converts and
enqueues). `from_esl(headers, body)` converts the events the dialogue cares about and returns
None for every other one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlaybackStarted:
    path: str


@dataclass(frozen=True)
class PlaybackStopped:
    path: str
    status: str = "done"  # done | break


@dataclass(frozen=True)
class Dtmf:
    digit: str


@dataclass(frozen=True)
class HungUp:
    cause: str = "NORMAL_CLEARING"
    side: str = "callee"  # callee | robot | system


@dataclass(frozen=True)
class CalleeSpeech:
    """simswitch's `CUSTOM simswitch::callee_speech`: what its callee says (scripted ASR)."""

    text: str


@dataclass(frozen=True)
class ForkFailed:
    reason: str


CallEvent = PlaybackStarted | PlaybackStopped | Dtmf | HungUp | CalleeSpeech | ForkFailed

# Events to subscribe to (besides the controller's own) for the dialogue to work.
ESL_EVENTS = ("PLAYBACK_START", "PLAYBACK_STOP", "DTMF", "CHANNEL_HANGUP",
              "CUSTOM", "simswitch::callee_speech", "mod_audio_fork::connect",
              "mod_audio_fork::connect_failed", "mod_audio_fork::disconnect")


def from_esl(headers: dict, body: str | None = None) -> CallEvent | None:
    """The typed event for one ESL event's (URL-decoded) headers, or None."""
    name = headers.get("Event-Name")
    if name == "PLAYBACK_START":
        return PlaybackStarted(headers.get("Playback-File-Path", ""))
    if name == "PLAYBACK_STOP":
        return PlaybackStopped(headers.get("Playback-File-Path", ""),
                               headers.get("Playback-Status", "done"))
    if name == "DTMF":
        return Dtmf(headers.get("DTMF-Digit", ""))
    if name in ("CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"):
        disposition = headers.get("variable_sip_hangup_disposition", "")
        side = "robot" if disposition.startswith("send_") else "callee"
        return HungUp(headers.get("Hangup-Cause", "NORMAL_CLEARING"), side)
    if name == "CUSTOM":
        sub = headers.get("Event-Subclass", "")
        if sub == "simswitch::callee_speech":
            return CalleeSpeech(headers.get("Speech-Text", ""))
        if sub == "mod_audio_fork::connect_failed":
            return ForkFailed(body or "connect failed")
    return None
