import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.task_rules import ValidationError, check_line_capacity, clean_task_fields


def test_valid_fields_are_converted():
    cleaned = clean_task_fields({
        "name": " 回访 ", "max_concurrency": "5", "date_start": "2026-12-01",
        "weekly": {"mon": [["09:00", "12:00"], ["13:30", "18:00"]]}, "end_action": "stop"})
    assert cleaned["name"] == "回访" and cleaned["max_concurrency"] == 5
    assert str(cleaned["date_start"]) == "2026-12-01"


def test_every_bad_field_is_reported_in_chinese():
    with pytest.raises(ValidationError) as exc:
        clean_task_fields({"max_concurrency": 0, "weekly": {"mon": [["18:00", "09:00"]]},
                           "colour": "red", "date_start": "tomorrow"})
    errors = exc.value.errors
    assert set(errors) == {"name", "max_concurrency", "weekly", "colour", "date_start"}
    assert errors["name"] == "必填" and "正整数" in errors["max_concurrency"]
    assert "开始早于结束" in errors["weekly"] and errors["colour"] == "未知字段"


def test_end_before_start_is_refused():
    with pytest.raises(ValidationError, match="date_end"):
        clean_task_fields({"name": "x", "date_start": "2026-12-02", "date_end": "2026-12-01"})


def test_partial_update_needs_no_name():
    assert clean_task_fields({"predictive": 1}, partial=True) == {"predictive": True}


@given(st.integers(1, 500), st.lists(st.integers(1, 50), max_size=10), st.integers(1, 100))
def test_capacity_allows_exactly_what_fits(line_max, running, requested):
    check = check_line_capacity(line_max, running, requested)
    assert check.ok == (sum(running) + requested <= line_max)
    if not check.ok:
        assert check.message.startswith("并发不足")
