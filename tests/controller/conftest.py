"""Fixtures for controller tests against simswitch (fast clock), a real Redis and SQLite."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gevent
import pytest
from gevent.pywsgi import WSGIServer
from sqlalchemy import select

from controller.esl import NodeLink
from controller.handoff import opening_prompt
from core.cdr import apply_cdr
from core.db import session_factory
from core.enums import TaskState
from core.models import Account, Call, Line, Task, TaskNumber
from core.settings import FsNode
from simswitch import SimSwitch
from simswitch.clock import FastClock
from tests.conftest import free_port, make_settings

SPEED = 20.0

# Scenario outcomes used by the tests, and the status each must end with (controller/README.md).
OUTCOMES = {
    "talk": {"result": "answer", "after": 1, "callee": []},
    "talk_long": {"result": "answer", "after": 1, "hangup_after": 20},
    "busy": {"result": "busy", "after": 1},
    "vacant": {"result": "vacant", "after": 0.5},
    "no_answer": {"result": "no_answer"},
    "rejected": {"result": "rejected", "after": 1.5},
    "off": {"result": "sip", "sip": 480, "after": 2, "category": "关机",
            "early_media": {"seconds": 1.0, "text": "您拨打的电话已关机"}},
    "suspended": {"result": "sip", "sip": 503, "after": 1, "category": "停机"},
}
EXPECTED = {"talk": "answered", "talk_long": "answered", "busy": "busy", "vacant": "vacant", "no_answer": "no_answer",
            "rejected": "rejected", "off": "no_answer", "suspended": "failed"}


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
        gevent.sleep(step)


@dataclass
class Observer:
    """A second Event Socket client that counts live channels from CHANNEL_CREATE and
    CHANNEL_HANGUP_COMPLETE: the concurrency a switch really saw."""

    port: int
    live: int = 0
    peak: int = 0
    created: list[str] = field(default_factory=list)
    by_task: dict[str, int] = field(default_factory=dict)
    peak_by_task: dict[str, int] = field(default_factory=dict)
    link: NodeLink | None = None

    def on_event(self, _node, headers, _body):
        name = headers.get("Event-Name")
        task = headers.get("variable_cc_task_id", "?")
        if name == "CHANNEL_CREATE":
            self.live += 1
            self.created.append(headers.get("Unique-ID"))
            self.by_task[task] = self.by_task.get(task, 0) + 1
            self.peak = max(self.peak, self.live)
            self.peak_by_task[task] = max(self.peak_by_task.get(task, 0), self.by_task[task])
        elif name == "CHANNEL_HANGUP_COMPLETE":
            self.live -= 1
            self.by_task[task] = self.by_task.get(task, 0) - 1

    def start(self):
        self.link = NodeLink(FsNode("obs", "127.0.0.1", self.port, "ClueCon"),
                             events=("CHANNEL_CREATE", "CHANNEL_HANGUP_COMPLETE"),
                             on_event=self.on_event)
        gevent.spawn(self.link.run)
        assert self.link.up.wait(5)
        return self

    def stop(self):
        if self.link:
            self.link.stop()


class CdrSink:
    """The console's CDR endpoint in miniature: POSTed JSON CDRs → core.cdr.apply_cdr."""

    def __init__(self, db_url: str):
        self.sessions = session_factory(db_url)
        self.count = 0
        self.server = WSGIServer(("127.0.0.1", 0), self.app, log=None)
        self.server.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/cdr"

    def app(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        with self.sessions() as s:
            apply_cdr(s, json.loads(body), fs_node="sim")
            s.commit()
        self.count += 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    def stop(self):
        self.server.stop()


@dataclass
class World:
    tmp: Path
    db_url: str
    redis_url: str
    sims: list = field(default_factory=list)
    observers: list = field(default_factory=list)
    controllers: list = field(default_factory=list)
    cdr: CdrSink | None = None
    prompts_dir: Path | None = None  # shared by tests: the TTS cache survives between them

    @property
    def sessions(self):
        return session_factory(self.db_url)

    def simswitch(self, numbers: dict[str, str], cdr: bool = False, port: int = 0,
                  speed: float = SPEED, outcomes: dict | None = None,
                  agents: dict | None = None) -> SimSwitch:
        """`outcomes` add to (or replace) OUTCOMES; `agents`: user/<ext> endpoints."""
        doc = {"seed": 1, "gateways": {"gw1": {"proxy": "127.0.0.1", "state": "REGED"}},
               "numbers": numbers, "outcomes": {**OUTCOMES, **(outcomes or {})},
               "agents": agents or {}, "distribution": [{"outcome": "busy", "weight": 1}]}
        path = self.tmp / f"scenario{len(self.sims)}.json"
        path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        if cdr and self.cdr is None:
            self.cdr = CdrSink(self.db_url)
        sw = SimSwitch("127.0.0.1", port, "ClueCon", scenario=path,
                       recordings_dir=self.tmp / "rec", cdr_url=self.cdr.url if cdr else None,
                       clock=FastClock(speed), heartbeat=False, cdr_retry_delay=1.0)
        sw.start()
        self.sims.append(sw)
        return sw

    def observe(self, sw: SimSwitch) -> Observer:
        obs = Observer(sw.port).start()
        self.observers.append(obs)
        return obs

    def settings(self, port: int, **extra):
        env = {"FS_NODES": f"sim=127.0.0.1:{port}:ClueCon", "CONTROLLER_ID": "ctl-test",
               "RECORDINGS_DIR": str(self.tmp / "rec"),
               "MEDIA_LISTEN": f"127.0.0.1:{free_port()}", **extra}
        if self.prompts_dir is not None:
            env.setdefault("PROMPTS_DIR", str(self.prompts_dir))
        return make_settings(self.tmp, self.db_url, self.redis_url, **env)

    def controller(self, port: int, **options):
        """An in-process controller; `handler=None` gives it the product's (the AI
        dialogue), the default is opening_prompt (dialling tests need no dialogue);
        `env={…}` adds settings."""
        from controller.service import build

        settings, _ = self.settings(port, **options.pop("env", {}))
        options = {"tick": 0.02, "reload_s": 0.5, "cps": 200, "lease_s": 5,
                   "handler": opening_prompt, **options}
        ctl = build(settings, **options).start()
        self.controllers.append(ctl)
        return ctl

    def seed(self, numbers: list[str], *, line_max: int = 10, task_max: int = 10,
             state: TaskState = TaskState.RUNNING, line_id: int | None = None,
             **task_fields) -> tuple[int, int]:
        """An account, a line (unless given), and a task with these numbers in order."""
        with self.sessions() as s:
            account = s.scalar(select(Account).limit(1))
            if account is None:
                account = Account(name="acme")
                s.add(account)
                s.flush()
            if line_id is None:
                line = Line(account_id=account.id, name="L1", gateway="gw1",
                            caller_ids=["02100000000"], max_concurrency=line_max)
                s.add(line)
                s.flush()
                line_id = line.id
            fields = {"ring_timeout_s": 20, "max_call_s": 120, **task_fields}
            task = Task(account_id=account.id, name="t", line_id=line_id,
                        max_concurrency=task_max, state=state, **fields)
            s.add(task)
            s.flush()
            s.add_all(TaskNumber(account_id=account.id, task_id=task.id, phone=n, raw_phone=n,
                                 position=i) for i, n in enumerate(numbers))
            s.commit()
            return task.id, line_id

    def calls(self, task_id: int | None = None) -> list[Call]:
        with self.sessions() as s:
            q = select(Call).order_by(Call.id)
            if task_id is not None:
                q = q.where(Call.task_id == task_id)
            return list(s.scalars(q))

    def task(self, task_id: int) -> Task:
        with self.sessions() as s:
            return s.get(Task, task_id)

    def numbers(self, task_id: int) -> list[TaskNumber]:
        with self.sessions() as s:
            return list(s.scalars(select(TaskNumber).where(TaskNumber.task_id == task_id)
                                  .order_by(TaskNumber.position)))

    def close(self):
        for ctl in self.controllers:
            ctl.stop()
        for obs in self.observers:
            obs.stop()
        for sw in self.sims:
            sw.stop()
        if self.cdr:
            self.cdr.stop()


@pytest.fixture
def world(tmp_path, tmp_path_factory, db_url, redis_url):
    w = World(tmp_path, db_url, redis_url, prompts_dir=tmp_path_factory.getbasetemp() / "prompts")
    yield w
    w.close()


@pytest.fixture
def pg_world(tmp_path, tmp_path_factory, sqlite_template, pg_template, redis_url):
    """`world` on a PostgreSQL database of its own (skipped without TEST_POSTGRES_URL)."""
    from tests.conftest import _fresh_db

    database = _fresh_db("postgresql", tmp_path, sqlite_template, pg_template)
    w = World(tmp_path, next(database), redis_url,
              prompts_dir=tmp_path_factory.getbasetemp() / "prompts")
    yield w
    w.close()
    session_factory(w.db_url).kw["bind"].dispose()
    next(database, None)  # drops it


def phones(n: int, start: int = 0) -> list[str]:
    return [f"138{start + i:08d}" for i in range(n)]
