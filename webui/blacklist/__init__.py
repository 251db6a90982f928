"""黑名单 (FEATURES.md P5): groups with a release time, entries added by hand, from a call,
or from an xlsx; filter by import time; bulk delete and move; xlsx export."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import func

from core import blacklist, clock, excel_safe
from core.enums import Role
from core.models import BlacklistEntry, BlacklistGroup, Call
from webui.extensions import db
from webui.security import actor, audit, get_visible_or_404, require_role, select_visible

bp = Blueprint("blacklist", __name__, url_prefix="/blacklist")
PER_PAGE = 50
MAX_IMPORT_ROWS = 100_000


@bp.before_request
@login_required
@require_role(Role.ADMIN, Role.STAFF)
def _staff_only():
    """Administrators and staff manage the blacklist."""


def _zone() -> ZoneInfo:
    return ZoneInfo(actor().account.timezone)


def _local_date(text: str, end: bool = False) -> datetime | None:
    """A yyyy-mm-dd from a form as UTC: the start of that local day (or of the next one)."""
    try:
        day = datetime.strptime(text.strip(), "%Y-%m-%d").date()
    except ValueError:
        return None
    start = datetime.combine(day, time(0), _zone())
    return start + timedelta(days=1) if end else start


def _release_time(text: str) -> datetime | None | object:
    """The form's release time: empty → the group's default; a local datetime otherwise."""
    text = (text or "").strip()
    if not text:
        return blacklist.GROUP_DEFAULT
    if text == "never":
        return None
    for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=_zone())
        except ValueError:
            continue
    raise ValueError(text)


def _groups() -> list[BlacklistGroup]:
    groups = db.session.scalars(select_visible(BlacklistGroup).order_by(BlacklistGroup.id)).all()
    if not groups:  # 所有现在的黑名单，都在默认分组
        group = BlacklistGroup(account_id=actor().account_id, name=_("Default group"))
        db.session.add(group)
        db.session.commit()
        groups = [group]
    return groups


def _filtered():
    """Entries matching the list's filters (group, phone, import time, state)."""
    args = request.args
    stmt = select_visible(BlacklistEntry)
    if (group_id := args.get("group", type=int)) is not None:
        stmt = stmt.where(BlacklistEntry.group_id == group_id)
    if phone := args.get("phone", "").strip():
        stmt = stmt.where(BlacklistEntry.phone.contains(phone, autoescape=True))
    if since := _local_date(args.get("since", "")):
        stmt = stmt.where(BlacklistEntry.created_at >= since)
    if until := _local_date(args.get("until", ""), end=True):
        stmt = stmt.where(BlacklistEntry.created_at < until)
    state = args.get("state", "")
    if state == "live":
        stmt = stmt.where(blacklist.live_clause())
    elif state == "released":
        stmt = stmt.where(~blacklist.live_clause())
    return stmt.order_by(BlacklistEntry.created_at.desc(), BlacklistEntry.id.desc())


@bp.get("/")
def index():
    groups = _groups()
    page = db.paginate(_filtered(), per_page=PER_PAGE, error_out=False)
    counts = dict(db.session.execute(
        select_visible(BlacklistEntry).with_only_columns(
            BlacklistEntry.group_id, func.count()).group_by(BlacklistEntry.group_id)).all())
    return render_template("blacklist/index.html", groups=groups, page=page, counts=counts,
                           names={g.id: g.name for g in groups}, now=clock.now(),
                           args=request.args)


