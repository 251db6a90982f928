"""Exports end to end: requested through the console, relayed to rq, written by a real worker
process, opened with openpyxl."""

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import redis
import sqlalchemy as sa

from core import call_columns, jobs
from core.db import session_factory
from core.enums import JobState
from core.models import Call, Notification, PushMessage, Task, TaskNumber, User
from core.settings import ROOT
from tests import factories as f
from tests.conftest import make_settings
from webui.app import create_app
from webui.extensions import db
from workers import exports
from workers.relay import relay_once


@pytest.fixture
def setup(tmp_path, any_db_url, redis_url):
    """The console and the worker's environment on one database (SQLite and PostgreSQL)."""
    settings, env = make_settings(tmp_path, any_db_url, redis_url)
    app = create_app(settings, TESTING=True)
    with app.app_context():
        s = db.session
        a, b = f.account(s, "A"), f.account(s, "B")
        for acct, name, role in ((a, "admin_a", f.Role.ADMIN), (a, "staff_a", f.Role.STAFF),
                                 (b, "admin_b", f.Role.ADMIN)):
            f.user(s, acct, name, role)
        task = Task(account_id=a.id, name="春季活动")
        s.add(task)
        s.flush()
        for i in range(30):
            s.add(Call(account_id=a.id, task_id=task.id, uuid=f"a{i}", phone=f"138{i:08d}",
                       created_at=datetime(2026, 3, 1, 2, i, tzinfo=UTC), status="answered",
                       grade="A" if i % 3 == 0 else "C", talk_seconds=65 + i,
                       tags=["=HYPERLINK(\"http://x\")", "有意向"] if i == 0 else ["有意向"]))
        s.add(Call(account_id=b.id, uuid="b0", phone="13599999999", grade="A",
                   created_at=datetime(2026, 3, 1, 3, tzinfo=UTC), tags=["-1+1"]))
        s.commit()
    yield app, {**os.environ, **env, "PYTHONPATH": str(ROOT)}, any_db_url, redis_url
    with app.app_context():
        db.engine.dispose()


def _request_export(app, username: str, data: dict) -> None:
    client = app.test_client()
    f.login(client, username)
    token = f.csrf_from(client.get("/calls").get_data(as_text=True))
    assert client.post("/calls/export", data={"csrf_token": token, **data}).status_code == 302


def _run_jobs(env, database_url: str, redis_url: str) -> None:
    assert relay_once(session_factory(database_url), redis.Redis.from_url(redis_url)) >= 1
    done = subprocess.run([sys.executable, "-m", "scripts.manage", "run", "worker", "--burst"],
                          cwd=ROOT, env=env, capture_output=True, timeout=180)
    assert done.returncode == 0, done.stderr.decode()[-3000:]


def _notes(app) -> dict[int, Notification]:
    with app.app_context():
        return {n.user_id: n for n in db.session.scalars(sa.select(Notification))}


def _sheet(path: str) -> list[tuple]:
    book = openpyxl.load_workbook(path)
    sheet = book.active
    return [tuple(c.value for c in row) for row in sheet.iter_rows()], sheet


def test_export_through_a_worker_process(setup):
    app, env, database_url, redis_url = setup
    _request_export(app, "staff_a", {"grade": ["A"], "columns": ["grade", "phone", "tags",
                                                                 "talk_seconds", "created_at"]})
    _request_export(app, "admin_b", {"columns": ["phone", "tags"]})
    with app.app_context():  # a job whose filter no longer validates fails, with the reason
        owner = db.session.scalar(sa.select(User).where(User.username == "admin_a"))
        broken = jobs.start(db.session, owner, kind="export", title="broken",
                            job=exports.__name__ + ".export_calls",
                            args=[{"filter": {"op": "xor"}, "columns": ["phone"]}]).id
        db.session.commit()
    _run_jobs(env, database_url, redis_url)
    with app.app_context():
        note = db.session.get(Notification, broken)
        assert note.state == JobState.FAILED and note.error.startswith("筛选条件无效：筛选关系")
    with app.app_context():
        ids = {u: db.session.scalar(sa.text("SELECT id FROM \"user\" WHERE username = :u"),
                                    {"u": u}) for u in ("staff_a", "admin_b")}
    notes = _notes(app)
    assert len(notes) == 3
    mine = notes[ids["staff_a"]]
    assert (mine.state, mine.progress, mine.total, mine.done_count) == (JobState.DONE, 100, 10, 10)
    rows, sheet = _sheet(mine.result_path)
    assert rows[0] == ("意向标签", "电话号码", "标签", "通话时长", "呼叫时间")
    assert len(rows) == 11
    # Newest first; numbers masked (staff); Shanghai wall-clock times; durations stay numbers.
    assert rows[1][:2] == ("A 有明确意向", "138****0027")
    assert rows[1][4] == datetime(2026, 3, 1, 10, 27)
    assert sheet.cell(row=2, column=4).number_format == "[h]:mm:ss"
    assert rows[1][3] == timedelta(seconds=92)
    oldest = rows[-1]
    assert oldest[1] == "138****0000"
    # A tag that starts a formula is written as text, behind an apostrophe.
    assert oldest[2] == "'=HYPERLINK(\"http://x\")、有意向"
    assert sheet.cell(row=len(rows), column=3).data_type == "s"
    assert all(r[1].startswith("138") for r in rows[1:])  # nothing of account B
    theirs = notes[ids["admin_b"]]
    rows, _ = _sheet(theirs.result_path)
    assert rows == [("电话号码", "标签"), ("135****9999", "'-1+1")]


