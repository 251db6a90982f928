"""呼叫设置 → 线路 over HTTP: who may see and change lines, what the form refuses and why,
and that FreeSWITCH (the xml_curl endpoint) then serves the gateways as saved."""

from __future__ import annotations

import html
import json
import re
from contextlib import contextmanager

import pytest

from core.enums import Direction, TaskState
from core.models import Line, Task, TransferGroup
from core.pacing import LineSlots
from core.redis_conn import TASK_CHANNEL
from tests import factories as f
from tests.webui import test_freeswitch
from tests.webui.test_freeswitch import add_line, dialplan_request, sofia_conf_request, xml_of
from webui.extensions import db
from webui.lines.reload import GATEWAYS_CHANNEL

BASE = "/settings/lines"
fs = test_freeswitch.fs  # the fixture that posts to the console as FreeSWITCH does


def form(token: str, **fields) -> dict:
    """A valid registering outbound line, with `fields` changed."""
    data = {"csrf_token": token, "name": "电信外呼", "direction": "outbound", "gateway": "ct1",
            "fs_node": "t", "sip_proxy": "sip.carrier.cn:5060", "register": "1",
            "sip_username": "02161230000", "sip_password": "s3cret-pw",
            "caller_ids": "021-6123 0000\n13800138000", "codecs": "PCMA, PCMU",
            "max_concurrency": "10", "inbound_did": "", "params": "ping=30"}
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def csrf(client) -> str:
    return f.csrf_from(client.get("/password").get_data(as_text=True))


def login(client, username: str) -> str:
    f.login(client, username)
    return csrf(client)


def gateways(fs_post) -> dict[str, dict[str, str]]:
    """{gateway name: {param: value}} as the node `t` gets them from the console."""
    conf = xml_of(fs_post("xml_curl", data=sofia_conf_request()))
    return {g.get("name"): {p.get("name"): p.get("value") for p in g.iter("param")}
            for g in conf.iterfind(".//profile[@name='external']//gateway")}


def errors_of(response) -> dict[str, str]:
    page = response.get_data(as_text=True)
    return {field: html.unescape(re.sub(r"\s+", " ", text).strip()) for field, text in
            re.findall(r'data-error="([a-z_]+)">(.*?)</div>', page, re.S)}


def the_line(app, **where) -> Line | None:
    with app.app_context():
        line = db.session.scalar(db.select(Line).filter_by(**where))
        if line is not None:
            db.session.expunge(line)
        return line


def add_task(app, account_id, line_id, name, concurrency, state=TaskState.RUNNING) -> int:
    with app.app_context():
        task = Task(account_id=account_id, name=name, line_id=line_id,
                    max_concurrency=concurrency, state=state)
        db.session.add(task)
        db.session.commit()
        return task.id


@contextmanager
def published(app, channel: str):
    """The JSON messages published on `channel` while the block runs."""
    pubsub = app.extensions["redis"].pubsub()
    pubsub.subscribe(channel)
    assert pubsub.get_message(timeout=2)["type"] == "subscribe"
    got: list[dict] = []
    try:
        yield got
        while message := pubsub.get_message(timeout=0.3):
            got.append(json.loads(message["data"]))
    finally:
        pubsub.close()


# --- who may do what ---------------------------------------------------------------------

def test_menu_opens_the_lines_page(client, world):
    login(client, "admin_a")
    page = client.get("/tasks").get_data(as_text=True)
    assert re.search(r'href="/settings/lines"[^>]*>\s*<i class="bi bi-sliders"></i> 呼叫设置', page)


