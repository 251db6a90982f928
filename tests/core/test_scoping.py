"""Every account-owned model is scoped: a sub-account never sees another account's rows, the
main account's admin sees its sub-accounts' rows, nobody sees an unrelated account's."""

import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import make_engine
from core.enums import Role
from core.models import (
    AccountOwned,
    ApiToken,
    AuditLog,
    BlacklistEntry,
    BlacklistGroup,
    Call,
    CallTimeTemplate,
    Department,
    DialogueTurn,
    Lead,
    LeadAllocationRule,
    Line,
    Notification,
    Outbox,
    PostCallRule,
    ProviderConfig,
    PushGroup,
    PushGroupMember,
    PushMessage,
    QuotaRule,
    SavedFilter,
    Script,
    ScriptPrompt,
    ScriptVersion,
    SmsMessage,
    SmsTemplate,
    Tag,
    Task,
    TaskNumber,
    TaskTemplate,
    TransferGroup,
    TransferGroupMember,
    User,
)
from core.scoping import scoped, visible_account_ids
from tests import factories as f


def _one(session: Session, model, acct, **kw):
    row = model(account_id=acct.id, **kw)
    session.add(row)
    session.flush()
    return row


def _user(s, a):
    return f.user(s, a, "u" + uuid.uuid4().hex[:8], Role.STAFF)


def _task(s, a):
    return _one(s, Task, a, name="t")


def _call(s, a):
    return _one(s, Call, a, uuid=uuid.uuid4().hex, phone="13800000000")


BUILDERS = {
    User: _user,
    Department: lambda s, a: _one(s, Department, a, name="d"),
    ApiToken: lambda s, a: _one(s, ApiToken, a, user_id=_user(s, a).id, name="t",
                                token_hash=uuid.uuid4().hex, prefix="cc_"),
    AuditLog: lambda s, a: _one(s, AuditLog, a, action="x"),
    Line: lambda s, a: _one(s, Line, a, name="l", gateway="g"),
    Script: lambda s, a: _one(s, Script, a, name="s"),
    ScriptPrompt: lambda s, a: _one(s, ScriptPrompt, a, label="p",
                                    file_name=uuid.uuid4().hex + ".wav"),
    ScriptVersion: lambda s, a: _one(s, ScriptVersion, a, version=1,
                                     script_id=_one(s, Script, a, name="s").id),
    BlacklistGroup: lambda s, a: _one(s, BlacklistGroup, a, name="b"),
    BlacklistEntry: lambda s, a: _one(s, BlacklistEntry, a, phone="13900000000",
                                      group_id=_one(s, BlacklistGroup, a, name="b").id),
    Tag: lambda s, a: _one(s, Tag, a, name="tag" + uuid.uuid4().hex[:6]),
    TransferGroup: lambda s, a: _one(s, TransferGroup, a, name="g"),
    TransferGroupMember: lambda s, a: _one(
        s, TransferGroupMember, a, group_id=_one(s, TransferGroup, a, name="g").id,
        user_id=_user(s, a).id),
    CallTimeTemplate: lambda s, a: _one(s, CallTimeTemplate, a, name="c"),
    TaskTemplate: lambda s, a: _one(s, TaskTemplate, a, name="tt"),
    Task: _task,
    TaskNumber: lambda s, a: _one(s, TaskNumber, a, task_id=_task(s, a).id,
                                  phone="13800000000", raw_phone="138 0000 0000"),
    Call: _call,
    DialogueTurn: lambda s, a: _one(s, DialogueTurn, a, call_id=_call(s, a).id, seq=1,
                                    speaker="robot"),
    Notification: lambda s, a: _one(s, Notification, a, kind="import", title="n"),
    PostCallRule: lambda s, a: _one(s, PostCallRule, a, name="r"),
    SavedFilter: lambda s, a: _one(s, SavedFilter, a, user_id=_user(s, a).id, name="f"),
    # after the call (issue 10)
    Outbox: lambda s, a: _one(s, Outbox, a, key=uuid.uuid4().hex, job="j"),
    ProviderConfig: lambda s, a: _one(s, ProviderConfig, a, channel="sms", kind="outbox",
                                      name="p"),
    SmsTemplate: lambda s, a: _one(s, SmsTemplate, a, name="t", signature="s", body="b"),
    SmsMessage: lambda s, a: _one(s, SmsMessage, a, key=uuid.uuid4().hex, phone="1",
                                  content="c"),
    PushGroup: lambda s, a: _one(s, PushGroup, a, name="g"),
    PushGroupMember: lambda s, a: _one(s, PushGroupMember, a, user_id=_user(s, a).id,
                                       group_id=_one(s, PushGroup, a, name="g").id),
    PushMessage: lambda s, a: _one(s, PushMessage, a, key=uuid.uuid4().hex, content="c",
                                   token=uuid.uuid4().hex),
    LeadAllocationRule: lambda s, a: _one(s, LeadAllocationRule, a, name="r"),
    Lead: lambda s, a: _one(s, Lead, a, phone=uuid.uuid4().hex[:11]),
    QuotaRule: lambda s, a: _one(s, QuotaRule, a, threshold=1),
}


def test_every_account_owned_model_has_a_builder():
    owned = {m.class_ for m in AccountOwned.__subclasses__()[0].registry.mappers
             if issubclass(m.class_, AccountOwned)}
    assert owned == set(BUILDERS)


@pytest.mark.parametrize("model", list(BUILDERS), ids=lambda m: m.__name__)
def test_rows_are_visible_only_within_the_account_tree(any_db_url, model):
    engine = make_engine(any_db_url)
    with Session(engine) as s:
        a = f.account(s, "A")
        a1 = f.account(s, "A1", parent=a)
        b = f.account(s, "B")
        admin_a = f.user(s, a, "admin_a")
        staff_a = f.user(s, a, "staff_a", Role.STAFF)
        admin_a1 = f.user(s, a1, "admin_a1")
        admin_b = f.user(s, b, "admin_b")
        rows = {acct.id: BUILDERS[model](s, acct) for acct in (a, a1, b)}
        s.commit()

        def seen(viewer):
            stmt = scoped(select(model), model, visible_account_ids(s, viewer))
            return {r.account_id for r in s.scalars(stmt)}

        assert seen(admin_a) == {a.id, a1.id}  # the main account's admin sees the sub-account
        assert seen(staff_a) == {a.id}
        assert seen(admin_a1) == {a1.id}  # the sub-account never sees its parent's rows
        assert seen(admin_b) == {b.id}
        assert rows[b.id].account_id == b.id
    engine.dispose()
