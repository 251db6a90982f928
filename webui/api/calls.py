"""Call records: query with filters and paging."""

from __future__ import annotations

from datetime import datetime

from flask import jsonify, request

from core.enums import Role
from core.models import Call
from webui.api import ApiError, bp, paged
from webui.api import serialise as ser
from webui.security import require_role, select_visible

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
    return jsonify(paged(stmt, ser.call))
