"""Task state changes shared by the console and the API. The caller commits and then
publishes the change (core.redis_conn.publish_task_change) so controllers react."""

from __future__ import annotations

from datetime import date

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from core import clock
from core.enums import CallStatus, NumberState, TaskState
from core.models import BlacklistGroup, Call, Line, Task, TaskNumber
from core.task_rules import FIELDS, check_line_capacity

# What a copy or a task template (T8) carries over: every setting but the task's own name
# and alias, plus its blacklist groups.
CONFIG_FIELDS = tuple(f for f in FIELDS if f not in ("name", "alias"))


class TaskStateError(Exception):
    """The change is not allowed now; the message (Chinese) says why."""


def start_task(session: Session, task: Task) -> None:
    """Move a draft or paused task to running, if its line has room for its concurrency (T2)."""
    if task.state == TaskState.RUNNING:
        return
    if task.state == TaskState.FINISHED:
        raise TaskStateError("任务已结束，不能再启动")
    if task.line_id is None:
        raise TaskStateError("请先为任务选择线路")
    line = session.get(Line, task.line_id, with_for_update=True)  # vs. a concurrent edit
    if line is None or line.account_id != task.account_id or not line.enabled:
        raise TaskStateError("任务的线路不可用")
    check = line_check(session, line, task)
    if not check.ok:
        raise TaskStateError(check.message)
    task.state = TaskState.RUNNING
    task.started_at = task.started_at or clock.now()


def pause_task(session: Session, task: Task) -> None:
    if task.state == TaskState.FINISHED:
        raise TaskStateError("任务已结束")
    task.state = TaskState.PAUSED


def number_counts(session: Session, task_ids: list[int]) -> dict[int, dict[str, int]]:
    """{task_id: {state: count}} for the given tasks, in one query."""
    counts: dict[int, dict[str, int]] = {tid: {} for tid in task_ids}
    rows = session.execute(
        select(TaskNumber.task_id, TaskNumber.state, func.count())
        .where(TaskNumber.task_id.in_(task_ids))
        .group_by(TaskNumber.task_id, TaskNumber.state))
    for task_id, state, n in rows:
        counts[task_id][state] = n
    return counts


def line_check(session: Session, line: Line, task: Task):
    """T2 for `task` on `line`: the other running tasks' concurrency plus the task's own."""
    running = session.scalars(
        select(Task.max_concurrency).where(
            Task.line_id == line.id, Task.state == TaskState.RUNNING, Task.id != task.id)
        .with_for_update())
    return check_line_capacity(line.max_concurrency, running, task.max_concurrency)


def call_counts(session: Session, task_ids: list[int]) -> dict[int, dict[str, int]]:
    """{task_id: {"calls": n, "answered": n}} — the list's live connect rate, one query on
    the (task_id, status) index."""
    counts = {tid: {"calls": 0, "answered": 0} for tid in task_ids}
    rows = session.execute(
        select(Call.task_id, func.count(),
               func.sum(case((Call.status == CallStatus.ANSWERED, 1), else_=0)))
        .where(Call.task_id.in_(task_ids), Call.status.is_not(None))
        .group_by(Call.task_id))
    for task_id, calls, answered in rows:
        counts[task_id] = {"calls": calls, "answered": int(answered or 0)}
    return counts


def task_config(task: Task) -> dict:
    """The task's settings as JSON (dates as ISO text) for a copy or a template."""
    config = {}
    for field in CONFIG_FIELDS:
        value = getattr(task, field)
        config[field] = value.isoformat() if isinstance(value, date) else value
    config["blacklist_group_ids"] = [g.id for g in task.blacklist_groups]
    return config


def copy_task(session: Session, task: Task, name: str, created_by_id: int | None) -> Task:
    """A new, not started task with `task`'s settings and none of its numbers (T1 复制)."""
    config = task_config(task)
    group_ids = config.pop("blacklist_group_ids")
    for field in ("date_start", "date_end"):
        config[field] = getattr(task, field)
    copy = Task(account_id=task.account_id, name=name, created_by_id=created_by_id, **config)
    copy.blacklist_groups = list(session.scalars(select(BlacklistGroup).where(
        BlacklistGroup.id.in_(group_ids), BlacklistGroup.account_id == task.account_id)))
    session.add(copy)
    session.flush()
    return copy


def delete_task(session: Session, task: Task) -> None:
    """Delete a task that is not running; its numbers go with it, its call records stay."""
    if task.state == TaskState.RUNNING:
        raise TaskStateError("运行中的任务不能删除，请先暂停")
    session.delete(task)


def redial(session: Session, task: Task, statuses: list[str]) -> int:
    """重呼 (T5): put the task's dialled numbers whose last call ended in one of `statuses`
    back in the queue, at once; a finished task becomes paused so it can be started again.
    Returns how many numbers were requeued."""
    wanted = [s for s in statuses if s in set(CallStatus)]
    if not wanted:
        raise TaskStateError("请选择要重呼的呼叫状态")
    if task.state == TaskState.RUNNING:
        raise TaskStateError("请先暂停任务再重呼")
    result = session.execute(
        update(TaskNumber)
        .where(TaskNumber.task_id == task.id, TaskNumber.state == NumberState.DONE,
               TaskNumber.last_status.in_(wanted))
        .values(state=NumberState.PENDING, next_attempt_at=None)
        .execution_options(synchronize_session=False))
    if result.rowcount and task.state == TaskState.FINISHED:
        task.state, task.finished_at = TaskState.PAUSED, None
    return result.rowcount
