"""The outbox relay: Redis down keeps rows pending; jobs Redis lost are relayed again."""

import subprocess
import sys
from datetime import timedelta

import redis
from rq.job import Job
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import clock
from core.db import make_engine, session_factory
from core.models import Outbox
from core.outbox import job_id, write
from core.settings import ROOT
from tests import factories as f
from tests.conftest import free_port
from workers.queues import queue
from workers.relay import GIVE_UP_AFTER, LOST_AFTER, relay_once, requeue_lost


def _rows(engine, n=3):
    with Session(engine) as s:
        acct = f.account(s, "A")
        for i in range(n):
            assert write(s, account_id=acct.id, key=f"k{i}", job="workers.maintenance.x",
                         args=[i, f"k{i}"])
        assert not write(s, account_id=acct.id, key="k0", job="other", args=[])  # duplicate
        s.commit()


def test_relay_with_redis_down_keeps_rows_pending(db_url):
    engine = make_engine(db_url)
    _rows(engine)
    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.5)
    assert relay_once(session_factory(db_url), dead) == 0
    with Session(engine) as s:
        rows = s.scalars(select(Outbox).order_by(Outbox.id)).all()
        assert [r.state for r in rows] == ["pending"] * 3
        assert rows[0].last_error.startswith("relay:") and rows[0].job == "workers.maintenance.x"
    engine.dispose()


def test_relay_uses_fixed_job_ids_and_requeues_lost_jobs(db_url, redis_url):
    engine = make_engine(db_url)
    _rows(engine)
    conn = redis.Redis.from_url(redis_url)
    factory = session_factory(db_url)
    assert relay_once(factory, conn) == 3
    assert relay_once(factory, conn) == 0  # nothing pending any more
    with Session(engine) as s:
        ids = list(s.scalars(select(Outbox.id).order_by(Outbox.id)))
    assert sorted(queue("calls", conn).job_ids) == sorted(job_id(i) for i in ids)
    job = Job.fetch(job_id(ids[0]), connection=conn)
    assert list(job.args) == [0, "k0"] and job.retries_left == 4

    # Redis restarted without its data: the jobs are gone.
    conn.flushdb()
    assert requeue_lost(factory, conn) == 0  # too early to call them lost
    later = clock.now() + LOST_AFTER + timedelta(minutes=1)
    assert requeue_lost(factory, conn, now=later) == 3
    assert relay_once(factory, conn) == 3
    with Session(engine) as s:
        assert [r.relay_count for r in s.scalars(select(Outbox))] == [2, 2, 2]
    engine.dispose()


def test_a_job_lost_long_ago_is_failed_not_sent_late(db_url, redis_url):
    engine = make_engine(db_url)
    _rows(engine, 1)
    conn = redis.Redis.from_url(redis_url)
    factory = session_factory(db_url)
    assert relay_once(factory, conn) == 1
    conn.flushdb()
    assert requeue_lost(factory, conn, now=clock.now() + GIVE_UP_AFTER
                        + timedelta(minutes=1)) == 0
    with Session(engine) as s:
        row = s.scalar(select(Outbox))
        assert row.state == "failed" and "too old" in row.last_error
    engine.dispose()


def test_a_job_that_used_up_its_retries_is_failed_for_good(db_url, redis_url, subprocess_env):
    """rq gives up on a job that crashed every time; its row must not stay 'relayed'."""
    engine = make_engine(db_url)
    _rows(engine, 1)  # workers.maintenance.x does not exist: every run fails
    conn = redis.Redis.from_url(redis_url)
    factory = session_factory(db_url)
    with Session(engine) as s:
        row_id = s.scalar(select(Outbox.id))
    queue("calls", conn).enqueue("workers.maintenance.x", 0, "k0", job_id=job_id(row_id))
    with Session(engine) as s:  # as relay_once leaves it, without its retry policy
        s.get(Outbox, row_id).state = "relayed"
        s.get(Outbox, row_id).relayed_at = clock.now()
        s.commit()
    subprocess.run([sys.executable, "-m", "scripts.manage", "run", "worker", "--burst"],
                   cwd=ROOT, env=subprocess_env, capture_output=True, timeout=120)
    assert requeue_lost(factory, conn, now=clock.now() + LOST_AFTER
                        + timedelta(minutes=1)) == 0
    with Session(engine) as s:
        row = s.get(Outbox, row_id)
        assert row.state == "failed" and row.finished_at is not None
    engine.dispose()
