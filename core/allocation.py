"""Who gets the next lead or notice: the strategies of push groups (推送组, FEATURES.md P2)
and lead allocation rules (外呼线索分配规则, P3). Pure functions of (members, state).

State is a small JSON-able dict kept by the caller (on the group or rule row) between picks:
``{"last": user_id, "counts": {"user_id": n}}``. Members are user ids in the order the
operator set.

- average (平均): the member with the fewest picks so far; ties go to the earlier member.
  9 leads to A, B, C → 3 each.
- order (顺序): strictly round the list after the last one picked. 10 leads → A, B, C, A, B,
  C, A, B, C, A; the 11th goes to B.
- random (随机): any member, uniformly.
- all (全部, push groups only): every member gets the same notice.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum


class Strategy(StrEnum):
    AVERAGE = "average"
    ORDER = "order"
    RANDOM = "random"
    ALL = "all"


class LeadMode(StrEnum):
    """What a lead allocation rule does with one grade's leads."""

    AVERAGE = "average"
    ORDER = "order"
    RANDOM = "random"
    POOL = "pool"  # 放入公海: the lead is kept with no owner
    NONE = "none"  # 不处理: no lead is made


PUSH_STRATEGIES = tuple(Strategy)
LEAD_MODES = tuple(LeadMode)


def pick(strategy: str, members: list[int], state: dict | None,
         rng: random.Random | None = None) -> tuple[list[int], dict]:
    """The members who get the next item under `strategy`, and the new state.

    Returns ([], state) when there are no members. Raises ValueError on an unknown strategy.
    """
    state = {"last": (state or {}).get("last"),
             "counts": dict((state or {}).get("counts") or {})}
    if not members:
        return [], state
    counts = state["counts"]
    if strategy == Strategy.ALL:
        chosen = list(members)
    elif strategy == Strategy.AVERAGE:
        chosen = [min(members, key=lambda m: (counts.get(str(m), 0), members.index(m)))]
    elif strategy == Strategy.ORDER:
        last = state["last"]
        at = members.index(last) + 1 if last in members else 0
        chosen = [members[at % len(members)]]
    elif strategy == Strategy.RANDOM:
        chosen = [(rng or random).choice(members)]
    else:
        raise ValueError(f"unknown strategy {strategy!r}")
    for m in chosen:
        counts[str(m)] = counts.get(str(m), 0) + 1
    state["last"] = chosen[-1]
    return chosen, state


@dataclass(frozen=True)
class LeadDecision:
    """make_lead False: nothing to do (mode none or no rule for the grade). owner_id None with
    make_lead True: into the pool."""

    make_lead: bool
    owner_id: int | None = None
    mode: str = LeadMode.NONE


def allocate(grades: dict, grade: str | None, state: dict | None,
             rng: random.Random | None = None) -> tuple[LeadDecision, dict]:
    """Apply a lead allocation rule's per-grade settings to one lead of `grade`.

    `grades` is ``{"A": {"mode": "order", "user_ids": [3, 4, 5]}, "B": {"mode": "pool"}}``;
    `state` is ``{"A": <pick state>, …}``. A grade that is absent, or a staff mode with no
    staff, gives no lead (the latter falls back to the pool so the lead is not lost).
    Returns the decision and the new state.
    """
    state = dict(state or {})
    conf = (grades or {}).get(grade or "") or {}
    mode = conf.get("mode", LeadMode.NONE)
    if mode == LeadMode.NONE:
        return LeadDecision(False), state
    if mode == LeadMode.POOL:
        return LeadDecision(True, None, mode), state
    members = [int(u) for u in conf.get("user_ids") or []]
    if not members:
        return LeadDecision(True, None, LeadMode.POOL), state
    chosen, state[grade] = pick(mode, members, state.get(grade))
    return LeadDecision(True, chosen[0], mode), state


def validate_grades(grades: dict, valid_grades, valid_user_ids) -> dict[str, str]:
    """Errors by grade for a rule's settings (empty when it is fine)."""
    errors = {}
    for grade, conf in (grades or {}).items():
        if grade not in valid_grades:
            errors[grade] = "unknown grade"
        elif not isinstance(conf, dict) or conf.get("mode") not in LEAD_MODES:
            errors[grade] = "mode must be one of " + ", ".join(LEAD_MODES)
        elif any(int(u) not in valid_user_ids for u in conf.get("user_ids") or []):
            errors[grade] = "unknown staff member"
    return errors
