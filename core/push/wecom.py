"""WeCom (企业微信) delivery: group robot webhook and app message (cgi-bin/message/send)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request

from core.push import Notice, PushError

API_BASE = "https://qyapi.weixin.qq.com"
TIMEOUT_S = 10
# access_token errors: expired or invalid, fetch a new one and try once more.
_TOKEN_ERRORS = {40014, 42001, 40001}
# Process-wide access_token cache: {(api_base, corp_id, agent_id): (token, expires_monotonic)}.
TOKENS: dict = {}


def _call(method: str, url: str, payload: dict | None = None) -> dict:
    body = json.dumps(payload, ensure_ascii=False).encode() if payload is not None else None
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
            text = resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        raise PushError(f"WeCom answered HTTP {exc.code}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise PushError(f"network error: {getattr(exc, 'reason', exc)}") from exc
    try:
        reply = json.loads(text)
    except ValueError:
        raise PushError(f"WeCom answered: {text[:200]}") from None
    if not isinstance(reply, dict):
        raise PushError(f"WeCom answered: {text[:200]}")
    return reply


def _check(reply: dict) -> None:
    code = reply.get("errcode", -1)
    if code != 0:
        # 45009: API frequency limit (robots: 20 a minute) — worth a retry later.
        retryable = code in (-1, 45009, 45033) or code in _TOKEN_ERRORS
        raise PushError(f"WeCom errcode {code}: {reply.get('errmsg', '')}", retryable)


def message_text(notice: Notice) -> str:
    parts = [notice.title, notice.text]
    if notice.url:
        parts.append(notice.url)
    return "\n".join(p for p in parts if p)


class OutboxPush:
    def send(self, notice: Notice) -> None:
        return None


class RobotPush:
    """Group robot: POST {api_base}/cgi-bin/webhook/send?key=KEY, a text message that
    @-mentions the staff member (text messages support mentions; markdown does not)."""

    def __init__(self, settings: dict, secrets: dict):
        url = settings.get("webhook_url") or secrets.get("webhook_url")
        key = secrets.get("key", "")
        base = settings.get("api_base") or API_BASE
        self.url = url or f"{base}/cgi-bin/webhook/send?key={urllib.parse.quote(key)}"
        self.configured = bool(url or key)

    def send(self, notice: Notice) -> None:
        if not self.configured:
            raise PushError("robot webhook key is not set", retryable=False)
        text = {"content": message_text(notice)[:2000]}
        if notice.wecom_userid:
            text["mentioned_list"] = [notice.wecom_userid]
        if notice.mobile:
            text["mentioned_mobile_list"] = [notice.mobile]
        _check(_call("POST", self.url, {"msgtype": "text", "text": text}))


class AppPush:
    """App message: gettoken (cached until it expires) then message/send to the staff
    member's WeCom user id as a text card (plain text when there is no link)."""

    def __init__(self, settings: dict, secrets: dict, cache: dict):
        self.base = settings.get("api_base") or API_BASE
        self.corp_id = settings.get("corp_id", "")
        self.agent_id = settings.get("agent_id", "")
        self.secret = secrets.get("corp_secret", "")
        self.cache = cache

    def _token(self, fresh: bool = False) -> str:
        key = (self.base, self.corp_id, str(self.agent_id))
        cached = self.cache.get(key)
        if cached and not fresh and cached[1] > time.monotonic():
            return cached[0]
        query = urllib.parse.urlencode({"corpid": self.corp_id, "corpsecret": self.secret})
        reply = _call("GET", f"{self.base}/cgi-bin/gettoken?{query}")
        _check(reply)
        # Refresh a little early so a token never expires between fetch and use.
        self.cache[key] = (reply["access_token"],
                           time.monotonic() + int(reply.get("expires_in", 7200)) - 120)
        return reply["access_token"]

    def _payload(self, notice: Notice) -> dict:
        base = {"touser": notice.wecom_userid, "agentid": int(self.agent_id)}
        if notice.url:
            return base | {"msgtype": "textcard", "textcard": {
                "title": notice.title[:128], "description": notice.text[:512],
                "url": notice.url, "btntxt": "详情"}}
        return base | {"msgtype": "text", "text": {"content": message_text(notice)[:2000]}}

    def send(self, notice: Notice) -> None:
        if not (self.corp_id and self.agent_id and self.secret):
            raise PushError("WeCom app is not configured (corp id, agent id, secret)",
                            retryable=False)
        if not str(self.agent_id).isdigit():
            raise PushError(f"WeCom agent id must be a number, not {self.agent_id!r}",
                            retryable=False)
        if not notice.wecom_userid:
            raise PushError("staff member has no WeCom user id", retryable=False)
        payload = self._payload(notice)
        for fresh in (False, True):
            token = self._token(fresh)
            reply = _call("POST", f"{self.base}/cgi-bin/message/send?access_token="
                          f"{urllib.parse.quote(token)}", payload)
            if reply.get("errcode") in _TOKEN_ERRORS and not fresh:
                continue
            _check(reply)
            if reply.get("invaliduser"):
                raise PushError(f"WeCom: invalid user {reply['invaliduser']}", retryable=False)
            return
