"""Call records: query with filters and paging.

Besides the simple parameters, `filter` takes a condition group as JSON (core.call_query:
the same groups the console builds and saves), combined with them by AND.
"""

from __future__ import annotations

import json
from datetime import datetime

from flask import jsonify, request

from core import call_query
from core.enums import Role
from core.models import Call
from webui.api import ApiError, bp, paged
from webui.api import serialise as ser
from webui.security import require_role, select_visible

FILTER_HELP = (
    'A condition group as JSON, e.g. {"op": "and", "conditions": [{"field": "grade", '
    '"op": "in", "value": ["A", "B"]}, {"field": "talk_seconds", "op": "between", '
    '"value": [60, null]}]}. Fields and operators: ' + "; ".join(
        f"{name} ({'/'.join(field.ops)})" for name, field in call_query.FIELDS.items())
    + ". Ranges are [low, high] (either may be null), times ISO 8601 with an offset; "
      "groups may be nested.")
EQUALS = {"task_id": int, "status": str, "grade": str, "phone": str, "hangup_side": str,
          "direction": str}


def _aware(name: str) -> datetime | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, "bad_request", f"{name}: expected an ISO 8601 time") from None
    if value.tzinfo is None:
        raise ApiError(400, "bad_request", f"{name}: include a UTC offset, e.g. +08:00")
    return value


def condition_group(raw) -> call_query.Group:
    """A validated condition group from JSON text or parsed JSON; ApiError 400 otherwise."""
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
        return call_query.validate(data)
    except json.JSONDecodeError:
        raise ApiError(400, "invalid_filter", "filter: not valid JSON") from None
    except call_query.FilterError as exc:
        raise ApiError(400, "invalid_filter", f"filter: {exc}") from None


@bp.get("/calls")
@require_role(Role.ADMIN, Role.STAFF)
def list_calls():
    stmt = select_visible(Call).order_by(Call.created_at.desc(), Call.id.desc())
    for field, kind in EQUALS.items():
        if field not in request.args:
            continue
        value = request.args.get(field, type=kind)
        if value is None:
            raise ApiError(400, "bad_request", f"{field}: expected {kind.__name__}")
        else:
            stmt = stmt.where(getattr(Call, field) == value)
    if (since := _aware("since")) is not None:
        stmt = stmt.where(Call.created_at >= since)
    if (until := _aware("until")) is not None:
        stmt = stmt.where(Call.created_at < until)
    if (min_talk := request.args.get("min_talk_seconds", type=int)) is not None:
        stmt = stmt.where(Call.talk_seconds >= min_talk)
    if (raw := request.args.get("filter")) is not None:
        stmt = stmt.where(call_query.where(condition_group(raw)))
    return jsonify(paged(stmt, ser.call))
