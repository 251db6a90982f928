"""通话记录 through HTTP: filters, condition groups, columns, quick actions, export requests,
and what users of other accounts (do not) see."""

import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from core.db import make_engine
from core.models import (
    BlacklistEntry,
    BlacklistGroup,
    Call,
    Notification,
    Outbox,
    PushMessage,
    SavedFilter,
    Task,
    User,
)
from tests import factories as f
from tests.conftest import make_settings
from webui.app import create_app
from webui.extensions import db
from webui.records import listing


def _at(day: int, hour: int = 2) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)  # 10:00 in Asia/Shanghai


def _seed(app, world) -> dict:
    """Account A: two tasks and five calls (one in sub-account A1); account B: one call."""
    with app.app_context():
        s = db.session
        t1 = Task(account_id=world["a"], name="春季活动")
        t2 = Task(account_id=world["a"], name="回访")
        tb = Task(account_id=world["b"], name="B任务")
        s.add_all([t1, t2, tb])
        s.flush()
        rows = [
            Call(account_id=world["a"], task_id=t1.id, uuid="a1", phone="13800000001",
                 created_at=_at(1), status="answered", grade="A", talk_seconds=200,
                 interactions=6, tags=["有意向"], region="广东省深圳市", viewed=True,
                 transfer={"state": "success", "target": {"name": "王坐席"}},
                 push={"state": "success", "target": "李四"}, sms={"state": "success"}),
            Call(account_id=world["a"], task_id=t1.id, uuid="a2", phone="13800000002",
                 created_at=_at(2), status="answered", grade="C", talk_seconds=20,
                 interactions=1, tags=["无意向"], region="北京",
                 transfer={"state": "failed", "group": "销售组"}, push={"state": "success",
                                                                     "target": "赵五"}),
            Call(account_id=world["a"], task_id=t2.id, uuid="a3", phone="13900000003",
                 created_at=_at(3), status="no_answer", push={"state": "failed"}),
            Call(account_id=world["a"], task_id=t2.id, uuid="a4", phone="13700000004",
                 created_at=_at(4), status="busy", grade="B", tags=["A类"]),
            Call(account_id=world["a1"], uuid="a1-1", phone="13600000005", created_at=_at(5),
                 status="answered"),
            Call(account_id=world["b"], task_id=tb.id, uuid="b1", phone="13500000009",
                 created_at=_at(5), status="answered", grade="A"),
        ]
        s.add_all(rows)
        s.flush()
        s.add(PushMessage(account_id=world["a"], key="p1", call_id=rows[0].id, content="x",
                          token="t-p1", state="seen", seen_at=_at(1, 3)))
        s.commit()
        return {"t1": t1.id, "t2": t2.id, "tb": tb.id,
                **{c.uuid: c.id for c in rows}}


def _phones(html: str) -> list[str]:
    return re.findall(r"<tr><td>(1\d{10})</td>", html)


def _as(app, username: str):
    """A fresh client logged in as `username`."""
    client = app.test_client()
    f.login(client, username)
    return client


def _page(client, query: str = "", status: int = 200) -> str:
    resp = client.get("/calls" + query)
    assert resp.status_code == status, resp.get_data(as_text=True)[-500:]
    return resp.get_data(as_text=True)


@pytest.fixture
def app(tmp_path, any_db_url, redis_url):
    """The console on SQLite and on PostgreSQL (overrides tests/webui/conftest.py's)."""
    app = create_app(make_settings(tmp_path, any_db_url, redis_url)[0], TESTING=True)
    yield app
    with app.app_context():
        db.engine.dispose()


def test_lists_only_visible_calls_newest_first_and_links_details(app, client, world):
    ids = _seed(app, world)
    f.login(client, "admin_a")
    html = _page(client)
    # The admin of A sees A and its sub-account A1, never B.
    assert _phones(html) == ["13600000005", "13700000004", "13900000003", "13800000002",
                             "13800000001"]
    assert "13500000009" not in html and "共 5 条" in html
    assert f'href="/calls/{ids["a2"]}"' in html
    assert _phones(_page(_as(app, "admin_b"))) == ["13500000009"]
    assert _phones(_page(_as(app, "admin_a1"))) == ["13600000005"]