def test_staff_see_lines_but_change_nothing(app, client, world):
    line_id = add_line(app, world["a"], name="联通线路", sip_password="hidden-pw")
    token = login(client, "staff_a")
    page = client.get(BASE)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "联通线路" in html and "hidden-pw" not in html
    assert "/settings/lines/new" not in html and f"{BASE}/{line_id}/delete" not in html
    assert client.get(f"{BASE}/new").status_code == 403
    assert client.get(f"{BASE}/{line_id}").status_code == 403
    assert client.post(f"{BASE}/new", data=form(token)).status_code == 403
    assert client.post(f"{BASE}/{line_id}", data=form(token)).status_code == 403
    assert client.post(f"{BASE}/{line_id}/enabled",
                       data={"csrf_token": token, "enabled": "0"}).status_code == 403
    assert client.post(f"{BASE}/{line_id}/delete", data={"csrf_token": token}).status_code == 403
    line = the_line(app, id=line_id)
    assert line.enabled and line.name == "联通线路"
    agent = app.test_client()
    f.login(agent, "agent_a")
    assert agent.get(BASE).status_code == 403


def test_another_accounts_line_is_invisible_and_untouchable(app, client, world):
    a_line = add_line(app, world["a"], name="A的线路", gateway="gw_a")
    a1_line = add_line(app, world["a1"], name="A1的线路", gateway="gw_a1")
    token = login(client, "admin_b")
    assert "A的线路" not in client.get(BASE).get_data(as_text=True)
    assert client.get(f"{BASE}/{a_line}").status_code == 404
    assert client.post(f"{BASE}/{a_line}", data=form(token, name="偷改")).status_code == 404
    assert client.post(f"{BASE}/{a_line}/enabled",
                       data={"csrf_token": token, "enabled": "0"}).status_code == 404
    assert client.post(f"{BASE}/{a_line}/delete", data={"csrf_token": token}).status_code == 404
    line = the_line(app, id=a_line)
    assert (line.name, line.enabled) == ("A的线路", True)
    # The sub-account's admin does not see the main account's lines; the main admin sees both.
    sub = app.test_client()
    login(sub, "admin_a1")
    assert sub.get(f"{BASE}/{a_line}").status_code == 404
    assert sub.get(f"{BASE}/{a1_line}").status_code == 200
    main = app.test_client()
    token = login(main, "admin_a")
    html = main.get(BASE).get_data(as_text=True)
    assert "A的线路" in html and "A1的线路" in html
    # A main account's admin creates lines for its sub-accounts, never for another account.
    resp = main.post(f"{BASE}/new", data=form(token, account_id=str(world["b"])))
    assert resp.status_code == 400 and "account_id" in errors_of(resp)
    assert main.post(f"{BASE}/new", data=form(token, account_id=str(world["a1"]))).status_code \
        == 302
    assert the_line(app, gateway="ct1").account_id == world["a1"]


def test_changes_need_the_csrf_token(app, client, world):
    login(client, "admin_a")
    page = client.get(f"{BASE}/new").get_data(as_text=True)
    assert f.csrf_from(page)
    data = form("")
    del data["csrf_token"]
    assert client.post(f"{BASE}/new", data=data).status_code == 400
    assert the_line(app, gateway="ct1") is None


# --- create, edit, and what FreeSWITCH gets ------------------------------------------------

def test_created_line_is_served_to_freeswitch_and_announced(app, client, world, fs):
    token = login(client, "admin_a")
    with published(app, GATEWAYS_CHANNEL) as notices:
        resp = client.post(f"{BASE}/new", data=form(token))
    assert resp.status_code == 302, resp.get_data(as_text=True)
    line = the_line(app, gateway="ct1")
    assert (line.account_id, line.direction, line.fs_node) == (world["a"], "outbound", "t")
    assert line.caller_ids == ["02161230000", "13800138000"]
    assert (line.codecs, line.params, line.sip_password) == ("PCMA,PCMU", {"ping": "30"},
                                                            "s3cret-pw")
    assert notices == [{"line_id": line.id, "kill": None, "rescan": {"fs_node": "t"}}]
    assert gateways(fs)["ct1"] == {
        "proxy": "sip.carrier.cn:5060", "register": "true", "caller-id-in-from": "true",
        "extension": "auto_to_user", "username": "02161230000", "password": "s3cret-pw",
        "ping": "30"}
    listing = client.get(BASE).get_data(as_text=True)
    assert "sofia profile external rescan" in listing  # the flash says what to run
    for page in (listing, client.get(f"{BASE}/{line.id}").get_data(as_text=True)):
        assert "s3cret-pw" not in page
    assert 'placeholder="不修改"' in client.get(f"{BASE}/{line.id}").get_data(as_text=True)


