"""Console pages: scoping, task start/pause with the concurrency check, paging, members."""

from core import clock
from core.enums import TaskState
from core.models import Call, Task, User
from tests import factories as f
from webui.extensions import db


def _task(app, account_id, line_id=None, name="T", concurrency=1, state=TaskState.DRAFT):
    with app.app_context():
        t = Task(account_id=account_id, name=name, line_id=line_id,
                 max_concurrency=concurrency, state=state)
        db.session.add(t)
        db.session.commit()
        return t.id


def test_task_list_shows_only_visible_accounts(app, client, world):
    _task(app, world["a"], name="mine")
    _task(app, world["a1"], name="sub-account task")
    _task(app, world["b"], name="someone else's")
    f.login(client, "admin_a1")
    page = client.get("/tasks").get_data(as_text=True)
    assert "sub-account task" in page and "mine" not in page and "someone else" not in page
    client = app.test_client()
    f.login(client, "admin_a")
    page = client.get("/tasks").get_data(as_text=True)
    assert "mine" in page and "sub-account task" in page and "someone else" not in page


def test_start_checks_line_concurrency(app, client, world):
    with app.app_context():
        line_id = f.line(db.session, db.session.get(User, world["admin_a"]).account, 5).id
        db.session.commit()
    _task(app, world["a"], line_id, "running", 3, TaskState.RUNNING)
    tid = _task(app, world["a"], line_id, "new", 3)
    f.login(client, "admin_a")
    token = f.csrf_from(client.get("/tasks").get_data(as_text=True))
    page = client.post(f"/tasks/{tid}/start", data={"csrf_token": token},
                       follow_redirects=True).get_data(as_text=True)
    assert "并发不足" in page
    with app.app_context():
        assert db.session.get(Task, tid).state == TaskState.DRAFT


def test_start_and_pause_publish_a_notice(app, client, world, redis_url):
    import redis

    with app.app_context():
        line_id = f.line(db.session, db.session.get(User, world["admin_a"]).account, 5).id
        db.session.commit()
    tid = _task(app, world["a"], line_id, "go", 2)
    sub = redis.Redis.from_url(redis_url).pubsub()
    sub.subscribe("cc:tasks")
    sub.get_message(timeout=1)
    f.login(client, "admin_a")
    token = f.csrf_from(client.get("/tasks").get_data(as_text=True))
    client.post(f"/tasks/{tid}/start", data={"csrf_token": token})
    msg = sub.get_message(timeout=2)
    assert msg and b'"running"' in msg["data"] and f'"task_id": {tid}'.encode() in msg["data"]
    client.post(f"/tasks/{tid}/pause", data={"csrf_token": token})
    with app.app_context():
        assert db.session.get(Task, tid).state == TaskState.PAUSED


def test_another_accounts_task_is_not_found(app, client, world):
    tid = _task(app, world["b"])
    f.login(client, "admin_a")
    token = f.csrf_from(client.get("/tasks").get_data(as_text=True))
    assert client.post(f"/tasks/{tid}/start", data={"csrf_token": token}).status_code == 404


def test_call_records_filter_and_page(app, client, world):
    with app.app_context():
        for i in range(45):
            db.session.add(Call(account_id=world["a"], uuid=f"u{i}", phone=f"1380000{i:04d}",
                                status="answered" if i % 3 == 0 else "busy",
                                created_at=clock.now()))
        db.session.add(Call(account_id=world["b"], uuid="other", phone="13999999999"))
        db.session.commit()
    f.login(client, "admin_a")
    page = client.get("/calls").get_data(as_text=True)
    assert "共 45 条" in page and "13999999999" not in page
    page = client.get("/calls?status=answered").get_data(as_text=True)
    assert page.count("呼叫成功</td>") == 15
    page3 = client.get("/calls?page=3").get_data(as_text=True)
    assert page3.count("<tr><td>138") == 5


def test_admin_creates_member_only_in_managed_accounts(app, client, world):
    f.login(client, "admin_a1")
    token = f.csrf_from(client.get("/team/users").get_data(as_text=True))
    bad = client.post("/team/users", data={
        "username": "x1", "password": "long-enough", "role": "staff",
        "account_id": world["a"], "csrf_token": token}).get_data(as_text=True)
    assert "请选择您管理的账户" in bad
    ok = client.post("/team/users", data={
        "username": "x1", "password": "long-enough", "role": "agent",
        "account_id": world["a1"], "csrf_token": token})
    assert ok.status_code == 302
    with app.app_context():
        made = db.session.scalar(db.select(User).where(User.username == "x1"))
        assert made.account_id == world["a1"] and made.role == "agent"
        assert made.check_password("long-enough")
