"""Rules about tasks that need no I/O: field validation and the line concurrency check (T2)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from core.enums import CallStatus, Direction, ScriptMode, TaskEndAction

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d|24:00")
_LOCAL_POINT = re.compile(r"\d{4}-\d{2}-\d{2}(T([01]\d|2[0-3]):[0-5]\d)?")
_ALIAS = re.compile(r"[\w\-]{1,64}")
CALL_INTERVALS = (0, 1, 3, 5, 10, 30, 60)  # 0 is auto; any other positive value is custom

_WORKDAYS = WEEKDAYS[:5]
# The seed's named schedules (早九晚六 …), all with the usual 12:00–13:00 lunch break; the
# first is its default (默认分组：早上 9 点开始，12 点休息，13 点开始 18 点休息).
CALL_TIME_PRESETS = {
    "早九晚六": {d: [["09:00", "12:00"], ["13:00", "18:00"]] for d in _WORKDAYS},
    "早九晚五": {d: [["09:00", "12:00"], ["13:00", "17:00"]] for d in _WORKDAYS},
    "早十晚六": {d: [["10:00", "12:00"], ["13:00", "18:00"]] for d in _WORKDAYS},
}
DEFAULT_WEEKLY = CALL_TIME_PRESETS["早九晚六"]

# Task.dialogue_settings keys the console edits (呼叫设置-其他), with their allowed range;
# controller/dialogue/README.md says what each does.
DIALOGUE_LIMITS = {
    "barge_in_ms": (100, 5000),
    "max_pause_ms": (200, 5000),
    "no_input_ms": (1000, 30000),
    "max_utterance_ms": (2000, 60000),
    "asr_timeout_s": (1, 30),
    "background_db": (0, 40),
}
ASR_KINDS = ("scripted", "funasr", "openai")


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


def _alias(value):
    value = str(value or "").strip()
    if not value:
        return None
    if not _ALIAS.fullmatch(value):
        raise FieldError("别名只能包含字母、数字、汉字、下划线和连字符，不超过64字")
    return value


def _bounded(low: int, high: int):
    def convert(value) -> int:
        value = int(value)
        if not low <= value <= high:
            raise FieldError(f"应在 {low} 到 {high} 之间")
        return value
    return convert


def _redial_statuses(value) -> list[str]:
    statuses = [str(v) for v in value]
    bad = [v for v in statuses if v not in set(CallStatus) or v == CallStatus.ANSWERED]
    if bad:
        raise FieldError(f"不能重呼的呼叫状态：{', '.join(bad)}")
    return list(dict.fromkeys(statuses))


def _forbidden_ranges(value) -> list[list[str]]:
    """[["2026-10-01", "2026-10-07"], ["2026-12-24T18:00", "2026-12-24T23:59"]] — local
    dates or minutes, both ends included (core.windows reads them)."""
    ranges = []
    for item in value:
        if not isinstance(item, list | tuple) or len(item) != 2 or not all(
                isinstance(p, str) and _LOCAL_POINT.fullmatch(p) for p in item):
            raise FieldError(f"禁呼时间 {item} 无效：应为 YYYY-MM-DD 或 YYYY-MM-DDTHH:MM")
        start, end = item
        if end < start:
            raise FieldError(f"禁呼时间 {start} ~ {end}：结束早于开始")
        ranges.append([start, end])
    return ranges


def _timed_scripts(value) -> list[dict]:
    """按时间配置: [{"start": "09:00", "end": "12:00", "script_id": 3}, …], not overlapping."""
    rows = []
    for item in value:
        if not isinstance(item, dict) or not item.get("script_id"):
            raise FieldError("每个时间段都要选择话术")
        start, end = item.get("start"), item.get("end")
        if not all(isinstance(t, str) and _HHMM.fullmatch(t) for t in (start, end)) \
                or start >= end:
            raise FieldError(f"时间段 {start}-{end} 无效：应为开始早于结束的 HH:MM")
        rows.append({"start": start, "end": end, "script_id": int(item["script_id"])})
    rows.sort(key=lambda r: r["start"])
    for before, after in zip(rows, rows[1:], strict=False):
        if after["start"] < before["end"]:
            raise FieldError(f"时间段 {before['start']}-{before['end']} 与 "
                             f"{after['start']}-{after['end']} 重叠")
    return rows


def _dialogue_settings(value) -> dict:
    if not isinstance(value, dict):
        raise FieldError("应为对象")
    out = dict(value)
    for key, (low, high) in DIALOGUE_LIMITS.items():
        if out.get(key) in (None, ""):
            out.pop(key, None)
            continue
        try:
            number = int(out[key])
        except (TypeError, ValueError):
            raise FieldError(f"{key} 应为整数") from None
        if not low <= number <= high:
            raise FieldError(f"{key} 应在 {low} 到 {high} 之间")
        out[key] = number
    closing = out.get("closing_prompt")
    if isinstance(closing, str) and len(closing) > 500:
        raise FieldError("挂断语不超过500字")
    asr = out.get("asr")
    if isinstance(asr, dict) and asr.get("kind") not in (None, *ASR_KINDS):
        raise FieldError(f"未知的识别引擎 {asr.get('kind')}")
    return out


FIELDS = {
    "name": _non_empty_name,
    "alias": _alias,
    "tags": lambda v: [str(t) for t in v],
    "direction": Direction,
    "script_mode": ScriptMode,
    "script_id": _optional_id,
    "fallback_script_id": _optional_id,
    "timed_scripts": _timed_scripts,
    "line_id": _optional_id,
    "max_concurrency": _positive,
    "call_interval_s": _interval,
    "background_sound": lambda v: v or None,
    "date_start": _date,
    "date_end": _date,
    "weekly": _weekly,
    "call_time_template_id": _optional_id,
    "skip_holidays": bool,
    "forbidden_ranges": _forbidden_ranges,
    "lead_allocation": dict,
    "transfer_group_id": _optional_id,
    "pause_when_agents_busy": bool,
    "predictive": bool,
    "predictive_busy_to_ai": bool,
    "end_action": TaskEndAction,
    "max_attempts": _bounded(1, 10),
    "redial_statuses": _redial_statuses,
    "redial_interval_s": _bounded(0, 7 * 24 * 3600),
    "ring_timeout_s": _bounded(10, 120),
    "max_call_s": _bounded(30, 3600),
    "dialogue_settings": _dialogue_settings,
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
    if not errors and cleaned.get("script_mode") == ScriptMode.BY_TIME \
            and not cleaned.get("timed_scripts") and not cleaned.get("fallback_script_id"):
        errors["timed_scripts"] = "按时间配置时至少设置一个时间段或兜底话术"
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
