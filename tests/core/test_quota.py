"""Quota decisions (任务暂停): when a count is reached, once per period."""

from datetime import UTC, datetime
from types import SimpleNamespace

from core.quota import decide, period_label, period_start

NOW = datetime(2026, 11, 23, 17, 30, tzinfo=UTC)  # 01:30 on the 24th in Shanghai


def rule(**kw):
    base = dict(id=1, enabled=True, threshold=3, period="day", fired_on=None, action="pause",
                task_id=5, target_task_id=None)
    return SimpleNamespace(**{**base, **kw})


def test_period_start_is_local_midnight():
    assert period_start("day", NOW, "Asia/Shanghai") == datetime(2026, 11, 23, 16, tzinfo=UTC)
    assert period_start("total", NOW, "Asia/Shanghai") is None
    assert period_label("day", NOW, "Asia/Shanghai") == "2026-11-24"


def test_fires_at_threshold_once_per_day():
    assert decide(rule(), 2, NOW, "Asia/Shanghai", []) is None
    d = decide(rule(), 3, NOW, "Asia/Shanghai", [])
    assert d.action == "pause" and d.task_ids == (5,) and d.fired_on == "2026-11-24"
    assert decide(rule(fired_on="2026-11-24"), 9, NOW, "Asia/Shanghai", []) is None
    assert decide(rule(fired_on="2026-11-23"), 3, NOW, "Asia/Shanghai", []) is not None


def test_targets_account_wide_and_explicit():
    assert decide(rule(task_id=None), 3, NOW, "UTC", [1, 2]).task_ids == (1, 2)
    assert decide(rule(target_task_id=9, action="start"), 3, NOW, "UTC", []).task_ids == (9,)
    assert decide(rule(period="total", fired_on="total"), 5, NOW, "UTC", []) is None
    assert decide(rule(enabled=False), 5, NOW, "UTC", []) is None
