"""后续动作 pages: providers with masked secrets, SMS templates, post-call rules from the form,
push groups with pushed / seen / failed, allocation rules on tasks, quotas, messages."""

from sqlalchemy import select

from core.enums import TaskState
from core.models import (
    Call,
    LeadAllocationRule,
    PostCallRule,
    ProviderConfig,
    PushGroup,
    PushGroupMember,
    PushMessage,
    QuotaRule,
    SmsMessage,
    SmsTemplate,
    Task,
)
from tests import factories as f
from webui.extensions import db


def _token(client, path):
    return f.csrf_from(client.get(path).get_data(as_text=True))


def _one(app, model, *where):
    with app.app_context():
        return db.session.scalar(select(model).where(*where))


def test_provider_secrets_are_stored_and_only_shown_masked(app, client, world):
    f.login(client, "admin_a")
    token = _token(client, "/after-call/providers?kind=aliyun")
    resp = client.post("/after-call/providers", data={
        "csrf_token": token, "kind": "aliyun", "name": "阿里云", "s_region": "cn-hangzhou",
        "x_access_key_id": "LTAI5tExampleKeyId", "x_access_key_secret": "VerySecretValue123456",
        "daily_cap_per_number": "3", "enabled": "on", "is_default": "on"})
    assert resp.status_code == 302
    row = _one(app, ProviderConfig, ProviderConfig.name == "阿里云")
    assert row.channel == "sms" and row.secrets["access_key_secret"] == "VerySecretValue123456"
    page = client.get("/after-call/providers").get_data(as_text=True)
    assert "VerySecretValue123456" not in page and "****3456" in page
    page = client.get(f"/after-call/providers?edit={row.id}").get_data(as_text=True)
    assert "VerySecretValue123456" not in page
    # Saving again with empty secret fields keeps them.
    client.post("/after-call/providers", data={"csrf_token": token, "kind": "aliyun",
                                               "id": row.id, "name": "阿里云",
                                               "enabled": "on"})
    assert _one(app, ProviderConfig, ProviderConfig.id == row.id).secrets[
        "access_key_secret"] == "VerySecretValue123456"
    f.login(app.test_client(), "staff_a")
    staff = app.test_client()
    f.login(staff, "staff_a")
    assert staff.get("/after-call/providers").status_code == 403


def test_template_rule_and_push_group_from_the_forms(app, client, world):
    with app.app_context():
        task = Task(account_id=world["a"], name="回访")
        db.session.add(task)
        db.session.commit()
        task_id = task.id
    f.login(client, "admin_a")
    token = _token(client, "/after-call/templates")
    client.post("/after-call/templates", data={"csrf_token": token, "name": "A级",
                                               "signature": "【云呼】", "body": "{name}您好"})
    tmpl = _one(app, SmsTemplate, SmsTemplate.name == "A级")
    assert tmpl.signature == "云呼"
    client.post("/after-call/push-groups", data={
        "csrf_token": token, "name": "销售", "strategy": "order",
        "user_ids": [world["staff_a"], world["admin_b"]], f"wecom_{world['staff_a']}": "zs"})
    group = _one(app, PushGroup, PushGroup.name == "销售")
    with app.app_context():
        members = db.session.scalars(select(PushGroupMember)).all()
    assert [(m.user_id, m.wecom_userid) for m in members] == [(world["staff_a"], "zs")]
    resp = client.post("/after-call/rules", data={
        "csrf_token": token, "name": "A级短信", "task_id": task_id, "match": "all",
        "c0_field": "grade", "c0_op": "in", "c0_value": "A, B",
        "c1_field": "talk_seconds", "c1_op": ">=", "c1_value": "20",
        "sms_template_id": tmpl.id, "push_group_ids": [group.id], "enabled": "on"})
    assert resp.status_code == 302
    rule = _one(app, PostCallRule, PostCallRule.name == "A级短信")
    assert rule.task_id == task_id and rule.conditions == {"match": "all", "items": [
        {"field": "grade", "op": "in", "value": ["A", "B"]},
        {"field": "talk_seconds", "op": ">=", "value": 20}]}
    assert rule.actions == [{"type": "sms", "template_id": tmpl.id},
                            {"type": "push", "group_id": group.id}]
    page = client.get(f"/after-call/rules?edit={rule.id}").get_data(as_text=True)
    assert 'value="A,B"' in page
    # A bad condition is refused with the reason.
    page = client.post("/after-call/rules", data={
        "csrf_token": token, "name": "bad", "c0_field": "score", "c0_op": "in",
        "c0_value": "3", "sms_template_id": tmpl.id}, follow_redirects=True)
    assert _one(app, PostCallRule, PostCallRule.name == "bad") is None
    # Another account's template cannot be referenced.
    with app.app_context():
        other = SmsTemplate(account_id=world["b"], name="B", signature="B", body="x")
        db.session.add(other)
        db.session.commit()
        other_id = other.id
    assert client.post("/after-call/rules", data={
        "csrf_token": token, "name": "x", "sms_template_id": other_id}).status_code == 404


