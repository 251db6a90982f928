"""Call windows (呼叫时间, FEATURES.md T1/C1): when a task may dial. Pure functions, no I/O.

A window is a task's date range, its weekly segments (several per weekday, "HH:MM" local
wall-clock times, start inclusive, end exclusive, "24:00" allowed as an end), China's
statutory holidays and make-up workdays when "skip holidays" (跳过法定节假日) is on, and
forbidden ranges (禁呼时间), all read in the account's time zone.

Rules, in order, for a local calendar day `d`:

1. outside `date_start ≤ d ≤ date_end` → closed all day;
2. with skip_holidays, a statutory holiday (the `holidays` package's China calendar) → closed;
   a make-up workday (调休上班, a Saturday or Sunday the State Council made a workday) →
   the segments of the first weekday Mon–Fri that has any (its own weekday's segments
   when it has some of its own);
3. otherwise the segments of its weekday; a window with no weekly schedule at all is open all
   day (the console always sets one; an empty schedule means "no hour restriction");
4. forbidden ranges are cut out of the result. A range is `[start, end]` in local time
   ("YYYY-MM-DDTHH:MM", or a bare date meaning the whole day); its end minute is included.

Times are compared as local wall-clock times, so zones with daylight saving behave as their
clocks read (a segment that falls in a skipped hour is shortened by it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_MINUTES = 24 * 60
HORIZON_DAYS = 400  # how far next_open looks ahead before saying "never"

Segment = tuple[int, int]  # minutes since local midnight, [start, end)


class WindowError(ValueError):
    """A window setting cannot be read; the message says which value."""


def _minutes(text: str) -> int:
    try:
        hh, mm = text.split(":")
        value = int(hh) * 60 + int(mm)
    except (ValueError, AttributeError):
        raise WindowError(f"bad time {text!r}, expected HH:MM") from None
    if not 0 <= value <= DAY_MINUTES or not 0 <= int(mm) < 60:
        raise WindowError(f"bad time {text!r}, expected HH:MM")
    return value


def _merge(segments: Iterable[Segment]) -> tuple[Segment, ...]:
    out: list[list[int]] = []
    for start, end in sorted(s for s in segments if s[0] < s[1]):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return tuple((s, e) for s, e in out)


def _local_point(text: str, is_end: bool) -> datetime:
    text = str(text).strip()
    try:
        if "T" in text or " " in text:
            value = datetime.fromisoformat(text.replace(" ", "T"))
            value = value.replace(second=0, microsecond=0, tzinfo=None)
            return value + timedelta(minutes=1) if is_end else value
        day = date.fromisoformat(text)
    except ValueError:
        raise WindowError(f"bad forbidden range bound {text!r}") from None
    start = datetime.combine(day, time())
    return start + timedelta(days=1) if is_end else start


@lru_cache(maxsize=64)
def _china(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("CN", years=year)


def is_statutory_holiday(day: date) -> bool:
    """A day off in China's statutory calendar (including days moved by 调休)."""
    cal = _china(day.year)
    return day in cal and day not in cal.weekend_workdays


def is_makeup_workday(day: date) -> bool:
    """A weekend day that China's calendar makes a workday (调休上班)."""
    return day in _china(day.year).weekend_workdays


