"""Call records exports over the API: the same background job as the console's 导出."""

from __future__ import annotations

from flask import jsonify

from core import call_columns, call_query
from core.enums import Role
from webui.api import ApiError, bp, json_body
from webui.api import serialise as ser
from webui.api.calls import condition_group
from webui.records.export import start_export
from webui.security import actor, require_role


@bp.post("/calls/exports")
@require_role(Role.ADMIN, Role.STAFF)
def export_calls():
    """Body: {"filter": group, "columns": [keys], "mask": true}; 202 with the notification
    that follows the job (GET /notifications)."""
    body = json_body()
    group = condition_group(body["filter"]) if body.get("filter") is not None \
        else call_query.Group("and", ())
    keys = body.get("columns", list(call_columns.DEFAULT_KEYS))
    if not isinstance(keys, list) or not keys:
        raise ApiError(422, "invalid", "columns: a non-empty list of column keys",
                       {"columns": "required"})
    unknown = [k for k in keys if k not in call_columns.BY_KEY]
    if unknown:
        raise ApiError(422, "invalid", "columns: unknown keys", {"columns": unknown})
    mask = body.get("mask", True)
    if not isinstance(mask, bool):
        raise ApiError(422, "invalid", "mask: true or false", {"mask": "boolean"})
    if not mask and actor().role != Role.ADMIN:
        raise ApiError(403, "forbidden", "only administrators export full numbers")
    note = start_export(actor(), group, call_columns.chosen(keys), full_numbers=not mask)
    return jsonify(ser.notification(note)), 202
