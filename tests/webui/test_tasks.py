"""AI外呼 pages (T1, T2, T5, T8) through HTTP with a logged-in user: create and edit with
every option, validation, copy, delete, start/pause one and all, redial, templates, live
figures — and nothing of another account's tasks."""

from __future__ import annotations

import json

import pytest
from werkzeug.datastructures import MultiDict

from core.enums import CallStatus, NumberState, TaskState
from core.models import (
    AuditLog,
    BlacklistGroup,
    Call,
    CallTimeTemplate,
    Script,
    Task,
    TaskNumber,
    TaskTemplate,
)
from tests import factories as f
from webui.extensions import db


@pytest.fixture
def staff(client, world):
    f.login(client, "staff_a")
    return client


@pytest.fixture
def refs(app, world):
    """Account A's line, scripts and blacklist group; account B's line."""
    with app.app_context():
        s = db.session
        a = s.get(f.Account, world["a"])
        b = s.get(f.Account, world["b"])
        line = f.line(s, a, max_concurrency=10)
        other_line = f.line(s, b, name="B-line")
        day = Script(account_id=a.id, name="白天话术")
        night = Script(account_id=a.id, name="晚间话术")
        group = BlacklistGroup(account_id=a.id, name="投诉")
        s.add_all([day, night, group])
        s.commit()
        return {"line": line.id, "other_line": other_line.id, "day": day.id,
                "night": night.id, "group": group.id}


def csrf(client, url="/tasks/new") -> str:
    return f.csrf_from(client.get(url).get_data(as_text=True))


def form(refs, **extra) -> MultiDict:
    data = MultiDict({
        "name": "宽带回访", "alias": "bb-1", "tags": "宽带, 回访", "direction": "outbound",
        "script_mode": "by_time", "timed-0-start": "09:00", "timed-0-end": "12:00",
        "timed-0-script": str(refs["day"]), "timed-1-start": "13:00", "timed-1-end": "18:00",
        "timed-1-script": str(refs["night"]), "fallback_script_id": str(refs["day"]),
        "qc_enabled": "on", "qc_instructions": "C级里问过价格的改为B",
        "line_id": str(refs["line"]), "max_concurrency": "4", "call_interval": "custom",
        "call_interval_custom": "7", "blacklist_group_ids": str(refs["group"]),
        "date_start": "2026-12-01", "date_end": "2027-06-30",
        "weekly-mon-0-start": "09:00", "weekly-mon-0-end": "12:00",
        "weekly-mon-1-start": "13:00", "weekly-mon-1-end": "18:00",
        "weekly-sat-5-start": "10:00", "weekly-sat-5-end": "16:00",
        "skip_holidays": "on", "forbidden-0-start": "2027-01-01T00:00",
        "forbidden-0-end": "2027-01-03T23:59", "pause_when_agents_busy": "on",
        "max_attempts": "3", "redial_statuses": "no_answer", "redial_interval_min": "30",
        "ring_timeout_s": "35", "max_call_s": "300", "pause_release": "on",
        "dlg_barge_in_ms": "800", "dlg_max_pause_ms": "900", "dlg_asr": "funasr",
        "dlg_background_db": "0",
        "transfer_on_grades": "A", "save_call_time_as": "双段工作日",
        "dlg_closing_prompt": "稍后专员回电，再见。",
    })
    data.add("redial_statuses", "busy")
    for key, value in extra.items():
        data.setlist(key, value if isinstance(value, list) else [value])
    return data