def test_pushed_seen_and_failed_are_shown_and_the_link_marks_seen(app, client, world):
    with app.app_context():
        call = Call(account_id=world["a"], uuid="c1", phone="13812345678", grade="A")
        group = PushGroup(account_id=world["a"], name="销售")
        db.session.add_all([call, group])
        db.session.flush()
        for i, state in enumerate(["pushed", "pushed", "failed"]):
            db.session.add(PushMessage(account_id=world["a"], key=f"k{i}", call_id=call.id,
                                       group_id=group.id, user_id=world["staff_a"],
                                       content="【A级意向】13812345678\n任务：x", state=state,
                                       token=f"tok{i}", error="WeCom errcode 93000" if
                                       state == "failed" else None))
        db.session.add(SmsMessage(account_id=world["a"], key="s1", call_id=call.id,
                                  phone="13812345678", content="【云呼】您好", state="failed",
                                  attempts=2, error="gateway answered HTTP 503"))
        db.session.commit()
        call_id = call.id
    anonymous = app.test_client()
    resp = anonymous.get("/after-call/seen/tok0")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/calls/{call_id}")
    assert _one(app, PushMessage, PushMessage.token == "tok0").state == "seen"
    assert anonymous.get("/after-call/seen/nope").status_code == 404
    f.login(client, "staff_a")
    page = client.get("/after-call/push-groups").get_data(as_text=True)
    row = page.split("销售</td>")[1].split("</tr>")[0]
    cells = [c.split("</td>")[0] for c in row.split("<td")[1:]]
    assert cells[2:5] == ['>2', '>1', ' class="text-danger">1']  # pushed, seen, failed
    page = client.get("/after-call/messages?kind=sms&state=failed").get_data(as_text=True)
    assert "gateway answered HTTP 503" in page
    page = client.get("/after-call/messages?kind=push").get_data(as_text=True)
    assert "WeCom errcode 93000" in page
    f.login(app.test_client(), "admin_b")
    other = app.test_client()
    f.login(other, "admin_b")
    assert "13812345678" not in other.get("/after-call/messages").get_data(as_text=True)


def test_allocation_rule_applies_to_tasks_and_quota_form(app, client, world):
    with app.app_context():
        task = Task(account_id=world["a"], name="回访", state=TaskState.RUNNING)
        db.session.add(task)
        db.session.commit()
        task_id = task.id
    f.login(client, "admin_a")
    token = _token(client, "/after-call/allocation")
    client.post("/after-call/allocation", data={
        "csrf_token": token, "name": "A给销售", "mode_A": "order",
        "users_A": [world["staff_a"], world["admin_a"]], "mode_C": "pool",
        "task_ids": [task_id]})
    rule = _one(app, LeadAllocationRule, LeadAllocationRule.name == "A给销售")
    assert rule.grades == {"A": {"mode": "order", "user_ids": [world["staff_a"],
                                                               world["admin_a"]]},
                           "C": {"mode": "pool", "user_ids": []}}
    assert _one(app, Task, Task.id == task_id).lead_allocation == {"rule_id": rule.id}
    client.post("/after-call/quotas", data={"csrf_token": token, "name": "每天50个A",
                                            "task_id": task_id, "grade": "A",
                                            "period": "day", "threshold": "50",
                                            "action": "pause"})
    q = _one(app, QuotaRule, QuotaRule.name == "每天50个A")
    assert (q.task_id, q.grade, q.threshold, q.action) == (task_id, "A", 50, "pause")
    page = client.get("/after-call/quotas").get_data(as_text=True)
    assert "每天50个A" in page
    client.post(f"/after-call/quotas/{q.id}/delete", data={"csrf_token": token})
    assert _one(app, QuotaRule, QuotaRule.id == q.id) is None


