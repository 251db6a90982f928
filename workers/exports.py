"""Call records exports (导出, FEATURES.md R4): an xlsx of the calls a filter matches.

Started by webui.records.export.start_export through core.jobs; the notification shows the
progress and, when done, the file. Memory stays flat whatever the size: rows stream from
the database `BATCH` at a time (a server-side cursor on PostgreSQL) and xlsxwriter's
constant_memory mode flushes each row to disk as it is written.

Visibility is decided again here, from the requesting user as they are now: a user who was
deactivated or moved meanwhile gets what they may see now, or nothing.

Speed (100,000 rows in well under 15 s on two cores): the columns' readers
(core.call_columns.ExportReader) give each cell ready to write, and `_Sheet` writes a row
of plain cells as the XML xlsxwriter itself writes for them, without its per-cell methods
(~6 µs a cell, most of the time an export took). scripts/bench_export.py measures it.
"""

from __future__ import annotations

import os
import re
from zoneinfo import ZoneInfo

import xlsxwriter
from sqlalchemy import and_, func, select
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.worksheet import Worksheet

from core import call_query, excel_safe, jobs
from core.call_columns import Context, ExportReader, chosen, load_lookups, memoised
from core.models import Call, User
from core.scoping import visible_account_ids

BATCH = 5000
SHEET_ROWS = 1_048_575  # Excel's rows per sheet, less the header: more go on the next sheet
XLS_STRMAX = 32767  # xlsxwriter truncates longer strings (Excel's limit)


def export_calls(notification_id: int, spec: dict) -> str | None:
    """Write the export described by `spec` (see start_export) and attach it to the
    notification; returns the file's path."""
    with jobs.Progress(notification_id) as progress:
        if progress.finished:
            return None
        try:
            group = call_query.validate(spec["filter"])
        except call_query.FilterError as exc:
            raise jobs.JobError(f"筛选条件无效：{exc}") from None
        columns = chosen(spec["columns"])
        path = jobs.files_dir() / f"call-records-{notification_id}.xlsx"
        with progress.factory() as session:
            user = session.get(User, progress.user_id)
            if user is None or not user.active:
                raise jobs.JobError("发起导出的用户已停用")
            where = and_(Call.account_id.in_(visible_account_ids(session, user)),
                         call_query.where(group))
            progress.begin(session.scalar(select(func.count()).select_from(Call).where(where)))
            ctx = Context(zone=ZoneInfo(spec["zone"]), labels=spec["labels"], mask=spec["mask"])
            reader = ExportReader(columns, ctx)
            # Plain Core rows (no ORM loading), streamed BATCH at a time.
            rows = session.connection().execute(
                select(*reader.selects).where(where)
                .order_by(Call.created_at.desc(), Call.id.desc()),
                execution_options={"yield_per": BATCH})
            written = _write(path, spec, columns, ctx, session, rows, progress, reader)
        progress.done(result_path=str(path), done=written)
        return str(path)


def _write(path, spec, columns, ctx, session, rows, progress, reader=None,
           fast: bool = True) -> int:
    """Stream `rows` (selected as `reader` says: ExportReader(columns, ctx).selects) into a
    new workbook at `path` (replaced only once complete). `fast`=False writes every cell
    through xlsxwriter's own methods (the tests compare both)."""
    reader = reader or ExportReader(columns, ctx)
    partial = path.with_suffix(".partial")
    book = xlsxwriter.Workbook(str(partial), {
        "constant_memory": True, "tmpdir": str(path.parent),
        # Text stays text: no formulas, numbers or links guessed from strings.
        "strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False})
    formats = {"time": book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}),
               "duration": book.add_format({"num_format": "[h]:mm:ss"})}
    readers = reader.readers
    written = 0
    try:
        for batch in rows.partitions():
            load_lookups(session, ctx, batch, columns)
            start = 0
            while start < len(batch):
                line = written % SHEET_ROWS + 1
                if line == 1:
                    sheet = _sheet(book, spec, written // SHEET_ROWS + 1, len(columns))
                    writer = _Rows(sheet, columns, formats, fast and sheet.fast())
                part = batch[start:start + SHEET_ROWS - line + 1]  # the rest of this sheet
                writer.write(line, part, readers)
                start += len(part)
                written += len(part)
            progress.step(done=written)
        if written == 0:
            _sheet(book, spec, 1, len(columns))
        book.close()
    except BaseException:
        book.close()
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)
    return written


