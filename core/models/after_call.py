"""After the call (FEATURES.md P1–P3, T7): the outbox, provider credentials, SMS templates and
messages, push groups and pushes, lead allocation rules, leads and quotas."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core import clock
from core.models.base import AccountOwned, Base, BigId, JSONType, UTCDateTime


class Outbox(AccountOwned, Base):
    """An rq job written in the same transaction as the change that calls for it; the relay
    (workers.relay) hands it to rq. `key` makes writing it idempotent (call + rule + action)."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_state_due", "state", "due_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(160), unique=True)
    job: Mapped[str] = mapped_column(String(128))  # dotted path of an rq job function
    args: Mapped[list] = mapped_column(JSONType, default=list)
    queue: Mapped[str] = mapped_column(String(16), default="calls")
    state: Mapped[str] = mapped_column(String(16), default="pending")  # core.outbox.OutboxState
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    relayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    relay_count: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("call.id", ondelete="SET NULL"),
                                                index=True)


class ProviderConfig(AccountOwned, Base):
    """An account's SMS or WeCom provider: `settings` are shown, `secrets` only masked."""

    __tablename__ = "provider_config"
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(8))  # sms | push
    kind: Mapped[str] = mapped_column(String(24))  # outbox, http, aliyun, wecom_robot, wecom_app
    name: Mapped[str] = mapped_column(String(120))
    settings: Mapped[dict] = mapped_column(JSONType, default=dict)
    secrets: Mapped[dict] = mapped_column(JSONType, default=dict)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    daily_cap_per_number: Mapped[int] = mapped_column(Integer, default=0)  # SMS; 0: no cap
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class SmsTemplate(AccountOwned, Base):
    """挂机短信 template: 【signature】 + body with {variables} from the call."""

    __tablename__ = "sms_template"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    signature: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    provider_id: Mapped[int | None] = mapped_column(
        ForeignKey("provider_config.id", ondelete="SET NULL"))
    provider_template_code: Mapped[str] = mapped_column(String(64), default="")  # cloud SMS


class SmsMessage(AccountOwned, Base):
    __tablename__ = "sms_message"
    __table_args__ = (Index("ix_sms_message_account_phone_created", "account_id", "phone",
                            "created_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(160), unique=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("call.id", ondelete="SET NULL"),
                                                index=True)
    template_id: Mapped[int | None] = mapped_column(
        ForeignKey("sms_template.id", ondelete="SET NULL"))
    provider_id: Mapped[int | None] = mapped_column(
        ForeignKey("provider_config.id", ondelete="SET NULL"))
    phone: Mapped[str] = mapped_column(String(32))
    content: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="queued")  # core.sms.SmsState
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PushGroup(AccountOwned, Base):
    """推送组: staff who get a WeCom notice about a call, chosen by `strategy`."""

    __tablename__ = "push_group"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    strategy: Mapped[str] = mapped_column(String(16), default="average")  # core.allocation
    provider_id: Mapped[int | None] = mapped_column(
        ForeignKey("provider_config.id", ondelete="SET NULL"))
    state: Mapped[dict] = mapped_column(JSONType, default=dict)  # rotation state


class PushGroupMember(AccountOwned, Base):
    __tablename__ = "push_group_member"
    __table_args__ = (UniqueConstraint("group_id", "user_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("push_group.id", ondelete="CASCADE"),
                                          index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    wecom_userid: Mapped[str] = mapped_column(String(64), default="")


class PushMessage(AccountOwned, Base):
    __tablename__ = "push_message"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(180), unique=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("call.id", ondelete="SET NULL"),
                                                index=True)
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("push_group.id", ondelete="SET NULL"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"),
                                                index=True)
    content: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="queued")  # core.push.PushState
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    token: Mapped[str] = mapped_column(String(48), unique=True)  # the "seen" link
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LeadAllocationRule(AccountOwned, Base):
    """外呼线索分配规则: per grade, {"A": {"mode": "average", "user_ids": [3, 4]}, …};
    `state` keeps each grade's rotation (core.allocation)."""

    __tablename__ = "lead_allocation_rule"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    grades: Mapped[dict] = mapped_column(JSONType, default=dict)
    state: Mapped[dict] = mapped_column(JSONType, default=dict)


class Lead(AccountOwned, Base):
    """A minimal CRM lead: one per account and phone; no owner means the pool (公海)."""

    __tablename__ = "lead"
    __table_args__ = (UniqueConstraint("account_id", "phone"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    phone: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(120), default="")
    grade: Mapped[str | None] = mapped_column(String(1))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"),
                                                 index=True)
    source: Mapped[str] = mapped_column(String(32), default="call")
    task_id: Mapped[int | None] = mapped_column(ForeignKey("task.id", ondelete="SET NULL"))
    call_id: Mapped[int | None] = mapped_column(ForeignKey("call.id", ondelete="SET NULL"))
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class QuotaRule(AccountOwned, Base):
    """任务暂停 (T7): when `threshold` calls matching (grade, status) are counted in `period`
    for the task (or all tasks when task_id is None), pause or start the target tasks."""

    __tablename__ = "quota_rule"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"),
                                                index=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    grade: Mapped[str | None] = mapped_column(String(1))
    status: Mapped[str | None] = mapped_column(String(24))
    period: Mapped[str] = mapped_column(String(8), default="day")  # day | total
    threshold: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(8), default="pause")  # pause | start
    target_task_id: Mapped[int | None] = mapped_column(
        ForeignKey("task.id", ondelete="CASCADE"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    fired_on: Mapped[str | None] = mapped_column(String(10))  # local date it last fired
