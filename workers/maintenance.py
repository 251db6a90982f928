"""Housekeeping jobs."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete

from core import clock
from core.db import session_factory
from core.models import Notification
from core.settings import get_settings

NOTIFICATION_DAYS = 10  # P6: notifications are kept 10 days


def purge_notifications(days: int = NOTIFICATION_DAYS) -> int:
    """Delete notifications older than `days`; returns how many went."""
    factory = session_factory(get_settings().database_url)
    with factory() as session, session.begin():
        result = session.execute(delete(Notification).where(
            Notification.created_at < clock.now() - timedelta(days=days)))
    return result.rowcount
