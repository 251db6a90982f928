"""团队组织: the members of the accounts an administrator manages."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from core.enums import Role
from core.models import Account, User
from webui.auth.views import MIN_PASSWORD
from webui.extensions import db
from webui.security import account_ids, audit, require_role, select_visible

bp = Blueprint("team", __name__, url_prefix="/team")


@bp.before_request
@login_required
@require_role(Role.ADMIN)
def _admins_only():
    """Only administrators manage members."""


@bp.route("/users", methods=["GET", "POST"])
def users():
    accounts = db.session.scalars(
        db.select(Account).where(Account.id.in_(account_ids())).order_by(Account.id)).all()
    if request.method == "POST":
        form = request.form
        username = form.get("username", "").strip()
        password = form.get("password", "")
        role = form.get("role", "")
        account_id = form.get("account_id", type=int)
        if not username or len(username) > 80:
            flash(_("A user name is required."), "danger")
        elif role not in set(Role):
            flash(_("Choose a role."), "danger")
        elif account_id not in {a.id for a in accounts}:
            flash(_("Choose an account you manage."), "danger")
        elif len(password) < MIN_PASSWORD:
            flash(_("The new password needs at least %(n)d characters.", n=MIN_PASSWORD),
                  "danger")
        elif db.session.scalar(db.select(User.id).where(User.username == username)):
            flash(_("The user name %(name)s is taken.", name=username), "danger")
        else:
            user = User(username=username, display_name=form.get("display_name", "").strip(),
                        role=Role(role), account_id=account_id)
            user.set_password(password)
            db.session.add(user)
            db.session.flush()
            audit("user_create", user, username=username, role=role)
            db.session.commit()
            flash(_("Member %(name)s created.", name=username), "success")
            return redirect(url_for("team.users"))
    page = db.paginate(select_visible(User).order_by(User.id), per_page=50, error_out=False)
    return render_template("team/users.html", page=page, accounts=accounts, roles=list(Role))
