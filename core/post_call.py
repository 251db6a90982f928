"""Post-call rules (后续动作, FEATURES.md P1): does a finished call meet a rule's conditions,
and which actions follow. Pure: the facts come from the call row, nothing is read or sent.

Conditions are a group, nested as deep as the operator likes::

    {"match": "all",            # all = AND, any = OR; an empty group matches every call
     "items": [
        {"field": "grade", "op": "in", "value": ["A", "B"]},
        {"field": "talk_seconds", "op": ">=", "value": 30},
        {"match": "any", "items": [
            {"field": "tags", "op": "has_any", "value": ["价格", "地址"]},
            {"field": "score", "op": ">", "value": 10}]}]}

Fields and operators:
- grade, status, hangup_side: ``in`` / ``not_in`` a list of values;
- tags: ``has_any`` / ``has_all`` / ``has_none`` of a list;
- score, talk_seconds, ring_seconds, interactions, unrecognised: ``= != > >= < <=`` a number.

Actions (PostCallRule.actions), each a dict with a ``type``:
``{"type": "sms", "template_id": 1}``, ``{"type": "push", "group_id": 2}``,
``{"type": "allocate", "rule_id": 3}``, ``{"type": "redial", "delay_minutes": 60}``.
"""

from __future__ import annotations

import logging
import operator
from enum import StrEnum

log = logging.getLogger(__name__)


class ActionType(StrEnum):
    SMS = "sms"  # 挂机短信
    PUSH = "push"  # 微信推送
    ALLOCATE = "allocate"  # 线索分配
    REDIAL = "redial"  # 加入重呼


CHOICE_FIELDS = ("grade", "status", "hangup_side")
LIST_FIELDS = ("tags",)
NUMBER_FIELDS = ("score", "talk_seconds", "ring_seconds", "interactions", "unrecognised")
FIELDS = CHOICE_FIELDS + LIST_FIELDS + NUMBER_FIELDS
NUMBER_OPS = {"=": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge,
              "<": operator.lt, "<=": operator.le}
CHOICE_OPS = ("in", "not_in")
LIST_OPS = ("has_any", "has_all", "has_none")
ACTION_TARGET = {ActionType.SMS: "template_id", ActionType.PUSH: "group_id",
                 ActionType.ALLOCATE: "rule_id", ActionType.REDIAL: "delay_minutes"}
MAX_DEPTH = 4


class RuleError(ValueError):
    """A rule's conditions or actions are malformed; the message says where."""


def facts(call) -> dict:
    """What conditions look at, read from a Call row (or anything with those attributes)."""
    data = {f: getattr(call, f, None) for f in FIELDS}
    data["tags"] = list(data["tags"] or [])
    for f in NUMBER_FIELDS:
        data[f] = data[f] or 0
    return data


def matches(conditions: dict | None, call_facts: dict) -> bool:
    """Whether `call_facts` (see `facts`) meet `conditions`. Raises RuleError when malformed."""
    return _group(conditions or {}, call_facts, 0)


def _items(group, depth: int) -> tuple[str, list]:
    """A group's (match, items), checked: JSON saved around the console (the API, an old
    row) must fail as RuleError, never as AttributeError inside a finaliser."""
    if depth > MAX_DEPTH:
        raise RuleError("conditions nest too deeply")
    if not isinstance(group, dict):
        raise RuleError(f"a condition group must be an object, not {group!r}")
    items = group.get("items") or []
    match = group.get("match", "all")
    if match not in ("all", "any"):
        raise RuleError(f"match must be all or any, not {match!r}")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise RuleError("items must be a list of conditions")
    return match, items


def _group(group: dict, data: dict, depth: int) -> bool:
    match, items = _items(group, depth)
    if not items:
        return True
    results = (_group(i, data, depth + 1) if "items" in i else _leaf(i, data) for i in items)
    return all(results) if match == "all" else any(results)


def check(conditions: dict | None) -> None:
    """Raise RuleError when any condition is malformed. Unlike `matches`, which stops at the
    first item that settles an AND/OR, this looks at every item, so a bad condition behind
    one that happens to decide a sample call is still caught when the rule is saved."""
    _check(conditions or {}, 0)


def _check(group, depth: int) -> None:
    _, items = _items(group, depth)
    sample = {f: ([] if f in LIST_FIELDS else 0) for f in FIELDS}
    for i in items:
        if "items" in i:
            _check(i, depth + 1)
        else:
            _leaf(i, sample)


def _leaf(cond: dict, data: dict) -> bool:
    field, op, value = cond.get("field"), cond.get("op"), cond.get("value")
    if field in NUMBER_FIELDS:
        if op not in NUMBER_OPS:
            raise RuleError(f"{field}: operator {op!r} is not one of {', '.join(NUMBER_OPS)}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise RuleError(f"{field}: {value!r} is not a number") from None
        return NUMBER_OPS[op](data[field], number)
    if field in CHOICE_FIELDS:
        if op not in CHOICE_OPS or not isinstance(value, list):
            raise RuleError(f"{field}: use in / not_in with a list")
        found = data[field] in value
        return found if op == "in" else not found
    if field in LIST_FIELDS:
        if op not in LIST_OPS or not isinstance(value, list):
            raise RuleError(f"{field}: use has_any / has_all / has_none with a list")
        have = set(data[field])
        if op == "has_any":
            return bool(have & set(value))
        if op == "has_all":
            return set(value) <= have
        return not have & set(value)
    raise RuleError(f"unknown field {field!r}")


def validate(conditions: dict, actions: list) -> list[str]:
    """Problems with a rule, as messages (empty when it is fine)."""
    problems = []
    try:
        check(conditions)
    except RuleError as exc:
        problems.append(str(exc))
    if not isinstance(actions, list) or not actions:
        problems.append("a rule needs at least one action")
        return problems
    for a in actions:
        kind = a.get("type") if isinstance(a, dict) else None
        if kind not in set(ActionType):
            problems.append(f"unknown action {kind!r}")
        elif not isinstance(a.get(ACTION_TARGET[kind]), int):
            problems.append(f"{kind}: {ACTION_TARGET[kind]} must be a number")
    return problems


def once_token(action: dict):
    """What "at most once per call" counts: the kind, and for notices the push group."""
    kind = action.get("type")
    return (kind, action.get("group_id")) if kind == ActionType.PUSH else kind


def plan(rules, call_facts: dict, done=()) -> list[tuple[object, dict]]:
    """(rule, action) pairs to carry out for a call, from `rules` in order (enabled ones).

    A call gets at most one hang-up SMS, one allocation and one redial (the first matching
    rule's wins) and one notice per push group, however many rules match. `done` holds the
    `once_token`s of actions the call already has (an earlier evaluation, when the call is
    finalised again with a changed status or grade): those are not planned again. A rule
    whose conditions are malformed (saved around the console's checks) is skipped and
    logged, never raised: the finaliser's transaction must not fail on it.
    """
    chosen, seen = [], set(done)
    for rule in rules:
        try:
            if not rule.enabled or not matches(rule.conditions, call_facts):
                continue
        except RuleError as exc:
            log.warning("post-call rule %s skipped: %s", rule.id, exc)
            continue
        for action in rule.actions if isinstance(rule.actions, list) else []:
            kind = action.get("type") if isinstance(action, dict) else None
            if kind not in set(ActionType) or not isinstance(
                    action.get(ACTION_TARGET[kind]), int):
                log.warning("post-call rule %s: action %r skipped", rule.id, action)
                continue
            once = once_token(action)
            if once in seen:
                continue
            seen.add(once)
            chosen.append((rule, action))
    return chosen
