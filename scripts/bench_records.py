"""Benchmark the call records list (通话记录) over a million calls, through the real view.

    python scripts/bench_records.py                       # SQLite and PostgreSQL, 1,000,000
    python scripts/bench_records.py --rows 100000 --only sqlite --runs 10

Builds one account's calls (50 tasks, 90 days, realistic status/grade/tag mix, a 1 KB CDR
each) in a scratch SQLite file and in a scratch PostgreSQL database next to
BENCH_POSTGRES_URL's (default postgresql://postgres@127.0.0.1:5432/test), both migrated
with the real migrations, then logs an administrator in and times GET /calls through
Flask's test client for each filter combination: p50/p95 in ms, and what the pager said
(an exact count, "more than 10,000", or a count abandoned over its budget). Both scratch
databases are removed at the end unless --keep.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sqlalchemy as sa  # noqa: E402

from core import clock, migrate  # noqa: E402
from core.db import make_engine  # noqa: E402
from core.models import Account, Call, PushMessage, Task, User  # noqa: E402
from core.settings import load_settings  # noqa: E402

PASSWORD = "bench-pass-1"
print = functools.partial(print, flush=True)  # noqa: A001  (progress shows when piped)
TASKS = 50
DAYS = 90
TAGS = ["有意向", "无意向", "价格敏感", "已有产品", "要求回电", "投诉风险", "A类", "加微信",
        "关注售后", "年轻客户", "老客户", "询问地址"]
REGIONS = ["广东省深圳市", "广东省广州市", "北京市", "上海市", "浙江省杭州市", "江苏省南京市",
           "四川省成都市", "湖北省武汉市", "山东省济南市", "河南省郑州市", "福建省厦门市",
           "湖南省长沙市"]  # as core.phone_info names them
STATUSES = [("answered", 35), ("no_answer", 25), ("busy", 10), ("rejected", 10),
            ("powered_off", 8), ("vacant", 7), ("suspended", 3), ("carrier_blocked", 2)]
GRADES = [("A", 5), ("B", 10), ("C", 50), ("D", 10), ("E", 15), ("F", 10)]
CDR_PADDING = "x" * 900  # FreeSWITCH's json_cdr is kept on every call; real ones are larger


def _pick(rng: random.Random, weighted) -> str:
    values, weights = zip(*weighted, strict=True)
    return rng.choices(values, weights)[0]


def call_rows(account_id: int, task_ids: list[int], n: int, seed: int = 7):
    """`n` plausible calls of one account, oldest first, in batches of dicts."""
    rng = random.Random(seed)
    end = clock.now()
    step = timedelta(days=DAYS) / n
    batch = []
    for i in range(n):
        status = _pick(rng, STATUSES)
        answered = status == "answered"
        row = {
            "account_id": account_id, "uuid": uuid.UUID(int=rng.getrandbits(128)).hex,
            "task_id": task_ids[i % len(task_ids)], "direction": "outbound",
            "phone": f"1{rng.choice('3578')}{rng.randrange(10**9):09d}",
            "created_at": end - step * (n - i), "status": status,
            "ring_seconds": rng.randrange(1, 40), "grade": None, "tags": [],
            "talk_seconds": 0, "interactions": 0, "score": 0, "unrecognised": 0,
            "region": rng.choice(REGIONS), "carrier": rng.choice(["中国移动", "中国联通", "中国电信"]),
            "gender": None, "hangup_side": None, "viewed": rng.random() < 0.1,
            "transfer": None, "sms": None, "push": None, "variables": {"姓名": "客户"},
            "grade_reasons": [], "cdr": {"variables": {"uuid": str(i), "pad": CDR_PADDING}},
        }
        if answered:
            row.update(grade=_pick(rng, GRADES), talk_seconds=rng.randrange(3, 300),
                       interactions=rng.randrange(1, 12), score=rng.randrange(0, 100),
                       tags=rng.sample(TAGS, rng.choice((0, 1, 1, 2, 3))),
                       gender=rng.choice(("male", "female", None)),
                       hangup_side=rng.choice(("callee", "robot")))
            if rng.random() < 0.05:
                row["transfer"] = {"state": rng.choice(("success", "failed")),
                                   "target": {"name": "坐席" + str(rng.randrange(20))}}
            if rng.random() < 0.05:
                row["push"] = {"state": "success", "target": "业务员"}
            if rng.random() < 0.2:
                row["sms"] = {"state": rng.choice(("success", "success", "failed"))}
        batch.append(row)
        if len(batch) == 10_000:
            yield batch
            batch = []
    if batch:
        yield batch


def build(url: str, rows: int, say=print) -> dict:
    """Migrate `url` and fill it: account, administrator, tasks, `rows` calls; ids back."""
    migrate.upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        account_id = conn.execute(sa.insert(Account).values(
            name="bench", timezone="Asia/Shanghai", created_at=clock.now())
            .returning(Account.id)).scalar_one()
        user = User(username="bench_admin", role="admin")
        user.set_password(PASSWORD)
        conn.execute(sa.insert(User).values(
            account_id=account_id, username=user.username, password_hash=user.password_hash,
            role="admin", display_name="", active=True, locale="zh", preferences={},
            department_head=False, created_at=clock.now()))
        task_ids = [conn.execute(sa.insert(Task).values(
            account_id=account_id, name=f"任务{i:02d}", created_at=clock.now(),
            tags=[], direction="outbound", state="running")
            .returning(Task.id)).scalar_one() for i in range(TASKS)]
    started, done = time.monotonic(), 0
    for batch in call_rows(account_id, task_ids, rows):
        with engine.begin() as conn:
            conn.execute(sa.insert(Call), batch)
        done += len(batch)
        if done % 100_000 == 0:
            say(f"  {done:,} calls ({time.monotonic() - started:.0f} s)")
    with engine.begin() as conn:  # some notices were opened (the "seen" filter's EXISTS)
        ids = conn.execute(sa.select(Call.id).where(Call.push.is_not(None)).limit(5000))
        conn.execute(sa.insert(PushMessage), [
            {"account_id": account_id, "key": f"seen-{i}", "call_id": i, "content": "x",
             "token": f"tok-{i}", "state": "seen", "seen_at": clock.now(),
             "created_at": clock.now(), "attempts": 1} for (i,) in ids])
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    engine.dispose()
    return {"account_id": account_id, "tasks": task_ids}


def combinations(tasks: list[int]) -> list[tuple[str, dict]]:
    """(name, query) pairs: no filter, then two filters each."""
    now = clock.now().astimezone()
    local = "%Y-%m-%dT%H:%M"
    week, month = (now - timedelta(days=7)).strftime(local), \
        (now - timedelta(days=30)).strftime(local)
    return [
        ("no filter", {}),
        ("task + grade", {"task": tasks[3], "grade": "A"}),
        ("last 7 days + grade A/B", {"call_from": week, "grade": ["A", "B"]}),
        ("phone contains + last 30 days", {"phone": "1388", "call_from": month}),
        # a fragment few numbers have (the last digits someone remembers): no early rows
        ("rare phone fragment + 30 days", {"phone": "8000", "call_from": month}),
        ("3 tasks + tag", {"task": tasks[:3], "tags": "有意向"}),
        ("talk >= 60 s + interactions >= 3", {"talk_min": 60, "inter_min": 3}),
        ("grade A + transfer success", {"grade": "A", "transfer": "success"}),
        ("status no-answer + region", {"status": "no_answer", "region": "深圳"}),
        ("unviewed + pushed not seen", {"viewed": "no", "push": "pushed"}),
        ("OR: grade A | talk >= 200 s", {"rel": "or", "grade": "A", "talk_min": 200}),
        ("task + page 50", {"task": tasks[7], "page": 50}),
    ]


def measure(url: str, tasks: list[int], runs: int, say=print) -> list[tuple]:
    """Time GET /calls for each combination through the real Flask app."""
    from webui.app import create_app

    data_dir = tempfile.mkdtemp(prefix="bench-records-")
    env = {"DATA_DIR": data_dir, "DATABASE_URL": url,
           "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
           "SIMSWITCH": "no", "FS_NODES": "t=127.0.0.1:1:x", "ADMIN_PASSWORD": PASSWORD}
    app = create_app(load_settings(environ=env, env_file=Path(env["DATA_DIR"]) / "none"),
                     TESTING=True, WTF_CSRF_ENABLED=False)
    client = app.test_client()
    assert client.post("/login", data={"username": "bench_admin", "password": PASSWORD}) \
        .status_code == 302, "login failed"
    results = []
    for name, query in combinations(tasks):
        path = "/calls?" + urlencode(query, doseq=True)
        times = []
        for i in range(runs + 2):
            t0 = time.perf_counter()
            resp = client.get(path)
            elapsed = (time.perf_counter() - t0) * 1000
            assert resp.status_code == 200, (path, resp.status_code)
            if i >= 2:  # the first two warm the caches
                times.append(elapsed)
        html = resp.get_data(as_text=True)
        shown = html.count("<tr><td>")
        total = html.split('id="total">', 1)[1].split("<", 1)[0].strip()
        times.sort()
        p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
        results.append((name, statistics.median(times), p95, shown, total))
        say(f"  {name:36s} p50 {statistics.median(times):6.1f} ms   p95 {p95:6.1f} ms   "
            f"{shown:3d} rows   {total}")
    with app.app_context():
        from webui.extensions import db

        db.engine.dispose()
    shutil.rmtree(data_dir)
    return results


def _pg_urls(admin: str) -> tuple[str, str]:
    parts = urlsplit(admin)
    scheme = parts.scheme if "+" in parts.scheme else "postgresql+psycopg"
    admin = urlunsplit(parts._replace(scheme=scheme))
    name = f"bench_records_{os.getpid()}"
    return admin, urlunsplit(urlsplit(admin)._replace(path="/" + name))


def run_sqlite(rows: int, runs: int, keep: bool) -> list[tuple]:
    folder = Path(tempfile.mkdtemp(prefix="bench-records-db-"))
    url = f"sqlite:///{folder / 'calls.db'}"
    print(f"SQLite ({url}): building {rows:,} calls")
    try:
        ids = build(url, rows)
        return measure(url, ids["tasks"], runs)
    finally:
        if not keep:
            shutil.rmtree(folder)


def run_postgresql(rows: int, runs: int, keep: bool) -> list[tuple]:
    admin, url = _pg_urls(os.environ.get("BENCH_POSTGRES_URL",
                                         "postgresql://postgres@127.0.0.1:5432/test"))
    name = urlsplit(url).path[1:]
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    print(f"PostgreSQL (database {name}): building {rows:,} calls")
    try:
        ids = build(url, rows)
        return measure(url, ids["tasks"], runs)
    finally:
        if not keep:
            with engine.connect() as c:
                c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    args = parser.parse_args()
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the console's logging is on
    summary = {}
    if args.only in (None, "sqlite"):
        summary["sqlite"] = run_sqlite(args.rows, args.runs, args.keep)
    if args.only in (None, "postgresql"):
        summary["postgresql"] = run_postgresql(args.rows, args.runs, args.keep)
    print(json.dumps({db: {r[0]: {"p50_ms": round(r[1], 1), "p95_ms": round(r[2], 1),
                                  "pager": r[4]} for r in res}
                      for db, res in summary.items()}, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
