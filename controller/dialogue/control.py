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

    def transfer(self, target: str, trigger: str = "script", so_far: dict | None = None):
        """Transfer to a human: `target` is the script's (a transfer group, "group:<id>", or
        anything else for the task's group), `trigger` what asked for it (core.transfer.
        Trigger), `so_far` the dialogue until now ({"transcript", "grade", "tags"}) for the
        agent's screen pop. Blocks while agents ring; returns once the callee is bridged to
        one, raises core.transfer.TransferFailed when nobody took the call, and
        NotImplementedError where the control cannot transfer."""

    def set_var(self, name: str, value: str) -> None: ...
