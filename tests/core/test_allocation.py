"""Push-group strategies and lead allocation rules, with the seed's worked examples."""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.allocation import LeadDecision, allocate, pick

A, B, C = 11, 12, 13


def run(strategy, members, n, state=None, rng=None):
    got = []
    for _ in range(n):
        chosen, state = pick(strategy, members, state, rng)
        got.extend(chosen)
    return got, state


def test_seed_average_nine_leads_to_three_people_three_each():
    # 平均：假设有 ABC 三人，9 条线索，那么分配就是 ABC 三人各发 3 条
    got, _ = run("average", [A, B, C], 9)
    assert {m: got.count(m) for m in (A, B, C)} == {A: 3, B: 3, C: 3}


def test_seed_order_ten_leads_extra_one_to_a_then_continues():
    # 顺序：ABC 三人，10 条线索，按顺序分给 A、B、C，多出一条会放到 A 头上，再产生就会依次分配
    got, state = run("order", [A, B, C], 10)
    assert got == [A, B, C, A, B, C, A, B, C, A]
    assert {m: got.count(m) for m in (A, B, C)} == {A: 4, B: 3, C: 3}
    nxt, _ = run("order", [A, B, C], 2, state)
    assert nxt == [B, C]


def test_seed_examples_through_a_lead_rule_per_grade():
    # Each grade follows its own staff and order (A 意向按 A 的人员，B 意向按 B 的人员).
    grades = {"A": {"mode": "average", "user_ids": [A, B, C]},
              "B": {"mode": "order", "user_ids": [A, B, C]},
              "C": {"mode": "pool"}, "D": {"mode": "none"}}
    state = {}
    owners_a, owners_b = [], []
    for _ in range(9):
        d, state = allocate(grades, "A", state)
        owners_a.append(d.owner_id)
    for _ in range(10):
        d, state = allocate(grades, "B", state)
        owners_b.append(d.owner_id)
    assert sorted(owners_a) == [A] * 3 + [B] * 3 + [C] * 3
    assert owners_b == [A, B, C, A, B, C, A, B, C, A]
    assert allocate(grades, "C", state)[0] == LeadDecision(True, None, "pool")
    assert allocate(grades, "D", state)[0].make_lead is False
    assert allocate(grades, "E", state)[0].make_lead is False  # no setting for E: nothing
    assert allocate(grades, None, state)[0].make_lead is False


def test_staff_mode_without_staff_falls_back_to_the_pool():
    d, _ = allocate({"A": {"mode": "order", "user_ids": []}}, "A", {})
    assert d.make_lead and d.owner_id is None


def test_all_sends_to_every_member_and_random_stays_within_members():
    got, _ = run("all", [A, B, C], 2)
    assert got == [A, B, C, A, B, C]
    got, _ = run("random", [A, B, C], 30, rng=random.Random(1))
    assert set(got) <= {A, B, C} and len(set(got)) == 3


def test_order_survives_a_member_leaving():
    _, state = run("order", [A, B, C], 2)  # A, B
    got, _ = run("order", [A, C], 2, state)  # B left: continue after… the start
    assert got == [A, C]


def test_unknown_strategy_and_empty_group():
    with pytest.raises(ValueError):
        pick("nope", [A], None)
    assert pick("average", [], None)[0] == []


@given(n=st.integers(1, 60), k=st.integers(1, 6))
def test_average_and_order_never_differ_by_more_than_one(n, k):
    members = list(range(1, k + 1))
    for strategy in ("average", "order"):
        got, _ = run(strategy, members, n)
        counts = [got.count(m) for m in members]
        assert max(counts) - min(counts) <= 1
