"""The one interface between dialling and the dialogue: what happens to an answered call.

The dialer calls `handler(ctx)` in a greenlet of the call's own group once the call is
answered (and recording); the group is killed when the call ends, so a handler never
outlives its call. `ctx.events` carries the call's later events (ExecuteComplete …) for
the handler to wait on, always with a timeout.

Until the dialogue runtime (controller/dialogue/) is plugged in here, `opening_prompt` plays
the task's opening prompt and hangs up.
"""

from __future__ import annotations

import logging
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field

import gevent
from gevent.queue import Empty, Queue

from controller.call_machine import CallPlan
from controller.esl import EslError, NodeLink
from controller.events import ExecuteComplete

log = logging.getLogger(__name__)
PROMPT_TIMEOUT_S = 120.0


@dataclass
class AnsweredContext:
    plan: CallPlan
    link: NodeLink
    resumed: bool = False  # a restarted controller took the call over mid-way
    events: Queue = field(default_factory=Queue)

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
