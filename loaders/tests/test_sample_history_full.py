"""Fidelity: the full-scale history workbook has the real export's figures.

docs/raw-formats.md section 2, read off the real `2025-05 commercial deliver history.xlsx`: one
sheet Sheet1, 5 columns, 349,920 rows, 13,294 codes (1,266 of the master's, 12,028 others),
dates 1100101 .. 1140528 covering every day, empty cells 9 / 1,155 / 2,415, no duplicated
row. The test plans the full-scale sample, writes only the history workbook and reads it back
with openpyxl (read-only), which the generator does not use; the injected defects are the
only cells that deviate, and they are counted from expected.json's rules, not skipped.
"""

from __future__ import annotations

import contextlib
import unicodedata
from datetime import date, timedelta

import openpyxl

from loaders.sample import profile as P
from loaders.sample.app_db import assign_app_ids
from loaders.sample.clients import generate_clients
from loaders.sample.deliveries import plan_deliveries
from loaders.sample.history_workbook import write_history_workbook

SEED = 20250521


def test_full_scale_history_is_the_real_shape(tmp_path):
    clients = generate_clients(SEED, P.FULL_CLIENTS)
    test_ids = assign_app_ids(SEED, clients)
    plan = plan_deliveries(SEED, clients, 1.0, test_ids)
    path = tmp_path / P.HISTORY_FILE
    write_history_workbook(path, plan.history)
    master = {c.code for c in clients}

    book = openpyxl.load_workbook(path, read_only=True)
    assert book.sheetnames == ["Sheet1"]
    rows = book["Sheet1"].iter_rows(values_only=True)
    assert list(next(rows)) == ["客戶", "電子發票抬頭", "客戶簡稱", "地址", "最後十次日期"]
    n = 0
    codes: set[int] = set()
    numeric_codes = 0
    empty = [0, 0, 0]
    distinct: list[set] = [set(), set(), set()]
    days: set[date] = set()
    seen: set[tuple] = set()
    duplicates = 0
    for row in rows:
        n += 1
        code, title, short, address, day = row
        if isinstance(code, (int, float)):
            numeric_codes += 1
        text = unicodedata.normalize("NFKC", str(code)).strip()
        if text.isdigit() and len(text) == 7:
            codes.add(int(text))
        for k, value in enumerate((title, short, address)):
            empty[k] += value is None
            distinct[k].add(value)
        if isinstance(day, (int, float)) and 1100101 <= day <= 1140528:
            y, md = divmod(int(day), 10000)
            with contextlib.suppress(ValueError):  # an injected impossible date
                days.add(date(y + 1911, md // 100, md % 100))
        duplicates += row in seen
        seen.add(row)
    book.close()

    assert n == 349_920
    assert numeric_codes > 349_800  # numeric cells, but for a few injected text codes
    assert len(codes) == 13_294
    assert len(codes & master) == 1_266
    assert len(codes - master) == 12_028
    assert empty == [9, 1_155, 2_415]
    # distinct values near the real ones: some clients share a title, a name or an address
    for values, real in zip(distinct, (12_738, 12_082, 12_221), strict=True):
        assert abs(len(values - {None}) - real) <= real * 0.01, (len(values), real)
    span = {date(2021, 1, 1) + timedelta(days=k) for k in range(1_609)}
    assert days == span  # every calendar day, none outside
    assert duplicates == 0
