"""Calls (one row per attempt) and the dialogue turns of answered calls."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.enums import Direction
from core.models.base import AccountOwned, Base, BigId, JSONType, UTCDateTime


class Call(AccountOwned, Base):
    __tablename__ = "call"
    __table_args__ = (
        # The console's lists: by account or task, newest first, filtered by status/grade.
        Index("ix_call_account_created", "account_id", "created_at"),
        Index("ix_call_task_created", "task_id", "created_at"),
        Index("ix_call_task_status", "task_id", "status"),
        Index("ix_call_task_grade", "task_id", "grade"),
        Index("ix_call_account_phone", "account_id", "phone"),
        # The records across tasks by grade or status, newest first, and their counts from the
        # index alone (i7_records; scripts/bench_records.py).
        Index("ix_call_account_grade_created", "account_id", "grade", "created_at"),
        Index("ix_call_account_status_created", "account_id", "status", "created_at"),
        # "Number contains" on PostgreSQL (pg_trgm; i7_phone_search): SQLite has no such index.
        Index("ix_call_phone_trgm", "phone", postgresql_using="gin",
              postgresql_ops={"phone": "gin_trgm_ops"}).ddl_if(dialect="postgresql"),
        # A restarted controller looks up its calls that have not ended.
        Index("ix_call_controller_state", "controller", "state"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(64), unique=True)  # FreeSWITCH channel UUID
    task_id: Mapped[int | None] = mapped_column(ForeignKey("task.id", ondelete="SET NULL"))
    task_number_id: Mapped[int | None] = mapped_column(
        ForeignKey("task_number.id", ondelete="SET NULL"), index=True)
    line_id: Mapped[int | None] = mapped_column(ForeignKey("line.id", ondelete="SET NULL"))
    fs_node: Mapped[str | None] = mapped_column(String(64))
    controller: Mapped[str | None] = mapped_column(String(64))  # the controller that dialled
    state: Mapped[str | None] = mapped_column(String(16))  # core.call_status.CallState
    announcement: Mapped[str | None] = mapped_column(String(32))  # early-media class, if any
    direction: Mapped[Direction] = mapped_column(String(16), default=Direction.OUTBOUND)
    phone: Mapped[str] = mapped_column(String(32))
    caller_id: Mapped[str | None] = mapped_column(String(32))
    script_id: Mapped[int | None] = mapped_column(ForeignKey("script.id", ondelete="SET NULL"))
    script_version: Mapped[int | None] = mapped_column(Integer)

    # Timings (UTC) and outcome.
    originated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ringing_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ring_seconds: Mapped[int] = mapped_column(Integer, default=0)
    talk_seconds: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str | None] = mapped_column(String(24))  # core.enums.CallStatus
    sip_code: Mapped[int | None] = mapped_column(Integer)
    hangup_cause: Mapped[str | None] = mapped_column(String(48))
    hangup_side: Mapped[str | None] = mapped_column(String(16))  # core.enums.HangupSide

    # Dialogue results.
    grade: Mapped[str | None] = mapped_column(String(1))  # core.enums.Grade
    grade_source: Mapped[str | None] = mapped_column(String(16))  # auto, manual, llm
    grade_reasons: Mapped[list] = mapped_column(JSONType, default=list)  # why that grade
    tags: Mapped[list] = mapped_column(JSONType, default=list)
    score: Mapped[int] = mapped_column(Integer, default=0)
    interactions: Mapped[int] = mapped_column(Integer, default=0)
    unrecognised: Mapped[int] = mapped_column(Integer, default=0)
    recording_path: Mapped[str | None] = mapped_column(String(512))
    variables: Mapped[dict] = mapped_column(JSONType, default=dict)

    # After-call results, each {"state": "success"|"failed", "reason": …, "target": …}.
    transfer: Mapped[dict | None] = mapped_column(JSONType)
    sms: Mapped[dict | None] = mapped_column(JSONType)
    # The agent who took the transferred call, and their notes from the screen pop (弹屏).
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    agent_notes: Mapped[str | None] = mapped_column(Text)
    push: Mapped[dict | None] = mapped_column(JSONType)

    region: Mapped[str | None] = mapped_column(String(64))
    carrier: Mapped[str | None] = mapped_column(String(16))
    gender: Mapped[str | None] = mapped_column(String(8))
    viewed: Mapped[bool] = mapped_column(Boolean, default=False)
    cdr: Mapped[dict | None] = mapped_column(JSONType)  # FreeSWITCH's json_cdr, as posted


class DialogueTurn(AccountOwned, Base):
    __tablename__ = "dialogue_turn"
    __table_args__ = (Index("ix_dialogue_turn_call_seq", "call_id", "seq"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    speaker: Mapped[str] = mapped_column(String(8))  # core.enums.Speaker
    text: Mapped[str] = mapped_column(Text, default="")
    node: Mapped[str | None] = mapped_column(String(64))
    intent: Mapped[str | None] = mapped_column(String(64))
    start_ms: Mapped[int] = mapped_column(Integer, default=0)
    end_ms: Mapped[int] = mapped_column(Integer, default=0)
    interrupted: Mapped[bool] = mapped_column(Boolean, default=False)
