"""Housekeeping jobs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, select

from core import clock
from core.db import session_factory
from core.models import Notification
from core.settings import get_settings

NOTIFICATION_DAYS = 10  # P6: notifications are kept 10 days


def purge_notifications(factory=None, days: int = NOTIFICATION_DAYS) -> int:
    """Delete notifications older than `days` and their result files; returns how many
    went. The relay runs it every hour; it is also an rq job."""
    factory = factory or session_factory(get_settings().database_url)
    cutoff = clock.now() - timedelta(days=days)
    with factory() as session, session.begin():
        files = session.scalars(select(Notification.result_path).where(
            Notification.created_at < cutoff, Notification.result_path.is_not(None))).all()
        result = session.execute(delete(Notification).where(Notification.created_at < cutoff))
    for path in files:
        Path(path).unlink(missing_ok=True)
    return result.rowcount
