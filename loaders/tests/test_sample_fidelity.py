"""Fidelity: the full-scale client master has the real file's per-column figures.

The figures below were read off the real workbook; the test writes the full-scale client
workbook (1,267 clients, no history, about a second) and reads it back with openpyxl.
"""

from __future__ import annotations

from collections import Counter

import openpyxl
import pytest

from loaders.sample.client_workbook import write_client_workbook
from loaders.sample.clients import generate_clients

# Per column of 客戶資料: (header, numeric cells, text cells, empty cells, distinct values),
# transcribed from the profile of the real file (docs/raw-formats.md section 1).
PROFILE = {
    1: ('客戶', 1267, 0, 0, 1267),
    2: ('電子發票抬頭', 0, 1267, 0, 1204),
    3: ('客戶簡稱', 0, 1267, 0, 1256),
    4: ('地址', 0, 1267, 0, 1166),
    5: ('系統上鋼瓶數量', 0, 184, 1083, 77),
    6: ('50KG', 62, 0, 1205, 7),
    7: ('營20', 7, 0, 1260, 3),
    8: ('營16', 0, 0, 1267, 0),
    9: ('20KG', 587, 0, 680, 8),
    10: ('16KG', 69, 0, 1198, 3),
    11: ('10KG', 5, 0, 1262, 1),
    12: ('4KG', 56, 0, 1211, 3),
    13: ('好運16', 54, 0, 1213, 5),
    14: ('瓶安桶10', 2, 0, 1265, 1),
    15: ('幸福丸', 11, 0, 1256, 3),
    16: ('好運20', 0, 0, 1267, 0),
    17: ('流量50公斤', 245, 0, 1022, 11),
    18: ('流量20公斤', 227, 0, 1040, 6),
    19: ('流量16公斤', 0, 0, 1267, 0),
    20: ('流量好運20公斤', 0, 0, 1267, 0),
    21: ('流量好運16公斤', 144, 0, 1123, 2),
    22: ('計價方式', 0, 1267, 0, 3),
    23: ('結帳方式', 0, 1266, 1, 3),
    24: ('結帳用檔案', 0, 10, 1257, 1),
    25: ('訂閱式會員', 0, 320, 947, 2),
    26: ('發報', 0, 794, 473, 1),
    27: ('排巡', 0, 1191, 76, 4),
    28: ('設備客戶買斷', 0, 3, 1264, 3),
    29: ('已解約', 0, 10, 1257, 1),
    30: ('需要當天配送', 0, 11, 1256, 3),
    31: ('8~9', 677, 0, 590, 1),
    32: ('9~10', 750, 0, 517, 1),
    33: ('10~11', 834, 0, 433, 1),
    34: ('11~12', 837, 0, 430, 1),
    35: ('12~13', 800, 0, 467, 1),
    36: ('13~14', 807, 0, 460, 1),
    37: ('14~15', 788, 0, 479, 1),
    38: ('15~16', 796, 0, 471, 1),
    39: ('16~17', 832, 0, 435, 1),
    40: ('17~18', 797, 0, 470, 1),
    41: ('18~19', 696, 0, 571, 1),
    42: ('19~20', 661, 0, 606, 1),
    43: ('時段早1午2晚3全天0', 1124, 0, 143, 4),
    44: ('公休日', 280, 36, 951, 25),
    45: ('狀態', 0, 0, 1267, 0),
    46: ('切替器型號', 0, 691, 576, 43),
    47: ('月配送量', 1073, 0, 194, 199),
    48: ('退氣', 1015, 0, 252, 172),
    49: ('實際購買公斤數', 1078, 0, 189, 428),
    50: ('退氣比例', 1053, 0, 214, 76),
    51: ('平均日使用', 1123, 0, 144, 245),
    52: ('串接數量', 802, 0, 465, 37),
    53: ('備用量', 813, 0, 454, 33),
    54: ('最大週期', 792, 0, 475, 70),
    55: ('可延後天數', 791, 0, 476, 60),
    56: ('是否需要當天去', 1130, 0, 137, 157),
    57: ('區域', 0, 1266, 1, 16),
    58: ('1汽車/2機車/0全部', 1263, 0, 4, 3),
    59: ('單一區域供應', 1008, 0, 259, 5),
    60: ('第一使用區域(串接)', 0, 867, 400, 120),
    61: ('第二使用區域', 0, 393, 874, 145),
    62: ('第三使用區域', 0, 193, 1074, 84),
    63: ('第四使用區域', 0, 40, 1227, 22),
    64: ('第五使用區域', 0, 5, 1262, 5),
    65: ('預備桶', 33, 261, 973, 42),
    66: ('串接場所申報', 0, 1, 1266, 1),
    67: ('流量表', 262, 2, 1003, 2),
    68: ('帶線流量錶', 219, 0, 1048, 1),
    69: ('切替器', 340, 2, 925, 2),
    70: ('', 132, 0, 1135, 1),
    71: ('接點式壓力錶', 269, 0, 998, 1),
    72: ('壓差開關', 35, 0, 1232, 1),
    73: ('微動開關', 3, 0, 1264, 1),
    74: ('永勝', 5, 0, 1262, 1),
    75: ('智慧秤', 298, 0, 969, 1),
    76: ('類型', 0, 95, 1172, 5),
}  # fmt: skip

