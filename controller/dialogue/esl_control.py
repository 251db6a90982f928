"""`CallControl` over FreeSWITCH's Event Socket with mod_commands / mod_audio_fork APIs:
uuid_broadcast, uuid_break, uuid_kill, uuid_audio_fork, uuid_setvar. Transferring needs the
database and agents' presence: the controller's `DialogueControl` (controller/conversation.py)
adds it."""

from __future__ import annotations

import json
import logging

from controller.dialogue.control import ControlError
from controller.esl import EslError, NodeLink

log = logging.getLogger(__name__)
_SAFE = str.maketrans({"\n": " ", "\r": " "})


class EslCallControl:
    def __init__(self, link: NodeLink, uuid: str, timeout: float = 10.0):
        self.link, self.uuid, self.timeout = link, uuid, timeout
        self.sent: list[str] = []  # the commands, for logs and tests

    def _api(self, command: str) -> str:
        command = command.translate(_SAFE)
        self.sent.append(command)
        try:
            reply = self.link.api(command, timeout=self.timeout)
        except EslError as exc:
            raise ControlError(f"{command.split()[0]}: {exc}") from None
        if reply.startswith("-"):
            raise ControlError(f"{command.split()[0]}: {reply.strip()}")
        return reply

    def play(self, audio_path: str, interruptible: bool = True) -> None:
        if " " in audio_path:
            raise ControlError(f"prompt paths must not contain spaces: {audio_path!r}")
        self._api(f"uuid_broadcast {self.uuid} {audio_path} aleg")

    def stop_playback(self) -> None:
        try:
            self._api(f"uuid_break {self.uuid} all")
        except ControlError as exc:  # the call may already be gone
            log.info("%s: uuid_break: %s", self.uuid, exc)

    def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        try:
            self._api(f"uuid_kill {self.uuid} {cause}")
        except ControlError as exc:
            log.info("%s: uuid_kill: %s", self.uuid, exc)

    def start_audio_fork(self, url: str, metadata: dict) -> None:
        meta = json.dumps(metadata, ensure_ascii=False, separators=(",", ":"))
        self._api(f"uuid_audio_fork {self.uuid} start {url} mono 8k {meta}")

    def stop_audio_fork(self) -> None:
        try:
            self._api(f"uuid_audio_fork {self.uuid} stop")
        except ControlError as exc:
            log.debug("%s: fork stop: %s", self.uuid, exc)

    def send_fork_text(self, text: str) -> None:
        self._api(f"uuid_audio_fork {self.uuid} send_text {text}")

    def transfer(self, target: str, trigger: str = "script", so_far: dict | None = None):
        raise NotImplementedError("EslCallControl alone cannot transfer; the controller's "
                                  "DialogueControl (controller/conversation.py) can")

    def set_var(self, name: str, value: str) -> None:
        self._api(f"uuid_setvar {self.uuid} {name} {value}")
