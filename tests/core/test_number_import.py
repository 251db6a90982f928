"""The number import rules: file types, header columns, cell text, row checks, duplicates,
multi-task resolution and dialling positions."""

import random
from datetime import date, datetime, time

import pytest

from core import number_import as rules
from core.number_import import ImportFileError


@pytest.mark.parametrize("name, head, kind", [
    ("号码.xlsx", b"PK\x03\x04rest", "xlsx"), ("A.XLSX", b"PK\x03\x04", "xlsx"),
    ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "xls"), ("list.csv", b"13800138000", "csv"),
])
def test_accepted_file_kinds(name, head, kind):
    assert rules.file_kind(name, head) == kind


@pytest.mark.parametrize("name, head, message", [
    ("report.pdf", b"%PDF", "不支持的文件类型"), ("noext", b"PK", "不支持的文件类型"),
    ("empty.xlsx", b"", "文件为空"), ("renamed.xlsx", b"%PDF-1.4", "不是 .xlsx 格式"),
    ("html.xls", b"<html>", "不是 .xls 格式"),
])
def test_refused_file_kinds(name, head, message):
    with pytest.raises(ImportFileError, match=message):
        rules.file_kind(name, head)


@pytest.mark.parametrize("value, text", [
    (13800138000.0, "13800138000"), (3.14, "3.14"), (0.1 + 0.2, "0.3"), (42, "42"),
    (date(1990, 5, 1), "1990-05-01"), (datetime(2024, 5, 1), "2024-05-01"),
    (datetime(2024, 5, 1, 10, 30), "2024-05-01 10:30"),
    (datetime(2024, 5, 1, 10, 30, 5), "2024-05-01 10:30:05"), (time(9, 5), "09:05"),
    (True, "是"), (False, "否"), (None, ""), ("  张三 ", "张三"),
    ("'=SUM(A1)", "=SUM(A1)"), ("'+8613800138000", "+8613800138000"), ("'abc", "'abc"),
])
def test_cell_text(value, text):
    assert rules.cell_text(value) == text


def test_columns_from_the_templates_header():
    single = rules.find_columns(rules.TEMPLATES["single"].header, multi=False, fast=False)
    assert single.phone == 0 and single.task is None
    assert [n for _, n in single.variables] == ["姓名", "公司", "性别", "备注"]
    multi = rules.find_columns(rules.TEMPLATES["multi"].header, multi=True, fast=False)
    assert (multi.task, multi.phone) == (0, 1)
    assert "任务别名" not in [n for _, n in multi.variables]
    fast = rules.find_columns(rules.TEMPLATES["fast"].header, multi=False, fast=True)
    assert fast.phone == 0 and fast.variables == ()


def test_columns_synonyms_extra_columns_and_error_file_columns():
    cols = rules.find_columns(["错误行号", "错误原因", "姓名", " 手机号码 ", "", "产品", 2024],
                              multi=False, fast=False)
    assert cols.phone == 3
    assert dict((n, i) for i, n in cols.variables) == {"姓名": 2, "产品": 5, "2024": 6}
    # fast import takes only the number (极速导入只传号码)
    assert rules.find_columns(["号码", "姓名"], multi=False, fast=True).variables == ()


@pytest.mark.parametrize("header, multi, message", [
    (["姓名", "公司"], False, "未找到号码列"),
    (["号码", "姓名"], True, "未找到任务别名列"),
    (["号码", "姓名", "姓名*"], False, "表头“姓名”重复"),
])
def test_bad_headers(header, multi, message):
    with pytest.raises(ImportFileError, match=message):
        rules.find_columns(header, multi=multi, fast=False)


def _rows(*data):
    return [["号码*", "姓名", "性别", "生日"], *data]


def test_normal_import_checks_dedups_and_keeps_variables():
    parsed = rules.parse(_rows(
        [13800138000.0, "张三", "1", date(1990, 5, 1)],
        ["138 0013 8001", "李四", "2", ""],
        ["", "", "", ""],  # blank rows are skipped, row numbers stay the sheet's
        ["12345", "王五", "", ""],
        ["+86 138-0013-8000", "重复", "", ""],
        [75512345678.0, "固话", "", ""],  # Excel dropped the area code's leading 0
        ["abc", "", "", ""],
        ["", "只有姓名", "", ""],
    ), fast=False, task_id=7)
    assert [(n.row, n.phone, n.raw_phone) for n in parsed.numbers] == [
        (2, "13800138000", "13800138000"), (3, "13800138001", "138 0013 8001"),
        (7, "075512345678", "75512345678")]
    assert parsed.numbers[0].variables == {"姓名": "张三", "性别": "男", "生日": "1990-05-01"}
    assert parsed.numbers[1].variables == {"姓名": "李四", "性别": "女"}  # empty cells omitted
    assert all(n.task_id == 7 for n in parsed.numbers)
    assert [(e.row, e.reason) for e in parsed.errors] == [
        (5, "手机号码应为11位，以13-19开头"), (6, "与第 2 行号码重复"),
        (8, "号码含有非数字字符"), (9, "号码为空")]
    assert parsed.errors[1].cells == ("+86 138-0013-8000", "重复", "", "")
    assert parsed.total == 7  # the blank row is not counted