def test_basic_filters(app, client, world):
    ids = _seed(app, world)
    f.login(client, "staff_a")
    assert _phones(_page(client, "?phone=13800000001&phone_mode=exact")) == ["13800000001"]
    assert _phones(_page(client, "?phone=3800")) == ["13800000002", "13800000001"]
    assert _phones(_page(client, f"?task={ids['t2']}")) == ["13700000004", "13900000003"]
    assert len(_phones(_page(client, f"?task={ids['t1']}&task={ids['t2']}"))) == 4
    # Call time is entered in the account's zone (Asia/Shanghai): 3 March 10:00 local.
    assert _phones(_page(client, "?call_from=2026-03-02T10:01&call_to=2026-03-03T10:00")) == \
        ["13900000003"]
    assert _phones(_page(client, "?region=广东")) == ["13800000001"]
    assert _phones(_page(client, "?tags=无意向，A类")) == ["13700000004", "13800000002"]
    assert _phones(_page(client, "?grade=A&grade=B")) == ["13700000004", "13800000001"]
    # Another account's task id simply matches nothing.
    assert _phones(_page(client, f"?task={ids['tb']}")) == []


def test_advanced_filters_with_or_and_errors_naming_the_field(app, client, world):
    _seed(app, world)
    f.login(client, "admin_a")
    assert _phones(_page(client, "?talk_min=100")) == ["13800000001"]
    assert _phones(_page(client, "?transfer=failed")) == ["13800000002"]
    assert _phones(_page(client, "?push=seen")) == ["13800000001"]
    assert _phones(_page(client, "?push=pushed")) == ["13800000002"]
    assert _phones(_page(client, "?viewed=no&status=no_answer")) == ["13900000003"]
    # OR between the conditions; the number still narrows.
    html = _page(client, "?rel=or&grade=A&status=busy")
    assert _phones(html) == ["13700000004", "13800000001"]
    assert 'id="advanced"' in html and "collapse show" in html  # the panel stays open
    assert _phones(_page(client, "?rel=or&grade=A&status=busy&phone=137")) == ["13700000004"]
    bad = _page(client, "?talk_min=30&talk_max=10", status=400)
    assert "通话时长：最小值不能大于最大值" in bad
    assert "交互次数：应为不小于 0 的整数" in _page(client, "?inter_min=abc", status=400)


def test_row_shows_viewed_marker_outcomes_with_targets_and_quick_actions(app, client, world):
    ids = _seed(app, world)
    f.login(client, "admin_a")
    html = _page(client, f"?task={ids['t1']}")
    rows = dict(zip(_phones(html), html.split("<tr><td>")[1:], strict=True))
    seen, unseen = rows["13800000001"], rows["13800000002"]
    assert "link-secondary viewed" in seen and "fw-semibold unviewed" in unseen
    assert re.search(r'outcome-transfer-success"[^>]*>王坐席<', seen)
    assert re.search(r'outcome-push-seen"[^>]*>李四<', seen)
    assert re.search(r'outcome-transfer-failed"[^>]*>销售组<', unseen)
    assert re.search(r'outcome-push-pushed"[^>]*>赵五<', unseen)
    assert 'data-phone="13800000001"' in seen and "copy-phone" in seen
    assert f"/blacklist/add?call_id={ids['a1']}" in seen.replace("&amp;", "&")


