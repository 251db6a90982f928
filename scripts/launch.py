"""Run the whole product: embedded Redis, simswitch, controller, workers, the outbox relay and
the console, each its own process with its own log in LOG_DIR. Nothing is restarted
silently: when one process exits, the launcher says which, where its log is, stops the
others and exits non-zero.
Ctrl-C (or SIGTERM) stops everything."""

from __future__ import annotations

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
        print(f"Logs: {settings.log_dir}   Stop: Ctrl-C\n", flush=True)
        while True:
            for child in children:
                if child.process.poll() is not None:
                    return _failed(children, child.name)
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\n[launch] stopping …", file=sys.stderr)
        stop_all(children)
        return 0


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
