"""Post-call rule conditions (AND/OR, nested) and the action plan."""

from types import SimpleNamespace

import pytest

from core.post_call import RuleError, facts, matches, plan, validate


def call(**kw):
    base = dict(grade="A", status="answered", hangup_side="callee", tags=["价格"], score=12,
                talk_seconds=45, ring_seconds=5, interactions=4, unrecognised=1)
    return facts(SimpleNamespace(**{**base, **kw}))


def rule(rule_id, conditions, actions, enabled=True):
    return SimpleNamespace(id=rule_id, conditions=conditions, actions=actions, enabled=enabled)


GRADE_A = {"match": "all", "items": [{"field": "grade", "op": "in", "value": ["A"]}]}


def test_and_or_and_nesting():
    cond = {"match": "all", "items": [
        {"field": "grade", "op": "in", "value": ["A", "B"]},
        {"field": "talk_seconds", "op": ">=", "value": 30},
        {"match": "any", "items": [
            {"field": "tags", "op": "has_any", "value": ["地址"]},
            {"field": "score", "op": ">", "value": 10}]}]}
    assert matches(cond, call())
    assert not matches(cond, call(score=3))
    assert matches(cond, call(score=3, tags=["地址"]))
    assert not matches(cond, call(grade="C"))
    assert not matches(cond, call(talk_seconds=10))


@pytest.mark.parametrize("cond,expected", [
    ({"field": "interactions", "op": "<", "value": 5}, True),
    ({"field": "unrecognised", "op": ">=", "value": 2}, False),
    ({"field": "status", "op": "not_in", "value": ["busy"]}, True),
    ({"field": "tags", "op": "has_all", "value": ["价格", "地址"]}, False),
    ({"field": "tags", "op": "has_none", "value": ["地址"]}, True),
    ({"field": "hangup_side", "op": "in", "value": ["robot"]}, False),
])
def test_each_field_kind(cond, expected):
    assert matches({"items": [cond]}, call()) is expected


def test_empty_conditions_match_everything_and_none_is_fine():
    assert matches({}, call()) and matches(None, call())
    assert matches({"match": "any", "items": []}, call())


def test_missing_values_read_as_zero_or_empty():
    f = facts(SimpleNamespace(grade=None, status=None, hangup_side=None, tags=None, score=None,
                              talk_seconds=None, ring_seconds=None, interactions=None,
                              unrecognised=None))
    assert matches({"items": [{"field": "score", "op": "=", "value": 0}]}, f)
    assert not matches(GRADE_A, f)


@pytest.mark.parametrize("bad", [
    {"items": [{"field": "nope", "op": "in", "value": []}]},
    {"items": [{"field": "score", "op": "in", "value": [1]}]},
    {"items": [{"field": "score", "op": ">", "value": "x"}]},
    {"items": [{"field": "grade", "op": "in", "value": "A"}]},
    {"match": "xor", "items": [{"field": "grade", "op": "in", "value": ["A"]}]},
])
def test_malformed_conditions_raise(bad):
    with pytest.raises(RuleError):
        matches(bad, call())
    assert validate(bad, [{"type": "sms", "template_id": 1}])


def test_validate_actions():
    assert validate(GRADE_A, [{"type": "sms", "template_id": 1}]) == []
    assert validate(GRADE_A, []) == ["a rule needs at least one action"]
    assert validate(GRADE_A, [{"type": "fax"}])
    assert validate(GRADE_A, [{"type": "push", "group_id": "x"}])


def test_plan_gives_one_sms_per_call_and_one_push_per_group():
    rules = [
        rule(1, GRADE_A, [{"type": "sms", "template_id": 7}, {"type": "push", "group_id": 3}]),
        rule(2, {}, [{"type": "sms", "template_id": 8}, {"type": "push", "group_id": 3},
                     {"type": "push", "group_id": 4}]),
        rule(3, {}, [{"type": "redial", "delay_minutes": 30}], enabled=False),
        rule(4, {"items": [{"field": "grade", "op": "in", "value": ["C"]}]},
             [{"type": "allocate", "rule_id": 1}]),
    ]
    chosen = [(r.id, a) for r, a in plan(rules, call())]
    assert chosen == [(1, {"type": "sms", "template_id": 7}),
                      (1, {"type": "push", "group_id": 3}),
                      (2, {"type": "push", "group_id": 4})]
    assert [(r.id, a["type"]) for r, a in plan(rules, call(grade="C"))] == [
        (2, "sms"), (2, "push"), (2, "push"), (4, "allocate")]


def test_plan_skips_a_malformed_rule_instead_of_failing_the_call():
    rules = [rule(1, {"items": [{"field": "nope"}]}, [{"type": "sms", "template_id": 1}]),
             rule(2, {}, [{"type": "sms", "template_id": 2}])]
    assert [(r.id, a["template_id"]) for r, a in plan(rules, call())] == [(2, 2)]


@pytest.mark.parametrize("bad", [
    # The first item decides the AND/OR for a sample call; the bad one behind it must still
    # be refused when the rule is saved (it would skip the rule on real calls).
    {"match": "any", "items": [{"field": "score", "op": ">=", "value": 0},
                               {"field": "nope", "op": "in", "value": ["x"]}]},
    {"match": "all", "items": [{"field": "score", "op": ">", "value": 5},
                               {"field": "grade", "op": "in", "value": "A"}]},
    {"match": "any", "items": [{"field": "score", "op": ">=", "value": 0},
                               {"match": "all", "items": [{"field": "tags", "op": ">"}]}]},
])
def test_validate_looks_at_every_condition_not_just_the_deciding_one(bad):
    assert validate(bad, [{"type": "sms", "template_id": 1}])


@pytest.mark.parametrize("bad", [[{"field": "grade"}], "x", {"items": "grade"}, {"items": [1, 2]},
                                 {"items": [{"match": "all", "items": [None]}]}])
def test_conditions_that_are_not_objects_are_rule_errors(bad):
    with pytest.raises(RuleError):
        matches(bad, call())
    assert validate(bad, [{"type": "sms", "template_id": 1}])
    # … and the finaliser's plan skips such a rule instead of raising.
    assert plan([rule(1, bad, [{"type": "sms", "template_id": 1}])], call()) == []


def test_plan_skips_malformed_actions_and_what_the_call_already_has():
    rules = [rule(1, {}, ["sms", {"type": "sms", "template_id": "7"}, {"type": "fax"},
                          {"type": "push", "group_id": 3}]),
             rule(2, {}, [{"type": "sms", "template_id": 8}, {"type": "push", "group_id": 4},
                          {"type": "allocate", "rule_id": 1}])]
    assert [(r.id, a) for r, a in plan(rules, call())] == [
        (1, {"type": "push", "group_id": 3}), (2, {"type": "sms", "template_id": 8}),
        (2, {"type": "push", "group_id": 4}), (2, {"type": "allocate", "rule_id": 1})]
    # An earlier evaluation already wrote an SMS and the notice to group 3.
    done = {"sms", ("push", 3)}
    assert [(r.id, a["type"]) for r, a in plan(rules, call(), done)] == [
        (2, "push"), (2, "allocate")]
