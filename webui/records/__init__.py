"""通话记录 (FEATURES.md R1, R4): the call records list with its filters, and exports."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_login import login_required

from core.enums import CallStatus, Grade, Role
from core.models import Call
from webui.extensions import db
from webui.security import require_role, select_visible

bp = Blueprint("records", __name__)
PER_PAGE = 20


@bp.before_request
@login_required
@require_role(Role.ADMIN, Role.STAFF)
def _staff_only():
    """Administrators and staff read call records."""


@bp.get("/calls")
def index():
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
    return render_template("records/index.html", page=page, filters=filters,
                           statuses=list(CallStatus), grades=list(Grade))
