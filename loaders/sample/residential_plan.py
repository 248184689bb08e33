"""The residential client delivery plan: `2025-07 residential client delivery plan.xlsx`.

The real file (docs/raw-formats.md section 4) is a plan, not a history: sheet `0628` (one day) and
`7月` (21 days, 0701-0721), a sparse title row 1, the header on row 2, then one block per day
and time window (08:30-11:30, 13:30-16:30) whose first cell is a day/time label such as
`0701 08:30-11:30`. 225 delivery lines over both sheets carry 218 distinct 7-digit codes
(numeric cells; 7 codes are planned twice, on different days), one code cell is the text
`預約` + the code, phones are numbers (89334978) or text starting with `去前電`, quantities
are small whole numbers under the cylinder columns (numeric header cells 20, 16, 10, 4, then
好運16, 平安10 in `0628` but 瓶安10 in `7月`, 幸福丸). `7月` has a summary block at its
right, after one blank column: 服務人次, 來電預約, 去前電, 取消, 改期 and kg per product.

None of the codes is in the commercial master: they start with 2 or 3, and the commercial
generator never makes such codes (master and history-only codes start with 14-19, the app's
test clients have codes that are not 7 digits). What the summary counts is an assumption
(the real file's formulas are not known): 服務人次 = the sheet's delivery lines, 來電預約 =
lines whose 備註 is 來電預約 or whose code cell starts with 預約, 去前電 = phone cells starting
with 去前電, 取消 / 改期 = lines whose 備註 starts with that word, kg = cylinders x size.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from loaders.sample import profile as P
from loaders.sample.model import apportion, rng_for
from loaders.sample.xlsx import Workbook

PLAN_FILE = "2025-07 residential client delivery plan.xlsx"
WINDOWS = ("08:30-11:30", "13:30-16:30")
SHEET_DAYS: dict[str, list[date]] = {
    "0628": [date(2025, 6, 28)],
    "7月": [date(2025, 7, 1) + timedelta(days=k) for k in range(21)],
}
LINES = {"0628": 11, "7月": 214}  # 225 delivery lines in all
DISTINCT_CODES = 218  # so 225 - 218 = 7 lines repeat a code planned on an earlier day
CODE_LO, CODE_HI = 2_000_000, 3_999_999  # leading digit 2 or 3: never a commercial code

# Cylinder columns: (header cell, kg, share of the lines' products).
CYLINDERS = [(20, 20, 50), (16, 16, 28), (10, 10, 6), (4, 4, 5), ("好運16", 16, 6),
             ("平安10", 10, 2), ("幸福丸", 4, 3)]  # fmt: skip
SAFETY_HEADER = {"0628": "平安10", "7月": "瓶安10"}  # the real sheets spell it differently
HEAD = ["序號", "客戶編號", "地址", "電話"]
TAIL = ["配送員", "區域", "備註"]
TITLE = "幸福氣 住宅客戶配送計畫"
TITLES = {"0628": "2025/06/28 (六)", "7月": "2025年7月 (0701-0721)"}
OTHER_NOTES = ["後門", "樓上", "放門口", "收空桶", "月底收", "鐵門旁", "先打電話", "狗會咬人"]


def headers_for(sheet: str) -> list:
    """The header row of a plan sheet's table: 15 cells, four of them numbers."""
    cylinders = [SAFETY_HEADER[sheet] if h == "平安10" else h for h, _, _ in CYLINDERS]
    return [None, *HEAD, *cylinders, *TAIL]


@dataclass
class Line:
    """One planned delivery: a row of the table."""

    sheet: str
    day: date
    window: str
    day_index: int  # 0-based over both sheets, for repeats on a later day
    code: int = 0
    booked: bool = False  # the code cell reads 預約<code>
    phone: int | str | None = None
    quantities: dict[int, int] = field(default_factory=dict)  # cylinder column -> count
    note: str | None = None


