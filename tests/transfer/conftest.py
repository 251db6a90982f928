"""A fast-clock simswitch with agents (user/<ext>), a real NodeLink to it whose events feed
an EslEvents, real Redis presence, and a customer call answered and parked."""

import json
import random

import gevent
import pytest
import redis

from controller.esl import NodeLink
from controller.transfer import EslEvents
from core.presence import Presence
from core.settings import FsNode
from simswitch import SimSwitch
from simswitch.clock import FastClock

SPEED = 10.0

# 1001 answers after 2 s, 1002 never answers, 1003 is not registered, 1004 answers at once.
AGENTS = {"1001": {"answer_after": 2}, "1002": {"answers": False},
          "1003": {"registered": False}, "1004": {"answer_after": 0.5},
          "1005": {"answer_after": 1}}
SCENARIO = {
    "seed": 1,
    "gateways": {"gw1": {"proxy": "203.0.113.5", "state": "REGED"}},
    "numbers": {"95555": "talk", "95556": "busy"},
    "distribution": [{"outcome": "talk", "weight": 1}],
    "outcomes": {"talk": {"result": "answer", "after": 0.5, "hangup_after": 600},
                 "busy": {"result": "busy", "after": 1}},
    "agents": AGENTS,
}


class Harness:
    def __init__(self, switch, link, events, presence, conn):
        self.switch, self.link, self.events = switch, link, events
        self.presence, self.conn = presence, conn
        self.seen = []

    def customer(self, number="13800000001") -> str:
        reply = self.link.api(f"originate sofia/gateway/gw1/{number} &park()", timeout=30)
        assert reply.startswith("+OK"), reply
        return reply.split()[1]

    def on_event(self, event):
        self.seen.append(event)

    def agents_online(self, *user_ids, registered=True):
        for uid in user_ids:
            self.presence.set_state(uid, "available")
            self.presence.set_registered(uid, registered)

    def bridged(self, uuid) -> str | None:
        sess = self.switch.switch.get(uuid)
        other = sess.ch.other if sess else None
        return other.uuid if other is not None else None


@pytest.fixture
def harness(tmp_path, redis_url):
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(SCENARIO))
    sw = SimSwitch("127.0.0.1", 0, "ClueCon", scenario=path, recordings_dir=tmp_path / "rec",
                   clock=FastClock(SPEED), heartbeat=False).start()
    events = EslEvents()
    link = NodeLink(FsNode("sim", "127.0.0.1", sw.port, "ClueCon"), events=("ALL",),
                    on_event=events.feed)
    runner = gevent.spawn(link.run)
    assert link.up.wait(10)
    conn = redis.Redis.from_url(redis_url)
    presence = Presence(conn, wrap_up_s=5, max_missed=2)
    yield Harness(sw, link, events, presence, conn)
    link.stop()
    runner.kill()
    sw.stop()


@pytest.fixture
def rng():
    return random.Random(7)
