"""AI外呼 (FEATURES.md T1, T2, T5, T8): the tasks list with live progress, the task form,
copy and delete, start / pause (one or all), redial, task and call-time templates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select

from core import clock
from core.enums import CallStatus, Direction, Grade, Role, TaskEndAction, TaskState
from core.models import (
    BlacklistGroup,
    CallTimeTemplate,
    LeadAllocationRule,
    Line,
    Script,
    ScriptPrompt,
    Task,
    TaskTemplate,
    TransferGroup,
)
from core.redis_conn import publish_task_change
from core.task_rules import (
    ASR_KINDS,
    CALL_INTERVALS,
    CALL_TIME_PRESETS,
    DEFAULT_WEEKLY,
    DIALOGUE_LIMITS,
    WEEKDAYS,
    ValidationError,
)
from core.task_service import (
    TaskStateError,
    call_counts,
    copy_task,
    delete_task,
    line_check,
    number_counts,
    pause_task,
    redial,
    start_task,
    task_config,
)
from core.transfer import DEFAULT_CLOSING
from webui import labels
from webui.extensions import db
from webui.security import actor, audit, get_visible_or_404, require_role, select_visible
from webui.tasks import form as task_form

bp = Blueprint("tasks", __name__)
PER_PAGE = 20
REDIAL_STATUSES = [s for s in CallStatus if s != CallStatus.ANSWERED]


@bp.before_request
@login_required
@require_role(Role.ADMIN, Role.STAFF)
def _staff_only():
    """Administrators and staff run tasks."""


@dataclass(frozen=True)
class Link:
    url: str
    icon: str
    label: str


def _task_links(task: Task) -> list[Link]:
    """A task's pages kept by other blueprints, for its row menu."""
    return [Link(url_for("numbers.import_task", task_id=task.id), "upload", _("Import numbers")),
            Link(url_for("numbers.index", task_id=task.id), "telephone", _("Numbers")),
            Link(url_for("records.index", task=task.id), "journal-text", _("Call records")),
            Link(url_for("after_call.rules", task_id=task.id), "lightning",
                 _("Post-call rules"))]


@bp.context_processor
def _links():
    return {"task_links": _task_links, "task_list_links": [
        Link(url_for("numbers.import_multi"), "upload", _("Multi-task import"))]}


def _publish(task: Task) -> None:
    publish_task_change(current_app.extensions["redis"], task.id, task.state)


def _stats(tasks: list[Task]) -> dict[int, dict]:
    """Per task: numbers by state, calls and the connect rate (接通率)."""
    ids = [t.id for t in tasks]
    numbers, calls = number_counts(db.session, ids), call_counts(db.session, ids)
    out = {}
    for tid in ids:
        total = sum(numbers[tid].values())
        left = numbers[tid].get("pending", 0) + numbers[tid].get("dialling", 0)
        c = calls[tid]
        out[tid] = {"numbers": total, "pending": left, "done": total - left,
                    "progress": round((total - left) * 100 / total) if total else 0,
                    "calls": c["calls"], "answered": c["answered"],
                    "connect_rate": round(c["answered"] * 100 / c["calls"], 1)
                    if c["calls"] else None}
    return out


@bp.get("/tasks")
def index():
    stmt = select_visible(Task).order_by(Task.id.desc())
    q = request.args.get("q", "").strip()
    if q:
        stmt = stmt.where(Task.name.contains(q, autoescape=True))
    state = request.args.get("state", "")
    if state in set(TaskState):
        stmt = stmt.where(Task.state == state)
    page = db.paginate(stmt, per_page=PER_PAGE, error_out=False)
    templates = db.session.scalars(select_visible(TaskTemplate).order_by(TaskTemplate.name))
    return render_template("tasks/index.html", page=page, stats=_stats(page.items), q=q,
                           state=state, states=list(TaskState), templates=list(templates),
                           redial_statuses=REDIAL_STATUSES)


@bp.get("/tasks/stats.json")
def stats():
    """The list's live figures, polled every few seconds by the page."""
    ids = [int(i) for i in request.args.get("ids", "").split(",") if i.isdigit()][:100]
    tasks = db.session.scalars(select_visible(Task).where(Task.id.in_(ids))).all()
    figures = _stats(list(tasks))
    return jsonify({str(t.id): {**figures[t.id], "state": t.state,
                                "state_label": str(labels.TASK_STATE[t.state])}
                    for t in tasks})


# -- the form -------------------------------------------------------------------------------