def test_full_numbers_for_an_admin_who_asks(setup):
    app, env, database_url, redis_url = setup
    _request_export(app, "admin_a", {"phone": "13800000001", "phone_mode": "exact",
                                     "columns": ["phone"], "full_numbers": "1"})
    _run_jobs(env, database_url, redis_url)
    (note,) = _notes(app).values()
    rows, _ = _sheet(note.result_path)
    assert rows == [("电话号码",), ("13800000001",)]


def test_rows_beyond_a_sheet_go_on_the_next(setup, tmp_path, monkeypatch):
    app, _env, database_url, _redis = setup
    monkeypatch.setattr(exports, "SHEET_ROWS", 12)
    factory = session_factory(database_url)
    with app.app_context():
        owner = db.session.scalar(sa.select(User).where(User.username == "admin_a"))
        note = jobs.start(db.session, owner, kind="export", title="t", job="x").id
        db.session.commit()
    columns = call_columns.chosen(["phone"])
    spec = {"sheet": "通话记录", "headers": ["电话号码"]}
    ctx = call_columns.Context(zone=ZoneInfo("Asia/Shanghai"))
    with factory() as session, jobs.Progress(note, factory) as progress:
        rows = session.execute(sa.select(*call_columns.selected_attrs(columns))
                               .where(Call.phone.like("138%")).order_by(Call.id)
                               .execution_options(yield_per=7))
        progress.begin(30)
        assert exports._write(tmp_path / "x.xlsx", spec, columns, ctx, session, rows,
                              progress) == 30
    book = openpyxl.load_workbook(tmp_path / "x.xlsx")
    assert book.sheetnames == ["通话记录", "通话记录 (2)", "通话记录 (3)"]
    assert [book[n].max_row for n in book.sheetnames] == [13, 13, 7]
    assert book["通话记录 (3)"]["A1"].value == "电话号码"
    assert book["通话记录 (3)"]["A7"].value == "13800000029"


# --- the fast paths: the same file as xlsxwriter's own methods write ------------------------

def test_serial_numbers_are_xlsxwriter_s():
    """excel_safe.serial / seconds_serial give the very floats write_datetime stores."""
    from xlsxwriter.utility import _datetime_to_excel_datetime as theirs

    from core import excel_safe

    values = [datetime(1900, 1, 1), datetime(1900, 1, 1, 12), datetime(1900, 2, 28, 23, 59),
              datetime(1900, 3, 1), datetime(1970, 1, 1), datetime(2026, 3, 1, 10, 27, 5),
              datetime(2026, 3, 8, 1, 59, 59, 999999), datetime(9999, 12, 31, 23, 59, 59)]
    values += [datetime(2026, 1, 1) + timedelta(seconds=7919 * i, microseconds=37 * i)
               for i in range(5000)]
    for value in values:
        assert excel_safe.serial(value) == theirs(value, False, False), value
    for seconds in [0, 1, 59, 92, 3599, 86399, 86400, 86401, 10**6, 123456789, -5]:
        td = timedelta(seconds=seconds)
        assert excel_safe.seconds_serial(seconds) == theirs(td, False, False) \
            == excel_safe.serial(td), seconds
    with pytest.raises(ValueError):
        excel_safe.serial(datetime(2026, 1, 1, tzinfo=UTC))


