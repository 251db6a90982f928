"""Log in, log out, change password, switch language."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from core import clock
from core.models import User
from webui.extensions import db
from webui.i18n import LOCALES
from webui.security import audit

bp = Blueprint("auth", __name__)

MIN_PASSWORD = 8


def _safe_next(target: str | None) -> str:
    """Only same-site paths: an open redirect after login is a phishing tool."""
    if target and not urlsplit(target).netloc and target.startswith("/") \
            and not target.startswith("//"):
        return target
    return url_for("console.home")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("console.home"))
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        user = db.session.scalar(db.select(User).where(User.username == username))
        if user and user.active and user.check_password(request.form.get("password", "")):
            session.clear()  # a fresh session id on login (no fixation)
            login_user(user)
            user.last_login_at = clock.now()
            audit("login")
            db.session.commit()
            return redirect(_safe_next(request.args.get("next")))
        flash(_("Wrong user name or password."), "danger")
        return render_template("auth/login.html", username=username), 401
    return render_template("auth/login.html", username="")


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def password():
    if request.method == "POST":
        old, new, again = (request.form.get(k, "") for k in ("old", "new", "again"))
        if not current_user.check_password(old):
            flash(_("The current password is wrong."), "danger")
        elif len(new) < MIN_PASSWORD:
            flash(_("The new password needs at least %(n)d characters.", n=MIN_PASSWORD),
                  "danger")
        elif new != again:
            flash(_("The two new passwords differ."), "danger")
        else:
            current_user.set_password(new)
            audit("password_change")
            db.session.commit()
            flash(_("Password changed."), "success")
            return redirect(url_for("console.home"))
        return render_template("auth/password.html"), 400
    return render_template("auth/password.html")


@bp.post("/lang/<code>")
def language(code: str):
    if code in LOCALES:
        session["lang"] = code
        if current_user.is_authenticated:
            current_user.locale = code
            db.session.commit()
    return redirect(_safe_next(request.form.get("next")))
