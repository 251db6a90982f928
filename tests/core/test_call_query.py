"""Condition groups: validation (pure) and the where clause on SQLite and PostgreSQL."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import call_query as q
from core.db import make_engine
from core.models import Call, PushMessage, Task, TaskNumber
from tests import factories as f


def _at(day: int, hour: int = 10) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


@pytest.fixture
def calls(any_db_url):
    """Four calls that differ in every filtered field; yields (session, ids by name)."""
    engine = make_engine(any_db_url)
    with Session(engine) as s:
        acct = f.account(s, "A")
        t1, t2 = Task(account_id=acct.id, name="t1"), Task(account_id=acct.id, name="t2")
        s.add_all([t1, t2])
        s.flush()
        n1 = TaskNumber(account_id=acct.id, task_id=t1.id, phone="13800000001",
                        raw_phone="13800000001", created_at=datetime(2026, 2, 1, tzinfo=UTC))
        n2 = TaskNumber(account_id=acct.id, task_id=t2.id, phone="13800000002",
                        raw_phone="13800000002", created_at=datetime(2026, 2, 15, tzinfo=UTC))
        s.add_all([n1, n2])
        s.flush()
        rows = {
            "c1": Call(phone="13800000001", task_id=t1.id, task_number_id=n1.id,
                       created_at=_at(1), region="广东省深圳市", tags=["有意向", "A类"], grade="A",
                       status="answered", talk_seconds=200, interactions=5,
                       transfer={"state": "success", "target": {"name": "王坐席"}},
                       push={"state": "success", "target": "李四"}, sms={"state": "success"},
                       gender="male", carrier="中国移动", hangup_side="callee", viewed=True),
            "c2": Call(phone="13800000002", task_id=t2.id, task_number_id=n2.id,
                       created_at=_at(2), region="北京", tags=["无意向"], grade="C",
                       status="answered", talk_seconds=30, interactions=2,
                       transfer={"state": "failed", "reason": "all_busy"},
                       push={"state": "success"}, sms={"state": "failed"}, gender="female",
                       carrier="中国联通", hangup_side="robot"),
            "c3": Call(phone="13900000003", task_id=t1.id, created_at=_at(3), tags=[],
                       status="no_answer", push={"state": "failed"}),
            # transfer stored as JSON null, an unfinished transfer and a queued notice: "none"
            "c4": Call(phone="13800000004", created_at=_at(4), tags=["A类"], grade="B",
                       status="busy", transfer={"state": "requested"}, sms=None,
                       push={"state": "queued"}, gender="?"),
        }
        for i, (name, call) in enumerate(rows.items()):
            call.account_id, call.uuid = acct.id, f"u-{name}-{i}"
            s.add(call)
        s.flush()
        s.add(PushMessage(account_id=acct.id, key="k1", call_id=rows["c1"].id, content="x",
                          token="tok1", state="seen", seen_at=_at(1, 11)))
        s.commit()
        names = {c.id: n for n, c in rows.items()}
        yield s, names, {"t1": t1.id, "t2": t2.id}
    engine.dispose()


def _matching(s, names, data) -> set[str]:
    clause = q.where(q.validate(data))
    return {names[i] for i in s.scalars(select(Call.id).where(clause))}


def _one(field, op, value) -> dict:
    return {"op": "and", "conditions": [{"field": field, "op": op, "value": value}]}


CASES = [
    ("phone", "eq", "13800000001", {"c1"}),
    ("phone", "eq", "138-0000-0001", {"c1"}),
    ("phone", "contains", "3800", {"c1", "c2", "c4"}),
    ("call_time", "between", ["2026-03-02T00:00:00+00:00", "2026-03-03T23:59:59+00:00"],
     {"c2", "c3"}),
    ("call_time", "between", [None, "2026-03-02T08:00:00+08:00"], {"c1"}),  # offsets count
    ("number_created", "between", ["2026-02-10T00:00:00+08:00", None], {"c2"}),
    ("region", "contains", "广东", {"c1"}),
    ("region", "contains", "%", set()),  # LIKE wildcards are literal
    ("tags", "any", ["A类"], {"c1", "c4"}),
    ("tags", "any", ["无意向", "A类"], {"c1", "c2", "c4"}),
    ("tags", "any", ["没有"], set()),
    ("grade", "in", ["A", "B"], {"c1", "c4"}),
    ("status", "in", ["answered"], {"c1", "c2"}),
    ("talk_seconds", "between", [100, None], {"c1"}),
    ("talk_seconds", "between", [None, 30], {"c2", "c3", "c4"}),
    ("interactions", "between", [2, 5], {"c1", "c2"}),
    ("transfer", "in", ["success"], {"c1"}),
    ("transfer", "in", ["failed"], {"c2"}),
    ("transfer", "in", ["none"], {"c3", "c4"}),
    ("push", "in", ["seen"], {"c1"}),
    ("push", "in", ["pushed"], {"c2"}),
    ("push", "in", ["failed", "none"], {"c3", "c4"}),
    ("sms", "in", ["sent"], {"c1"}),
    ("sms", "in", ["failed"], {"c2"}),
    ("sms", "in", ["none"], {"c3", "c4"}),
    ("gender", "in", ["male"], {"c1"}),
    ("gender", "in", ["female", "unknown"], {"c2", "c3", "c4"}),
    ("carrier", "in", ["中国移动", "中国电信"], {"c1"}),
    ("hangup_side", "in", ["callee", "robot"], {"c1", "c2"}),
    ("viewed", "eq", True, {"c1"}),
    ("viewed", "eq", False, {"c2", "c3", "c4"}),
]


@pytest.mark.parametrize(("field", "op", "value", "expected"), CASES,
                         ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_each_field_selects_its_calls(calls, field, op, value, expected):
    s, names, _tasks = calls
    assert _matching(s, names, _one(field, op, value)) == expected


def test_tasks_relations_and_nesting(calls):
    s, names, tasks = calls
    assert _matching(s, names, _one("task", "in", [tasks["t1"]])) == {"c1", "c3"}
    assert _matching(s, names, _one("task", "in", [tasks["t1"], tasks["t2"]])) == \
        {"c1", "c2", "c3"}
    either = [{"field": "grade", "op": "in", "value": ["A"]},
              {"field": "status", "op": "in", "value": ["no_answer", "busy"]}]
    assert _matching(s, names, {"op": "or", "conditions": either}) == {"c1", "c3", "c4"}
    assert _matching(s, names, {"op": "and", "conditions": either}) == set()
    scoped = {"op": "and", "conditions": [
        {"field": "task", "op": "in", "value": [tasks["t1"]]}, {"op": "or", "conditions": either}]}
    assert _matching(s, names, scoped) == {"c1", "c3"}
    assert _matching(s, names, {"op": "or", "conditions": []}) == {"c1", "c2", "c3", "c4"}


@pytest.mark.parametrize(("data", "message"), [
    ("grade=A", "筛选条件应为"),
    ({"op": "xor", "conditions": []}, "筛选关系"),
    (_one("colour", "eq", "red"), "未知的筛选字段 'colour'"),
    (_one("grade", "eq", "A"), "意向：不支持的比较方式 'eq'"),
    (_one("grade", "in", ["Z"]), "意向：未知的取值 'Z'"),
    (_one("grade", "in", []), "意向：请至少选择一项"),
    (_one("status", "in", ["ok"]), "呼叫状态：未知的取值"),
    (_one("phone", "eq", "138abc"), "手机号：只能包含数字"),
    (_one("phone", "contains", ""), "手机号：请输入内容"),
    (_one("task", "in", ["1"]), "任务：应为正整数编号"),
    (_one("task", "in", [True]), "任务：应为正整数编号"),
    (_one("call_time", "between", ["2026-03-01T00:00:00", None]), "呼叫时间：时间须带时区"),
    (_one("call_time", "between", ["yesterday", None]), "呼叫时间：时间格式"),
    (_one("call_time", "between", ["2026-03-02T00:00:00Z", "2026-03-01T00:00:00Z"]),
     "呼叫时间：开始时间不能晚于结束时间"),
    (_one("number_created", "between", [None, None]), "号码创建时间：起止至少填写一个"),
    (_one("talk_seconds", "between", [60, 30]), "通话时长：最小值不能大于最大值"),
    (_one("interactions", "between", [-1, None]), "交互次数：应为不小于 0 的整数"),
    (_one("interactions", "between", [1]), "交互次数：应为 [起, 止]"),
    (_one("tags", "any", ["", "x"]), "标签：应为非空文字"),
    (_one("region", "contains", "x" * 65), "地区：最多 64 个字符"),
    (_one("transfer", "in", ["ok"]), "转接：未知的取值"),
    (_one("push", "in", ["read"]), "微信推送：未知的取值"),
    (_one("sms", "in", ["delivered"]), "挂机短信：未知的取值"),
    (_one("gender", "in", ["m"]), "性别：未知的取值"),
    (_one("carrier", "in", [1]), "运营商：应为非空文字"),
    (_one("hangup_side", "in", ["me"]), "挂断方：未知的取值"),
    (_one("viewed", "eq", "yes"), "查看状态：应为 true 或 false"),
    ({"conditions": [{"conditions": [{"conditions": [{"conditions": []}]}]}]}, "最多嵌套 3 层"),
    ({"conditions": [{"field": "viewed", "op": "eq", "value": True}] * 51}, "最多 50 个条件"),
])
def test_invalid_groups_name_the_field(data, message):
    with pytest.raises(q.FilterError) as caught:
        q.validate(data)
    assert message in str(caught.value)


def test_validated_groups_round_trip_through_json():
    data = {"op": "or", "conditions": [
        {"field": "call_time", "op": "between", "value": ["2026-03-01T00:00:00+08:00", None]},
        {"field": "grade", "op": "in", "value": ["B", "A", "A"]},
        {"op": "and", "conditions": [{"field": "tags", "op": "any", "value": [" x ", "y"]}]}]}
    group = q.validate(data)
    assert group.items[1].value == ("A", "B")  # de-duplicated, in the enum's order
    assert group.items[2].items[0].value == ("x", "y")
    assert q.validate(q.to_json(group)) == group
    assert q.to_json(group)["conditions"][0]["value"] == ["2026-03-01T00:00:00+08:00", None]