def _sheet(book, spec: dict, number: int, width: int) -> _Sheet:
    name = spec.get("sheet") or "calls"
    sheet = book.add_worksheet(name if number == 1 else f"{name} ({number})",
                               worksheet_class=_Sheet)
    sheet.set_column(0, width - 1, 16)
    sheet.write_row(0, 0, excel_safe.row(spec["headers"]))
    return sheet


class _Sheet(Worksheet):
    """xlsxwriter's worksheet, plus `write_xml_row`: a row of cells written as the XML
    that xlsxwriter writes for them in constant_memory mode (`_Rows` makes it), instead of
    cell by cell. Only while the sheet is laid out as exports leave it (`fast`): no row
    formats or heights, no comments, no column formats."""

    def fast(self) -> bool:
        return bool(self.constant_memory) and self.excel_version == 2007 \
            and not self.set_rows and not self.comments \
            and self.default_row_height == self.original_row_height \
            and all(info[1] is None for info in self.col_info.values())

    def write_xml_row(self, row: int, first: int, last: int, cells: str) -> None:
        """Row `row` (zero-based), its cells from column `first` to `last` being `cells`."""
        self._check_dimensions(row, first)  # as each cell write does
        self._check_dimensions(row, last)
        self._write_single_row(row)  # whatever the ordinary methods left, then this row
        self.fh.write(f'<row r="{row + 1}">{cells}</row>')

    def end_row(self, row: int) -> None:
        """Write out row `row`, written through the ordinary methods, now rather than when
        the next row starts (so that formats get their numbers in the file's order)."""
        self._write_single_row(row + 1)


# A text xlsxwriter writes as it is, unless it holds one of these (escaped: & < >; control
# characters and _xHHHH_ sequences turned into _xHHHH_; " and newlines just sent the slow
# way) or starts or ends with white space (marked xml:space="preserve").
_ODD_CHARS = re.compile(r'[\x00-\x1f"&<>\ufffe\uffff]').search


def _text_xml(value: str) -> str | None:
    """What follows `<c r="…"` for a text cell, or None when xlsxwriter has to write it."""
    if not value or len(value) > XLS_STRMAX or _ODD_CHARS(value) or "_x" in value \
            or value[0].isspace() or value[-1].isspace():
        return None
    return f' t="inlineStr"><is><t>{value}</t></is></c>'


def _number_xml(cell_format):
    """What follows `<c r="…"` for a number cell with `cell_format`. The format's number
    is asked for when its first cell is written, as xlsxwriter does (it numbers formats in
    the order of their first use)."""
    attr = None

    def xml(value) -> str:
        nonlocal attr
        if attr is None:
            attr = f' s="{cell_format._get_xf_index()}">' if cell_format else ">"
        return f"{attr}<v>{value:.16G}</v></c>"
    return xml


class _Rows:
    """Writes a sheet's rows: each cell's value from its reader (text already formula-safe,
    times and durations as serial numbers written as numbers with their format)."""

    def __init__(self, sheet: _Sheet, columns, formats: dict, fast: bool):
        self.sheet, self.fast = sheet, fast
        put = {"text": sheet.write_string, "number": sheet.write_number,
               "time": sheet.write_number, "duration": sheet.write_number}
        self.puts = [(col, put[c.kind], formats.get(c.kind)) for col, c in enumerate(columns)]
        self.xml = []
        for col, c in enumerate(columns):
            xml = _text_xml if c.kind == "text" else _number_xml(formats.get(c.kind))
            if c.kind != "time" and (c.by_value or c.needs or c.kind != "text"):
                xml = memoised(xml)  # values that repeat down the column
            self.xml.append((col, xl_col_to_name(col), xml))

    def write(self, first_line: int, rows, readers) -> None:
        """Write `rows` from sheet row `first_line` on."""
        sheet, puts, xml = self.sheet, self.puts, self.xml
        for line, row in enumerate(rows, first_line):
            values = [read(row) for read in readers]
            if self.fast:
                number = line + 1
                cells, first, last = [], None, None
                for (col, name, to_xml), value in zip(xml, values, strict=True):
                    if value is not None:
                        tail = to_xml(value)
                        if tail is None:
                            break  # a cell xlsxwriter has to write: the whole row then
                        if first is None:
                            first = col
                        last = col
                        cells.append(f'<c r="{name}{number}"{tail}')
                else:
                    if cells:
                        sheet.write_xml_row(line, first, last, "".join(cells))
                    continue
            for (col, put, cell_format), value in zip(puts, values, strict=True):
                if value is not None:
                    put(line, col, value, cell_format)
            if self.fast:
                sheet.end_row(line)
