"""Shared by the workbench's browser tests: fake media flags, the agent's rows, login."""

import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.enums import Role, TaskState, TransferStrategy
from core.models import Call, DialogueTurn, Task, TransferGroup, TransferGroupMember, User
from tests import factories as f

FAKE_MEDIA = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


def agent_rows(console, subprocess_env):
    """An agent with extension 1001 in the administrator's account, in a transfer group
    bound to a running task, and a call of that task with a short transcript."""
    engine = sa.create_engine(subprocess_env["DATABASE_URL"])
    with Session(engine) as s:
        admin = s.scalar(sa.select(User).where(User.username == console["user"]))
        user = User(account_id=admin.account_id, username="agent1001", role=Role.AGENT,
                    display_name="小王", sip_extension="1001", sip_password="sip-pw-1001")
        user.set_password(f.PASSWORD)
        s.add(user)
        s.flush()
        group = TransferGroup(account_id=admin.account_id, name="销售组",
                              strategy=TransferStrategy.ORDER, ring_timeout_s=20)
        s.add(group)
        s.flush()
        s.add(TransferGroupMember(account_id=admin.account_id, group_id=group.id,
                                  user_id=user.id, position=0))
        task = Task(account_id=admin.account_id, name="春季回访", state=TaskState.RUNNING,
                    transfer_group_id=group.id)
        s.add(task)
        s.flush()
        call = Call(account_id=admin.account_id, task_id=task.id, uuid=str(uuid.uuid4()),
                    phone="13800138000", grade="A", tags=["要报价"],
                    variables={"姓名": "王先生"})
        s.add(call)
        s.flush()
        s.add_all([DialogueTurn(account_id=admin.account_id, call_id=call.id, seq=1,
                                speaker="robot", text="您好，这里是春季回访"),
                   DialogueTurn(account_id=admin.account_id, call_id=call.id, seq=2,
                                speaker="callee", text="我想问一下价格")])
        s.commit()
        info = {"user_id": user.id, "username": user.username, "call_uuid": call.uuid}
    yield {**info, "engine": engine}
    engine.dispose()


def login(page, console, username, password):
    page.goto(console["url"] + "/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_load_state()