def test_create_with_every_option_is_stored(app, staff, refs):
    data = form(refs)
    data["csrf_token"] = csrf(staff)
    resp = staff.post("/tasks/new", data=data)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    with app.app_context():
        task = db.session.scalar(db.select(Task).where(Task.name == "宽带回访"))
        assert task.alias == "bb-1" and task.tags == ["宽带", "回访"]
        assert task.script_mode == "by_time" and task.fallback_script_id == refs["day"]
        assert task.timed_scripts == [
            {"start": "09:00", "end": "12:00", "script_id": refs["day"]},
            {"start": "13:00", "end": "18:00", "script_id": refs["night"]}]
        assert task.qc_rule == {"enabled": True, "instructions": "C级里问过价格的改为B"}
        assert task.line_id == refs["line"] and task.max_concurrency == 4
        assert task.call_interval_s == 7
        assert [g.id for g in task.blacklist_groups] == [refs["group"]]
        assert str(task.date_start) == "2026-12-01" and str(task.date_end) == "2027-06-30"
        assert task.weekly == {"mon": [["09:00", "12:00"], ["13:00", "18:00"]],
                               "sat": [["10:00", "16:00"]]}
        assert task.skip_holidays and task.pause_when_agents_busy and not task.predictive
        assert task.forbidden_ranges == [["2027-01-01T00:00", "2027-01-03T23:59"]]
        assert task.max_attempts == 3 and set(task.redial_statuses) == {"no_answer", "busy"}
        assert task.redial_interval_s == 1800 and task.ring_timeout_s == 35
        assert task.max_call_s == 300 and task.end_action == "pause_release"
        assert task.dialogue_settings["barge_in_ms"] == 800
        assert task.dialogue_settings["max_pause_ms"] == 900
        assert task.dialogue_settings["background_db"] == 0  # the filter off, not unset
        assert task.dialogue_settings["asr"] == {"kind": "funasr"}
        assert task.dialogue_settings["transfer_on_grades"] == ["A"]
        assert task.dialogue_settings["closing_prompt"] == "稍后专员回电，再见。"
        assert task.state == TaskState.DRAFT
        saved = db.session.scalar(db.select(CallTimeTemplate))
        assert saved.name == "双段工作日" and saved.weekly == task.weekly
        assert db.session.scalar(db.select(AuditLog.action).where(
            AuditLog.target_id == task.id)) == "task_create"
    # the edit page shows what was stored
    page = staff.get(f"/tasks/{task.id}/edit").get_data(as_text=True)
    assert 'name="weekly-sat-0-start" value="10:00"' in page
    assert 'name="dlg_background_db" value="0"' in page and "背景人声过滤" in page
    assert 'value="2027-01-01T00:00"' in page and "双段工作日" in page


@pytest.mark.parametrize("field, value, message", [
    ("name", "", "名称不能为空"),
    ("weekly-mon-0-end", "08:00", "开始早于结束"),
    ("timed-1-start", "11:00", "重叠"),
    ("forbidden-0-end", "2026-12-31T00:00", "结束早于开始"),
    ("max_attempts", "99", "1 到 10"),
    ("dlg_barge_in_ms", "5", "barge_in_ms"),
    ("dlg_background_db", "60", "background_db 应在 0 到 40 之间"),
    ("alias", "bad alias!", "别名"),
])
def test_bad_fields_are_shown_and_nothing_saved(app, staff, refs, field, value, message):
    data = form(refs, **{field: value})
    data["csrf_token"] = csrf(staff)
    resp = staff.post("/tasks/new", data=data)
    assert resp.status_code == 422
    assert message in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Task)) == 0


def test_references_must_be_the_accounts_own(app, staff, refs):
    data = form(refs, line_id=str(refs["other_line"]))
    data["csrf_token"] = csrf(staff)
    resp = staff.post("/tasks/new", data=data)
    assert resp.status_code == 422 and "不存在" in resp.get_data(as_text=True)


def test_alias_is_unique_in_the_account(app, staff, refs):
    for expected in (302, 422):
        data = form(refs, name=f"t{expected}")
        data["csrf_token"] = csrf(staff)
        assert staff.post("/tasks/new", data=data).status_code == expected


def _task(app, account_id, line_id=None, state=TaskState.DRAFT, concurrency=2, name="T"):
    with app.app_context():
        task = Task(account_id=account_id, name=name, line_id=line_id, state=state,
                    max_concurrency=concurrency)
        db.session.add(task)
        db.session.commit()
        return task.id


def test_start_refuses_with_the_seeds_message_when_the_line_is_full(app, staff, world, refs):
    _task(app, world["a"], refs["line"], TaskState.RUNNING, concurrency=8, name="big")
    small = _task(app, world["a"], refs["line"], concurrency=3, name="small")
    token = csrf(staff, "/tasks")
    resp = staff.post(f"/tasks/{small}/start", data={"csrf_token": token},
                      follow_redirects=True)
    assert "并发不足：线路最大并发 10，其他运行中任务已占用 8，本任务需要 3" in \
        resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Task, small).state == TaskState.DRAFT


def test_raising_a_running_tasks_concurrency_past_the_line_is_refused(app, staff, world,
                                                                      refs):
    _task(app, world["a"], refs["line"], TaskState.RUNNING, concurrency=6, name="other")
    task_id = _task(app, world["a"], refs["line"], TaskState.RUNNING, concurrency=2)
    data = form(refs, name="T", alias="", max_concurrency="5")
    data["csrf_token"] = csrf(staff, f"/tasks/{task_id}/edit")
    resp = staff.post(f"/tasks/{task_id}/edit", data=data)
    assert resp.status_code == 409 and "并发不足" in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Task, task_id).max_concurrency == 2