# Exact top values with their counts in the real file (a few per kind of column).
TOP = {
    "計價方式": {"桶裝": 783, "流量": 483, "桶裝現金": 1},
    "結帳方式": {"現金": 651, "月結": 607, "收現": 8},
    "排巡": {"V": 1131, "X": 45, "餐車": 9, "夜市": 6},
    "需要當天配送": {"V": 9, "現金": 1, "月結": 1},
    "20KG": {2: 355, 1: 157, 3: 38, 4: 24},
    "公休日": {7: 91, 6.7: 42, 1: 41, "Red": 25},
    "區域": {"A-瑞光": 355, "B-四維": 281, "C-漢中": 225, "D-東方大鎮": 160},
    "類型": {"夜市": 37, "學校": 36, "市場": 12, "餐車": 7, "辦桌": 3},
    "流量表": {1: 262, "客戶自有": 2},
    "時段早1午2晚3全天0": {0: 422, 1: 378, 2: 287, 3: 37},
}


@pytest.fixture(scope="module")
def master(tmp_path_factory):
    path = tmp_path_factory.mktemp("fidelity") / "client.xlsx"
    write_client_workbook(path, 20250521, generate_clients(20250521, 1267))
    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    rows = list(wb["客戶資料"].iter_rows(values_only=True))
    wb.close()
    return rows


def _column(rows, i):
    return [r[i - 1] if i - 1 < len(r) else None for r in rows[1:]]


@pytest.mark.parametrize("i", sorted(PROFILE))
def test_column_types_and_distinct_values(master, i):
    header, numeric, text, empty, distinct = PROFILE[i]
    assert (master[0][i - 1] or "") == header
    col = _column(master, i)
    got = (
        sum(isinstance(v, (int, float)) for v in col),
        sum(isinstance(v, str) for v in col),
        sum(v is None for v in col),
    )
    # The few free words and shared addresses may move a cell or two; types stay within 1 %.
    for g, want in zip(got, (numeric, text, empty), strict=True):
        assert abs(g - want) <= max(2, want // 100), (header, got, (numeric, text, empty))
    n_distinct = len(set(v for v in col if v is not None))
    assert abs(n_distinct - distinct) <= max(2, distinct // 10), (header, n_distinct, distinct)


@pytest.mark.parametrize("header", sorted(TOP))
def test_top_values(master, header):
    i = master[0].index(header) + 1
    counts = Counter(v for v in _column(master, i) if v is not None)
    for value, n in TOP[header].items():
        assert counts[value] == n, (header, value, counts[value], n)


# Every value of 區域 in the real file, with its count (docs/raw-formats.md section 1): 14 areas,
# two typos (縣 for 線) of two of them, one blank.
REAL_AREAS = {
    "A-瑞光": 355, "B-四維": 281, "C-漢中": 225, "D-東方大鎮": 160, "E-力國": 78,
    "F-成功線": 24, "F-成功縣": 1, "G-都蘭線": 26, "H-鹿野線": 23, "H-鹿野縣": 2,
    "I-池上線": 3, "J-知本線": 9, "K-東大線": 9, "L-大武線": 24, "M-商校商圈": 21,
    "Y-富岡": 25, None: 1,
}  # fmt: skip


def test_areas_are_the_real_values(master):
    i = master[0].index("區域") + 1
    assert Counter(_column(master, i)) == REAL_AREAS


def test_addresses(master):
    addresses = _column(master, 4)
    assert sum("臺東" in a for a in addresses) == pytest.approx(1250, abs=3)
    assert 1 <= sum("台東" in a for a in addresses) <= 3
    assert sum(a.endswith("號") for a in addresses) == pytest.approx(1183, abs=5)
    assert sum(a != a.strip() for a in _column(master, 2) + _column(master, 3)) == 2
