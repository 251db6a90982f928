"""transfer_call: database in, Call.transfer out, the task paused when all agents are busy
(转人工全忙暂停), the screen pop built from the call's rows."""

import json

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from controller.transfer.service import transfer_call
from core.enums import Role, TaskState, TransferStrategy
from core.models import (
    Call,
    DialogueTurn,
    Lead,
    Task,
    TransferGroup,
    TransferGroupMember,
)
from core.presence import AgentState
from core.transfer import Trigger
from tests import factories as f


@pytest.fixture
def Session(db_url):
    engine = sa.create_engine(db_url)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


def setup_rows(Session, *, exts=("1002", "1001"), pause=False, predictive=False,
               busy_to_ai=False):
    with Session() as s:
        acct = f.account(s, "A")
        agents = []
        for ext in exts:
            u = f.user(s, acct, f"agent{ext}", Role.AGENT)
            u.sip_extension, u.sip_password = ext, "pw"
            agents.append(u)
        group = TransferGroup(account_id=acct.id, name="sales",
                              strategy=TransferStrategy.ORDER, ring_timeout_s=2)
        s.add(group)
        s.flush()
        for pos, u in enumerate(agents):
            s.add(TransferGroupMember(account_id=acct.id, group_id=group.id, user_id=u.id,
                                      position=pos))
        task = Task(account_id=acct.id, name="回访", state=TaskState.RUNNING,
                    transfer_group_id=group.id, pause_when_agents_busy=pause,
                    predictive=predictive, predictive_busy_to_ai=busy_to_ai)
        s.add(task)
        s.commit()
        return acct.id, task.id, [u.id for u in agents]


def add_call(Session, acct, task_id, uuid):
    with Session() as s:
        call = Call(account_id=acct, task_id=task_id, uuid=uuid, phone="13800138000",
                    grade="A", tags=["要报价"], variables={"姓名": "王先生"})
        s.add(call)
        s.flush()
        s.add_all([DialogueTurn(account_id=acct, call_id=call.id, seq=1, speaker="robot",
                                text="您好，这里是回访"),
                   DialogueTurn(account_id=acct, call_id=call.id, seq=2, speaker="callee",
                                text="我想了解价格")])
        s.add(Lead(account_id=acct, phone="13800138000", name="王先生", grade="A"))
        s.commit()


def test_success_is_recorded_on_the_call_with_the_screen_pop(harness, Session):
    h = harness
    acct, task_id, (u1002, u1001) = setup_rows(Session)
    h.agents_online(u1002, u1001)
    # the harness' scenario: 1002 never answers, 1001 answers after 2 s
    call_uuid = h.customer()
    add_call(Session, acct, task_id, call_uuid)
    sub = h.conn.pubsub()
    sub.subscribe(f"cc:agent:{u1001}")
    result = transfer_call(Session, h.link, h.events, h.presence, h.conn, call_uuid,
                           trigger=Trigger.GRADE)
    assert result.ok
    with Session() as s:
        call = s.scalar(sa.select(Call).where(Call.uuid == call_uuid))
        assert call.transfer["state"] == "success" and call.agent_id == u1001
        assert call.transfer["trigger"] == "grade"
        assert [t["result"] for t in call.transfer["tries"]] == ["no_answer", "answered"]
    pops = []
    while (m := sub.get_message(timeout=0.5)) is not None:
        if m["type"] == "message":
            d = json.loads(m["data"])
            if d["type"] == "screen_pop":
                pops.append(d)
    pop = pops[0]["pop"]
    assert pop["phone"] == "138****8000" and pop["variables"] == {"姓名": "王先生"}
    assert pop["crm"]["name"] == "王先生" and pop["grade"] == "A" and pop["tags"] == ["要报价"]
    assert [t["text"] for t in pop["transcript"]] == ["您好，这里是回访", "我想了解价格"]
    assert pop["task"] == "回访"


def test_all_busy_pauses_the_task_and_falls_back_to_the_ai(harness, Session):
    h = harness
    acct, task_id, agents = setup_rows(Session, pause=True)
    for uid in agents:
        h.presence.set_state(uid, "break")
    call_uuid = h.customer()
    add_call(Session, acct, task_id, call_uuid)
    sub = h.conn.pubsub()
    sub.subscribe("cc:tasks")
    result = transfer_call(Session, h.link, h.events, h.presence, h.conn, call_uuid)
    assert not result.ok and result.reason == "all_busy" and result.fallback == "ai_closing"
    with Session() as s:
        assert s.get(Task, task_id).state == TaskState.PAUSED
        call = s.scalar(sa.select(Call).where(Call.uuid == call_uuid))
        assert call.transfer["state"] == "failed" and call.transfer["reason"] == "all_busy"
        assert call.transfer["paused_task"] is True
    notices = [json.loads(m["data"]) for m in iter(lambda: sub.get_message(timeout=0.5), None)
               if m["type"] == "message"]
    assert {"task_id": task_id, "state": "paused"} in notices


