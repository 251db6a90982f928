"""Transfer groups (转接组) and their members; live agent state lives in Redis."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.enums import TransferStrategy
from core.models.base import AccountOwned, Base


class TransferGroup(AccountOwned, Base):
    __tablename__ = "transfer_group"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    strategy: Mapped[TransferStrategy] = mapped_column(String(16),
                                                       default=TransferStrategy.AVERAGE)
    ring_timeout_s: Mapped[int] = mapped_column(Integer, default=20)
    remote_number: Mapped[str | None] = mapped_column(String(32))
    remote_line_id: Mapped[int | None] = mapped_column(ForeignKey("line.id", ondelete="SET NULL"))
    music: Mapped[str | None] = mapped_column(String(255))  # 转接背景音


class TransferGroupMember(AccountOwned, Base):
    __tablename__ = "transfer_group_member"
    __table_args__ = (UniqueConstraint("group_id", "user_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("transfer_group.id", ondelete="CASCADE"),
                                          index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
