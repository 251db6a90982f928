"""After the call, end to end: the dialer dials simswitch, the final row writes the outbox,
the relay hands it to rq and a real rq worker process (`manage run worker --burst`) does
the job — the SMS a script node asked for, sent once, and a post-call redial that the task
waits for instead of finishing under it."""

from __future__ import annotations

import os

import gevent
import pytest
import redis
from sqlalchemy import select

from core import clock
from core.db import session_factory
from core.enums import TaskState
from core.models import Outbox, PostCallRule, ProviderConfig, SmsMessage, SmsTemplate
from core.settings import ROOT
from tests.controller.conftest import wait_until
from tests.integration.conftest import (
    SPEED,
    account_id,
    add_script,
    callee,
    example_script,
    only_call,
    outbox,
    sms_rule_on_grade,
)
from tests.integration.test_dialogue_calls import finished
from tests.workers.fake_http import FakeServer
from tests.workers.test_after_call import run_worker
from workers.relay import relay_once

pytestmark = pytest.mark.slow


def deliver(world) -> int:
    """The relay, then one burst of a real rq worker process; returns how many jobs the
    relay handed over (a burst worker with nothing to do exits with 1)."""
    relayed = relay_once(session_factory(world.db_url), redis.Redis.from_url(world.redis_url))
    _, env = world.settings(world.sims[0].port)
    done = run_worker({**os.environ, **env, "PYTHONPATH": str(ROOT)})
    assert done.returncode == (0 if relayed else 1), done.stderr.decode()[-2000:]
    return relayed


def sms_gateway(world, url: str) -> None:
    """Every template of the account sends through an HTTP SMS gateway at `url`."""
    with world.sessions() as s:
        provider = ProviderConfig(account_id=account_id(world), channel="sms", kind="http",
                                  name="gw", is_default=True,
                                  settings={"url": url + "/send", "method": "POST",
                                            "body": '{"to": "{phone}", "text": "{text}"}',
                                            "id_field": "id"})
        s.add(provider)
        s.flush()
        for template in s.scalars(select(SmsTemplate)):
            template.provider_id = provider.id
        s.commit()


def test_the_sms_a_script_node_asks_for_is_sent_once_after_the_call(world, voice):
    sent = []
    with FakeServer(lambda req: (sent.append(req.json()) or 200,
                                 {"ok": True, "id": f"g-{len(sent)}"})) as gateway:
        # The CDR is posted too: it finalises the call again (core.cdr), which must not
        # write anything twice.
        sw = world.simswitch({"13800000001": "c"}, speed=SPEED, cdr=True,
                             outcomes={"c": callee([
                                 {"say": voice("是我，你说吧"), "after_prompt": 1, "delay": 0.3},
                                 {"say": voice("可以，我有兴趣"), "after_prompt": 2,
                                  "delay": 0.3}])})
        rule_id, rule_template = sms_rule_on_grade(world, "A")  # 感谢接听, by a rule
        with world.sessions() as s:
            brochure = SmsTemplate(account_id=account_id(world), name="资料", signature="云帆",
                                   body="宽带提速详情见 https://example.com/t")
            s.add(brochure)
            s.commit()
            brochure_id = brochure.id
        sms_gateway(world, gateway.url)
        body = example_script()
        body["nodes"]["interested"]["actions"].insert(
            0, {"type": "sms", "template_id": brochure_id})
        script_id = add_script(world, body)
        task_id, _ = world.seed(["13800000001"], script_id=script_id, started_at=clock.now())
        world.controller(sw.port, handler=None)
        finished(world, task_id)
        call = only_call(world, task_id)
        wait_until(lambda: world.cdr.count >= 1, 20)

        assert call.grade == "A"
        assert sorted(j.key for j in outbox(world, call.id)) == sorted([
            f"call:{call.id}:rule:{rule_id}:sms:{rule_template}",
            f"call:{call.id}:script:sms:{brochure_id}"])
        assert deliver(world) == 2
        assert deliver(world) == 0  # a second relay and worker run find nothing more to do
        assert sorted(m["text"] for m in sent) == ["【云帆】宽带提速详情见 https://example.com/t",
                                                   "【云帆】感谢接听"]
        assert {m["to"] for m in sent} == {"13800000001"}
        with world.sessions() as s:
            messages = s.scalars(select(SmsMessage).where(SmsMessage.call_id == call.id)).all()
            assert sorted(m.template_id for m in messages) == sorted([brochure_id,
                                                                      rule_template])
            assert {m.state for m in messages} == {"sent"}
            assert {j.state for j in s.scalars(select(Outbox))} == {"done"}


def test_a_task_does_not_finish_under_a_post_call_redial(world):
    sw = world.simswitch({"13800000001": "talk"}, speed=SPEED)
    task_id, _ = world.seed(["13800000001"])
    with world.sessions() as s:
        rule = PostCallRule(account_id=account_id(world), task_id=task_id, name="接通就重呼",
                            conditions={"match": "all", "items": [
                                {"field": "status", "op": "in", "value": ["answered"]}]},
                            actions=[{"type": "redial", "delay_minutes": 0}])
        s.add(rule)
        s.commit()
        rule_id = rule.id
    world.controller(sw.port)
    wait_until(lambda: len(world.calls(task_id)) == 1
               and world.calls(task_id)[0].state == "ended", 30)
    (first,) = world.calls(task_id)
    assert [j.job for j in outbox(world, first.id)] == ["workers.after_call.redial"]
    # Its only number is done, but the redial will bring it back: the task waits (the
    # dialer looks whether it is done about every second).
    gevent.sleep(2.5)
    assert world.task(task_id).state == TaskState.RUNNING

    with world.sessions() as s:
        s.get(PostCallRule, rule_id).enabled = False  # the second call asks for no redial
        s.commit()
    assert deliver(world) == 1  # the number goes back to the queue, and is dialled again
    finished(world, task_id)
    calls = world.calls(task_id)
    assert len(calls) == 2 and all(c.status == "answered" for c in calls)
    assert world.numbers(task_id)[0].attempts == 2
