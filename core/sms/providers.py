"""SMS providers: outbox (console only), generic HTTP, Alibaba Cloud SendSms."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime

from core import clock
from core.sms import SmsError, SmsRequest

TIMEOUT_S = 10


def _http(method: str, url: str, body: bytes | None = None,
          headers: dict | None = None) -> tuple[int, str]:
    """(status, text) of one HTTP exchange; network errors become retryable SmsError."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise SmsError(f"network error: {getattr(exc, 'reason', exc)}") from exc


class OutboxProvider:
    """Sends nothing: the message row itself is the result, visible in the console."""

    def __init__(self, settings: dict, secrets: dict):
        pass

    def send(self, request: SmsRequest) -> str:
        return "outbox-" + uuid.uuid4().hex[:16]


class HttpProvider:
    """A generic gateway. settings: url, method (GET/POST), content_type, headers (JSON
    object), body (template), success_contains (text the response must contain),
    id_field (JSON key of the message id). Templates may use {phone} {text} {signature}
    {template_code} {params_json} {out_id} and {secret_<name>} for each secret; in a URL
    and in form bodies values are URL-encoded, in JSON bodies JSON-escaped."""

    def __init__(self, settings: dict, secrets: dict):
        self.settings, self.secrets = settings, secrets

    def _values(self, request: SmsRequest) -> dict:
        values = {"phone": request.phone, "text": request.text, "signature": request.signature,
                  "template_code": request.template_code, "out_id": request.out_id,
                  "params_json": json.dumps(request.params, ensure_ascii=False)}
        values.update({f"secret_{k}": v for k, v in self.secrets.items()})
        return values

    @staticmethod
    def _fill(template: str, values: dict, escape) -> str:
        out = template
        for name, value in values.items():
            out = out.replace("{" + name + "}", escape(str(value)))
        return out

    def send(self, request: SmsRequest) -> str:
        s = self.settings
        values = self._values(request)
        url = self._fill(s.get("url", ""), values, urllib.parse.quote)
        if not url.startswith(("http://", "https://")):
            raise SmsError("HTTP provider has no valid URL", retryable=False)
        method = (s.get("method") or "POST").upper()
        content_type = s.get("content_type") or "application/json"
        headers = {k: self._fill(str(v), values, str) for k, v in
                   (s.get("headers") or {}).items()}
        body = None
        if method != "GET":
            escape = (lambda v: json.dumps(v, ensure_ascii=False)[1:-1]) \
                if "json" in content_type else urllib.parse.quote_plus
            body = self._fill(s.get("body") or "", values, escape).encode()
            headers.setdefault("Content-Type", content_type)
        status, text = _http(method, url, body, headers)
        if status >= 500 or status == 429:
            raise SmsError(f"gateway answered HTTP {status}: {text[:200]}")
        if status >= 300:
            raise SmsError(f"gateway refused (HTTP {status}): {text[:200]}", retryable=False)
        if (need := s.get("success_contains")) and need not in text:
            raise SmsError(f"gateway did not confirm: {text[:200]}")
        if id_field := s.get("id_field"):
            try:
                return str(json.loads(text).get(id_field) or "")
            except (ValueError, AttributeError):
                return ""
        return ""


# --- Alibaba Cloud SendSms ---------------------------------------------------------------

