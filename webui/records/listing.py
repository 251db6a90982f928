"""One page of call records and how many there are, fast on a million rows.

The page is read with LIMIT per_page + 1 (the extra row says whether a next page exists),
newest first, selecting only the columns shown. Counting is the slow part on big sets: an
exact COUNT of a broad filter reads every matching row. So the count stops at COUNT_CAP
("more than 10,000") and is given COUNT_BUDGET_S (100 ms); a count that needs longer is
abandoned and the pager offers previous/next only. Exports count exactly, in their job.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from core.call_columns import Column, selected_attrs
from core.models import Call
from webui.security import select_visible

COUNT_CAP = 10_000
COUNT_BUDGET_S = 0.1


@dataclass(frozen=True)
class Page:
    rows: Sequence
    page: int
    per_page: int
    has_next: bool
    total: int | None  # None: not counted in time
    capped: bool  # more than `total` exist

    @property
    def pages(self) -> int | None:
        if self.total is None or self.capped:
            return None
        return max(1, -(-self.total // self.per_page))


def read_page(session: Session, where: ColumnElement[bool], columns: Sequence[Column],
              page: int, per_page: int) -> Page:
    """Rows `page` (1-based) of the visible calls matching `where`, and their count."""
    stmt = (select_visible(Call).with_only_columns(*selected_attrs(columns)).where(where)
            .order_by(Call.created_at.desc(), Call.id.desc())
            .limit(per_page + 1).offset((page - 1) * per_page))
    rows = session.execute(stmt).all()
    total, capped = count(session, where)
    return Page(rows[:per_page], page, per_page, len(rows) > per_page, total, capped)


def count(session: Session, where: ColumnElement[bool]) -> tuple[int | None, bool]:
    """(count up to COUNT_CAP, whether capped); (None, False) when over budget."""
    matching = select_visible(Call).with_only_columns(Call.id).where(where).limit(COUNT_CAP + 1)
    stmt = select(func.count()).select_from(matching.subquery())
    try:
        with time_budget(session, COUNT_BUDGET_S):
            n = session.scalar(stmt)
    except OperationalError as exc:
        if not _interrupted(exc):
            raise
        return None, False
    return min(n, COUNT_CAP), n > COUNT_CAP


def _interrupted(exc: OperationalError) -> bool:
    message = str(exc.orig).lower()
    return "interrupted" in message or "statement timeout" in message


@contextmanager
def time_budget(session: Session, seconds: float) -> Iterator[None]:
    """Cancel the statements run inside after `seconds` (they raise OperationalError)."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        raw = connection.connection.driver_connection
        deadline = time.monotonic() + seconds
        # SQLite calls the handler every N virtual-machine steps; non-zero interrupts.
        raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 20_000)
        try:
            yield
        finally:
            raw.set_progress_handler(None, 0)
        return
    # PostgreSQL: a local timeout inside a savepoint that is always rolled back, which
    # also undoes the SET LOCAL (the statements inside only read) and, after a cancelled
    # statement, leaves the request's transaction usable.
    nested = session.begin_nested()
    try:
        session.execute(text(f"SET LOCAL statement_timeout = {max(1, int(seconds * 1000))}"))
        yield
    finally:
        nested.rollback()
