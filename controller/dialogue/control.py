"""`CallControl`: what the dialogue may do to its call. The ESL implementation is
`esl_control.EslCallControl`; tests and the console's rehearsal use others."""

from __future__ import annotations

from typing import Protocol


class ControlError(RuntimeError):
    """The switch refused a command or could not be reached."""


class CallControl(Protocol):
    uuid: str

    def play(self, audio_path: str, interruptible: bool = True) -> None:
        """Start playing a file to the callee (returns once the command is accepted)."""

    def stop_playback(self) -> None:
        """Cut the current prompt and drop queued ones (barge-in)."""

    def hangup(self, cause: str = "NORMAL_CLEARING") -> None: ...

    def start_audio_fork(self, url: str, metadata: dict) -> None:
        """Stream the callee's audio (L16 mono 8 kHz) to `url`, metadata first."""

    def stop_audio_fork(self) -> None: ...

    def send_fork_text(self, text: str) -> None:
        """A text frame through the fork's WebSocket (mod_audio_fork `send_text`)."""

    def transfer(self, target: str) -> None:
        """Transfer to a human (the transfer issue fills this in)."""

    def set_var(self, name: str, value: str) -> None: ...
