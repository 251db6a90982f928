"""The columns of the call records, for the list (自定义展示列) and the export (导出字段) alike.

Each column names the `Call` attributes it reads, so the list and the export select only
those (never the CDR JSON a column does not show), and the look-ups it needs per batch of
rows (task names, agents, seen notices, numbers' creation times). Its `text` is what the
list shows; its `cell` what the export writes (numbers, durations and times stay typed so
that spreadsheets can sum and sort them). Labels are the web layer's (translated there);
stored values that need words (status, grade …) are translated through `Context.labels`.

The export does not call `cell` per value: `ExportReader` turns the columns into one reader
per column over the selected row, which gives what the sheet's cell gets, ready to write —
text already formula-safe, times and durations as Excel serial numbers — the same cells
`cell`/`text` give, worked out once per distinct value where a column's cell depends on the
value alone (status words, tags, outcomes …).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, BigInteger, Text, any_, bindparam, cast, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from core import excel_safe
from core.models import Call, PushMessage, Task, TaskNumber, User
from core.transfer import mask_phone


@dataclass
class Context:
    """What reading a batch of rows needs besides the rows."""

    zone: ZoneInfo
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # kind → value → word
    mask: str | None = None  # core.transfer.mask_phone mode for exported numbers; None: none
    tasks: dict[int, str] = field(default_factory=dict)
    agents: dict[int, str] = field(default_factory=dict)
    seen: set[int] = field(default_factory=set)  # calls whose WeChat notice was opened
    numbers: dict[int, datetime] = field(default_factory=dict)  # task_number_id → created_at

    def word(self, kind: str, value) -> str:
        if value is None or value == "":
            return ""
        return str(self.labels.get(kind, {}).get(value, value))

    def local(self, value: datetime | None) -> datetime | None:
        """`value` as a naive wall-clock time of the viewer's zone (spreadsheets have none)."""
        return value.astimezone(self.zone).replace(tzinfo=None) if value else None


# --- outcomes: the same buckets as core.call_query's filters --------------------------------

def transfer_outcome(result: Mapping | None) -> str:
    state = (result or {}).get("state")
    return state if state in ("success", "failed") else "none"


def sms_outcome(result: Mapping | None) -> str:
    return {"success": "sent", "failed": "failed"}.get((result or {}).get("state"), "none")


def push_outcome(result: Mapping | None, seen: bool) -> str:
    if seen:
        return "seen"
    return {"success": "pushed", "failed": "failed"}.get((result or {}).get("state"), "none")


def target(result: Mapping | None) -> str:
    """Who a transfer or notice went to, as the result names it."""
    result = result or {}
    value = result.get("target")
    if isinstance(value, Mapping):  # a transfer's target: {"name", "extension", "dial", …}
        value = value.get("name") or value.get("extension") or value.get("dial")
    return str(value or result.get("group") or "")  # a failed transfer: the group tried


def _described(kind: str, outcome: str, result: Mapping | None, ctx: Context) -> str:
    if outcome == "none":
        return ""
    who = target(result)
    word = ctx.word(kind, outcome)
    return f"{who} {word}".strip() if who else word


def _clock(seconds: int | None) -> str:
    seconds = seconds or 0
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def _stamp(value: datetime | None, ctx: Context) -> str:
    local = ctx.local(value)
    return local.strftime("%Y-%m-%d %H:%M:%S") if local else ""


# --- reading for the export --------------------------------------------------------------

_MISS = object()
MEMO_SIZE = 4096  # distinct values kept per column: memory stays flat whatever the rows


