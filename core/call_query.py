"""Condition groups over call records (通话记录筛选, 高级筛选, 条件组 — FEATURES.md R1).

A group is JSON, the same from the console, a saved condition group and the API::

    {"op": "and" | "or", "conditions": [condition | group, ...]}
    condition = {"field": "talk_seconds", "op": "between", "value": [180, null]}

Two steps, kept apart so the rules can be tested without a database:

- `validate(data) -> Group` is pure: it checks every field, operator and value and returns
  typed values (datetimes, tuples), or raises `FilterError` whose Chinese message names the
  field (`FIELDS` lists them with their operators).
- `where(group)` turns a validated group into one SQLAlchemy where clause over `Call`. The
  clause is portable: the JSON look-ups (tags, the transfer/sms/push results) compile to
  SQLite's JSON1 functions or PostgreSQL's jsonb operators.

Account scoping is not a condition: callers add `webui.security.select_visible` (or
`core.scoping.scoped`) themselves, so no group can widen what a user sees.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ColumnElement, Text, and_, cast, exists, func, or_, select, true
from sqlalchemy.dialects.postgresql import ARRAY, array
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement, bindparam

from core.enums import CallStatus, Grade, HangupSide
from core.models import Call, PushMessage, TaskNumber

MAX_DEPTH = 3  # a group inside a group inside the top group
MAX_CONDITIONS = 50
MAX_LIST = 500  # tasks, tags … in one condition

# The buckets a call's after-call results fall into. Each set partitions the calls, so any
# combination of its values can be asked for.
TRANSFER_OUTCOMES = ("success", "failed", "none")
PUSH_OUTCOMES = ("seen", "pushed", "failed", "none")  # pushed: not (yet) seen
SMS_OUTCOMES = ("sent", "failed", "none")
GENDERS = ("male", "female", "unknown")  # the seed's 1-男 2-女, empty 未知
# Carriers as core.phone_info stores them (phonenumbers' Chinese names); the console offers
# these, the API takes any name.
CARRIERS = ("中国移动", "中国联通", "中国电信", "中国广电")


class FilterError(ValueError):
    """An invalid condition group; the message (Chinese) names the field at fault."""


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any  # typed by the field's parser: str, bool, tuple of ids/choices, (low, high)


@dataclass(frozen=True)
class Group:
    op: str  # "and" | "or"
    items: tuple[Condition | Group, ...]


# --- value parsers (pure) -----------------------------------------------------------------
# Each takes the field's Chinese name and the raw JSON value, returns the typed value.

def _text(max_len: int) -> Callable[[str, Any], str]:
    def parse(name: str, raw: Any) -> str:
        if not isinstance(raw, str) or not raw.strip():
            raise FilterError(f"{name}：请输入内容")
        if len(raw.strip()) > max_len:
            raise FilterError(f"{name}：最多 {max_len} 个字符")
        return raw.strip()
    return parse


_PHONE_CHARS = re.compile(r"[\s\-()]")


def _phone(name: str, raw: Any) -> str:
    text = _PHONE_CHARS.sub("", _text(32)(name, raw))
    if text.startswith("+86"):
        text = text[3:]
    if not text.isdigit():
        raise FilterError(f"{name}：只能包含数字")
    return text


def _list(name: str, raw: Any) -> list:
    if not isinstance(raw, list) or not raw:
        raise FilterError(f"{name}：请至少选择一项")
    if len(raw) > MAX_LIST:
        raise FilterError(f"{name}：最多 {MAX_LIST} 项")
    return raw


def _ids(name: str, raw: Any) -> tuple[int, ...]:
    items = _list(name, raw)
    if not all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in items):
        raise FilterError(f"{name}：应为正整数编号")
    return tuple(sorted(set(items)))


def _strings(max_len: int) -> Callable[[str, Any], tuple[str, ...]]:
    def parse(name: str, raw: Any) -> tuple[str, ...]:
        items = _list(name, raw)
        if not all(isinstance(i, str) and i.strip() for i in items):
            raise FilterError(f"{name}：应为非空文字")
        if any(len(i.strip()) > max_len for i in items):
            raise FilterError(f"{name}：每项最多 {max_len} 个字符")
        return tuple(sorted({i.strip() for i in items}))
    return parse


def _choices(allowed: Iterable[str]) -> Callable[[str, Any], tuple[str, ...]]:
    allowed = tuple(str(a) for a in allowed)

    def parse(name: str, raw: Any) -> tuple[str, ...]:
        items = _list(name, raw)
        unknown = [i for i in items if i not in allowed]
        if unknown:
            raise FilterError(f"{name}：未知的取值 {unknown[0]!r}（可选 {'、'.join(allowed)}）")
        return tuple(a for a in allowed if a in items)
    return parse


def _pair(name: str, raw: Any) -> tuple[Any, Any]:
    if not isinstance(raw, list) or len(raw) != 2:
        raise FilterError(f"{name}：应为 [起, 止] 两个值")
    if raw[0] is None and raw[1] is None:
        raise FilterError(f"{name}：起止至少填写一个")
    return raw[0], raw[1]


def _int_range(name: str, raw: Any) -> tuple[int | None, int | None]:
    low, high = _pair(name, raw)
    for v in (low, high):
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise FilterError(f"{name}：应为不小于 0 的整数")
    if low is not None and high is not None and low > high:
        raise FilterError(f"{name}：最小值不能大于最大值")
    return low, high


def _time(name: str, raw: Any) -> datetime | None:
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        value = None
    if value is None:
        raise FilterError(f"{name}：时间格式应为 ISO 8601，如 2026-01-01T09:00:00+08:00")
    if value.tzinfo is None:
        raise FilterError(f"{name}：时间须带时区，如 +08:00")
    return value


def _time_range(name: str, raw: Any) -> tuple[datetime | None, datetime | None]:
    low, high = (_time(name, v) for v in _pair(name, raw))
    if low is not None and high is not None and low > high:
        raise FilterError(f"{name}：开始时间不能晚于结束时间")
    return low, high


def _bool(name: str, raw: Any) -> bool:
    if not isinstance(raw, bool):
        raise FilterError(f"{name}：应为 true 或 false")
    return raw


@dataclass(frozen=True)
class Field:
    name: str  # Chinese, for error messages
    ops: Mapping[str, Callable[[str, Any], Any]]


FIELDS: dict[str, Field] = {
    "phone": Field("手机号", {"eq": _phone, "contains": _phone}),
    "task": Field("任务", {"in": _ids}),
    "call_time": Field("呼叫时间", {"between": _time_range}),
    "number_created": Field("号码创建时间", {"between": _time_range}),
    "region": Field("地区", {"contains": _text(64)}),
    "tags": Field("标签", {"any": _strings(64)}),
    "grade": Field("意向", {"in": _choices(Grade)}),
    "status": Field("呼叫状态", {"in": _choices(CallStatus)}),
    "talk_seconds": Field("通话时长", {"between": _int_range}),
    "interactions": Field("交互次数", {"between": _int_range}),
    "transfer": Field("转接", {"in": _choices(TRANSFER_OUTCOMES)}),
    "push": Field("微信推送", {"in": _choices(PUSH_OUTCOMES)}),
    "sms": Field("挂机短信", {"in": _choices(SMS_OUTCOMES)}),
    "gender": Field("性别", {"in": _choices(GENDERS)}),
    "carrier": Field("运营商", {"in": _strings(16)}),
    "hangup_side": Field("挂断方", {"in": _choices(HangupSide)}),
    "viewed": Field("查看状态", {"eq": _bool}),
}


# --- validation (pure) --------------------------------------------------------------------

def validate(data: Any) -> Group:
    """The typed group for `data` (parsed JSON); raises FilterError naming what is wrong."""
    count = [0]
    return _group(data, 1, count)


def _group(data: Any, depth: int, count: list[int]) -> Group:
    if not isinstance(data, dict):
        raise FilterError("筛选条件应为 {\"op\": …, \"conditions\": […]} 对象")
    op = data.get("op", "and")
    if op not in ("and", "or"):
        raise FilterError("筛选关系应为 and（且）或 or（或）")
    items = data.get("conditions", [])
    if not isinstance(items, list):
        raise FilterError("conditions 应为列表")
    parsed = []
    for item in items:
        if isinstance(item, dict) and "conditions" in item:
            if depth >= MAX_DEPTH:
                raise FilterError(f"条件组最多嵌套 {MAX_DEPTH} 层")
            parsed.append(_group(item, depth + 1, count))
        else:
            count[0] += 1
            if count[0] > MAX_CONDITIONS:
                raise FilterError(f"最多 {MAX_CONDITIONS} 个条件")
            parsed.append(_condition(item))
    return Group(op, tuple(parsed))


def _condition(data: Any) -> Condition:
    if not isinstance(data, dict):
        raise FilterError("每个条件应为 {\"field\", \"op\", \"value\"} 对象")
    field = FIELDS.get(data.get("field"))  # type: ignore[arg-type]
    if field is None:
        raise FilterError(f"未知的筛选字段 {data.get('field')!r}")
    op = data.get("op")
    parse = field.ops.get(op)  # type: ignore[arg-type]
    if parse is None:
        raise FilterError(f"{field.name}：不支持的比较方式 {op!r}（可用 {'、'.join(field.ops)}）")
    return Condition(data["field"], op, parse(field.name, data.get("value")))


def to_json(group: Group) -> dict:
    """The JSON form of a validated group (what `validate` accepts back)."""
    def value(v):
        if isinstance(v, datetime):
            return v.isoformat()
        if isinstance(v, tuple):
            return [value(i) for i in v]
        return v

    return {"op": group.op, "conditions": [
        to_json(i) if isinstance(i, Group) else {"field": i.field, "op": i.op,
                                                  "value": value(i.value)}
        for i in group.items]}


def all_of(*groups: Group) -> Group:
    """One group requiring every one of `groups` (e.g. the API's simple parameters and its
    `filter`)."""
    return Group("and", tuple(g for g in groups if g.items))


# --- SQL (portable) -----------------------------------------------------------------------

class json_array_has_any(FunctionElement):
    """True when `column`, a JSON array of strings, holds any of the given strings."""

    type = Boolean()
    inherit_cache = True
    name = "json_array_has_any"


@compiles(json_array_has_any, "sqlite")
def _has_any_sqlite(element, compiler, **kw):
    column, *values = element.clauses
    items = func.json_each(column).table_valued("value")
    return compiler.process(exists().select_from(items).where(items.c.value.in_(values)), **kw)


@compiles(json_array_has_any, "postgresql")
def _has_any_postgresql(element, compiler, **kw):
    column, *values = element.clauses
    return compiler.process(column.op("?|")(cast(array(values), ARRAY(Text))), **kw)


def _state(column) -> ColumnElement:
    """The "state" of an after-call result dict (None when there is no result)."""
    return column["state"].as_string()


def _outcomes(column, chosen: tuple[str, ...], stored: Mapping[str, str]) -> ColumnElement:
    """Calls whose result `column` falls in the `chosen` buckets; `stored` maps a bucket to
    the state value kept in the JSON, "none" is every call with neither."""
    state = _state(column)
    parts = [state == stored[c] for c in chosen if c != "none"]
    if "none" in chosen:
        parts.append(or_(state.is_(None), state.not_in(list(stored.values()))))
    return or_(*parts)


def _range(column, bounds) -> ColumnElement:
    low, high = bounds
    parts = []
    if low is not None:
        parts.append(column >= low)
    if high is not None:
        parts.append(column <= high)
    return and_(*parts)


_SEEN = exists().where(PushMessage.call_id == Call.id, PushMessage.seen_at.is_not(None))


def _push(chosen: tuple[str, ...]) -> ColumnElement:
    parts = []
    if "seen" in chosen:
        parts.append(_SEEN)
    if "pushed" in chosen:
        parts.append(and_(_state(Call.push) == "success", ~_SEEN))
    rest = tuple(c for c in chosen if c in ("failed", "none"))
    if rest:
        parts.append(_outcomes(Call.push, rest, {"pushed": "success", "failed": "failed"}))
    return or_(*parts)


def _gender(chosen: tuple[str, ...]) -> ColumnElement:
    known = [g for g in GENDERS if g != "unknown"]
    parts = [Call.gender.in_([c for c in chosen if c != "unknown"])]
    if "unknown" in chosen:
        parts.append(or_(Call.gender.is_(None), Call.gender.not_in(known)))
    return or_(*parts)


def _tags(values: tuple[str, ...]) -> ColumnElement:
    return json_array_has_any(Call.tags, *(bindparam(None, v, Text) for v in values))


def _number_created(bounds) -> ColumnElement:
    # A semi-join on the number's id: the call table has no copy of the number's creation.
    return Call.task_number_id.in_(select(TaskNumber.id).where(
        _range(TaskNumber.created_at, bounds)))


CLAUSES: dict[tuple[str, str], Callable[[Any], ColumnElement]] = {
    ("phone", "eq"): lambda v: Call.phone == v,
    ("phone", "contains"): lambda v: Call.phone.contains(v, autoescape=True),
    ("task", "in"): lambda v: Call.task_id.in_(v),
    ("call_time", "between"): lambda v: _range(Call.created_at, v),
    ("number_created", "between"): _number_created,
    ("region", "contains"): lambda v: Call.region.contains(v, autoescape=True),
    ("tags", "any"): _tags,
    ("grade", "in"): lambda v: Call.grade.in_(v),
    ("status", "in"): lambda v: Call.status.in_(v),
    ("talk_seconds", "between"): lambda v: _range(Call.talk_seconds, v),
    ("interactions", "between"): lambda v: _range(Call.interactions, v),
    ("transfer", "in"): lambda v: _outcomes(Call.transfer, v, {"success": "success",
                                                               "failed": "failed"}),
    ("push", "in"): _push,
    ("sms", "in"): lambda v: _outcomes(Call.sms, v, {"sent": "success", "failed": "failed"}),
    ("gender", "in"): _gender,
    ("carrier", "in"): lambda v: Call.carrier.in_(v),
    ("hangup_side", "in"): lambda v: Call.hangup_side.in_(v),
    ("viewed", "eq"): lambda v: Call.viewed == v,
}


def where(group: Group) -> ColumnElement[bool]:
    """The where clause of a validated group over `Call` (an empty group matches all)."""
    parts = [where(i) if isinstance(i, Group) else CLAUSES[i.field, i.op](i.value)
             for i in group.items]
    if not parts:
        return true()
    return and_(*parts) if group.op == "and" else or_(*parts)

