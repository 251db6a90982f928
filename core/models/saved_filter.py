"""Saved condition groups (条件组, FEATURES.md R1): a user's named advanced filters."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import AccountOwned, Base, JSONType


class SavedFilter(AccountOwned, Base):
    __tablename__ = "saved_filter"
    __table_args__ = (UniqueConstraint("user_id", "kind", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="calls")  # which list it filters
    name: Mapped[str] = mapped_column(String(64))
    conditions: Mapped[dict] = mapped_column(JSONType, default=dict)
