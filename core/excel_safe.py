"""Formula-safe spreadsheet cells: a text cell that starts with = + - @ (or a tab / carriage
return) is read as a formula by Excel and LibreOffice — CSV/formula injection (OWASP).
Exports pass every cell through `cell()`; such text gets a leading apostrophe, which
spreadsheets show as text."""

from __future__ import annotations

from collections.abc import Iterable

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def cell(value):
    """`value` as it may be written to a sheet: numbers and dates unchanged, risky text
    prefixed with an apostrophe."""
    if isinstance(value, str) and value.startswith(_TRIGGERS):
        return "'" + value
    return value


def row(values: Iterable) -> list:
    return [cell(v) for v in values]