def test_empty_password_keeps_the_stored_one(app, client, world, fs):
    line_id = add_line(app, world["a"], gateway="ct1", register=True, sip_username="021",
                       sip_password="old-pw")
    token = login(client, "admin_a")
    with published(app, GATEWAYS_CHANNEL) as notices:
        resp = client.post(f"{BASE}/{line_id}", data=form(token, sip_password="",
                                                          sip_proxy="10.1.2.3"))
    assert resp.status_code == 302
    assert the_line(app, id=line_id).sip_password == "old-pw"
    assert gateways(fs)["ct1"]["password"] == "old-pw"
    assert gateways(fs)["ct1"]["proxy"] == "10.1.2.3"
    # The changed gateway has to be killed before the rescan picks the new settings up.
    assert notices == [{"line_id": line_id, "kill": {"gateway": "ct1", "fs_node": None},
                        "rescan": {"fs_node": "t"}}]
    # A registering line cannot drop its password; an IP-auth one can.
    resp = client.post(f"{BASE}/{line_id}", data=form(token, sip_password="",
                                                      clear_password="1"))
    assert resp.status_code == 400
    assert "needs a SIP username and password" in errors_of(resp)["freeswitch"]
    resp = client.post(f"{BASE}/{line_id}", data=form(token, sip_password="", register=None,
                                                      clear_password="1"))
    assert resp.status_code == 302
    assert the_line(app, id=line_id).sip_password is None
    assert "password" not in gateways(fs)["ct1"]


def test_changing_only_caller_ids_needs_nothing_from_freeswitch(app, client, world):
    line_id = add_line(app, world["a"], gateway="ct1", sip_proxy="sip.carrier.cn:5060",
                       fs_node="t", register=True, sip_username="02161230000",
                       sip_password="pw", codecs="PCMA,PCMU", params={"ping": "30"})
    task_id = add_task(app, world["a"], line_id, "促销", 2)
    token = login(client, "admin_a")
    with published(app, GATEWAYS_CHANNEL) as notices, \
            published(app, TASK_CHANNEL) as task_notices:
        resp = client.post(f"{BASE}/{line_id}", data=form(token, sip_password="",
                                                          caller_ids="95588"))
    assert resp.status_code == 302
    assert the_line(app, id=line_id).caller_ids == ["95588"]
    assert notices == []
    # The controllers re-read the running task (and so its line's caller IDs) at once.
    assert {"task_id": task_id, "state": "running"} in task_notices
    assert "此修改无需在 FreeSWITCH 上操作" in client.get(BASE).get_data(as_text=True)


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"gateway": "ct 1"}, "freeswitch", "gateway name 'ct 1'"),
    ({"gateway": "ct1/x"}, "freeswitch", "gateway name 'ct1/x'"),
    ({"sip_proxy": "sip://carrier.cn"}, "freeswitch", "SIP proxy 'sip://carrier.cn'"),
    ({"sip_proxy": ""}, "freeswitch", "expected host[:port]"),
    ({"params": "pingg=30"}, "freeswitch", "unknown gateway parameter 'pingg'"),
    ({"params": "password=x"}, "params", "password 请在对应的字段中设置"),
    ({"params": "ping"}, "params", "参数第 1 行"),
    ({"codecs": "PCMA;PCMU"}, "freeswitch", "codecs ['PCMA;PCMU']"),
    ({"caller_ids": "13800138000\n客服"}, "caller_ids", "客服 不是电话号码"),
    ({"direction": "inbound"}, "inbound_did", "呼入线路需要填写"),
    ({"inbound_did": "abc"}, "inbound_did", "abc 不是电话号码"),
    ({"max_concurrency": "0"}, "max_concurrency", "1 到 10000"),
    ({"fs_node": "nowhere"}, "fs_node", "FS_NODES"),
    ({"name": " "}, "name", "请填写线路名称"),
    ({"register": "1", "sip_password": ""}, "freeswitch", "needs a SIP username and password"),
])
def test_bad_values_are_refused_with_a_clear_message(app, client, world, fields, field,
                                                     message):
    token = login(client, "admin_a")
    resp = client.post(f"{BASE}/new", data=form(token, **fields))
    assert resp.status_code == 400
    assert message in errors_of(resp)[field]
    assert "线路未保存" in resp.get_data(as_text=True)
    assert the_line(app, name="电信外呼") is None


