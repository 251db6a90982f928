"""Benchmark number imports (T3) end to end, and the xlsx readers they could use.

    python scripts/bench_import.py                       # 250,000 rows, SQLite
    python scripts/bench_import.py --rows 50000
    python scripts/bench_import.py --postgres postgresql://postgres@127.0.0.1:5432/postgres

A fresh database (SQLite in a temporary folder, or a temporary database on the PostgreSQL
server given), a real Redis (REDIS_URL, else an embedded one), and the relay and one rq
worker as their own processes, as `run all` starts them. Each import is uploaded to the
console's API (POST /api/v1/tasks/<id>/imports) and timed until its notification is done.
Figures printed:

- readers: seconds to read the normal-import file with python-calamine and with openpyxl
  (read-only), which is why the job reads with calamine;
- normal: a 250,000-row xlsx with five extra columns, 1% invalid and 1% repeated numbers
  (target under 30 s on two cores);
- fast: a 250,000-row number-only xlsx (target under 10 s).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sqlalchemy as sa  # noqa: E402
import xlsxwriter  # noqa: E402

from core import migrate  # noqa: E402
from core.db import session_factory  # noqa: E402
from core.enums import JobState, Role  # noqa: E402
from core.jobs import outbox_key  # noqa: E402
from core.models import (  # noqa: E402
    Account,
    ApiToken,
    Notification,
    Outbox,
    Task,
    TaskNumber,
    User,
)
from core.settings import ROOT, load_settings  # noqa: E402

TIMEOUT_S = 600


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(tmp: Path) -> tuple[str, subprocess.Popen | None]:
    if os.environ.get("REDIS_URL"):  # its database 13, clear of the tests' 15 and of 0
        return urlunsplit(urlsplit(os.environ["REDIS_URL"])._replace(path="/13")), None
    from core.embedded_redis import command

    port = free_port()
    proc = subprocess.Popen(command(port, tmp), stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return f"redis://127.0.0.1:{port}/0", proc
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the embedded Redis did not start")


def write_numbers(path: Path, rows: int, fast: bool, rng: random.Random) -> None:
    """A sheet like an operator's: mobiles (some landlines), 1% invalid, 1% repeated."""
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = book.add_worksheet()
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_row(0, 0, ["号码*"] if fast else ["号码*", "姓名", "公司", "性别", "生日", "备注"])
    phones: list[int] = []
    for r in range(1, rows + 1):
        roll = rng.random()
        if roll < 0.01:
            phone = f"1{rng.randrange(10**8)}"  # too short
        elif roll < 0.02 and phones:
            phone = rng.choice(phones)  # a repeat
        elif roll < 0.05:
            phone = f"0{rng.choice(['10', '21', '755', '571', '28'])}{rng.randrange(10**7, 10**8)}"
        else:
            phone = rng.randrange(13000000000, 19999999999)  # a number cell, as Excel keeps it
            phones.append(phone)
        sheet.write(r, 0, phone)
        if not fast:
            sheet.write_string(r, 1, f"客户{r}")
            sheet.write_string(r, 2, f"某某科技有限公司{r % 500}")
            sheet.write_string(r, 3, rng.choice(["1", "2", ""]))
            sheet.write_datetime(r, 4, date(1960, 1, 1) + timedelta(days=rng.randrange(15000)),
                                 day)
            sheet.write_string(r, 5, rng.choice(["老客户", "展会", "官网咨询", ""]))
    book.close()


def compare_readers(path: Path) -> dict[str, float]:
    from openpyxl import load_workbook

    from workers.imports import read_sheet

    started = time.perf_counter()
    calamine_rows = sum(1 for _ in read_sheet(path).rows)
    calamine_s = time.perf_counter() - started
    started = time.perf_counter()
    book = load_workbook(path, read_only=True, data_only=True)
    openpyxl_rows = sum(1 for _ in book.worksheets[0].iter_rows(values_only=True))
    book.close()
    openpyxl_s = time.perf_counter() - started
    assert calamine_rows == openpyxl_rows, (calamine_rows, openpyxl_rows)
    return {"python-calamine": calamine_s, "openpyxl read-only": openpyxl_s}


def seed(factory) -> tuple[str, int, int]:
    """An account, a staff user with an API token and two empty tasks."""
    with factory() as s:
        account = Account(name="bench")
        s.add(account)
        s.flush()
        user = User(account_id=account.id, username="bench", role=Role.STAFF)
        user.set_password(uuid.uuid4().hex)
        s.add(user)
        s.flush()
        token, plain = ApiToken.issue(user, "bench")
        normal = Task(account_id=account.id, name="普通导入")
        fast = Task(account_id=account.id, name="极速导入")
        s.add_all([token, normal, fast])
        s.commit()
        return plain, normal.id, fast.id


