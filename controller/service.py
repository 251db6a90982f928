"""The controller process: a link to every FreeSWITCH node and the dialer on top of them.

Node health is published in Redis (hash `cc:nodes`) so that the console and other
controllers see which nodes take calls. `build()` wires the parts without starting them
(tests and the benchmark use it in-process); `run()` is the process entry point.
"""

from __future__ import annotations

import json
import logging
import signal
from dataclasses import dataclass

import gevent
import gevent.event
import redis

from controller.dialer import Dialer
from controller.esl import NodeLink
from controller.events import SUBSCRIBE
from controller.handoff import AnswerHandler, opening_prompt
from controller.store import Store
from core import clock
from core.db import session_factory
from core.pacing import RateLimiter
from core.redis_conn import connect
from core.settings import Settings

log = logging.getLogger(__name__)

NODES_KEY = "cc:nodes"


def _reporter(conn: redis.Redis):
    def on_state(node: str, up: bool) -> None:
        try:
            conn.hset(NODES_KEY, node, json.dumps({"up": up, "since": clock.now().isoformat()}))
        except redis.RedisError as exc:
            log.warning("cannot record node %s state in Redis: %s", node, exc)
    return on_state


def node_filters(controller_id: str) -> tuple[tuple[str, str], ...]:
    """Only this controller's channels (every leg it creates carries cc_controller), plus
    job results and heartbeats, which have no channel. Filters OR (PROTOCOL.md §3.2)."""
    return (("Event-Name", "BACKGROUND_JOB"), ("Event-Name", "HEARTBEAT"),
            ("variable_cc_controller", controller_id))


@dataclass
class Controller:
    links: dict[str, NodeLink]
    dialer: Dialer
    greenlets: list[gevent.Greenlet]

    def start(self) -> Controller:
        self.dialer.start()
        self.greenlets = [gevent.spawn(link.run) for link in self.links.values()]
        return self

    def stop(self) -> None:
        self.dialer.stop()
        for link in self.links.values():
            link.stop()
        gevent.killall(self.greenlets, timeout=5)


def build(settings: Settings, conn: redis.Redis | None = None,
          handler: AnswerHandler = opening_prompt, **dialer_options) -> Controller:
    conn = conn or connect(settings.redis_url)
    store = Store(session_factory(settings.database_url), settings.controller_id,
                  settings.recordings_dir)
    report = _reporter(conn)
    links: dict[str, NodeLink] = {}
    dialer_options.setdefault("cps", settings.freeswitch.sessions_per_second)
    dialer = Dialer(store, conn, links, handler=handler, **dialer_options)

    def on_state(node: str, up: bool) -> None:
        report(node, up)
        dialer.on_link(node, up)

    for node in settings.fs_nodes:
        links[node.name] = NodeLink(node, events=SUBSCRIBE,
                                    filters=node_filters(settings.controller_id),
                                    on_event=dialer.on_esl, on_state=on_state)
        report(node.name, False)
    dialer.limiters = {name: RateLimiter(dialer.cps, max(1.0, dialer.cps / 10))
                       for name in links}
    return Controller(links, dialer, [])


def run(settings: Settings) -> None:
    controller = build(settings).start()
    log.info("controller %s started for nodes: %s", settings.controller_id,
             ", ".join(n.name for n in settings.fs_nodes))
    stopping = gevent.event.Event()
    gevent.signal_handler(signal.SIGTERM, stopping.set)
    gevent.signal_handler(signal.SIGINT, stopping.set)
    try:
        stopping.wait()
    finally:
        controller.stop()
