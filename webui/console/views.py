"""Call-centre pages of the console shell: tasks, call records, notifications."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from core.enums import CallStatus, Grade, Role
from core.models import Call, Notification, Task
from core.redis_conn import publish_task_change
from core.task_service import TaskStateError, number_counts, pause_task, start_task
from webui import labels
from webui.extensions import db
from webui.security import actor, audit, get_visible_or_404, require_role, select_visible

bp = Blueprint("console", __name__)
PER_PAGE = 20


@bp.before_request
@login_required
def _login():
    """Every page of this blueprint needs a logged-in user."""


@bp.get("/")
def home():
    if actor().role == Role.AGENT:
        return redirect(url_for("auth.password"))
    return redirect(url_for("console.tasks"))


@bp.get("/tasks")
@require_role(Role.ADMIN, Role.STAFF)
def tasks():
    stmt = select_visible(Task).order_by(Task.id.desc())
    if q := request.args.get("q", "").strip():
        stmt = stmt.where(Task.name.contains(q, autoescape=True))
    page = db.paginate(stmt, per_page=PER_PAGE, error_out=False)
    counts = number_counts(db.session, [t.id for t in page.items])
    return render_template("console/tasks.html", page=page, counts=counts, q=q)


@bp.post("/tasks/<int:task_id>/<any(start, pause):action>")
@require_role(Role.ADMIN, Role.STAFF)
def task_action(task_id: int, action: str):
    task = get_visible_or_404(Task, task_id)
    try:
        (start_task if action == "start" else pause_task)(db.session, task)
    except TaskStateError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(url_for("console.tasks"))
    audit(f"task_{action}", task)
    db.session.commit()
    publish_task_change(current_app.extensions["redis"], task.id, task.state)
    flash(_("Task %(name)s: %(state)s", name=task.name, state=labels.TASK_STATE[task.state]),
          "success")
    return redirect(url_for("console.tasks"))


@bp.get("/calls")
@require_role(Role.ADMIN, Role.STAFF)
def calls():
    stmt = select_visible(Call).order_by(Call.created_at.desc(), Call.id.desc())
    filters = {k: request.args.get(k, "").strip() for k in ("phone", "status", "grade", "task")}
    if filters["phone"]:
        stmt = stmt.where(Call.phone.contains(filters["phone"], autoescape=True))
    if filters["status"] in set(CallStatus):
        stmt = stmt.where(Call.status == filters["status"])
    if filters["grade"] in set(Grade):
        stmt = stmt.where(Call.grade == filters["grade"])
    if filters["task"].isdigit():
        stmt = stmt.where(Call.task_id == int(filters["task"]))
    page = db.paginate(stmt, per_page=PER_PAGE, error_out=False, count=True)
    return render_template("console/calls.html", page=page, filters=filters,
                           statuses=list(CallStatus), grades=list(Grade))


@bp.get("/notifications")
def notifications():
    stmt = select_visible(Notification).where(Notification.user_id == actor().id) \
        .order_by(Notification.created_at.desc())
    page = db.paginate(stmt, per_page=PER_PAGE, error_out=False)
    return render_template("console/notifications.html", page=page)