def timed_import(client, token: str, factory, task_id: int, path: Path, mode: str) -> dict:
    """Upload `path` to the API and wait for its notification; seconds and counts."""
    started = time.perf_counter()
    resp = client.post(f"/api/v1/tasks/{task_id}/imports",
                       headers={"Authorization": f"Bearer {token}"},
                       data={"mode": mode, "file": (io.BytesIO(path.read_bytes()), path.name)},
                       content_type="multipart/form-data")
    assert resp.status_code == 202, resp.get_json()
    note_id = resp.get_json()["id"]
    while time.perf_counter() - started < TIMEOUT_S:
        with factory() as s:
            note = s.get(Notification, note_id)
            if note.state in (JobState.DONE, JobState.FAILED):
                stored = s.scalar(sa.select(sa.func.count()).select_from(TaskNumber)
                                  .where(TaskNumber.task_id == task_id))
                job = s.scalar(sa.select(Outbox).where(Outbox.key == outbox_key(note_id)))
                break
        time.sleep(0.1)
    else:
        raise SystemExit(f"{mode} import did not finish in {TIMEOUT_S} s")
    if note.state == JobState.FAILED:
        raise SystemExit(f"{mode} import failed: {note.error}")
    return {"seconds": time.perf_counter() - started,
            "in worker": (job.finished_at - job.relayed_at).total_seconds(),
            "imported": note.done_count,
            "not imported": note.failed_count, "stored": stored}


def temporary_postgres(admin_url: str) -> tuple[str, Callable[[], None]]:
    url = admin_url.replace("postgresql://", "postgresql+psycopg://", 1)
    name = f"bench_import_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop():
        with engine.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()

    return urlunsplit(urlsplit(url)._replace(path="/" + name)), drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=250_000)
    parser.add_argument("--postgres", metavar="URL",
                        help="a PostgreSQL server (any database on it) to bench on instead")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench_import_"))
    redis_url, redis_proc = start_redis(tmp)
    database_url, drop = (temporary_postgres(args.postgres) if args.postgres
                          else (f"sqlite:///{tmp / 'bench.db'}", lambda: None))
    env = {**os.environ, "DATA_DIR": str(tmp / "data"), "DATABASE_URL": database_url,
           "REDIS_URL": redis_url, "SIMSWITCH": "no", "LOG_LEVEL": "WARNING",
           "FS_NODES": f"bench=127.0.0.1:{free_port()}:ClueCon", "PYTHONPATH": str(ROOT)}
    procs = []
    try:
        migrate.upgrade(database_url)
        factory = session_factory(database_url)
        token, normal_task, fast_task = seed(factory)
        rng = random.Random(1)
        normal_file, fast_file = tmp / "normal.xlsx", tmp / "fast.xlsx"
        started = time.perf_counter()
        write_numbers(normal_file, args.rows, fast=False, rng=rng)
        write_numbers(fast_file, args.rows, fast=True, rng=rng)
        print(f"files: {args.rows} rows each, written in {time.perf_counter() - started:.1f} s "
              f"(normal {normal_file.stat().st_size / 1e6:.1f} MB, "
              f"fast {fast_file.stat().st_size / 1e6:.1f} MB)")
        for name, seconds in compare_readers(normal_file).items():
            print(f"reader {name:<20} {seconds:6.1f} s")

        for component in ("relay", "worker"):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "scripts.manage", "run", component], cwd=ROOT, env=env,
                stdout=subprocess.DEVNULL, stderr=open(tmp / f"{component}.log", "w")))
        time.sleep(3)  # both connected and idle, as in production

        from webui.app import create_app

        settings = load_settings(environ=env, env_file=tmp / "no.env")
        client = create_app(settings).test_client()
        print(f"database: {database_url.split(':')[0]}")
        for label, task_id, path, mode, target in (
                ("normal", normal_task, normal_file, "normal", 30),
                ("fast", fast_task, fast_file, "fast", 10)):
            result = timed_import(client, token, factory, task_id, path, mode)
            print(f"{label:<6} import: {result['seconds']:5.1f} s end to end (target < {target} s)"
                  f", {result['in worker']:.1f} s of it in the worker; {result['imported']} "
                  f"imported, {result['not imported']} not imported, {result['stored']} stored")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(20)
        if redis_proc:
            redis_proc.terminate()
            redis_proc.wait(10)
        drop()


if __name__ == "__main__":
    main()
