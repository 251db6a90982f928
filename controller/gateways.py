"""FreeSWITCH's gateways after a line changed: the console's notice, carried out on the nodes.

FreeSWITCH reads its gateways (sofia.conf, from the console through mod_xml_curl) only when
the external profile is scanned, and a gateway it already runs keeps its old settings until
it is killed. The console (webui/lines/reload.py) cannot talk to FreeSWITCH, so it publishes
on `cc:gateways` (core.redis_conn.GATEWAYS_CHANNEL):

    {"line_id": 7, "kill": {"gateway": "gw1", "fs_node": null} | null,
     "rescan": {"fs_node": "fs1"} | null}                  # fs_node null: every node

and every controller carries it out on the nodes it is linked to: `bgapi sofia profile
external killgw <gateway>` where the old gateway was served, then, `KILL_TO_RESCAN_S` later
(mod_sofia removes a killed gateway in its next gateway checks, about a second each),
`bgapi sofia profile external rescan` where the new one is served. Several controllers
linked to one node each send the same commands; the second killgw answers `-ERR no such
gateway.` and a second rescan adds nothing, so that is harmless.

A node whose link is down misses the notice: its kills are kept and sent when the link
comes up, and every link-up rescans, so such a node catches up. (A FreeSWITCH that was
restarted has read every gateway afresh anyway; a kill kept for it costs the gateway a
moment's absence.) Notices are polled like the dialer's task notices; a lost one (Redis
down) is what the console's page shows as commands to run by hand.
"""

from __future__ import annotations

import json
import logging
import uuid as uuidlib
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

import gevent
import redis

from controller.esl import EslError, NodeLink
from core.redis_conn import GATEWAYS_CHANNEL
from fs_conf.gateways import GATEWAY_NAME

log = logging.getLogger(__name__)

PROFILE = "external"  # the profile trunks live on (fs_conf/templates/sip_profiles)
KILL_TO_RESCAN_S = 2.0
POLL_S = 0.2


def killgw(gateway: str) -> str:
    return f"sofia profile {PROFILE} killgw {gateway}"


RESCAN = f"sofia profile {PROFILE} rescan"


@dataclass(frozen=True)
class Notice:
    """One `cc:gateways` message, checked. A node of None means every node."""

    line_id: object
    kill: str | None = None  # the gateway to kill
    kill_node: str | None = None
    rescan: bool = False
    rescan_node: str | None = None

    def kills_on(self, node: str) -> bool:
        return self.kill is not None and self.kill_node in (None, node)

    def rescans_on(self, node: str) -> bool:
        return self.rescan and self.rescan_node in (None, node)


def parse_notice(data: bytes | str) -> Notice | None:
    """The notice in a message, or None (logged) when it is unreadable or names a gateway
    that is no gateway name: the name goes into an fs_cli command line, so nothing else may
    pass (fs_conf.gateways.GATEWAY_NAME)."""
    try:
        doc = json.loads(data)
    except ValueError:
        log.warning("gateway notice is not JSON: %r", data[:200])
        return None
    if not isinstance(doc, Mapping):
        log.warning("gateway notice is not an object: %r", doc)
        return None
    kill, rescan = doc.get("kill"), doc.get("rescan")
    notice = Notice(doc.get("line_id"))
    if isinstance(kill, Mapping):
        name = kill.get("gateway")
        if not isinstance(name, str) or not GATEWAY_NAME.match(name):
            log.warning("gateway notice of line %s: %r is not a gateway name; not killed",
                        notice.line_id, name)
        else:
            notice = Notice(notice.line_id, kill=name, kill_node=_node(kill))
    if isinstance(rescan, Mapping):
        notice = Notice(notice.line_id, notice.kill, notice.kill_node, rescan=True,
                        rescan_node=_node(rescan))
    return notice


def _node(part: Mapping) -> str | None:
    node = part.get("fs_node")
    return node if isinstance(node, str) and node else None


