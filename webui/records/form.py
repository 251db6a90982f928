"""The records page's filter form ↔ condition groups (core.call_query).

The page's state is its query string, so a filtered list can be bookmarked, paged and
exported as seen. It has two parts:

- the scope — number, tasks and call time — which always narrows the list;
- the conditions (the basic region/tags/grade and the advanced panel), joined by the
  relation 筛选关系 (`rel`: and/or). A saved condition group (条件组) is this part only, so
  it can be applied to any tasks and period.

`parse` reads the arguments into the two groups; `to_args` turns a conditions group back
into arguments (applying a saved group), and round-trips with `parse`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core.call_query import FIELDS, Condition, FilterError, Group, validate

LOCAL_MINUTE = "%Y-%m-%dT%H:%M"  # <input type="datetime-local">


@dataclass(frozen=True)
class Arg:
    field: str
    op: str
    kind: str  # text, list, ids, multi, words, int_range, time_range, date_range, bool
    names: tuple[str, ...]  # query-string names


SCOPE = (
    Arg("phone", "", "phone", ("phone", "phone_mode")),
    Arg("task", "in", "ids", ("task",)),
    Arg("call_time", "between", "time_range", ("call_from", "call_to")),
)
CONDITIONS = (
    Arg("region", "contains", "text", ("region",)),
    Arg("tags", "any", "words", ("tags",)),
    Arg("grade", "in", "multi", ("grade",)),
    Arg("status", "in", "multi", ("status",)),
    Arg("talk_seconds", "between", "int_range", ("talk_min", "talk_max")),
    Arg("interactions", "between", "int_range", ("inter_min", "inter_max")),
    Arg("number_created", "between", "date_range", ("created_from", "created_to")),
    Arg("transfer", "in", "multi", ("transfer",)),
    Arg("push", "in", "multi", ("push",)),
    Arg("sms", "in", "multi", ("sms",)),
    Arg("gender", "in", "multi", ("gender",)),
    Arg("carrier", "in", "multi", ("carrier",)),
    Arg("hangup_side", "in", "multi", ("hangup_side",)),
    Arg("viewed", "eq", "bool", ("viewed",)),
)
# Every name the filter uses, for carrying the current filter into the page's forms.
NAMES = tuple(n for a in SCOPE + CONDITIONS for n in a.names) + ("rel",)
_WORD_SEPARATORS = str.maketrans({"，": ",", "、": ",", ";": ",", "；": ","})


def _values(args, name: str) -> list[str]:
    return [v.strip() for v in args.getlist(name) if v.strip()]


def _int(arg: Arg, text: str) -> int | None:
    if not text:
        return None
    if not text.isdigit():
        raise FilterError(f"{FIELDS[arg.field].name}：应为不小于 0 的整数")
    return int(text)


def _local(arg: Arg, text: str, zone: ZoneInfo, end: bool) -> str | None:
    """A form's local time (or date) as an ISO time with the account's offset; a date's
    end is the last instant of that day."""
    if not text:
        return None
    try:
        if arg.kind == "date_range":
            day = date.fromisoformat(text)
            value = datetime.combine(day, time.max if end else time.min)
        else:
            value = datetime.strptime(text, LOCAL_MINUTE)
            value += timedelta(seconds=59, microseconds=999999) if end else timedelta()
    except ValueError:
        raise FilterError(f"{FIELDS[arg.field].name}：时间格式不正确") from None
    return value.replace(tzinfo=zone).isoformat()


def _condition(arg: Arg, args, zone: ZoneInfo) -> dict | None:
    """The raw condition the form asks for under `arg`, or None when its inputs are empty."""
    first = (args.get(arg.names[0]) or "").strip()
    if arg.kind == "phone":
        op = "eq" if args.get("phone_mode") == "exact" else "contains"
        return {"field": arg.field, "op": op, "value": first} if first else None
    if arg.kind == "text":
        value = first or None
    elif arg.kind == "words":
        value = [w.strip() for w in first.translate(_WORD_SEPARATORS).split(",") if w.strip()]
    elif arg.kind == "multi":
        value = _values(args, arg.names[0])
    elif arg.kind == "ids":
        texts = _values(args, arg.names[0])
        if not all(t.isdigit() for t in texts):
            raise FilterError(f"{FIELDS[arg.field].name}：应为正整数编号")
        value = [int(t) for t in texts]
    elif arg.kind == "bool":
        value = {"yes": True, "no": False}.get(first)
    else:  # ranges
        second = (args.get(arg.names[1]) or "").strip()
        if arg.kind == "int_range":
            value = [_int(arg, first), _int(arg, second)]
        else:
            value = [_local(arg, first, zone, False), _local(arg, second, zone, True)]
        if value == [None, None]:
            value = None
    if value in (None, []):
        return None
    return {"field": arg.field, "op": arg.op, "value": value}


def _group(specs, args, zone: ZoneInfo, op: str = "and") -> Group:
    conditions = [c for a in specs if (c := _condition(a, args, zone))]
    return validate({"op": op, "conditions": conditions})


def parse(args, zone: ZoneInfo) -> tuple[Group, Group]:
    """(scope, conditions) of the page's arguments; raises FilterError for a bad input."""
    rel = args.get("rel") if args.get("rel") in ("and", "or") else "and"
    return _group(SCOPE, args, zone), _group(CONDITIONS, args, zone, rel)


def combined(scope: Group, conditions: Group) -> Group:
    """The one group the list and the export run: the scope AND the conditions."""
    return Group("and", scope.items + ((conditions,) if conditions.items else ()))


def to_args(conditions: Group, zone: ZoneInfo) -> dict[str, str | list[str]]:
    """The page's arguments for a conditions group made by `parse` (a saved group)."""
    specs = {a.field: a for a in CONDITIONS}
    out: dict[str, str | list[str]] = {"rel": conditions.op} if conditions.op == "or" else {}
    for item in conditions.items:
        if isinstance(item, Condition) and item.field in specs:
            out.update(_arg_values(specs[item.field], item.value, zone))
    return out


def _arg_values(arg: Arg, value, zone: ZoneInfo) -> Mapping[str, str | list[str]]:
    if arg.kind == "text":
        return {arg.names[0]: value}
    if arg.kind == "words":
        return {arg.names[0]: ", ".join(value)}
    if arg.kind == "multi":
        return {arg.names[0]: list(value)}
    if arg.kind == "bool":
        return {arg.names[0]: "yes" if value else "no"}
    if arg.kind == "int_range":
        return {n: str(v) for n, v in zip(arg.names, value, strict=True) if v is not None}
    fmt = "%Y-%m-%d" if arg.kind == "date_range" else LOCAL_MINUTE
    return {n: v.astimezone(zone).strftime(fmt)
            for n, v in zip(arg.names, value, strict=True) if v is not None}
