"""The thin greenlet driver of one call: events in through `put`, `step`, commands out.

Each call owns one greenlet (`run`) and a group for what its commands spawn (API calls, the
answered-call handler); the group is killed when the call finishes. Every wait has a
timeout; `put` never blocks, so ESL dispatch never waits on a call.

Events for the handler (`ForHandler`: the dialogue's playback, DTMF, speech, hang-up, fork
events; `ExecuteComplete`) go on to the handler's queue (`AnsweredContext.events`); the
handler's own reports (transfer started / ended, done) come back through `put`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import gevent
from gevent.pool import Group
from gevent.queue import Empty, Queue

from controller.call_machine import CallPlan, CallRecord, step
from controller.esl import EslError, LinkDown, NodeLink
from controller.events import (
    CallOver,
    CancelTimer,
    ChannelEvent,
    DialogueStarted,
    Event,
    ExecuteComplete,
    Finish,
    ForHandler,
    HandlerDone,
    HandOff,
    Hangup,
    JobDone,
    NotDialled,
    Originate,
    SetTimer,
    StartRecording,
    Timer,
)
from controller.handoff import AnsweredContext, AnswerHandler
from core import clock
from core.call_status import CallState

log = logging.getLogger(__name__)
IDLE_S = 30.0  # how long run() waits for an event before looking again
UNCONFIRMED = "ORIGINATE_UNCONFIRMED"  # the hang-up cause of an originate with no reply


def dial_string(plan: CallPlan, detector: str = "none") -> str:
    """`originate {vars}sofia/gateway/<gw>/<number> &park()` for a plan.

    Early media is kept (no ignore_early_media): a 183 with a carrier recording makes the
    job succeed and leaves the leg reading media, where a detector can hear it (CPA.md §5);
    only CHANNEL_ANSWER counts as answered. `detector` "tonedetect" starts mod_tonedetect
    at 183; its verdict comes back as an Announcement and the call machine hangs up, so
    the module's own hang-up is turned off (the controller knows why the call ended).
    """
    variables = {
        "origination_uuid": plan.uuid,
        "originate_timeout": str(plan.ring_timeout_s),
        "cc_account_id": str(plan.account_id),
        "cc_task_id": str(plan.task_id),
        "cc_number_id": str(plan.number_id),
        "cc_line_id": str(plan.line_id),
        "cc_controller": plan.controller,
        "cc_recording_path": plan.recording_path,
        "RECORD_STEREO": "true",
        "sip_h_X-CC-Task": str(plan.task_id),
        "sip_h_X-CC-Number": str(plan.number_id),
    }
    if detector == "tonedetect":
        variables["execute_on_pre_answer"] = "start_tonedetect"
        variables["tonedetect_autohangup"] = "false"
    if plan.caller_id:
        variables["origination_caller_id_number"] = plan.caller_id
        variables["effective_caller_id_number"] = plan.caller_id

    def value(v: str) -> str:
        # FreeSWITCH's variable block splits on ',' outside single quotes.
        return f"'{v}'" if (" " in v or "," in v) else v

    joined = ",".join(f"{k}={value(v)}" for k, v in variables.items() if v)
    return f"originate {{{joined}}}sofia/gateway/{plan.gateway}/{plan.phone} &park()"


@dataclass
class DriverServices:
    """What a driver needs from the dialer."""

    link: Callable[[str], NodeLink]  # node name → its link
    changed: Callable[[CallRecord], None]  # persist + publish a transition (batched)
    finished: Callable[[CallRecord], None]  # final record, slot release
    handler: AnswerHandler
    detector: str = "none"  # the early-media detector the switch runs (dial_string)


class CallDriver:
    def __init__(self, record: CallRecord, services: DriverServices):
        self.record = record
        self.services = services
        self.inbox: Queue = Queue()
        self.group = Group()
        self.timers: dict[str, gevent.Greenlet] = {}
        self.handoff: AnsweredContext | None = None
        self.handler: gevent.Greenlet | None = None
        self.greenlet: gevent.Greenlet | None = None
        self.created = time.time()

    @property
    def uuid(self) -> str:
        return self.record.plan.uuid

    @property
    def plan(self) -> CallPlan:
        return self.record.plan

    def put(self, event: Event) -> None:
        self.inbox.put(event)

    def start(self, first: Event) -> None:
        self.put(first)
        self.greenlet = gevent.spawn(self.run)

    def stop(self) -> None:
        """Stop driving this call (controller shutdown); the channel is left alone."""
        if self.greenlet is not None:
            self.greenlet.kill(block=False)

    def run(self) -> None:
        try:
            while True:
                try:
                    event = self.inbox.get(timeout=IDLE_S)
                except Empty:
                    continue
                if isinstance(event, ForHandler):
                    if self.handoff is not None:
                        self.handoff.events.put(event.event)
                    continue
                if self.handoff is not None and isinstance(event, ExecuteComplete):
                    self.handoff.events.put(event)
                before = self.record
                self.record, commands = step(before, event, clock.now().timestamp())
                if self.record.visible != before.visible \
                        and self.record.state != CallState.ENDED:
                    self.services.changed(self.record)
                for command in commands:
                    self._do(command)
                if any(isinstance(c, Finish) for c in commands):
                    return
        finally:
            for timer in self.timers.values():
                timer.kill(block=False)
            self.group.kill(block=False)

    # -- commands -------------------------------------------------------------------------

    def _do(self, command) -> None:
        if isinstance(command, Originate):
            self._originate()
        elif isinstance(command, SetTimer):
            old = self.timers.pop(command.name, None)
            if old is not None:
                old.kill(block=False)
            self.timers[command.name] = gevent.spawn_later(
                command.seconds, self.put, Timer(self.uuid, command.name))
        elif isinstance(command, CancelTimer):
            timer = self.timers.pop(command.name, None)
            if timer is not None:
                timer.kill(block=False)
        elif isinstance(command, StartRecording):
            self.group.spawn(self._record, command.path)
        elif isinstance(command, Hangup):
            self.group.spawn(self._api, f"uuid_kill {self.uuid} {command.cause}")
        elif isinstance(command, HandOff):
            self._hand_off(command.resumed)
        elif isinstance(command, CallOver):
            if self.handoff is not None:
                self.handoff.ended.set()
        elif isinstance(command, Finish):
            self.services.finished(self.record)

    def _originate(self) -> None:
        try:
            link = self.services.link(self.plan.node)
            link.bgapi(dial_string(self.plan, self.services.detector), job_uuid=self.uuid)
        except (LinkDown, KeyError) as exc:
            self.put(NotDialled(self.uuid, str(exc)))
        except EslError as exc:
            # Maybe sent: the switch may have the call. Its events, a resync or the settle
            # timer end the attempt; if no CDR ever comes, it was never dialled
            # (Store.resolve_unconfirmed).
            log.warning("call %s: originate: %s", self.uuid, exc)
            self.put(JobDone(self.plan.node, self.uuid, False, UNCONFIRMED))

    def _api(self, command: str) -> None:
        try:
            self.services.link(self.plan.node).api(command)
        except (EslError, KeyError) as exc:
            log.info("call %s: %s: %s", self.uuid, command.split()[0], exc)

    def _record(self, path: str) -> None:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)  # when the switch is local
        except OSError:
            pass  # FreeSWITCH on another host creates its own directories
        self._api(f"uuid_record {self.uuid} start {path}")

    def _hand_off(self, resumed: bool) -> None:
        try:
            link = self.services.link(self.plan.node)
        except KeyError:
            self.put(HandlerDone(self.uuid))  # no handler will run
            return
        self.handoff = AnsweredContext(self.plan, link, resumed=resumed, report=self.put)
        self.handler = self.group.spawn(self._run_handler, self.handoff)
        self.put(DialogueStarted(self.uuid))

    def _run_handler(self, ctx: AnsweredContext) -> None:
        try:
            self.services.handler(ctx)
        except gevent.GreenletExit:
            raise
        except Exception:  # noqa: BLE001 — a dialogue failure must not strand the call
            log.exception("call %s: answered-call handler failed; hanging up", self.uuid)
            ctx.hangup("NORMAL_TEMPORARY_FAILURE")
        self.put(HandlerDone(self.uuid))

    def stop_handler(self) -> gevent.Greenlet | None:
        """Controller shutdown: ask a running handler to save what it has and leave the
        channel to the next controller; returns its greenlet to wait for."""
        if self.handoff is None or self.handler is None or self.handler.dead:
            return None
        self.handoff.stopping = True
        self.handoff.ended.set()
        return self.handler


def route_key(event: Event) -> str | None:
    """The call uuid an event belongs to (bgapi Job-UUIDs are the call uuid)."""
    if isinstance(event, JobDone):
        return event.job_uuid
    if isinstance(event, ChannelEvent):
        return event.uuid
    return None
