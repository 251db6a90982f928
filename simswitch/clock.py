"""The one clock every timed behaviour of simswitch goes through.

``RealClock`` is the default. ``FastClock(speed)`` runs simulated time ``speed`` times
faster than wall time: every wait is divided by ``speed`` and ``now()`` advances ``speed``
seconds per real second, so timestamps in events and CDRs stay consistent with the waits.
"""

import time

import gevent


class RealClock:
    """Wall-clock time; waits are real gevent sleeps."""

    speed = 1.0

    def now(self) -> float:
        """Seconds since the epoch (float)."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        """Cooperatively wait ``seconds`` of simulated time."""
        gevent.sleep(max(0.0, seconds) / self.speed)

    def real_seconds(self, seconds: float) -> float:
        """How many real seconds ``seconds`` of simulated time lasts (for socket timeouts)."""
        return seconds / self.speed


class FastClock(RealClock):
    """Simulated time running ``speed`` times faster than wall time, starting now."""

    def __init__(self, speed: float):
        if speed <= 0:
            raise ValueError("clock speed must be positive")
        self.speed = float(speed)
        self._origin_real = time.monotonic()
        self._origin_epoch = time.time()

    def now(self) -> float:
        return self._origin_epoch + (time.monotonic() - self._origin_real) * self.speed


def make_clock(speed: float = 1.0) -> RealClock:
    """A real clock for ``speed == 1``, otherwise a ``FastClock``."""
    return RealClock() if speed == 1.0 else FastClock(speed)
