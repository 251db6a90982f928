"""电话号码 and 导入号码 pages: the status table's filters and paging, the import forms and
templates, the import API; another account's user sees and does nothing."""

import io
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from openapi_spec_validator import validate
from openpyxl import load_workbook
from sqlalchemy import func, select

from core import clock
from core.models import Account, Notification, Task, TaskNumber, User
from tests import factories as f
from webui.extensions import db


@pytest.fixture
def task_id(app, world):
    with app.app_context():
        task = Task(account_id=world["a"], name="春季活动", alias="spring")
        db.session.add(task)
        db.session.commit()
        return task.id


def _add(app, task_id, account_id, phone, **values):
    with app.app_context():
        row = TaskNumber(account_id=account_id, task_id=task_id, phone=phone, raw_phone=phone,
                         **values)
        db.session.add(row)
        db.session.commit()


def _notifications(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Notification))


def _phones(page: str) -> set[str]:
    return {p for p in ("13800138000", "13900139000", "18612345678", "075512345678")
            if p in page}


@pytest.fixture
def numbers(app, world, task_id):
    now = clock.now()
    _add(app, task_id, world["a"], "13800138000", position=1, region="北京市",
         carrier="中国移动", created_at=now - timedelta(days=3), last_status="answered",
         last_called_at=now - timedelta(days=1), state="done", attempts=1,
         variables={"姓名": "张三"})
    _add(app, task_id, world["a"], "13900139000", position=2, region="江苏省常州市",
         carrier="中国移动", created_at=now - timedelta(days=3), last_status="no_answer",
         last_called_at=now - timedelta(hours=1), state="done", attempts=2)
    _add(app, task_id, world["a"], "18612345678", position=3, region="北京市",
         carrier="中国联通", created_at=now)
    _add(app, task_id, world["a"], "075512345678", position=4, region="广东省深圳市",
         created_at=now)
    return now


