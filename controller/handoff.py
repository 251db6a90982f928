"""The one interface between dialling and the dialogue: what happens to an answered call.

The dialer calls `handler(ctx)` in a greenlet of the call's own group once the call is
answered (and recording). `ctx.events` carries the call's later events for the handler to
wait on, always with a timeout: ExecuteComplete, and the dialogue's typed events
(controller.dialogue.events: playback, DTMF, callee speech, fork failures, CHANNEL_HANGUP).
`ctx.ended` is set when the channel is gone (or the controller is stopping: then
`ctx.stopping` is true and the channel must be left as it is). The attempt is finished only
after the handler returns (at most `call_machine.WRAP_UP_S` after the hang-up), so what it
commits before returning is in the final record; the group is killed then, so a handler
never outlives its call.

The product's handler is the AI dialogue (`controller/conversation.py`, wrapped by the
transfer's predictive mode). `opening_prompt` — play the task's opening prompt, hang up — is
what a task without a script gets, and the dialer's default in tests.
"""

from __future__ import annotations

import logging
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field

import gevent
from gevent.event import Event as Flag
from gevent.queue import Empty, Queue

from controller.call_machine import CallPlan
from controller.esl import EslError, NodeLink
from controller.events import Event, ExecuteComplete, TransferEnded, TransferStarted

log = logging.getLogger(__name__)
PROMPT_TIMEOUT_S = 120.0


@dataclass
class AnsweredContext:
    plan: CallPlan
    link: NodeLink
    resumed: bool = False  # a restarted controller took the call over mid-way
    report: Callable[[Event], None] = lambda _event: None  # into the call's state machine
    events: Queue = field(default_factory=Queue)
    ended: Flag = field(default_factory=Flag)
    stopping: bool = False  # the controller is shutting down: save, leave the channel be

    def transferring(self) -> None:
        self.report(TransferStarted(self.plan.uuid))

    def transfer_ended(self, ok: bool) -> None:
        self.report(TransferEnded(self.plan.uuid, ok))

    def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        try:
            self.link.api(f"uuid_kill {self.plan.uuid} {cause}")
        except EslError as exc:
            log.info("%s: uuid_kill: %s", self.plan.uuid, exc)

    def play(self, path: str, timeout: float = PROMPT_TIMEOUT_S) -> bool:
        """Play `path` to the callee and wait until it ends; False on timeout or failure."""
        app_uuid = str(uuidlib.uuid4())
        try:
            self.link.sendmsg(self.plan.uuid, {
                "call-command": "execute", "execute-app-name": "playback",
                "execute-app-arg": path, "event-uuid": app_uuid, "event-lock": "true"})
        except EslError as exc:
            log.info("%s: playback: %s", self.plan.uuid, exc)
            return False
        deadline = gevent.get_hub().loop.now() + timeout
        while True:
            left = deadline - gevent.get_hub().loop.now()
            if left <= 0:
                return False
            try:
                event = self.events.get(timeout=left)
            except Empty:
                return False
            if isinstance(event, ExecuteComplete) and event.app_uuid == app_uuid:
                return True


AnswerHandler = Callable[[AnsweredContext], None]


def opening_prompt(ctx: AnsweredContext) -> None:
    """Play the task's opening prompt, then hang up (a resumed call is just hung up: the
    prompt was already played before the restart)."""
    if not ctx.resumed and ctx.plan.prompt:
        ctx.play(ctx.plan.prompt)
    ctx.hangup()
