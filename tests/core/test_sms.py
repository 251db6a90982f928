"""SMS templates and providers, against local servers (Aliyun's server checks the signature
with its own implementation of the published algorithm)."""

import base64
import hashlib
import hmac
import json
from types import SimpleNamespace
from urllib.parse import quote_plus

import pytest

from core.sms import SmsError, SmsRequest, build, mask, render, template_variables
from core.sms.providers import aliyun_signature
from tests.workers.fake_http import FakeServer

REQ = SmsRequest(phone="13812345678", text="【云呼】王先生您好，回复T退订", signature="云呼",
                 template_code="SMS_123", params={"name": "王先生"}, out_id="42")


def cfg(kind, settings=None, secrets=None):
    return SimpleNamespace(kind=kind, settings=settings or {}, secrets=secrets or {})


def test_render_fills_variables_and_signature():
    text, used = render("云呼", "{name}您好，{missing}您的意向{grade}级", {"name": "王", "grade": "A"})
    assert text == "【云呼】王您好，您的意向A级" and used == {"name": "王", "missing": "",
                                                           "grade": "A"}
    assert template_variables("{a}{b}{a}") == ["a", "b"]
    assert mask("") == "" and mask("short") == "****" and mask("abcdefgh12345678") == "****5678"


def test_published_aliyun_signature_example():
    # The example of Alibaba Cloud's RPC signature documentation (DescribeRegions, testsecret).
    params = dict(TimeStamp="2016-02-23T12:46:24Z", Format="XML", AccessKeyId="testid",
                  Action="DescribeRegions", SignatureMethod="HMAC-SHA1",
                  SignatureNonce="3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", Version="2014-05-26",
                  SignatureVersion="1.0")
    assert aliyun_signature("testsecret", "GET", params) == "CT9X0VtwR86fNWSnsc6v8YGOjuE="


def _spec_encode(value: str) -> str:
    # The documented recipe: form-encode, then + → %20, * → %2A, %7E → ~.
    return quote_plus(value, encoding="utf-8").replace("+", "%20").replace("*", "%2A") \
        .replace("%7E", "~")


def aliyun_server(secret):
    def handler(req):
        form = req.form()
        given = form.pop("Signature")
        canon = "&".join(f"{_spec_encode(k)}={_spec_encode(v)}" for k, v in sorted(form.items()))
        to_sign = f"{req.method}&{_spec_encode('/')}&{_spec_encode(canon)}"
        want = base64.b64encode(hmac.new((secret + "&").encode(), to_sign.encode(),
                                         hashlib.sha1).digest()).decode()
        if given != want:
            return 400, {"Code": "SignatureDoesNotMatch", "Message": "bad signature"}
        assert form["Action"] == "SendSms" and form["Version"] == "2017-05-25"
        return 200, {"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0",
                     "RequestId": "F655A8D5"}
    return handler


def test_aliyun_sendsms_signed_request_is_accepted():
    with FakeServer(aliyun_server("s3cret*~ +/")) as srv:
        p = build(cfg("aliyun", {"endpoint": srv.url + "/"},
                      {"access_key_id": "LTAI-id", "access_key_secret": "s3cret*~ +/"}))
        assert p.send(REQ) == "900619746936498440^0"
        form = srv.requests[0].form()
    assert form["PhoneNumbers"] == "13812345678" and form["SignName"] == "云呼"
    assert json.loads(form["TemplateParam"]) == {"name": "王先生"}
    assert form["OutId"] == "42" and form["SignatureMethod"] == "HMAC-SHA1"


def test_aliyun_wrong_secret_is_refused_for_good():
    with FakeServer(aliyun_server("right")) as srv:
        p = build(cfg("aliyun", {"endpoint": srv.url + "/"},
                      {"access_key_id": "id", "access_key_secret": "wrong"}))
        with pytest.raises(SmsError) as err:
            p.send(REQ)
    assert "SignatureDoesNotMatch" in str(err.value) and not err.value.retryable


def test_http_provider_fills_templates_and_reads_the_id():
    with FakeServer(lambda r: (200, {"ok": True, "id": "m-1"})) as srv:
        p = build(cfg("http", {"url": srv.url + "/send?to={phone}", "method": "POST",
                               "content_type": "application/json",
                               "headers": {"Authorization": "Bearer {secret_token}"},
                               "body": '{"to": "{phone}", "text": "{text}"}',
                               "success_contains": "true", "id_field": "id"},
                      {"token": "tok"}))
        assert p.send(REQ) == "m-1"
        seen = srv.requests[0]
    assert seen.query == {"to": "13812345678"} and seen.headers["Authorization"] == "Bearer tok"
    assert seen.json() == {"to": "13812345678", "text": REQ.text}


def test_http_provider_errors_are_classified():
    with FakeServer(lambda r: (503, "busy")) as srv:
        with pytest.raises(SmsError) as err:
            build(cfg("http", {"url": srv.url})).send(REQ)
        assert err.value.retryable
    with FakeServer(lambda r: (400, "bad number")) as srv:
        with pytest.raises(SmsError) as err:
            build(cfg("http", {"url": srv.url})).send(REQ)
        assert not err.value.retryable
    with pytest.raises(SmsError):
        build(cfg("http", {"url": "http://127.0.0.1:9/"})).send(REQ)  # nothing listens
    assert build(cfg("outbox")).send(REQ).startswith("outbox-")


def test_aliyun_reply_that_is_not_an_object_is_an_sms_error():
    with FakeServer(lambda r: (200, ["OK"])) as srv:
        p = build(cfg("aliyun", {"endpoint": srv.url + "/"},
                      {"access_key_id": "id", "access_key_secret": "s"}))
        with pytest.raises(SmsError) as err:
            p.send(REQ)
    assert err.value.retryable
