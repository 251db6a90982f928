"""Run the whole product: embedded Redis, simswitch, controller, workers, the outbox relay and
the console, each its own process with its own log in LOG_DIR. Nothing is restarted
silently: when one process exits, the launcher says which, where its log is, stops the
others and exits non-zero.
Ctrl-C (or SIGTERM) stops everything.

On simswitch it also looks after the demo account (core/demo, setting DEMO): offered on the
first start, its files made again when missing, its agent kept reachable."""

from __future__ import annotations

import select
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import redis

from core.settings import ROOT, Settings

STOP_GRACE = 10.0
DEMO_QUESTION_S = 20.0  # an unattended first start takes the default (yes) after this


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log_path: Path


def _spawn(name: str, settings: Settings, *extra: str) -> Child:
    log_path = settings.log_dir / f"{name}.log"
    log = log_path.open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts.manage", "run", name.split("-")[0], *extra],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()  # the child holds its own descriptor
    return Child(name, process, log_path)


def _wait_until(check, timeout: float, children: list[Child]) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(c.process.poll() is not None for c in children):
            return False
        if check():
            return True
        time.sleep(0.2)
    return False


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def _web_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/login", timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


def stop_all(children: list[Child]) -> None:
    for child in reversed(children):
        if child.process.poll() is None:
            child.process.terminate()
    deadline = time.monotonic() + STOP_GRACE
    for child in reversed(children):
        try:
            child.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()


def main(settings: Settings) -> int:
    children: list[Child] = []

    def on_signal(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        if settings.redis_embedded:
            children.append(_spawn("redis", settings))
            if not _wait_until(lambda: _redis_answers(settings.redis_url), 15, children):
                return _failed(children, "redis")
        elif not _redis_answers(settings.redis_url):
            print(f"[launch] Redis at {settings.redis_url} does not answer; jobs will wait "
                  "for it", file=sys.stderr)

        from core import migrate
        from core.bootstrap import ensure_admin
        from core.db import session_factory

        migrate.upgrade(settings.database_url)
        with session_factory(settings.database_url)() as session:
            login = ensure_admin(session, settings)
            demo = _demo(session, settings, first_start=login.created)

        if settings.simswitch:
            children.append(_spawn("simswitch", settings))
        children.append(_spawn("controller", settings))
        children.extend(_spawn(f"worker-{i + 1}", settings) for i in range(settings.workers))
        children.append(_spawn("relay", settings))  # outbox → rq (workers/relay.py)
        children.append(_spawn("web", settings))
        url = f"http://{settings.web_host}:{settings.web_port}"
        if not _wait_until(lambda: _web_answers(url), 60, children):
            return _failed(children, "web")

        print(f"\nConsole: {url}/login", flush=True)
        print(f"  user:     {login.username}")
        print("  password: " + (login.password or "(the ADMIN_PASSWORD you set)"))
        if demo is not None:
            from core.demo.content import TASK_NAME

            print(f"Demo:    {url}/login   then AI外呼 → {TASK_NAME} → 开启")
            print(f"  user:     {demo.username}   (its agent: {demo.agent_username}, "
                  "人工坐席 → 坐席工作台)")
            print(f"  password: {demo.password}   (both users)")
        print(f"Logs: {settings.log_dir}   Stop: Ctrl-C\n", flush=True)
        keeper = _DemoAgent(settings) if demo is not None else None
        while True:
            for child in children:
                if child.process.poll() is not None:
                    return _failed(children, child.name)
            if keeper is not None:
                keeper.tick()
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\n[launch] stopping …", file=sys.stderr)
        stop_all(children)
        return 0


# -- the demo account (core/demo) -------------------------------------------------------------

def ask_yes(question: str, timeout: float = DEMO_QUESTION_S, stream=None) -> bool:
    """Ask on the terminal, default yes: an empty answer, no answer within `timeout`, or no
    terminal at all (an unattended start) all mean yes."""
    stream = stream or sys.stdin
    if stream is None or not stream.isatty():
        print(f"{question} yes (no terminal to ask; DEMO=no skips it)", flush=True)
        return True
    print(f"{question} [Y/n] (yes in {timeout:.0f} s) ", end="", flush=True)
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        print("yes")
        return True
    return stream.readline().strip().lower() in ("", "y", "yes", "是", "好")


def _demo(session, settings: Settings, first_start: bool):
    """The demo account: created when DEMO=yes, or on the first start when DEMO=ask and the
    answer is yes; only where simswitch runs (the demo's line exists nowhere else). Its
    files are made again when missing. Returns its DemoLogin, or None."""
    from core import demo

    if not settings.simswitch:
        if settings.demo == "yes":
            print("[launch] DEMO=yes ignored: the demo runs on simswitch, and FS_NODES "
                  "names real FreeSWITCH nodes", file=sys.stderr)
        return None
    login = demo.login(session, settings)
    if login is None:
        demo.clear_stale(settings)
        wanted = settings.demo == "yes" or (settings.demo == "ask" and first_start and ask_yes(
            "Create a demo account with a sample campaign (300 numbers on simswitch)?"))
        if not wanted:
            return None
        print("[launch] creating the demo account (audio by espeak-ng) …", flush=True)
    try:
        login = demo.create(session, settings)  # an existing one: its missing files only
    except (demo.DemoError, demo.DemoAudioError) as exc:
        print(f"[launch] no demo: {exc}", file=sys.stderr)
        return None
    if settings.simswitch_scenario is not None:
        print(f"[launch] SIMSWITCH_SCENARIO is set: simswitch plays that file, so the demo's "
              f"numbers do not behave as {demo.scenario_path(settings)} says", file=sys.stderr)
    return login


class _DemoAgent:
    """simswitch has no SIP, so the demo agent's browser phone can never register; its
    extension is registered in simswitch's scenario. Every few seconds this keeps the agent
    online-able (phone flag on) so transfers reach it and its screen pops show."""

    PERIOD_S = 2.0

    def __init__(self, settings: Settings):
        self.settings = settings
        self.next = 0.0
        self.user_id: int | None = None
        self.started = False

    def tick(self) -> None:
        if time.monotonic() < self.next:
            return
        self.next = time.monotonic() + self.PERIOD_S
        from core import demo
        from core.db import session_factory
        from core.presence import Presence
        from core.redis_conn import connect

        try:
            conn = connect(self.settings.redis_url)
            if self.started and (self.user_id is None
                                 or Presence(conn).get(self.user_id).registered):
                return
            with session_factory(self.settings.database_url)() as session:
                # online once per start; later only the phone flag. None: demo removed.
                self.user_id = demo.agent_ready(conn, session, self.settings,
                                                online=not self.started)
            self.started = True
        except (redis.RedisError, OSError) as exc:
            print(f"[launch] demo agent presence: {exc}", file=sys.stderr)


def _failed(children: list[Child], name: str) -> int:
    child = next((c for c in children if c.name == name), None)
    code = child.process.poll() if child else None
    where = child.log_path if child else "?"
    print(f"[launch] {name} exited (code {code}) or did not come up; its log: {where}. "
          "Stopping the other processes.", file=sys.stderr)
    if child is not None:
        tail = child.log_path.read_text(errors="replace").splitlines()[-15:]
        print("\n".join("    " + line for line in tail), file=sys.stderr)
    stop_all(children)
    return 1