def _choices() -> dict:
    """What the form's selects offer: the caller's own account's rows."""
    def rows(model, order):
        return list(db.session.scalars(select_visible(model).order_by(order)))
    lines = rows(Line, Line.name)
    running = {}
    for line in lines:
        used = db.session.scalars(select(Task.max_concurrency).where(
            Task.line_id == line.id, Task.state == TaskState.RUNNING))
        running[line.id] = sum(used)
    return {
        "lines": lines, "line_used": running, "scripts": rows(Script, Script.name),
        "transfer_groups": rows(TransferGroup, TransferGroup.name),
        "blacklist_groups": rows(BlacklistGroup, BlacklistGroup.id),
        "lead_rules": rows(LeadAllocationRule, LeadAllocationRule.name),
        "call_time_templates": rows(CallTimeTemplate, CallTimeTemplate.name),
        "prompts": rows(ScriptPrompt, ScriptPrompt.label),
        "presets": CALL_TIME_PRESETS, "weekdays": WEEKDAYS, "intervals": CALL_INTERVALS,
        "redial_statuses": REDIAL_STATUSES, "grades": list(Grade),
        "dialogue_limits": DIALOGUE_LIMITS, "asr_kinds": ASR_KINDS,
        "directions": list(Direction), "default_closing": DEFAULT_CLOSING,
    }


def _new_values() -> dict:
    """A new task's form: the seed's defaults (today for a year, 早九晚六)."""
    today = clock.now().date()
    return {"name": "", "alias": "", "tags": [], "direction": Direction.OUTBOUND,
            "script_mode": "unified", "max_concurrency": 1, "call_interval_s": 0,
            "date_start": today, "date_end": today + timedelta(days=365),
            "weekly": DEFAULT_WEEKLY, "forbidden_ranges": [], "timed_scripts": [],
            "skip_holidays": True, "end_action": TaskEndAction.STOP, "max_attempts": 1,
            "redial_statuses": [], "redial_interval_s": 600, "ring_timeout_s": 40,
            "max_call_s": 600, "dialogue_settings": {}, "qc_rule": {},
            "lead_allocation": {}, "blacklist_group_ids": []}


def _values_of(task: Task) -> dict:
    values = {f: getattr(task, f) for f in ("name", "alias")} | task_config(task)
    values["date_start"], values["date_end"] = task.date_start, task.date_end
    return values


def _template_values(template: TaskTemplate) -> dict:
    values = _new_values() | dict(template.config or {})
    for field in ("date_start", "date_end"):
        if isinstance(values.get(field), str):
            values[field] = date.fromisoformat(values[field])
    values["name"] = ""
    values["alias"] = ""
    return values


def _render_form(values: dict, task: Task | None, errors: dict | None = None, status=200):
    return render_template("tasks/form.html", v=values, task=task, errors=errors or {},
                           **_choices()), status


def _save(task: Task | None):
    """Validate the posted form and create or update the task; re-show it on errors."""
    account_id = task.account_id if task else actor().account_id
    data, group_ids = task_form.parse(request.form, task.dialogue_settings if task else None)
    try:
        cleaned = task_form.clean_for_account(data, account_id,
                                              task_id=task.id if task else None)
    except ValidationError as exc:
        values = data | {"blacklist_group_ids": group_ids}
        flash(_("Please correct the fields marked below."), "danger")
        return _render_form(values, task, exc.errors, 422)
    groups = task_form.blacklist_groups(account_id, group_ids)
    creating = task is None
    if creating:
        task = Task(account_id=account_id, created_by_id=actor().id)
        db.session.add(task)
    for key, value in cleaned.items():
        setattr(task, key, value)
    task.blacklist_groups = groups
    db.session.flush()
    if task.state == TaskState.RUNNING:
        line = db.session.get(Line, task.line_id) if task.line_id else None
        check = line_check(db.session, line, task) if line else None
        if check is None or not check.ok:
            db.session.rollback()
            message = check.message if check else "运行中的任务必须有线路"
            flash(message, "danger")
            return _render_form(data | {"blacklist_group_ids": group_ids}, task,
                                {"max_concurrency": message}, 409)
    if name := request.form.get("save_call_time_as", "").strip():
        db.session.add(CallTimeTemplate(account_id=account_id, name=name[:64],
                                        weekly=task.weekly))
    audit("task_create" if creating else "task_update", task)
    db.session.commit()
    _publish(task)
    flash(_("Task %(name)s saved.", name=task.name), "success")
    return redirect(url_for("tasks.index"))


@bp.route("/tasks/new", methods=["GET", "POST"])
def new():
    if request.method == "POST":
        return _save(None)
    values = _new_values()
    if template_id := request.args.get("template", type=int):
        values = _template_values(get_visible_or_404(TaskTemplate, template_id))
    return _render_form(values, None)