def test_start_and_pause_all_publish_each_change(app, staff, world, refs):
    ids = [_task(app, world["a"], refs["line"], concurrency=3, name=f"t{i}") for i in range(4)]
    pubsub = app.extensions["redis"].pubsub()
    pubsub.subscribe("cc:tasks")
    pubsub.get_message(timeout=1)
    token = csrf(staff, "/tasks")
    page = staff.post("/tasks/start-all", data={"csrf_token": token}, follow_redirects=True)
    text = page.get_data(as_text=True)
    with app.app_context():
        states = {t: db.session.get(Task, t).state for t in ids}
    # 3 + 3 + 3 fit on the line of 10; the fourth is refused and named
    assert list(states.values()).count(TaskState.RUNNING) == 3
    assert "t3：并发不足" in text
    notices = [pubsub.get_message(timeout=1) for _ in range(3)]
    assert all(n and n["type"] == "message" for n in notices)
    staff.post("/tasks/pause-all", data={"csrf_token": token})
    with app.app_context():
        assert all(db.session.get(Task, t).state != TaskState.RUNNING for t in ids)


def test_copy_keeps_the_settings_not_the_numbers(app, staff, refs):
    data = form(refs)
    data["csrf_token"] = csrf(staff)
    staff.post("/tasks/new", data=data)
    with app.app_context():
        task = db.session.scalar(db.select(Task))
        db.session.add(TaskNumber(account_id=task.account_id, task_id=task.id,
                                  phone="13800000001", raw_phone="13800000001"))
        db.session.commit()
        task_id = task.id
    resp = staff.post(f"/tasks/{task_id}/copy", data={"csrf_token": csrf(staff, "/tasks")})
    assert resp.status_code == 302 and "/edit" in resp.headers["Location"]
    with app.app_context():
        source = db.session.get(Task, task_id)
        copy = db.session.scalar(db.select(Task).where(Task.id != task_id))
        assert copy.name.startswith("宽带回访") and copy.alias is None
        for field in ("weekly", "timed_scripts", "forbidden_ranges", "dialogue_settings",
                      "redial_statuses", "line_id", "max_concurrency", "date_end"):
            assert getattr(copy, field) == getattr(source, field), field
        assert [g.id for g in copy.blacklist_groups] == [refs["group"]]
        assert db.session.scalar(db.select(db.func.count()).select_from(TaskNumber).where(
            TaskNumber.task_id == copy.id)) == 0


def test_template_round_trip(app, staff, refs):
    data = form(refs)
    data["csrf_token"] = csrf(staff)
    staff.post("/tasks/new", data=data)
    with app.app_context():
        task_id = db.session.scalar(db.select(Task.id))
    token = csrf(staff, "/tasks")
    staff.post(f"/tasks/{task_id}/template", data={"csrf_token": token, "name": "标准模板"})
    with app.app_context():
        template = db.session.scalar(db.select(TaskTemplate))
        assert template.name == "标准模板" and template.config["max_attempts"] == 3
    page = staff.get(f"/tasks/new?template={template.id}").get_data(as_text=True)
    assert 'name="weekly-sat-0-start" value="10:00"' in page
    assert 'value="35"' in page and 'name="name" maxlength="120" required value=""' in page
    assert "标准模板" in staff.get("/tasks").get_data(as_text=True)
    staff.post(f"/tasks/templates/{template.id}/delete", data={"csrf_token": token})
    with app.app_context():
        assert db.session.scalar(db.select(TaskTemplate)) is None


def test_redial_requeues_the_chosen_statuses_only(app, staff, world, refs):
    task_id = _task(app, world["a"], refs["line"], TaskState.FINISHED)
    with app.app_context():
        for i, status in enumerate([CallStatus.NO_ANSWER, CallStatus.BUSY, CallStatus.ANSWERED,
                                    CallStatus.VACANT]):
            db.session.add(TaskNumber(account_id=world["a"], task_id=task_id,
                                      phone=f"1380000000{i}", raw_phone="x",
                                      state=NumberState.DONE, last_status=status))
        db.session.commit()
    data = MultiDict([("csrf_token", csrf(staff, "/tasks")), ("statuses", "no_answer"),
                      ("statuses", "busy")])
    page = staff.post(f"/tasks/{task_id}/redial", data=data, follow_redirects=True)
    assert "2" in page.get_data(as_text=True)
    with app.app_context():
        states = dict(db.session.execute(db.select(TaskNumber.last_status, TaskNumber.state)
                                         .where(TaskNumber.task_id == task_id)).all())
        assert states == {"no_answer": "pending", "busy": "pending", "answered": "done",
                          "vacant": "done"}
        assert db.session.get(Task, task_id).state == TaskState.PAUSED  # can start again


