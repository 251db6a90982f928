"""Number imports end to end: uploaded through the console or the API, relayed from the
outbox and run by a real rq worker process; the numbers, their region and carrier, the
notification and the error file. Broken inputs import nothing; a job run again imports
nothing twice."""

import base64
import csv
import io
import os
import subprocess
import sys
import zlib
from datetime import date

import pytest
import redis
import xlsxwriter
from openpyxl import load_workbook
from sqlalchemy import func, select, update
from sqlalchemy.orm import sessionmaker

from core import jobs
from core.db import make_engine
from core.enums import JobState
from core.models import Notification, Outbox, Task, TaskNumber, User
from core.settings import ROOT
from tests import factories as f
from tests.conftest import make_settings
from webui.app import create_app
from webui.extensions import db
from workers import imports
from workers.queues import queue
from workers.relay import relay_once

# A small .xls (BIFF8, written by xlwt): 号码* 姓名 生日 / 13800138000 (a number cell) 张三
# 1990-05-01 / "139 0013 9000" 李四 / bad. zlib + base64, as no writer of .xls is installed.
XLS = zlib.decompress(base64.b64decode(
    "eNrtWE1IVFEU/u59M86MOM5oGmhgDyGzSWHETS50yixXDvZDaQQ25hBhjDEUVIuyzE0QBK2KNoIt2lhB9EMtatciMHIRFIEW"
    "rVoFRS3U1zln3qsZI3CgBON+j3vuvefec+5595z7897L6YrZibu1c1iCDlhYdEIoyeMpSiGvEgW1Ow4XvTxIyTFYVQgFyZEl"
    "fjwOvwiwD9nfc9C443tGFHhP6SCOIzmSSdsriE6xIaXYhnaiCjeIU44asapS6GGha4Telp5PhG4VzmWh7dR3Vh3AdCIZ2+JG"
    "cZ+ul7ZysN4HIvNGOC2oxnOO4nNXVK6vH9uyR1PHVllDna8MkyCHdqcz6SzXI7iJUqCf0NzT09zVNYsqcvYkvjo28MVb1U9t"
    "w19ZvgLxvxfyA3/gB8mJS/lXtQ8YhXNIFsk4yhDzcYtW3/aoU/PYzmEgyYKwYhz1M/3hvZStP/kxTZk9EEqGKfpb2+x4vKXV"
    "bovH48ROHnm7zwIGU0OlvPPLThEt2CnCsoLKiA4hIuUKWUdRMnX+1udXPYO9iQHhjMrpkDtDNrDJcHCeJUi4XFrEajISiInE"
    "ZqEXROs6KdcKraIgp7yht9ot7ByTPheltYHGaRXMJDbmlRupPP5p18O68Q+JTVSe6p47UzX1OjGBejrThkienzE0qSZ1/Rrj"
    "UcLLlbvfvBNa89veE9RR13bHPSgjWODVRqgQmqvx7KifNe3OFUurJdIWzYlypUcbh++FOllGiQaeobOaa5rsumRp0aBFY+H4"
    "WjT43BFz3vG7I1piT2F/S/qzXzt0Je6zOO2lv1AKAwMDAwMDAwOD1Q4l98bcvZtvin73Zh9w/+ssUFo0v0n+W+zGCD0n6KNy"
    "BzKUZ3G6qPhZC7/ydKllynj/Cxn7afQshjEodgwXHb/0Zaby32fZgtG/t4SKHX+xGDv/8fg/AIs83IE="))


def xlsx(rows) -> bytes:
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False})
    sheet = book.add_worksheet()
    date_format = book.add_format({"num_format": "yyyy-mm-dd"})
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if isinstance(value, date):
                sheet.write_datetime(r, c, value, date_format)
            elif value is not None:
                sheet.write(r, c, value)
    book.close()
    return buf.getvalue()


def csv_bytes(rows, encoding: str) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode(encoding)


