"""The controller's side of the after-call rules: a rule that breaks (on PostgreSQL a
database error aborts the transaction) must not lose the call's final row, and a status the
CDR gives later re-runs the rules (Store.reconcile_statuses)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import select

from controller.store import Store
from core.enums import CallStatus, NumberState
from core.models import Call, Outbox, PostCallRule, SmsTemplate, TaskNumber
from tests.controller.conftest import wait_until
from tests.core.test_cdr import busy_cdr


def rule(world, task_id: int, status: str, template_id: int | None = None) -> int:
    """A post-call rule "status is <status> → hang-up SMS" (a template of its own unless
    `template_id`)."""
    with world.sessions() as s:
        task_account = s.scalar(select(TaskNumber.account_id).where(
            TaskNumber.task_id == task_id).limit(1))
        if template_id is None:
            template = SmsTemplate(account_id=task_account, name="t", signature="云帆",
                                   body="感谢接听")
            s.add(template)
            s.flush()
            template_id = template.id
        s.add(PostCallRule(account_id=task_account, name=f"{status} 发短信", conditions={
            "match": "all", "items": [{"field": "status", "op": "in", "value": [status]}]},
            actions=[{"type": "sms", "template_id": template_id}]))
        s.commit()
        return template_id


def test_a_rule_that_breaks_on_postgresql_does_not_lose_the_final_row(pg_world, caplog):
    world = pg_world
    sw = world.simswitch({"13800000001": "talk"})
    task_id, _ = world.seed(["13800000001"])
    # A template id no key can hold (Outbox.key is 160 characters): on PostgreSQL the
    # INSERT fails and would abort the whole transaction of the call's final row.
    rule(world, task_id, "answered", template_id=10 ** 170)
    caplog.set_level(logging.ERROR, logger="core.cdr")
    world.controller(sw.port)
    wait_until(lambda: [c.state for c in world.calls(task_id)] == ["ended"], 30)
    (call,) = world.calls(task_id)
    assert call.status == CallStatus.ANSWERED
    (number,) = world.numbers(task_id)
    assert number.state == NumberState.DONE and number.last_status == CallStatus.ANSWERED
    wait_until(lambda: "after-call rules failed" in caplog.text, 5)
    with world.sessions() as s:
        assert s.scalars(select(Outbox)).all() == []


def test_a_status_the_cdr_gives_later_runs_the_rules_again(world):
    """The controller ended the attempt without its hang-up (no status); the CDR came and
    filled the SIP code and cause — say a console whose CDR endpoint did not queue the
    rules. The dialer's reconciliation settles the number and queues the rules on the
    status now known."""
    task_id, _ = world.seed(["13800000001"])
    template_id = rule(world, task_id, "busy")
    store = Store(world.sessions, "ctl-test", world.tmp / "rec")
    with world.sessions() as s:
        number = s.scalar(select(TaskNumber).where(TaskNumber.task_id == task_id))
        number.state, number.attempts = NumberState.DONE, 1
        cdr = busy_cdr("call-1")
        s.add(Call(account_id=number.account_id, uuid="call-1", task_id=task_id,
                   task_number_id=number.id, controller="ctl-test", state="ended",
                   phone=number.phone, sip_code=486, hangup_cause="USER_BUSY", cdr=cdr,
                   ended_at=datetime.now(UTC)))
        s.commit()
    assert store.reconcile_statuses() == 1
    with world.sessions() as s:
        call = s.scalar(select(Call).where(Call.uuid == "call-1"))
        assert call.status == CallStatus.BUSY
        assert s.get(TaskNumber, call.task_number_id).last_status == CallStatus.BUSY
        assert [j.args[:2] for j in s.scalars(select(Outbox))] == [[call.id, template_id]]
    assert store.reconcile_statuses() == 0  # settled: nothing to do again