def test_blacklist_quick_action_into_a_chosen_group(app, client, world):
    ids = _seed(app, world)
    with app.app_context():
        groups = [BlacklistGroup(account_id=world["a"], name=n) for n in ("投诉", "同行")]
        other = BlacklistGroup(account_id=world["b"], name="B组")
        db.session.add_all([*groups, other])
        db.session.commit()
        chosen, other_id = groups[1].id, other.id
    f.login(client, "staff_a")
    html = _page(client)
    assert 'id="blacklist-dialog"' in html and "同行" in html and "B组" not in html
    token = f.csrf_from(html)
    resp = client.post("/blacklist/add", data={
        "csrf_token": token, "call_id": ids["a2"], "group_id": chosen, "reason": "同行",
        "next": "/calls?task=1"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/calls?task=1")
    with app.app_context():
        entry = db.session.scalar(sa.select(BlacklistEntry))
        assert (entry.phone, entry.group_id, entry.source) == ("13800000002", chosen, "call")
    # Neither another account's call nor its group can be used.
    for call_id, group_id in ((ids["b1"], chosen), (ids["a3"], other_id)):
        assert client.post("/blacklist/add", data={
            "csrf_token": token, "call_id": call_id, "group_id": group_id}).status_code == 404


def test_columns_and_page_size_are_saved_per_user(app, client, world):
    _seed(app, world)
    f.login(client, "admin_a")
    token = f.csrf_from(_page(client))
    resp = client.post("/calls/preferences", data={
        "csrf_token": token, "columns": ["grade", "phone", "nonsense", "talk_seconds", "grade"],
        "per_page": "10", "grade": ["A", "B"]})
    assert resp.status_code == 302 and "grade=A" in resp.headers["Location"]
    html = _page(client)
    head = re.search(r"<thead>(.*?)</thead>", html, re.S).group(1)
    assert re.findall(r"<th[^>]*>([^<]+)</th>", head) == ["意向标签", "电话号码", "通话时长",
                                                           "操作"]
    assert "<td>03:20</td>" in html  # 200 seconds
    with app.app_context():
        prefs = db.session.get(User, world["admin_a"]).preferences
        assert prefs["calls_columns"] == ["grade", "phone", "talk_seconds"]
        assert prefs["calls_page_size"] == 10
        for i in range(12):
            db.session.add(Call(account_id=world["a"], uuid=f"x{i}", phone=f"1330000{i:04d}"))
        db.session.commit()
    html = _page(client)
    assert html.count("<tr><td>") == 10 and "共 17 条" in html
    assert len(re.findall(r"<tr><td>", _page(client, "?page=2"))) == 7
    # Out-of-range sizes fall back to 20; other users keep the defaults.
    client.post("/calls/preferences", data={"csrf_token": token, "columns": ["phone"],
                                            "per_page": "500"})
    assert _page(client).count("<tr><td>") == 17
    head = re.search(r"<thead>(.*?)</thead>", _page(_as(app, "staff_a")), re.S).group(1)
    assert "呼叫状态" in head and "意向标签" in head


def test_condition_groups_save_apply_delete_and_stay_private(app, client, world):
    ids = _seed(app, world)
    f.login(client, "admin_a")
    token = f.csrf_from(_page(client))
    resp = client.post("/calls/filters", data={
        "csrf_token": token, "name": "价值客户", "rel": "or", "grade": ["A"],
        "talk_min": "180", "tags": "有意向", "task": [str(ids["t1"])]})
    assert resp.status_code == 302
    with app.app_context():
        saved = db.session.scalar(sa.select(SavedFilter))
        assert (saved.user_id, saved.kind, saved.name) == (world["admin_a"], "calls", "价值客户")
        assert saved.conditions["op"] == "or"
        assert {c["field"] for c in saved.conditions["conditions"]} == \
            {"grade", "talk_seconds", "tags"}  # the task is scope, not part of the group
    html = _page(client)
    link = re.search(r'href="(/calls/filters/\d+[^"]*)">价值客户<', html).group(1)
    # Applying keeps the current tasks and period, and fills the form from the group.
    resp = client.get(link.replace("&amp;", "&") + f"?task={ids['t2']}")
    target = resp.headers["Location"]
    query = parse_qs(urlsplit(target).query)
    assert query == {"task": [str(ids["t2"])], "rel": ["or"], "grade": ["A"],
                     "talk_min": ["180"], "tags": ["有意向"]}
    assert _phones(_page(client, "?" + urlsplit(target).query)) == []
    assert _phones(_page(client, "?rel=or&grade=A&talk_min=180&tags=有意向")) == \
        ["13800000001"]
    # Saving the same name again replaces it; nothing to save is refused.
    client.post("/calls/filters", data={"csrf_token": token, "name": "价值客户",
                                        "grade": ["B"]})
    client.post("/calls/filters", data={"csrf_token": token, "name": "空的",
                                        "task": [str(ids["t1"])]})
    with app.app_context():
        rows = db.session.scalars(sa.select(SavedFilter)).all()
        assert [(r.name, r.conditions["conditions"][0]["value"]) for r in rows] == \
            [("价值客户", ["B"])]
        filter_id = rows[0].id
    # Another user (same account or not) neither sees, applies nor deletes it.
    for other in ("staff_a", "admin_b"):
        stranger = _as(app, other)
        html = _page(stranger)
        assert "价值客户" not in html
        assert stranger.get(f"/calls/filters/{filter_id}").status_code == 404
        assert stranger.post(f"/calls/filters/{filter_id}/delete",
                             data={"csrf_token": f.csrf_from(html)}).status_code == 404
    client.post(f"/calls/filters/{filter_id}/delete", data={"csrf_token": token})
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(SavedFilter)) == 0


def test_export_request_queues_a_job_with_the_filter_columns_and_mask(app, client, world):
    ids = _seed(app, world)
    f.login(client, "staff_a")
    html = _page(client, f"?task={ids['t1']}&grade=A")
    assert 'name="full_numbers"' not in html  # staff only get masked numbers
    form = {"csrf_token": f.csrf_from(html), "task": [str(ids["t1"])], "grade": ["A"],
            "columns": ["grade", "phone", "bogus", "tags"], "full_numbers": "1"}
    assert client.post("/calls/export", data={**form, "csrf_token": ""}).status_code == 400
    resp = client.post("/calls/export", data=form)
    assert resp.status_code == 302 and f"task={ids['t1']}" in resp.headers["Location"]
    with app.app_context():
        note = db.session.scalar(sa.select(Notification))
        assert (note.kind, note.user_id, note.state) == ("export", world["staff_a"], "queued")
        box = db.session.scalar(sa.select(Outbox))
        assert box.job == "workers.exports.export_calls" and box.args[0] == note.id
        spec = box.args[1]
        assert spec["columns"] == ["grade", "phone", "tags"]
        assert spec["headers"] == ["意向标签", "电话号码", "标签"]
        assert spec["mask"] == "middle"  # asked for full numbers, but staff may not
        assert spec["filter"]["conditions"][0] == {"field": "task", "op": "in",
                                                   "value": [ids["t1"]]}
        assert spec["labels"]["status"]["answered"] == "呼叫成功"
    client = _as(app, "admin_a")
    html = _page(client)
    assert 'name="full_numbers"' in html
    client.post("/calls/export", data={"csrf_token": f.csrf_from(html), "columns": ["phone"],
                                       "full_numbers": "1"})
    with app.app_context():
        last = db.session.scalars(sa.select(Outbox).order_by(Outbox.id.desc())).first()
        assert last.args[1]["mask"] is None
    resp = client.post("/calls/export", data={"csrf_token": f.csrf_from(html),
                                              "columns": ["bogus"]})
    assert resp.status_code == 302 and "请至少选择一列导出" in _page(client)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Notification)) == 2