class Env:
    """The console on one database, a user of account A logged in, a user of account B,
    and the way to run what was uploaded through the relay and a real worker."""

    def __init__(self, tmp_path, database_url, redis_url):
        self.settings, env = make_settings(tmp_path, database_url, redis_url)
        self.env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
        self.app = create_app(self.settings, TESTING=True)
        self.engine = make_engine(database_url)
        self.factory = sessionmaker(self.engine, expire_on_commit=False)
        self.redis = redis.Redis.from_url(redis_url)
        with self.app.app_context():
            s = db.session
            a, b = f.account(s, "A"), f.account(s, "B")
            staff = f.user(s, a, "staff_a", f.Role.STAFF)
            self.token = f.token(s, staff)
            s.commit()
            self.staff_id = staff.id
            self.a, self.b = a.id, b.id
        self.client = self.app.test_client()
        f.login(self.client, "staff_a")

    def task(self, name, account=None, alias=None) -> int:
        with self.factory() as s:
            task = Task(account_id=account or self.a, name=name, alias=alias)
            s.add(task)
            s.commit()
            return task.id

    def upload(self, path, data: bytes, filename: str, **form):
        token = f.csrf_from(self.client.get(path).get_data(as_text=True))
        return self.client.post(path, data={"csrf_token": token, "mode": "normal", **form,
                                            "file": (io.BytesIO(data), filename)},
                                content_type="multipart/form-data")

    def run_jobs(self) -> None:
        relay_once(self.factory, self.redis)
        done = subprocess.run([sys.executable, "-m", "scripts.manage", "run", "worker",
                               "--burst"], cwd=ROOT, env=self.env, capture_output=True,
                              timeout=180)
        assert done.returncode == 0, done.stderr.decode()[-3000:]

    def notes(self) -> list[Notification]:
        with self.factory() as s:
            return list(s.scalars(select(Notification).order_by(Notification.id)))

    def numbers(self, task_id) -> list[TaskNumber]:
        with self.factory() as s:
            return list(s.scalars(select(TaskNumber).where(TaskNumber.task_id == task_id)
                                  .order_by(TaskNumber.id)))

    def close(self):
        with self.app.app_context():
            db.engine.dispose()
        self.engine.dispose()


@pytest.fixture
def env(tmp_path, any_db_url, redis_url):
    e = Env(tmp_path, any_db_url, redis_url)
    yield e
    e.close()


def error_rows(path) -> list[tuple]:
    sheet = load_workbook(path, read_only=True).worksheets[0]
    return [tuple(c if c is not None else "" for c in row)
            for row in sheet.iter_rows(values_only=True)]


def test_normal_import_checks_dedups_and_reports_bad_rows(env):
    task_id = env.task("春季活动")
    with env.factory() as s:  # already in the task, at position 5
        s.add(TaskNumber(account_id=env.a, task_id=task_id, phone="13900139000",
                         raw_phone="13900139000", position=5))
        s.commit()
    data = xlsx([
        ["号码*", "姓名", "公司", "性别", "生日", "产品"],
        [13800138000, "张三", "某公司", "1", date(1990, 5, 1), "=HYPERLINK(1)"],
        ["075512345678", "李四", "", "2", None, None],
        ["+86 138-0013-8000", "重复", "", "", None, None],
        ["139 0013 9000", "已有", "", "", None, None],
        ["12345", "王五", "", "", None, "=cmd|' /C calc'!A0"],
        [None, None, None, None, None, None],
        ["18612345678", "", "", "", None, None],
    ])
    resp = env.upload(f"/tasks/{task_id}/import", data, "名单.xlsx")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/notifications")
    (note,) = env.notes()
    assert note.state == JobState.QUEUED and note.kind == "import"
    env.run_jobs()

    (note,) = env.notes()
    assert (note.state, note.total, note.done_count, note.failed_count) == (
        JobState.DONE, 6, 3, 3)
    assert note.error == "3 行未导入，见错误文件"
    numbers = {n.phone: n for n in env.numbers(task_id)}
    assert set(numbers) == {"13900139000", "13800138000", "075512345678", "18612345678"}
    first = numbers["13800138000"]
    assert first.variables == {"姓名": "张三", "公司": "某公司", "性别": "男",
                               "生日": "1990-05-01", "产品": "=HYPERLINK(1)"}
    assert (first.region, first.carrier, first.raw_phone) == ("北京市", "中国移动", "13800138000")
    assert (numbers["075512345678"].region, numbers["075512345678"].carrier) == (
        "广东省深圳市", None)
    assert [numbers[p].position for p in ("13800138000", "075512345678", "18612345678")] == [
        6, 7, 8]  # after the task's last, in file order
    assert all(numbers[p].import_id == note.id for p in ("13800138000", "18612345678"))
    assert numbers["13900139000"].import_id is None
    assert error_rows(note.result_path) == [
        ("错误行号", "错误原因", "号码", "姓名", "公司", "性别", "生日", "产品"),
        # formula-safe (core.excel_safe): text starting with + = - @ gets an apostrophe,
        # which the reader drops again when the corrected file is imported
        (4, "与第 2 行号码重复", "'+86 138-0013-8000", "重复", "", "", "", ""),
        (5, "号码已在任务中", "139 0013 9000", "已有", "", "", "", ""),
        (6, "手机号码应为11位，以13-19开头", "12345", "王五", "", "", "",
         "'=cmd|' /C calc'!A0"),
    ]
    # the upload is gone, the error file stays (for the notification list to serve)
    assert [p.name for p in jobs.files_dir(env.settings).iterdir()] == [
        f"import-{note.id}-errors.xlsx"]

    # rq runs the finished job again (say, relayed twice): it ends at once.
    with env.factory() as s:
        row = s.scalar(select(Outbox).where(Outbox.key == jobs.outbox_key(note.id)))
    queue("default", env.redis).enqueue(row.job, *row.args)
    env.run_jobs()
    assert len(env.numbers(task_id)) == 4 and env.notes()[0].state == JobState.DONE


