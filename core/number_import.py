"""Number import rules (导入号码, FEATURES.md T3), free of I/O: which file types are
accepted, which columns hold what, how cells become text, which rows are imported and which
are reported back with a reason, and where the numbers go in the dialling order.

A sheet's first non-blank row is its header: 号码 (or 电话, 手机号 …) is the phone column,
任务别名 names the task in a multi-task file (an alias or a task's name), and every other
named column becomes a call variable named after it ({姓名} in a script). Normal import
checks and de-duplicates; fast import (极速导入) takes the phone column as it is.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum

from core.phones import PhoneError, normalise

JOB = "workers.imports.import_numbers"  # the rq job (core.jobs) that carries an import out
MAX_ROWS = 250_000
EXTENSIONS = ("xlsx", "xls", "csv")
# What the files begin with: xlsx is a zip archive, xls an OLE2 compound document.
_MAGIC = {"xlsx": b"PK\x03\x04", "xls": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"}
PHONE_MAX, RAW_PHONE_MAX = 32, 64  # TaskNumber.phone / raw_phone

PHONE_HEADERS = frozenset({"号码", "电话", "电话号码", "手机", "手机号", "手机号码", "联系电话",
                           "phone", "mobile"})
TASK_HEADERS = frozenset({"任务别名", "别名", "任务", "任务名称", "task"})
# The error file puts these before the original columns; they are skipped on reading, so a
# corrected error file can be imported as it is.
ERROR_HEADERS = ("错误行号", "错误原因")
GENDER = {"1": "男", "2": "女"}
_ESCAPED = ("=", "+", "-", "@")  # 提示 3：【性别】1-男 2-女


_HINTS = (
    "提示 1：加*字段为必填项",
    "提示 2：仅导入任务时，只需填写【号码】列",
    "提示 3：【性别】字段的可选值为【1-男 2-女】，不填为【未知】",
    "提示 4：可在表头右侧增加列（如【产品】），列名即通话变量名，话术中写 {产品} 引用",
    "提示 5：如果是从别的地方复制数据并粘贴到导入模板，建议粘贴数据到导入模板时，不要直接粘贴，"
    "而是“右键”——“选择性粘贴”，选择“值”或者“文本”，这样可避免带入一些系统无法识别的格式导致导入失败",
    f"提示 6：请不要删改表头，没有的字段可以不填；单次最多导入 {MAX_ROWS} 行",
)


@dataclass(frozen=True)
class Template:
    """A downloadable import template: its header, the note on each column and the hints."""

    filename: str
    header: tuple[str, ...]
    notes: Mapping[str, str]
    hints: tuple[str, ...]


_NOTES = {"号码*": "必填。手机号 11 位；固定电话带区号，如 010-12345678",
          "性别": "1-男 2-女，不填为未知"}
TEMPLATES = {
    "single": Template("单任务导入模板.xlsx", ("号码*", "姓名", "公司", "性别", "备注"),
                       _NOTES, _HINTS),
    "multi": Template(
        "多任务导入模板.xlsx", ("任务别名*", "号码*", "姓名", "公司", "性别", "备注"),
        {**_NOTES, "任务别名*": "必填。任务的别名（在任务设置中填写），也可填任务名称"},
        ("提示：一个表格可同时导入多个任务，【任务别名】列指明每个号码导入哪个任务", *_HINTS)),
    "fast": Template(
        "极速导入模板.xlsx", ("号码*",), _NOTES,
        ("提示：极速导入不检查重复/异常号码，所有号码均会导入系统，包括文本类型。请仔细检查数据后导入。",
         "提示：极速导入只导入【号码】列", f"提示：单次最多导入 {MAX_ROWS} 行")),
}


class Mode(StrEnum):
    NORMAL = "normal"  # 普通导入: checks and de-duplicates
    FAST = "fast"  # 极速导入: stores the phone column unchecked


class ImportFileError(ValueError):
    """The file as a whole cannot be imported; the message (Chinese) says why."""


class _Rejected(ValueError):
    """One row cannot be imported; the message (Chinese) says why."""


def file_kind(filename: str, head: bytes) -> str:
    """"xlsx", "xls" or "csv" for an upload named `filename` starting with `head`.

    Raises ImportFileError for another extension, an empty file or content that does not
    match its extension (a renamed PDF, say)."""
    kind = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if kind not in EXTENSIONS:
        raise ImportFileError("不支持的文件类型，请上传 .xlsx、.xls 或 .csv 文件")
    if not head:
        raise ImportFileError("文件为空")
    if kind in _MAGIC and not head.startswith(_MAGIC[kind]):
        raise ImportFileError(f"文件内容不是 .{kind} 格式，请用 Excel 另存为 .xlsx 后再上传")
    return kind


def cell_text(value) -> str:
    """A cell as the text it shows: Excel's 13800138000.0 is "13800138000", a date cell
    "2024-05-01", a date-time "2024-05-01 10:30"."""
    kind = type(value)  # by type, most common first: this runs for every cell of 250,000 rows
    if kind is str:
        text = value.strip()
        # Our error files and exports prefix risky text with an apostrophe
        # (core.excel_safe): read it back as it was written.
        return text[1:] if text[:1] == "'" and text[1:2] in _ESCAPED else text
    if kind is float:
        # 15 significant digits is what Excel keeps; more would show binary noise (0.1+0.2).
        return str(int(value)) if value.is_integer() else f"{value:.15g}"
    if value is None:
        return ""
    if kind is bool:
        return "是" if value else "否"
    if kind is datetime:
        if value.time() == time(0):
            return value.date().isoformat()
        return value.strftime("%Y-%m-%d %H:%M:%S" if value.second else "%Y-%m-%d %H:%M")
    if kind is date:
        return value.isoformat()
    if kind is time:
        return value.strftime("%H:%M:%S" if value.second else "%H:%M")
    return str(value).strip()  # int, timedelta (a duration cell) …


def _header_name(value) -> str:
    return cell_text(value).strip("*＊ \u3000")


@dataclass(frozen=True)
class Columns:
    """Where things are in a sheet's rows."""

    names: tuple[str, ...]  # the header as read, for the error file
    phone: int
    task: int | None = None
    variables: tuple[tuple[int, str], ...] = ()


