"""A real rq worker process runs a real job."""

import subprocess
import sys
from datetime import timedelta

import redis
from rq.job import Job, JobStatus
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import clock
from core.db import make_engine
from core.models import Notification
from core.settings import ROOT
from tests import factories as f
from workers.queues import queue


def test_worker_process_purges_old_notifications(db_url, redis_url, subprocess_env):
    engine = make_engine(db_url)
    with Session(engine) as s:
        acct = f.account(s, "A")
        s.add_all([Notification(account_id=acct.id, kind="import", title="old",
                                created_at=clock.now() - timedelta(days=11)),
                   Notification(account_id=acct.id, kind="import", title="new")])
        s.commit()
    conn = redis.Redis.from_url(redis_url)
    job = queue("low", conn).enqueue("workers.maintenance.purge_notifications")

    done = subprocess.run([sys.executable, "-m", "scripts.manage", "run", "worker", "--burst"],
                          cwd=ROOT, env=subprocess_env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    job = Job.fetch(job.id, connection=conn)
    assert job.get_status() == JobStatus.FINISHED and job.return_value() == 1
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Notification)) == 1
        assert s.scalar(select(Notification.title)) == "new"
    engine.dispose()


def test_a_failing_job_is_recorded_as_failed(redis_url, subprocess_env):
    conn = redis.Redis.from_url(redis_url)
    job = queue("default", conn).enqueue("workers.maintenance.purge_notifications", "x")
    subprocess.run([sys.executable, "-m", "scripts.manage", "run", "worker", "--burst"],
                   cwd=ROOT, env=subprocess_env, capture_output=True, timeout=120)
    job = Job.fetch(job.id, connection=conn)
    assert job.get_status() == JobStatus.FAILED
    assert "TypeError" in job.latest_result().exc_string
