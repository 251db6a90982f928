"""Helpers every view uses: the caller's visible accounts, role checks, the audit log."""

from __future__ import annotations

from functools import wraps

from flask import abort, g, request
from flask_login import current_user

from core.enums import Role
from core.models import AuditLog, User
from core.scoping import scoped, visible_account_ids
from webui.extensions import db, login_manager


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    user = db.session.get(User, int(user_id))
    return user if user and user.active else None


def actor() -> User:
    """Who is acting: the API token's user (set by the API blueprint) or the session's user."""
    return g.get("api_user") or current_user


def account_ids() -> list[int]:
    """Accounts whose data the acting user may see (cached for the request)."""
    if "account_ids" not in g:
        g.account_ids = visible_account_ids(db.session, actor())
    return g.account_ids


def select_visible(model):
    """`select(model)` limited to the current user's visible accounts."""
    return scoped(db.select(model), model, account_ids())


def get_visible_or_404(model, row_id: int):
    row = db.session.scalar(select_visible(model).where(model.id == row_id))
    if row is None:
        abort(404)  # another account's row is indistinguishable from a missing one
    return row


def require_role(*roles: Role):
    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if actor().role not in roles:
                abort(403)
            return view(*args, **kwargs)
        return wrapped
    return decorator


def audit(action: str, target=None, **detail) -> None:
    """Add an audit row to the current transaction (committed with the change it records)."""
    user = actor()
    db.session.add(AuditLog(
        account_id=user.account_id, user_id=user.id, action=action,
        target_type=type(target).__tablename__ if target is not None else None,
        target_id=getattr(target, "id", None), detail=detail,
        ip=request.remote_addr if request else None))
