"""Redis connections are always made from settings and passed explicitly, never global."""

from __future__ import annotations

import json
import logging

import redis

log = logging.getLogger(__name__)

TASK_CHANNEL = "cc:tasks"  # the console tells controllers a task changed
# The console tells controllers which gateway to kill and where to rescan after a line
# changed (webui/lines/reload.py publishes, controller/gateways.py acts on it).
GATEWAYS_CHANNEL = "cc:gateways"


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10)


def publish_task_change(conn: redis.Redis, task_id: int, state: str) -> bool:
    """Tell controllers to re-read a task. The database is the truth: when Redis is down the
    controller still picks the change up on its next periodic read, so failure only logs."""
    try:
        conn.publish(TASK_CHANNEL, json.dumps({"task_id": task_id, "state": state}))
        return True
    except redis.RedisError as exc:
        log.warning("could not publish change of task %s: %s", task_id, exc)
        return False
