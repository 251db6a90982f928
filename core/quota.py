"""Quotas (任务暂停, FEATURES.md T7): pause or start tasks when a count is reached, e.g.
"pause after 50 A-grade leads today". Pure: the caller counts and carries out.

A rule counts calls of one task (or of all the account's tasks) matching a grade and/or a
status, in the current local day or in total, and fires once per period when the count
reaches its threshold: its action applies to `target_task_id` or, when that is empty, to
the counted task (all of the account's tasks for an account-wide rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from enum import StrEnum
from zoneinfo import ZoneInfo


class Period(StrEnum):
    DAY = "day"
    TOTAL = "total"


class QuotaAction(StrEnum):
    PAUSE = "pause"
    START = "start"


def period_start(period: str, now: datetime, zone: str) -> datetime | None:
    """UTC start of the counting period that contains `now` (None: since ever)."""
    if period == Period.TOTAL:
        return None
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    return datetime.combine(local.date(), time(0), tz).astimezone(UTC)


def period_label(period: str, now: datetime, zone: str) -> str:
    """What `fired_on` holds: the local date for a daily rule, "total" otherwise."""
    return now.astimezone(ZoneInfo(zone)).date().isoformat() if period == Period.DAY \
        else "total"


@dataclass(frozen=True)
class Decision:
    rule_id: int
    action: str
    task_ids: tuple[int, ...]
    fired_on: str


def decide(rule, count: int, now: datetime, zone: str, scope_task_ids: list[int]) -> \
        Decision | None:
    """Whether `rule` fires now with `count` matching calls in its period; None if not.

    `scope_task_ids`: the tasks an account-wide rule acts on when it has no target.
    """
    if not rule.enabled or rule.threshold <= 0 or count < rule.threshold:
        return None
    label = period_label(rule.period, now, zone)
    if rule.fired_on == label:
        return None  # already fired in this period
    if rule.target_task_id:
        targets = (rule.target_task_id,)
    elif rule.task_id:
        targets = (rule.task_id,)
    else:
        targets = tuple(scope_task_ids)
    return Decision(rule.id, rule.action, targets, label)
