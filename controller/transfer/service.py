"""The database side of a transfer, for the call runtime: read the call's task and group,
build the screen pop, run the transfer, store Call.transfer and pause the task when asked.

    result = transfer_call(Session, link, events, presence, conn, call_uuid,
                           trigger=Trigger.SCRIPT, mask="middle")
    if not result.ok: the dialogue runs result.fallback (closing line, or the AI dialogue)

Sessions are short: one to read, one to write; none is held while agents ring.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.transfer.events import EslEvents
from controller.transfer.load import load_group_spec
from controller.transfer.runner import TransferResult, run_transfer
from controller.transfer.screen_pop import publisher
from core import clock as core_clock
from core import transfer as rules
from core.enums import TaskState
from core.models import Call, DialogueTurn, Lead, Task, TaskNumber
from core.presence import Presence
from core.redis_conn import publish_task_change
from core.transfer import FailReason, TransferState, Trigger

log = logging.getLogger(__name__)


def build_screen_pop(session: Session, call: Call, task: Task | None, mask: str,
                     so_far: dict | None = None) -> dict:
    """The screen pop of `call`: masked number, imported variables, CRM lead, transcript,
    grade and tags. `so_far` is a dialogue still running ({"transcript", "grade", "tags"}:
    its turns are saved only when it ends); without it they are read from the call's rows."""
    variables = dict(call.variables or {})
    if call.task_number_id:
        number = session.get(TaskNumber, call.task_number_id)
        if number is not None:
            variables = {**(number.variables or {}), **variables}
    lead = session.scalar(select(Lead).where(Lead.account_id == call.account_id,
                                             Lead.phone == call.phone))
    crm = None
    if lead is not None:
        crm = {k: v for k, v in (("name", lead.name), ("grade", lead.grade),
                                 ("source", lead.source)) if v}
    if so_far is not None:
        transcript, grade = so_far.get("transcript") or [], so_far.get("grade") or call.grade
        tags = list(dict.fromkeys([*(call.tags or []), *(so_far.get("tags") or [])]))
    else:
        turns = session.scalars(select(DialogueTurn).where(DialogueTurn.call_id == call.id)
                                .order_by(DialogueTurn.seq)).all()
        transcript = [{"speaker": t.speaker, "text": t.text} for t in turns]
        grade, tags = call.grade, call.tags or []
    return rules.screen_pop(
        call_uuid=call.uuid, call_id=call.id, phone=call.phone, mask=mask,
        variables=variables, crm=crm, transcript=transcript, grade=grade, tags=tags,
        task_name=task.name if task else "")


def transfer_call(session_factory: Callable[[], Session], link, events: EslEvents | None,
                  presence: Presence, conn: redis.Redis, call_uuid: str, *,
                  trigger: Trigger = Trigger.SCRIPT, mask: str = "middle",
                  group_id: int | None = None, caller_id: str | None = None,
                  extra_vars: dict | None = None, so_far: dict | None = None,
                  on_event: Callable[[dict], None] | None = None) -> TransferResult:
    """Transfer the call `call_uuid` (a Call row) to its task's group (or `group_id`).

    Returns the runner's result after storing it in Call.transfer (and Call.agent_id);
    pauses the task (and tells controllers) when 转人工全忙暂停 applies. A call with no
    group fails at once with reason no_members. `so_far`: the running dialogue for the
    screen pop (build_screen_pop).
    """
    with session_factory() as session:
        call = session.scalar(select(Call).where(Call.uuid == call_uuid))
        if call is None:
            raise LookupError(f"no call {call_uuid}")
        task = session.get(Task, call.task_id) if call.task_id else None
        gid = group_id or (task.transfer_group_id if task else None)
        group = load_group_spec(session, gid) if gid else None
        pop = build_screen_pop(session, call, task, mask, so_far)
        flags = {"predictive_busy_to_ai": bool(task and task.predictive_busy_to_ai),
                 "pause_when_agents_busy": bool(task and task.pause_when_agents_busy)}
    if group is None:
        group = rules.TransferGroupSpec(id=0, name="", strategy=rules.TransferStrategy.ORDER)
        result = TransferResult(
            TransferState.FAILED, reason=FailReason.NO_MEMBERS,
            fallback=rules.fallback(trigger, flags["predictive_busy_to_ai"]))
        result.record = rules.record(TransferState.FAILED, trigger=trigger, group=group,
                                     target=None, reason=FailReason.NO_MEMBERS, tries=[],
                                     fallback_to=result.fallback)
    else:
        result = run_transfer(link, call_uuid, group, presence, core_clock.now,
                              publisher(conn, pop, also=on_event), events=events,
                              trigger=trigger, caller_id=caller_id, extra_vars=extra_vars,
                              **flags)
    with session_factory() as session:
        call = session.scalar(select(Call).where(Call.uuid == call_uuid))
        call.transfer = result.record
        if result.ok and result.target is not None and result.target.user_id is not None:
            call.agent_id = result.target.user_id
        task = session.get(Task, call.task_id) if call.task_id else None
        paused = False
        if result.pause_task and task is not None and task.state == TaskState.RUNNING:
            task.state = TaskState.PAUSED
            paused = True
        session.commit()
        if paused:
            log.info("task %s paused: all agents busy (转人工全忙暂停)", task.id)
            publish_task_change(conn, task.id, str(TaskState.PAUSED))
    return result