def test_form_keeps_what_was_typed_except_the_password(client, world):
    token = login(client, "admin_a")
    resp = client.post(f"{BASE}/new", data=form(token, name="保留我", params="pingg=30"))
    html = resp.get_data(as_text=True)
    assert 'value="保留我"' in html and "pingg=30" in html and "s3cret-pw" not in html


def test_gateway_names_and_dids_are_unique_on_a_node_across_accounts(app, client, world, fs):
    add_line(app, world["b"], name="B的线路", gateway="ct1")  # every node
    add_line(app, world["b"], name="B的别的节点", gateway="ct2", fs_node="other")
    add_line(app, world["a"], name="呼入A", gateway="in1", inbound_did="+02161230000")
    token = login(client, "admin_a")
    resp = client.post(f"{BASE}/new", data=form(token, gateway="CT1"))
    assert resp.status_code == 400
    message = errors_of(resp)["gateway"]
    assert "CT1" in message and "其他账户的线路" in message and "B的线路" not in message
    resp = client.post(f"{BASE}/new", data=form(token, gateway="ct9", direction="inbound",
                                                inbound_did="021 6123 0000"))
    assert resp.status_code == 400
    assert "线路 呼入A" in errors_of(resp)["inbound_did"]
    # ct2 lives on another node only: on node t the name is free.
    assert client.post(f"{BASE}/new", data=form(token, gateway="ct2")).status_code == 302
    assert "ct2" in gateways(fs)


def test_enabling_a_line_that_would_clash_is_refused(app, client, world):
    add_line(app, world["a"], name="在用", gateway="gw1")
    off = add_line(app, world["a"], name="旧线路", gateway="GW1", enabled=False)
    token = login(client, "admin_a")
    client.post(f"{BASE}/{off}/enabled", data={"csrf_token": token, "enabled": "1"})
    assert not the_line(app, id=off).enabled
    assert "网关名称 GW1 已被同一 FreeSWITCH 节点上的 线路 在用 使用" in client.get(BASE).get_data(
        as_text=True)


# --- concurrency, disabling and deleting --------------------------------------------------

def test_max_concurrency_cannot_go_below_what_running_tasks_use(app, client, world):
    line_id = add_line(app, world["a"], gateway="ct1", max_concurrency=10)
    add_task(app, world["a"], line_id, "春季促销", 4)
    add_task(app, world["a"], line_id, "老客回访", 3)
    add_task(app, world["a"], line_id, "已暂停", 5, state=TaskState.PAUSED)
    token = login(client, "admin_a")
    resp = client.post(f"{BASE}/{line_id}", data=form(token, max_concurrency="6",
                                                      register=None))
    assert resp.status_code == 400
    message = errors_of(resp)["max_concurrency"]
    assert message.startswith("并发不足") and "春季促销, 老客回访" in message
    assert "不能低于 7" in message and "已暂停" not in message
    assert the_line(app, id=line_id).max_concurrency == 10
    resp = client.post(f"{BASE}/{line_id}", data=form(token, max_concurrency="7",
                                                      register=None))
    assert resp.status_code == 302
    assert the_line(app, id=line_id).max_concurrency == 7


