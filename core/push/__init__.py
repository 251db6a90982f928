"""Staff notices (微信推送, issue 10 §4): WeCom (企业微信) group-robot webhooks and WeCom app
messages, behind one interface: ``provider.send(Notice) -> None`` or PushError.

- ``wecom_robot``: secrets {"key": webhook key} (or settings {"webhook_url": …}); the
  notice goes to the robot's group chat and @-mentions the staff member by WeCom user id or
  mobile number.
- ``wecom_app``: settings {"corp_id", "agent_id"}, secrets {"corp_secret"}; the notice goes
  to the staff member's WeCom account (their WeCom user id) as a text card linking to the
  call.
- ``outbox``: sends nothing; the notice is shown in the console only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PushState(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    PUSHED = "pushed"
    SEEN = "seen"  # the staff member opened the notice's link
    FAILED = "failed"


class PushError(Exception):
    def __init__(self, message: str, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Notice:
    title: str
    text: str
    url: str = ""  # the "seen" link back to the call
    wecom_userid: str = ""
    mobile: str = ""


KINDS = ("outbox", "wecom_robot", "wecom_app")


def build(config, token_cache: dict | None = None):
    """The provider for a ProviderConfig row with channel "push"."""
    from core.push import wecom

    if config is None or config.kind == "outbox":
        return wecom.OutboxPush()
    if config.kind == "wecom_robot":
        return wecom.RobotPush(dict(config.settings or {}), dict(config.secrets or {}))
    if config.kind == "wecom_app":
        return wecom.AppPush(dict(config.settings or {}), dict(config.secrets or {}),
                             token_cache if token_cache is not None else wecom.TOKENS)
    raise PushError(f"unknown push provider kind {config.kind!r}", retryable=False)
