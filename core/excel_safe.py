"""Formula-safe spreadsheet cells: a text cell that starts with = + - @ (or a tab / carriage
return) is read as a formula by Excel and LibreOffice — CSV/formula injection (OWASP).
Exports pass every cell through `cell()`; such text gets a leading apostrophe, which
spreadsheets show as text.

Also times and durations as Excel serial numbers (`serial`), for writers that write them as
numbers with a time format instead of converting each value themselves."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

# What a risky text starts with; `text.startswith(TRIGGERS)` is the test `cell` makes, for
# readers that check their strings inline.
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def cell(value):
    """`value` as it may be written to a sheet: numbers and dates unchanged, risky text
    prefixed with an apostrophe."""
    if isinstance(value, str) and value.startswith(TRIGGERS):
        return "'" + value
    return value


def row(values: Iterable) -> list:
    return [cell(v) for v in values]


EPOCH = datetime(1899, 12, 31)  # day 0 of Excel's 1900 date system
DAY = 86400


def serial(value: datetime | timedelta) -> float:
    """A naive datetime or a timedelta as Excel's serial number (days since the 1900 epoch,
    with Excel's phantom 1900-02-29): the very float xlsxwriter's write_datetime stores for
    it, so write_number with the same format writes the same cell, without the conversion
    xlsxwriter repeats for every value."""
    if isinstance(value, timedelta):
        return value.days + (value.seconds + value.microseconds / 1e6) / DAY
    if value.tzinfo is not None:
        raise ValueError("Excel times have no zone: convert to wall-clock time first")
    delta = value - EPOCH
    days = delta.days + (delta.seconds + delta.microseconds / 1e6) / DAY
    if days > 59:
        return days + 1
    return days - 1 if value.isocalendar() == (1900, 1, 1) else days  # as xlsxwriter does


def seconds_serial(seconds: int) -> float:
    """A whole number of seconds as a duration's serial number: serial(timedelta(seconds=…))
    without the timedelta."""
    days, rest = divmod(seconds, DAY)
    return days + rest / DAY