def find_columns(header: Sequence, *, multi: bool, fast: bool) -> Columns:
    """The columns of a sheet whose header row is `header`; ImportFileError when the phone
    column (or, for a multi-task file, the task column) is missing or a name repeats."""
    names = tuple(_header_name(v) for v in header)
    phone = next((i for i, n in enumerate(names) if n.lower() in PHONE_HEADERS), None)
    if phone is None:
        raise ImportFileError("未找到号码列：表头应有“号码”列，请使用导入模板")
    task = next((i for i, n in enumerate(names) if n.lower() in TASK_HEADERS), None) \
        if multi else None
    if multi and task is None:
        raise ImportFileError("未找到任务别名列：多任务导入的表头应有“任务别名”列，请使用多任务模板")
    variables: dict[str, int] = {}
    for i, name in enumerate(names):
        if fast or i in (phone, task) or not name or name in ERROR_HEADERS:
            continue  # fast import takes only the number (极速导入只传号码)
        if name in variables:
            raise ImportFileError(f"表头“{name}”重复，请删除或改名后再导入")
        variables[name] = i
    return Columns(names, phone, task, tuple((i, n) for n, i in variables.items()))


def task_keys(tasks: Iterable[tuple[int, str, str | None]]) -> dict[str, int | None]:
    """What a multi-task file's task column may say → task id, from (id, name, alias) of the
    tasks the importing user sees. An alias wins over a name; None marks a key that several
    tasks share (two tasks of one name), which the row must replace by an alias."""
    by_name: dict[str, int | None] = {}
    by_alias: dict[str, int | None] = {}
    for task_id, name, alias in tasks:
        for keys, text in ((by_name, name), (by_alias, alias)):
            if key := (text or "").strip():
                keys[key] = task_id if keys.get(key, task_id) == task_id else None
    return by_name | by_alias


@dataclass(slots=True)  # not frozen: that makes building 250,000 of them slower
class Number:
    """A row to import."""

    row: int  # the Excel row number (the header is row 1 in a template)
    task_id: int
    phone: str
    raw_phone: str
    variables: dict
    task_key: str = ""  # the multi-task file's task cell


@dataclass(frozen=True)
class RowError:
    """A row not imported: its Excel row number, the reason (Chinese) and its cells."""

    row: int
    reason: str
    cells: tuple[str, ...]


@dataclass
class Parsed:
    columns: Columns
    numbers: list[Number]
    errors: list[RowError]
    total: int  # non-blank rows under the header


def _phone(value, text: str) -> str:
    try:
        return normalise(text)
    except PhoneError:
        # A number cell cannot keep a leading zero: Excel shows 075512345678 as 75512345678.
        if isinstance(value, int | float) and not isinstance(value, bool) and text:
            try:
                return normalise("0" + text)
            except PhoneError:
                pass
        raise


