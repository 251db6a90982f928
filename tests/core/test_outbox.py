"""enqueue_after_call: which outbox rows a finalised call gets, written once."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import make_engine
from core.models import Call, LeadAllocationRule, Outbox, PostCallRule, QuotaRule, Task
from core.outbox import enqueue_after_call
from tests import factories as f

A = {"items": [{"field": "grade", "op": "in", "value": ["A"]}]}


def test_task_and_account_rules_allocation_and_quota(any_db_url):
    engine = make_engine(any_db_url)
    with Session(engine) as s:
        acct = f.account(s, "A")
        other = f.account(s, "B")
        task = Task(account_id=acct.id, name="t")
        s.add(task)
        s.flush()
        alloc = LeadAllocationRule(account_id=acct.id, name="r", grades={})
        s.add(alloc)
        s.flush()
        task.lead_allocation = {"rule_id": alloc.id}
        s.add_all([
            PostCallRule(account_id=acct.id, task_id=task.id, name="task", position=5,
                         conditions=A, actions=[{"type": "sms", "template_id": 1}]),
            PostCallRule(account_id=acct.id, task_id=None, name="all", conditions={},
                         actions=[{"type": "sms", "template_id": 2},
                                  {"type": "push", "group_id": 9}]),
            PostCallRule(account_id=acct.id, task_id=None, name="off", enabled=False,
                         conditions={}, actions=[{"type": "redial", "delay_minutes": 5}]),
            PostCallRule(account_id=other.id, task_id=None, name="B's", conditions={},
                         actions=[{"type": "redial", "delay_minutes": 5}]),
            QuotaRule(account_id=acct.id, threshold=3),
        ])
        call = Call(account_id=acct.id, uuid="u1", task_id=task.id, phone="13800000000",
                    grade="A", status="answered")
        s.add(call)
        s.flush()
        rules = {r.name: r.id for r in s.scalars(select(PostCallRule))}
        keys = enqueue_after_call(s, call)
        assert keys == [f"call:{call.id}:rule:{rules['task']}:sms:1",
                        f"call:{call.id}:rule:{rules['all']}:push:9",
                        f"call:{call.id}:task:allocate:{alloc.id}",
                        f"call:{call.id}:quota"]
        assert call.sms == {"state": "queued"} and call.push == {"state": "queued"}
        s.commit()
        assert enqueue_after_call(s, call) == []  # the CDR finalises it again
        s.commit()
        rows = s.scalars(select(Outbox).order_by(Outbox.id)).all()
        assert [r.job.rsplit(".", 1)[1] for r in rows] == ["send_sms", "push",
                                                             "allocate_lead", "check_quotas"]
        assert rows[0].args == [call.id, 1, keys[0]] and {r.state for r in rows} == {"pending"}

        # A call with no task gets only the account-wide rules; grade C no SMS from "task".
        lone = Call(account_id=acct.id, uuid="u2", phone="13800000001", grade="C")
        s.add(lone)
        s.flush()
        assert [k.split(":", 2)[2] for k in enqueue_after_call(s, lone)] == [
            f"rule:{rules['all']}:sms:2", f"rule:{rules['all']}:push:9", "quota"]
        s.commit()
    engine.dispose()


def test_a_call_finalised_again_with_another_status_gets_no_second_sms(any_db_url):
    """The controller finalised with no status; the status settled later matches another
    rule. Its SMS (another template) and allocation are not written: one of each per call.
    A notice to another push group is still added."""
    engine = make_engine(any_db_url)
    with Session(engine) as s:
        acct = f.account(s, "A")
        s.add_all([
            PostCallRule(account_id=acct.id, name="A", position=2, conditions=A,
                         actions=[{"type": "sms", "template_id": 1},
                                  {"type": "allocate", "rule_id": 1}]),
            PostCallRule(account_id=acct.id, name="answered", position=1,
                         conditions={"items": [{"field": "status", "op": "in",
                                                "value": ["answered"]}]},
                         actions=[{"type": "sms", "template_id": 2},
                                  {"type": "allocate", "rule_id": 2},
                                  {"type": "push", "group_id": 5}]),
        ])
        call = Call(account_id=acct.id, uuid="u1", phone="13800000000", grade="A")
        s.add(call)
        s.flush()
        first = enqueue_after_call(s, call)
        assert [k.rsplit(":", 2)[1:] for k in first] == [["sms", "1"], ["allocate", "1"]]
        s.commit()
        call.status = "answered"
        again = enqueue_after_call(s, call)
        assert [k.rsplit(":", 2)[1:] for k in again] == [["push", "5"]]
        s.commit()
        jobs = [r.job.rsplit(".", 1)[1] for r in s.scalars(select(Outbox))]
        assert sorted(jobs) == ["allocate_lead", "push", "send_sms"]
    engine.dispose()