@bp.post("/groups")
def save_group():
    form = request.form
    name = form.get("name", "").strip()[:120]
    days = form.get("release_days", "").strip()
    if not name:
        flash(_("A group name is required."), "danger")
        return redirect(url_for("blacklist.index"))
    if days and (not days.isdigit() or not 1 <= int(days) <= 3650):
        flash(_("Release after 1 to 3650 days, or leave it empty for never."), "danger")
        return redirect(url_for("blacklist.index"))
    if group_id := form.get("group_id", type=int):
        group = get_visible_or_404(BlacklistGroup, group_id)
    else:
        group = BlacklistGroup(account_id=actor().account_id)
        db.session.add(group)
    group.name, group.release_days = name, int(days) if days else None
    group.description = form.get("description", "").strip()[:255]
    db.session.flush()
    audit("blacklist_group_save", group, name=name, release_days=group.release_days)
    db.session.commit()
    flash(_("Group %(name)s saved.", name=name), "success")
    return redirect(url_for("blacklist.index", group=group.id))


@bp.post("/groups/<int:group_id>/delete")
def delete_group(group_id: int):
    group = get_visible_or_404(BlacklistGroup, group_id)
    audit("blacklist_group_delete", group, name=group.name)
    db.session.delete(group)
    db.session.commit()
    flash(_("Group %(name)s deleted with its numbers.", name=group.name), "success")
    return redirect(url_for("blacklist.index"))


def _back(default: str):
    target = request.form.get("next", "")
    # Only local paths: never an open redirect.
    return redirect(target if target.startswith("/") and not target.startswith("//")
                    else default)


@bp.route("/add", methods=["GET", "POST"])
def add():
    """Add numbers by hand, or the number of a call (`call_id`: from the records list and
    the call detail, which link here)."""
    call = get_visible_or_404(Call, request.values.get("call_id", type=int)) \
        if request.values.get("call_id") else None
    if request.method == "GET":
        return render_template("blacklist/add.html", groups=_groups(), call=call,
                               next=request.args.get("next", ""))
    form = request.form
    group = get_visible_or_404(BlacklistGroup, form.get("group_id", type=int) or 0)
    if call is not None and group.account_id != call.account_id:
        abort(404)  # a call's number goes into a group of the call's own account
    phones = [call.phone] if call else \
        [p for p in re.split(r"[\r\n,，;；]+", form.get("phones", "")) if p.strip()]
    try:
        release = _release_time(form.get("release_at", ""))
    except ValueError:
        flash(_("The release time is not a date and time."), "danger")
        return _back(url_for("blacklist.add"))
    result = blacklist.add(db.session, group.account_id, group.id, phones,
                           reason=form.get("reason", "").strip(),
                           source="call" if call else "manual", expires_at=release)
    audit("blacklist_add", group, added=len(result.added), updated=len(result.updated),
          call_id=call.id if call else None)
    db.session.commit()
    flash(_("%(added)d added, %(updated)d updated, %(invalid)d invalid.",
            added=len(result.added), updated=len(result.updated),
            invalid=len(result.invalid)), "success" if not result.invalid else "warning")
    for raw, why in result.invalid[:10]:
        flash(f"{raw}: {why}", "warning")
    return _back(url_for("blacklist.index", group=group.id))


@bp.post("/bulk")
def bulk():
    form = request.form
    ids = [int(i) for i in form.getlist("ids") if i.isdigit()]
    if not ids:
        flash(_("Select numbers first."), "warning")
        return _back(url_for("blacklist.index"))
    # Entries of every account the user sees, one account at a time (the core is per account).
    by_account: dict[int, list[int]] = {}
    for entry_id, acct in db.session.execute(select_visible(BlacklistEntry).with_only_columns(
            BlacklistEntry.id, BlacklistEntry.account_id).where(BlacklistEntry.id.in_(ids))):
        by_account.setdefault(acct, []).append(entry_id)
    if form.get("action") == "delete":
        n = sum(blacklist.remove(db.session, acct, entry_ids)
                for acct, entry_ids in by_account.items())
        audit("blacklist_delete", None, count=n)
        flash(_("%(n)d numbers deleted.", n=n), "success")
    elif form.get("action") == "move":
        target = get_visible_or_404(BlacklistGroup, form.get("target_group", type=int) or 0)
        n = blacklist.move(db.session, target.account_id,
                           by_account.get(target.account_id, []), target.id)
        audit("blacklist_move", target, count=n)
        flash(_("%(n)d numbers moved to %(group)s.", n=n, group=target.name), "success")
    else:
        abort(400)
    db.session.commit()
    return _back(url_for("blacklist.index"))


