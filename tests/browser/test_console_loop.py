"""The operator's day in headless Chromium (issue 7): log in, create a task with the form,
import a number file (a real relay and rq worker process run the job), start the task,
open a call's detail from the records. Screenshots of each step are kept as test
artefacts under test-artifacts/console-loop/ (git-ignored)."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
import redis
import sqlalchemy as sa
import xlsxwriter
from sqlalchemy.orm import Session

from core.db import session_factory
from core.enums import TaskState
from core.models import Call, DialogueTurn, Line, Task, TaskNumber, User
from core.settings import ROOT
from workers.relay import relay_once

pytestmark = pytest.mark.browser
ARTEFACTS = ROOT / "test-artifacts" / "console-loop"


def shot(page, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)


def numbers_file(path):
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, ["号码", "姓名"])
    rows = [("13800138000", "王先生"), ("13900139000", "李女士"), ("13800138000", "重复"),
            ("12345", "坏号码")]
    for i, row in enumerate(rows, 1):
        sheet.write_row(i, 0, row)
    book.close()


def test_create_import_start_and_open_a_call(page, console, subprocess_env, tmp_path):
    engine = sa.create_engine(subprocess_env["DATABASE_URL"])
    with Session(engine) as s:
        admin = s.scalar(sa.select(User).where(User.username == console["user"]))
        s.add(Line(account_id=admin.account_id, name="主线路", gateway="gw1",
                   max_concurrency=5))
        s.commit()

    page.goto(console["url"] + "/login")
    page.fill("#username", console["user"])
    page.fill("#password", console["password"])
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/tasks")

    # create a task with the form: a name, the line, the 早九晚五 preset, a no-call period
    page.click("#new-task")
    page.wait_for_url("**/tasks/new")
    page.fill("#f-name", "春季回访")
    page.select_option("#f-line", label="主线路")
    page.fill("#f-conc", "2")
    assert "剩余 5" in page.locator("#capacity-note").inner_text()
    page.fill("#f-conc", "9")
    assert "并发不足" in page.locator("#capacity-note").inner_text()
    page.fill("#f-conc", "2")
    page.click("button:has-text('早九晚五')")
    page.click("#add-forbidden")
    page.locator(".forbidden-row input").nth(0).fill("2027-01-01T00:00")
    page.locator(".forbidden-row input").nth(1).fill("2027-01-03T23:59")
    shot(page, "1-task-form")
    page.click("#save-task")
    page.wait_for_url("**/tasks")
    assert "春季回访" in page.locator("#tasks").inner_text()
    with Session(engine) as s:
        task = s.scalar(sa.select(Task).where(Task.name == "春季回访"))
        assert task.weekly["fri"] == [["09:00", "12:00"], ["13:00", "17:00"]]
        assert task.forbidden_ranges == [["2027-01-01T00:00", "2027-01-03T23:59"]]
        task_id = task.id

    # import numbers from the task's menu; the job runs in a real worker process
    row = page.locator(f"#tasks tr[data-task='{task_id}']")
    row.locator("button:has-text('更多')").click()
    row.locator("a:has-text('导入号码')").click()
    page.wait_for_url(f"**/tasks/{task_id}/import")
    numbers_file(tmp_path / "numbers.xlsx")
    page.set_input_files("#file", str(tmp_path / "numbers.xlsx"))
    page.click("#import-submit")
    page.wait_for_url("**/notifications")
    relay_once(session_factory(subprocess_env["DATABASE_URL"]),
               redis.Redis.from_url(subprocess_env["REDIS_URL"]))
    done = subprocess.run([sys.executable, "-m", "scripts.manage", "run", "worker", "--burst"],
                          cwd=ROOT, env=subprocess_env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    page.reload()
    first = page.locator("#notifications tbody tr").first
    assert "完成" in first.inner_text()
    assert first.locator("a:has-text('下载')").count() == 1  # the error file
    shot(page, "2-import-done")
    with Session(engine) as s:
        phones = set(s.scalars(sa.select(TaskNumber.phone).where(TaskNumber.task_id == task_id)))
    assert phones == {"13800138000", "13900139000"}

    # start it from the list
    page.goto(console["url"] + "/tasks")
    page.locator(f"#tasks tr[data-task='{task_id}'] button:has-text('开启')").click()
    page.wait_for_url("**/tasks")
    assert "进行中" in page.locator(f"#tasks tr[data-task='{task_id}']").inner_text()
    shot(page, "3-task-running")
    with Session(engine) as s:
        assert s.get(Task, task_id).state == TaskState.RUNNING
        call = Call(account_id=s.get(Task, task_id).account_id, task_id=task_id,
                    uuid=str(uuid.uuid4()), phone="13800138000", status="answered",
                    grade="A", talk_seconds=42)
        s.add(call)
        s.flush()
        s.add_all([DialogueTurn(account_id=call.account_id, call_id=call.id, seq=1,
                                speaker="robot", text="您好，请问是王先生吗？", end_ms=2500),
                   DialogueTurn(account_id=call.account_id, call_id=call.id, seq=2,
                                speaker="callee", text="是的，有兴趣", start_ms=3000,
                                end_ms=4200)])
        s.commit()
        call_id = call.id

    # the call shows in the records; its detail has the conversation
    page.click("#menu >> text=通话记录")
    page.wait_for_url("**/calls**")
    page.locator(f"a[href$='/calls/{call_id}']").first.click()
    page.wait_for_url(f"**/calls/{call_id}")
    assert "是的，有兴趣" in page.locator("body").inner_text()
    shot(page, "4-call-detail")
    with Session(engine) as s:
        assert s.get(Call, call_id).viewed
    engine.dispose()
