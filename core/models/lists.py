"""Blacklist groups and entries (P5) and tags (C6)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import AccountOwned, Base, BigId, UTCDateTime


class BlacklistGroup(AccountOwned, Base):
    __tablename__ = "blacklist_group"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(String(255), default="")
    # 拉黑后的关闭时间: entries added to the group are released after this many days (None:
    # never), unless a release time is given for them.
    release_days: Mapped[int | None] = mapped_column(Integer)


class BlacklistEntry(AccountOwned, Base):
    __tablename__ = "blacklist_entry"
    __table_args__ = (
        UniqueConstraint("group_id", "phone"),
        Index("ix_blacklist_entry_account_phone", "account_id", "phone"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("blacklist_group.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(32))  # normalised
    reason: Mapped[str] = mapped_column(String(255), default="")
    source: Mapped[str] = mapped_column(String(32), default="manual")
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # release time


class Tag(AccountOwned, Base):
    __tablename__ = "tag"
    __table_args__ = (UniqueConstraint("account_id", "group", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    group: Mapped[str] = mapped_column(String(64), default="")
    name: Mapped[str] = mapped_column(String(64))
    color: Mapped[str] = mapped_column(String(16), default="")