@bp.route("/tasks/<int:task_id>/edit", methods=["GET", "POST"])
def edit(task_id: int):
    task = get_visible_or_404(Task, task_id)
    if request.method == "POST":
        return _save(task)
    return _render_form(_values_of(task), task)


# -- actions --------------------------------------------------------------------------------

def _back():
    return redirect(request.form.get("next") or url_for("tasks.index"))


@bp.post("/tasks/<int:task_id>/<any(start, pause):action>")
def action(task_id: int, action: str):
    task = get_visible_or_404(Task, task_id)
    try:
        (start_task if action == "start" else pause_task)(db.session, task)
    except TaskStateError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return _back()
    audit(f"task_{action}", task)
    db.session.commit()
    _publish(task)
    flash(_("Task %(name)s: %(state)s", name=task.name, state=labels.TASK_STATE[task.state]),
          "success")
    return _back()


@bp.post("/tasks/<any(start, pause):action>-all")
def action_all(action: str):
    """一键开启 / 一键暂停: every visible task that can change; a task that cannot start
    (no line, 并发不足) is named and the others still start."""
    wanted = (TaskState.DRAFT, TaskState.PAUSED) if action == "start" else (TaskState.RUNNING,)
    tasks = db.session.scalars(select_visible(Task).where(Task.state.in_(wanted))
                               .order_by(Task.id)).all()
    changed, refused = [], []
    for task in tasks:
        try:  # both check before they change anything: nothing to undo on refusal
            (start_task if action == "start" else pause_task)(db.session, task)
        except TaskStateError as exc:
            refused.append(f"{task.name}：{exc}")
            continue
        audit(f"task_{action}", task)
        changed.append(task)
    db.session.commit()
    for task in changed:
        _publish(task)
    flash(_("%(n)d task(s) changed.", n=len(changed)), "success" if changed else "info")
    for line in refused:
        flash(line, "danger")
    return _back()


@bp.post("/tasks/<int:task_id>/copy")
def copy(task_id: int):
    task = get_visible_or_404(Task, task_id)
    name = _("%(name)s (copy)", name=task.name)[:120]
    new_task = copy_task(db.session, task, name, actor().id)
    audit("task_copy", new_task, source=task.id)
    db.session.commit()
    flash(_("Task copied: %(name)s. Its numbers were not copied.", name=new_task.name),
          "success")
    return redirect(url_for("tasks.edit", task_id=new_task.id))


@bp.post("/tasks/<int:task_id>/delete")
def delete(task_id: int):
    task = get_visible_or_404(Task, task_id)
    try:
        delete_task(db.session, task)
    except TaskStateError as exc:
        flash(str(exc), "danger")
        return _back()
    audit("task_delete", None, task_id=task.id, name=task.name)
    db.session.commit()
    flash(_("Task %(name)s deleted; its call records are kept.", name=task.name), "success")
    return redirect(url_for("tasks.index"))


@bp.post("/tasks/<int:task_id>/redial")
def redial_numbers(task_id: int):
    task = get_visible_or_404(Task, task_id)
    try:
        count = redial(db.session, task, request.form.getlist("statuses"))
    except TaskStateError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return _back()
    audit("task_redial", task, statuses=request.form.getlist("statuses"), numbers=count)
    db.session.commit()
    _publish(task)
    flash(_("%(n)d number(s) queued again; start the task to call them.", n=count),
          "success" if count else "info")
    return _back()


# -- templates (T8) -------------------------------------------------------------------------

@bp.post("/tasks/<int:task_id>/template")
def save_template(task_id: int):
    task = get_visible_or_404(Task, task_id)
    name = request.form.get("name", "").strip()[:120] or task.name
    template = TaskTemplate(account_id=task.account_id, name=name, config=task_config(task))
    db.session.add(template)
    audit("task_template_create", template, source=task.id)
    db.session.commit()
    flash(_("Template %(name)s saved: create tasks from it with “New from template”.",
            name=name), "success")
    return _back()


@bp.post("/tasks/templates/<int:template_id>/delete")
def delete_template(template_id: int):
    template = get_visible_or_404(TaskTemplate, template_id)
    db.session.delete(template)
    audit("task_template_delete", None, template_id=template_id)
    db.session.commit()
    flash(_("Template %(name)s deleted.", name=template.name), "success")
    return _back()


@bp.post("/tasks/call-times/<int:template_id>/delete")
def delete_call_time(template_id: int):
    template = get_visible_or_404(CallTimeTemplate, template_id)
    db.session.delete(template)
    db.session.commit()
    flash(_("Call time %(name)s deleted.", name=template.name), "success")
    return _back()
