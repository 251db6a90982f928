"""Turn the runner's events into what agents' consoles show: the screen pop (弹屏).

`publisher(conn, pop)` returns an `on_event` for run_transfer that publishes on the offered
agent's channel `cc:agent:<user_id>`:

    {"type": "screen_pop", "state": "ringing" | "answered" | "missed", "call_uuid",
     "agent_uuid", "pop": {…}}

and keeps the latest under `cc:agent:<user_id>:pop` (ringing: 2 min, answered: 1 h,
missed: removed) so a page that reconnects shows it again.

`pop` is core.transfer.screen_pop(...) built by the caller from the call's rows. Every
event also goes to `cc:transfer:<call_uuid>` for whoever watches the call.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import redis

from core.presence import agent_channel, last_pop_key

log = logging.getLogger(__name__)


RINGING_KEEP_S = 120
ANSWERED_KEEP_S = 3600


def call_channel(call_uuid: str) -> str:
    return f"cc:transfer:{call_uuid}"


def publisher(conn: redis.Redis, pop: dict,
              also: Callable[[dict], None] | None = None) -> Callable[[dict], None]:
    """An on_event for run_transfer; `also` receives every event too (e.g. the call log)."""

    def send(channel: str, message: dict) -> None:
        try:
            conn.publish(channel, json.dumps(message, ensure_ascii=False, default=str))
        except redis.RedisError as exc:  # live hints only: the transfer goes on
            log.warning("cannot publish %s: %s", channel, exc)

    def remember(user_id: int, message: dict, keep_s: int) -> None:
        try:
            if keep_s:
                conn.setex(last_pop_key(user_id), keep_s,
                           json.dumps(message, ensure_ascii=False, default=str))
            else:
                conn.delete(last_pop_key(user_id))
        except redis.RedisError as exc:
            log.warning("cannot keep the screen pop of agent %s: %s", user_id, exc)

    def on_event(event: dict) -> None:
        if also is not None:
            also(event)
        send(call_channel(event["call_uuid"]), event)
        user_id = (event.get("target") or {}).get("user_id")
        if user_id is None:
            return
        kind = event["event"]
        base = {"type": "screen_pop", "call_uuid": event["call_uuid"],
                "agent_uuid": event.get("agent_uuid"), "pop": pop}
        if kind == "offer":
            message = {**base, "state": "ringing", "ring_timeout_s": event.get("ring_timeout_s")}
            keep = RINGING_KEEP_S
        elif kind == "answered":
            message, keep = {**base, "state": "answered"}, ANSWERED_KEEP_S
        elif kind == "try":
            message, keep = {**base, "state": "missed", "result": event.get("result")}, 0
        else:
            return
        remember(user_id, message, keep)
        send(agent_channel(user_id), message)

    return on_event
