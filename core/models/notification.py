"""Notifications (通知, P6) and post-call rules (后续动作, P1)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core import clock
from core.enums import JobState
from core.models.base import AccountOwned, Base, BigId, JSONType, UTCDateTime


class Notification(AccountOwned, Base):
    """A background job as the user sees it: state, progress, counts, errors, a result file."""

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_user_created", "user_id", "created_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))  # import, export, leads, …
    title: Mapped[str] = mapped_column(String(255))
    state: Mapped[JobState] = mapped_column(String(16), default=JobState.QUEUED)
    progress: Mapped[int] = mapped_column(Integer, default=0)  # percent
    total: Mapped[int] = mapped_column(Integer, default=0)
    done_count: Mapped[int] = mapped_column(Integer, default=0)
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    result_path: Mapped[str | None] = mapped_column(String(512))
    rq_job_id: Mapped[str | None] = mapped_column(String(64), index=True)
    read: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now,
                                                 onupdate=clock.now)


class PostCallRule(AccountOwned, Base):
    """Condition → actions, for one task or (task_id None) all of an account's tasks."""

    __tablename__ = "post_call_rule"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"),
                                                index=True)
    name: Mapped[str] = mapped_column(String(120))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    conditions: Mapped[dict] = mapped_column(JSONType, default=dict)
    actions: Mapped[list] = mapped_column(JSONType, default=list)
