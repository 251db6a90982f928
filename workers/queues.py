"""Queue names and how to reach them. Connections are made from settings and passed in."""

from __future__ import annotations

from redis import Redis
from rq import Queue

# Highest priority first: a worker drains `calls` (after-call actions that touch customers)
# before `default` (imports, exports) and `low` (rollups, clean-ups).
QUEUES = ("calls", "default", "low")


def queue(name: str, connection: Redis) -> Queue:
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=connection)


def run_worker(redis_url: str, burst: bool = False) -> bool:
    """Run one rq worker on every queue; returns whether it ran jobs without failure."""
    from rq import Worker

    from core.redis_conn import connect

    conn = connect(redis_url)
    worker = Worker([queue(n, conn) for n in QUEUES], connection=conn)
    return worker.work(burst=burst, with_scheduler=not burst)
