"""Call windows: property tests (hypothesis) and the China holiday calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.windows import (
    WEEKDAYS,
    CallWindow,
    WindowError,
    is_makeup_workday,
    is_statutory_holiday,
)

SH = "Asia/Shanghai"
DST_FREE = ["Asia/Shanghai", "UTC", "Asia/Kolkata", "Asia/Kathmandu", "Etc/GMT+11"]
WORKDAYS_9_TO_6 = {d: [["09:00", "12:00"], ["13:30", "18:00"]] for d in WEEKDAYS[:5]}


def at_local(zone: str, *args) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone))


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# A weekly schedule: per weekday up to three segments on a 5-minute grid, "24:00" allowed.
segment = st.tuples(st.integers(0, 287), st.integers(1, 288)).filter(lambda t: t[0] < t[1]) \
    .map(lambda t: [hhmm(t[0] * 5), hhmm(t[1] * 5)])
weekly = st.dictionaries(st.sampled_from(WEEKDAYS), st.lists(segment, max_size=3), min_size=1)
instants = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 31),
                        timezones=st.just(UTC))


def reference_open(w: dict, local: datetime) -> bool:
    """A brute-force reading of the weekly schedule alone, minute by minute."""
    minute = local.hour * 60 + local.minute
    for start, end in w.get(WEEKDAYS[local.weekday()], []):
        a = int(start[:2]) * 60 + int(start[3:])
        b = int(end[:2]) * 60 + int(end[3:])
        if a <= minute < b:
            return True
    return False


@settings(max_examples=300, deadline=None)
@given(weekly, instants, st.sampled_from(DST_FREE))
def test_is_open_matches_the_schedule_in_every_dst_free_zone(w, at, zone):
    window = CallWindow.from_task_fields(zone, w)
    assert window.is_open(at) == reference_open(w, at.astimezone(ZoneInfo(zone)))


@settings(max_examples=200, deadline=None)
@given(weekly, st.sampled_from(WEEKDAYS), st.data())
def test_segment_boundaries_start_inclusive_end_exclusive(w, day, data):
    segs = w.get(day) or [["09:00", "10:00"]]
    w = {**w, day: segs}
    start, end = data.draw(st.sampled_from(segs))
    window = CallWindow.from_task_fields(SH, w)
    monday = date(2025, 3, 3)  # no holidays around, skip_holidays off anyway
    d = monday + timedelta(days=WEEKDAYS.index(day))
    a = at_local(SH, d.year, d.month, d.day) + timedelta(minutes=int(start[:2]) * 60 + int(start[3:]))
    b = at_local(SH, d.year, d.month, d.day) + timedelta(minutes=int(end[:2]) * 60 + int(end[3:]))
    assert window.is_open(a)
    assert window.is_open(b - timedelta(microseconds=1))
    assert window.is_open(b) == reference_open(w, b.astimezone(ZoneInfo(SH)).replace(tzinfo=None))


@settings(max_examples=200, deadline=None)
@given(weekly, instants, st.booleans())
def test_next_open_is_open_and_nothing_earlier_is(w, at, skip):
    window = CallWindow.from_task_fields(SH, w, skip_holidays=skip)
    nxt = window.next_open(at)
    if window.is_open(at):
        assert nxt == at
        return
    if nxt is None:
        return
    assert nxt > at
    assert window.is_open(nxt)
    assert not window.is_open(nxt - timedelta(microseconds=1))
    # Sampled instants between `at` and `nxt` are all closed.
    step = (nxt - at) / 17
    for i in range(1, 17):
        assert not window.is_open(at + step * i)


@settings(max_examples=200, deadline=None)
@given(weekly, instants)
def test_open_until_ends_the_open_stretch(w, at):
    window = CallWindow.from_task_fields(SH, w)
    until = window.open_until(at)
    if not window.is_open(at):
        assert until is None
        return
    assert until > at
    assert not window.is_open(until)
    assert window.is_open(until - timedelta(microseconds=1))


def test_open_stretch_runs_across_midnight():
    window = CallWindow.from_task_fields(SH, {"mon": [["20:00", "24:00"]],
                                             "tue": [["00:00", "02:00"]]})
    at = at_local(SH, 2025, 3, 3, 23, 59, 59)  # a Monday
    assert window.is_open(at)
    assert window.is_open(at_local(SH, 2025, 3, 4, 0, 0))
    assert window.open_until(at) == at_local(SH, 2025, 3, 4, 2, 0)
    assert not window.is_open(at_local(SH, 2025, 3, 3, 24 - 1, 59) + timedelta(hours=3))


def test_midnight_end_is_exclusive_without_a_next_day_segment():
    window = CallWindow.from_task_fields(SH, {"mon": [["22:00", "24:00"]]})
    assert window.is_open(at_local(SH, 2025, 3, 3, 23, 59, 59))
    assert not window.is_open(at_local(SH, 2025, 3, 4, 0, 0))
    assert window.next_open(at_local(SH, 2025, 3, 4, 0, 0)) == at_local(SH, 2025, 3, 10, 22, 0)


def test_date_range_bounds_are_local_days():
    window = CallWindow.from_task_fields(SH, {}, date_start=date(2025, 3, 3),
                                         date_end=date(2025, 3, 4))
    # 2025-03-02 16:00 UTC is 2025-03-03 00:00 in Shanghai: inside the range.
    assert window.is_open(datetime(2025, 3, 2, 16, 0, tzinfo=UTC))
    assert not window.is_open(datetime(2025, 3, 2, 15, 59, tzinfo=UTC))
    assert not window.is_open(at_local(SH, 2025, 3, 5, 0, 0))
    assert window.next_open(at_local(SH, 2025, 3, 5, 0, 0)) is None
    assert window.next_open(at_local(SH, 2025, 3, 1)) == at_local(SH, 2025, 3, 3)


def test_statutory_holiday_is_skipped_only_when_asked():
    national_day = at_local(SH, 2025, 10, 1, 10, 0)  # a Wednesday, and a holiday
    assert is_statutory_holiday(national_day.date())
    assert not CallWindow.from_task_fields(SH, WORKDAYS_9_TO_6, skip_holidays=True) \
        .is_open(national_day)
    assert CallWindow.from_task_fields(SH, WORKDAYS_9_TO_6).is_open(national_day)
    # Days off moved by 调休 are holidays too (2025-10-08, a Wednesday).
    assert not CallWindow.from_task_fields(SH, WORKDAYS_9_TO_6, skip_holidays=True) \
        .is_open(at_local(SH, 2025, 10, 8, 10, 0))
    # The next open instant after the Golden Week (Oct 1–8) is Thursday 2025-10-09 09:00.
    window = CallWindow.from_task_fields(SH, WORKDAYS_9_TO_6, skip_holidays=True)
    assert window.next_open(national_day) == at_local(SH, 2025, 10, 9, 9, 0)


def test_makeup_workday_on_a_weekend_is_dialled_with_weekday_segments():
    sunday = date(2025, 9, 28)  # 调休上班 for the National Day holiday
    assert sunday.weekday() == 6 and is_makeup_workday(sunday)
    assert not is_statutory_holiday(sunday)
    at = at_local(SH, 2025, 9, 28, 9, 30)
    assert CallWindow.from_task_fields(SH, WORKDAYS_9_TO_6, skip_holidays=True).is_open(at)
    assert not CallWindow.from_task_fields(SH, WORKDAYS_9_TO_6, skip_holidays=True) \
        .is_open(at_local(SH, 2025, 9, 28, 12, 30))  # the lunch break of a weekday
    # Without skip_holidays it is an ordinary Sunday.
    assert not CallWindow.from_task_fields(SH, WORKDAYS_9_TO_6).is_open(at)
    # A weekend day that is neither stays closed.
    assert not CallWindow.from_task_fields(SH, WORKDAYS_9_TO_6, skip_holidays=True) \
        .is_open(at_local(SH, 2025, 9, 27, 9, 30))


def test_makeup_workday_keeps_its_own_segments_when_it_has_some():
    w = {**WORKDAYS_9_TO_6, "sun": [["14:00", "15:00"]]}
    window = CallWindow.from_task_fields(SH, w, skip_holidays=True)
    assert window.is_open(at_local(SH, 2025, 9, 28, 14, 30))
    assert not window.is_open(at_local(SH, 2025, 9, 28, 9, 30))


@settings(max_examples=50, deadline=None)
@given(st.dates(min_value=date(2024, 1, 1), max_value=date(2026, 12, 31)))
def test_holiday_and_makeup_workday_never_coincide(day):
    assert not (is_statutory_holiday(day) and is_makeup_workday(day))


def test_forbidden_ranges_cut_the_window_end_minute_included():
    window = CallWindow.from_task_fields(
        SH, {d: [["09:00", "18:00"]] for d in WEEKDAYS},
        forbidden_ranges=[["2025-03-03T10:00", "2025-03-03T11:29"], ["2025-03-05", "2025-03-05"]])
    assert window.is_open(at_local(SH, 2025, 3, 3, 9, 59))
    assert not window.is_open(at_local(SH, 2025, 3, 3, 10, 0))
    assert not window.is_open(at_local(SH, 2025, 3, 3, 11, 29, 59))
    assert window.is_open(at_local(SH, 2025, 3, 3, 11, 30))
    assert window.open_until(at_local(SH, 2025, 3, 3, 9, 0)) == at_local(SH, 2025, 3, 3, 10, 0)
    assert not window.is_open(at_local(SH, 2025, 3, 5, 12, 0))
    assert window.next_open(at_local(SH, 2025, 3, 4, 19, 0)) == at_local(SH, 2025, 3, 6, 9, 0)


@settings(max_examples=100, deadline=None)
@given(weekly, instants)
def test_forbidden_instants_are_never_open(w, at):
    local = at.astimezone(ZoneInfo(SH)).replace(tzinfo=None)
    start = local - timedelta(minutes=30)
    end = local + timedelta(minutes=30)
    window = CallWindow.from_task_fields(
        SH, w, forbidden_ranges=[[start.strftime("%Y-%m-%dT%H:%M"),
                                  end.strftime("%Y-%m-%dT%H:%M")]])
    assert not window.is_open(at)


def test_empty_schedule_means_no_hour_restriction():
    window = CallWindow.from_task_fields(SH, {})
    assert window.is_open(at_local(SH, 2025, 3, 3, 3, 0))


def test_dst_zone_uses_wall_clock():
    ny = "America/New_York"
    window = CallWindow.from_task_fields(ny, {"sun": [["01:00", "04:00"]]})
    # 2025-03-09: clocks jump 02:00 → 03:00; 06:30 UTC is 01:30 EST, 07:30 UTC is 03:30 EDT.
    assert window.is_open(datetime(2025, 3, 9, 6, 30, tzinfo=UTC))
    assert window.is_open(datetime(2025, 3, 9, 7, 30, tzinfo=UTC))
    assert window.open_until(datetime(2025, 3, 9, 6, 30, tzinfo=UTC)) == \
        datetime(2025, 3, 9, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("bad", [
    {"weekly": {"xyz": []}}, {"weekly": {"mon": [["9", "10:00"]]}},
    {"weekly": {"mon": [["25:00", "26:00"]]}}, {"forbidden_ranges": [["nope", "2025-01-01"]]},
    {"zone": "Mars/Base"},
])
def test_bad_settings_raise_window_error(bad):
    args = {"zone": SH, "weekly": {}, **bad}
    with pytest.raises(WindowError):
        CallWindow.from_task_fields(args.pop("zone"), args.pop("weekly"), **args)


def test_naive_instants_are_refused():
    with pytest.raises(WindowError):
        CallWindow.from_task_fields(SH, {}).is_open(datetime(2025, 1, 1))