@dataclass(frozen=True)
class CallWindow:
    """A task's call window. Build it with `from_task_fields` from stored values."""

    zone: ZoneInfo
    weekly: Mapping[str, tuple[Segment, ...]] = field(default_factory=dict)
    date_start: date | None = None
    date_end: date | None = None
    skip_holidays: bool = False
    # Local naive [start, end) ranges, end exclusive.
    forbidden: tuple[tuple[datetime, datetime], ...] = ()

    @classmethod
    def from_task_fields(cls, zone: str, weekly: Mapping[str, Sequence[Sequence[str]]] | None,
                         date_start: date | None = None, date_end: date | None = None,
                         skip_holidays: bool = False,
                         forbidden_ranges: Sequence[Sequence[str]] = ()) -> CallWindow:
        """Convert the stored task fields. Raises WindowError on a value it cannot read."""
        try:
            tz = ZoneInfo(zone)
        except (KeyError, ValueError) as exc:
            raise WindowError(f"unknown time zone {zone!r}") from exc
        parsed: dict[str, tuple[Segment, ...]] = {}
        for day, segments in (weekly or {}).items():
            if day not in WEEKDAYS:
                raise WindowError(f"unknown weekday {day!r}")
            parsed[day] = _merge((_minutes(a), _minutes(b)) for a, b in segments)
        forbidden = []
        for item in forbidden_ranges or ():
            if len(item) != 2:
                raise WindowError(f"bad forbidden range {item!r}")
            start, end = _local_point(item[0], False), _local_point(item[1], True)
            if start < end:
                forbidden.append((start, end))
        return cls(tz, parsed, date_start, date_end, bool(skip_holidays), tuple(forbidden))

    # -- one local day -------------------------------------------------------------------

    def day_segments(self, day: date) -> tuple[Segment, ...]:
        """The open segments of a local day, before forbidden ranges are cut out."""
        if self.date_start and day < self.date_start:
            return ()
        if self.date_end and day > self.date_end:
            return ()
        if not self.weekly:
            weekday_segments: tuple[Segment, ...] = ((0, DAY_MINUTES),)
        else:
            weekday_segments = self.weekly.get(WEEKDAYS[day.weekday()], ())
        if not self.skip_holidays:
            return weekday_segments
        if is_makeup_workday(day):
            if weekday_segments or not self.weekly:
                return weekday_segments
            for name in WEEKDAYS[:5]:
                if self.weekly.get(name):
                    return self.weekly[name]
            return ()
        if is_statutory_holiday(day):
            return ()
        return weekday_segments

    def day_intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """Open [start, end) intervals of a local day as naive local datetimes."""
        midnight = datetime.combine(day, time())
        intervals = [(midnight + timedelta(minutes=s), midnight + timedelta(minutes=e))
                     for s, e in self.day_segments(day)]
        for f_start, f_end in self.forbidden:
            cut = []
            for start, end in intervals:
                if f_end <= start or f_start >= end:
                    cut.append((start, end))
                    continue
                if start < f_start:
                    cut.append((start, f_start))
                if f_end < end:
                    cut.append((f_end, end))
            intervals = cut
        return intervals

    # -- questions about an instant ------------------------------------------------------

    def local(self, at: datetime) -> datetime:
        """`at` (aware) as a naive local wall-clock time in the window's zone."""
        if at.tzinfo is None:
            raise WindowError("need an aware datetime")
        return at.astimezone(self.zone).replace(tzinfo=None)

    def _aware(self, local: datetime) -> datetime:
        return local.replace(tzinfo=self.zone)

    def is_open(self, at: datetime) -> bool:
        """May the task dial at instant `at`?"""
        here = self.local(at)
        return any(start <= here < end for start, end in self.day_intervals(here.date()))

    def next_open(self, at: datetime, horizon_days: int = HORIZON_DAYS) -> datetime | None:
        """The first instant ≥ `at` when the window is open (`at` itself when open now), or
        None when it never opens within `horizon_days` (e.g. the date range has passed)."""
        here = self.local(at)
        for offset in range(horizon_days + 1):
            day = here.date() + timedelta(days=offset)
            if self.date_end and day > self.date_end:
                return None
            for start, end in self.day_intervals(day):
                if end > here:
                    return at if start <= here else self._aware(start)
        return None

    def open_until(self, at: datetime) -> datetime | None:
        """When the open stretch that contains `at` ends (it may run across midnight), or
        None when the window is closed at `at`."""
        here = self.local(at)
        intervals = self.day_intervals(here.date())
        current = next(((s, e) for s, e in intervals if s <= here < e), None)
        if current is None:
            return None
        end = current[1]
        for _ in range(HORIZON_DAYS):
            nxt = [(s, e) for s, e in self.day_intervals(end.date()) if s <= end < e]
            if not nxt:
                break
            end = nxt[0][1]
        return self._aware(end)