def test_fast_import_keeps_whatever_is_there():
    parsed = rules.parse([["号码", "姓名"], [13800138000.0, "张三"], [" abc ", ""],
                          ["13800138000", ""], ["", "无号码"], ["x" * 80, ""]],
                         fast=True, task_id=1)
    assert [n.phone for n in parsed.numbers] == ["13800138000", "abc", "13800138000",
                                                 "x" * 32]
    assert parsed.numbers[3].raw_phone == "x" * 64
    assert all(n.variables == {} for n in parsed.numbers)
    assert [(e.row, e.reason) for e in parsed.errors] == [(5, "号码为空")]


def test_csv_rows_shorter_than_the_header_are_padded():
    parsed = rules.parse([["号码", "姓名", "公司"], ["13800138000"]], fast=False, task_id=1)
    assert parsed.numbers[0].variables == {}


@pytest.mark.parametrize("rows, message", [
    ([], "文件为空"), ([["", ""], [None]], "文件为空"),
    ([["号码", "姓名"], ["", ""]], "没有号码数据"),
])
def test_empty_files(rows, message):
    with pytest.raises(ImportFileError, match=message):
        rules.parse(rows, fast=False, task_id=1)


def test_row_limit():
    rows = [["号码"], *[[f"1380013800{i}"] for i in range(4)]]
    assert rules.parse(rows, fast=False, task_id=1, max_rows=4).total == 4
    with pytest.raises(ImportFileError, match="数据超过 3 行"):
        rules.parse(rows, fast=True, task_id=1, max_rows=3)


def test_progress_is_reported_every_thousand_rows():
    calls = []
    rows = [["号码"], *[[str(13800000000 + i)] for i in range(2500)]]
    rules.parse(rows, fast=False, task_id=1, on_row=lambda done, failed: calls.append(done))
    assert calls == [999, 1999]


def test_task_keys_alias_wins_and_shared_names_need_an_alias():
    keys = rules.task_keys([(1, "春季活动", "spring"), (2, "回访", None), (3, "回访", "visit"),
                            (4, "spring", None)])
    assert keys == {"春季活动": 1, "spring": 1, "回访": None, "visit": 3}


def test_multi_task_rows_go_to_their_task_and_dedup_per_task():
    tasks = rules.task_keys([(1, "春季活动", "spring"), (2, "回访", None), (3, "回访", "visit")])
    parsed = rules.parse([
        ["任务别名*", "号码*", "姓名"],
        ["spring", "13800138000", "张三"], ["春季活动", "13800138000", "重复"],
        ["visit", "13800138000", "另一任务"], ["回访", "13900139000", ""],
        ["nope", "13900139000", ""], ["", "13900139000", ""],
    ], fast=False, tasks=tasks)
    assert [(n.row, n.task_id, n.task_key) for n in parsed.numbers] == [
        (2, 1, "spring"), (4, 3, "visit")]
    assert parsed.numbers[0].variables == {"姓名": "张三"}  # the task column is no variable
    assert [(e.row, e.reason) for e in parsed.errors] == [
        (3, "与第 2 行号码重复"), (5, "有多个任务名为“回访”，请改填任务别名"),
        (6, "任务“nope”不存在或无权限"), (7, "任务别名为空")]


def test_numbers_already_in_the_task_are_reported_with_their_cells():
    columns = rules.find_columns(["任务别名", "号码", "姓名"], multi=True, fast=False)
    tasks = {"a": 1, "b": 2}
    parsed = rules.parse([["任务别名", "号码", "姓名"], ["a", "13800138000", "张三"],
                          ["b", "13800138000", "李四"]], fast=False, tasks=tasks)
    kept, errors = rules.drop_existing(parsed.numbers, {1: {"13800138000"}}, columns)
    assert [n.task_id for n in kept] == [2]
    assert [(e.row, e.reason, e.cells) for e in errors] == [
        (2, "号码已在任务中", ("a", "13800138000", "张三"))]


def test_positions_continue_after_the_last_and_shuffle_is_a_permutation():
    assert rules.positions(3, 10, shuffle=False) == [11, 12, 13]
    shuffled = rules.positions(50, 100, shuffle=True, rng=random.Random(4))
    assert sorted(shuffled) == list(range(101, 151)) and shuffled != sorted(shuffled)
