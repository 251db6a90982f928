"""Tasks (外呼任务), their numbers, call-time templates and task templates (T1–T8)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.enums import Direction, NumberState, ScriptMode, TaskEndAction, TaskState
from core.models.base import AccountOwned, Base, BigId, JSONType, UTCDateTime
from core.models.lists import BlacklistGroup

task_blacklist_group = Table(
    "task_blacklist_group",
    Base.metadata,
    Column("task_id", ForeignKey("task.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", ForeignKey("blacklist_group.id", ondelete="CASCADE"), primary_key=True),
)


class CallTimeTemplate(AccountOwned, Base):
    """A named weekly schedule: {"mon": [["09:00", "12:00"], ["13:30", "18:00"]], …}."""

    __tablename__ = "call_time_template"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    weekly: Mapped[dict] = mapped_column(JSONType, default=dict)


class TaskTemplate(AccountOwned, Base):
    """A saved task configuration to create tasks from (T8)."""

    __tablename__ = "task_template"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    config: Mapped[dict] = mapped_column(JSONType, default=dict)


class Task(AccountOwned, Base):
    __tablename__ = "task"
    __table_args__ = (Index("ix_task_account_state", "account_id", "state"),
                      UniqueConstraint("account_id", "alias"))
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    # 别名: names the task in a multi-task import file's task column (short, unique per
    # account; the name itself is accepted too).
    alias: Mapped[str | None] = mapped_column(String(64))
    tags: Mapped[list] = mapped_column(JSONType, default=list)
    direction: Mapped[Direction] = mapped_column(String(16), default=Direction.OUTBOUND)
    state: Mapped[TaskState] = mapped_column(String(16), default=TaskState.DRAFT)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))

    # Dialogue model: one script, or scripts by time of day plus a fallback.
    script_mode: Mapped[ScriptMode] = mapped_column(String(16), default=ScriptMode.UNIFIED)
    script_id: Mapped[int | None] = mapped_column(ForeignKey("script.id", ondelete="SET NULL"))
    # [{"start": "09:00", "end": "12:00", "script_id": 3}, …]
    timed_scripts: Mapped[list] = mapped_column(JSONType, default=list)
    fallback_script_id: Mapped[int | None] = mapped_column(
        ForeignKey("script.id", ondelete="SET NULL"))
    qc_rule: Mapped[dict] = mapped_column(JSONType, default=dict)  # 大模型质检

    line_id: Mapped[int | None] = mapped_column(ForeignKey("line.id", ondelete="SET NULL"),
                                                index=True)
    max_concurrency: Mapped[int] = mapped_column(Integer, default=1)
    call_interval_s: Mapped[int] = mapped_column(Integer, default=0)  # 0: auto
    background_sound: Mapped[str | None] = mapped_column(String(255))

    # Call window (呼叫时间).
    date_start: Mapped[date | None] = mapped_column(Date)
    date_end: Mapped[date | None] = mapped_column(Date)
    weekly: Mapped[dict] = mapped_column(JSONType, default=dict)
    call_time_template_id: Mapped[int | None] = mapped_column(
        ForeignKey("call_time_template.id", ondelete="SET NULL"))
    skip_holidays: Mapped[bool] = mapped_column(Boolean, default=False)
    # [["2026-10-01T00:00", "2026-10-03T23:59"], …] in the account's time zone (禁呼时间)
    forbidden_ranges: Mapped[list] = mapped_column(JSONType, default=list)

    lead_allocation: Mapped[dict] = mapped_column(JSONType, default=dict)
    transfer_group_id: Mapped[int | None] = mapped_column(
        ForeignKey("transfer_group.id", ondelete="SET NULL"))
    pause_when_agents_busy: Mapped[bool] = mapped_column(Boolean, default=False)
    predictive: Mapped[bool] = mapped_column(Boolean, default=False)
    predictive_busy_to_ai: Mapped[bool] = mapped_column(Boolean, default=False)
    end_action: Mapped[TaskEndAction] = mapped_column(String(16), default=TaskEndAction.STOP)
    # Dialling (issue 6): attempts per number, which call statuses are redialled and after
    # how long, how long to let a call ring and how long an answered call may last.
    max_attempts: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    redial_statuses: Mapped[list] = mapped_column(JSONType, default=list, server_default="[]")
    redial_interval_s: Mapped[int] = mapped_column(Integer, default=600, server_default="600")
    ring_timeout_s: Mapped[int] = mapped_column(Integer, default=40, server_default="40")
    max_call_s: Mapped[int] = mapped_column(Integer, default=600, server_default="600")
    # Turn-taking (barge-in ms, max pause ms, no-input timeout …) and quotas (T7).
    dialogue_settings: Mapped[dict] = mapped_column(JSONType, default=dict)
    quota: Mapped[dict] = mapped_column(JSONType, default=dict)
    # Inbound tasks answer calls arriving on their line's DID (T10).
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    blacklist_groups: Mapped[list[BlacklistGroup]] = relationship(
        secondary=task_blacklist_group)


class TaskNumber(AccountOwned, Base):
    """One number in a task's dialling list, with the variables imported beside it."""

    __tablename__ = "task_number"
    __table_args__ = (
        # The dialer's "next numbers": pending ones of a task in import (or shuffled) order.
        Index("ix_task_number_dial", "task_id", "state", "position"),
        Index("ix_task_number_task_phone", "task_id", "phone"),
        Index("ix_task_number_account_phone", "account_id", "phone"),
        # The number status table (电话号码, T6): a task's numbers in dialling order, and
        # by call status (also what redial picks).
        Index("ix_task_number_task_position", "task_id", "position"),
        Index("ix_task_number_task_status", "task_id", "last_status"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(32))  # normalised
    raw_phone: Mapped[str] = mapped_column(String(64))  # as imported
    variables: Mapped[dict] = mapped_column(JSONType, default=dict)
    state: Mapped[NumberState] = mapped_column(String(16), default=NumberState.PENDING)
    position: Mapped[int] = mapped_column(BigId, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status: Mapped[str | None] = mapped_column(String(24))
    last_called_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    region: Mapped[str | None] = mapped_column(String(64))
    carrier: Mapped[str | None] = mapped_column(String(16))
    # The import that added it; indexed for the retry check of workers.imports and for
    # purging old notifications (ON DELETE SET NULL).
    import_id: Mapped[int | None] = mapped_column(
        ForeignKey("notification.id", ondelete="SET NULL"), index=True)