def test_list_shows_concurrency_in_use_and_live_calls(app, client, world):
    line_id = add_line(app, world["a"], gateway="ct1", max_concurrency=10)
    task_id = add_task(app, world["a"], line_id, "春季促销", 4)
    add_task(app, world["a"], line_id, "老客回访", 3)
    LineSlots(app.extensions["redis"]).acquire(line_id, task_id, "call-1", -1, -1)
    login(client, "staff_a")
    html = client.get(BASE).get_data(as_text=True)
    row = re.search(rf'<tr data-line="{line_id}">(.*?)</tr>', html, re.S).group(1)
    assert 'data-used="7">7 / 10' in row and "春季促销, 老客回访" in row
    assert re.search(r"data-live>\s*1\s*<", row)


def test_disabling_stops_serving_the_gateway_and_warns_about_running_tasks(app, client, world,
                                                                        fs):
    line_id = add_line(app, world["a"], gateway="ct1")
    add_task(app, world["a"], line_id, "春季促销", 2)
    token = login(client, "admin_a")
    assert "ct1" in gateways(fs)
    with published(app, GATEWAYS_CHANNEL) as notices:
        client.post(f"{BASE}/{line_id}/enabled", data={"csrf_token": token, "enabled": "0"})
    assert not the_line(app, id=line_id).enabled
    assert "ct1" not in gateways(fs)
    assert notices == [{"line_id": line_id, "kill": {"gateway": "ct1", "fs_node": None},
                        "rescan": None}]
    html = client.get(BASE).get_data(as_text=True)
    assert "运行中的任务 春季促销 在此线路重新启用前不再有新呼叫" in html
    assert "killgw ct1" in html
    client.post(f"{BASE}/{line_id}/enabled", data={"csrf_token": token, "enabled": "1"})
    assert the_line(app, id=line_id).enabled and "ct1" in gateways(fs)


def test_a_line_in_use_is_not_deleted(app, client, world, fs):
    used = add_line(app, world["a"], name="在用线路", gateway="ct1")
    add_task(app, world["a"], used, "草稿任务", 1, state=TaskState.DRAFT)
    grouped = add_line(app, world["a"], name="转接线路", gateway="ct2")
    with app.app_context():
        db.session.add(TransferGroup(account_id=world["a"], name="外线转接", strategy="remote",
                                     ring_timeout_s=20, remote_line_id=grouped))
        db.session.commit()
    spare = add_line(app, world["a"], name="空闲线路", gateway="ct3")
    token = login(client, "admin_a")
    client.post(f"{BASE}/{used}/delete", data={"csrf_token": token})
    client.post(f"{BASE}/{grouped}/delete", data={"csrf_token": token})
    html = client.get(BASE).get_data(as_text=True)
    assert "线路 在用线路 正被任务 草稿任务 使用" in html
    assert "线路 转接线路 正被转接组 外线转接 使用" in html
    assert the_line(app, id=used) and the_line(app, id=grouped)
    with published(app, GATEWAYS_CHANNEL) as notices:
        assert client.post(f"{BASE}/{spare}/delete",
                           data={"csrf_token": token}).status_code == 302
    assert the_line(app, id=spare) is None
    assert "ct3" not in gateways(fs)
    assert notices == [{"line_id": spare, "kill": {"gateway": "ct3", "fs_node": None},
                        "rescan": None}]


def test_inbound_line_takes_calls_to_its_did(app, client, world, fs):
    token = login(client, "admin_a")
    resp = client.post(f"{BASE}/new", data=form(token, direction="inbound", gateway="in1",
                                                register=None, inbound_did="+021-61230000"))
    assert resp.status_code == 302
    line = the_line(app, gateway="in1")
    assert (line.direction, line.inbound_did) == (Direction.INBOUND, "+02161230000")
    doc = xml_of(fs("xml_curl", data=dialplan_request("02161230000")))
    actions = [(a.get("application"), a.get("data")) for a in doc.iter("action")]
    assert actions == [("set", f"cc_account_id={world['a']}"), ("set", f"cc_line_id={line.id}"),
                       ("park", None)]
