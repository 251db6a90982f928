"""Statuses as str enums, one per concept; their values are what the database stores."""

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    STAFF = "staff"
    AGENT = "agent"


class Direction(StrEnum):
    OUTBOUND = "outbound"
    INBOUND = "inbound"


class TaskState(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"


class ScriptMode(StrEnum):
    UNIFIED = "unified"  # 统一配置
    BY_TIME = "by_time"  # 按时间配置 + 兜底模型


class TaskEndAction(StrEnum):
    STOP = "stop"
    PAUSE_RELEASE = "pause_release"  # 暂停任务并释放并发


class NumberState(StrEnum):
    """Where a task's number is in the dialling queue."""

    PENDING = "pending"
    DIALLING = "dialling"
    DONE = "done"
    SKIPPED = "skipped"  # blacklisted or otherwise never dialled


class CallStatus(StrEnum):
    """呼叫状态 — the outcome of one attempt (FEATURES.md C2)."""

    ANSWERED = "answered"  # 呼叫成功
    CARRIER_BLOCKED = "carrier_blocked"  # 运营商拦截
    REJECTED = "rejected"  # 拒接
    NO_ANSWER = "no_answer"  # 无应答
    VACANT = "vacant"  # 空号
    POWERED_OFF = "powered_off"  # 关机
    SUSPENDED = "suspended"  # 停机
    BUSY = "busy"  # 用户正忙
    BARRED = "barred"  # 呼入限制
    ARREARS = "arrears"  # 欠费
    BLACKLISTED = "blacklisted"  # 黑名单
    SCREENED = "screened"  # 用户屏蔽
    FAILED = "failed"  # network or switch failure with no better reading


class Grade(StrEnum):
    """意向标签 (FEATURES.md C6)."""

    A = "A"  # 有明确意向
    B = "B"  # 可能有意向
    C = "C"  # 无意向
    D = "D"  # 用户在忙
    E = "E"  # 其他
    F = "F"  # 智能助理


class HangupSide(StrEnum):
    CALLEE = "callee"
    ROBOT = "robot"
    AGENT = "agent"
    SYSTEM = "system"


class Speaker(StrEnum):
    ROBOT = "robot"
    CALLEE = "callee"
    AGENT = "agent"


class TransferStrategy(StrEnum):
    AVERAGE = "average"
    ORDER = "order"
    RANDOM = "random"
    REMOTE = "remote"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
