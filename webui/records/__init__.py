"""通话记录 (FEATURES.md R1, R4, R5): the call records list with its basic and advanced
filters, saved condition groups (条件组), the user's columns and page size, row quick
actions (blacklist, copy the number) and exports.

Every query starts from `select_visible(Call)`: a user sees their visible accounts' calls
only, whatever the filter says. The page's filter lives in its query string (webui.records.form);
the forms that act on it (save a group, export) carry it along in hidden fields.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from core import call_columns, call_query
from core.call_query import FilterError
from core.enums import CallStatus, Grade, HangupSide, Role
from core.models import BlacklistGroup, SavedFilter, Task
from webui import labels as shared_labels
from webui.extensions import db
from webui.records import form, labels, listing
from webui.records.export import start_export
from webui.security import require_role, select_visible

bp = Blueprint("records", __name__)
COLUMNS_PREF = "calls_columns"  # User.preferences keys
PAGE_SIZE_PREF = "calls_page_size"
PAGE_SIZES = (10, 20, 50, 100)
MIN_PAGE, MAX_PAGE, DEFAULT_PAGE = 10, 100, 20
SAVED_KIND = "calls"


@bp.before_request
@login_required
@require_role(Role.ADMIN, Role.STAFF)
def _staff_only():
    """Administrators and staff read call records."""


def _zone() -> ZoneInfo:
    return ZoneInfo(current_user.account.timezone)


def _prefs() -> dict:
    return current_user.preferences or {}


def page_size(raw) -> int:
    """A page size within 10–100 (the default, 20, for anything else)."""
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return DEFAULT_PAGE
    return value if MIN_PAGE <= value <= MAX_PAGE else DEFAULT_PAGE


def filter_args(values) -> dict[str, list[str]]:
    """The filter part of a request's arguments (query string or a form's hidden fields)."""
    return {n: values.getlist(n) for n in form.NAMES if any(v.strip() for v in values.getlist(n))}


def _back(values=None):
    return redirect(url_for("records.index", **filter_args(values or request.form)))


def _own_filter(filter_id: int) -> SavedFilter:
    row = db.session.scalar(select_visible(SavedFilter).where(
        SavedFilter.id == filter_id, SavedFilter.user_id == current_user.id,
        SavedFilter.kind == SAVED_KIND))
    if row is None:
        abort(404)
    return row


def _choices() -> dict:
    """The options of the filter form's lists."""
    tasks = db.session.execute(select_visible(Task).with_only_columns(Task.id, Task.name)
                               .order_by(Task.id.desc()).limit(500)).all()
    words = {
        "grades": [(g.value, shared_labels.GRADE[g]) for g in Grade],
        "statuses": [(s.value, shared_labels.CALL_STATUS[s]) for s in CallStatus],
        "hangup_sides": [(h.value, labels.HANGUP_SIDE[h]) for h in HangupSide],
        "transfer": labels.TRANSFER.items(), "push": labels.PUSH.items(),
        "sms": labels.SMS.items(), "genders": labels.GENDER.items(),
        "carriers": labels.CARRIER.items(),
    }
    # Translated once here: lazy strings translate again at every use in the template.
    return {"tasks": tasks, **{k: [(v, str(w)) for v, w in pairs] for k, pairs in words.items()}}


_SCOPE_NAMES = {n for a in form.SCOPE for n in a.names}
# Conditions outside the always-visible basic row open the advanced panel.
_ADVANCED_NAMES = {n for a in form.CONDITIONS for n in a.names
                   if a.field not in ("region", "tags", "grade")} | {"rel"}
_OUTCOMES = {"transfer": call_columns.transfer_outcome, "push": call_columns.push_outcome,
             "sms": call_columns.sms_outcome, "target": call_columns.target}


