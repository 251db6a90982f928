"""The console's home and the notification list."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask_login import login_required

from core.enums import Role
from core.models import Notification
from webui.extensions import db
from webui.security import actor, select_visible

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
    return redirect(url_for("tasks.index"))


@bp.get("/notifications")
def notifications():
    stmt = select_visible(Notification).where(Notification.user_id == actor().id) \
        .order_by(Notification.created_at.desc())
    page = db.paginate(stmt, per_page=PER_PAGE, error_out=False)
    return render_template("console/notifications.html", page=page)
