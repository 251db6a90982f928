"""The one clock. Tests that need another time patch `core.clock.now`."""

from datetime import UTC, datetime


def now() -> datetime:
    """Current time, timezone-aware UTC."""
    return datetime.now(UTC)