@bp.get("/calls")
def index():
    zone = _zone()
    columns = call_columns.chosen(_prefs().get(COLUMNS_PREF))
    per_page = page_size(request.args.get("per_page") or _prefs().get(PAGE_SIZE_PREF))
    ctx = call_columns.Context(zone=zone, labels=labels.value_words())
    error, result = None, None
    try:
        scope, conditions = form.parse(request.args, zone)
        where = call_query.where(form.combined(scope, conditions))
        result = listing.read_page(db.session, where, columns,
                                   max(1, request.args.get("page", 1, type=int)), per_page)
        call_columns.load_lookups(db.session, ctx, result.rows, columns)
    except FilterError as exc:
        error = str(exc)
    chosen_keys = [c.key for c in columns]
    saved = db.session.scalars(select_visible(SavedFilter).where(
        SavedFilter.user_id == current_user.id, SavedFilter.kind == SAVED_KIND)
        .order_by(SavedFilter.name)).all()
    groups = db.session.scalars(select_visible(BlacklistGroup)
                                .order_by(BlacklistGroup.id)).all()
    args = filter_args(request.args)
    html = render_template(
        "records/index.html", result=result, error=error, columns=columns, ctx=ctx,
        column_labels={k: str(v) for k, v in labels.COLUMNS.items()}, per_page=per_page,
        page_sizes=PAGE_SIZES, chosen_keys=chosen_keys,
        all_keys=chosen_keys + [c.key for c in call_columns.COLUMNS if c.key not in chosen_keys],
        saved=saved, blacklist_groups=groups, args=args,
        scope_args={n: v for n, v in args.items() if n in _SCOPE_NAMES},
        advanced=any(n in args for n in _ADVANCED_NAMES),
        is_admin=current_user.role == Role.ADMIN, outcome=_OUTCOMES, **_choices())
    return html, 400 if error else 200


@bp.post("/calls/preferences")
def save_preferences():
    """The user's columns, in the order given, and page size (kept in User.preferences)."""
    keys = [c.key for c in call_columns.chosen(request.form.getlist("columns"))]
    current_user.preferences = {**_prefs(), COLUMNS_PREF: keys,
                                PAGE_SIZE_PREF: page_size(request.form.get("per_page"))}
    db.session.commit()
    flash(_("Columns saved."), "success")
    return _back()


@bp.post("/calls/filters")
def save_filter():
    """Save the applied conditions (not the number, tasks or period) as a named group."""
    name = request.form.get("name", "").strip()[:64]
    try:
        _scope, conditions = form.parse(request.form, _zone())
    except FilterError as exc:
        flash(str(exc), "danger")
        return _back()
    if not name or not conditions.items:
        flash(_("Give the group a name and set at least one condition besides number, "
                "tasks and call time."), "danger")
        return _back()
    row = db.session.scalar(select_visible(SavedFilter).where(
        SavedFilter.user_id == current_user.id, SavedFilter.kind == SAVED_KIND,
        SavedFilter.name == name))
    if row is None:
        row = SavedFilter(account_id=current_user.account_id, user_id=current_user.id,
                          kind=SAVED_KIND, name=name)
        db.session.add(row)
    row.conditions = call_query.to_json(conditions)
    db.session.commit()
    flash(_("Condition group %(name)s saved.", name=name), "success")
    return _back()


@bp.get("/calls/filters/<int:filter_id>")
def apply_filter(filter_id: int):
    """The list with a saved group's conditions, keeping the number, tasks and period."""
    row = _own_filter(filter_id)
    scope = {n: v for n, v in filter_args(request.args).items() if n in _SCOPE_NAMES}
    try:
        conditions = call_query.validate(row.conditions)
    except FilterError as exc:
        flash(_("Condition group %(name)s can no longer be used: %(why)s", name=row.name,
                why=str(exc)), "danger")
        return redirect(url_for("records.index", **scope))
    return redirect(url_for("records.index", **scope, **form.to_args(conditions, _zone())))


@bp.post("/calls/filters/<int:filter_id>/delete")
def delete_filter(filter_id: int):
    row = _own_filter(filter_id)
    db.session.delete(row)
    db.session.commit()
    flash(_("Condition group %(name)s deleted.", name=row.name), "success")
    return _back()


@bp.post("/calls/export")
def export():
    """Export the calls of the filter in the hidden fields, with the columns in the order
    given; full numbers only for administrators who ask."""
    try:
        scope, conditions = form.parse(request.form, _zone())
    except FilterError as exc:
        flash(str(exc), "danger")
        return _back()
    keys = request.form.getlist("columns")
    if not any(k in call_columns.BY_KEY for k in keys):
        flash(_("Choose at least one column to export."), "danger")
        return _back()
    full = request.form.get("full_numbers") == "1" and current_user.role == Role.ADMIN
    start_export(current_user, form.combined(scope, conditions), call_columns.chosen(keys),
                 full_numbers=full)
    flash(_("The export has started; it will be in your notifications when it is ready."),
          "success")
    return _back()

