"""After-call actions end to end: the finaliser writes the outbox, the relay hands it to rq, a
real rq worker process delivers — exactly once — to local SMS and WeCom servers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from core import clock
from core.db import make_engine, session_factory
from core.enums import CallStatus, TaskState
from core.models import (
    Call,
    Lead,
    LeadAllocationRule,
    Outbox,
    PostCallRule,
    ProviderConfig,
    PushGroup,
    PushGroupMember,
    PushMessage,
    QuotaRule,
    SmsMessage,
    SmsTemplate,
    Task,
    TaskNumber,
)
from core.outbox import enqueue_after_call, job_id
from core.settings import ROOT
from tests import factories as f
from tests.conftest import free_port, make_settings
from tests.workers.fake_http import FakeServer
from workers import after_call
from workers.queues import queue
from workers.relay import RETRY_INTERVALS, relay_once

GRADE_A = {"match": "all", "items": [{"field": "grade", "op": "in", "value": ["A"]}]}


class Gateways:
    """A generic-HTTP SMS gateway and a WeCom robot, counting what they accept."""

    def __init__(self, sms_fail: int = 0, sms_status: int = 503):
        self.sms_fail, self.sms_status = sms_fail, sms_status
        self.sms_ok, self.robot_ok = [], []
        self.sms = FakeServer(self._sms)
        self.robot = FakeServer(self._robot)

    def _sms(self, req):
        if self.sms_fail > 0:
            self.sms_fail -= 1
            return self.sms_status, {"ok": False, "error": "gateway says no"}
        self.sms_ok.append(req.json())
        return 200, {"ok": True, "id": f"g-{len(self.sms_ok)}"}

    def _robot(self, req):
        self.robot_ok.append(req.json())
        return 200, {"errcode": 0, "errmsg": "ok"}

    def __enter__(self):
        self.sms.__enter__()
        self.robot.__enter__()
        return self

    def __exit__(self, *exc):
        self.sms.__exit__(*exc)
        self.robot.__exit__(*exc)


def seed(s: Session, gw: Gateways, cap: int = 0) -> dict:
    """Account, staff, task, an HTTP SMS provider, a WeCom robot push group, and a rule:
    grade A → hang-up SMS + notice."""
    acct = f.account(s, "A")
    staff = f.user(s, acct, "sales1", f.Role.STAFF)
    staff.display_name, staff.phone = "张三", "13900000000"
    task = Task(account_id=acct.id, name="双十一回访", state=TaskState.RUNNING)
    sms = ProviderConfig(account_id=acct.id, channel="sms", kind="http", name="gw",
                         is_default=True, daily_cap_per_number=cap,
                         settings={"url": gw.sms.url + "/send", "method": "POST",
                                   "body": '{"to": "{phone}", "text": "{text}"}',
                                   "id_field": "id"})
    robot = ProviderConfig(account_id=acct.id, channel="push", kind="wecom_robot",
                           name="销售群", settings={"api_base": gw.robot.url,
                                                    "console_url": "https://cc.example"},
                           secrets={"key": "robot-key"})
    s.add_all([task, sms, robot])
    s.flush()
    tmpl = SmsTemplate(account_id=acct.id, name="A级", signature="云呼",
                       body="{name}您好，感谢接听，详情请回电。", provider_id=sms.id)
    group = PushGroup(account_id=acct.id, name="销售", strategy="order", provider_id=robot.id)
    s.add_all([tmpl, group])
    s.flush()
    s.add(PushGroupMember(account_id=acct.id, group_id=group.id, user_id=staff.id,
                          wecom_userid="zhangsan"))
    s.add(PostCallRule(account_id=acct.id, task_id=task.id, name="A级挂机短信",
                       conditions=GRADE_A, actions=[{"type": "sms", "template_id": tmpl.id},
                                                    {"type": "push", "group_id": group.id}]))
    s.flush()
    return {"account": acct.id, "task": task.id, "template": tmpl.id, "group": group.id,
            "staff": staff.id}


_seq = iter(range(1, 10_000))


def finalise(s: Session, ids: dict, grade: str = "A", phone: str = "13812345678") -> Call:
    """What the controller / CDR finaliser does: the call's final row, then the outbox, in one
    transaction."""
    n = next(_seq)
    call = Call(account_id=ids["account"], uuid=f"uuid-{n}-{time.time_ns()}",
                task_id=ids["task"], phone=phone, status=CallStatus.ANSWERED, grade=grade,
                talk_seconds=42, interactions=5, variables={"name": "王先生"},
                ended_at=clock.now())
    s.add(call)
    s.flush()
    enqueue_after_call(s, call)
    return call


def run_worker(env) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "scripts.manage", "run", "worker", "--burst"],
                          cwd=ROOT, env=env, capture_output=True, timeout=180)
    return done


def count(s, model, *where):
    return s.scalar(select(func.count()).select_from(model).where(*where))


def _env(tmp_path, database_url, redis_url):
    _, env = make_settings(tmp_path, database_url, redis_url)
    return {**os.environ, **env, "PYTHONPATH": str(ROOT)}


def test_grade_a_call_gives_exactly_one_sms_and_one_push(any_db_url, redis_url, tmp_path):
    db_url = any_db_url
    subprocess_env = _env(tmp_path, db_url, redis_url)
    engine = make_engine(db_url)
    factory = session_factory(db_url)
    conn = redis.Redis.from_url(redis_url)
    with Gateways() as gw:
        with Session(engine) as s:
            ids = seed(s, gw)
            call = finalise(s, ids)
            s.commit()
            call_id = call.id
            assert call.sms == {"state": "queued"} and call.push == {"state": "queued"}
            # The CDR finalises the same call again: nothing new is written.
            assert enqueue_after_call(s, s.get(Call, call_id)) == []
            s.commit()
            assert count(s, Outbox) == 2

        assert relay_once(factory, conn) == 2
        # A relay that died before recording its work relays the same rows again …
        with Session(engine) as s:
            s.execute(update(Outbox).values(state="pending"))
            s.commit()
        assert relay_once(factory, conn) == 2
        # … and a stray duplicate of the SMS job arrives under another job id.
        with Session(engine) as s:
            sms_row = s.scalar(select(Outbox).where(Outbox.job.like("%send_sms")))
        queue("calls", conn).enqueue(sms_row.job, *sms_row.args)
        assert queue("calls", conn).count == 5

        done = run_worker(subprocess_env)
        assert done.returncode == 0, done.stderr.decode()[-3000:]
        assert len(gw.sms_ok) == 1 and len(gw.robot_ok) == 1
        assert gw.sms_ok[0] == {"to": "13812345678",
                                "text": "【云呼】王先生您好，感谢接听，详情请回电。"}
        robot = gw.robot_ok[0]["text"]
        assert robot["mentioned_list"] == ["zhangsan"] and "13812345678" in robot["content"]
        assert "https://cc.example/after-call/seen/" in robot["content"]

        with Session(engine) as s:
            call = s.get(Call, call_id)
            assert call.sms["state"] == "success" and call.sms["attempts"] == 1
            assert call.push["state"] == "success" and call.push["target"] == "张三"
            assert count(s, SmsMessage) == 1 and count(s, PushMessage) == 1
            assert s.scalar(select(SmsMessage.state)) == "sent"
            assert s.scalar(select(SmsMessage.provider_message_id)) == "g-1"
            assert set(s.scalars(select(Outbox.state))) == {"done"}

        # The same jobs delivered once more (rq retried, a relay re-sent): still one of each.
        job = Job.fetch(job_id(sms_row.id), connection=conn)
        assert job.get_status() == JobStatus.FINISHED
        for row_job, args in ((sms_row.job, sms_row.args),):
            queue("calls", conn).enqueue(row_job, *args)
        with Session(engine) as s:
            push_row = s.scalar(select(Outbox).where(Outbox.job.like("%.push")))
        queue("calls", conn).enqueue(push_row.job, *push_row.args)
        assert run_worker(subprocess_env).returncode == 0
        assert len(gw.sms_ok) == 1 and len(gw.robot_ok) == 1
    engine.dispose()


def _start_redis(port: int, data_dir) -> subprocess.Popen:
    from core.embedded_redis import command

    proc = subprocess.Popen(command(port, data_dir), stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis(port=port).ping()
            return proc
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_redis_down_at_hang_up_delays_but_never_loses(db_url, tmp_path):
    """Our own throwaway Redis (never the machine's): stopped while the call ends, started
    later; the relay process hands the waiting jobs over and the worker delivers once."""
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    env = _env(tmp_path, db_url, url)
    server = _start_redis(port, tmp_path)
    _stop(server)  # Redis dies before the call ends
    engine = make_engine(db_url)
    relay = None
    try:
        with Gateways() as gw:
            with Session(engine) as s:
                ids = seed(s, gw)
                call_id = finalise(s, ids).id
                s.commit()  # the call's final row and its jobs: no Redis needed
            relay = subprocess.Popen([sys.executable, "-m", "scripts.manage", "run", "relay"],
                                     cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
            deadline = time.monotonic() + 30
            while True:  # the relay tried, found Redis down, and kept the rows
                with Session(engine) as s:
                    rows = s.scalars(select(Outbox).order_by(Outbox.id)).all()
                    assert {r.state for r in rows} == {"pending"}
                    if "relay" in (rows[0].last_error or ""):
                        break
                assert time.monotonic() < deadline, "the relay never tried"
                time.sleep(0.2)

            server = _start_redis(port, tmp_path)  # Redis is back
            deadline = time.monotonic() + 30
            while True:
                with Session(engine) as s:
                    if set(s.scalars(select(Outbox.state))) == {"relayed"}:
                        break
                assert time.monotonic() < deadline, "relay did not hand the jobs over"
                time.sleep(0.2)
            _stop(relay)
            relay = None

            done = run_worker(env)
            assert done.returncode == 0, done.stderr.decode()[-3000:]
            assert len(gw.sms_ok) == 1 and len(gw.robot_ok) == 1
            with Session(engine) as s:
                call = s.get(Call, call_id)
                assert call.sms["state"] == "success" and call.push["state"] == "success"
                assert set(s.scalars(select(Outbox.state))) == {"done"}
    finally:
        if relay is not None:
            _stop(relay)
        _stop(server)
        engine.dispose()


def test_failing_provider_is_retried_with_back_off_and_the_failure_is_shown(
        db_url, redis_url, subprocess_env):
    engine = make_engine(db_url)
    conn = redis.Redis.from_url(redis_url)
    with Gateways(sms_fail=1) as gw:
        with Session(engine) as s:
            ids = seed(s, gw)
            call_id = finalise(s, ids).id
            s.commit()
            sms_row_id = s.scalar(select(Outbox.id).where(Outbox.job.like("%send_sms")))
        relay_once(session_factory(db_url), conn)
        before = datetime.now(UTC)
        assert run_worker(subprocess_env).returncode == 0
        after = datetime.now(UTC)
        assert len(gw.sms.requests) == 1 and gw.sms_ok == []
        with Session(engine) as s:
            call = s.get(Call, call_id)
            assert call.sms["state"] == "failed" and call.sms["retrying"] is True
            assert "503" in call.sms["reason"] and call.sms["attempts"] == 1
            msg = s.scalar(select(SmsMessage))
            assert (msg.state, msg.attempts) == ("failed", 1) and "503" in msg.error
            row = s.get(Outbox, sms_row_id)
            assert row.state == "relayed" and "503" in row.last_error
        job = Job.fetch(job_id(sms_row_id), connection=conn)
        assert job.get_status() == JobStatus.SCHEDULED
        registry = ScheduledJobRegistry(queue=queue("calls", conn))
        at = registry.get_scheduled_time(job)  # back-off: the first interval after failing
        back_off = timedelta(seconds=RETRY_INTERVALS[0])
        assert before + back_off - timedelta(seconds=1) <= at <= after + back_off

        registry.requeue(job)  # the back-off has passed
        assert run_worker(subprocess_env).returncode == 0
        assert len(gw.sms_ok) == 1 and len(gw.sms.requests) == 2
        with Session(engine) as s:
            call = s.get(Call, call_id)
            assert call.sms["state"] == "success" and call.sms["attempts"] == 2
            assert s.get(Outbox, sms_row_id).state == "done"
    engine.dispose()


def test_a_refused_message_fails_for_good_without_retries(db_url, redis_url, subprocess_env):
    engine = make_engine(db_url)
    conn = redis.Redis.from_url(redis_url)
    with Gateways(sms_fail=99, sms_status=400) as gw:
        with Session(engine) as s:
            ids = seed(s, gw)
            call_id = finalise(s, ids).id
            s.commit()
            sms_row_id = s.scalar(select(Outbox.id).where(Outbox.job.like("%send_sms")))
        relay_once(session_factory(db_url), conn)
        run_worker(subprocess_env)
        job = Job.fetch(job_id(sms_row_id), connection=conn)
        assert job.get_status() == JobStatus.FAILED
        assert "DeliveryError" in job.latest_result().exc_string
        assert len(gw.sms.requests) == 1
        with Session(engine) as s:
            call = s.get(Call, call_id)
            assert call.sms["state"] == "failed" and call.sms["retrying"] is False
            assert "refused" in call.sms["reason"]
            assert s.get(Outbox, sms_row_id).state == "failed"
    engine.dispose()


# --- the database-only jobs, run in-process -------------------------------------------

@pytest.fixture
def inproc(db_url, settings, monkeypatch):
    monkeypatch.setattr(after_call, "get_settings", lambda: settings)
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def _run_outbox(engine, call_id):
    """Run a call's outbox jobs in this process, as the worker would."""
    import importlib

    with Session(engine) as s:
        rows = s.scalars(select(Outbox).where(Outbox.call_id == call_id)).all()
    for row in rows:
        module, name = row.job.rsplit(".", 1)
        try:
            getattr(importlib.import_module(module), name)(*row.args)
        except after_call.DeliveryError:
            pass
    return rows


def _second_is_capped(inproc, gw, first: int, second: int) -> None:
    """The two calls' SMS rules run: the first is sent, the daily cap stops the second."""
    _run_outbox(inproc, first)
    _run_outbox(inproc, second)
    assert len(gw.sms_ok) == 1
    with Session(inproc) as s:
        assert s.get(Call, first).sms["state"] == "success"
        blocked = s.get(Call, second).sms
        assert blocked["state"] == "failed" and "daily cap" in blocked["reason"]


def test_daily_cap_per_number(inproc):
    with Gateways() as gw:
        with Session(inproc) as s:
            ids = seed(s, gw, cap=1)
            first = finalise(s, ids).id
            second = finalise(s, ids).id
            s.commit()
        _second_is_capped(inproc, gw, first, second)


def test_lead_allocation_through_the_task_rule_and_exactly_once(inproc):
    with Gateways() as gw:
        with Session(inproc) as s:
            ids = seed(s, gw)
            acct = ids["account"]
            staff = [f.user(s, s.get(f.Account, acct), f"s{i}", f.Role.STAFF).id
                     for i in range(3)]
            rule = LeadAllocationRule(account_id=acct, name="A 平均",
                                      grades={"A": {"mode": "average", "user_ids": staff},
                                              "C": {"mode": "pool"}})
            s.add(rule)
            s.flush()
            s.get(Task, ids["task"]).lead_allocation = {"rule_id": rule.id}
            s.execute(update(PostCallRule).values(enabled=False))
            calls = [finalise(s, ids, "A", f"1381234{i:04d}").id for i in range(9)]
            pool_call = finalise(s, ids, "C", "13900001111").id
            s.commit()
        for cid in calls + [pool_call]:
            rows = _run_outbox(inproc, cid)
            _run_outbox(inproc, cid)  # again: allocation is done once
        assert [r.job for r in rows] == ["workers.after_call.allocate_lead"]
        with Session(inproc) as s:
            owners = s.execute(select(Lead.owner_id, func.count()).where(
                Lead.grade == "A").group_by(Lead.owner_id)).all()
            assert sorted(n for _, n in owners) == [3, 3, 3]
            assert {o for o, _ in owners} == set(staff)
            pool = s.scalar(select(Lead).where(Lead.phone == "13900001111"))
            assert pool.owner_id is None and pool.grade == "C"


def test_quota_pauses_the_task_at_n_a_grade_leads_today(inproc, redis_url):
    pubsub = redis.Redis.from_url(redis_url).pubsub()
    pubsub.subscribe("cc:tasks")
    with Gateways() as gw:
        with Session(inproc) as s:
            ids = seed(s, gw)
            s.execute(update(PostCallRule).values(enabled=False))
            s.add(QuotaRule(account_id=ids["account"], task_id=ids["task"], name="每天2个A",
                            grade="A", period="day", threshold=2, action="pause"))
            c1 = finalise(s, ids, "A").id
            c2 = finalise(s, ids, "C").id
            s.commit()
        _run_outbox(inproc, c1)
        _run_outbox(inproc, c2)
        with Session(inproc) as s:
            assert s.get(Task, ids["task"]).state == TaskState.RUNNING  # 1 A so far
            c3 = finalise(s, ids, "A").id
            s.commit()
        _run_outbox(inproc, c3)
        with Session(inproc) as s:
            assert s.get(Task, ids["task"]).state == TaskState.PAUSED
            rule = s.scalar(select(QuotaRule))
            assert rule.fired_on == clock.now().astimezone(
                __import__("zoneinfo").ZoneInfo("Asia/Shanghai")).date().isoformat()
            # Resumed by hand the same day: the quota does not pause it again today.
            s.get(Task, ids["task"]).state = TaskState.RUNNING
            c4 = finalise(s, ids, "A").id
            s.commit()
        _run_outbox(inproc, c4)
        with Session(inproc) as s:
            assert s.get(Task, ids["task"]).state == TaskState.RUNNING
    messages = [m for m in iter(lambda: pubsub.get_message(timeout=1), None)
                if m["type"] == "message"]
    assert any(b'"paused"' in m["data"] for m in messages)


def test_redial_puts_the_number_back(inproc):
    with Gateways() as gw:
        with Session(inproc) as s:
            ids = seed(s, gw)
            s.execute(update(PostCallRule).values(enabled=False))
            number = TaskNumber(account_id=ids["account"], task_id=ids["task"],
                                phone="13812345678", raw_phone="13812345678", state="done")
            s.add(number)
            s.add(PostCallRule(account_id=ids["account"], task_id=None, name="忙重呼",
                               conditions={"items": [{"field": "status", "op": "in",
                                                      "value": ["busy"]}]},
                               actions=[{"type": "redial", "delay_minutes": 60}]))
            s.flush()
            call = finalise(s, ids, None)
            call.status, call.task_number_id = CallStatus.BUSY, number.id
            s.flush()
            enqueue_after_call(s, call)  # re-evaluated with the final status
            s.commit()
            call_id, number_id = call.id, number.id
        _run_outbox(inproc, call_id)
        with Session(inproc) as s:
            n = s.get(TaskNumber, number_id)
            assert n.state == "pending"
            assert n.next_attempt_at > clock.now() + timedelta(minutes=55)


def test_concurrent_workers_on_duplicated_jobs_send_once(any_db_url, redis_url, tmp_path):
    """The same SMS job six times in the queue, three workers at once, a slow gateway: the
    claim (a conditional UPDATE) lets exactly one of them send."""
    env = _env(tmp_path, any_db_url, redis_url)
    engine = make_engine(any_db_url)
    conn = redis.Redis.from_url(redis_url)
    with Gateways() as gw:
        slow = gw.sms.handler

        def handler(req):
            time.sleep(0.5)
            return slow(req)

        gw.sms.handler = handler
        with Session(engine) as s:
            ids = seed(s, gw)
            s.execute(update(PostCallRule).values(actions=[
                {"type": "sms", "template_id": ids["template"]}]))
            call_id = finalise(s, ids).id
            s.commit()
            row = s.scalar(select(Outbox))
        for _ in range(6):
            queue("calls", conn).enqueue(row.job, *row.args)
        logs = [tmp_path / f"worker-{i}.log" for i in range(3)]
        workers = [subprocess.Popen(
            [sys.executable, "-m", "scripts.manage", "run", "worker", "--burst"], cwd=ROOT,
            env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb")) for log in logs]
        for w in workers:
            w.wait(180)
        assert len(gw.sms_ok) == 1, [log.read_text()[-3000:] for log in logs]
        with Session(engine) as s:
            assert count(s, SmsMessage) == 1
            assert s.scalar(select(SmsMessage.state)) == "sent"
            assert s.get(Call, call_id).sms["state"] == "success"
    engine.dispose()


# --- issue 10 audit: gaps closed ---------------------------------------------------------

def test_a_provider_that_raises_unexpectedly_is_shown_and_retried(db_url, redis_url,
                                                                  subprocess_env):
    """A WeCom app whose gettoken answers errcode 0 without a token (the provider code
    raises KeyError, not PushError): through a real worker the notice is marked failed with
    the reason and rq retries it; it is not left "sending" with the call showing "queued"."""
    engine = make_engine(db_url)
    conn = redis.Redis.from_url(redis_url)
    with Gateways() as gw, FakeServer(lambda r: (200, {"errcode": 0})) as wecom:
        with Session(engine) as s:
            ids = seed(s, gw)
            app = ProviderConfig(account_id=ids["account"], channel="push", kind="wecom_app",
                                 name="app", settings={"api_base": wecom.url,
                                                       "corp_id": "ww1", "agent_id": "1"},
                                 secrets={"corp_secret": "s"})
            s.add(app)
            s.flush()
            s.get(PushGroup, ids["group"]).provider_id = app.id
            s.execute(update(PostCallRule).values(actions=[
                {"type": "push", "group_id": ids["group"]}]))
            call_id = finalise(s, ids).id
            s.commit()
            row_id = s.scalar(select(Outbox.id))
        relay_once(session_factory(db_url), conn)
        assert run_worker(subprocess_env).returncode == 0
        with Session(engine) as s:
            push = s.get(Call, call_id).push
            assert push["state"] == "failed" and push["retrying"] is True
            assert "KeyError" in push["reason"]
            msg = s.scalar(select(PushMessage))
            assert msg.state == "failed" and "KeyError" in msg.error
            assert s.get(Outbox, row_id).state == "relayed"
        job = Job.fetch(job_id(row_id), connection=conn)
        assert job.get_status() == JobStatus.SCHEDULED
    engine.dispose()


def test_a_delivery_report_that_comes_before_the_worker_records_the_send_is_kept(
        inproc, monkeypatch):
    """Aliyun may report delivery within a second: if the report lands while the job is
    between sending and recording, the job must not turn "delivered" back into "sent"."""
    class Reporting:
        def send(self, request):
            with Session(inproc) as s:  # what /after-call/sms-report does meanwhile
                s.execute(update(SmsMessage).where(SmsMessage.id == int(request.out_id))
                          .values(state="delivered"))
                s.commit()
            return "biz-1"

    monkeypatch.setattr(after_call, "build_sms", lambda config: Reporting())
    with Gateways() as gw:
        with Session(inproc) as s:
            ids = seed(s, gw)
            call_id = finalise(s, ids).id
            s.commit()
        _run_outbox(inproc, call_id)
        with Session(inproc) as s:
            msg = s.scalar(select(SmsMessage))
            assert (msg.state, msg.provider_message_id) == ("delivered", "biz-1")
            sms = s.get(Call, call_id).sms
            assert sms["state"] == "success" and sms["delivered"] is True


def test_daily_cap_counts_all_tasks_of_the_account_but_not_other_accounts(inproc):
    with Gateways() as gw:
        with Session(inproc) as s:
            ids = seed(s, gw, cap=1)
            other = f.account(s, "B")
            s.add(SmsMessage(account_id=other.id, key="b-1", phone="13812345678",
                             content="x", state="sent"))  # another account's message
            second_task = Task(account_id=ids["account"], name="第二个任务",
                               state=TaskState.RUNNING)
            s.add(second_task)
            s.flush()
            s.execute(update(PostCallRule).values(task_id=None))  # a rule for all tasks
            first = finalise(s, ids).id
            second = finalise(s, {**ids, "task": second_task.id}).id
            s.commit()
        _second_is_capped(inproc, gw, first, second)


def test_daily_cap_holds_with_two_workers_at_once(any_db_url, redis_url, tmp_path):
    """Two calls to one number, cap 1, two workers taking the jobs at the same moment: the
    count and the claim are serialised per account, so one SMS goes out."""
    env = _env(tmp_path, any_db_url, redis_url)
    engine = make_engine(any_db_url)
    conn = redis.Redis.from_url(redis_url)
    with Gateways() as gw:
        slow = gw.sms.handler
        gw.sms.handler = lambda req: (time.sleep(0.5), slow(req))[1]
        with Session(engine) as s:
            ids = seed(s, gw, cap=1)
            s.execute(update(PostCallRule).values(actions=[
                {"type": "sms", "template_id": ids["template"]}]))
            calls = [finalise(s, ids).id for _ in range(2)]
            s.commit()
            rows = s.scalars(select(Outbox).order_by(Outbox.id)).all()
        for _ in range(3):
            for row in rows:
                queue("calls", conn).enqueue(row.job, *row.args)
        workers = [subprocess.Popen(
            [sys.executable, "-m", "scripts.manage", "run", "worker", "--burst"], cwd=ROOT,
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
        for w in workers:
            w.wait(180)
        assert len(gw.sms_ok) == 1
        with Session(engine) as s:
            states = sorted(s.get(Call, c).sms["state"] for c in calls)
            assert states == ["failed", "success"]
            assert count(s, SmsMessage, SmsMessage.state == "sent") == 1
    engine.dispose()


def _redial_world(s, gw, number_state="done", task_state=TaskState.RUNNING):
    ids = seed(s, gw)
    s.execute(update(PostCallRule).values(enabled=False))
    s.get(Task, ids["task"]).state = task_state
    number = TaskNumber(account_id=ids["account"], task_id=ids["task"], phone="13812345678",
                        raw_phone="13812345678", state=number_state, attempts=1)
    s.add(number)
    s.add(PostCallRule(account_id=ids["account"], task_id=None, name="忙重呼",
                       conditions={"items": [{"field": "status", "op": "in",
                                              "value": ["busy"]}]},
                       actions=[{"type": "redial", "delay_minutes": 30}]))
    s.flush()
    return ids, number


def _busy_call(s, ids, number):
    call = Call(account_id=ids["account"], uuid=f"busy-{time.time_ns()}",
                task_id=ids["task"], task_number_id=number.id, phone=number.phone,
                status=CallStatus.BUSY, ended_at=clock.now())
    s.add(call)
    s.flush()
    enqueue_after_call(s, call)
    return call.id


def _note(engine, call_id):
    with Session(engine) as s:
        return s.scalar(select(Outbox.last_error).where(Outbox.call_id == call_id,
                                                        Outbox.job.like("%redial")))


def test_redial_requeues_the_number_for_the_dialer_after_the_delay(inproc, tmp_path):
    from controller.store import Store

    with Gateways() as gw:
        with Session(inproc) as s:
            ids, number = _redial_world(s, gw)
            call_id = _busy_call(s, ids, number)
            s.commit()
            number_id = number.id
        _run_outbox(inproc, call_id)
        store = Store(sessionmaker(inproc, expire_on_commit=False), "c1", tmp_path)
        assert not store.has_due_numbers(ids["task"], clock.now())
        assert store.has_due_numbers(ids["task"], clock.now() + timedelta(minutes=31))
        with Session(inproc) as s:
            assert s.get(TaskNumber, number_id).state == "pending"
        assert _note(inproc, call_id) is None


@pytest.mark.parametrize("state", ["dialling", "pending", "skipped"])
def test_redial_leaves_a_number_the_dialer_already_has_or_skipped(inproc, state):
    with Gateways() as gw:
        with Session(inproc) as s:
            ids, number = _redial_world(s, gw, number_state=state)
            call_id = _busy_call(s, ids, number)
            s.commit()
            number_id = number.id
        _run_outbox(inproc, call_id)
        with Session(inproc) as s:
            n = s.get(TaskNumber, number_id)
            assert n.state == state and n.next_attempt_at is None
        assert f"the number is {state}" in _note(inproc, call_id)


def test_redial_stops_after_the_limit_and_reopens_a_finished_task(inproc):
    with Gateways() as gw:
        with Session(inproc) as s:
            ids, number = _redial_world(s, gw, task_state=TaskState.FINISHED)
            s.commit()
            number_id = number.id
        notes = []
        for _ in range(after_call.MAX_POST_CALL_REDIALS + 1):
            with Session(inproc) as s:
                s.get(TaskNumber, number_id).state = "done"  # the redialled call ended
                call_id = _busy_call(s, ids, s.get(TaskNumber, number_id))
                s.commit()
            _run_outbox(inproc, call_id)
            notes.append(_note(inproc, call_id))
        assert "paused" in notes[0] and notes[1] is None and notes[2] is None
        assert "redial limit" in notes[-1]
        with Session(inproc) as s:
            assert s.get(Task, ids["task"]).state == TaskState.PAUSED
            assert s.get(TaskNumber, number_id).state == "done"


@pytest.mark.parametrize("line_max,expected", [(10, TaskState.PAUSED), (20, TaskState.RUNNING)])
def test_a_quota_that_starts_a_task_respects_the_line_concurrency(inproc, line_max, expected):
    with Gateways() as gw:
        with Session(inproc) as s:
            ids = seed(s, gw)
            s.execute(update(PostCallRule).values(enabled=False))
            line = f.line(s, s.get(f.Account, ids["account"]), max_concurrency=line_max)
            running = s.get(Task, ids["task"])
            running.line_id, running.max_concurrency = line.id, 10
            waiting = Task(account_id=ids["account"], name="备用任务", line_id=line.id,
                           max_concurrency=10, state=TaskState.PAUSED)
            s.add(waiting)
            s.flush()
            s.add(QuotaRule(account_id=ids["account"], task_id=ids["task"], grade="A",
                            threshold=1, action="start", target_task_id=waiting.id))
            call_id = finalise(s, ids, "A").id
            s.commit()
            waiting_id = waiting.id
        _run_outbox(inproc, call_id)
        with Session(inproc) as s:
            assert s.get(Task, waiting_id).state == expected
            note = s.scalar(select(Outbox.last_error).where(Outbox.call_id == call_id))
            assert f"task {waiting_id}" in note
