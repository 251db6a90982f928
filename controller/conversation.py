"""The AI dialogue of an answered call: the product's answer handler (controller/handoff.py).

    conversations = Conversations(sessions, settings, transfers)   # once per process
    handler = transfers.predictive(conversations)                  # the dialer's handler

Per call it reads the call row, its task, the number's imported variables and the script
version to run (`script_for`: the task's script, or for 按时间配置 the timed script whose
range holds the account's local time, else the fallback; pinned to the task's start by
core.dialogue.versions.pinned_version), runs `run_dialogue` over `DialogueControl` — the
Event Socket control whose `transfer(target, trigger, so_far)` rings the task's agents, for a
script node or the grade rule (the task's transfer group goes to the runtime for the latter)
— and commits the result (grade, reasons, tags, score, counts, DialogueTurn rows, the
script's SMS requests) before it returns. The driver finishes the attempt only after that
(call_machine: `ending` until HandlerDone), so the final record and the after-call rules
(core.outbox.enqueue_after_call) see the grade, whether the dialogue or the hang-up came
first. After a successful transfer it follows the
bridge for the agent's presence. A task without a script keeps the old behaviour: its
opening prompt, then hang up.

A call a restarted controller takes over (`ctx.resumed`) never runs the script again (the
engine's position died with the old process): a bridged one is followed to its end, any
other is hung up, and what the old process saved (its result, saved when it was stopped) is
left as it is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import time
from zoneinfo import ZoneInfo

from gevent.event import Event as Flag
from gevent.queue import Queue
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from controller.call_machine import CallPlan
from controller.dialogue.esl_control import EslCallControl
from controller.dialogue.events import HungUp, PlaybackStarted, PlaybackStopped
from controller.dialogue.persist import apply_result
from controller.dialogue.runtime import AnsweredCall, DialogueResult, run_dialogue
from controller.dialogue.services import DialogueServices
from controller.events import Announcement
from controller.handoff import AnsweredContext, opening_prompt
from controller.media.hub import start_media
from controller.transfer.hook import Transfers
from controller.transfer.runner import TransferResult
from core import clock
from core.dialogue.versions import pinned_version
from core.enums import ScriptMode
from core.models import Account, Call, Task, TaskNumber
from core.settings import Settings
from core.transfer import TransferFailed

log = logging.getLogger(__name__)
READY_WAIT_S = 30.0
SCREENED_BY = "智能助理"  # the announcement class an assistant that answered gets


def _clock_time(value) -> time | None:
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        return None


def script_for(task: Task, local: time) -> int | None:
    """The script a call of `task` runs when the account's local time is `local`: unified
    → the task's script; by_time → the first timed script whose [start, end) holds `local`
    (a range whose end is before its start runs past midnight), else the fallback script."""
    if task.script_mode != ScriptMode.BY_TIME:
        return task.script_id
    for slot in task.timed_scripts or ():
        start, end = _clock_time(slot.get("start")), _clock_time(slot.get("end"))
        if start is None or end is None or not slot.get("script_id"):
            continue
        inside = start <= local < end if start <= end else (local >= start or local < end)
        if inside:
            return int(slot["script_id"])
    return task.fallback_script_id


@dataclass(frozen=True)
class Prepared:
    """What one call's dialogue needs from the database, read before it starts."""

    call_id: int
    account_id: int
    script_id: int
    script_version: int
    body: dict
    dialogue_settings: dict
    variables: dict
    transfer_group_id: int | None


class DialogueControl(EslCallControl):
    """EslCallControl whose `transfer(target, trigger, so_far)` runs
    Transfers.control_transfer and tells the call's state machine (transferring → bridged,
    or back to the dialogue)."""

    def __init__(self, ctx: AnsweredContext, transfer):
        super().__init__(ctx.link, ctx.plan.uuid)
        self.ctx = ctx
        self._transfer = transfer
        self.bridged: TransferResult | None = None
        self.played: set[str] = set()  # the prompts' paths, as PLAYBACK_* events name them

    def play(self, audio_path: str, interruptible: bool = True) -> None:
        self.played.add(audio_path)
        super().play(audio_path, interruptible)

    def transfer(self, target: str, trigger: str = "script",
                 so_far: dict | None = None) -> TransferResult:
        self.ctx.transferring()
        try:
            self.bridged = self._transfer(target, trigger, so_far)
        except TransferFailed:
            self.ctx.transfer_ended(False)
            raise
        self.ctx.transfer_ended(True)
        return self.bridged


class DialogueEvents(Queue):
    """The dialogue's event queue. The transfer's ring-back music plays on the same channel:
    its PLAYBACK_START / STOP must not pass for a prompt's (the closing line after a failed
    transfer would be cut at once), so playback events of paths the dialogue did not play
    are dropped."""

    def __init__(self, played: set[str]):
        super().__init__()
        self.played = played

    def put(self, item, block=True, timeout=None):
        if isinstance(item, PlaybackStarted | PlaybackStopped) and item.path not in self.played:
            return
        super().put(item, block, timeout)


