"""The number import job (导入号码, FEATURES.md T3): reads an uploaded sheet, applies
core.number_import's rules, stores the numbers with their region and carrier
(core.phone_info) and writes the rows it did not import to an error file.

All of a file's numbers go in in one transaction, so a failure leaves nothing half-imported.
The rows carry the notification's id (TaskNumber.import_id) and that transaction also writes
the notification's counts, so a job that rq runs again after its rows were committed only
finishes the notification.

Readers, measured on a 250,000-row xlsx (scripts/bench_import.py): python-calamine (Rust)
reads it in about 2 s, openpyxl's read-only mode in about 22 s; .xls goes through calamine
too, .csv through the csv module (UTF-8 or GB18030).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import python_calamine
import xlsxwriter
from sqlalchemy import exists, func, select, text, update
from sqlalchemy.orm import Session

from core import clock, excel_safe, jobs, phone_info
from core import number_import as rules
from core.enums import NumberState
from core.models import Notification, Task, TaskNumber, User
from core.scoping import visible_account_ids

COLUMNS = ("account_id", "task_id", "phone", "raw_phone", "variables", "state", "position",
           "attempts", "created_at", "region", "carrier", "import_id")
# pg_advisory_xact_lock(namespace, task id): imports into one task take turns.
LOCK_NAMESPACE = 7301
UNREADABLE = "文件无法读取：可能已损坏或已加密，请用 Excel 打开后另存为 .xlsx 再上传"


@dataclass
class Sheet:
    rows: Iterator[list]  # every row from row 1, blank ones included
    height: int  # how many rows, for progress before they are read


def read_sheet(path: Path) -> Sheet:
    """The first sheet of an .xlsx / .xls, or a .csv, by the file's extension.
    Raises rules.ImportFileError when the file cannot be read."""
    if path.suffix == ".csv":
        return _read_csv(path.read_bytes())
    try:
        sheet = python_calamine.CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0)
    except python_calamine.CalamineError:
        raise rules.ImportFileError(UNREADABLE) from None
    # iter_rows starts at row 1 even when the data starts lower (it pads with empty rows),
    # so the n-th row is Excel row n.
    return Sheet(sheet.iter_rows(), sheet.height)


def _read_csv(data: bytes) -> Sheet:
    for encoding in ("utf-8-sig", "gb18030"):  # Excel in China saves CSV as GB18030
        try:
            content = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise rules.ImportFileError("CSV 文件无法读取：请保存为 UTF-8 或 GB18030 编码")
    try:
        dialect = csv.Sniffer().sniff(content[:4096], delimiters=",\t;")
    except csv.Error:  # one column: nothing to tell the delimiter by
        dialect = csv.excel
    try:
        rows = list(csv.reader(io.StringIO(content), dialect))
    except csv.Error:
        raise rules.ImportFileError(UNREADABLE) from None
    return Sheet(iter(rows), len(rows))


def write_errors(path: Path, columns: rules.Columns, errors: list[rules.RowError]) -> None:
    """The rows not imported, with their Excel row number and reason, then their cells under
    the original header (formula-safe: core.excel_safe)."""
    book = xlsxwriter.Workbook(str(path), {
        "constant_memory": True, "strings_to_formulas": False, "strings_to_numbers": False,
        "strings_to_urls": False})
    sheet = book.add_worksheet("未导入")
    sheet.write_row(0, 0, excel_safe.row([*rules.ERROR_HEADERS, *columns.names]))
    for i, error in enumerate(errors, start=1):
        sheet.write_row(i, 0, excel_safe.row([error.row, error.reason, *error.cells]))
    book.close()


def import_numbers(notification_id: int, file_name: str, task_id: int | None, mode: str,
                   shuffle: bool, max_rows: int = rules.MAX_ROWS) -> None:
    """Import the upload `file_name` (under core.jobs.files_dir()) into task `task_id`, or,
    when it is None, into the tasks named by the file's task column among those the
    notification's user sees. `mode` is a rules.Mode. Problems with the file as a whole end
    the job with a message (jobs.JobError); bad rows go to the error file."""
    path = jobs.files_dir() / file_name
    with jobs.Progress(notification_id) as progress:
        if progress.finished:
            return
        try:
            _import(progress, path, task_id, rules.Mode(mode), shuffle, max_rows)
        except jobs.JobError:
            path.unlink(missing_ok=True)
            raise
        path.unlink(missing_ok=True)  # the numbers are in; the upload held personal data


def _import(progress: jobs.Progress, path: Path, task_id: int | None, mode: rules.Mode,
            shuffle: bool, max_rows: int) -> None:
    with progress.factory() as session:
        if _imported(session, progress.id):
            return _finish(progress, session.get(Notification, progress.id))
        tasks = _targets(session, progress, task_id)
    fast = mode == rules.Mode.FAST
    try:
        sheet = read_sheet(path)
        progress.begin(total=max(sheet.height - 1, 0))
        parsed = rules.parse(
            sheet.rows, fast=fast, task_id=task_id, max_rows=max_rows,
            tasks=rules.task_keys((t.id, t.name, t.alias) for t in tasks.values())
            if task_id is None else None,
            on_row=lambda done, failed: progress.step(done, failed))
    except rules.ImportFileError as exc:
        raise jobs.JobError(str(exc)) from None
    with progress.factory() as session, session.begin():
        note = _store(session, progress.id, parsed, tasks, fast, shuffle)
    _finish(progress, note)


def _targets(session: Session, progress: jobs.Progress, task_id: int | None) -> dict:
    """The tasks this import may write to, by id."""
    if task_id is not None:
        task = session.get(Task, task_id)
        if task is None:
            raise jobs.JobError("任务不存在或已删除")
        return {task.id: task}
    user = session.get(User, progress.user_id)
    if user is None:
        raise jobs.JobError("导入人的账号已删除")
    visible = select(Task).where(Task.account_id.in_(visible_account_ids(session, user)))
    return {t.id: t for t in session.scalars(visible)}


def _imported(session: Session, notification_id: int) -> bool:
    return session.scalar(select(exists().where(TaskNumber.import_id == notification_id)))


def _store(session: Session, notification_id: int, parsed: rules.Parsed, tasks: dict,
           fast: bool, shuffle: bool) -> Notification:
    """Insert the parsed numbers and record the outcome on the notification, in the
    caller's transaction; returns the notification."""
    task_ids = sorted({n.task_id for n in parsed.numbers})
    _take_turn(session, notification_id, task_ids)
    numbers, errors = parsed.numbers, list(parsed.errors)
    if _imported(session, notification_id):  # the same job on another worker got here first
        return session.get(Notification, notification_id)
    if not fast:
        existing: dict[int, set[str]] = {}
        for tid, phone in session.execute(select(TaskNumber.task_id, TaskNumber.phone)
                                          .where(TaskNumber.task_id.in_(task_ids))):
            existing.setdefault(tid, set()).add(phone)
        numbers, duplicates = rules.drop_existing(numbers, existing, parsed.columns)
        errors = sorted(errors + duplicates, key=lambda e: e.row)
    _insert(session, notification_id, numbers, tasks, shuffle)
    result = None
    if errors:  # the console serves it from the notification list (console.download)
        result = str(jobs.files_dir() / f"import-{notification_id}-errors.xlsx")
        write_errors(Path(result), parsed.columns, errors)
    note = session.get(Notification, notification_id)
    note.total, note.done_count, note.failed_count = parsed.total, len(numbers), len(errors)
    note.result_path = result
    return note


