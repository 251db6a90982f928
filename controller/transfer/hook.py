"""Where the transfer plugs into the controller: one `Transfers` per controller process.

- `Transfers.feed` goes beside the dialer's `on_esl` on every NodeLink (job results and
  hang-ups for the runner).
- `Transfers.control_transfer(link, call_uuid)` is what `CallControl.transfer(target,
  trigger, so_far)` runs: it blocks while agents ring; on success it returns the result (the
  customer is bridged to the agent and the dialogue should end without hanging up); on
  failure it raises `TransferFailed`, whose `fallback` says what the dialogue does now
  (ai_closing: play the closing line and hang up; ai_dialogue: carry on). `so_far` (the
  dialogue's transcript, grade and tags until now) goes to the agent's screen pop.
- `Transfers.predictive(handler)` wraps the dialer's AnswerHandler: for a task with 人工预测式
  外呼 the answered call goes straight to a human; the AI (`handler`) only runs when the
  transfer fails and 人工全忙转AI is on.
  A controller that stops while agents ring stops the ringing (the runner frees the agent
  and hangs up their leg) and leaves the customer to the controller started next.
- `Transfers.stay_bridged(ctx, result)` is a handler's last step after a success;
  `Transfers.bridged(Call.transfer)` rebuilds that result for a call a restarted controller
  takes over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import gevent
from sqlalchemy.orm import Session

from controller.transfer.events import EslEvents
from controller.transfer.runner import TransferResult, follow_bridge
from controller.transfer.service import transfer_call
from core.models import Task
from core.presence import Presence
from core.transfer import (
    Fallback,
    Target,
    TransferFailed,
    TransferState,
    Trigger,
    group_target,
)

log = logging.getLogger(__name__)

BRIDGE_MAX_S = 4 * 3600  # the longest a bridged call is followed for presence

__all__ = ["TransferFailed", "Transfers"]


@dataclass
class Transfers:
    session_factory: Callable[[], Session]
    presence: Presence
    conn: object  # redis.Redis
    controller_id: str = ""
    mask: str = "middle"
    events: dict[str, EslEvents] = field(default_factory=dict)  # per node name

    def feed(self, node: str, headers: dict, body: str | None) -> None:
        """NodeLink.on_event-compatible; call it beside the dialer's own handler."""
        hub = self.events.get(node)
        if hub is None:
            hub = self.events[node] = EslEvents()
        hub.feed(node, headers, body)

    def transfer(self, link, call_uuid: str, trigger: Trigger = Trigger.SCRIPT,
                 group_id: int | None = None, caller_id: str | None = None,
                 so_far: dict | None = None) -> TransferResult:
        """Run a transfer of `call_uuid` (see service.transfer_call); after a success the
        agent's presence follows the bridge in this greenlet's caller (see follow)."""
        hub = self.events.setdefault(link.node.name, EslEvents())
        extra = {"cc_controller": self.controller_id} if self.controller_id else None
        return transfer_call(self.session_factory, link, hub, self.presence, self.conn,
                             call_uuid, trigger=trigger, mask=self.mask, group_id=group_id,
                             caller_id=caller_id, extra_vars=extra, so_far=so_far)

    def follow(self, link, call_uuid: str, result: TransferResult) -> None:
        """Block until the bridged call ends, then put the agent in wrap-up."""
        hub = self.events.setdefault(link.node.name, EslEvents())
        follow_bridge(hub, self.presence, call_uuid, result, timeout=BRIDGE_MAX_S)

    def stay_bridged(self, ctx, result: TransferResult) -> None:
        """An answered-call handler's last step after a successful transfer: follow the
        bridge (the agent's presence), then end the customer's leg, which is left parked
        when the agent hangs up first. A stopping controller (`ctx.ended` with
        `ctx.stopping`) leaves the call, and following it, to the next one."""
        follow = gevent.spawn(self.follow, ctx.link, ctx.plan.uuid, result)
        gevent.wait([follow, ctx.ended], count=1)
        if ctx.stopping:
            follow.kill()
            return
        follow.join()
        ctx.hangup()

    @staticmethod
    def bridged(record: dict | None) -> TransferResult | None:
        """The successful transfer a Call.transfer record describes (for a call a
        restarted controller takes over), or None."""
        if not record or record.get("state") != TransferState.SUCCESS \
                or not record.get("target"):
            return None
        return TransferResult(TransferState.SUCCESS, target=Target(**record["target"]),
                              agent_uuid=record.get("agent_uuid"), record=record)

    def control_transfer(self, link, call_uuid: str) -> Callable[..., TransferResult]:
        """The body of CallControl.transfer(target, trigger, so_far) for one call. `target`
        is the script's transfer target: a transfer group ("group:3" or "3"), or anything
        else for the task's group; `trigger` a core.transfer.Trigger value."""

        def run(target: str, trigger: str = Trigger.SCRIPT,
                so_far: dict | None = None) -> TransferResult:
            result = self.transfer(link, call_uuid, trigger=Trigger(trigger),
                                   group_id=group_target(target), so_far=so_far)
            if not result.ok:
                raise TransferFailed(result)
            return result

        return run

    def predictive(self, handler: Callable) -> Callable:
        """An AnswerHandler: predictive tasks go to an agent first (see module doc)."""

        def answered(ctx) -> None:
            plan = ctx.plan
            with self.session_factory() as session:
                task = session.get(Task, plan.task_id)
                predictive = bool(task and task.predictive)
            if not predictive or ctx.resumed:
                handler(ctx)
                return
            ctx.transferring()
            ringing = gevent.spawn(self.transfer, ctx.link, plan.uuid,
                                   trigger=Trigger.PREDICTIVE, caller_id=plan.caller_id)
            try:
                gevent.wait([ringing, ctx.ended], count=1)
                if ctx.stopping and not ringing.ready():
                    log.info("%s: controller stopping while agents ring", plan.uuid)
                    return  # (finally) the runner hangs up the agent's leg, frees the agent
                result = ringing.get()  # a customer who hung up ends the runner by itself
            finally:
                ringing.kill()
            ctx.transfer_ended(result.ok)
            if result.ok:
                self.stay_bridged(ctx, result)
                return
            if result.fallback == Fallback.AI_DIALOGUE:
                handler(ctx)  # 人工全忙转AI: the AI holds the conversation
            else:
                ctx.hangup()
                log.info("%s: predictive transfer failed (%s), call ended", plan.uuid,
                         result.reason)

        return answered