def test_every_page_renders_for_staff(app, client, world):
    f.login(client, "staff_a")
    for path in ("/after-call/rules", "/after-call/templates", "/after-call/push-groups",
                 "/after-call/allocation", "/after-call/quotas", "/after-call/messages",
                 "/after-call/messages?kind=push", "/blacklist/", "/blacklist/add"):
        assert client.get(path).status_code == 200, path
    f.login(app.test_client(), "agent_a")
    agent = app.test_client()
    f.login(agent, "agent_a")
    assert agent.get("/after-call/rules").status_code == 403


def test_api_blacklist_and_after_call_results(app, client, world):
    from openapi_spec_validator import validate

    with app.app_context():
        s = db.session
        token = f.token(s, s.get(f.User, world["staff_a"]))
        from core.models import BlacklistGroup

        f_group = BlacklistGroup(account_id=world["a"], name="API")
        other = BlacklistGroup(account_id=world["b"], name="B")
        call = Call(account_id=world["a"], uuid="c9", phone="13812345678",
                    sms={"state": "failed", "reason": "HTTP 503"})
        s.add_all([f_group, other, call])
        s.flush()
        s.add(SmsMessage(account_id=world["a"], key="k", call_id=call.id, phone=call.phone,
                         content="x", state="failed", error="HTTP 503", attempts=1))
        s.commit()
        group, other_id, call_id = f_group.id, other.id, call.id
    h = {"Authorization": f"Bearer {token}"}
    resp = client.post(f"/api/v1/blacklist/groups/{group}/entries", headers=h,
                       json={"phones": ["13800000001", "x"], "reason": "api"})
    assert resp.status_code == 201
    assert resp.get_json()["added"] == ["13800000001"] and resp.get_json()["invalid"][0][
        "phone"] == "x"
    assert client.post(f"/api/v1/blacklist/groups/{other_id}/entries", headers=h,
                       json={"phones": ["13800000001"]}).status_code == 404
    assert client.post(f"/api/v1/blacklist/groups/{group}/entries", headers=h,
                       json={"phones": "no"}).get_json()["error"]["code"] == "invalid"
    entries = client.get("/api/v1/blacklist/entries?phone=138-0000-0001&live=true",
                         headers=h).get_json()
    assert entries["total"] == 1 and entries["items"][0]["live"] is True
    assert client.delete(f"/api/v1/blacklist/entries/{entries['items'][0]['id']}",
                         headers=h).status_code == 204
    result = client.get(f"/api/v1/calls/{call_id}/after-call", headers=h).get_json()
    assert result["sms"]["state"] == "failed" and result["sms_messages"][0]["error"] == "HTTP 503"
    assert client.get("/api/v1/sms-messages?state=failed", headers=h).get_json()["total"] == 1
    doc = client.get("/api/v1/openapi.json").get_json()
    validate(doc)
    assert {"/blacklist/entries", "/calls/{call_id}/after-call"} <= set(doc["paths"])


def test_call_results_macro_shows_sent_failed_and_why(app, world):
    from types import SimpleNamespace

    from flask import render_template_string

    call = SimpleNamespace(id=5, sms={"state": "failed", "reason": "HTTP 503", "retrying": True},
                           push={"state": "success", "target": "张三"})
    with app.test_request_context("/calls"):
        html = render_template_string(
            '{% from "after_call/_call.html" import after_call_results, blacklist_link %}'
            "{{ after_call_results(call) }}{{ blacklist_link(call) }}", call=call)
    assert "HTTP 503" in html and "bg-danger" in html and "bg-success" in html
    assert "/blacklist/add?call_id=5" in html


