from __future__ import annotations

import logging

import pytest

from core.db import session_factory
from core.models import Line
from fs_conf.gateways import GatewayError, gateway_from_line, node_gateways
from tests import factories as f


def line(**columns) -> Line:
    values = {"name": "L", "gateway": "gw1", "sip_proxy": "sip.carrier.cn:5060",
              "register": False, "codecs": "PCMA,PCMU,G722", "params": {}, **columns}
    return Line(**values)


def test_ip_auth_trunk():
    gw = gateway_from_line(line())
    assert gw.name == "gw1"
    assert dict(gw.params) == {"proxy": "sip.carrier.cn:5060", "register": "false",
                               "caller-id-in-from": "true"}
    assert gw.variables == (("absolute_codec_string", "PCMA,PCMU,G722", "outbound"),)


def test_registering_trunk_with_params():
    gw = gateway_from_line(line(register=True, sip_username="0211234", sip_password="pw",
                                codecs="PCMA", params={"ping": 30, "from-domain": "cn.net"}))
    assert dict(gw.params) == {
        "proxy": "sip.carrier.cn:5060", "register": "true", "caller-id-in-from": "true",
        "extension": "auto_to_user", "username": "0211234", "password": "pw",
        "ping": "30", "from-domain": "cn.net"}


@pytest.mark.parametrize("columns,message", [
    ({"gateway": "gw/1"}, "gateway name"),
    ({"gateway": ""}, "gateway name"),
    ({"sip_proxy": None}, "SIP proxy"),
    ({"sip_proxy": "sip.cn;lr"}, "SIP proxy"),
    ({"register": True, "sip_username": "u"}, "username and password"),
    ({"params": {"register": "true"}}, "username and password"),
    ({"params": {"pasword": "x"}}, "unknown gateway parameter 'pasword'"),
    ({"params": {"ping": [1]}}, "expected text or a number"),
    ({"codecs": "PCMA,G7 29"}, "codecs"),
])
def test_bad_lines_are_refused(columns, message):
    with pytest.raises(GatewayError, match=message):
        gateway_from_line(line(**columns))


def test_node_gateways(db_url, caplog):
    caplog.set_level(logging.ERROR, "fs_conf.gateways")
    session = session_factory(db_url)()
    a, b = f.account(session, "A"), f.account(session, "B")

    def add(acct, name, gateway, **columns):
        row = Line(account_id=acct.id, name=name, gateway=gateway,
                   sip_proxy=columns.pop("sip_proxy", "10.9.9.9"), **columns)
        session.add(row)
        session.flush()

    add(a, "any node", "gw_any")
    add(a, "mine", "gw_mine", fs_node="fs1")
    add(a, "other node", "gw_other", fs_node="fs2")
    add(a, "off", "gw_off", enabled=False)
    add(b, "same name, other account", "gw_any")
    add(b, "broken", "gw_broken", sip_proxy="")
    session.commit()

    assert [g.name for g in node_gateways(session, "fs1")] == ["gw_any", "gw_mine"]
    assert "gateway name 'gw_any' is already used" in caplog.text
    assert "broken" in caplog.text and "SIP proxy" in caplog.text
    session.close()