def test_time_reader_reads_back_as_the_viewer_s_wall_clock(tmp_path):
    """A time written as its serial number with the time format reads back (openpyxl) as the
    wall-clock time of the viewer's zone, across a DST change too."""
    import xlsxwriter

    zone = ZoneInfo("America/New_York")
    ctx = call_columns.Context(zone=zone)
    read = call_columns.BY_KEY["created_at"].reader(ctx, 0)
    stamps = [datetime(2026, 3, 8, 6, 59, 59, tzinfo=UTC),  # 01:59:59 EST
              datetime(2026, 3, 8, 7, 0, 0, tzinfo=UTC),  # 03:00:00 EDT
              datetime(2026, 11, 1, 5, 30, tzinfo=UTC), datetime(2026, 11, 1, 6, 30, tzinfo=UTC),
              datetime(2026, 3, 1, 2, 27, tzinfo=UTC).replace(tzinfo=None)]  # naive: UTC
    book = xlsxwriter.Workbook(str(tmp_path / "t.xlsx"), {"constant_memory": True})
    sheet, fmt = book.add_worksheet(), book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    for i, stamp in enumerate(stamps):
        sheet.write_number(i, 0, read((stamp,)), fmt)
    book.close()
    got = [r[0] for r in openpyxl.load_workbook(tmp_path / "t.xlsx").active.values]
    assert got == [datetime(2026, 3, 8, 1, 59, 59), datetime(2026, 3, 8, 3, 0),
                   datetime(2026, 11, 1, 1, 30), datetime(2026, 11, 1, 1, 30),
                   datetime(2026, 2, 28, 21, 27)]
    assert read((None,)) is None


def test_readers_give_the_cells_of_the_columns(any_db_url):
    """ExportReader's readers (positions, JSON as text, memos) give exactly the cell each
    column's `export` gives, as the writer writes it, for every column."""
    factory = session_factory(any_db_url)
    with factory() as s:
        a = f.account(s, "A")
        agent = f.user(s, a, "agent_a", f.Role.STAFF)
        agent.display_name = "=坐席"
        named = f.user(s, a, "agent_b", f.Role.STAFF)
        task = Task(account_id=a.id, name="+春季")
        s.add(task)
        s.flush()
        number = TaskNumber(account_id=a.id, task_id=task.id, phone="1", raw_phone="1",
                            created_at=datetime(2026, 2, 1, 16, 30, tzinfo=UTC))
        s.add(number)
        s.flush()
        odd = [None, "", "广东省深圳市", "=1+1", "-3", "@x", " lead", "a&b<c>", "+8613800000000"]
        for i in range(60):
            pick = odd[i % len(odd)]
            s.add(Call(
                account_id=a.id, task_id=task.id if i % 4 else None, uuid=f"r{i}",
                phone=(pick or "") if i % 7 == 0 else f"138{i:08d}",
                task_number_id=number.id if i % 3 == 0 else None,
                created_at=datetime(2026, 3, 1, 2, i, i, 1000 * i, tzinfo=UTC),
                answered_at=datetime(2026, 3, 1, 2, i, tzinfo=UTC) if i % 2 else None,
                ended_at=None, status=["answered", "busy", "weird", None][i % 4],
                grade=["A", "C", None][i % 3], talk_seconds=[0, 65, 90000, None][i % 4] or 0,
                ring_seconds=i, interactions=i % 5, score=i, unrecognised=i % 2,
                tags=[["=HYPERLINK(1)", "有意向"], [], ["有意向"], [7, "x"]][i % 4],
                transfer=[None, {"state": "success", "target": {"name": "坐席1"}},
                          {"state": "failed", "group": "-组"}, {}][i % 4],
                push=[None, {"state": "success", "target": "业务员"},
                      {"state": "failed"}][i % 3],
                sms=[None, {"state": "success"}, {"state": "failed"}, {}][i % 4],
                region=pick, carrier=odd[(i + 1) % len(odd)], caller_id=pick,
                gender=["male", "female", None][i % 3], hangup_side=["callee", None][i % 2],
                viewed=bool(i % 2), agent_id=[None, agent.id, named.id][i % 3],
                agent_notes=pick, variables=[{}, {"姓名": "客户"}, {"=a": 1, "b": None}][i % 3]))
        s.flush()
        for call_id in s.scalars(sa.select(Call.id).where(Call.push.is_not(None)).limit(9)):
            s.add(PushMessage(account_id=a.id, key=f"k{call_id}", call_id=call_id, content="x",
                              token=f"t{call_id}", state="seen", seen_at=datetime.now(UTC),
                              attempts=1))
        s.commit()
        columns = list(call_columns.COLUMNS)
        labels = {"status": {"answered": "已接听", "busy": "=忙"}, "grade": {"A": "A 有明确意向"},
                  "push": {"pushed": "已推送", "seen": "已查看"}, "sms": {"sent": "已发送"},
                  "viewed": {"yes": "是", "no": "否"}, "transfer": {"success": "成功"}}
        for mask in (None, "middle", "all"):
            ctx = call_columns.Context(zone=ZoneInfo("Asia/Shanghai"), labels=labels,
                                       mask=mask)
            reader = call_columns.ExportReader(columns, ctx)
            typed = s.execute(sa.select(*call_columns.selected_attrs(columns))
                              .order_by(Call.id)).all()
            raw = s.connection().execute(sa.select(*reader.selects).order_by(Call.id)).all()
            call_columns.load_lookups(s, ctx, raw, columns)
            assert len(typed) == len(raw) == 60
            for t, r in zip(typed, raw, strict=True):
                for c, read in zip(columns, reader.readers, strict=True):
                    assert read(r) == call_columns._finish(c.kind, c.export(t, ctx)), \
                        (c.key, mask, t)


