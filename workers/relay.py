"""The outbox relay: moves pending outbox rows into rq (ARCHITECTURE.md, "outbox").

It runs as its own process (`python -m scripts.manage run relay`, started by the launcher)
rather than as an rq periodic job, because its whole point is to work while Redis is down:
a job inside rq cannot notice that Redis lost or never got a job, and would stop with it.
The loop is cheap (one indexed query a second) and several relays may run: on PostgreSQL
rows are claimed with FOR UPDATE SKIP LOCKED, and a row relayed twice gives the same rq job
id, whose delivery is idempotent anyway.

- Redis down: rows stay pending, the relay logs once and tries again each second.
- Redis lost a relayed job (restarted without its data): rows relayed more than
  LOST_AFTER ago whose rq job no longer exists and that have not finished go back to
  pending (or, past GIVE_UP_AFTER, are marked failed: too late to send).
"""

from __future__ import annotations

import logging
import signal
import time
from datetime import datetime, timedelta

import redis
from rq import Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from core import clock
from core.models import Outbox
from core.outbox import OutboxState, job_id
from workers.maintenance import purge_notifications
from workers.queues import queue

log = logging.getLogger(__name__)

BATCH = 200
INTERVAL_S = 1.0
# rq retries a failing delivery this many times, waiting these many seconds before each.
RETRY_INTERVALS = [30, 120, 600, 1800]
LOST_AFTER = timedelta(minutes=10)
# A job lost longer ago than this is not worth sending any more (a hang-up SMS a day late):
# it is marked failed instead of being relayed again.
GIVE_UP_AFTER = timedelta(hours=12)
RESULT_TTL_S = 7 * 24 * 3600
PURGE_EVERY_S = 3600


def enqueue_row(conn: redis.Redis, row: Outbox) -> None:
    """Hand one outbox row to rq under its fixed job id."""
    queue(row.queue, conn).enqueue(
        row.job, *row.args, job_id=job_id(row.id),
        retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS),
        result_ttl=RESULT_TTL_S, failure_ttl=RESULT_TTL_S,
        description=f"outbox {row.key}")


def relay_once(factory: sessionmaker[Session], conn: redis.Redis,
               now: datetime | None = None, limit: int = BATCH) -> int:
    """Relay up to `limit` due pending rows; returns how many reached rq.

    Stops at the first Redis error (the rest wait for the next round) and keeps what was
    relayed before it.
    """
    now = now or clock.now()
    relayed = 0
    with factory() as session, session.begin():
        rows = session.scalars(
            select(Outbox).where(Outbox.state == OutboxState.PENDING, Outbox.due_at <= now)
            .order_by(Outbox.id).limit(limit).with_for_update(skip_locked=True))
        for row in rows:
            try:
                enqueue_row(conn, row)
            except redis.RedisError as exc:
                row.last_error = f"relay: {exc}"[:2000]
                log.warning("outbox relay: Redis unavailable (%s); %s waits", exc, row.key)
                break
            row.state, row.relayed_at = OutboxState.RELAYED, now
            row.relay_count += 1
            relayed += 1
    return relayed


def requeue_lost(factory: sessionmaker[Session], conn: redis.Redis,
                 now: datetime | None = None) -> int:
    """Put back to pending the relayed, unfinished rows whose rq job Redis no longer has."""
    now = now or clock.now()
    back = 0
    with factory() as session, session.begin():
        rows = session.scalars(select(Outbox).where(
            Outbox.state == OutboxState.RELAYED, Outbox.relayed_at < now - LOST_AFTER)
            .order_by(Outbox.id).limit(BATCH).with_for_update(skip_locked=True))
        for row in rows:
            try:
                job = Job.fetch(job_id(row.id), connection=conn)
            except NoSuchJobError:
                job = None
            if job is not None:
                if job.get_status() == JobStatus.FAILED:
                    # rq used up its retries and the job never recorded an end of its own
                    # (it crashed each time, or the database was away): say so for good.
                    row.state, row.finished_at = OutboxState.FAILED, now
                    row.last_error = row.last_error or "failed after every retry"
                continue
            if row.relayed_at < now - GIVE_UP_AFTER:
                row.state, row.finished_at = OutboxState.FAILED, now
                row.last_error = "lost by Redis and too old to send"
                continue
            row.state = OutboxState.PENDING
            back += 1
    if back:
        log.warning("outbox relay: %d job(s) were lost by Redis; relaying them again", back)
    return back


def run(database_url: str, redis_url: str, interval: float = INTERVAL_S) -> None:
    """The relay loop, until SIGTERM/SIGINT."""
    from core.db import session_factory
    from core.redis_conn import connect

    factory = session_factory(database_url)
    conn = connect(redis_url)
    stopping = False

    def stop(_signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("outbox relay started")
    last_sweep = last_purge = 0.0
    while not stopping:
        try:
            moved = relay_once(factory, conn)
            if time.monotonic() - last_sweep > 60:
                requeue_lost(factory, conn)
                last_sweep = time.monotonic()
            # Housekeeping rides on the relay because it is the one process that always
            # runs beside the database, with or without Redis.
            if time.monotonic() - last_purge > PURGE_EVERY_S:
                purge_notifications(factory)
                last_purge = time.monotonic()
        except (redis.RedisError, SQLAlchemyError) as exc:
            log.warning("outbox relay: %s", exc)
            moved = 0
        if moved < BATCH:
            time.sleep(interval)
    log.info("outbox relay stopped")