def parse(rows: Iterable[Sequence], *, fast: bool, task_id: int | None = None,
          tasks: Mapping[str, int | None] | None = None, max_rows: int = MAX_ROWS,
          on_row: Callable[[int, int], None] | None = None) -> Parsed:
    """Split a sheet's `rows` (cell values, the first list being Excel row 1) into numbers
    to import and rows reported back.

    Single-task: `task_id`. Multi-task: `tasks` (see task_keys) resolves each row's task
    column. Normal import normalises numbers (core.phones) and drops repeats within the file
    (per task); fast import keeps the text of the phone cell. `on_row(done, failed)` is
    called every 1,000 rows. Raises ImportFileError for an empty file, a missing column or
    more than `max_rows` data rows.
    """
    columns: Columns | None = None
    numbers: list[Number] = []
    errors: list[RowError] = []
    seen: dict[tuple[int, str], int] = {}
    total = 0
    for row, cells in enumerate(rows, start=1):
        if not any(cells):  # blank (a row of only zeros too: no number in it)
            continue
        if columns is None:
            columns = find_columns(cells, multi=tasks is not None, fast=fast)
            width = len(columns.names)
            continue
        if len(cells) < width:  # CSV rows may stop early
            cells = [*cells, *[""] * (width - len(cells))]
        total += 1
        if total > max_rows:
            raise ImportFileError(f"数据超过 {max_rows} 行（单次导入上限），请拆分后分批导入")
        if on_row and total % 1000 == 0:
            on_row(len(numbers), len(errors))
        try:
            number = _number(row, cells, columns, fast, task_id, tasks)
        except _Rejected as exc:
            errors.append(RowError(row, str(exc), tuple(cell_text(c) for c in cells)))
            continue
        if not fast:
            first = seen.setdefault((number.task_id, number.phone), row)
            if first != row:
                errors.append(RowError(row, f"与第 {first} 行号码重复",
                                       tuple(cell_text(c) for c in cells)))
                continue
        numbers.append(number)
    if columns is None:
        raise ImportFileError("文件为空")
    if total == 0:
        raise ImportFileError("文件中没有号码数据：请在表头下方逐行填写号码")
    return Parsed(columns, numbers, errors, total)


def _number(row: int, cells: Sequence, columns: Columns, fast: bool, task_id: int | None,
            tasks: Mapping[str, int | None] | None) -> Number:
    """One data row (at least as wide as the header) as a Number; _Rejected when it is
    not one."""
    key = ""
    if tasks is not None:
        key = cell_text(cells[columns.task])
        if not key:
            raise _Rejected("任务别名为空")
        if key not in tasks:
            raise _Rejected(f"任务“{key}”不存在或无权限")
        task_id = tasks[key]
        if task_id is None:
            raise _Rejected(f"有多个任务名为“{key}”，请改填任务别名")
    value = cells[columns.phone]
    text = cell_text(value)
    if fast:
        if not text:
            raise _Rejected("号码为空")
        return Number(row, task_id, text[:PHONE_MAX], text[:RAW_PHONE_MAX], {}, key)
    try:
        phone = _phone(value, text)
    except PhoneError as exc:
        raise _Rejected(str(exc)) from None
    variables = {}
    for index, name in columns.variables:
        if cell := cell_text(cells[index]):
            variables[name] = GENDER.get(cell, cell) if name == "性别" else cell
    return Number(row, task_id, phone, text[:RAW_PHONE_MAX], variables, key)


def drop_existing(numbers: list[Number], existing: Mapping[int, set[str]],
                  columns: Columns) -> tuple[list[Number], list[RowError]]:
    """Numbers not yet in their task, and an error for each one that is."""
    kept, errors = [], []
    for n in numbers:
        if n.phone in existing.get(n.task_id, ()):
            errors.append(RowError(n.row, "号码已在任务中", cells_of(n, columns)))
        else:
            kept.append(n)
    return kept, errors


def cells_of(number: Number, columns: Columns) -> tuple[str, ...]:
    """A parsed row laid out under the file's header again (for the error file)."""
    cells = [""] * len(columns.names)
    cells[columns.phone] = number.raw_phone
    if columns.task is not None:
        cells[columns.task] = number.task_key
    for index, name in columns.variables:
        cells[index] = number.variables.get(name, "")
    return tuple(cells)


def positions(count: int, start: int, shuffle: bool,
              rng: random.Random | None = None) -> list[int]:
    """Dialling positions for `count` new numbers after `start` (the task's last), in file
    order or shuffled (打乱后上传)."""
    result = list(range(start + 1, start + 1 + count))
    if shuffle:
        (rng or random.Random()).shuffle(result)
    return result
