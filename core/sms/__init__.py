"""SMS (挂机短信, issue 10 §3): templates, and providers behind one interface.

A provider turns (phone, rendered text, template) into one send and returns the provider's
message id, or raises SmsError. Provider payloads stay inside the provider module.

- ``outbox``: sends nothing; the message is kept and shown in the console (the default).
- ``http``: a generic HTTP gateway (URL, method, headers and body templates).
- ``aliyun``: Alibaba Cloud SendSms (dysmsapi, RPC signature v1 HMAC-SHA1).

    provider = build(config_row)      # a ProviderConfig with channel "sms"
    message_id = provider.send(SmsRequest(phone, text, signature, template_code, params))
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum


class SmsState(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"  # the provider accepted it
    DELIVERED = "delivered"  # the provider reported delivery
    FAILED = "failed"


class SmsError(Exception):
    """A send failed. `retryable` False: trying again cannot help (bad number, rejected
    template, daily cap); the message says why, for the console."""

    def __init__(self, message: str, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class SmsRequest:
    phone: str
    text: str  # the full text, 【signature】 included, as the callee will read it
    signature: str
    template_code: str = ""  # the provider-side template (cloud SMS)
    params: dict = field(default_factory=dict)  # the variables used in the template
    out_id: str = ""  # our reference, echoed in delivery reports


_VAR = re.compile(r"\{(\w+)\}")


def template_variables(body: str) -> list[str]:
    """The {names} a template body uses, in order of first use."""
    return list(dict.fromkeys(_VAR.findall(body)))


def render(signature: str, body: str, variables: dict) -> tuple[str, dict]:
    """The message text (【signature】body with {names} filled, unknown ones left empty) and
    the variables it used."""
    used = {name: str(variables.get(name, "") or "") for name in template_variables(body)}
    text = _VAR.sub(lambda m: used[m.group(1)], body)
    return (f"【{signature}】{text}" if signature else text), used


def call_variables(call, task_name: str = "") -> dict:
    """Variables a template may use about a call: the imported ones plus a few of its own."""
    data = dict(call.variables or {})
    data.update(phone=call.phone, grade=call.grade or "", task=task_name,
                talk_seconds=call.talk_seconds or 0)
    return data


KINDS = ("outbox", "http", "aliyun")


def build(config):
    """The provider for a ProviderConfig row (or anything with kind, settings, secrets)."""
    from core.sms import providers

    cls = {"outbox": providers.OutboxProvider, "http": providers.HttpProvider,
           "aliyun": providers.AliyunProvider}.get(config.kind)
    if cls is None:
        raise SmsError(f"unknown SMS provider kind {config.kind!r}", retryable=False)
    return cls(dict(config.settings or {}), dict(config.secrets or {}))


def mask(secret: str) -> str:
    """How a secret is shown in the console: its last 4 characters at most."""
    if not secret:
        return ""
    return "****" + (secret[-4:] if len(secret) >= 12 else "")
