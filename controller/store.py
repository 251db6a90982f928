"""The controller's database side: running tasks, claiming numbers, call rows, settling.

The database is the truth. A call row (uuid = the origination_uuid) is committed before its
originate is sent, so an attempt can never be lost: after a crash the row is there and a
restarted controller resolves it from the switch's live channels or the CDR. Writes of live
transitions are batched (`apply`) by one writer greenlet; nothing here does other I/O, so a
transaction never yields to another greenlet half-way.
"""

from __future__ import annotations

import logging
import uuid as uuidlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from controller.call_machine import CallPlan, CallRecord, hangup_side
from core import blacklist
from core.call_status import CallState, classify
from core.cdr import queue_after_call
from core.enums import CallStatus, NumberState, TaskEndAction, TaskState
from core.models import (
    Account,
    Call,
    CallTimeTemplate,
    Line,
    Outbox,
    Task,
    TaskNumber,
    TransferGroupMember,
    User,
)
from core.outbox import JOBS, OutboxState
from core.pacing import RedialRule, settle_number
from core.post_call import ActionType
from core.windows import CallWindow, WindowError

log = logging.getLogger(__name__)

UNCONFIRMED = "ORIGINATE_UNCONFIRMED"  # see controller.calls
# What a task without a script plays before hanging up (controller.handoff.opening_prompt).
DEFAULT_PROMPT = "tone_stream://%(1500,0,440);loops=1"


@dataclass(frozen=True)
class LineInfo:
    id: int
    gateway: str
    fs_node: str | None
    caller_ids: tuple[str, ...]
    max_concurrency: int


@dataclass(frozen=True)
class TaskRun:
    """What the dialer needs of a running task (re-read on every notice and periodically)."""

    id: int
    account_id: int
    line: LineInfo
    max_concurrency: int
    call_interval_s: int
    window: CallWindow | None  # None: the window settings cannot be read (logged; no dialling)
    rule: RedialRule
    ring_timeout_s: int
    max_call_s: int
    blacklist_groups: tuple[int, ...]
    prompt: str
    end_action: str
    # Agent-dependent dialling (core.transfer.dial_gate): 人工预测式外呼, 人工全忙转AI,
    # 转人工全忙暂停, and the user ids of the task's transfer group.
    predictive: bool = False
    predictive_busy_to_ai: bool = False
    pause_when_agents_busy: bool = False
    agent_ids: tuple[int, ...] = ()

    @property
    def needs_agents(self) -> bool:
        return self.predictive or self.pause_when_agents_busy


