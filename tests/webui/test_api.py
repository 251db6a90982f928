"""The JSON API through HTTP: tokens, error format, tasks, numbers, calls, notifications."""

import pytest
from openapi_spec_validator import validate

from core import clock
from core.enums import JobState
from core.models import ApiToken, Call, Notification, User
from tests import factories as f
from webui.extensions import db


@pytest.fixture
def api(app, world):
    """Call the API as a user: api("admin_a").get(...)."""
    tokens = {}

    def as_user(username):
        if username not in tokens:
            with app.app_context():
                owner = db.session.scalar(db.select(User).where(User.username == username))
                tokens[username] = f.token(db.session, owner)
                db.session.commit()
        client = app.test_client()
        headers = {"Authorization": f"Bearer {tokens[username]}"}

        class Api:
            def __getattr__(self, method):
                return lambda path, **kw: getattr(client, method)(
                    "/api/v1" + path, headers=headers, **kw)
        return Api()
    as_user.tokens = tokens
    return as_user


def _line(app, account_id, max_concurrency=10):
    with app.app_context():
        acct = db.session.get(User, db.session.scalar(
            db.select(User.id).where(User.account_id == account_id))).account
        line_id = f.line(db.session, acct, max_concurrency).id
        db.session.commit()
        return line_id


def test_openapi_document_is_valid_and_public(client):
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    validate(resp.get_json())
    assert set(resp.get_json()["paths"]) >= {"/tasks", "/tasks/{task_id}/numbers", "/calls"}


def test_missing_or_bad_token_gets_the_error_format(client, world):
    resp = client.get("/api/v1/tasks")
    assert resp.status_code == 401
    assert resp.get_json() == {"error": {"code": "unauthorized",
                                         "message": "missing bearer token"}}
    resp = client.get("/api/v1/tasks", headers={"Authorization": "Bearer cc_wrong"})
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "unauthorized"


def test_session_cookie_does_not_authenticate_the_api(client, world):
    f.login(client, "admin_a")
    assert client.get("/api/v1/tasks").status_code == 401


def test_revoked_token_is_refused(app, api):
    assert api("admin_a").get("/tasks").status_code == 200
    with app.app_context():
        for row in db.session.scalars(db.select(ApiToken)):
            row.revoked_at = clock.now()
        db.session.commit()
    assert api("admin_a").get("/tasks").status_code == 401


def test_task_lifecycle(app, api, world):
    line_id = _line(app, world["a"], max_concurrency=4)
    a = api("admin_a")
    resp = a.post("/tasks", json={"name": "回访", "line_id": line_id, "max_concurrency": 3,
                                  "weekly": {"mon": [["09:00", "18:00"]]}, "skip_holidays": True})
    assert resp.status_code == 201, resp.get_json()
    task = resp.get_json()
    assert task["state"] == "draft" and task["skip_holidays"] is True
    tid = task["id"]
    assert a.get(f"/tasks/{tid}").get_json()["numbers"] == {"total": 0}
    assert a.patch(f"/tasks/{tid}", json={"max_concurrency": 2}).get_json()["max_concurrency"] == 2
    assert a.post(f"/tasks/{tid}/start").get_json()["state"] == "running"
    other = a.post("/tasks", json={"name": "second", "line_id": line_id,
                                   "max_concurrency": 3}).get_json()
    refused = a.post(f"/tasks/{other['id']}/start")
    assert refused.status_code == 409 and "并发不足" in refused.get_json()["error"]["message"]
    assert a.post(f"/tasks/{tid}/pause").get_json()["state"] == "paused"
    assert a.post(f"/tasks/{other['id']}/start").status_code == 200


def test_validation_errors_name_each_field(api, world):
    resp = api("admin_a").post("/tasks", json={"max_concurrency": 0, "line_id": 99999,
                                               "bogus": 1})
    assert resp.status_code == 422
    fields = resp.get_json()["error"]["fields"]
    assert set(fields) == {"name", "max_concurrency", "bogus"}
    resp = api("admin_a").post("/tasks", json={"name": "x", "line_id": 99999})
    assert resp.get_json()["error"]["fields"] == {"line_id": "99999 不存在"}


