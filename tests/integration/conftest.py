"""The whole controller against simswitch: scripts, agents and after-call rules in the
database, real speech from the callee (espeak-ng), the product's answer handler."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
import redis
from sqlalchemy import select

from core import clock
from core.dialogue import schema
from core.enums import Role, TransferStrategy
from core.models import (
    Account,
    Call,
    DialogueTurn,
    Outbox,
    PostCallRule,
    Script,
    ScriptVersion,
    SmsTemplate,
    TransferGroup,
    TransferGroupMember,
    User,
)
from core.presence import Presence
from tests.controller.conftest import world  # noqa: F401 — the fixture, shared
from tests.dialogue import audio as A

SPEED = 8.0  # simswitch's clock: audio, prompts and ring times 8× faster than real


def example_script() -> dict:
    return copy.deepcopy(schema.EXAMPLE)


def account_id(w) -> int:
    with w.sessions() as s:
        acct = s.scalar(select(Account).limit(1))
        if acct is None:
            acct = Account(name="acme")
            s.add(acct)
            s.commit()
        return acct.id


def add_script(w, body: dict, name: str = "s") -> int:
    """A script with one version, created a minute ago (before any task starts)."""
    acct = account_id(w)
    with w.sessions() as s:
        script = Script(account_id=acct, name=name, current_version=1)
        s.add(script)
        s.flush()
        s.add(ScriptVersion(account_id=acct, script_id=script.id, version=1, body=body,
                            created_at=clock.now() - timedelta(minutes=1)))
        s.commit()
        return script.id


def add_group(w, extensions: list[str], ring_timeout_s: int = 4) -> tuple[int, list[int]]:
    """A transfer group (order strategy) of agents with these extensions."""
    acct = account_id(w)
    with w.sessions() as s:
        group = TransferGroup(account_id=acct, name="sales", strategy=TransferStrategy.ORDER,
                              ring_timeout_s=ring_timeout_s)
        s.add(group)
        s.flush()
        ids = []
        for pos, ext in enumerate(extensions):
            user = User(account_id=acct, username=f"agent{ext}", role=Role.AGENT,
                        sip_extension=ext, sip_password="pw", display_name=f"坐席{ext}")
            user.set_password("agent-pass-123")
            s.add(user)
            s.flush()
            s.add(TransferGroupMember(account_id=acct, group_id=group.id, user_id=user.id,
                                      position=pos))
            ids.append(user.id)
        s.commit()
        return group.id, ids


def agents_online(w, user_ids) -> Presence:
    presence = Presence(redis.Redis.from_url(w.redis_url))
    for uid in user_ids:
        presence.set_state(uid, "available")
        presence.set_registered(uid, True)
    return presence


def sms_rule_on_grade(w, grade: str = "A") -> tuple[int, int]:
    """Post-call rule "grade is <grade> → hang-up SMS"; returns (rule id, template id)."""
    acct = account_id(w)
    with w.sessions() as s:
        template = SmsTemplate(account_id=acct, name="感谢", signature="云帆", body="感谢接听")
        s.add(template)
        s.flush()
        rule = PostCallRule(account_id=acct, name="A 类发短信",
                            conditions={"match": "all", "items": [
                                {"field": "grade", "op": "in", "value": [grade]}]},
                            actions=[{"type": "sms", "template_id": template.id}])
        s.add(rule)
        s.commit()
        return rule.id, template.id


def turns(w, call_id: int) -> list[DialogueTurn]:
    with w.sessions() as s:
        return list(s.scalars(select(DialogueTurn).where(DialogueTurn.call_id == call_id)
                              .order_by(DialogueTurn.seq)))


def outbox(w, call_id: int) -> list[Outbox]:
    with w.sessions() as s:
        return list(s.scalars(select(Outbox).where(Outbox.call_id == call_id)))


def only_call(w, task_id: int) -> Call:
    calls = w.calls(task_id)
    assert len(calls) == 1, [(c.phone, c.state) for c in calls]
    return calls[0]


@pytest.fixture
def voice(world):  # noqa: F811 — the fixture imported above
    """Write an espeak-ng utterance beside the scenario files; returns a callee `say`."""
    A.require_espeak()

    def say(text: str) -> dict:
        name = f"u{abs(hash(text))}.wav"
        A.write(world.tmp / name, A.speech(text))
        return {"file": name, "text": text}
    return say


def set_variables(w, task_id: int, variables: dict) -> None:
    """Give every number of the task these imported variables (姓名 …)."""
    from core.models import TaskNumber

    with w.sessions() as s:
        for number in s.scalars(select(TaskNumber).where(TaskNumber.task_id == task_id)):
            number.variables = dict(variables)
        s.commit()


def callee(steps: list, **extra) -> dict:
    """A simswitch outcome: answers, then says `steps` (scenario callee steps)."""
    return {"result": "answer", "after": 0.5, "noise_dbfs": -60, "hangup_after": 120,
            "callee": steps, **extra}
