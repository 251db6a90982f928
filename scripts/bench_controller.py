"""Benchmark the controller: sustained concurrency, originate rate, ESL parsing throughput.

    python scripts/bench_controller.py                 # all three, default sizes
    python scripts/bench_controller.py --only sustained --calls 500 --hold 30

simswitch runs as its own process (real clock for the sustained run, so event timestamps
are real), the controller in this process on a real Redis (REDIS_URL, else an embedded one)
and a fresh SQLite database. Figures printed:

- sustained: N simultaneous calls held; the controller's CPU (this process) while holding
  them, and event lag p50/p99 (switch timestamp → the call's driver receiving it);
- originate: new calls per second the controller reaches with no CPS limit;
- parse: ESL events/s through the frame parser + typed-event adapter on one core, and
  through a real socket into NodeLink's dispatch.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gevent  # noqa: E402
import gevent.event  # noqa: E402
import psutil  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from core import migrate  # noqa: E402
from core.db import session_factory  # noqa: E402
from core.enums import TaskState  # noqa: E402
from core.models import Account, Line, Task, TaskNumber  # noqa: E402
from core.settings import ROOT, load_settings  # noqa: E402

FIXTURES = ROOT.parent / "shared" / "fixtures" / "esl" / "real"
if not FIXTURES.exists():
    FIXTURES = Path("/work/shared/fixtures/esl/real")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listening on {port}")


def start_redis(tmp: Path) -> tuple[str, subprocess.Popen | None]:
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"], None
    from core.embedded_redis import command

    port = free_port()
    proc = subprocess.Popen(command(port, tmp), stdout=subprocess.DEVNULL)
    wait_port(port)
    return f"redis://127.0.0.1:{port}/0", proc


def start_simswitch(tmp: Path, outcome: dict, speed: float) -> tuple[int, subprocess.Popen]:
    scenario = tmp / "bench_scenario.json"
    scenario.write_text(json.dumps({
        "seed": 1, "gateways": {"gw1": {"proxy": "127.0.0.1", "state": "REGED"}},
        "outcomes": {"o": outcome}, "distribution": [{"outcome": "o", "weight": 1}]}))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "simswitch", "--esl-port", str(port), "--scenario", str(scenario),
         "--recordings-dir", str(tmp / "rec"), "--speed", str(speed), "--log-level", "WARNING"],
        cwd=ROOT, stdout=subprocess.DEVNULL)
    wait_port(port)
    return port, proc


def seed(db_url: str, numbers: int, task_max: int, line_max: int, prompt: str) -> int:
    sessions = session_factory(db_url)
    with sessions() as s:
        account = Account(name="bench")
        s.add(account)
        s.flush()
        line = Line(account_id=account.id, name="L", gateway="gw1", max_concurrency=line_max,
                    caller_ids=["02100000000"])
        s.add(line)
        s.flush()
        task = Task(account_id=account.id, name="bench", line_id=line.id,
                    max_concurrency=task_max, state=TaskState.RUNNING, ring_timeout_s=60,
                    max_call_s=3600, dialogue_settings={"opening_prompt": prompt})
        s.add(task)
        s.flush()
        s.execute(insert(TaskNumber), [
            {"account_id": account.id, "task_id": task.id, "phone": f"139{i:08d}",
             "raw_phone": f"139{i:08d}", "position": i, "variables": {}, "state": "pending",
             "attempts": 0} for i in range(numbers)])
        s.commit()
        return task.id


def controller(tmp: Path, db_url: str, redis_url: str, port: int, cps: float):
    from controller.service import build

    settings = load_settings(environ={
        "DATA_DIR": str(tmp / "data"), "DATABASE_URL": db_url, "REDIS_URL": redis_url,
        "SIMSWITCH": "no", "FS_NODES": f"sim=127.0.0.1:{port}:ClueCon",
        "CONTROLLER_ID": "bench", "RECORDINGS_DIR": str(tmp / "rec"), "LOG_LEVEL": "WARNING",
    }, env_file=tmp / "none.env")
    return build(settings, tick=0.02, reload_s=2.0, cps=cps, lease_s=30)


def report_lags(lags: list[tuple[float, float]]) -> None:
    if not lags:
        print("  no channel events sampled")
        return
    total = [a for a, _ in lags]
    inside = [b for _, b in lags]
    print(f"  {len(lags)} channel events; lag switch event time → call driver: "
          f"p50 {1000 * pct(total, .5):.1f} ms, p99 {1000 * pct(total, .99):.1f} ms; "
          f"inside the controller (ESL dispatch → call driver): "
          f"p50 {1000 * pct(inside, .5):.2f} ms, p99 {1000 * pct(inside, .99):.2f} ms")


def stop_process(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] if values else float("nan")


def bench_sustained(tmp: Path, redis_url: str, calls: int, hold: float, cps: float) -> None:
    db_url = f"sqlite:///{tmp / 'sustained.db'}"
    migrate.upgrade(db_url)
    # Every call rings 2 s, is answered and recorded, hears a (silent) prompt and is hung up
    # by the callee 30 s later; the task keeps `calls` of them going, replacing each that ends.
    port, sim = start_simswitch(tmp, {"result": "answer", "after": 2, "hangup_after": 30},
                                speed=1)
    seed(db_url, calls * 6, calls, calls, "silence_stream://600000")
    ctl = controller(tmp, db_url, redis_url, port, cps)
    ctl.dialer.lags = []
    ctl.start()
    try:
        t0 = time.monotonic()
        while len(ctl.dialer.calls) < calls:
            if time.monotonic() - t0 > calls / cps * 3 + 60:
                raise SystemExit(f"only {len(ctl.dialer.calls)} calls live")
            gevent.sleep(0.1)
        ramp = time.monotonic() - t0
        ctl.dialer.lags.clear()
        sim_proc = psutil.Process(sim.pid)
        sim_proc.cpu_percent()
        cpu0, wall0 = time.process_time(), time.monotonic()
        live = []
        while time.monotonic() - wall0 < hold:
            gevent.sleep(0.5)
            live.append(len(ctl.dialer.calls))
        cpu = time.process_time() - cpu0
        wall = time.monotonic() - wall0
        sim_cpu = sim_proc.cpu_percent()
        lags = ctl.dialer.lags[:]
        ctl.dialer.lags = None
        print(f"sustained: {min(live)}–{max(live)} simultaneous calls for {wall:.0f} s, each "
              f"ending after ~32 s and replaced (ramp to {calls} took {ramp:.1f} s at "
              f"≤{cps:.0f} cps; {ctl.dialer.originated} originated in all)")
        print(f"  controller CPU while holding: {100 * cpu / wall:.1f}% of one core")
        print(f"  simswitch CPU while holding: {sim_cpu:.0f}% of one core")
        report_lags(lags)
    finally:
        ctl.stop()
        stop_process(sim)


def bench_sustained_ramp_lag(tmp: Path, redis_url: str, calls: int, cps: float) -> None:
    """Event lag while the load is changing: calls ramping up, answering and ending."""
    db_url = f"sqlite:///{tmp / 'ramp.db'}"
    migrate.upgrade(db_url)
    port, sim = start_simswitch(tmp, {"result": "answer", "after": 2, "hangup_after": 8},
                                speed=1)
    seed(db_url, calls, min(calls, 500), 500, "silence_stream://600000")
    ctl = controller(tmp, db_url, redis_url, port, cps)
    ctl.dialer.lags = []
    ctl.start()
    sim_proc = psutil.Process(sim.pid)
    sim_proc.cpu_percent()
    try:
        cpu0, wall0 = time.process_time(), time.monotonic()
        while ctl.dialer.tasks or ctl.dialer.calls:
            if time.monotonic() - wall0 > calls / cps * 3 + 60:
                break
            gevent.sleep(0.2)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        lags = ctl.dialer.lags
        print(f"churn: {calls} calls (answer at 2 s, callee hangs up at 10 s), ≤500 at once, "
              f"{cps:.0f} cps: done in {wall:.1f} s, controller CPU {100 * cpu / wall:.1f}%, "
              f"simswitch CPU {sim_proc.cpu_percent():.0f}%")
        report_lags(lags)
    finally:
        ctl.stop()
        stop_process(sim)


def bench_originate(tmp: Path, redis_url: str, calls: int) -> None:
    from controller.esl import NodeLink
    from core.settings import FsNode

    db_url = f"sqlite:///{tmp / 'originate.db'}"
    migrate.upgrade(db_url)
    port, sim = start_simswitch(tmp, {"result": "busy", "after": 600}, speed=1)
    seed(db_url, calls, calls, calls, "silence_stream://100")
    created: list[float] = []
    observer = NodeLink(FsNode("obs", "127.0.0.1", port, "ClueCon"), events=("CHANNEL_CREATE",),
                        on_event=lambda *_: created.append(time.monotonic()))
    gevent.spawn(observer.run)
    observer.up.wait(10)
    ctl = controller(tmp, db_url, redis_url, port, cps=100000)
    t0 = time.monotonic()
    ctl.start()
    try:
        deadline = time.monotonic() + 180
        while len(created) < calls and time.monotonic() < deadline:
            gevent.sleep(0.05)
        n = len(created)
        wall = created[-1] - t0
        first = created[0] - t0
        print(f"originate: {n} channels created on the switch in {wall:.2f} s after start = "
              f"{n / wall:.0f} calls/s end to end (first after {first * 1000:.0f} ms; "
              f"no CPS limit; claim + slot lease + call row + bgapi + switch)")
    finally:
        ctl.stop()
        observer.stop()
        stop_process(sim)


def _frames() -> list[bytes]:
    """Real plain event frames (FreeSWITCH 1.10.12 captures) re-serialised as on the wire."""
    from controller.events import CaptureReader

    raw = b"".join((FIXTURES / name).read_bytes() for name in
                   ("05_plain_sip_answer_fs_hangup.txt", "06_plain_sip_answer_remote_bye.txt",
                    "07_plain_sip_486_busy.txt"))
    frames, buf = [], raw
    while True:
        end = buf.find(b"\n\n")
        if end < 0:
            break
        head = buf[:end].decode()
        outer = dict(line.split(": ", 1) for line in head.split("\n") if ": " in line)
        length = int(outer.get("Content-Length", 0))
        frame, buf = buf[:end + 2 + length], buf[end + 2 + length:]
        if outer.get("Content-Type") == "text/event-plain":
            frames.append(frame)
    assert CaptureReader().feed(b"".join(frames))
    return frames


def bench_parse(seconds: float) -> None:
    from controller.esl import NodeLink
    from controller.events import CaptureReader, from_esl
    from core.settings import FsNode

    frames = _frames()
    blob = b"".join(frames)
    kinds = len(frames)
    # 1. In memory: framing + URL-decoding + typed events.
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for headers, body in CaptureReader().feed(blob):
            from_esl("fs1", headers, body)
            n += 1
    rate = n / (time.perf_counter() - t0)
    avg = len(blob) / kinds
    print(f"parse (in memory): {rate:,.0f} events/s on one core "
          f"({kinds} real events, {avg / 1024:.1f} KiB each on average)")

    # 2. Through a socket into NodeLink (greenswitch reader + our body parser + dispatch).
    port = free_port()
    repeat = max(1, int(rate * seconds / kinds))
    blaster = subprocess.Popen([sys.executable, "-c", f"""