def test_delivery_reports_mark_messages_delivered_or_failed(app, client, world):
    f.login(client, "admin_a")
    token = _token(client, "/after-call/providers?kind=aliyun")
    client.post("/after-call/providers", data={"csrf_token": token, "kind": "aliyun",
                                               "name": "ali", "enabled": "on"})
    provider = _one(app, ProviderConfig, ProviderConfig.name == "ali")
    secret = provider.settings["report_token"]
    page = client.get("/after-call/providers").get_data(as_text=True)
    assert f"/after-call/sms-report/{provider.id}/{secret}" in page
    with app.app_context():
        call = Call(account_id=world["a"], uuid="r1", phone="13812345678",
                    sms={"state": "success"})
        db.session.add(call)
        db.session.flush()
        ok = SmsMessage(account_id=world["a"], key="a", call_id=call.id, phone=call.phone,
                        content="x", state="sent", provider_message_id="biz-1")
        bad = SmsMessage(account_id=world["a"], key="b", phone=call.phone, content="x",
                         state="sent")
        db.session.add_all([ok, bad])
        db.session.commit()
        ok_id, bad_id, call_id = ok.id, bad.id, call.id
    anonymous = app.test_client()
    url = f"/after-call/sms-report/{provider.id}/{secret}"
    assert anonymous.post(f"/after-call/sms-report/{provider.id}/wrong", json=[]) \
        .status_code == 404
    resp = anonymous.post(url, json=[
        {"phone_number": "13812345678", "success": True, "err_code": "DELIVERED",
         "biz_id": "biz-1", "out_id": ""},
        {"phone_number": "13812345678", "success": False, "err_code": "MK:0001",
         "err_msg": "用户关机", "biz_id": "biz-2", "out_id": str(bad_id)}])
    assert resp.get_json() == {"code": 0, "msg": "成功"}
    assert _one(app, SmsMessage, SmsMessage.id == ok_id).state == "delivered"
    failed = _one(app, SmsMessage, SmsMessage.id == bad_id)
    assert failed.state == "failed" and "MK:0001" in failed.error
    assert _one(app, Call, Call.id == call_id).sms["delivered"] is True


def test_a_task_s_own_rules_page(app, client, world):
    """/after-call/rules?task_id= is the task's 后续动作配置: its rules and the all-task
    rules, the new rule preset to the task, and saving returns there."""
    with app.app_context():
        mine, other = Task(account_id=world["a"], name="回访"), Task(account_id=world["a"],
                                                                    name="拉新")
        b_task = Task(account_id=world["b"], name="B的任务")
        db.session.add_all([mine, other, b_task])
        db.session.flush()
        db.session.add_all([
            PostCallRule(account_id=world["a"], task_id=mine.id, name="本任务规则",
                         actions=[{"type": "redial", "delay_minutes": 5}]),
            PostCallRule(account_id=world["a"], task_id=other.id, name="别的任务规则",
                         actions=[{"type": "redial", "delay_minutes": 5}]),
            PostCallRule(account_id=world["a"], task_id=None, name="全部任务规则",
                         actions=[{"type": "redial", "delay_minutes": 5}])])
        db.session.commit()
        mine_id, b_task_id = mine.id, b_task.id
    f.login(client, "staff_a")
    page = client.get(f"/after-call/rules?task_id={mine_id}").get_data(as_text=True)
    assert "本任务规则" in page and "全部任务规则" in page and "别的任务规则" not in page
    assert f'<option value="{mine_id}" selected>' in page
    assert client.get(f"/after-call/rules?task_id={b_task_id}").status_code == 404
    token = f.csrf_from(page)
    resp = client.post("/after-call/rules", data={
        "csrf_token": token, "name": "新规则", "task_id": mine_id, "back_task_id": mine_id,
        "redial": "on", "redial_minutes": "10", "enabled": "on"})
    assert resp.status_code == 302
    assert resp.location.endswith(f"/after-call/rules?task_id={mine_id}")
    assert _one(app, PostCallRule, PostCallRule.name == "新规则").task_id == mine_id


def test_malformed_advanced_conditions_are_refused_not_a_server_error(app, client, world):
    f.login(client, "staff_a")
    token = _token(client, "/after-call/rules")
    for advanced in ('[{"field": "grade"}]', '{"items": [1]}',
                     '{"match": "any", "items": [{"field": "score", "op": ">=", "value": 0},'
                     ' {"field": "nope", "op": "in", "value": ["x"]}]}'):
        resp = client.post("/after-call/rules", data={
            "csrf_token": token, "name": "坏规则", "advanced": advanced, "redial": "on",
            "redial_minutes": "5"})
        assert resp.status_code == 302, advanced
    assert _one(app, PostCallRule, PostCallRule.name == "坏规则") is None