ALIYUN_ENDPOINT = "https://dysmsapi.aliyuncs.com/"
# Codes after which a retry cannot succeed (Alibaba Cloud SMS error code list).
_ALIYUN_FINAL = {"isv.MOBILE_NUMBER_ILLEGAL", "isv.SMS_SIGNATURE_ILLEGAL",
                 "isv.SMS_TEMPLATE_ILLEGAL", "isv.TEMPLATE_MISSING_PARAMETERS",
                 "isv.INVALID_PARAMETERS", "isv.BLACK_KEY_CONTROL_LIMIT",
                 "isv.DAY_LIMIT_CONTROL", "isv.AMOUNT_NOT_ENOUGH", "isv.ACCOUNT_NOT_EXISTS",
                 "isv.ACCOUNT_ABNORMAL", "InvalidAccessKeyId.NotFound",
                 "SignatureDoesNotMatch", "isv.MOBILE_COUNT_OVER_LIMIT"}


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as Alibaba Cloud's signature spec defines it: only A-Z a-z 0-9
    - _ . ~ stay as they are; space is %20, never +."""
    return urllib.parse.quote(str(value), safe="-_.~")


def aliyun_string_to_sign(method: str, params: dict) -> str:
    """StringToSign = METHOD & percentEncode("/") & percentEncode(canonicalised query), the
    query being every parameter but Signature, sorted by name, name=value percent-encoded."""
    query = "&".join(f"{percent_encode(k)}={percent_encode(v)}"
                     for k, v in sorted(params.items()) if k != "Signature")
    return f"{method}&{percent_encode('/')}&{percent_encode(query)}"


def aliyun_signature(secret: str, method: str, params: dict) -> str:
    """Base64(HMAC-SHA1(AccessKeySecret + "&", UTF-8(StringToSign)))."""
    digest = hmac.new((secret + "&").encode(), aliyun_string_to_sign(method, params).encode(),
                      hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def aliyun_params(access_key_id: str, request: SmsRequest, now: datetime,
                  nonce: str, region: str = "cn-hangzhou") -> dict:
    """The SendSms request parameters (common + operation), Signature not yet included."""
    params = {
        "AccessKeyId": access_key_id, "Action": "SendSms", "Format": "JSON",
        "RegionId": region, "SignatureMethod": "HMAC-SHA1", "SignatureNonce": nonce,
        "SignatureVersion": "1.0", "Timestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Version": "2017-05-25", "PhoneNumbers": request.phone, "SignName": request.signature,
        "TemplateCode": request.template_code,
    }
    if request.params:
        params["TemplateParam"] = json.dumps(request.params, ensure_ascii=False,
                                             separators=(",", ":"))
    if request.out_id:
        params["OutId"] = request.out_id
    return params


class AliyunProvider:
    """settings: endpoint (default dysmsapi.aliyuncs.com), region; secrets: access_key_id,
    access_key_secret. The template lives at Alibaba Cloud (TemplateCode); our body is the
    local copy shown in the console and its {variables} become TemplateParam."""

    def __init__(self, settings: dict, secrets: dict):
        self.endpoint = settings.get("endpoint") or ALIYUN_ENDPOINT
        self.region = settings.get("region") or "cn-hangzhou"
        self.key_id = secrets.get("access_key_id", "")
        self.secret = secrets.get("access_key_secret", "")

    def send(self, request: SmsRequest) -> str:
        if not (self.key_id and self.secret):
            raise SmsError("Aliyun provider has no AccessKey", retryable=False)
        if not request.template_code:
            raise SmsError("template has no Aliyun template code", retryable=False)
        params = aliyun_params(self.key_id, request, clock.now(), uuid.uuid4().hex,
                               self.region)
        params["Signature"] = aliyun_signature(self.secret, "POST", params)
        body = urllib.parse.urlencode(params, quote_via=urllib.parse.quote).encode()
        status, text = _http("POST", self.endpoint, body,
                             {"Content-Type": "application/x-www-form-urlencoded"})
        try:
            reply = json.loads(text)
        except ValueError:
            raise SmsError(f"Aliyun answered HTTP {status}: {text[:200]}") from None
        if not isinstance(reply, dict):
            raise SmsError(f"Aliyun answered HTTP {status}: {text[:200]}")
        code = reply.get("Code")
        if code == "OK":
            return str(reply.get("BizId") or "")
        message = f"Aliyun {code}: {reply.get('Message', '')}"
        raise SmsError(message, retryable=code not in _ALIYUN_FINAL)
