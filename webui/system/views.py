"""系统设置: API tokens (a token is shown once, at creation; only its hash is kept) and 演示数据,
the demo account's page with its one-click removal (core/demo)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from core import clock
from core.enums import Role
from core.models import ApiToken, AuditLog
from webui.extensions import db
from webui.security import audit, require_role, select_visible

bp = Blueprint("system", __name__, url_prefix="/system")
# How long removal lets live demo calls end before their rows go: a paused task dials no
# more, and the demo's calls last a minute at most (a controller whose call row vanishes
# mid-dialogue logs an error and hangs the call up).
DEMO_WAIT_S = 90.0


@bp.before_request
@login_required
@require_role(Role.ADMIN, Role.STAFF)
def _staff_only():
    """Agents have no API access."""


def _my_tokens() -> list[ApiToken]:
    return db.session.scalars(
        select_visible(ApiToken).where(ApiToken.user_id == current_user.id)
        .order_by(ApiToken.id.desc())).all()


@bp.get("/tokens")
def tokens():
    return render_template("system/tokens.html", tokens=_my_tokens())


@bp.post("/tokens")
def create_token():
    name = request.form.get("name", "").strip()[:80] or _("API token")
    row, plain = ApiToken.issue(current_user, name)
    db.session.add(row)
    db.session.flush()
    audit("token_create", row, name=name)
    db.session.commit()
    return render_template("system/tokens.html", tokens=_my_tokens(), new_token=plain)


@bp.post("/tokens/<int:token_id>/revoke")
def revoke_token(token_id: int):
    row = db.session.scalar(select_visible(ApiToken).where(
        ApiToken.id == token_id, ApiToken.user_id == current_user.id))
    if row and row.revoked_at is None:
        row.revoked_at = clock.now()
        audit("token_revoke", row)
        db.session.commit()
        flash(_("Token revoked."), "success")
    return redirect(url_for("system.tokens"))


# -- 演示数据: the demo account (core/demo) ------------------------------------------------------

def _may_remove_demo(user) -> bool:
    """The demo's own administrator, and administrators of real main accounts (who cannot
    see the demo's rows, but may clear it off their installation)."""
    return user.role == Role.ADMIN and (user.account.is_demo or user.account.parent_id is None)


@bp.get("/demo")
@require_role(Role.ADMIN)
def demo():
    from sqlalchemy import func, select

    from core import demo as demo_mod
    from core.models import Call, TaskNumber

    account = demo_mod.find(db.session)
    figures = {}
    if account is not None:
        figures = {
            "numbers": db.session.scalar(select(func.count()).select_from(TaskNumber).where(
                TaskNumber.account_id == account.id)),
            "calls": db.session.scalar(select(func.count()).select_from(Call).where(
                Call.account_id == account.id)),
            "live": demo_mod.live_calls(db.session, account.id)}
    return render_template("system/demo.html", account=account, figures=figures,
                           may_remove=_may_remove_demo(current_user),
                           own=account is not None and account.id == current_user.account_id)


@bp.post("/demo/remove")
@require_role(Role.ADMIN)
def remove_demo():
    from flask import current_app
    from flask_login import logout_user

    from core import demo as demo_mod

    if not _may_remove_demo(current_user):
        abort(403)
    account = demo_mod.find(db.session)
    if account is None:
        flash(_("There is no demo account."), "info")
        return redirect(url_for("system.demo"))
    own = account.id == current_user.account_id
    user_id, user_account = current_user.id, current_user.account_id
    if own:
        logout_user()  # the demo's own administrator goes with it
    db.session.commit()  # nothing pending: remove() commits on its own
    removed = demo_mod.remove(db.session, current_app.config["SETTINGS"],
                              conn=current_app.extensions["redis"], wait_s=DEMO_WAIT_S)
    message = _("Demo data removed: %(calls)d calls and %(files)d files.",
                calls=removed.calls, files=removed.files)
    if own:
        flash(message, "success")
        return redirect(url_for("auth.login"))
    db.session.add(AuditLog(account_id=user_account, user_id=user_id, action="demo_remove",
                            detail={"calls": removed.calls, "files": removed.files},
                            ip=request.remote_addr))
    db.session.commit()
    flash(message, "success")
    return redirect(url_for("system.demo"))