def test_agents_cannot_open_records_nor_export(app, client, world):
    f.login(client, "agent_a")
    assert client.get("/calls").status_code == 403
    token = f.csrf_from(client.get("/password").get_data(as_text=True))
    assert client.post("/calls/export", data={"csrf_token": token,
                                              "columns": ["phone"]}).status_code == 403


def test_counts_are_capped_and_paging_still_works(app, client, world, monkeypatch):
    with app.app_context():
        db.session.add_all([Call(account_id=world["a"], uuid=f"c{i}", phone=f"1380000{i:04d}",
                                 created_at=_at(1 + i % 20)) for i in range(45)])
        db.session.commit()
    monkeypatch.setattr(listing, "COUNT_CAP", 30)
    f.login(client, "admin_a")
    html = _page(client)
    assert "超过 30 条" in html
    assert html.count("<tr><td>") == 20
    assert _page(client, "?page=3").count("<tr><td>") == 5


def test_a_count_over_budget_is_cancelled_and_the_session_goes_on(any_db_url):
    engine = make_engine(any_db_url)
    slow = ("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 50000000)"
            " SELECT count(*) FROM n")
    with Session(engine) as s:
        with pytest.raises(OperationalError) as caught, listing.time_budget(s, 0.05):
            s.execute(sa.text(slow))
        assert listing._interrupted(caught.value)
        assert s.scalar(sa.text("SELECT 1")) == 1
        with listing.time_budget(s, 5):
            assert s.scalar(sa.text("SELECT 2")) == 2
        if engine.dialect.name == "postgresql":  # the timeout is put back afterwards
            assert s.scalar(sa.text("SHOW statement_timeout")) == "0"
    engine.dispose()


def _api(app, username: str):
    """(get, post) for /api/v1 as `username`, with a fresh bearer token."""
    with app.app_context():
        owner = db.session.scalar(sa.select(User).where(User.username == username))
        token = f.token(db.session, owner)
        db.session.commit()
    client, headers = app.test_client(), {"Authorization": f"Bearer {token}"}
    return (lambda path, **kw: client.get("/api/v1" + path, headers=headers, **kw),
            lambda path, **kw: client.post("/api/v1" + path, headers=headers, **kw))


