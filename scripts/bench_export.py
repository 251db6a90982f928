"""Benchmark call records exports end to end: 100,000 records through the real job.

    python scripts/bench_export.py                    # SQLite and PostgreSQL
    python scripts/bench_export.py --rows 20000 --only sqlite
    python scripts/bench_export.py --runs 5 --columns 10 26   # medians of 5 runs
    python scripts/bench_export.py --runs 3 --compare ../baseline   # against another checkout

Builds the calls as scripts/bench_records.py does (scratch databases, removed afterwards),
starts an embedded Redis, then for each column set: POST /calls/export through the console,
the outbox relay, and a real `manage run worker --burst` process. Prints the wall time from
the request to the finished notification, the job's own time, the worker's CPU time (what
the figures are worth on a busy machine), the rows and file size, and the worker's peak
memory (it should not grow with the rows: constant_memory + streaming). With --runs N each
export runs N times on the same database and the medians come last (other processes load
the machine: compare figures measured back to back).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import redis  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from core.db import session_factory  # noqa: E402
from core.embedded_redis import command as redis_command  # noqa: E402
from core.models import Notification  # noqa: E402
from core.settings import ROOT, load_settings  # noqa: E402
from scripts.bench_records import PASSWORD, _pg_urls, build  # noqa: E402
from workers.relay import relay_once  # noqa: E402

COLUMN_SETS = {
    "default 10 columns": ["phone", "task", "created_at", "status", "grade", "talk_seconds",
                           "interactions", "tags", "transfer", "push"],
    "default without tags": ["phone", "task", "created_at", "status", "grade",
                             "talk_seconds", "interactions", "transfer", "push"],
    "all 26 columns": None,  # filled from the registry
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _redis(folder: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen(redis_command(port, folder), stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(200):
        try:
            redis.Redis.from_url(url).ping()
            return proc, url
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("embedded Redis did not start")


def run_exports(url: str, rows: int, say=print, runs: int = 1, sets: list[str] | None = None,
                compare: Path | None = None) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """Each of COLUMN_SETS (or `sets`) exported `runs` times, by a worker of this checkout
    and, right after each, one of `compare`'s (another checkout: a baseline) on the same
    data; (end-to-end seconds, worker CPU seconds) by (checkout, column set)."""
    from core.call_columns import COLUMNS
    from webui.app import create_app

    COLUMN_SETS["all 26 columns"] = [c.key for c in COLUMNS]
    build(url, rows, say=lambda *_: None)
    roots = {"this": ROOT, **({"compare": compare} if compare else {})}
    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
    folder = Path(tempfile.mkdtemp(prefix="bench-export-"))
    redis_proc, redis_url = _redis(folder)
    env = {"DATA_DIR": str(folder / "data"), "DATABASE_URL": url, "REDIS_URL": redis_url,
           "SIMSWITCH": "no", "FS_NODES": "t=127.0.0.1:1:x", "ADMIN_PASSWORD": PASSWORD}
    try:
        app = create_app(load_settings(environ=env, env_file=folder / "none"), TESTING=True,
                         WTF_CSRF_ENABLED=False)
        client = app.test_client()
        client.post("/login", data={"username": "bench_admin", "password": PASSWORD})
        factory = session_factory(url)
        conn = redis.Redis.from_url(redis_url)
        chosen = [(n, c) for n, c in COLUMN_SETS.items() if sets is None or n in sets]
        for (name, columns), (label, root) in (
                (one, root) for _ in range(runs) for one in chosen for root in roots.items()):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            resp = client.post("/calls/export", data={"columns": columns})
            assert resp.status_code == 302, resp.status_code
            assert relay_once(factory, conn) == 1
            worker = subprocess.run(
                [sys.executable, "-m", "scripts.manage", "run", "worker", "--burst"],
                cwd=root, env={**os.environ, **env, "PYTHONPATH": str(root)},
                capture_output=True, timeout=600)
            total = time.perf_counter() - t0
            assert worker.returncode == 0, worker.stderr.decode()[-2000:]
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            peak_mb = after.ru_maxrss / 1024
            with factory() as s:
                note = s.scalars(sa.select(Notification).order_by(Notification.id.desc())) \
                    .first()
            assert note.state == "done", note.error
            job_s = (note.updated_at - note.created_at).total_seconds()
            size = Path(note.result_path).stat().st_size / 1e6
            times.setdefault((label, name), []).append((total, cpu))
            say(f"  {label + ':' if compare else '':8s} {name:22s} {note.done_count:,} rows  end to end {total:5.1f} s  "
                f"(job {job_s:5.1f} s, worker CPU {cpu:5.1f} s)  {size:4.1f} MB  "
                f"worker peak RSS ≤ {peak_mb:.0f} MB")
        with app.app_context():
            from webui.extensions import db

            db.engine.dispose()
    finally:
        redis_proc.terminate()
        redis_proc.wait(10)
        shutil.rmtree(folder)
    return times


def _medians(times: dict[tuple[str, str], list[tuple[float, float]]]) -> None:
    for (label, name), values in times.items():
        walls = [w for w, _ in values]
        print(f"  median {label:7s} {name:22s} {statistics.median(walls):5.1f} s end to end, "
              f"worker CPU {statistics.median(c for _, c in values):5.1f} s  "
              f"(runs: {', '.join(f'{w:.1f}' for w in walls)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--runs", type=int, default=1, help="times each export runs")
    parser.add_argument("--columns", choices=("10", "9", "26"), nargs="+",
                        help="only these column sets: the default 10, those without tags, all")
    parser.add_argument("--compare", type=Path, metavar="CHECKOUT",
                        help="also run each export with the worker of this other checkout "
                             "of the project (a baseline), alternately, on the same data")
    args = parser.parse_args()
    names = {"10": "default 10 columns", "9": "default without tags", "26": "all 26 columns"}
    sets = [names[c] for c in args.columns] if args.columns else None
    more = {"runs": args.runs, "sets": sets, "compare": args.compare}
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory(prefix="bench-export-db-") as folder:
            print(f"SQLite: {args.rows:,} calls")
            _medians(run_exports(f"sqlite:///{folder}/calls.db", args.rows, **more))
    if args.only in (None, "postgresql"):
        admin, url = _pg_urls(os.environ.get("BENCH_POSTGRES_URL",
                                             "postgresql://postgres@127.0.0.1:5432/test"))
        name = urlsplit(url).path[1:] + "_export"
        url = url + "_export"
        engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            print(f"PostgreSQL (database {name}): {args.rows:,} calls")
            _medians(run_exports(url, args.rows, **more))
        finally:
            with engine.connect() as c:
                c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            engine.dispose()


if __name__ == "__main__":
    main()
