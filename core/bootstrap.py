"""First-start set-up: the main account and its administrator, from settings."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.enums import Role
from core.models import Account, ApiToken, User
from core.settings import Settings, generated_admin_password


@dataclass(frozen=True)
class AdminLogin:
    username: str
    password: str | None  # None: set by ADMIN_PASSWORD, not ours to print
    created: bool


def ensure_admin(session: Session, settings: Settings) -> AdminLogin:
    """Create the main account and ADMIN_USER unless that user exists. Commits."""
    user = session.scalar(select(User).where(User.username == settings.admin_user))
    generated = settings.admin_password is None
    password = settings.admin_password or generated_admin_password(settings.data_dir)
    if user is not None:
        return AdminLogin(user.username, password if generated else None, created=False)
    account = Account(name="主账户", timezone=settings.timezone)
    session.add(account)
    session.flush()
    user = User(account_id=account.id, username=settings.admin_user, display_name="管理员",
                role=Role.ADMIN)
    user.set_password(password)
    session.add(user)
    session.commit()
    return AdminLogin(user.username, password if generated else None, created=True)


class UserExists(ValueError):
    pass


def create_user(session: Session, username: str, password: str, role: Role,
                account_id: int | None = None, display_name: str = "") -> User:
    """Create a user in `account_id` (default: the first main account). Commits."""
    if session.scalar(select(User.id).where(User.username == username)):
        raise UserExists(f"user {username!r} exists")
    if account_id is None:
        account_id = session.scalar(
            select(Account.id).where(Account.parent_id.is_(None)).order_by(Account.id))
        if account_id is None:
            raise ValueError("no account yet: run `manage db upgrade` and start once")
    user = User(account_id=account_id, username=username, role=role,
                display_name=display_name)
    user.set_password(password)
    session.add(user)
    session.commit()
    return user


def create_token(session: Session, username: str, name: str) -> str:
    """Issue an API token for `username`; returns the plain token. Commits."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise ValueError(f"no user {username!r}")
    row, plain = ApiToken.issue(user, name)
    session.add(row)
    session.commit()
    return plain
