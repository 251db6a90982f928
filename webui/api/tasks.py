"""Tasks: list, create, read, update, start, pause, and upload numbers."""

from __future__ import annotations

from flask import current_app, jsonify, request
from sqlalchemy import func

from core.enums import NumberState, Role, TaskState
from core.models import Task, TaskNumber
from core.phones import PhoneError, normalise
from core.redis_conn import publish_task_change
from core.task_rules import ValidationError
from core.task_service import TaskStateError, number_counts, pause_task, start_task
from webui.api import ApiError, bp, json_body, paged
from webui.api import serialise as ser
from webui.extensions import db
from webui.security import account_ids, actor, audit, require_role, select_visible
from webui.tasks.form import clean_for_account

MAX_NUMBERS_PER_REQUEST = 10_000


def _task_or_404(task_id: int) -> Task:
    task = db.session.scalar(select_visible(Task).where(Task.id == task_id))
    if task is None:
        raise ApiError(404, "not_found", f"task {task_id} not found")
    return task


def _clean(data: dict, account_id: int, partial: bool, task_id: int | None = None) -> dict:
    try:
        return clean_for_account(data, account_id, partial=partial, task_id=task_id)
    except ValidationError as exc:
        raise ApiError(422, "validation_error", "invalid task fields", exc.errors) from None


@bp.get("/tasks")
@require_role(Role.ADMIN, Role.STAFF)
def list_tasks():
    stmt = select_visible(Task).order_by(Task.id.desc())
    if state := request.args.get("state"):
        stmt = stmt.where(Task.state == state)
    return jsonify(paged(stmt, ser.task))


@bp.post("/tasks")
@require_role(Role.ADMIN, Role.STAFF)
def create_task():
    data = json_body()
    account_id = data.pop("account_id", None) or actor().account_id
    if account_id not in account_ids():
        raise ApiError(422, "validation_error", "invalid account", {"account_id": "无权限"})
    task = Task(account_id=account_id, created_by_id=actor().id,
                **_clean(data, account_id, partial=False))
    db.session.add(task)
    db.session.flush()
    audit("task_create", task)
    db.session.commit()
    return jsonify(ser.task(task, {})), 201


@bp.get("/tasks/<int:task_id>")
@require_role(Role.ADMIN, Role.STAFF)
def read_task(task_id: int):
    task = _task_or_404(task_id)
    return jsonify(ser.task(task, number_counts(db.session, [task.id])[task.id]))


@bp.patch("/tasks/<int:task_id>")
@require_role(Role.ADMIN, Role.STAFF)
def update_task(task_id: int):
    task = _task_or_404(task_id)
    cleaned = _clean(json_body(), task.account_id, partial=True, task_id=task.id)
    if task.state == TaskState.RUNNING and cleaned.get("max_concurrency", 0) > task.max_concurrency:
        raise ApiError(409, "conflict", "pause the task before raising its concurrency")
    for key, value in cleaned.items():
        setattr(task, key, value)
    audit("task_update", task, fields=sorted(cleaned))
    db.session.commit()
    publish_task_change(current_app.extensions["redis"], task.id, task.state)
    return jsonify(ser.task(task))


def _change_state(task_id: int, change) -> tuple:
    task = _task_or_404(task_id)
    try:
        change(db.session, task)
    except TaskStateError as exc:
        db.session.rollback()
        raise ApiError(409, "conflict", str(exc)) from None
    audit(f"task_{change.__name__}", task)
    db.session.commit()
    publish_task_change(current_app.extensions["redis"], task.id, task.state)
    return jsonify(ser.task(task)), 200


@bp.post("/tasks/<int:task_id>/start")
@require_role(Role.ADMIN, Role.STAFF)
def start(task_id: int):
    return _change_state(task_id, start_task)


@bp.post("/tasks/<int:task_id>/pause")
@require_role(Role.ADMIN, Role.STAFF)
def pause(task_id: int):
    return _change_state(task_id, pause_task)


@bp.post("/tasks/<int:task_id>/numbers")
@require_role(Role.ADMIN, Role.STAFF)
def upload_numbers(task_id: int):
    """Add numbers: ["138…", {"phone": "139…", "variables": {…}}, …]. Bad entries are
    reported by index and nothing is added unless `partial` is true."""
    task = _task_or_404(task_id)
    data = json_body()
    entries = data.get("numbers")
    if not isinstance(entries, list) or not entries:
        raise ApiError(400, "bad_request", "numbers: expected a non-empty list")
    if len(entries) > MAX_NUMBERS_PER_REQUEST:
        raise ApiError(413, "too_large",
                       f"at most {MAX_NUMBERS_PER_REQUEST} numbers per request")
    existing = set(db.session.scalars(
        db.select(TaskNumber.phone).where(TaskNumber.task_id == task.id)))
    rejected, duplicates, rows = [], [], []
    for index, entry in enumerate(entries):
        raw, variables = (entry.get("phone"), entry.get("variables") or {}) \
            if isinstance(entry, dict) else (entry, {})
        try:
            if not isinstance(variables, dict):
                raise PhoneError("variables 应为对象")
            phone = normalise(raw if raw is not None else "")
        except PhoneError as exc:
            rejected.append({"index": index, "phone": raw, "reason": str(exc)})
            continue
        if phone in existing:
            duplicates.append({"index": index, "phone": raw})
            continue
        existing.add(phone)
        rows.append((phone, str(raw), variables))
    if rejected and not data.get("partial"):
        raise ApiError(422, "validation_error", f"{len(rejected)} invalid numbers; nothing added",
                       {"numbers": rejected})
    start = (db.session.scalar(db.select(func.max(TaskNumber.position))
                               .where(TaskNumber.task_id == task.id)) or 0) + 1
    db.session.add_all(
        TaskNumber(account_id=task.account_id, task_id=task.id, phone=phone, raw_phone=raw,
                   variables=variables, state=NumberState.PENDING, position=start + i)
        for i, (phone, raw, variables) in enumerate(rows))
    audit("numbers_add", task, added=len(rows))
    db.session.commit()
    return jsonify({"added": len(rows), "duplicates": duplicates, "rejected": rejected}), 201
