"""Rules about tasks that need no I/O: field validation and the line concurrency check (T2)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from core.enums import Direction, ScriptMode, TaskEndAction

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d|24:00")
CALL_INTERVALS = (0, 1, 3, 5, 10, 30, 60)  # 0 is auto; any other positive value is custom


class FieldError(ValueError):
    """A value our converters reject, with a message fit to show the user."""


class ValidationError(ValueError):
    """Field → message (Chinese, the console's first language)."""

    def __init__(self, errors: Mapping[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


def _weekly(value) -> dict:
    if not isinstance(value, dict) or set(value) - set(WEEKDAYS):
        raise FieldError("应为 {mon: [[\"09:00\",\"18:00\"]], …}")
    for segments in value.values():
        for seg in segments:
            if (len(seg) != 2 or not all(isinstance(t, str) and _HHMM.fullmatch(t) for t in seg)
                    or seg[0] >= seg[1]):
                raise FieldError(f"时间段 {seg} 无效：应为开始早于结束的 HH:MM")
    return value


def _date(value):
    return None if value in (None, "") else date.fromisoformat(value)


def _non_empty_name(value) -> str:
    value = str(value).strip()
    if not value or len(value) > 120:
        raise FieldError("名称不能为空，且不超过120字")
    return value


def _positive(value) -> int:
    value = int(value)
    if value < 1:
        raise FieldError("应为正整数")
    return value


def _interval(value) -> int:
    value = int(value)
    if value < 0:
        raise FieldError("不能为负数")
    return value


def _optional_id(value):
    return None if value in (None, "") else int(value)


FIELDS = {
    "name": _non_empty_name,
    "tags": lambda v: [str(t) for t in v],
    "direction": Direction,
    "script_mode": ScriptMode,
    "script_id": _optional_id,
    "fallback_script_id": _optional_id,
    "timed_scripts": list,
    "line_id": _optional_id,
    "max_concurrency": _positive,
    "call_interval_s": _interval,
    "background_sound": lambda v: v or None,
    "date_start": _date,
    "date_end": _date,
    "weekly": _weekly,
    "call_time_template_id": _optional_id,
    "skip_holidays": bool,
    "forbidden_ranges": list,
    "lead_allocation": dict,
    "transfer_group_id": _optional_id,
    "pause_when_agents_busy": bool,
    "predictive": bool,
    "predictive_busy_to_ai": bool,
    "end_action": TaskEndAction,
    "dialogue_settings": dict,
    "quota": dict,
    "qc_rule": dict,
}


def clean_task_fields(data: Mapping, partial: bool = False) -> dict:
    """Validate and convert task fields from a form or JSON body.

    Unknown fields and bad values raise ValidationError with one message per field.
    """
    errors: dict[str, str] = {}
    cleaned: dict = {}
    for key in data:
        if key not in FIELDS:
            errors[key] = "未知字段"
    if not partial and "name" not in data:
        errors["name"] = "必填"
    for key, convert in FIELDS.items():
        if key in data:
            try:
                cleaned[key] = convert(data[key])
            except FieldError as exc:
                errors[key] = str(exc)
            except (ValueError, TypeError):
                errors[key] = f"格式错误：{data[key]!r}"
    if not errors and cleaned.get("date_start") and cleaned.get("date_end") \
            and cleaned["date_start"] > cleaned["date_end"]:
        errors["date_end"] = "结束日期不能早于开始日期"
    if errors:
        raise ValidationError(errors)
    return cleaned


@dataclass(frozen=True)
class CapacityCheck:
    ok: bool
    line_max: int
    used: int
    requested: int

    @property
    def message(self) -> str:
        return (f"并发不足：线路最大并发 {self.line_max}，其他运行中任务已占用 {self.used}，"
                f"本任务需要 {self.requested}")


def check_line_capacity(line_max: int, running_concurrency: Iterable[int],
                        requested: int) -> CapacityCheck:
    """T2: the running tasks on a line may together use at most the line's concurrency."""
    used = sum(running_concurrency)
    return CapacityCheck(used + requested <= line_max, line_max, used, requested)
