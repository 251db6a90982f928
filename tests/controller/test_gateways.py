"""The console's gateway notice (cc:gateways, webui/lines/reload.py) carried out by a real
controller on two simswitch nodes: killgw where the old gateway was, rescan ~2 s later where
the new one is, a rescan on every link-up, a node that was down catching up, and gateway
names that are no gateway names never reaching a command line."""

from __future__ import annotations

import json
import socket
import time

import gevent
import redis

from controller.esl import EslError, NodeLink
from controller.gateways import KILL_TO_RESCAN_S, parse_notice
from core.redis_conn import GATEWAYS_CHANNEL
from core.settings import FsNode
from tests.controller.conftest import wait_until

KILL = "profile external killgw gw1"
RESCAN = "profile external rescan"


class Jobs:
    """Every BACKGROUND_JOB a node fires, seen on a second Event Socket connection:
    (arrival time, command arguments, output)."""

    def __init__(self, port: int):
        self.seen: list[tuple[float, str, str]] = []
        self.link = NodeLink(FsNode("watch", "127.0.0.1", port, "ClueCon"),
                             events=("BACKGROUND_JOB",), on_event=self._on_event)
        self._runner = gevent.spawn(self.link.run)
        assert self.link.up.wait(5)

    def _on_event(self, _node, headers, body):
        if headers.get("Job-Command") == "sofia":
            self.seen.append((time.monotonic(), headers.get("Job-Command-Arg", ""), body or ""))

    def commands(self) -> list[str]:
        return [arg for _, arg, _ in self.seen]

    def stop(self):
        self.link.stop()
        self._runner.kill()


def two_nodes(world):
    from controller.service import build

    sw1, sw2 = world.simswitch({}), world.simswitch({})
    jobs = {"fs1": Jobs(sw1.port), "fs2": Jobs(sw2.port)}
    settings, _ = world.settings(
        0, FS_NODES=f"fs1=127.0.0.1:{sw1.port}:ClueCon,fs2=127.0.0.1:{sw2.port}:ClueCon")
    ctl = build(settings, tick=0.02, reload_s=0.5).start()
    world.controllers.append(ctl)
    return ctl, {"fs1": sw1, "fs2": sw2}, jobs


def publish(world, notice: dict) -> None:
    redis.Redis.from_url(world.redis_url).publish(GATEWAYS_CHANNEL, json.dumps(notice))


def test_a_line_change_kills_the_old_gateway_and_rescans_where_the_new_one_is(world):
    ctl, sims, jobs = two_nodes(world)
    try:
        # Every link-up rescans: a node that missed notices while no controller was linked.
        wait_until(lambda: all(j.commands() == [RESCAN] for j in jobs.values()), 10)
        for j in jobs.values():
            assert j.seen[0][2] == "Reload XML [Success]\n+OK scan complete\n"
            j.seen.clear()

        # The line's gateway was served to every node; now it is pinned to fs1.
        publish(world, {"line_id": 7, "kill": {"gateway": "gw1", "fs_node": None},
                        "rescan": {"fs_node": "fs1"}})
        wait_until(lambda: jobs["fs1"].commands() == [KILL, RESCAN], 10)
        gevent.sleep(0.5)
        assert jobs["fs2"].commands() == [KILL]  # killed there, not served there any more
        (killed, _, said), (rescanned, _, rescan_said) = jobs["fs1"].seen
        assert said == "+OK gateway marked for deletion.\n"
        assert rescan_said == "Reload XML [Success]\n+OK scan complete\n"
        # The rescan waits for mod_sofia to remove the killed gateway (it re-adds it fresh).
        assert rescanned - killed >= KILL_TO_RESCAN_S - 0.1
        assert sims["fs1"].switch.gateways.find("gw1") is not None
        assert sims["fs2"].switch.gateways.find("gw1") is None

        # A name that is no gateway name never reaches a command; the rescan still runs.
        for j in jobs.values():
            j.seen.clear()
        publish(world, {"line_id": 8, "kill": {"gateway": "gw1 all\nhupall", "fs_node": None},
                        "rescan": {"fs_node": None}})
        wait_until(lambda: all(j.commands() == [RESCAN] for j in jobs.values()), 10)
        gevent.sleep(0.3)
        assert all(j.commands() == [RESCAN] for j in jobs.values())
    finally:
        for j in jobs.values():
            j.stop()


def test_a_node_whose_link_was_down_gets_the_kill_it_missed_when_it_comes_back(world):
    ctl, sims, jobs = two_nodes(world)
    try:
        wait_until(lambda: all(j.commands() == [RESCAN] for j in jobs.values()), 10)
        for j in jobs.values():
            j.seen.clear()
        link = ctl.links["fs2"]
        connect = link._connect
        link._connect = lambda: (_ for _ in ()).throw(EslError("node unreachable"))
        link._conn.sock.shutdown(socket.SHUT_RDWR)
        wait_until(lambda: not link.up.is_set(), 5)

        publish(world, {"line_id": 7, "kill": {"gateway": "gw1", "fs_node": "fs2"},
                        "rescan": None})
        gevent.sleep(1.0)
        assert jobs["fs2"].commands() == [] and jobs["fs1"].commands() == []
        assert ctl.gateways.missed["fs2"] == ["gw1"]

        link._connect = connect
        wait_until(lambda: jobs["fs2"].commands() == [KILL, RESCAN], 15)
        assert sims["fs2"].switch.gateways.find("gw1") is not None  # killed, then re-read
        assert jobs["fs1"].commands() == []
    finally:
        for j in jobs.values():
            j.stop()


def test_notices_are_checked_before_anything_is_sent():
    notice = parse_notice(json.dumps({"line_id": 3, "kill": {"gateway": "trunk-1.a",
                                                             "fs_node": "fs1"},
                                      "rescan": {"fs_node": None}}))
    assert (notice.kill, notice.kill_node, notice.rescan, notice.rescan_node) == \
        ("trunk-1.a", "fs1", True, None)
    assert notice.kills_on("fs1") and not notice.kills_on("fs2")
    assert notice.rescans_on("fs2")
    for bad in ("../x", "gw 1", "gw1;hupall", "", None, 7, "-gw"):
        assert parse_notice(json.dumps({"kill": {"gateway": bad}})).kill is None
    assert parse_notice(b"not json") is None and parse_notice("[1]") is None
    assert parse_notice(json.dumps({"line_id": 1, "kill": None, "rescan": None})) == \
        parse_notice(json.dumps({"line_id": 1}))