class GatewayReloads:
    """Acts on gateway notices for this controller's links (see the module doc).

    `start()` subscribes and runs the poller; `on_link(node, up)` goes beside the dialer's
    (NodeLink.on_state); `feed` beside its `on_esl` (logs the BACKGROUND_JOB results)."""

    def __init__(self, conn: redis.Redis, links: dict[str, NodeLink]):
        self.conn, self.links = conn, links
        self.missed: dict[str, list[str]] = defaultdict(list)  # node → gateways to kill
        self._jobs: dict[str, tuple[str, str]] = {}  # Job-UUID → (node, command)
        self._pubsub = None
        self._greenlet: gevent.Greenlet | None = None
        self._stopping = False

    def start(self) -> GatewayReloads:
        self._subscribe()
        self._greenlet = gevent.spawn(self._poll)
        return self

    def stop(self) -> None:
        self._stopping = True
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except redis.RedisError:
                pass

    # -- hooks ------------------------------------------------------------------------------

    def on_link(self, node: str, up: bool) -> None:
        """A node's link came up: send the kills it missed, then rescan it."""
        if up and not self._stopping:
            gevent.spawn(self._catch_up, node)

    def feed(self, node: str, headers: dict, body: str | None) -> None:
        if headers.get("Event-Name") != "BACKGROUND_JOB":
            return
        job = self._jobs.pop(headers.get("Job-UUID", ""), None)
        if job is not None:
            log.info("node %s: %s: %s", job[0], job[1], (body or "").strip().replace("\n", " "))

    # -- the work ---------------------------------------------------------------------------

    def apply(self, notice: Notice) -> None:
        """Kill where the notice says, then rescan where it says, on each linked node."""
        for node in self.links:
            kill, rescan = notice.kills_on(node), notice.rescans_on(node)
            if kill or rescan:
                gevent.spawn(self._reload, node, notice.kill if kill else None, rescan)

    def _reload(self, node: str, gateway: str | None, rescan: bool) -> None:
        if gateway is not None:
            if not self._send(node, killgw(gateway)):
                self.missed[node].append(gateway)
                return  # the link-up catches up with the kill and rescans
            gevent.sleep(KILL_TO_RESCAN_S)
        if rescan:
            self._send(node, RESCAN)

    def _catch_up(self, node: str) -> None:
        kills = list(dict.fromkeys(self.missed.pop(node, [])))
        failed = [g for g in kills if not self._send(node, killgw(g))]
        if failed:  # down again: the next link-up tries once more
            self.missed[node].extend(failed)
            return
        if kills:
            gevent.sleep(KILL_TO_RESCAN_S)
        self._send(node, RESCAN)

    def _send(self, node: str, command: str) -> bool:
        link = self.links.get(node)
        job = str(uuidlib.uuid4())
        self._jobs[job] = (node, command)
        try:
            link.bgapi(command, job_uuid=job)
        except EslError as exc:
            self._jobs.pop(job, None)
            log.warning("node %s: %s not sent: %s", node, command, exc)
            return False
        return True

    def _subscribe(self) -> None:
        try:
            self._pubsub = self.conn.pubsub(ignore_subscribe_messages=True)
            self._pubsub.subscribe(GATEWAYS_CHANNEL)
        except redis.RedisError as exc:
            log.warning("cannot subscribe to gateway notices (%s); retrying", exc)
            self._pubsub = None

    def _poll(self) -> None:
        # Non-blocking reads on a timer, as the dialer polls task notices: the socket read
        # never holds the hub (the process may run without gevent's monkey-patching).
        while not self._stopping:
            if self._pubsub is None:
                self._subscribe()
            try:
                while self._pubsub is not None:
                    message = self._pubsub.get_message(timeout=0.0)
                    if message is None:
                        break
                    notice = parse_notice(message["data"])
                    if notice is not None:
                        log.info("gateway notice of line %s: kill %s on %s, rescan %s",
                                 notice.line_id, notice.kill, notice.kill_node or "every node",
                                 (notice.rescan_node or "every node") if notice.rescan
                                 else "nowhere")
                        self.apply(notice)
            except redis.RedisError as exc:
                log.warning("gateway notices lost (%s): re-subscribing", exc)
                self._pubsub = None
            gevent.sleep(POLL_S)
