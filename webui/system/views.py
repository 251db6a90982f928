"""系统设置: API tokens. A token is shown once, at creation; only its hash is kept."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from core import clock
from core.enums import Role
from core.models import ApiToken
from webui.extensions import db
from webui.security import audit, require_role, select_visible

bp = Blueprint("system", __name__, url_prefix="/system")


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
