"""Data visibility: which accounts' rows a user may see. Every console and API query goes
through `scoped()`; a sub-account never sees another account's data."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from core.enums import Role
from core.models import Account, User


def visible_account_ids(session: Session, user: User) -> list[int]:
    """The user's own account, plus every sub-account below it when the user is its admin."""
    ids = [user.account_id]
    if user.role != Role.ADMIN:
        return ids
    frontier = ids
    while frontier:
        frontier = list(session.scalars(select(Account.id).where(Account.parent_id.in_(frontier))))
        ids.extend(frontier)
    return ids


def scoped(stmt: Select, model, account_ids: list[int]) -> Select:
    """`stmt` limited to rows of `model` that belong to `account_ids`."""
    return stmt.where(model.account_id.in_(account_ids))