def memoised(work: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`work` worked out once per distinct (hashable) argument, up to MEMO_SIZE of them
    (None results included)."""
    memo: dict = {}

    def get(key):
        out = memo.get(key, _MISS)
        if out is _MISS:
            if len(memo) >= MEMO_SIZE:
                memo.clear()
            out = memo[key] = work(key)
        return out
    return get


def _by_value(work: Callable[[Any], Any], i: int) -> Callable[[Sequence], Any]:
    """memoised(work) applied to the row's value at `i`."""
    get = memoised(work)
    return lambda row: get(row[i])


def _is_json(attr: str) -> bool:
    return isinstance(getattr(Call, attr).type, JSON)


def _decode_json(raw: str | None):
    """What the JSON column type gives for the text the export selects instead (decoded
    once per distinct text, not per row)."""
    return None if raw is None else json.loads(raw)


def _finish(kind: str, value):
    """An export cell (Column.export's value) as its reader gives it: None for an empty cell,
    text formula-safe, times and durations as serial numbers."""
    if value is None or value == "":
        return None
    if kind == "text":
        return excel_safe.cell(str(value))
    if kind in ("time", "duration"):
        return excel_safe.serial(value)
    return value


class ExportReader:
    """How the export reads `columns`: `selects`, the SQL expressions to select (each
    labelled with its Call attribute's name, so that load_lookups reads the rows too; JSON
    attributes as their text, decoded once per distinct value), and `readers`, one function
    per column from the selected row to the cell ready to write (None: leave it empty) —
    the cell Column.export gives, as `_finish` writes it."""

    def __init__(self, columns: Sequence[Column], ctx: Context):
        names = sorted({"id", "viewed"}.union(*(c.reads for c in columns)))
        self.selects = [cast(getattr(Call, n), Text).label(n) if _is_json(n)
                        else getattr(Call, n) for n in names]
        at = {n: i for i, n in enumerate(names)}
        self.readers = [self._reader(c, ctx, at) for c in columns]

    @staticmethod
    def _reader(column: Column, ctx: Context, at: Mapping[str, int]):
        if column.reader is not None:
            return column.reader(ctx, *(at[n] for n in column.reads))
        decoders = [(n, at[n], _decode_json if _is_json(n) else None) for n in column.reads]

        def cell(values: dict):
            return _finish(column.kind, column.export(SimpleNamespace(**values), ctx))
        if column.by_value:  # a single value read: its cell is worked out once
            ((name, i, decode),) = decoders
            return _by_value(lambda value: cell({name: decode(value) if decode else value}), i)
        return lambda row: cell({n: decode(row[i]) if decode else row[i]
                                 for n, i, decode in decoders})


# --- the registry -----------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    key: str
    reads: tuple[str, ...]  # Call attributes
    text: Callable[[Any, Context], Any]  # the list's cell
    cell: Callable[[Any, Context], Any] | None = None  # the export's, when it differs
    needs: frozenset[str] = frozenset()  # look-ups: "tasks", "agents", "seen", "numbers"
    # What the export's cell holds: text, number, time (naive local) or duration (timedelta);
    # the writer picks its cell type once per column, not per value.
    kind: str = "text"
    # The export's reader, when the column has its own (see ExportReader): called once per
    # export with the context and the positions of `reads` in the row, it returns a function
    # of the row giving the cell ready to write, or None for an empty cell.
    reader: Callable[..., Callable[[Sequence], Any]] | None = None
    # The export's cell depends on the (single) value read alone, so the export works it out
    # once per distinct value (statuses, tags, outcomes repeat across the rows).
    by_value: bool = False

    def export(self, row, ctx: Context):
        return (self.cell or self.text)(row, ctx)


# --- the export's readers (one call per cell: kept to a few operations each) ------------

_TRIGGERS = excel_safe.TRIGGERS


def _text_reader(_ctx: Context, i: int) -> Callable[[Sequence], str | None]:
    """A text attribute as written: formula-safe, None when empty."""
    def read(row):
        value = row[i]
        if value is None or value == "":
            return None
        value = str(value)
        return "'" + value if value.startswith(_TRIGGERS) else value
    return read


def _number_reader(_ctx: Context, i: int) -> Callable[[Sequence], Any]:
    return itemgetter(i)  # None (no value) leaves the cell empty


def _time_reader(ctx: Context, i: int) -> Callable[[Sequence], float | None]:
    """An aware time as the serial number of the viewer's wall-clock time:
    excel_safe.serial(ctx.local(value)), inlined."""
    zone, epoch, day = ctx.zone, excel_safe.EPOCH, excel_safe.DAY

    def read(row):
        value = row[i]
        if value is None:
            return None
        if value.tzinfo is None:  # as UTCDateTime reads it
            value = value.replace(tzinfo=UTC)
        local = value.astimezone(zone).replace(tzinfo=None)
        delta = local - epoch
        days = delta.days + (delta.seconds + delta.microseconds / 1e6) / day
        return days + 1 if days > 59 else excel_safe.serial(local)
    return read


def _seconds_reader(_ctx: Context, i: int) -> Callable[[Sequence], float]:
    seconds_serial = excel_safe.seconds_serial
    return lambda row: seconds_serial(row[i] or 0)


def _plain(attr: str, kind: str = "text", by_value: bool = False) -> Column:
    """An attribute as it is; `by_value`: its values repeat (regions …)."""
    return Column(attr, (attr,), lambda r, _c: getattr(r, attr), kind=kind, by_value=by_value,
                  reader=_number_reader if kind == "number" else
                  None if by_value else _text_reader)


def _worded(key: str, kind: str) -> Column:
    return Column(key, (key,), lambda r, c: c.word(kind, getattr(r, key)), by_value=True)


def _time(key: str) -> Column:
    return Column(key, (key,), lambda r, c: _stamp(getattr(r, key), c),
                  lambda r, c: c.local(getattr(r, key)), kind="time", reader=_time_reader)


def _seconds(key: str) -> Column:
    return Column(key, (key,), lambda r, _c: _clock(getattr(r, key)),
                  lambda r, _c: timedelta(seconds=getattr(r, key) or 0), kind="duration",
                  reader=_seconds_reader)


def _phone_reader(ctx: Context, i: int) -> Callable[[Sequence], str | None]:
    mask = ctx.mask

    def read(row):
        phone = row[i]
        if mask:
            phone = mask_phone(phone, mask)
        if not phone:
            return None
        return "'" + phone if phone.startswith(_TRIGGERS) else phone
    return read


def _looked_up(table: str) -> Callable[..., Callable[[Sequence], str | None]]:
    """A name looked up by id in ctx.tasks / ctx.agents. Look-ups only ever add names (each
    batch's before its rows are read), so an id's cell is worked out once."""
    def reader(ctx: Context, i: int):
        names = getattr(ctx, table)
        return _by_value(lambda key: _finish("text", names.get(key, "")), i)
    return reader


def _push_reader(ctx: Context, id_at: int, push_at: int) -> Callable[[Sequence], str | None]:
    """The notice's outcome also depends on whether it was seen (ctx.seen: each batch's)."""
    def work(key):
        push, seen = _decode_json(key[0]), key[1]
        return _finish("text", _described("push", push_outcome(push, seen), push, ctx))
    cell = memoised(work)
    return lambda row: cell((row[push_at], row[id_at] in ctx.seen))


def _number_created_reader(ctx: Context, i: int) -> Callable[[Sequence], float | None]:
    stamp = _time_reader(ctx, 0)
    return lambda row: stamp((ctx.numbers.get(row[i]),))


COLUMNS: tuple[Column, ...] = (
    Column("phone", ("phone",), lambda r, _c: r.phone,
           lambda r, c: mask_phone(r.phone, c.mask) if c.mask else r.phone,
           reader=_phone_reader),
    Column("task", ("task_id",), lambda r, c: c.tasks.get(r.task_id, ""),
           needs=frozenset({"tasks"}), reader=_looked_up("tasks")),
    _time("created_at"),
    _worded("status", "status"),
    _worded("grade", "grade"),
    _seconds("talk_seconds"),
    _seconds("ring_seconds"),
    _plain("interactions", "number"),
    Column("tags", ("tags",), lambda r, _c: "、".join(str(t) for t in r.tags or ()),
           by_value=True),
    Column("transfer", ("transfer",), lambda r, c: _described(
        "transfer", transfer_outcome(r.transfer), r.transfer, c), by_value=True),
    Column("push", ("id", "push"), lambda r, c: _described(
        "push", push_outcome(r.push, r.id in c.seen), r.push, c), needs=frozenset({"seen"}),
        reader=_push_reader),
    Column("sms", ("sms",), lambda r, c: c.word("sms", sms_outcome(r.sms))
           if r.sms else "", by_value=True),
    _plain("region", by_value=True),
    _plain("carrier", by_value=True),
    _worded("gender", "gender"),
    _worded("hangup_side", "hangup_side"),
    Column("viewed", ("viewed",), lambda r, c: c.word("viewed", "yes" if r.viewed else "no"),
           by_value=True),
    _plain("score", "number"),
    _plain("unrecognised", "number"),
    _plain("caller_id", by_value=True),
    Column("agent", ("agent_id",), lambda r, c: c.agents.get(r.agent_id, ""),
           needs=frozenset({"agents"}), reader=_looked_up("agents")),
    _plain("agent_notes"),
    Column("variables", ("variables",), lambda r, _c: "; ".join(
        f"{k}: {v}" for k, v in (r.variables or {}).items()), by_value=True),
    _time("answered_at"),
    _time("ended_at"),
    Column("number_created", ("task_number_id",),
           lambda r, c: _stamp(c.numbers.get(r.task_number_id), c),
           lambda r, c: c.local(c.numbers.get(r.task_number_id)), needs=frozenset({"numbers"}),
           kind="time", reader=_number_created_reader),
)
BY_KEY: dict[str, Column] = {c.key: c for c in COLUMNS}
# What the list shows until the user chooses (the seed's: number, task, time, outcome …).
DEFAULT_KEYS = ("phone", "task", "created_at", "status", "grade", "talk_seconds",
                "interactions", "tags", "transfer", "push")


def chosen(keys: Iterable[str] | None, default: Sequence[str] = DEFAULT_KEYS) -> list[Column]:
    """The known columns among `keys`, in their order, without repeats (`default` when
    none is known)."""
    seen, out = set(), []
    for key in keys or ():
        if key in BY_KEY and key not in seen:
            seen.add(key)
            out.append(BY_KEY[key])
    return out or [BY_KEY[k] for k in default]


def selected_attrs(columns: Iterable[Column]) -> list:
    """The Call attributes to select for `columns` (id and viewed always: the list links
    each row and marks what was seen)."""
    names = {"id", "viewed"}
    for c in columns:
        names.update(c.reads)
    return [getattr(Call, n) for n in sorted(names)]


def load_lookups(session: Session, ctx: Context, rows: Sequence, columns: Iterable[Column]) -> None:
    """Fill `ctx` with what `columns` need for `rows` (one query per kind of look-up)."""
    needs = set().union(*(c.needs for c in columns))
    if not needs:
        return

    def ids(attr: str) -> set[int]:
        return {getattr(r, attr) for r in rows if getattr(r, attr) is not None}

    among = _among_array if session.get_bind().dialect.name == "postgresql" else _among_list
    if "tasks" in needs and (wanted := ids("task_id") - ctx.tasks.keys()):
        ctx.tasks.update(session.execute(select(Task.id, Task.name)
                                         .where(among(Task.id, wanted))).all())
    if "agents" in needs and (wanted := ids("agent_id") - ctx.agents.keys()):
        ctx.agents.update((i, d or u) for i, d, u in session.execute(
            select(User.id, User.display_name, User.username).where(among(User.id, wanted))))
    if "seen" in needs:
        ctx.seen = set(session.scalars(select(PushMessage.call_id).where(
            among(PushMessage.call_id, [r.id for r in rows]),
            PushMessage.seen_at.is_not(None))))
    if "numbers" in needs:
        ctx.numbers = dict(session.execute(select(TaskNumber.id, TaskNumber.created_at).where(
            among(TaskNumber.id, ids("task_number_id")))).all())


def _among_list(column, ids: Iterable[int]):
    return column.in_(list(ids))


def _among_array(column, ids: Iterable[int]):
    """column = ANY(one array parameter): an export's batch has thousands of ids, which IN
    would send as as many parameters (each query compiled and parsed again)."""
    return column == any_(bindparam(None, list(ids), type_=ARRAY(BigInteger)))
