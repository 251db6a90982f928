"""Task state changes shared by the console and the API. The caller commits and then
publishes the change (core.redis_conn.publish_task_change) so controllers react."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import clock
from core.enums import TaskState
from core.models import Line, Task, TaskNumber
from core.task_rules import check_line_capacity


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
    line = session.get(Line, task.line_id)
    if line is None or line.account_id != task.account_id or not line.enabled:
        raise TaskStateError("任务的线路不可用")
    running = session.scalars(
        select(Task.max_concurrency).where(
            Task.line_id == line.id, Task.state == TaskState.RUNNING, Task.id != task.id)
        .with_for_update())
    check = check_line_capacity(line.max_concurrency, running, task.max_concurrency)
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
