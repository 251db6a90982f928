"""The caller's notifications (background jobs they started)."""

from __future__ import annotations

from flask import jsonify

from core.models import Notification
from webui.api import bp, paged
from webui.api import serialise as ser
from webui.security import actor, select_visible


@bp.get("/notifications")
def list_notifications():
    stmt = select_visible(Notification).where(Notification.user_id == actor().id) \
        .order_by(Notification.created_at.desc(), Notification.id.desc())
    return jsonify(paged(stmt, ser.notification))