import socket, sys
blob = sys.stdin.buffer.read()
srv = socket.create_server(("127.0.0.1", {port}))
print("ready", flush=True)
conn, _ = srv.accept()
conn.sendall(b"Content-Type: auth/request\\n\\n")
def request():
    data = b""
    while b"\\n\\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            sys.exit(0)
        data += chunk
    return data
request()
conn.sendall(b"Content-Type: command/reply\\nReply-Text: +OK accepted\\n\\n")
request()
conn.sendall(b"Content-Type: command/reply\\nReply-Text: +OK event listener enabled plain\\n\\n")
for _ in range({repeat}):
    conn.sendall(blob)
conn.recv(1)
"""], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    blaster.stdin.write(blob)
    blaster.stdin.close()
    blaster.stdout.readline()
    count = [0]
    done = gevent.event.Event()
    total = repeat * kinds

    def on_event(_node, headers, body):
        from_esl("fs1", headers, body)
        count[0] += 1
        if count[0] >= total:
            done.set()

    link = NodeLink(FsNode("blast", "127.0.0.1", port, "ClueCon"), events=("ALL",),
                    on_event=on_event)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    gevent.spawn(link.run)
    done.wait(seconds * 20 + 30)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    print(f"parse (socket → NodeLink → typed events): {count[0] / wall:,.0f} events/s, "
          f"{100 * cpu / wall:.0f}% of one core ({count[0]} events)")
    link.stop()
    blaster.kill()
    blaster.wait(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("sustained", "churn", "originate", "parse"))
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--hold", type=float, default=60)
    parser.add_argument("--cps", type=float, default=100)
    parser.add_argument("--originate-calls", type=int, default=2000)
    parser.add_argument("--churn-calls", type=int, default=3000)
    parser.add_argument("--parse-seconds", type=float, default=3)
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        redis_url, redis_proc = start_redis(tmp)
        try:
            if args.only in (None, "parse"):
                bench_parse(args.parse_seconds)
            if args.only in (None, "originate"):
                bench_originate(tmp, redis_url, args.originate_calls)
            if args.only in (None, "sustained"):
                bench_sustained(tmp, redis_url, args.calls, args.hold, args.cps)
            if args.only in (None, "churn"):
                bench_sustained_ramp_lag(tmp, redis_url, args.churn_calls, args.cps)
        finally:
            if redis_proc is not None:
                redis_proc.terminate()
                redis_proc.wait(10)


if __name__ == "__main__":
    main()