class Conversations:
    """The answer handler; `start()` runs the audio-fork media server (MEDIA_LISTEN)."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings,
                 transfers: Transfers, services: DialogueServices | None = None, vad=None):
        self.sessions, self.settings, self.transfers = sessions, settings, transfers
        self.services = services or DialogueServices.from_settings(settings)
        self.vad = vad
        self.hub = self.server = None
        self.ready = Flag()  # the media server runs (start-up resyncs before it)
        self._unscripted: set[int] = set()  # tasks already logged as having no script

    def start(self) -> Conversations:
        self.hub, self.server = start_media(self.settings, vad=self.vad)
        self.ready.set()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.services.close()

    def __call__(self, ctx: AnsweredContext) -> None:
        if ctx.resumed:
            self._resume(ctx)
            return
        prepared = self._prepare(ctx.plan)
        if prepared is None:
            opening_prompt(ctx)
            return
        # A call taken over ringing may be answered while start-up still loads the media.
        if not self.ready.wait(READY_WAIT_S):
            log.error("%s: the media server is not running; hanging up", ctx.plan.uuid)
            ctx.hangup("NORMAL_TEMPORARY_FAILURE")
            return
        control = DialogueControl(ctx, self.transfers.control_transfer(ctx.link, ctx.plan.uuid))
        events, early = DialogueEvents(control.played), ctx.events
        ctx.events = events  # the driver forwards here from now on (no yield in between)
        while not early.empty():
            events.put(early.get_nowait())
        # A channel that ended unseen (or a controller that stops) ends the dialogue the way
        # a CHANNEL_HANGUP does; a second hang-up after the real one changes nothing.
        ctx.ended.rawlink(lambda _flag: events.put_nowait(HungUp(side="system")))
        result = run_dialogue(
            AnsweredCall(ctx.plan.uuid, prepared.body, prepared.dialogue_settings,
                         prepared.variables, call_id=prepared.call_id,
                         account_id=prepared.account_id, script_id=prepared.script_id,
                         script_version=prepared.script_version,
                         transfer_group_id=prepared.transfer_group_id),
            control, events, self.hub, self.services)
        self._save(prepared, result)
        if "assistant" in result.intents:
            # A call-screening assistant took the call: answered, but nobody was reached
            # (用户屏蔽, core.call_status.SCREENING).
            ctx.report(Announcement(ctx.plan.node, ctx.plan.uuid, clock.now().timestamp(),
                                    category=SCREENED_BY))
        log.info("%s: dialogue ended (%s), grade %s, %d turns", ctx.plan.uuid,
                 result.end_reason, result.grade, len(result.turns))
        if control.bridged is not None and not ctx.stopping:
            self.transfers.stay_bridged(ctx, control.bridged)

    # -- the database ---------------------------------------------------------------------

    def _prepare(self, plan: CallPlan) -> Prepared | None:
        with self.sessions() as s:
            call = s.scalar(select(Call).where(Call.uuid == plan.uuid))
            task = s.get(Task, plan.task_id)
            if call is None or task is None:
                log.warning("%s: call row or task gone; no dialogue", plan.uuid)
                return None
            zone = ZoneInfo(s.scalar(select(Account.timezone)
                                     .where(Account.id == task.account_id)) or "UTC")
            script_id = script_for(task, clock.now().astimezone(zone).time())
            version = pinned_version(s, script_id, task.started_at) if script_id else None
            if version is None:
                if task.id not in self._unscripted:
                    self._unscripted.add(task.id)
                    log.warning("task %s has no script to run now: its calls play the "
                                "opening prompt and hang up", task.id)
                return None
            number = s.get(TaskNumber, plan.number_id)
            variables = {**((number.variables if number else None) or {}),
                         **(call.variables or {})}
            return Prepared(call.id, call.account_id, version.script_id, version.version,
                            dict(version.body), dict(task.dialogue_settings or {}), variables,
                            task.transfer_group_id)

    def _save(self, prepared: Prepared, result: DialogueResult) -> None:
        with self.sessions() as s:
            call = s.get(Call, prepared.call_id)
            if call.transfer:
                # The transfer wrote its whole record; the dialogue only knows it asked.
                result = replace(result, transfer=None)
            apply_result(s, call, result)
            call.script_id, call.script_version = prepared.script_id, prepared.script_version
            s.commit()

    def _resume(self, ctx: AnsweredContext) -> None:
        with self.sessions() as s:
            call = s.scalar(select(Call).where(Call.uuid == ctx.plan.uuid))
            record = dict(call.transfer or {}) if call else {}
            saved = call is not None and call.grade_source is not None
        bridged = Transfers.bridged(record)
        if bridged is not None:
            log.info("%s: taken over while bridged to an agent; following it", ctx.plan.uuid)
            self.transfers.stay_bridged(ctx, bridged)
            return
        log.info("%s: taken over mid-call; the script cannot resume, hanging up (%s)",
                 ctx.plan.uuid, "its dialogue was saved" if saved else "no dialogue saved")
        ctx.hangup()
