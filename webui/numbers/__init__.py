"""电话号码 (FEATURES.md T6): a task's numbers and where each one stands, filtered by number,
created and called time, region, carrier, call status and state; and 导入号码 (T3, in
webui.numbers.imports)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, render_template, request
from flask_babel import lazy_gettext as _l
from flask_login import login_required

from core.enums import CallStatus, NumberState, Role
from core.models import Task, TaskNumber
from core.phones import PhoneError, normalise
from webui.extensions import db
from webui.security import actor, get_visible_or_404, require_role, select_visible

bp = Blueprint("numbers", __name__)
PER_PAGE = 50
NEVER_CALLED = "none"  # the call-status filter's value for numbers not called yet
NUMBER_STATE = {
    NumberState.PENDING: _l("Pending"),
    NumberState.DIALLING: _l("Dialling now"),
    NumberState.DONE: _l("Called"),
    NumberState.SKIPPED: _l("Skipped"),
}
# The carrier names core.phone_info stores (phonenumbers' Chinese data).
CARRIER = {"中国移动": _l("China Mobile"), "中国联通": _l("China Unicom"),
           "中国电信": _l("China Telecom"), "中国广电": _l("China Broadnet")}


@bp.before_request
@login_required
@require_role(Role.ADMIN, Role.STAFF)
def _staff_only():
    """Administrators and staff manage tasks' numbers."""


def time_bound(text: str, zone: ZoneInfo, end: bool = False) -> datetime | None:
    """A form's local "2026-05-01" or "2026-05-01T09:30" as an aware time: its start, or
    with `end` the start of the next day (minute), so that the range includes it. None when
    empty or not a time."""
    for fmt, step in (("%Y-%m-%dT%H:%M", timedelta(minutes=1)), ("%Y-%m-%d", timedelta(days=1))):
        try:
            value = datetime.strptime(text.strip(), fmt).replace(tzinfo=zone)
        except ValueError:
            continue
        return value + step if end else value
    return None


def filtered(task_id: int, args, zone: ZoneInfo):
    """The task's numbers matching the filter `args`, in dialling order. A full number
    matches exactly (indexed); part of one matches anywhere in it."""
    stmt = select_visible(TaskNumber).where(TaskNumber.task_id == task_id)
    if phone := args.get("phone", "").strip():
        try:
            stmt = stmt.where(TaskNumber.phone == normalise(phone))
        except PhoneError:
            stmt = stmt.where(TaskNumber.phone.contains(phone, autoescape=True))
    for column, prefix in ((TaskNumber.created_at, "created"),
                           (TaskNumber.last_called_at, "called")):
        if since := time_bound(args.get(f"{prefix}_from", ""), zone):
            stmt = stmt.where(column >= since)
        if until := time_bound(args.get(f"{prefix}_to", ""), zone, end=True):
            stmt = stmt.where(column < until)
    if region := args.get("region", "").strip():
        stmt = stmt.where(TaskNumber.region.contains(region, autoescape=True))
    if (carrier := args.get("carrier")) in CARRIER:
        stmt = stmt.where(TaskNumber.carrier == carrier)
    status = args.get("status")
    if status == NEVER_CALLED:
        stmt = stmt.where(TaskNumber.last_status.is_(None))
    elif status in tuple(CallStatus):
        stmt = stmt.where(TaskNumber.last_status == status)
    if (state := args.get("state")) in tuple(NumberState):
        stmt = stmt.where(TaskNumber.state == state)
    return stmt.order_by(TaskNumber.position, TaskNumber.id)


@bp.get("/tasks/<int:task_id>/numbers")
def index(task_id: int):
    task = get_visible_or_404(Task, task_id)
    zone = ZoneInfo(actor().account.timezone)
    page = db.paginate(filtered(task.id, request.args, zone), per_page=PER_PAGE,
                       error_out=False)
    return render_template("numbers/index.html", task=task, page=page, args=request.args,
                           number_states=NUMBER_STATE, carriers=CARRIER,
                           never_called=NEVER_CALLED)


from webui.numbers import imports  # noqa: E402,F401  (routes)