def test_delete_keeps_call_records_and_refuses_running_tasks(app, staff, world, refs):
    running = _task(app, world["a"], refs["line"], TaskState.RUNNING, name="live")
    paused = _task(app, world["a"], refs["line"], TaskState.PAUSED, name="old")
    with app.app_context():
        db.session.add(Call(account_id=world["a"], uuid="u-1", task_id=paused,
                            phone="13800000001"))
        db.session.commit()
    token = csrf(staff, "/tasks")
    page = staff.post(f"/tasks/{running}/delete", data={"csrf_token": token},
                      follow_redirects=True)
    assert "运行中的任务不能删除" in page.get_data(as_text=True)
    staff.post(f"/tasks/{paused}/delete", data={"csrf_token": token})
    with app.app_context():
        assert db.session.get(Task, paused) is None and db.session.get(Task, running)
        assert db.session.scalar(db.select(Call.task_id).where(Call.uuid == "u-1")) is None


def test_list_shows_progress_and_connect_rate_live(app, staff, world, refs):
    task_id = _task(app, world["a"], refs["line"], TaskState.RUNNING, name="进度")
    with app.app_context():
        for i in range(4):
            db.session.add(TaskNumber(account_id=world["a"], task_id=task_id,
                                      phone=f"1390000000{i}", raw_phone="x",
                                      state=NumberState.DONE if i < 3 else NumberState.PENDING))
        for i, status in enumerate(["answered", "no_answer", "busy"]):
            db.session.add(Call(account_id=world["a"], uuid=f"c{i}", task_id=task_id,
                                phone="1", status=status))
        db.session.commit()
    page = staff.get("/tasks").get_data(as_text=True)
    assert "3 / 4" in page and "33.3%" in page
    live = staff.get(f"/tasks/stats.json?ids={task_id}").get_json()
    assert live[str(task_id)]["progress"] == 75 and live[str(task_id)]["answered"] == 1
    assert live[str(task_id)]["state"] == "running"


def test_another_accounts_tasks_are_invisible(app, client, world, refs):
    theirs = _task(app, world["b"], refs["other_line"], name="B的任务")
    f.login(client, "staff_a")
    assert "B的任务" not in client.get("/tasks").get_data(as_text=True)
    assert client.get(f"/tasks/{theirs}/edit").status_code == 404
    assert client.get(f"/tasks/stats.json?ids={theirs}").get_json() == {}
    token = csrf(client, "/tasks")
    for action in ("start", "copy", "delete", "redial", "template"):
        assert client.post(f"/tasks/{theirs}/{action}", data={"csrf_token": token,
                           "statuses": "busy"}).status_code == 404, action
    client.post("/tasks/start-all", data={"csrf_token": token})
    with app.app_context():
        assert db.session.get(Task, theirs).state == TaskState.DRAFT


def test_agents_and_anonymous_users_cannot_open_tasks(client, world):
    assert client.get("/tasks").status_code == 302  # to the login page
    f.login(client, "agent_a")
    assert client.get("/tasks").status_code == 403
    assert client.get("/tasks/new").status_code == 403


def test_forms_need_csrf(staff, refs):
    assert staff.post("/tasks/new", data=form(refs)).status_code == 400
    assert staff.post("/tasks/start-all").status_code == 400


def test_presets_and_the_default_schedule(staff):
    page = staff.get("/tasks/new").get_data(as_text=True)
    for name in ("早九晚六", "早九晚五", "早十晚六"):
        assert name in page
    # a new task starts on the seed's default: weekdays 09–12 and 13–18
    assert 'name="weekly-fri-1-end" value="18:00"' in page
    assert 'name="weekly-sat-0-start"' not in page
    preset = json.loads(page.split('data-weekly="')[1].split('"')[0].replace("&#34;", '"'))
    assert preset["mon"] == [["09:00", "12:00"], ["13:00", "18:00"]]
