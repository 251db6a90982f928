"""A controller stand-in for the browser test: a simswitch with one agent (1001, answers
after 3 s), a customer call answered and parked under a given uuid, then a real transfer
(controller.transfer.service.transfer_call) whose events reach the console through Redis.

    python -m tests.browser.transfer_driver REDIS_URL DATABASE_URL CALL_UUID
Prints the transfer record as JSON.
"""

import json
import sys
import tempfile
from pathlib import Path

import gevent
import redis
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from controller.esl import NodeLink
from controller.transfer import EslEvents
from controller.transfer.service import transfer_call
from core.presence import Presence
from core.settings import FsNode
from simswitch import SimSwitch

SCENARIO = {
    "seed": 1, "gateways": {"gw1": {"proxy": "203.0.113.5", "state": "REGED"}},
    "distribution": [{"outcome": "talk", "weight": 1}],
    "outcomes": {"talk": {"result": "answer", "after": 0.2, "hangup_after": 60}},
    "agents": {"1001": {"answer_after": 3}},
}


def main(redis_url: str, db_url: str, call_uuid: str) -> None:
    tmp = Path(tempfile.mkdtemp())
    (tmp / "scenario.json").write_text(json.dumps(SCENARIO))
    sw = SimSwitch("127.0.0.1", 0, "ClueCon", scenario=tmp / "scenario.json",
                   recordings_dir=tmp / "rec", heartbeat=False).start()
    events = EslEvents()
    link = NodeLink(FsNode("sim", "127.0.0.1", sw.port, "ClueCon"), on_event=events.feed)
    runner = gevent.spawn(link.run)
    if not link.up.wait(10):
        raise SystemExit("no ESL link to simswitch")
    reply = link.api(f"originate {{origination_uuid={call_uuid}}}sofia/gateway/gw1/"
                     "13800138000 &park()", timeout=30)
    assert reply.startswith("+OK"), reply
    conn = redis.Redis.from_url(redis_url)
    engine = sa.create_engine(db_url)
    result = transfer_call(sessionmaker(engine, expire_on_commit=False), link, events,
                           Presence(conn), conn, call_uuid)
    print(json.dumps(result.record, ensure_ascii=False), flush=True)
    gevent.sleep(1)
    link.stop()
    runner.kill()
    sw.stop()
    engine.dispose()


if __name__ == "__main__":
    main(*sys.argv[1:4])