def test_api_calls_take_a_condition_group(app, world):
    ids = _seed(app, world)
    get, _post = _api(app, "admin_a")
    group = ('{"op": "or", "conditions": [{"field": "grade", "op": "in", "value": ["A"]},'
             ' {"field": "tags", "op": "any", "value": ["A类"]}]}')
    body = get("/calls", query_string={"filter": group}).get_json()
    assert sorted(c["phone"] for c in body["items"]) == ["13700000004", "13800000001"]
    assert body["total"] == 2
    # Combined with the simple parameters by AND.
    body = get("/calls", query_string={"filter": group, "task_id": ids["t1"]}).get_json()
    assert [c["phone"] for c in body["items"]] == ["13800000001"]
    bad = get("/calls", query_string={"filter": "{not json"})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_filter"
    bad = get("/calls", query_string={"filter": '{"conditions": [{"field": "grade", '
                                                '"op": "in", "value": ["Z"]}]}'})
    assert bad.status_code == 400 and "意向：未知的取值 'Z'" in bad.get_json()["error"]["message"]
    get_b, _ = _api(app, "admin_b")
    body = get_b("/calls", query_string={"filter": '{"conditions": []}'}).get_json()
    assert [c["phone"] for c in body["items"]] == ["13500000009"]


def test_api_export_is_queued_for_the_caller(app, world):
    _seed(app, world)
    _get, post = _api(app, "staff_a")
    group = {"op": "and", "conditions": [{"field": "grade", "op": "in", "value": ["A"]}]}
    resp = post("/calls/exports", json={"filter": group, "columns": ["phone", "grade"]})
    assert resp.status_code == 202
    note = resp.get_json()
    assert (note["kind"], note["state"]) == ("export", "queued")
    with app.app_context():
        row = db.session.get(Notification, note["id"])
        assert row.user_id == world["staff_a"]
        spec = db.session.scalar(sa.select(Outbox)).args[1]
        assert spec["filter"] == group and spec["columns"] == ["phone", "grade"]
        assert spec["mask"] == "middle"
    assert post("/calls/exports", json={"mask": False}).status_code == 403
    bad = post("/calls/exports", json={"columns": ["phone", "nope"]})
    assert bad.status_code == 422 and bad.get_json()["error"]["fields"] == {"columns": ["nope"]}
    assert post("/calls/exports", json={"filter": {"op": "xor"}}).status_code == 400
    _get, post_admin = _api(app, "admin_a")
    resp = post_admin("/calls/exports", json={"mask": False})
    assert resp.status_code == 202
    with app.app_context():
        spec = db.session.get(Outbox, db.session.scalar(sa.select(sa.func.max(Outbox.id))))
        assert spec.args[1]["mask"] is None and spec.args[1]["columns"][0] == "phone"


def test_openapi_documents_the_filter_and_exports(client):
    from openapi_spec_validator import validate

    doc = client.get("/api/v1/openapi.json").get_json()
    validate(doc)
    assert "filter" in {p["name"] for p in doc["paths"]["/calls"]["get"]["parameters"]}
    assert "202" in doc["paths"]["/calls/exports"]["post"]["responses"]
    fields = doc["components"]["schemas"]["ConditionGroup"]["properties"]["conditions"]
    assert "talk_seconds" in fields["items"]["oneOf"][1]["properties"]["field"]["enum"]


def test_every_form_condition_round_trips_through_a_saved_group():
    from zoneinfo import ZoneInfo

    from werkzeug.datastructures import MultiDict

    from core import call_query
    from webui.records import form

    zone = ZoneInfo("Asia/Shanghai")
    conditions = {
        "rel": "or", "region": "深圳", "tags": "有意向, A类", "grade": ["A", "B"],
        "status": ["answered"], "talk_min": "60", "talk_max": "300", "inter_min": "2",
        "created_from": "2026-03-01", "created_to": "2026-03-31", "transfer": ["success"],
        "push": ["seen", "none"], "sms": ["failed"], "gender": ["female"],
        "carrier": ["中国移动"], "hangup_side": ["callee"], "viewed": "no"}
    scope = {"phone": "138", "phone_mode": "exact", "task": ["3", "5"],
             "call_from": "2026-03-02T09:30", "call_to": "2026-03-02T18:00"}
    parsed_scope, parsed = form.parse(MultiDict({**scope, **conditions}), zone)
    assert len(parsed.items) == len(form.CONDITIONS) and parsed.op == "or"
    saved = call_query.validate(call_query.to_json(parsed))  # as stored in SavedFilter
    # The same arguments come back (tags de-duplicated and sorted).
    assert form.to_args(saved, zone) == {**conditions, "tags": "A类, 有意向"}
    phone, tasks, period = parsed_scope.items
    assert (phone.op, phone.value, tasks.value) == ("eq", "138", (3, 5))
    # The period is read in the account's zone, its end inclusive of the minute.
    assert period.value[0].isoformat() == "2026-03-02T09:30:00+08:00"
    assert period.value[1].isoformat() == "2026-03-02T18:00:59.999999+08:00"