def test_fast_import_by_api_of_a_gb18030_csv_stores_numbers_unchecked(env):
    task_id = env.task("极速")
    data = csv_bytes([["号码", "姓名"], ["13800138000", "张三"], ["abc", ""],
                      ["13800138000", ""], ["075512345678", ""]], "gb18030")
    api = env.app.test_client()
    resp = api.post(f"/api/v1/tasks/{task_id}/imports",
                    headers={"Authorization": f"Bearer {env.token}"},
                    data={"mode": "fast", "shuffle": "false",
                          "file": (io.BytesIO(data), "号码.csv")},
                    content_type="multipart/form-data")
    assert resp.status_code == 202, resp.get_json()
    body = resp.get_json()
    assert body["state"] == "queued" and body["id"] == env.notes()[0].id
    env.run_jobs()
    (note,) = env.notes()
    assert (note.state, note.done_count, note.failed_count, note.result_path) == (
        JobState.DONE, 4, 0, None)
    numbers = env.numbers(task_id)
    assert [(n.phone, n.raw_phone, n.variables) for n in numbers] == [
        ("13800138000", "13800138000", {}), ("abc", "abc", {}),
        ("13800138000", "13800138000", {}), ("075512345678", "075512345678", {})]
    assert [n.position for n in numbers] == [1, 2, 3, 4]
    assert numbers[0].carrier == "中国移动" and numbers[1].region is None


def test_multi_task_import_by_alias_and_name_with_shuffle(env):
    spring = env.task("春季活动", alias="spring")
    visit = env.task("回访")
    theirs = env.task("别人的", account=env.b, alias="theirs")
    rows = [["任务别名*", "号码*", "姓名"]]
    rows += [["spring", str(13800000000 + i), f"客户{i}"] for i in range(30)]
    rows += [["回访", "13900139000", "回访客户"], ["theirs", "13700137000", ""],
             ["春季活动", "13800000000", "同一任务重复"]]
    resp = env.upload("/tasks/import", xlsx(rows), "多任务.xlsx", shuffle="1")
    assert resp.status_code == 302
    env.run_jobs()
    (note,) = env.notes()
    assert (note.state, note.done_count, note.failed_count) == (JobState.DONE, 31, 2)
    got = env.numbers(spring)
    assert len(got) == 30 and got[0].variables == {"姓名": "客户0"}
    positions = [n.position for n in got]
    assert sorted(positions) == list(range(1, 31)) and positions != sorted(positions)
    assert [(n.phone, n.position) for n in env.numbers(visit)] == [("13900139000", 1)]
    assert env.numbers(theirs) == []  # another account's task is never written
    assert error_rows(note.result_path)[1:] == [
        (33, "任务“theirs”不存在或无权限", "theirs", "13700137000", ""),
        (34, "与第 2 行号码重复", "春季活动", "13800000000", "同一任务重复")]


def test_an_xls_file_imports(env):
    task_id = env.task("xls")
    assert env.upload(f"/tasks/{task_id}/import", XLS, "旧版.xls").status_code == 302
    env.run_jobs()
    (note,) = env.notes()
    assert (note.done_count, note.failed_count) == (2, 1)
    assert [(n.phone, n.variables) for n in env.numbers(task_id)] == [
        ("13800138000", {"姓名": "张三", "生日": "1990-05-01"}),
        ("13900139000", {"姓名": "李四"})]


