"""The console's home and the notification list (通知, FEATURES.md P6): background jobs'
state, progress, counts and errors, their result files, the unread count in the header
and the pop-up toggle (弹屏提醒)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import func, update

from core import clock, jobs
from core.enums import JobState, Role
from core.models import Notification
from webui import labels
from webui.extensions import db
from webui.security import actor, get_visible_or_404, select_visible

bp = Blueprint("console", __name__)
PER_PAGE = 20
KEPT = timedelta(days=10)  # P6: notifications are kept 10 days (workers.maintenance purges)
POPUP = "notify_popup"  # User.preferences key: show a pop-up when a job ends


@bp.before_request
@login_required
def _login():
    """Every page of this blueprint needs a logged-in user."""


def _mine():
    return select_visible(Notification).where(Notification.user_id == actor().id,
                                              Notification.created_at >= clock.now() - KEPT)


@bp.app_context_processor
def _header():
    """The header's unread count and the pop-up setting, on every logged-in page."""
    if not current_user.is_authenticated:
        return {}
    unread = db.session.scalar(select_visible(Notification).with_only_columns(func.count())
                               .where(Notification.user_id == current_user.id,
                                      Notification.read.is_(False),
                                      Notification.created_at >= clock.now() - KEPT))
    return {"unread_notifications": unread,
            "notify_popup": (current_user.preferences or {}).get(POPUP, True)}


@bp.get("/")
def home():
    if actor().role == Role.AGENT:
        return redirect(url_for("agents.phone"))
    return redirect(url_for("tasks.index"))


@bp.get("/notifications")
def notifications():
    stmt = _mine().order_by(Notification.created_at.desc(), Notification.id.desc())
    page = db.paginate(stmt, per_page=PER_PAGE, error_out=False)
    html = render_template("console/notifications.html", page=page)
    # Seen now: what this page showed is read (a running job stays unread until it ends,
    # so its result still raises the count).
    shown = [n.id for n in page.items if n.state in (JobState.DONE, JobState.FAILED)]
    if shown:
        db.session.execute(update(Notification).where(Notification.id.in_(shown))
                           .values(read=True).execution_options(synchronize_session=False))
        db.session.commit()
    return html


@bp.get("/notifications/<int:notification_id>/download")
def download(notification_id: int):
    note = get_visible_or_404(Notification, notification_id)
    if note.user_id != actor().id or not note.result_path:
        abort(404)
    path = Path(note.result_path).resolve()
    jobs_dir = jobs.files_dir(current_app.config["SETTINGS"]).resolve()
    if not path.is_relative_to(jobs_dir) or not path.is_file():
        abort(404)  # only files our jobs wrote, and only while they are kept
    return send_file(path, as_attachment=True, download_name=path.name)


@bp.get("/notifications/recent.json")
def recent():
    """For the pop-up: the unread count and the jobs that ended after `since` (ISO time)."""
    try:
        since = datetime.fromisoformat(request.args.get("since", ""))
    except ValueError:
        since = clock.now() - timedelta(minutes=1)
    if since.tzinfo is None:
        abort(400)
    ended = db.session.scalars(_mine().where(
        Notification.updated_at > since,
        Notification.state.in_([JobState.DONE, JobState.FAILED]))
        .order_by(Notification.updated_at)).all()
    unread = db.session.scalar(_mine().with_only_columns(func.count())
                               .where(Notification.read.is_(False)))
    return jsonify({"now": clock.now().isoformat(), "unread": unread, "ended": [{
        "id": n.id, "title": n.title, "state": n.state,
        "state_label": str(labels.JOB_STATE[n.state]), "error": n.error,
        "download": url_for("console.download", notification_id=n.id)
        if n.result_path else None} for n in ended]})


@bp.post("/notifications/popup")
def popup():
    user = actor()
    user.preferences = {**(user.preferences or {}), POPUP: request.form.get("on") == "1"}
    db.session.commit()
    flash(_("Pop-up reminders are on.") if user.preferences[POPUP]
          else _("Pop-up reminders are off."), "success")
    return redirect(request.form.get("next") or url_for("console.notifications"))
