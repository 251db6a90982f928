"""The controller process: a link to every FreeSWITCH node, the dialer on top of them, the
AI dialogue on every answered call and the transfer to agents.

    NodeLink.on_event ─┬─ Dialer.on_esl   (queue → router → the call's driver → its handler)
                       ├─ Transfers.feed  (job results and hang-ups the transfer waits on)
                       └─ GatewayReloads.feed  (the results of killgw / rescan, logged)
    NodeLink.on_state ─┬─ Dialer.on_link  (resync)
                       └─ GatewayReloads.on_link  (rescan: a node that missed a notice)
    answered call → Transfers.predictive(Conversations)   (controller/conversation.py)
    cc:gateways notice → GatewayReloads   (controller/gateways.py)

Node health is published in Redis (hash `cc:nodes`) so that the console and other
controllers see which nodes take calls. `build()` wires the parts without starting them
(tests and the benchmark use it in-process); `Controller.start()` starts the media server,
the dialer and the links; `run()` is the process entry point (SIGTERM / SIGINT stop it).
"""

from __future__ import annotations

import json
import logging
import signal
import time
from dataclasses import dataclass

import gevent
import gevent.event
import redis

from controller.conversation import Conversations
from controller.dialer import Dialer
from controller.esl import NodeLink
from controller.events import SUBSCRIBE
from controller.gateways import GatewayReloads
from controller.handoff import AnswerHandler
from controller.store import Store
from controller.transfer.hook import Transfers
from core import clock
from core.db import session_factory
from core.pacing import RateLimiter
from core.presence import Presence
from core.redis_conn import connect
from core.settings import Settings

log = logging.getLogger(__name__)

NODES_KEY = "cc:nodes"
RESYNC_FIRST_S = 3.0  # how long start-up waits for the nodes' resync before the media


def _reporter(conn: redis.Redis):
    def on_state(node: str, up: bool) -> None:
        try:
            conn.hset(NODES_KEY, node, json.dumps({"up": up, "since": clock.now().isoformat()}))
        except redis.RedisError as exc:
            log.warning("cannot record node %s state in Redis: %s", node, exc)
    return on_state


def node_filters(controller_id: str) -> tuple[tuple[str, str], ...]:
    """Only this controller's channels (every leg it creates, agents' legs too, carries
    cc_controller), plus what carries no channel variables: job results and heartbeats
    (no channel at all) and DTMF (a channel event without variable_* headers, PROTOCOL.md
    §5.3 — the router drops other channels' digits). Filters OR (PROTOCOL.md §3.2)."""
    return (("Event-Name", "BACKGROUND_JOB"), ("Event-Name", "HEARTBEAT"),
            ("Event-Name", "DTMF"), ("variable_cc_controller", controller_id))


@dataclass
class Controller:
    links: dict[str, NodeLink]
    dialer: Dialer
    greenlets: list[gevent.Greenlet]
    gateways: GatewayReloads
    transfers: Transfers | None = None
    conversations: Conversations | None = None  # None when build() was given a handler

    def start(self) -> Controller:
        self.gateways.start()
        self.dialer.start(dial=self.conversations is None)
        self.greenlets = [gevent.spawn(link.run) for link in self.links.values()]
        if self.conversations is not None:
            # Loading the VAD takes seconds of CPU and holds the whole process: after a
            # restart, take back the live calls first (resync), then start the media server
            # (a failure to do so stops start-up here) and dial.
            deadline = time.monotonic() + RESYNC_FIRST_S
            while not self.dialer.resynced() and time.monotonic() < deadline:
                gevent.sleep(0.05)
            self.conversations.start()
            self.dialer.open()
        return self

    def stop(self) -> None:
        self.dialer.stop()
        self.gateways.stop()
        for link in self.links.values():
            link.stop()
        gevent.killall(self.greenlets, timeout=5)
        if self.conversations is not None:
            self.conversations.stop()


def build(settings: Settings, conn: redis.Redis | None = None,
          handler: AnswerHandler | None = None, **dialer_options) -> Controller:
    """Wire a controller. Without `handler` answered calls get the AI dialogue (with the
    predictive transfer in front of it); tests may pass their own."""
    conn = conn or connect(settings.redis_url)
    sessions = session_factory(settings.database_url)
    store = Store(sessions, settings.controller_id, settings.recordings_dir)
    presence = Presence(conn, wrap_up_s=settings.agents.wrap_up_s,
                        max_missed=settings.agents.max_missed)
    transfers = Transfers(sessions, presence, conn, controller_id=settings.controller_id,
                          mask=settings.agents.phone_mask)
    conversations = None
    if handler is None:
        conversations = Conversations(sessions, settings, transfers)
        handler = transfers.predictive(conversations)
    report = _reporter(conn)
    links: dict[str, NodeLink] = {}
    dialer_options.setdefault("cps", settings.freeswitch.sessions_per_second)
    dialer_options.setdefault("detector", settings.cpa_detector)
    dialer = Dialer(store, conn, links, handler=handler, presence=presence, **dialer_options)
    gateways = GatewayReloads(conn, links)

    def on_state(node: str, up: bool) -> None:
        report(node, up)
        dialer.on_link(node, up)
        gateways.on_link(node, up)

    def on_event(node: str, headers: dict, body: str | None) -> None:
        # greenswitch's dispatch greenlet: these only store and wake (NodeLink docs).
        dialer.on_esl(node, headers, body)
        transfers.feed(node, headers, body)
        gateways.feed(node, headers, body)

    for node in settings.fs_nodes:
        links[node.name] = NodeLink(node, events=SUBSCRIBE,
                                    filters=node_filters(settings.controller_id),
                                    on_event=on_event, on_state=on_state)
        report(node.name, False)
    dialer.limiters = {name: RateLimiter(dialer.cps, max(1.0, dialer.cps / 10))
                       for name in links}
    return Controller(links, dialer, [], gateways, transfers, conversations)


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