def test_cannot_use_another_accounts_line_or_task(app, api, world):
    b_line = _line(app, world["b"])
    resp = api("admin_a").post("/tasks", json={"name": "x", "line_id": b_line})
    assert resp.status_code == 422
    tid = api("admin_b").post("/tasks", json={"name": "b's"}).get_json()["id"]
    assert api("admin_a").get(f"/tasks/{tid}").status_code == 404
    assert api("admin_a").post(f"/tasks/{tid}/start").status_code == 404
    assert api("admin_a").get("/tasks").get_json()["total"] == 0
    assert api("admin_a").post("/tasks", json={"name": "x", "account_id": world["b"]}) \
        .status_code == 422
    made = api("admin_a").post("/tasks", json={"name": "for sub", "account_id": world["a1"]})
    assert made.status_code == 201
    assert api("admin_a1").get(f"/tasks/{made.get_json()['id']}").status_code == 200


def test_agents_have_no_task_access(api, world):
    assert api("agent_a").get("/tasks").status_code == 403


def test_upload_numbers_normalises_dedupes_and_reports(api, world):
    a = api("admin_a")
    tid = a.post("/tasks", json={"name": "n"}).get_json()["id"]
    numbers = ["138 1234 5678", {"phone": "+8613912345678", "variables": {"name": "张三"}},
               "13812345678", "12345", "010-12345678"]
    resp = a.post(f"/tasks/{tid}/numbers", json={"numbers": numbers})
    assert resp.status_code == 422
    assert resp.get_json()["error"]["fields"]["numbers"] == [
        {"index": 3, "phone": "12345", "reason": "手机号码应为11位，以13-19开头"}]
    assert a.get(f"/tasks/{tid}").get_json()["numbers"] == {"total": 0}  # nothing half-added
    resp = a.post(f"/tasks/{tid}/numbers", json={"numbers": numbers, "partial": True})
    body = resp.get_json()
    assert resp.status_code == 201 and body["added"] == 3
    assert body["duplicates"] == [{"index": 2, "phone": "13812345678"}]
    again = a.post(f"/tasks/{tid}/numbers", json={"numbers": ["13912345678", "13700000000"]})
    assert again.get_json()["added"] == 1
    assert a.get(f"/tasks/{tid}").get_json()["numbers"] == {"total": 4, "pending": 4}


def test_calls_query_filters_and_pages(app, api, world):
    with app.app_context():
        for i in range(30):
            db.session.add(Call(account_id=world["a"], uuid=f"c{i}", phone=f"1380000{i:04d}",
                                status="busy" if i % 2 else "answered", grade="A" if i < 4 else None,
                                talk_seconds=i))
        db.session.add(Call(account_id=world["b"], uuid="b1", phone="13999999999"))
        db.session.commit()
    a = api("admin_a")
    page = a.get("/calls?per_page=10&page=2").get_json()
    assert page["total"] == 30 and len(page["items"]) == 10 and page["page"] == 2
    assert a.get("/calls?grade=A").get_json()["total"] == 4
    assert a.get("/calls?status=busy&min_talk_seconds=20").get_json()["total"] == 5
    assert a.get("/calls?per_page=1000").status_code == 400
    assert a.get("/calls?since=2020-01-01T00:00:00").status_code == 400
    assert a.get("/calls?since=2020-01-01T00:00:00%2B08:00").get_json()["total"] == 30
    assert a.get("/calls?task_id=abc").status_code == 400


def test_notifications_are_the_callers_own(app, api, world):
    with app.app_context():
        db.session.add(Notification(account_id=world["a"], user_id=world["admin_a"],
                                    kind="import", title="导入号码", state=JobState.RUNNING,
                                    progress=40))
        db.session.add(Notification(account_id=world["a"], user_id=world["staff_a"],
                                    kind="export", title="not mine"))
        db.session.commit()
    items = api("admin_a").get("/notifications").get_json()["items"]
    assert [(n["title"], n["progress"], n["state"]) for n in items] == [("导入号码", 40, "running")]
