"""Accounts, departments, users, API tokens and the audit log."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from core.enums import Role
from core.models.base import AccountOwned, Base, BigId, JSONType, Timestamped, UTCDateTime


class Account(Timestamped, Base):
    """A customer of the platform: a main account, or a sub-account under one (M1)."""

    __tablename__ = "account"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"),
                                                  index=True)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    balance_cents: Mapped[int] = mapped_column(Integer, default=0)
    overdraft_cents: Mapped[int] = mapped_column(Integer, default=0)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)

    parent: Mapped[Account | None] = relationship(remote_side=[id])


class Department(AccountOwned, Base):
    """A node of an account's department tree (团队组织), with inheritable settings."""

    __tablename__ = "department"
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("department.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    settings: Mapped[dict] = mapped_column(JSONType, default=dict)


class User(AccountOwned, Base):
    __tablename__ = "user"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(120), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[Role] = mapped_column(String(16), default=Role.STAFF)
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("department.id", ondelete="SET NULL"), index=True)
    # Heads administer their department's subtree (M1/M2).
    department_head: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    locale: Mapped[str] = mapped_column(String(8), default="zh")
    phone: Mapped[str | None] = mapped_column(String(32))
    # Agents answer transferred calls on this SIP extension (browser phone).
    sip_extension: Mapped[str | None] = mapped_column(String(16), unique=True)
    sip_password: Mapped[str | None] = mapped_column(String(64))
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What the user chose in the console and expects to find again: the call records'
    # columns and page size, the notification pop-up toggle … (keys in webui.preferences).
    preferences: Mapped[dict] = mapped_column(JSONType, default=dict, server_default="{}")

    account: Mapped[Account] = relationship()

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    # Flask-Login protocol
    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiToken(AccountOwned, Base):
    """A bearer token for /api/v1; only its hash is stored, the token is shown once."""

    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()

    @classmethod
    def issue(cls, user: User, name: str) -> tuple[ApiToken, str]:
        """A new token row for `user` and the plain token, which is not kept anywhere."""
        plain = "cc_" + secrets.token_urlsafe(32)
        row = cls(account_id=user.account_id, user_id=user.id, name=name,
                  token_hash=hash_token(plain), prefix=plain[:10])
        return row, plain


class AuditLog(AccountOwned, Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_account_created", "account_id", "created_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict] = mapped_column(JSONType, default=dict)
    ip: Mapped[str | None] = mapped_column(String(45))