def test_call_detail_shows_allocation_redial_and_quota_results(app, client, world):
    from core.models import Lead, Outbox, User

    with app.app_context():
        staff = db.session.get(User, world["staff_a"])
        staff.display_name = "李四"
        call = Call(account_id=world["a"], uuid="d1", phone="13812345678", grade="A",
                    sms={"state": "success"})
        db.session.add(call)
        db.session.flush()
        db.session.add(Lead(account_id=world["a"], phone=call.phone, grade="A",
                            owner_id=staff.id, call_id=call.id))
        job = "workers.after_call."
        db.session.add_all([
            Outbox(account_id=world["a"], key="k1", job=job + "allocate_lead",
                   args=[call.id, 1, "k1"], state="done", call_id=call.id),
            Outbox(account_id=world["a"], key="k2", job=job + "redial", args=[call.id, 5, "k2"],
                   state="done", last_error="not requeued: the number is pending",
                   call_id=call.id),
            Outbox(account_id=world["a"], key="k3", job=job + "check_quotas",
                   args=[call.id, "k3"], state="pending", last_error="relay: Redis down",
                   call_id=call.id),
            Outbox(account_id=world["a"], key="k4", job=job + "send_sms",
                   args=[call.id, 1, "k4"], state="done", call_id=call.id)])
        db.session.commit()
        call_id = call.id
    f.login(client, "staff_a")
    page = client.get(f"/calls/{call_id}").get_data(as_text=True)
    assert "after-call-actions" in page
    assert "李四" in page and "not requeued: the number is pending" in page
    assert "relay: Redis down" in page
    other = app.test_client()
    f.login(other, "admin_b")  # another account sees nothing of it
    assert other.get(f"/calls/{call_id}").status_code == 404


def test_http_gateway_delivery_reports_with_its_own_field_names(app, client, world):
    f.login(client, "admin_a")
    token = _token(client, "/after-call/providers?kind=http")
    client.post("/after-call/providers", data={
        "csrf_token": token, "kind": "http", "name": "网关", "s_url": "https://gw.example/send",
        "s_report_id_field": "msgid", "s_report_status_field": "stat",
        "s_report_success_values": "DELIVRD", "enabled": "on"})
    client.post("/after-call/providers", data={"csrf_token": token, "kind": "http",
                                               "name": "另一个", "s_url": "https://x/",
                                               "enabled": "on"})
    gw = _one(app, ProviderConfig, ProviderConfig.name == "网关")
    second = _one(app, ProviderConfig, ProviderConfig.name == "另一个")
    with app.app_context():
        mine = SmsMessage(account_id=world["a"], key="m1", phone="13812345678", content="x",
                          state="sent", provider_id=gw.id)
        theirs = SmsMessage(account_id=world["a"], key="m2", phone="13812345678",
                            content="x", state="sent", provider_id=second.id)
        db.session.add_all([mine, theirs])
        db.session.commit()
        mine_id, theirs_id = mine.id, theirs.id
    url = f"/after-call/sms-report/{gw.id}/{gw.settings['report_token']}"
    anonymous = app.test_client()
    assert anonymous.post(url, data={"msgid": str(mine_id), "stat": "DELIVRD"}).status_code \
        == 200
    assert _one(app, SmsMessage, SmsMessage.id == mine_id).state == "delivered"
    # One form report per GET, and a report naming a message of another provider is ignored.
    anonymous.get(url, query_string={"msgid": str(theirs_id), "stat": "UNDELIV",
                                     "err_code": "UNDELIV"})
    assert _one(app, SmsMessage, SmsMessage.id == theirs_id).state == "sent"
    anonymous.get(url, query_string={"msgid": str(mine_id), "stat": "UNDELIV",
                                     "err_code": "UNDELIV"})
    failed = _one(app, SmsMessage, SmsMessage.id == mine_id)
    assert failed.state == "failed" and "UNDELIV" in failed.error