def _take_turn(session: Session, notification_id: int, task_ids: list[int]) -> None:
    """Make concurrent imports into the same task wait for each other, so that each sees
    the other's numbers when de-duplicating and positions do not interleave."""
    # SQLite: write first. A transaction that reads first cannot write later once another
    # process has committed meanwhile (WAL), and writing takes SQLite's one write lock.
    session.execute(update(Notification).where(Notification.id == notification_id)
                    .values(updated_at=clock.now()))
    if session.get_bind().dialect.name == "postgresql":
        for task_id in task_ids:  # in order, so two multi-task imports cannot deadlock
            session.execute(text("SELECT pg_advisory_xact_lock(:ns, :id)"),
                            {"ns": LOCK_NAMESPACE, "id": task_id})


def _insert(session: Session, notification_id: int, numbers: list[rules.Number],
            tasks: dict, shuffle: bool) -> None:
    """Bulk-insert `numbers` after each task's last position, with the driver's fastest
    path: per-row ORM or Core inserts cost more than the database's own work here."""
    by_task: dict[int, list[rules.Number]] = {}
    for n in numbers:
        by_task.setdefault(n.task_id, []).append(n)
    last = dict(session.execute(
        select(TaskNumber.task_id, func.max(TaskNumber.position))
        .where(TaskNumber.task_id.in_(list(by_task))).group_by(TaskNumber.task_id)).all())
    conn = session.connection()
    dialect = conn.dialect
    created = TaskNumber.__table__.c.created_at.type
    created_at = created.dialect_impl(dialect).bind_processor(dialect)(clock.now())
    rows = []
    for task_id, task_numbers in by_task.items():
        account_id = tasks[task_id].account_id
        places = rules.positions(len(task_numbers), last.get(task_id) or 0, shuffle)
        for n, position in zip(task_numbers, places, strict=True):
            region, carrier = phone_info.lookup(n.phone)
            variables = json.dumps(n.variables, ensure_ascii=False) if n.variables else "{}"
            rows.append((account_id, task_id, n.phone, n.raw_phone, variables,
                         NumberState.PENDING.value, position, 0, created_at, region, carrier,
                         notification_id))
    if not rows:
        return
    names = ", ".join(COLUMNS)
    if dialect.name == "postgresql":
        with conn.connection.driver_connection.cursor() as cursor, \
                cursor.copy(f"COPY task_number ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    # SQLite's default 2 MB page cache makes the phone indexes' random inserts go to disk;
    # 256 MB for this statement makes the insert about twice as fast.
    cache = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql("PRAGMA cache_size=-262144")
    conn.exec_driver_sql(f"INSERT INTO task_number ({names}) VALUES "
                         f"({', '.join('?' * len(COLUMNS))})", rows)
    conn.exec_driver_sql(f"PRAGMA cache_size={int(cache)}")


def _finish(progress: jobs.Progress, note: Notification) -> None:
    failed = note.failed_count
    progress.done(result_path=note.result_path, done=note.done_count, failed=failed,
                  error=f"{failed} 行未导入，见错误文件" if failed else None)