def _address(rng: random.Random, area: str) -> str:
    """A hand-written Taitung address: 臺東 or 台東, with or without the county."""
    township = P.AREA_TOWNSHIP.get(area[0], "臺東市")
    county = rng.choice(["臺東縣", "臺東縣", "台東縣", "", ""])
    if county.startswith("台") or (not county and rng.random() < 0.6):
        township = township.replace("臺東", "台東")
    lane = rng.choice(["", "", "", f"{rng.randint(1, 300)}巷"])
    sub = rng.choice(["", "", "", "", "之1", "之3"])
    floor = rng.choice(["", "", "", "", f"{rng.randint(2, 7)}樓"])
    return f"{county}{township}{rng.choice(P.ROADS)}{lane}{rng.randint(1, 680)}{sub}號{floor}"


def _phone(rng: random.Random, kind: str) -> int | str | None:
    landline = 89_000_000 + rng.randint(200_000, 999_999)  # 089-xxxxxx without the 0
    if kind == "call_first":
        mobile = f"09{rng.randint(10_000_000, 99_999_999)}"
        return "去前電" + rng.choice([mobile, mobile, f"0{landline}"])
    if kind == "blank":
        return None
    return landline


def _kinds(rng: random.Random, n: int, counts: dict[str, int], rest: str) -> list[str]:
    kinds = [k for k, c in counts.items() for _ in range(c)]
    kinds += [rest] * (n - len(kinds))
    rng.shuffle(kinds)
    return kinds


def _plan_lines(rng: random.Random) -> list[Line]:
    """The 225 lines in sheet order, with their block, codes, phones, quantities and notes."""
    lines: list[Line] = []
    day_index = 0
    shares = [share for _, _, share in CYLINDERS]
    for sheet, days in SHEET_DAYS.items():
        blocks = [(d, w) for d in days for w in WINDOWS]
        n = LINES[sheet]
        # Every block has at least one line; the rest shared out at random.
        weights = [rng.uniform(0.4, 1.6) for _ in blocks]
        sizes = [1 + k for k in apportion(weights, n - len(blocks), rng)]
        for (d, w), size in zip(blocks, sizes, strict=True):
            index = day_index + days.index(d)
            lines.extend(Line(sheet, d, w, index) for _ in range(size))
        day_index += len(days)
        sheet_lines = lines[-n:]
        phones = _kinds(rng, n, {"call_first": round(n * 0.3), "blank": round(n * 0.04)}, "number")
        notes = _kinds(
            rng,
            n,
            {"來電預約": max(1, round(n * 0.07)), "取消": max(1, round(n * 0.025)),
             "改期": max(1, round(n * 0.025)), "other": round(n * 0.08)},
            "none",
        )  # fmt: skip
        for line, phone, note in zip(sheet_lines, phones, notes, strict=True):
            line.phone = _phone(rng, phone)
            if note == "改期":
                later = line.day + timedelta(days=rng.randint(2, 6))
                line.note = f"改期{later:%m%d}"
            elif note == "other":
                line.note = rng.choice(OTHER_NOTES)
            elif note != "none":
                line.note = note
            products = 2 if rng.random() < 0.1 else 1
            while len(line.quantities) < products:
                col = rng.choices(range(len(CYLINDERS)), shares)[0]
                line.quantities[col] = rng.choices([1, 2, 3], [80, 17, 3])[0]
    assert len(lines) == sum(LINES.values())

    # Codes: 218 distinct; 7 lines repeat the code of a line on an earlier day.
    repeats = sorted(rng.sample([i for i, ln in enumerate(lines) if ln.day_index > 0], 7))
    firsts = [i for i in range(len(lines)) if i not in repeats]
    codes = rng.sample(range(CODE_LO, CODE_HI + 1), DISTINCT_CODES)
    for i, code in zip(firsts, codes, strict=True):
        lines[i].code = code
    used: set[int] = set()
    for i in repeats:
        earlier = [j for j in firsts if lines[j].day_index < lines[i].day_index and j not in used]
        j = rng.choice(earlier)
        used.add(j)
        lines[i].code = lines[j].code
    # One booked line (code cell 預約<code>), in 7月, on a code planned once.
    booked = rng.choice([j for j in firsts if j not in used and lines[j].sheet == "7月"])
    lines[booked].booked = True
    lines[booked].note = None
    return lines


