"""通话详情 (FEATURES.md R2): one call's transcript, recording and facts; change its grade by
hand, blacklist its number, copy the transcript and create share links (R3, served by
webui.call_detail.share). Administrators and staff only, scoped to their accounts."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import login_required

from core import blacklist, clock
from core.enums import Grade, Role
from core.models import Account, BlacklistEntry, BlacklistGroup, Call, DialogueTurn, Task, User
from webui.call_detail import labels, recording, sharing, transcript
from webui.extensions import db
from webui.security import audit, get_visible_or_404, require_role, select_visible

bp = Blueprint("call_detail", __name__)


@bp.before_request
@login_required
@require_role(Role.ADMIN, Role.STAFF)
def _staff_only():
    """Administrators and staff read call details."""


def conversation(call: Call) -> list[transcript.Line]:
    return transcript.lines(db.session.scalars(
        db.select(DialogueTurn).where(DialogueTurn.call_id == call.id)
        .order_by(DialogueTurn.seq, DialogueTurn.id)))


def copy_text(lines: list[transcript.Line]) -> str:
    return transcript.plain_text(lines, {k: str(v) for k, v in labels.SPEAKER.items()},
                                 _("barged in"))


def _share_shown(call: Call) -> dict | None:
    """The link just created (`?shared=<token>` after the POST), checked before it is shown."""
    token = request.args.get("shared", "")
    try:
        call_id, until = sharing.read_token(current_app.secret_key, token, clock.now())
    except (sharing.ShareInvalid, sharing.ShareExpired):
        return None
    if call_id != call.id:
        return None
    return {"url": url_for("share.view", token=token, _external=True), "until": until}


@bp.get("/calls/<int:call_id>")
def view(call_id: int):
    call = get_visible_or_404(Call, call_id)
    if not call.viewed:
        call.viewed = True  # 已查看 in the records list
        db.session.commit()
    lines = conversation(call)
    groups = db.session.scalars(select_visible(BlacklistGroup).where(
        BlacklistGroup.account_id == call.account_id).order_by(BlacklistGroup.id)).all()
    listed = db.session.scalars(db.select(BlacklistEntry).where(
        BlacklistEntry.account_id == call.account_id,
        BlacklistEntry.phone == blacklist.lookup_phone(call.phone),
        blacklist.live_clause())).all()
    settings = current_app.config["SETTINGS"]
    return render_template(
        "call_detail/view.html", call=call, lines=lines, copy_text=copy_text(lines),
        task=db.session.get(Task, call.task_id) if call.task_id else None,
        agent=db.session.get(User, call.agent_id) if call.agent_id else None,
        zone=ZoneInfo(db.session.get(Account, call.account_id).timezone),
        has_recording=recording.locate(settings.recordings_dir, call.recording_path) is not None,
        groups=groups, listed=listed, group_names={g.id: g.name for g in groups},
        grades=list(Grade), share_days=sharing.DAYS, share=_share_shown(call),
        mmss=transcript.mmss, detail_labels=labels)


@bp.get("/calls/<int:call_id>/recording")
def recording_file(call_id: int):
    """The recording, streamed with Range support; `?download=1` saves it instead."""
    call = get_visible_or_404(Call, call_id)
    path = recording.locate(current_app.config["SETTINGS"].recordings_dir, call.recording_path)
    if path is None:
        abort(404)
    return recording.send(path, f"call-{call.id}", as_attachment=bool(request.args.get("download")))


@bp.post("/calls/<int:call_id>/grade")
def change_grade(call_id: int):
    """Set the grade by hand: grade_source becomes "manual", the change is audited."""
    call = get_visible_or_404(Call, call_id)
    new = request.form.get("grade", "")
    if new not in set(Grade):
        abort(400)
    old = call.grade
    call.grade, call.grade_source = new, "manual"
    audit("call_grade", call, old=old, new=new)
    db.session.commit()
    flash(_("Grade set to %(grade)s.", grade=new), "success")
    return redirect(url_for(".view", call_id=call.id))


@bp.post("/calls/<int:call_id>/share")
def create_share(call_id: int):
    """A public link valid for 1, 7 or 30 days; shown on the detail page once created."""
    call = get_visible_or_404(Call, call_id)
    days = request.form.get("days", type=int)
    if days not in sharing.DAYS:
        abort(400)
    until = clock.now() + timedelta(days=days)
    token = sharing.make_token(current_app.secret_key, call.id, until)
    audit("call_share", call, days=days, until=until.isoformat())
    db.session.commit()
    return redirect(url_for(".view", call_id=call.id, shared=token))