@bp.get("/template.xlsx")
def template():
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "blacklist"
    ws.append(["手机号", "备注", "释放时间"])
    ws.append(["13800138000", "投诉", "2030-01-01 00:00"])
    return _xlsx(wb, "blacklist-template.xlsx")


def _xlsx(wb, name: str):
    buf = io.BytesIO()
    wb.save(buf)
    buf.seek(0)
    return send_file(buf, as_attachment=True, download_name=name, mimetype=(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))


@bp.post("/import")
def import_xlsx():
    """手机号 | 备注 | 释放时间 (optional) from the first sheet, header row first."""
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    group = get_visible_or_404(BlacklistGroup, request.form.get("group_id", type=int) or 0)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash(_("Choose an .xlsx file."), "danger")
        return redirect(url_for("blacklist.index", group=group.id))
    try:
        wb = load_workbook(upload.stream, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, OSError):
        flash(_("The file is not an .xlsx workbook."), "danger")
        return redirect(url_for("blacklist.index", group=group.id))
    by_release: dict[object, list[str]] = {}
    reasons: dict[str, str] = {}
    bad = 0
    for i, row in enumerate(wb.worksheets[0].iter_rows(min_row=2, values_only=True)):
        if i >= MAX_IMPORT_ROWS:
            flash(_("Only the first %(n)d rows were read.", n=MAX_IMPORT_ROWS), "warning")
            break
        if not row or row[0] is None:
            continue
        phone = str(row[0]).strip()
        reason = str(row[1]).strip() if len(row) > 1 and row[1] is not None else ""
        when = row[2] if len(row) > 2 else None
        try:
            release = when.replace(tzinfo=_zone()) if isinstance(when, datetime) else \
                _release_time(str(when) if when is not None else "")
        except ValueError:
            bad += 1
            continue
        by_release.setdefault(release, []).append(phone)
        reasons[phone] = reason
    wb.close()
    added = updated = 0
    invalid: list = []
    for release, phones in by_release.items():
        # One reason per batch is what core.blacklist takes; group rows by their reason.
        by_reason: dict[str, list[str]] = {}
        for p in phones:
            by_reason.setdefault(reasons[p], []).append(p)
        for reason, batch in by_reason.items():
            r = blacklist.add(db.session, group.account_id, group.id, batch, reason=reason,
                              source="import", expires_at=release)
            added, updated = added + len(r.added), updated + len(r.updated)
            invalid.extend(r.invalid)
    audit("blacklist_import", group, added=added, updated=updated, invalid=len(invalid) + bad)
    db.session.commit()
    flash(_("%(added)d added, %(updated)d updated, %(invalid)d invalid.", added=added,
            updated=updated, invalid=len(invalid) + bad),
          "success" if not invalid and not bad else "warning")
    for raw, why in invalid[:10]:
        flash(f"{raw}: {why}", "warning")
    return redirect(url_for("blacklist.index", group=group.id))


@bp.get("/export.xlsx")
def export_xlsx():
    """The filtered list as xlsx, formula-safe (core.excel_safe)."""
    from openpyxl import Workbook

    names = {g.id: g.name for g in _groups()}
    zone, now = _zone(), clock.now()
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("blacklist")
    ws.append(["手机号", "分组", "备注", "来源", "加入时间", "释放时间", "状态"])
    for e in db.session.scalars(_filtered().limit(MAX_IMPORT_ROWS)):
        ws.append(excel_safe.row([
            e.phone, names.get(e.group_id, ""), e.reason, e.source,
            e.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
            e.expires_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if e.expires_at
            else "", "生效" if blacklist.is_live(e, now) else "已释放"]))
    audit("blacklist_export", None)
    db.session.commit()
    return _xlsx(wb, "blacklist.xlsx")
