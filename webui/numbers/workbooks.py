"""The import templates (模板下载) as xlsx: the header with a note on each column that needs
one, the phone column formatted as text (so Excel keeps leading zeros and long numbers
whole), and the hints (提示 1…) on a second sheet."""

from __future__ import annotations

import io

import xlsxwriter

from core.number_import import Template


def template_xlsx(template: Template) -> bytes:
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True})
    head = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    required = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1,
                                "font_color": "#C00000"})
    as_text = book.add_format({"num_format": "@"})
    sheet = book.add_worksheet("号码")
    for col, name in enumerate(template.header):
        sheet.write_string(0, col, name, required if name.endswith("*") else head)
        sheet.set_column(col, col, 18, as_text if name.startswith("号码") else None)
        if note := template.notes.get(name):
            sheet.write_comment(0, col, note, {"x_scale": 2})
    sheet.freeze_panes(1, 0)
    hints = book.add_worksheet("填写说明")
    hints.set_column(0, 0, 120)
    for row, hint in enumerate(template.hints):
        hints.write_string(row, 0, hint)
    book.close()
    return buf.getvalue()