def test_predictive_busy_to_ai_hands_the_call_to_the_ai_dialogue(harness, Session):
    h = harness
    acct, task_id, agents = setup_rows(Session, predictive=True, busy_to_ai=True)
    call_uuid = h.customer()
    add_call(Session, acct, task_id, call_uuid)
    result = transfer_call(Session, h.link, h.events, h.presence, h.conn, call_uuid,
                           trigger=Trigger.PREDICTIVE)
    assert result.fallback == "ai_dialogue" and not result.pause_task
    with Session() as s:
        assert s.get(Task, task_id).state == TaskState.RUNNING
    assert h.presence.get(agents[0]).state == AgentState.OFFLINE


def test_a_task_without_group_fails_with_no_members(harness, Session):
    h = harness
    with Session() as s:
        acct = f.account(s, "A")
        task = Task(account_id=acct.id, name="t")
        s.add(task)
        s.commit()
        acct_id, task_id = acct.id, task.id
    call_uuid = h.customer()
    add_call(Session, acct_id, task_id, call_uuid)
    result = transfer_call(Session, h.link, h.events, h.presence, h.conn, call_uuid)
    assert result.reason == "no_members"
    with Session() as s:
        assert s.scalar(sa.select(Call.transfer).where(Call.uuid == call_uuid))["reason"] \
            == "no_members"


class Ctx:
    """The dialer's AnsweredContext, as much as the predictive handler uses."""

    def __init__(self, link, uuid, task_id):
        from types import SimpleNamespace

        from gevent.event import Event

        self.link, self.resumed, self.stopping, self.ended = link, False, False, Event()
        self.plan = SimpleNamespace(uuid=uuid, task_id=task_id, caller_id="4000")
        self.hung_up = False
        self.reports = []  # what the call's state machine is told

    def hangup(self, cause="NORMAL_CLEARING"):
        self.hung_up = True
        self.link.api(f"uuid_kill {self.plan.uuid} {cause}")

    def transferring(self):
        self.reports.append("transferring")

    def transfer_ended(self, ok):
        self.reports.append("bridged" if ok else "transfer failed")


def transfers(h, Session):
    from controller.transfer.hook import Transfers

    t = Transfers(Session, h.presence, h.conn, controller_id="ctl-test")
    t.events["sim"] = h.events  # the harness link already feeds this hub
    return t


@pytest.mark.parametrize("busy_to_ai", [True, False])
def test_predictive_handler_with_all_agents_busy(harness, Session, busy_to_ai):
    h = harness
    acct, task_id, _agents = setup_rows(Session, predictive=True, busy_to_ai=busy_to_ai)
    call_uuid = h.customer()
    add_call(Session, acct, task_id, call_uuid)
    ai_ran = []
    handler = transfers(h, Session).predictive(lambda ctx: ai_ran.append(ctx.plan.uuid))
    ctx = Ctx(h.link, call_uuid, task_id)
    handler(ctx)
    assert ai_ran == ([call_uuid] if busy_to_ai else [])
    assert ctx.hung_up is (not busy_to_ai)


def test_predictive_handler_connects_an_agent_and_follows_the_bridge(harness, Session):
    import gevent

    h = harness
    acct, task_id, (u1004,) = setup_rows(Session, exts=("1004",), predictive=True)
    h.agents_online(u1004)
    call_uuid = h.customer()
    add_call(Session, acct, task_id, call_uuid)
    ai_ran = []
    handler = transfers(h, Session).predictive(lambda ctx: ai_ran.append(1))
    ctx = Ctx(h.link, call_uuid, task_id)
    g = gevent.spawn(handler, ctx)
    deadline = gevent.get_hub().loop.now() + 20
    while h.presence.get(u1004).state != AgentState.IN_CALL:
        assert gevent.get_hub().loop.now() < deadline
        gevent.sleep(0.1)
    h.link.api(f"uuid_kill {call_uuid}")  # the customer hangs up
    g.get(timeout=20)
    assert ai_ran == [] and h.presence.get(u1004).state == AgentState.WRAP_UP
    assert ctx.reports == ["transferring", "bridged"]


def test_control_transfer_raises_with_the_fallback(harness, Session):
    from controller.transfer.hook import TransferFailed

    h = harness
    acct, task_id, agents = setup_rows(Session)
    call_uuid = h.customer()
    add_call(Session, acct, task_id, call_uuid)
    run = transfers(h, Session).control_transfer(h.link, call_uuid)
    with pytest.raises(TransferFailed) as failed:
        run("")
    assert failed.value.fallback == "ai_closing"