def test_status_table_filters(app, client, world, task_id, numbers):
    f.login(client, "staff_a")
    url = f"/tasks/{task_id}/numbers"
    page = client.get(url).get_data(as_text=True)
    assert _phones(page) == {"13800138000", "13900139000", "18612345678", "075512345678"}
    assert "张三" in page and "北京市" in page
    assert page.index("13800138000") < page.index("075512345678")  # dialling order

    def shown(**args):
        resp = client.get(url, query_string=args)
        assert resp.status_code == 200
        return _phones(resp.get_data(as_text=True))

    assert shown(phone="138 0013 8000") == {"13800138000"}  # a whole number: exact
    assert shown(phone="0755") == {"075512345678"}  # part of one: anywhere in it
    assert shown(region="北京") == {"13800138000", "18612345678"}
    assert shown(carrier="中国联通") == {"18612345678"}
    assert shown(status="no_answer") == {"13900139000"}
    assert shown(status="none") == {"18612345678", "075512345678"}
    assert shown(state="done") == {"13800138000", "13900139000"}
    with app.app_context():  # the form's times are the account's local times
        now = numbers.astimezone(ZoneInfo(db.session.get(Account, world["a"]).timezone))
    yesterday = (now - timedelta(days=1)).strftime("%Y-%m-%d")
    assert shown(created_from=yesterday) == {"18612345678", "075512345678"}
    assert shown(created_to=(now - timedelta(days=2)).strftime("%Y-%m-%d")) == {
        "13800138000", "13900139000"}
    two_hours_ago = (now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    assert shown(called_from=two_hours_ago) == {"13900139000"}
    assert shown(called_to=two_hours_ago) == {"13800138000"}
    assert shown(called_from=yesterday, carrier="中国移动", region="江苏") == {"13900139000"}
    assert shown(status="bogus", created_from="not a date") == _phones(page)  # ignored


def test_status_table_pages(app, client, world, task_id):
    with app.app_context():
        db.session.add_all(TaskNumber(account_id=world["a"], task_id=task_id,
                                      phone=str(13800000000 + i), raw_phone="x", position=i)
                           for i in range(120))
        db.session.commit()
    f.login(client, "staff_a")
    first = client.get(f"/tasks/{task_id}/numbers").get_data(as_text=True)
    third = client.get(f"/tasks/{task_id}/numbers?page=3").get_data(as_text=True)
    assert "13800000000" in first and "13800000049" in first and "13800000050" not in first
    assert "13800000119" in third and "13800000069" not in third
    assert "120" in first


def test_another_accounts_user_sees_and_does_nothing(app, client, world, task_id, numbers):
    f.login(client, "admin_b")
    token = f.csrf_from(client.get("/tasks/import").get_data(as_text=True))
    assert client.get(f"/tasks/{task_id}/numbers").status_code == 404
    assert client.get(f"/tasks/{task_id}/import").status_code == 404
    resp = client.post(f"/tasks/{task_id}/import", data={
        "csrf_token": token, "mode": "normal",
        "file": (io.BytesIO(b"13800138000\n"), "a.csv")}, content_type="multipart/form-data")
    assert resp.status_code == 404 and _notifications(app) == 0
    # A multi-task import cannot reach the task either: the job resolves tasks among the
    # uploader's (tests/workers/test_imports.py).
    agent = app.test_client()
    f.login(agent, "agent_a")
    assert agent.get(f"/tasks/{task_id}/numbers").status_code == 403
    assert agent.get("/tasks/import").status_code == 403
    anonymous = app.test_client()
    assert anonymous.get(f"/tasks/{task_id}/numbers").status_code == 302
    assert anonymous.get("/tasks/import/template/single.xlsx").status_code == 302


def test_import_form_starts_a_job_and_needs_csrf(app, client, world, task_id):
    f.login(client, "staff_a")
    page = client.get(f"/tasks/{task_id}/import").get_data(as_text=True)
    assert 'name="mode" value="fast"' in page and 'name="shuffle"' in page
    resp = client.post(f"/tasks/{task_id}/import", data={
        "mode": "normal", "file": (io.BytesIO(b"13800138000\n"), "a.csv")},
        content_type="multipart/form-data")
    assert resp.status_code == 400 and _notifications(app) == 0  # no CSRF token
    token = f.csrf_from(page)
    resp = client.post(f"/tasks/{task_id}/import", data={
        "csrf_token": token, "mode": "fast", "shuffle": "1",
        "file": (io.BytesIO("号码\n13800138000\n".encode()), "名单.csv")},
        content_type="multipart/form-data")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/notifications")
    with app.app_context():
        note = db.session.scalar(select(Notification))
        assert note.kind == "import" and "春季活动" in note.title
        assert note.user_id == world["staff_a"]
    resp = client.post(f"/tasks/{task_id}/import", data={
        "csrf_token": token, "mode": "turbo",
        "file": (io.BytesIO(b"x"), "a.csv")}, content_type="multipart/form-data")
    assert resp.status_code == 400 and _notifications(app) == 1
    resp = client.post("/tasks/import", data={"csrf_token": token, "mode": "normal"},
                       content_type="multipart/form-data")
    assert resp.status_code == 400 and _notifications(app) == 1


@pytest.mark.parametrize("kind, header, note_cell", [
    ("single", ("号码*", "姓名", "公司", "性别", "备注"), "A1"),
    ("multi", ("任务别名*", "号码*", "姓名", "公司", "性别", "备注"), "A1"),
    ("fast", ("号码*",), "A1"),
])
def test_templates(client, world, kind, header, note_cell):
    f.login(client, "staff_a")
    resp = client.get(f"/tasks/import/template/{kind}.xlsx")
    assert resp.status_code == 200 and "attachment" in resp.headers["Content-Disposition"]
    book = load_workbook(io.BytesIO(resp.data))
    sheet, hints = book.worksheets
    assert tuple(c.value for c in sheet[1]) == header
    assert sheet[note_cell].comment is not None
    assert sheet.column_dimensions["B" if kind == "multi" else "A"].number_format == "@"
    text = "\n".join(str(r[0].value) for r in hints.iter_rows())
    assert ("加*字段为必填项" in text) != (kind == "fast")
    assert client.get("/tasks/import/template/other.xlsx").status_code == 404


def test_import_api(app, world, task_id):
    with app.app_context():
        tokens = {name: f.token(db.session, db.session.scalar(
            select(User).where(User.username == name))) for name in ("staff_a", "admin_b")}
        db.session.commit()
    api = app.test_client()

    def post(user, **data):
        return api.post(f"/api/v1/tasks/{task_id}/imports", data=data,
                        headers={"Authorization": f"Bearer {tokens[user]}"},
                        content_type="multipart/form-data")

    resp = post("admin_b", file=(io.BytesIO(b"x"), "a.csv"))
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "not_found"
    resp = post("staff_a")
    assert resp.status_code == 422 and "file" in resp.get_json()["error"]["fields"]
    resp = post("staff_a", file=(io.BytesIO(b"%PDF"), "a.pdf"))
    assert resp.get_json()["error"]["fields"]["file"].startswith("不支持的文件类型")
    resp = post("staff_a", mode="turbo", file=(io.BytesIO(b"x"), "a.csv"))
    assert resp.status_code == 422 and "mode" in resp.get_json()["error"]["fields"]
    resp = post("staff_a", shuffle="maybe", file=(io.BytesIO(b"x"), "a.csv"))
    assert resp.status_code == 422 and "shuffle" in resp.get_json()["error"]["fields"]
    assert _notifications(app) == 0
    resp = post("staff_a", mode="normal", shuffle="true",
                file=(io.BytesIO("号码\n13800138000\n".encode()), "a.csv"))
    assert resp.status_code == 202 and resp.get_json()["state"] == "queued"
    assert _notifications(app) == 1

    document = api.get("/api/v1/openapi.json").get_json()
    validate(document)
    assert "multipart/form-data" in document["paths"]["/tasks/{task_id}/imports"]["post"][
        "requestBody"]["content"]
