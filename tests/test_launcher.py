"""The run command's launcher, as a real process tree."""

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest

from core.settings import ROOT
from tests.conftest import free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def launched(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATA_DIR": str(tmp_path / "data"),
           "WEB_PORT": str(free_port()), "EMBEDDED_REDIS_PORT": str(free_port()),
           "SIMSWITCH": "no", "FS_NODES": f"fs=127.0.0.1:{free_port()}:x", "WORKERS": "2"}
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "scripts.manage", "run", "all"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if line.startswith("Logs:") or proc.poll() is not None:
            break
    yield proc, "".join(lines), env
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _children(proc):
    return psutil.Process(proc.pid).children(recursive=True)


def test_run_all_starts_everything_and_ctrl_c_stops_it(launched):
    proc, out, env = launched
    assert f"Console: http://127.0.0.1:{env['WEB_PORT']}/login" in out, out
    password = re.search(r"password: (\S+)", out).group(1)
    assert password == (ROOT / env["DATA_DIR"] / "admin_password").read_text().strip()
    with urllib.request.urlopen(f"http://127.0.0.1:{env['WEB_PORT']}/login", timeout=5) as r:
        assert "AI 外呼中心" in r.read().decode()
    names = {p.cmdline()[-1] for p in _children(proc) if "scripts.manage" in p.cmdline()}
    assert {"web", "controller", "worker"} <= names
    logs = {p.name for p in (ROOT / env["DATA_DIR"] / "logs").iterdir()}
    assert {"web.log", "controller.log", "worker-1.log", "worker-2.log", "redis.log"} <= logs
    kids = _children(proc)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 0
    gone, alive = psutil.wait_procs(kids, timeout=10)
    assert alive == []


def test_a_component_that_dies_stops_everything_loudly(launched):
    proc, out, env = launched
    worker = next(p for p in _children(proc) if p.cmdline()[-1] == "worker")
    kids = _children(proc)
    worker.kill()
    assert proc.wait(30) == 1
    err = proc.stderr.read()
    assert "worker-" in err and "exited" in err and "worker-" in err.split("its log:")[1]
    gone, alive = psutil.wait_procs(kids, timeout=10)
    assert alive == []