class _Batches:
    def __init__(self, rows, size):
        self.rows, self.size = rows, size

    def partitions(self):
        for i in range(0, len(self.rows), self.size):
            yield self.rows[i:i + self.size]


def _parts(path) -> dict[str, bytes]:
    import zipfile

    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist() if n != "docProps/core.xml"}


@pytest.mark.parametrize("sheet_rows", [exports.SHEET_ROWS, 7])
def test_fast_rows_write_what_xlsxwriter_writes(tmp_path, monkeypatch, sheet_rows):
    """Rows written as XML (_Sheet.write_xml_row) and rows written cell by cell through
    xlsxwriter's methods give the same bytes, whatever the text: what xlsxwriter escapes or
    marks goes its way, and formats get their numbers in the same order."""
    from types import SimpleNamespace

    monkeypatch.setattr(exports, "SHEET_ROWS", sheet_rows)
    columns = call_columns.chosen(["agent_notes", "talk_seconds", "created_at",
                                   "interactions", "region", "tags"])
    texts = ["plain", "广东省深圳市", "'=1+1", "a&b", "<b>", "<r><t>x</t></r>", 'say "hi"',
             " lead", "trail ", "\tx", "x\n", "two\nlines", "ctl\x01", "\x1f", "_x0041_",
             "_x00", "x_x", "\ufffe", "\uffff", "\u3000wide", "nbsp\xa0", "y" * 40000, "é",
             "emoji 🎉", "", "*" * 11]
    numbers = [0, 1, -1, 2**53 + 1, 10**17, 0.1, 1 / 3, 46082.4375, 1e-300, True]
    rows = []
    for i in range(90):
        rows.append((texts[i % len(texts)] if i % 5 else None,
                     None if i < 3 else i * 0.0001,  # durations start after times
                     None if i % 11 == 0 else 46082 + i / 7,
                     numbers[i % len(numbers)],
                     texts[(i * 3) % len(texts)],
                     None if i % 2 else "有意向"))
    rows += [(None,) * 6] * 3 + rows[:5]  # empty rows, then more
    reader = SimpleNamespace(readers=[(lambda r, i=i: r[i]) for i in range(6)])
    spec = {"sheet": "通话记录", "headers": ["备注", "=时长", "时间", "次数", "地区", "标签"]}
    progress = SimpleNamespace(step=lambda **_: None)
    ctx = call_columns.Context(zone=ZoneInfo("Asia/Shanghai"))
    for fast in (True, False):
        assert exports._write(tmp_path / f"{fast}.xlsx", spec, columns, ctx, None,
                              _Batches(rows, 13), progress, reader, fast=fast) == len(rows)
    fast, slow = _parts(tmp_path / "True.xlsx"), _parts(tmp_path / "False.xlsx")
    assert fast.keys() == slow.keys()
    for name in slow:
        assert fast[name] == slow[name], name
    assert len([n for n in slow if n.startswith("xl/worksheets/sheet")]) == \
        (1 if sheet_rows > len(rows) else -(-len(rows) // sheet_rows))


def test_export_files_unchanged_through_the_database(setup, tmp_path):
    """All 26 columns from the database: the fast file equals the all-xlsxwriter one."""
    app, _env, database_url, _redis = setup
    factory = session_factory(database_url)
    with app.app_context():
        owner = db.session.scalar(sa.select(User).where(User.username == "admin_a"))
        notes = [jobs.start(db.session, owner, kind="export", title="t", job="x").id
                 for _ in range(2)]
        db.session.commit()
    columns = list(call_columns.COLUMNS)
    spec = {"sheet": "通话记录", "headers": [c.key for c in columns]}
    ctx = call_columns.Context(zone=ZoneInfo("Asia/Shanghai"), mask="middle")
    paths = []
    for note, fast in zip(notes, (True, False), strict=True):
        reader = call_columns.ExportReader(columns, ctx)
        path = tmp_path / f"{note}.xlsx"
        with factory() as session, jobs.Progress(note, factory) as progress:
            rows = session.connection().execute(
                sa.select(*reader.selects).order_by(Call.created_at.desc(), Call.id.desc()),
                execution_options={"yield_per": 7})
            progress.begin(31)
            assert exports._write(path, spec, columns, ctx, session, rows, progress, reader,
                                  fast=fast) == 31
        paths.append(path)
    assert _parts(paths[0]) == _parts(paths[1])
