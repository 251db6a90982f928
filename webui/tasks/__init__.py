"""AI外呼 (FEATURES.md T1, T2, T5, T8): the tasks list, the task form, start / pause, redial
and task templates."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from core.enums import Role
from core.models import Task
from core.redis_conn import publish_task_change
from core.task_service import TaskStateError, number_counts, pause_task, start_task
from webui import labels
from webui.extensions import db
from webui.security import audit, get_visible_or_404, require_role, select_visible

bp = Blueprint("tasks", __name__)
PER_PAGE = 20


@bp.before_request
@login_required
@require_role(Role.ADMIN, Role.STAFF)
def _staff_only():
    """Administrators and staff run tasks."""


@bp.get("/tasks")
def index():
    stmt = select_visible(Task).order_by(Task.id.desc())
    if q := request.args.get("q", "").strip():
        stmt = stmt.where(Task.name.contains(q, autoescape=True))
    page = db.paginate(stmt, per_page=PER_PAGE, error_out=False)
    counts = number_counts(db.session, [t.id for t in page.items])
    return render_template("tasks/index.html", page=page, counts=counts, q=q)


@bp.post("/tasks/<int:task_id>/<any(start, pause):action>")
def action(task_id: int, action: str):
    task = get_visible_or_404(Task, task_id)
    try:
        (start_task if action == "start" else pause_task)(db.session, task)
    except TaskStateError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(url_for("tasks.index"))
    audit(f"task_{action}", task)
    db.session.commit()
    publish_task_change(current_app.extensions["redis"], task.id, task.state)
    flash(_("Task %(name)s: %(state)s", name=task.name, state=labels.TASK_STATE[task.state]),
          "success")
    return redirect(url_for("tasks.index"))
