"""WeCom delivery against a local server that behaves like qyapi.weixin.qq.com."""

from types import SimpleNamespace

import pytest

from core.push import Notice, PushError, build
from tests.workers.fake_http import FakeServer

NOTICE = Notice(title="【A级意向】13812345678", text="任务：双十一", url="http://c/seen/x",
                wecom_userid="zhangsan", mobile="13900000000")


def cfg(kind, settings=None, secrets=None):
    return SimpleNamespace(kind=kind, settings=settings or {}, secrets=secrets or {})


def test_robot_webhook_posts_a_text_with_mentions():
    with FakeServer(lambda r: (200, {"errcode": 0, "errmsg": "ok"})) as srv:
        build(cfg("wecom_robot", {"api_base": srv.url}, {"key": "k-1"})).send(NOTICE)
        seen = srv.requests[0]
    assert seen.path == "/cgi-bin/webhook/send" and seen.query == {"key": "k-1"}
    body = seen.json()
    assert body["msgtype"] == "text" and "13812345678" in body["text"]["content"]
    assert body["text"]["mentioned_list"] == ["zhangsan"]
    assert body["text"]["mentioned_mobile_list"] == ["13900000000"]


def test_robot_errors():
    with FakeServer(lambda r: (200, {"errcode": 93000, "errmsg": "invalid webhook url"})) as srv:
        with pytest.raises(PushError) as err:
            build(cfg("wecom_robot", {"api_base": srv.url}, {"key": "bad"})).send(NOTICE)
    assert "93000" in str(err.value) and not err.value.retryable
    with pytest.raises(PushError):
        build(cfg("wecom_robot")).send(NOTICE)


def wecom_app():
    state = {"token": "T1", "issued": 0}

    def handler(r):
        if r.path == "/cgi-bin/gettoken":
            if r.query != {"corpid": "ww1", "corpsecret": "sec"}:
                return 200, {"errcode": 40013, "errmsg": "invalid corpid"}
            state["issued"] += 1
            state["token"] = f"T{state['issued']}"
            return 200, {"errcode": 0, "access_token": state["token"], "expires_in": 7200}
        if r.path == "/cgi-bin/message/send":
            if r.query.get("access_token") != state["token"]:
                return 200, {"errcode": 42001, "errmsg": "access_token expired"}
            return 200, {"errcode": 0, "errmsg": "ok", "invaliduser": ""}
        return 404, {}
    return handler, state


def test_app_message_fetches_caches_and_refreshes_the_token():
    handler, state = wecom_app()
    cache = {}
    with FakeServer(handler) as srv:
        conf = cfg("wecom_app", {"api_base": srv.url, "corp_id": "ww1", "agent_id": "1000002"},
                   {"corp_secret": "sec"})
        build(conf, cache).send(NOTICE)
        build(conf, cache).send(NOTICE)  # cached token: no second gettoken
        assert state["issued"] == 1
        state["token"] = "rotated"  # the server expired our token
        build(conf, cache).send(NOTICE)
        assert state["issued"] == 2
        sends = [r for r in srv.requests if r.path == "/cgi-bin/message/send"]
    body = sends[0].json()
    assert body["touser"] == "zhangsan" and body["agentid"] == 1000002
    assert body["msgtype"] == "textcard" and body["textcard"]["url"] == NOTICE.url


def test_app_message_needs_configuration_and_a_user():
    with pytest.raises(PushError):
        build(cfg("wecom_app"), {}).send(NOTICE)
    conf = cfg("wecom_app", {"corp_id": "c", "agent_id": "1"}, {"corp_secret": "s"})
    with pytest.raises(PushError):
        build(conf, {}).send(Notice(title="t", text="x"))


def test_a_bad_agent_id_or_a_reply_that_is_not_an_object_is_a_push_error():
    conf = cfg("wecom_app", {"corp_id": "c", "agent_id": "销售"}, {"corp_secret": "s"})
    with pytest.raises(PushError) as err:
        build(conf, {}).send(NOTICE)
    assert not err.value.retryable and "agent id" in str(err.value)
    with FakeServer(lambda r: (200, [1, 2])) as srv:
        with pytest.raises(PushError):
            build(cfg("wecom_robot", {"api_base": srv.url}, {"key": "k"})).send(NOTICE)
