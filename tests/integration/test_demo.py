"""The demo account (issue 11) end to end through the real processes: `manage demo create`,
then simswitch (fast clock, the demo's generated scenario), the controller, an rq worker, the
outbox relay and the console, each its own process as the launcher starts them. The demo
task is started from the console (login + the task list's 开启 form) and run to its end;
then the database must hold exactly the outcome mix the scenario says, a transcript, a
recording and a grade on every answered call, SMS in the outbox and a transfer that an
agent took. Removal is checked in-process: the demo goes, a real account stays whole."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session

from core import demo
from core.db import session_factory
from core.demo import content as C
from core.enums import TaskState
from core.models import (
    Account,
    Call,
    DialogueTurn,
    Line,
    PostCallRule,
    Script,
    SmsMessage,
    Task,
    TaskNumber,
    User,
)
from core.settings import ROOT, load_settings
from tests.conftest import ADMIN_PASSWORD, free_port

pytestmark = pytest.mark.slow

NUMBERS = 60  # the full demo has 300; the mix is the same (core.demo.content.counts)
SPEED = 4.0  # simswitch's clock
CONCURRENCY = 10  # the demo task's 30, scaled down with the clock (CPU per call × SPEED)
FINISH_S = 240


def _manage(env, *args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scripts.manage", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180, **kw)


class Processes:
    """Children with their output in files; stopped (TERM, then KILL) at the end."""

    def __init__(self, folder: Path, env: dict):
        self.folder, self.env, self.children = folder, env, []

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = (self.folder / f"{name}.log").open("wb")
        proc = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.children.append((name, proc))
        return proc

    def check(self) -> None:
        for name, proc in self.children:
            if proc.poll() is not None:
                tail = (self.folder / f"{name}.log").read_text(errors="replace")[-3000:]
                raise AssertionError(f"{name} exited with {proc.returncode}:\n{tail}")

    def stop(self) -> None:
        for _name, proc in reversed(self.children):
            if proc.poll() is None:
                proc.terminate()
        for _name, proc in reversed(self.children):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Console:
    """A logged-in browser session without a browser: cookies and the CSRF token."""

    def __init__(self, url: str):
        self.url = url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> str:
        with self.opener.open(self.url + path, timeout=30) as resp:
            return resp.read().decode()

    def post(self, path: str, form: dict, page: str) -> str:
        token = re.search(r'name="csrf_token" value="([^"]+)"', self.get(page)).group(1)
        data = urllib.parse.urlencode({**form, "csrf_token": token}).encode()
        with self.opener.open(self.url + path, data=data, timeout=60) as resp:
            return resp.read().decode()


def _wait(predicate, timeout: float, procs: Processes, what: str, step: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check()
        if predicate():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url + "/login", timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def demo_env(tmp_path, redis_url):
    data = tmp_path / "data"
    env = {"DATA_DIR": str(data), "DATABASE_URL": f"sqlite:///{data / 'callcentre.db'}",
           "REDIS_URL": redis_url, "ADMIN_PASSWORD": ADMIN_PASSWORD, "SIMSWITCH": "no",
           "DEMO": "no", "WEB_PORT": str(free_port()), "MEDIA_LISTEN": f"127.0.0.1:{free_port()}",
           "FS_NODES": f"sim=127.0.0.1:{free_port()}:ClueCon", "LOG_LEVEL": "INFO",
           # what CPA_DETECTOR=auto gives when the launcher starts simswitch itself
           "CPA_DETECTOR": "tonedetect"}
    full = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    return full, load_settings(environ=env, env_file=tmp_path / "no.env")


def test_the_demo_campaign_runs_to_its_end_through_the_real_processes(demo_env, tmp_path):
    env, settings = demo_env
    started = time.monotonic()
    made = _manage(env, "demo", "create", "--numbers", str(NUMBERS))
    assert made.returncode == 0, made.stderr[-3000:]
    password = re.search(r"password (\S+)", made.stdout).group(1)
    sessions = session_factory(settings.database_url)
    with sessions() as s:
        task = s.scalar(sa.select(Task).where(Task.name == C.TASK_NAME))
        task.max_concurrency = CONCURRENCY
        s.commit()
        task_id = task.id

    procs = Processes(tmp_path, env)
    node = settings.fs_nodes[0]
    try:
        procs.start("simswitch", [
            sys.executable, "-m", "simswitch", "--esl-port", str(node.port), "--password",
            node.password, "--scenario", str(demo.scenario_path(settings)),
            "--recordings-dir", str(settings.recordings_dir), "--speed", str(SPEED)])
        for name in ("controller", "worker", "relay", "web"):
            procs.start(name, [sys.executable, "-m", "scripts.manage", "run", name])
        url = f"http://127.0.0.1:{settings.web_port}"
        _wait(lambda: _answers(url), 60, procs, "the console")
        conn = redis.Redis.from_url(settings.redis_url)
        with sessions() as s:  # what the launcher does for the demo (simswitch has no SIP)
            agent_id = demo.agent_ready(conn, s, settings)

        console = Console(url)
        page = console.post("/login", {"username": C.ADMIN_USERNAME, "password": password},
                            "/login")
        assert C.TASK_NAME in page  # logged in: the task list
        console.post(f"/tasks/{task_id}/start", {}, "/tasks")
        set_up = time.monotonic() - started

        def finished():
            with sessions() as s:
                return s.get(Task, task_id).state == TaskState.FINISHED
        _wait(finished, FINISH_S, procs, "the demo task to finish", step=1.0)
        ran = time.monotonic() - started - set_up
        stats = json.loads(console.get(f"/tasks/stats.json?ids={task_id}"))
        # the relay and worker deliver the last SMS a moment after the last call
        _wait(lambda: _sms_done(sessions), 30, procs, "the SMS jobs")
    finally:
        procs.stop()
    print(f"demo e2e: set-up {set_up:.1f} s, campaign {ran:.1f} s")

    figures = stats[str(task_id)]  # what the task list shows, live
    assert (figures["progress"], figures["state"]) == (100, "finished"), figures
    assert figures["numbers"] == NUMBERS and figures["calls"] == NUMBERS
    want = C.counts(NUMBERS)
    with Session(sa.create_engine(settings.database_url)) as s:
        rows = s.execute(sa.select(Call, TaskNumber).join(
            TaskNumber, TaskNumber.id == Call.task_number_id).where(Call.task_id == task_id)
        ).all()
        by_label = {o.label: o for o in C.OUTCOMES}
        seen = Counter()
        for call, number in rows:
            outcome = by_label[number.variables[demo.VARIABLE]]
            seen[outcome.name] += 1
            where = f"{number.phone} ({outcome.name})"
            assert call.state == "ended", where
            assert call.status == outcome.status, (where, call.status, call.sip_code)
            if outcome.sim["result"] != "answer":
                assert call.grade is None and call.recording_path is None, where
                continue
            turns = s.scalars(sa.select(DialogueTurn).where(DialogueTurn.call_id == call.id)
                              .order_by(DialogueTurn.seq)).all()
            assert turns and turns[0].speaker == "robot", where
            assert call.grade == outcome.grade, (where, call.grade, [t.text for t in turns])
            assert call.recording_path and Path(call.recording_path).stat().st_size > 8000, \
                where
            said = [t.text for t in turns if t.speaker == "callee"]
            assert said == [say.text for say in outcome.says], (where, said)
            if outcome.name == "barge_in_refusal":
                assert any(t.interrupted for t in turns), where
        assert dict(seen) == want  # one call per number, the scenario's mix

        transfers = [c.transfer for c, _n in rows if c.transfer]
        assert len(transfers) == want["interested"]
        assert any(t["state"] == "success" and t["target"]["user_id"] == agent_id
                   for t in transfers), transfers
        sms = s.scalars(sa.select(SmsMessage).where(SmsMessage.account_id == task.account_id)
                        ).all()
        graded_ab = sum(1 for c, _n in rows if c.grade in ("A", "B"))
        assert len(sms) == graded_ab and {m.state for m in sms} == {"sent"}
        assert all(m.content.startswith("【云帆宽带】") for m in sms)

    # one command removes it; the main account and its administrator stay
    gone = _manage(env, "demo", "remove", "--yes")
    assert gone.returncode == 0 and f"{len(rows)} calls" in gone.stdout, gone.stderr[-2000:]
    with Session(sa.create_engine(settings.database_url)) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Call)) == 0
        assert s.scalars(sa.select(User.username)).all() == ["admin"]
    assert not demo.scenario_path(settings).exists()


def _sms_done(sessions) -> bool:
    with sessions() as s:
        calls = s.scalar(sa.select(sa.func.count()).select_from(Call).where(
            Call.grade.in_(["A", "B"])))
        sent = s.scalar(sa.select(sa.func.count()).select_from(SmsMessage).where(
            SmsMessage.state == "sent"))
        return calls == sent


def test_removing_the_demo_takes_all_of_it_and_nothing_else(any_db_url, tmp_path, redis_url):
    from core.bootstrap import ensure_admin

    settings = load_settings(environ={
        "DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": any_db_url, "REDIS_URL": redis_url,
        "ADMIN_PASSWORD": ADMIN_PASSWORD, "SIMSWITCH": "no",
        "FS_NODES": f"sim=127.0.0.1:{free_port()}:ClueCon"}, env_file=tmp_path / "no.env")
    engine = sa.create_engine(any_db_url)
    if engine.dialect.name == "sqlite":
        from core.db import configure_engine
        configure_engine(engine)
    with Session(engine) as s:
        ensure_admin(s, settings)
        real = s.scalar(sa.select(Account).where(Account.is_demo.is_(False)))
        s.add(Line(account_id=real.id, name="主线路", gateway="gw1"))
        s.add(Task(account_id=real.id, name="春季回访", state=TaskState.RUNNING))
        s.commit()
        login = demo.create(s, settings, count=24)
        assert login.created and demo.find(s).id == login.account_id
        again = demo.create(s, settings)  # a second create keeps the first
        assert not again.created and again.account_id == login.account_id
        # a finished demo call with a recording, as the controller leaves one
        rec = settings.recordings_dir / "2026" / "demo-call.wav"
        rec.parent.mkdir(parents=True)
        rec.write_bytes(b"RIFF")
        s.add(Call(account_id=login.account_id, task_id=login.task_id, uuid="u-demo",
                   phone="13800000000", state="ended", status="answered",
                   recording_path=str(rec)))
        real_rec = settings.recordings_dir / "2026" / "real-call.wav"
        real_rec.write_bytes(b"RIFF")
        s.add(Call(account_id=real.id, uuid="u-real", phone="13900000000", state="ended",
                   recording_path=str(real_rec)))
        s.commit()
        conn = redis.Redis.from_url(redis_url)
        agent = demo.agent_ready(conn, s, settings)
        assert conn.exists(f"cc:presence:{agent}")
        prompts = settings.dialogue.prompts_dir / str(login.account_id)
        assert demo.scenario_path(settings).is_file() and any(prompts.iterdir())

        removed = demo.remove(s, settings, conn=conn)
        assert removed.found and removed.calls == 1 and removed.files > 10
        assert demo.find(s) is None and not demo.scenario_path(settings).exists()
        assert not prompts.exists() and not rec.exists() and real_rec.exists()
        assert not conn.exists(f"cc:presence:{agent}")
        assert (settings.dialogue.prompts_dir / "tts-cache").is_dir()  # shared: kept
        for model in (User, Task, TaskNumber, Call, Script, PostCallRule, Line):
            owners = set(s.scalars(sa.select(model.account_id)))
            assert owners <= {real.id}, model
        assert s.scalar(sa.select(User.username).where(User.account_id == real.id)) == "admin"
        assert s.scalar(sa.select(Task.name).where(Task.account_id == real.id)) == "春季回访"
        assert s.scalar(sa.select(Call.uuid).where(Call.account_id == real.id)) == "u-real"
        assert not demo.remove(s, settings).found  # nothing left to remove
    engine.dispose()


def test_the_first_start_question_defaults_to_yes(tmp_path):
    import pty

    from scripts.launch import ask_yes

    with open(os.devnull) as devnull:  # no terminal (systemd, CI): the default, at once
        assert ask_yes("Create?", timeout=30, stream=devnull) is True
    for typed, want in (("n\n", False), ("no\n", False), ("\n", True), ("y\n", True)):
        leader, follower = pty.openpty()
        with os.fdopen(follower) as tty:
            os.write(leader, typed.encode())
            assert ask_yes("Create?", timeout=5, stream=tty) is want, typed
        os.close(leader)
    leader, follower = pty.openpty()
    with os.fdopen(follower) as tty:  # nobody answers: yes after the timeout
        began = time.monotonic()
        assert ask_yes("Create?", timeout=0.3, stream=tty) is True
        assert time.monotonic() - began < 3
    os.close(leader)


def test_the_launcher_offers_the_demo_only_where_it_can_run(tmp_path, db_url, capsys):
    from scripts.launch import _demo

    base = {"DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": db_url}
    with Session(sa.create_engine(db_url)) as s:
        real_switch = load_settings(environ={**base, "DEMO": "yes",
                                             "FS_NODES": "fs1=10.0.0.5:8021:pw"},
                                    env_file=tmp_path / "no.env")
        assert _demo(s, real_switch, first_start=True) is None  # FS_NODES: no demo line
        assert "DEMO=yes ignored" in capsys.readouterr().err
        declined = load_settings(environ={**base, "DEMO": "no"}, env_file=tmp_path / "no.env")
        assert declined.simswitch and _demo(s, declined, first_start=True) is None
        later = load_settings(environ={**base, "DEMO": "ask"}, env_file=tmp_path / "no.env")
        assert _demo(s, later, first_start=False) is None  # asked on the first start only
        assert demo.find(s) is None


def test_the_console_page_removes_the_demo_for_whom_it_may(settings):
    """系统设置 → 演示数据: staff and sub-account administrators may not remove the demo; an
    administrator of a real main account may, and stays logged in; the demo never shows in
    the real account's lists."""
    from tests import factories as f
    from webui.app import create_app
    from webui.extensions import db

    app = create_app(settings, TESTING=True)
    with app.app_context():
        s = db.session
        main = f.account(s, "主账户")
        sub = f.account(s, "子账户", parent=main)
        f.user(s, main, "boss")
        f.user(s, main, "clerk", f.Role.STAFF)
        f.user(s, sub, "sub-boss")
        s.commit()
        main_id = main.id
        login = demo.create(s, settings, count=12)

    def client_of(username):
        client = app.test_client()
        f.login(client, username)
        return client

    assert client_of("clerk").get("/system/demo").status_code == 403
    client = client_of("sub-boss")
    page = client.get("/system/demo").get_data(as_text=True)
    assert "演示账户" in page and 'id="remove-demo"' not in page
    token = f.csrf_from(page)
    assert client.post("/system/demo/remove", data={"csrf_token": token}).status_code == 403

    client = client_of("boss")
    assert "演示任务" not in client.get("/tasks").get_data(as_text=True)  # never mixed in
    page = client.get("/system/demo").get_data(as_text=True)
    assert "12 个号码" in page and 'id="remove-demo"' in page
    done = client.post("/system/demo/remove", data={"csrf_token": f.csrf_from(page)},
                       follow_redirects=True)
    assert "演示数据已删除" in done.get_data(as_text=True)
    assert "当前没有演示账户" in done.get_data(as_text=True)  # still logged in, on the page
    with app.app_context():
        assert demo.find(db.session) is None
        assert db.session.get(Account, login.account_id) is None
        actions = db.session.scalars(sa.text(
            "select action from audit_log where account_id = :a"), {"a": main_id}).all()
        assert "demo_remove" in actions
        db.engine.dispose()


def test_without_espeak_there_is_no_half_demo(subprocess_env, tmp_path):
    env = {**subprocess_env, "PATH": str(tmp_path)}  # no espeak-ng on it
    out = _manage(env, "demo", "create", "--numbers", "5")
    assert out.returncode != 0 and "espeak-ng is not installed" in out.stderr, out.stderr
    with Session(sa.create_engine(env["DATABASE_URL"])) as s:
        assert s.scalar(sa.select(Account).where(Account.is_demo.is_(True))) is None
        assert s.scalars(sa.select(User.username)).all() == ["admin"]
