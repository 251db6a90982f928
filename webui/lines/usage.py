"""Reads about lines: the tasks and transfer groups that use them, the lines a gateway name
or DID could collide with, and the live calls the controllers hold on them (Redis)."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable

import redis
from sqlalchemy import func, or_, select

from core.enums import TaskState
from core.models import Line, Task, TransferGroup
from core.pacing import LineSlots
from webui.extensions import db
from webui.lines.rules import did_key

log = logging.getLogger(__name__)


def running_tasks(line_ids: Iterable[int]) -> dict[int, list[Task]]:
    """{line_id: its running tasks}. Every account's: they all take the line's concurrency."""
    by_line: dict[int, list[Task]] = defaultdict(list)
    for task in db.session.scalars(select(Task).where(
            Task.line_id.in_(list(line_ids)), Task.state == TaskState.RUNNING)
            .order_by(Task.id)):
        by_line[task.line_id].append(task)
    return by_line


def users_of(line: Line) -> tuple[list[Task], list[TransferGroup]]:
    """Tasks (any state) and transfer groups (remote strategy) that name `line`."""
    tasks = db.session.scalars(select(Task).where(Task.line_id == line.id)
                               .order_by(Task.id)).all()
    groups = db.session.scalars(select(TransferGroup).where(
        TransferGroup.remote_line_id == line.id).order_by(TransferGroup.id)).all()
    return list(tasks), list(groups)


def possible_clashes(line: Line) -> list[Line]:
    """Lines of every account with the same gateway name or inbound number as `line`:
    accounts share the nodes, so these names are global (rules.py decides which clash)."""
    same = [func.lower(Line.gateway) == line.gateway.lower()]
    if key := did_key(line.inbound_did):
        same.append(Line.inbound_did.in_([key, f"+{key}"]))
    return list(db.session.scalars(select(Line).where(or_(*same)).order_by(Line.id)))


def live_calls(conn: redis.Redis, line_ids: Iterable[int]) -> dict[int, int] | None:
    """{line_id: calls now holding one of its slots} from the controllers' leases; None when
    Redis does not answer (the page then shows no number rather than a wrong one)."""
    slots = LineSlots(conn)
    try:
        return {line_id: slots.line_count(line_id) for line_id in line_ids}
    except redis.RedisError as exc:
        log.warning("live calls per line unavailable: %s", exc)
        return None