def test_broken_files_fail_with_a_message_and_import_nothing(env):
    task_id = env.task("坏文件")
    cases = [
        (xlsx([["姓名", "公司"], ["张三", "某公司"]]), "no-phone.xlsx",
         "未找到号码列：表头应有“号码”列，请使用导入模板"),
        (xlsx([["号码*", "姓名"]]), "header-only.xlsx",
         "文件中没有号码数据：请在表头下方逐行填写号码"),
        (xlsx([]), "blank.xlsx", "文件为空"),
        (b"PK\x03\x04 but not a workbook", "broken.xlsx", imports.UNREADABLE),
        (xlsx([["号码"], ["13800138000"]]), "multi-without-task.xlsx",
         "未找到任务别名列：多任务导入的表头应有“任务别名”列，请使用多任务模板"),
    ]
    for data, name, _ in cases[:-1]:
        assert env.upload(f"/tasks/{task_id}/import", data, name).status_code == 302
    data, name, _ = cases[-1]
    assert env.upload("/tasks/import", data, name).status_code == 302
    env.run_jobs()
    notes = env.notes()
    assert [(n.state, n.error) for n in notes] == [(JobState.FAILED, c[2]) for c in cases]
    assert env.numbers(task_id) == []
    assert list(jobs.files_dir(env.settings).iterdir()) == []  # uploads removed, no results

    # Refused at once, before any job: the form says why and nothing is queued.
    for data, name, message in [(b"%PDF-1.4", "a.pdf", "不支持的文件类型"),
                                (b"", "empty.xlsx", "文件为空"),
                                (b"%PDF-1.4", "renamed.xlsx", "不是 .xlsx 格式")]:
        resp = env.upload(f"/tasks/{task_id}/import", data, name)
        assert resp.status_code == 400 and message in resp.get_data(as_text=True)
    assert len(env.notes()) == len(cases)


# --- in-process: the job function itself --------------------------------------------------

@pytest.fixture
def inproc(env, monkeypatch):
    """Run the job in this process on the test's settings (as the worker would)."""
    monkeypatch.setattr(jobs, "get_settings", lambda: env.settings)
    return env


def _queued(env, task_id, data: bytes, kind="xlsx") -> tuple[int, str]:
    name = f"import-test.{kind}"
    (jobs.files_dir(env.settings) / name).write_bytes(data)
    with env.factory() as s:
        user = s.get(User, env.staff_id)
        note = jobs.start(s, user, kind="import", title="t", job="x", args=[])
        s.commit()
        return note.id, name


def test_over_the_row_limit_nothing_is_imported(inproc):
    task_id = inproc.task("大文件")
    rows = [["号码"], *[[str(13800000000 + i)] for i in range(4)]]
    note_id, name = _queued(inproc, task_id, xlsx(rows))
    imports.import_numbers(note_id, name, task_id, "normal", False, max_rows=3)
    (note,) = inproc.notes()
    assert note.state == JobState.FAILED
    assert note.error == "数据超过 3 行（单次导入上限），请拆分后分批导入"
    assert inproc.numbers(task_id) == []


def test_a_job_run_again_after_its_rows_were_committed_imports_nothing_twice(inproc):
    task_id = inproc.task("重试")
    rows = [["号码", "姓名"], ["13800138000", "张三"], ["bad", ""]]
    note_id, name = _queued(inproc, task_id, xlsx(rows))
    imports.import_numbers(note_id, name, task_id, "normal", False)
    (note,) = inproc.notes()
    assert (note.state, note.done_count, note.failed_count) == (JobState.DONE, 1, 1)
    # As if the worker died after the commit, before marking the notification done.
    with inproc.factory() as s:
        s.execute(update(Notification).values(state=JobState.RUNNING, error="处理出错"))
        s.commit()
    imports.import_numbers(note_id, name, task_id, "normal", False)
    (again,) = inproc.notes()
    assert (again.state, again.done_count, again.failed_count, again.error) == (
        JobState.DONE, 1, 1, "1 行未导入，见错误文件")
    assert again.result_path == note.result_path
    with inproc.factory() as s:
        assert s.scalar(select(func.count()).select_from(TaskNumber)) == 1
