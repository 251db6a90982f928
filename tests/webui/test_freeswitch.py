"""The console's FreeSWITCH endpoints, posted to the way mod_xml_curl and mod_json_cdr do."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from urllib.parse import quote

import pytest
from sqlalchemy import select

from core.enums import Direction, Role, TaskState
from core.models import Call, Line, Task, User
from tests.core.test_cdr import UUID, sample_cdr
from webui.extensions import db

CORE = {  # headers FreeSWITCH adds to every REQUEST_PARAMS event
    "Event-Name": "REQUEST_PARAMS", "Core-UUID": "2a9b7c1e-9d0e-4c47-8f5a-2b1f1e0c9a11",
    "FreeSWITCH-Hostname": "fs1.example", "FreeSWITCH-Switchname": "t",
    "FreeSWITCH-IPv4": "10.0.0.5", "FreeSWITCH-IPv6": "::1",
    "Event-Date-Local": "2026-11-23 21:42:09", "Event-Date-GMT": "Mon, 23 Nov 2026 13:42:09 GMT",
    "Event-Date-Timestamp": "1795470129546980", "Event-Sequence": "517",
}


def sofia_conf_request(**extra) -> dict:
    return {"hostname": "t", "section": "configuration", "tag_name": "configuration",
            "key_name": "name", "key_value": "sofia.conf", **CORE,
            "Event-Calling-File": "sofia.c", "Event-Calling-Function": "config_sofia",
            "Event-Calling-Line-Number": "4594", **extra}


def sip_auth_request(user: str, domain: str = "10.0.0.5") -> dict:
    return {"hostname": "t", "section": "directory", "tag_name": "domain", "key_name": "name",
            "key_value": domain, **CORE, "Event-Calling-File": "sofia_reg.c",
            "Event-Calling-Function": "sofia_reg_parse_auth", "action": "sip_auth",
            "sip_profile": "internal", "sip_user_agent": "JsSIP 3.10.0",
            "sip_auth_username": user, "sip_auth_realm": domain,
            "sip_auth_nonce": "5c2f8a6e-2d1b-4c1f-9e4d-1f0a9b8c7d6e",
            "sip_auth_uri": f"sip:{domain}", "sip_contact_user": "df7jal23",
            "sip_contact_host": "df7jal23.invalid", "sip_to_user": user, "sip_to_host": domain,
            "sip_via_protocol": "wss", "sip_from_user": user, "sip_from_host": domain,
            "sip_call_id": "k4l9vq0bq6k1", "sip_request_host": domain,
            "sip_auth_qop": "auth", "sip_auth_cnonce": "s3vcbb", "sip_auth_nc": "00000001",
            "sip_auth_response": "0b8a4f0e5cbb3c4c1b1c5d7a9e2f3a4b",
            "sip_auth_method": "REGISTER", "client_port": "53211", "key": "id",
            "user": user, "domain": domain, "ip": "198.51.100.23"}


def dialplan_request(number: str, context: str = "public") -> dict:
    return {"hostname": "t", "section": "dialplan", "tag_name": "", "key_name": "",
            "key_value": "", **CORE, "Channel-State": "CS_ROUTING",
            "Channel-Name": "sofia/external/13900139000@203.0.113.9",
            "Unique-ID": "9b1d8a60-1c6e-4d1e-9a0d-3f2b1c0d4e5f", "Call-Direction": "inbound",
            "Caller-Direction": "inbound", "Caller-Username": "13900139000",
            "Caller-Dialplan": "XML", "Caller-Caller-ID-Number": "13900139000",
            "Caller-Network-Addr": "203.0.113.9", "Caller-Destination-Number": number,
            "Caller-Context": context, "Hunt-Username": "13900139000", "Hunt-Dialplan": "XML",
            "Hunt-Destination-Number": number, "Hunt-Context": context,
            "variable_sofia_profile_name": "external", "variable_sip_to_user": number}


@pytest.fixture
def fs(app, client):
    """Post like the node `t` of the test settings: basic auth freeswitch:FS_HTTP_SECRET."""
    secret = app.config["SETTINGS"].freeswitch.http_secret
    auth = {"Authorization": "Basic " + base64.b64encode(f"freeswitch:{secret}".encode()).decode()}

    def post(path: str, **kwargs):
        return client.post(f"/freeswitch/t/{path}", headers=auth, **kwargs)
    return post


def xml_of(response) -> ET.Element:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/xml"
    return ET.fromstring(response.get_data())


def is_not_found(response) -> bool:
    return xml_of(response).find("section[@name='result']/result").get("status") == "not found"


def add_line(app, account_id, **columns) -> int:
    with app.app_context():
        line = Line(account_id=account_id, name=columns.pop("name", "L"),
                    gateway=columns.pop("gateway", "gw1"),
                    sip_proxy=columns.pop("sip_proxy", "sip.carrier.cn"), **columns)
        db.session.add(line)
        db.session.commit()
        return line.id


# --- authentication -------------------------------------------------------------------

def test_requests_without_the_secret_are_refused(app, client, world):
    assert client.post("/freeswitch/t/xml_curl", data=sofia_conf_request()).status_code == 401
    for user, password in (("freeswitch", "wrong"), ("admin", app.config["SETTINGS"]
                                                      .freeswitch.http_secret)):
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        response = client.post("/freeswitch/t/cdr", json=sample_cdr(),
                               headers={"Authorization": f"Basic {token}"})
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Basic realm="freeswitch"'


def test_addresses_outside_the_allow_list_are_refused(fs, world):
    response = fs("xml_curl", data=sofia_conf_request(),
                  environ_base={"REMOTE_ADDR": "192.0.2.50"})
    assert response.status_code == 403
    assert fs("xml_curl", data=sofia_conf_request(),
              environ_base={"REMOTE_ADDR": "::ffff:127.0.0.1"}).status_code == 200


def test_unknown_node_is_404(app, fs, world):
    secret = app.config["SETTINGS"].freeswitch.http_secret
    response = app.test_client().post(
        "/freeswitch/nope/xml_curl", data=sofia_conf_request(),
        headers={"Authorization": "Basic " + base64.b64encode(
            f"freeswitch:{secret}".encode()).decode()})
    assert response.status_code == 404 and b"FS_NODES" in response.data


def test_no_csrf_token_needed_and_no_session_used(fs, world):
    # CSRF would answer 400; FreeSWITCH has no cookies or tokens.
    assert fs("xml_curl", data=sofia_conf_request()).status_code == 200


def test_missing_section_is_a_clear_400(fs, world):
    response = fs("xml_curl", data={"hostname": "t"})
    assert response.status_code == 400 and b"missing form field section" in response.data


# --- configuration: sofia.conf with the lines' gateways --------------------------------

def test_sofia_conf_carries_this_nodes_gateways(app, fs, world):
    add_line(app, world["a"], gateway="gw_a", register=True, sip_username="021", sip_password="pw")
    add_line(app, world["b"], gateway="gw_b", fs_node="t", codecs="PCMA")
    add_line(app, world["a"], gateway="gw_elsewhere", fs_node="other")
    add_line(app, world["a"], gateway="gw_off", enabled=False)
    doc = xml_of(fs("xml_curl", data=sofia_conf_request(profile="external", reconfig="true")))
    conf = doc.find("section[@name='configuration']/configuration[@name='sofia.conf']")
    assert {p.get("name") for p in conf.iter("profile")} == {"internal", "external"}
    gateways = {g.get("name"): g for g in conf.iterfind(".//profile[@name='external']//gateway")}
    assert set(gateways) == {"gw_a", "gw_b"}
    gw_a = {p.get("name"): p.get("value") for p in gateways["gw_a"].iter("param")}
    assert (gw_a["register"], gw_a["username"], gw_a["password"]) == ("true", "021", "pw")
    assert gateways["gw_b"].find(".//variable").get("value") == "PCMA"


def test_other_configuration_files_are_not_found(fs, world):
    assert is_not_found(fs("xml_curl", data=sofia_conf_request(key_value="switch.conf")))
    assert is_not_found(fs("xml_curl", data={**sofia_conf_request(), "section": "languages"}))


# --- directory: agents' SIP accounts -----------------------------------------------------

def set_agent(app, user_id, extension="8001", password="sip-pw<1>", **columns):
    with app.app_context():
        user = db.session.get(User, user_id)
        user.sip_extension, user.sip_password = extension, password
        for name, value in columns.items():
            setattr(user, name, value)
        db.session.commit()


def test_agent_gets_a_directory_entry(app, fs, world):
    set_agent(app, world["agent_a"], display_name="小王")
    doc = xml_of(fs("xml_curl", data=sip_auth_request("8001")))
    domain = doc.find("section[@name='directory']/domain")
    assert domain.get("name") == "10.0.0.5"
    user = domain.find(".//user")
    assert user.get("id") == "8001"
    assert user.find("params/param[@name='password']").get("value") == "sip-pw<1>"
    variables = {v.get("name"): v.get("value") for v in user.iter("variable")}
    assert variables["user_context"] == "agents"
    assert variables["effective_caller_id_name"] == "小王"
    assert "cc_account_id" not in variables


@pytest.mark.parametrize("change", [
    {"role": Role.STAFF}, {"active": False}, {"password": None}, {"password": ""},
])
def test_non_agents_get_nothing(app, fs, world, change):
    password = change.pop("password", "pw")
    set_agent(app, world["agent_a"], password=password, **change)
    assert is_not_found(fs("xml_curl", data=sip_auth_request("8001")))


def test_directory_scans_without_a_user_are_not_found(fs, world):
    request = sip_auth_request("8001")
    for name in ("user", "sip_auth_username", "action"):
        request.pop(name)
    assert is_not_found(fs("xml_curl", data={**request, "purpose": "gateways"}))


# --- dialplan: inbound DIDs ----------------------------------------------------------------

def test_known_did_is_parked_for_the_controller(app, fs, world):
    line_id = add_line(app, world["a"], direction=Direction.INBOUND, inbound_did="02161230000")
    with app.app_context():
        for state in (TaskState.RUNNING, TaskState.PAUSED):
            db.session.add(Task(account_id=world["a"], name=state, line_id=line_id,
                                direction=Direction.INBOUND, state=state))
        db.session.commit()
        running = db.session.scalar(select(Task.id).where(Task.state == TaskState.RUNNING))
    doc = xml_of(fs("xml_curl", data=dialplan_request("+02161230000")))
    context = doc.find("section[@name='dialplan']/context[@name='public']")
    condition = context.find("extension/condition")
    assert condition.get("field") == "destination_number"
    assert condition.get("expression") == r"^\+02161230000$"
    actions = [(a.get("application"), a.get("data")) for a in condition.iter("action")]
    assert actions == [("set", f"cc_account_id={world['a']}"), ("set", f"cc_line_id={line_id}"),
                       ("set", f"cc_task_id={running}"), ("park", None)]


def test_unknown_or_ambiguous_did_is_refused(app, fs, world):
    actions = lambda r: [(a.get("application"), a.get("data"))  # noqa: E731
                         for a in xml_of(r).iter("action")]
    assert actions(fs("xml_curl", data=dialplan_request("02100000000"))) == [
        ("respond", "404 Not Found")]
    add_line(app, world["a"], inbound_did="02161230000")
    add_line(app, world["b"], inbound_did="+02161230000", gateway="gw2")
    assert actions(fs("xml_curl", data=dialplan_request("02161230000"))) == [
        ("respond", "480 Temporarily Unavailable")]


def test_other_contexts_are_freeswitchs_own(fs, world):
    assert is_not_found(fs("xml_curl", data=dialplan_request("8001", context="agents")))


# --- CDR ---------------------------------------------------------------------------------

def test_cdr_as_json_body_updates_the_call(app, fs, world):
    with app.app_context():
        db.session.add(Call(account_id=world["a"], uuid=UUID, phone="13800138000"))
        db.session.commit()
    response = fs(f"cdr?uuid={UUID}", data=json.dumps(sample_cdr()),
                  content_type="application/json")
    assert response.status_code == 200 and response.json["recorded"] is True
    with app.app_context():
        call = db.session.scalar(select(Call).where(Call.uuid == UUID))
        assert (call.talk_seconds, call.sip_code, call.hangup_side) == (4, 200, "callee")
        assert call.status == "answered"
        assert call.cdr["switchname"] == "fs1"


def test_cdr_as_form_field_creates_a_missing_call(app, fs, world):
    """encode=true: `cdr=<url-encoded JSON>` as application/x-www-form-urlencoded."""
    body = "cdr=" + quote(json.dumps(sample_cdr(cc_account_id=world["a"])), safe="")
    for _ in range(2):
        response = fs(f"cdr?uuid={UUID}", data=body,
                      content_type="application/x-www-form-urlencoded")
        assert response.status_code == 200 and response.json["recorded"] is True
    with app.app_context():
        calls = db.session.scalars(select(Call)).all()
        assert [(c.uuid, c.account_id, c.fs_node) for c in calls] == [(UUID, world["a"], "t")]


def test_cdr_without_an_account_is_acknowledged_not_recorded(app, fs, world):
    response = fs("cdr", json=sample_cdr())
    assert response.status_code == 200 and response.json == {"call_id": None,
                                                            "recorded": False}


@pytest.mark.parametrize("data,content_type,status,message", [
    ("{not json", "application/json", 400, b"not valid JSON"),
    ("[1, 2]", "application/json", 400, b"JSON object"),
    ('{"variables": {}}', "application/json", 400, b"no variables.uuid"),
    ("hostname=t", "application/x-www-form-urlencoded", 400, b"missing form field cdr"),
    ("eyJ2YXJpYWJsZXMiOnt9fQ==", "application/x-www-form-base64-encoded", 415, b"encode=false"),
])
def test_bad_cdrs_get_a_clear_error(fs, world, data, content_type, status, message):
    response = fs("cdr", data=data, content_type=content_type)
    assert response.status_code == status and message in response.data


def _sms_rule_on_answered(app, account_id) -> tuple[int, int]:
    """A post-call rule "answered → hang-up SMS"; (rule id, template id)."""
    from core.models import PostCallRule, SmsTemplate

    with app.app_context():
        template = SmsTemplate(account_id=account_id, name="t", signature="云帆", body="感谢")
        db.session.add(template)
        db.session.flush()
        rule = PostCallRule(account_id=account_id, name="接通发短信", conditions={
            "match": "all", "items": [{"field": "status", "op": "in", "value": ["answered"]}]},
            actions=[{"type": "sms", "template_id": template.id}])
        db.session.add(rule)
        db.session.commit()
        return rule.id, template.id


@pytest.mark.parametrize("row,queued", [
    (None, True),  # the CDR makes the row: the controller was away
    ({"state": "ended"}, True),  # ended without its hang-up: its status comes from here
    ({"state": "in_dialogue", "grade": "A"}, True),  # the dialogue's result is saved
    ({"state": "in_dialogue"}, False),  # the controller still drives it: its final row will
])
def test_a_cdr_that_completes_a_call_queues_its_after_call_rules_once(app, fs, world, row,
                                                                      queued):
    from core.models import Outbox

    rule_id, template_id = _sms_rule_on_answered(app, world["a"])
    if row is not None:
        with app.app_context():
            db.session.add(Call(account_id=world["a"], uuid=UUID, phone="13800138000",
                                controller="ctl-1", **row))
            db.session.commit()
    cdr = sample_cdr(cc_account_id=world["a"])
    for posted in (cdr, {**cdr, "retried": True}):  # the same call's CDR, and a changed one
        response = fs("cdr", json=posted)
        assert response.status_code == 200 and response.json["recorded"] is True
    with app.app_context():
        call = db.session.scalar(select(Call).where(Call.uuid == UUID))
        assert call.status == "answered"
        assert call.state == (row or {"state": "ended"})["state"]
        keys = db.session.scalars(select(Outbox.key)).all()
        assert keys == ([f"call:{call.id}:rule:{rule_id}:sms:{template_id}"] if queued else [])