def _epoch_dt(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value else None


class Store:
    def __init__(self, sessions: sessionmaker[Session], controller_id: str,
                 recordings_dir: Path):
        self.sessions = sessions
        self.controller_id = controller_id
        self.recordings_dir = Path(recordings_dir)

    # -- tasks ----------------------------------------------------------------------------

    def running_tasks(self) -> dict[int, TaskRun]:
        """Every running outbound task whose line is usable."""
        with self.sessions() as s:
            rows = s.execute(
                select(Task, Line, Account.timezone)
                .join(Line, Line.id == Task.line_id)
                .join(Account, Account.id == Task.account_id)
                .where(Task.state == TaskState.RUNNING, Line.enabled.is_(True))).all()
            return {task.id: self._task_run(s, task, line, tz) for task, line, tz in rows}

    def _task_run(self, s: Session, task: Task, line: Line, tz: str) -> TaskRun:
        weekly = task.weekly
        if not weekly and task.call_time_template_id:
            template = s.get(CallTimeTemplate, task.call_time_template_id)
            weekly = template.weekly if template else {}
        try:
            window = CallWindow.from_task_fields(tz, weekly, task.date_start, task.date_end,
                                                 task.skip_holidays, task.forbidden_ranges)
        except WindowError as exc:
            log.warning("task %s: call window unreadable (%s): not dialling", task.id, exc)
            window = None
        settings = task.dialogue_settings or {}
        return TaskRun(
            id=task.id, account_id=task.account_id,
            line=LineInfo(line.id, line.gateway, line.fs_node, tuple(line.caller_ids or ()),
                          line.max_concurrency),
            max_concurrency=task.max_concurrency, call_interval_s=task.call_interval_s,
            window=window,
            rule=RedialRule(max(1, task.max_attempts or 1),
                            frozenset(task.redial_statuses or ()), task.redial_interval_s),
            ring_timeout_s=task.ring_timeout_s, max_call_s=task.max_call_s,
            blacklist_groups=tuple(g.id for g in task.blacklist_groups),
            prompt=settings.get("opening_prompt") or DEFAULT_PROMPT,
            end_action=task.end_action,
            predictive=bool(task.predictive),
            predictive_busy_to_ai=bool(task.predictive_busy_to_ai),
            pause_when_agents_busy=bool(task.pause_when_agents_busy),
            agent_ids=self._agent_ids(s, task) if task.predictive or
            task.pause_when_agents_busy else ())

    @staticmethod
    def _agent_ids(s: Session, task: Task) -> tuple[int, ...]:
        if not task.transfer_group_id:
            return ()
        return tuple(s.scalars(
            select(TransferGroupMember.user_id)
            .join(User, User.id == TransferGroupMember.user_id)
            .where(TransferGroupMember.group_id == task.transfer_group_id,
                   User.active.is_(True))))

    def pause_for_agents(self, task_id: int) -> bool:
        """转人工全忙暂停 at dialling time: pause a running task (no agent is free). True
        when this paused it."""
        with self.sessions() as s:
            paused = s.execute(update(Task).where(Task.id == task_id,
                                                  Task.state == TaskState.RUNNING)
                               .values(state=TaskState.PAUSED)
                               .execution_options(synchronize_session=False)).rowcount
            s.commit()
            return paused == 1

    def finish_if_done(self, task_id: int, live_calls: int) -> str | None:
        """When a running task has no number left to dial and no live call, end it by its
        end action (stop → finished; pause_release → paused). Returns the new state.

        A number may still come back: an attempt whose CDR has not confirmed it
        (resolve_unconfirmed), or a post-call redial (加入重呼) in the outbox that the
        worker has not run yet — it requeues the number (workers.after_call.redial)."""
        if live_calls:
            return None
        with self.sessions() as s:
            task = s.get(Task, task_id)
            if task is None or task.state != TaskState.RUNNING:
                return None
            left = s.scalar(select(func.count()).select_from(TaskNumber).where(
                TaskNumber.task_id == task_id,
                TaskNumber.state.in_([NumberState.PENDING, NumberState.DIALLING])))
            if left or s.scalar(select(Call.id).where(
                    Call.task_id == task_id, Call.hangup_cause == UNCONFIRMED,
                    Call.cdr.is_(None)).limit(1)) is not None \
                    or s.scalar(select(Outbox.id).join(Call, Call.id == Outbox.call_id).where(
                        Call.task_id == task_id, Outbox.job == JOBS[ActionType.REDIAL],
                        Outbox.state.in_([OutboxState.PENDING, OutboxState.RELAYED]))
                        .limit(1)) is not None:
                return None  # numbers to dial, or numbers that may come back
            if task.end_action == TaskEndAction.PAUSE_RELEASE:
                task.state = TaskState.PAUSED
            else:
                task.state = TaskState.FINISHED
                task.finished_at = datetime.now(UTC)
            s.commit()
            return task.state

    def has_due_numbers(self, task_id: int, now: datetime) -> bool:
        with self.sessions() as s:
            return s.scalar(select(TaskNumber.id).where(
                TaskNumber.task_id == task_id, TaskNumber.state == NumberState.PENDING,
                or_(TaskNumber.next_attempt_at.is_(None), TaskNumber.next_attempt_at <= now))
                .limit(1)) is not None

    # -- claiming numbers -----------------------------------------------------------------

    def recording_path(self, task: TaskRun, call_uuid: str, now: datetime) -> str:
        zone = task.window.zone if task.window else UTC
        day = now.astimezone(zone)
        return str(self.recordings_dir / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}"
                   / f"{call_uuid}.wav")

    def claim(self, task: TaskRun, node: str, uuids: list[str], now: datetime) -> list[CallPlan]:
        """Take up to len(uuids) next numbers of `task` (fresh ones in import order, then
        redials that are due), write a call row for each before anything is dialled, and
        return their plans. Blacklisted numbers get a 黑名单 row and are not dialled."""
        uuids = list(uuids)
        plans: list[CallPlan] = []
        with self.sessions() as s:
            rows = s.scalars(
                select(TaskNumber).where(
                    TaskNumber.task_id == task.id, TaskNumber.state == NumberState.PENDING,
                    or_(TaskNumber.next_attempt_at.is_(None), TaskNumber.next_attempt_at <= now))
                .order_by(case((TaskNumber.attempts > 0, 1), else_=0), TaskNumber.position,
                          TaskNumber.id)
                .limit(len(uuids))).all()
            banned = blacklist.live_numbers(s, task.blacklist_groups, [r.phone for r in rows],
                                            now)
            wanted = []
            for row in rows:
                if blacklist.lookup_phone(row.phone) in banned:
                    self._blacklisted(s, task, row, now)
                else:
                    wanted.append(row)
            claimed = set(s.scalars(
                update(TaskNumber)
                .where(TaskNumber.id.in_([r.id for r in wanted]),
                       TaskNumber.state == NumberState.PENDING)
                .values(state=NumberState.DIALLING, attempts=TaskNumber.attempts + 1,
                        last_called_at=now)
                .returning(TaskNumber.id)
                .execution_options(synchronize_session=False))) if wanted else set()
            for row in wanted:
                if row.id not in claimed:
                    continue  # another controller took it
                call_uuid = uuids.pop()
                caller_ids = task.line.caller_ids  # spread over the line's numbers
                caller_id = caller_ids[row.id % len(caller_ids)] if caller_ids else None
                plan = CallPlan(
                    uuid=call_uuid, node=node, account_id=task.account_id, task_id=task.id,
                    number_id=row.id, line_id=task.line.id, phone=row.phone,
                    gateway=task.line.gateway, caller_id=caller_id,
                    ring_timeout_s=task.ring_timeout_s, max_call_s=task.max_call_s,
                    recording_path=self.recording_path(task, call_uuid, now),
                    prompt=task.prompt, controller=self.controller_id)
                s.add(Call(account_id=task.account_id, uuid=call_uuid, task_id=task.id,
                           task_number_id=row.id, line_id=task.line.id, fs_node=node,
                           controller=self.controller_id, state=CallState.ORIGINATING,
                           phone=row.phone, caller_id=caller_id, originated_at=now,
                           recording_path=plan.recording_path,
                           region=row.region, carrier=row.carrier,
                           variables=dict(row.variables or {})))
                plans.append(plan)
            s.commit()
        return plans

    def _blacklisted(self, s: Session, task: TaskRun, row: TaskNumber, now: datetime) -> None:
        claimed = s.execute(
            update(TaskNumber)
            .where(TaskNumber.id == row.id, TaskNumber.state == NumberState.PENDING)
            .values(state=NumberState.SKIPPED, last_status=CallStatus.BLACKLISTED,
                    last_called_at=now)
            .execution_options(synchronize_session=False)).rowcount
        if claimed == 1:
            s.add(Call(account_id=task.account_id, uuid=str(uuidlib.uuid4()), task_id=task.id,
                       task_number_id=row.id, line_id=task.line.id,
                       controller=self.controller_id, state=CallState.ENDED, phone=row.phone,
                       status=CallStatus.BLACKLISTED, originated_at=now, ended_at=now,
                       variables=dict(row.variables or {})))

    # -- live transitions and the final record --------------------------------------------

    def apply(self, changes: Iterable[CallRecord], finished: Iterable[CallRecord]) -> None:
        """Write a batch: the latest state of changed calls, then the final records (with
        their numbers settled) in the same transaction."""
        changes, finished = list(changes), list(finished)
        if not changes and not finished:
            return
        with self.sessions() as s:
            for rec in changes:
                s.execute(update(Call).where(Call.uuid == rec.plan.uuid)
                          .values(**self._live_fields(rec))
                          .execution_options(synchronize_session=False))
            for rec in finished:
                self._finish(s, rec)
            s.commit()

    @staticmethod
    def _live_fields(rec: CallRecord) -> dict:
        fields = {"state": rec.state, "ringing_at": _epoch_dt(rec.ringing_at),
                  "answered_at": _epoch_dt(rec.answered_at)}
        if rec.announcement:
            fields["announcement"] = rec.announcement
        return fields

    def _finish(self, s: Session, rec: CallRecord) -> None:
        plan = rec.plan
        call = s.scalar(select(Call).where(Call.uuid == plan.uuid))
        number = s.get(TaskNumber, plan.number_id)
        now = _epoch_dt(rec.ended_at) or datetime.now(UTC)
        if not rec.dialled:
            # Never sent: the attempt did not happen. Its number goes back to the queue.
            if call is not None:
                s.delete(call)
            if number is not None and number.state == NumberState.DIALLING:
                number.state = NumberState.PENDING
                number.attempts = max(0, number.attempts - 1)
            return
        if call is not None:
            o = rec.outcome
            call.state = CallState.ENDED
            call.status = rec.status if rec.status is not None or call.cdr is None \
                else call.status
            call.announcement = rec.announcement or call.announcement
            if o is not None:
                call.sip_code = o.sip_code
                call.hangup_cause = o.cause
                call.hangup_side = hangup_side(o.disposition, rec.hangup_requested)
                call.originated_at = _epoch_dt(o.start_epoch) or call.originated_at
                call.ringing_at = _epoch_dt(o.progress_epoch) or _epoch_dt(rec.ringing_at)
                call.answered_at = _epoch_dt(o.answer_epoch) or _epoch_dt(rec.answered_at)
                call.ended_at = _epoch_dt(o.end_epoch) or now
                call.talk_seconds = o.billsec
            else:
                call.hangup_cause = call.hangup_cause or rec.job_error
                call.ringing_at = call.ringing_at or _epoch_dt(rec.ringing_at)
                call.answered_at = call.answered_at or _epoch_dt(rec.answered_at)
                call.ended_at = call.ended_at or now
                if call.status is None and call.cdr is not None:
                    call.status = classify(call.sip_code, call.hangup_cause,
                                           call.answered_at is not None, call.announcement)
            ring_end = call.answered_at or call.ended_at
            if call.originated_at and ring_end:
                call.ring_seconds = max(0, round((ring_end - call.originated_at).total_seconds()))
            if call.answered_at is None:
                call.recording_path = None  # only answered calls are recorded
            status = call.status
        else:
            status = rec.status
        if number is not None and number.state == NumberState.DIALLING:
            rule = self._rule(s, plan.task_id)
            number.state, number.next_attempt_at = settle_number(status, number.attempts,
                                                                 rule, now)
            number.last_status = status
        if call is not None:
            queue_after_call(s, call)

    def _rule(self, s: Session, task_id: int) -> RedialRule:
        task = s.get(Task, task_id)
        if task is None:
            return RedialRule()
        return RedialRule(max(1, task.max_attempts or 1), frozenset(task.redial_statuses or ()),
                          task.redial_interval_s)

    # -- after a restart ------------------------------------------------------------------

    def unfinished(self) -> list[tuple[CallPlan, str | None]]:
        """This controller's calls that have not ended, with their last persisted state."""
        with self.sessions() as s:
            rows = s.execute(
                select(Call, Task, TaskNumber)
                .join(Task, Task.id == Call.task_id)
                .join(TaskNumber, TaskNumber.id == Call.task_number_id)
                .where(Call.controller == self.controller_id,
                       or_(Call.state.is_(None), Call.state != CallState.ENDED))).all()
            line_gw = {ln.id: ln.gateway for ln in s.scalars(select(Line))}
            out = []
            for call, task, number in rows:
                out.append((CallPlan(
                    uuid=call.uuid, node=call.fs_node or "", account_id=call.account_id,
                    task_id=task.id, number_id=number.id, line_id=call.line_id or 0,
                    phone=call.phone, gateway=line_gw.get(call.line_id, ""),
                    caller_id=call.caller_id, ring_timeout_s=task.ring_timeout_s,
                    max_call_s=task.max_call_s, recording_path=call.recording_path or "",
                    prompt=(task.dialogue_settings or {}).get("opening_prompt") or DEFAULT_PROMPT,
                    controller=self.controller_id), call.state))
            return out

    def reconcile_statuses(self) -> int:
        """Attempts that ended without an outcome (we missed the hang-up) get their status
        once the CDR (core/cdr.py) has filled in the SIP code and cause, and their number is
        settled again by the task's redial rule; the after-call rules run again with the
        status (rules on it could not match before; those already written are not written
        twice). Returns how many were settled."""
        with self.sessions() as s:
            rows = s.execute(
                select(Call, TaskNumber)
                .join(TaskNumber, TaskNumber.id == Call.task_number_id)
                .where(Call.controller == self.controller_id, Call.state == CallState.ENDED,
                       Call.cdr.is_not(None), TaskNumber.last_status.is_(None),
                       TaskNumber.state == NumberState.DONE)
                .order_by(Call.id.desc()).limit(500)).all()
            fixed = 0
            seen: set[int] = set()
            for call, number in rows:
                if number.id in seen:
                    continue  # only the number's latest attempt counts
                seen.add(number.id)
                status = call.status or classify(call.sip_code, call.hangup_cause,
                                                 call.answered_at is not None,
                                                 call.announcement)
                if status is None:
                    continue
                call.status = status
                number.last_status = status
                number.state, number.next_attempt_at = settle_number(
                    status, number.attempts, self._rule(s, number.task_id), datetime.now(UTC))
                queue_after_call(s, call)
                fixed += 1
            s.commit()
            return fixed

    def resolve_unconfirmed(self, older_than: datetime) -> int:
        """Attempts whose originate got no reply (the link dropped, or the switch was too
        slow) and that no CDR has confirmed since `older_than`: the switch never ran them.
        Their rows go and their numbers return to the queue. Returns how many."""
        with self.sessions() as s:
            rows = s.execute(
                select(Call, TaskNumber)
                .join(TaskNumber, TaskNumber.id == Call.task_number_id)
                .where(Call.controller == self.controller_id, Call.state == CallState.ENDED,
                       Call.hangup_cause == UNCONFIRMED, Call.cdr.is_(None),
                       Call.answered_at.is_(None), Call.ended_at < older_than)
                .limit(500)).all()
            for call, number in rows:
                s.delete(call)
                if number.state == NumberState.DONE and number.last_status is None:
                    number.state = NumberState.PENDING
                    number.next_attempt_at = None
                    number.attempts = max(0, number.attempts - 1)
            s.commit()
            return len(rows)