def _summary(lines: list[Line], sheet: str) -> list[tuple[str, int | None]]:
    """The 7月 statistics block: (label, value); a None label is a blank row."""
    mine = [ln for ln in lines if ln.sheet == sheet]
    hdr = headers_for(sheet)
    rows: list[tuple[str, int | None]] = [
        ("服務人次", len(mine)),
        ("來電預約", sum(1 for ln in mine if ln.note == "來電預約" or ln.booked)),
        ("去前電", sum(1 for ln in mine if isinstance(ln.phone, str))),
        ("取消", sum(1 for ln in mine if (ln.note or "").startswith("取消"))),
        ("改期", sum(1 for ln in mine if (ln.note or "").startswith("改期"))),
        (None, None),
        ("各品項公斤數", None),
    ]
    total = 0
    for col, (_, kg, _) in enumerate(CYLINDERS):
        label = hdr[1 + len(HEAD) + col]
        kgs = kg * sum(ln.quantities.get(col, 0) for ln in mine)
        total += kgs
        rows.append((f"{label}kg" if isinstance(label, int) else label, kgs))
    rows.append(("合計公斤", total))
    return rows


def _sheet_rows(rng: random.Random, sheet: str, lines: list[Line]) -> list[list]:
    """Title row, header row, the blocks; the summary beside the table on 7月."""
    hdr = headers_for(sheet)
    width = len(hdr)
    title: list = [None] * width
    title[0], title[4] = TITLE, TITLES[sheet]
    rows: list[list] = [title, list(hdr)]
    block, seq, drivers = None, 0, list(P.DRIVERS)
    areas, area_weights = list(P.AREAS), list(P.AREAS.values())
    for ln in (x for x in lines if x.sheet == sheet):
        row: list = [None] * width
        if (ln.day, ln.window) != block:
            if block is None or block[0] != ln.day:
                seq = 0
            block = (ln.day, ln.window)
            row[0] = f"{ln.day:%m%d} {ln.window}"
            drivers = rng.sample(P.DRIVERS, rng.choice([1, 2, 2]))
        seq += 1
        area = rng.choices(areas, area_weights)[0]
        row[1] = seq
        row[2] = f"預約{ln.code}" if ln.booked else ln.code
        row[3] = _address(rng, area)
        row[4] = ln.phone
        for col, count in ln.quantities.items():
            row[1 + len(HEAD) + col] = count
        row[width - 3] = rng.choice(drivers)
        row[width - 2] = area
        row[width - 1] = ln.note
        rows.append(row)
    if sheet == "7月":
        for k, (label, value) in enumerate(_summary(lines, sheet)):
            r = 2 + k  # from spreadsheet row 3, beside the table
            while len(rows) <= r:
                rows.append([None] * width)
            rows[r] = rows[r] + [None] * (width - len(rows[r])) + [None, label, value]
    return rows


def write_residential_plan(path: Path, seed: int) -> list[dict]:
    """Write the plan workbook; one `sources`-style dict per sheet, in sheet order.

    Every random choice comes from `rng_for(seed, "residential-plan")`, and the workbook
    wrapper fixes the timestamps, so the same seed gives the same bytes.
    """
    rng = rng_for(seed, "residential-plan")
    lines = _plan_lines(rng)
    wb = Workbook(Path(path))
    facts: list[dict] = []
    for sheet in SHEET_DAYS:
        rows = _sheet_rows(rng, sheet, lines)
        wb.sheet(sheet, rows)
        last_row = max(r + 1 for r, row in enumerate(rows) if any(v is not None for v in row))
        columns = max(i + 1 for row in rows for i, v in enumerate(row) if v is not None)
        header = (rows[1] + [None] * columns)[:columns]
        facts.append(
            {
                "sheet": sheet, "kind": "sheet", "layout": "title_above_header",
                "header_row": 2, "last_row": last_row, "data_rows": last_row - 2,
                "columns": columns, "headers": header,
            }
        )  # fmt: skip
    wb.close()
    return facts
