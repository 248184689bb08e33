"""Bounded reading (issue 15 point 5): crafted workbooks and files that would take unbounded
memory are refused at open with one SourceError line, before calamine parses anything.

The cases that would abort the process (a Rust allocation of 512 GiB) run the CLI in a
subprocess, under an address-space limit: exit 2, one line on stderr, no traceback. The
others open the file in-process, some with a limit lowered so that the file stays small.
"""

from __future__ import annotations

import resource
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from loaders.readers import bounds, csvfile, open_file, xlsx
from loaders.readers import sheet_xml as sheet_xml_module
from loaders.readers.base import SourceError
from loaders.tests.readers_fixtures import XLS_FILE, write_xlsx

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
CT = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.'
    'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sharedStrings+xml"/></Types>'
)
RELS = (
    f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG}">'
    f'<Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
WORKBOOK = (
    f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN}" xmlns:r="{REL}">'
    '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
WORKBOOK_RELS = (
    f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG}">'
    f'<Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/>'
    "</Relationships>"
)
SHEET = "xl/worksheets/sheet1.xml"
STRINGS = "xl/sharedStrings.xml"


def cell(ref: str, value: str = "1") -> str:
    return f'<c r="{ref}"><v>{value}</v></c>'


def sheet_xml(rows: str, dimension: str | None = None) -> str:
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN}">{dim}'
        f"<sheetData>{rows}</sheetData></worksheet>"
    )


def strings_xml(items: list[str], unique: int | None = None) -> str:
    declared = f' uniqueCount="{len(items) if unique is None else unique}"'
    body = "".join(f"<si><t>{s}</t></si>" for s in items)
    return f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{MAIN}"{declared}>{body}</sst>'


def write_workbook(
    path: Path, sheet: str, strings: str | bytes | None = None, **parts: str | bytes
) -> Path:
    """A minimal valid .xlsx written part by part: one sheet, and shared strings."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", CT)
        z.writestr("_rels/.rels", RELS)
        z.writestr("xl/workbook.xml", WORKBOOK)
        z.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        z.writestr(SHEET, sheet)
        z.writestr(STRINGS, strings if strings is not None else strings_xml(["x"]))
        for name, data in parts.items():
            z.writestr(name, data)
    return path


def set_declared_size(path: Path, member: str, size: int) -> None:
    """Rewrite the uncompressed size that the zip records (central directory and local
    header) for `member`, as a crafted file would."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
        start = zf.start_dir
    struct.pack_into("<I", data, info.header_offset + 22, size)
    pos = start
    while data[pos : pos + 4] == b"PK\x01\x02":
        n, m, k = struct.unpack_from("<HHH", data, pos + 28)
        if data[pos + 46 : pos + 46 + n].decode() == member:
            struct.pack_into("<I", data, pos + 24, size)
        pos += 46 + n + m + k
    path.write_bytes(bytes(data))


def refusal(path: Path) -> str:
    with pytest.raises(SourceError) as caught:
        for source in open_file(path):
            for _ in source.rows():
                pass
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


def _limit_memory() -> None:  # in the child: an abort would need far more than this
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def dry_run(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "loaders.cli", "load", "--dry-run", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limit_memory,
    )


def assert_refused_by_cli(path: Path, *words: str) -> None:
    done = dry_run(path)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr and "refused" in lines[0]
    for word in words:
        assert word in lines[0], lines[0]


# --------------------------------------------------------------------------------------------
# What would abort the process: in a subprocess


def test_declared_used_range_of_the_whole_grid_is_refused(tmp_path: Path) -> None:
    path = write_workbook(
        tmp_path / "dim.xlsx", sheet_xml(f'<row r="1">{cell("A1")}</row>', "A1:XFD1048576")
    )
    assert_refused_by_cli(path, "A1:XFD1048576", "17,179,869,184 cells", "20,000,000")


def test_cell_at_the_last_row_and_column_without_dimension_is_refused(tmp_path: Path) -> None:
    rows = f'<row r="1">{cell("A1")}</row><row r="1048576">{cell("XFD1048576")}</row>'
    path = write_workbook(tmp_path / "far.xlsx", sheet_xml(rows))
    assert_refused_by_cli(path, "range its cells span", "17,179,869,184 cells")


def test_far_cell_in_the_middle_of_small_rows_is_refused(tmp_path: Path) -> None:
    """calamine spans the range over every cell, not only the first and the last."""
    rows = "".join(f'<row r="{r}">{cell(f"A{r}")}</row>' for r in range(1, 50))
    rows += f'<row r="50">{cell("XFD1048576")}</row><row r="51">{cell("B51")}</row>'
    path = write_workbook(tmp_path / "mid.xlsx", sheet_xml(rows, "A1:B51"))
    assert_refused_by_cli(path, "range its cells span")


def test_declared_unique_count_of_shared_strings_is_refused(tmp_path: Path) -> None:
    path = write_workbook(
        tmp_path / "unique.xlsx",
        sheet_xml(f'<row r="1">{cell("A1")}</row>'),
        strings_xml(["x"], unique=4_000_000_000),
    )
    assert_refused_by_cli(path, "uniqueCount", "4,000,000,000")


def test_highly_compressed_shared_strings_are_refused(tmp_path: Path) -> None:
    """50 MB of one character compresses about 1000 times: a zip bomb."""
    bomb = strings_xml(["x" * 50_000_000])
    path = write_workbook(
        tmp_path / "ratio.xlsx", sheet_xml(f'<row r="1">{cell("A1")}</row>'), bomb
    )
    assert_refused_by_cli(path, "compressed", "times")


def test_a_normal_workbook_still_loads(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "ok.xlsx", {"s": [["客戶", "金額"], ["A", 1], ["B", 2.5]]})
    done = dry_run(path)
    assert done.returncode == 0, done.stderr
    assert "would load 1 sources, 2 rows" in done.stdout


# --------------------------------------------------------------------------------------------
# The package


def test_huge_declared_part_is_refused(tmp_path: Path) -> None:
    path = write_workbook(tmp_path / "declared.xlsx", sheet_xml(f'<row r="1">{cell("A1")}</row>'))
    set_declared_size(path, STRINGS, 3 << 30)
    assert "bytes uncompressed" in refusal(path)


def test_part_that_inflates_beyond_its_declared_size_is_refused(tmp_path: Path) -> None:
    """calamine's zip reader inflates a part to its real end: the declared size is checked."""
    many = strings_xml([f"s{i}" for i in range(20_000)])
    path = write_workbook(tmp_path / "liar.xlsx", sheet_xml(f'<row r="1">{cell("A1")}</row>'), many)
    set_declared_size(path, STRINGS, 1000)
    assert "inflates to more than it declares" in refusal(path)


def test_large_workbook_xml_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """workbook.xml and the .rels are parsed by ElementTree, whole: refused before that."""
    monkeypatch.setattr(sheet_xml_module, "MAX_PACKAGE_XML_BYTES", 100)
    path = write_workbook(tmp_path / "wb.xlsx", sheet_xml(f'<row r="1">{cell("A1")}</row>'))
    assert "part _rels/.rels" in refusal(path)


def test_total_size_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bounds, "MAX_TOTAL_BYTES", 1000)
    rows = "".join(f'<row r="{r}">{cell(f"A{r}")}</row>' for r in range(1, 100))
    path = write_workbook(tmp_path / "total.xlsx", sheet_xml(rows))
    assert "all parts" in refusal(path)


def test_too_many_shared_strings_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(bounds, "MAX_SHARED_STRINGS", 1000)
    sheet = sheet_xml(f'<row r="1">{cell("A1")}</row>')
    declared = write_workbook(tmp_path / "declared.xlsx", sheet, strings_xml(["x"] * 1001))
    assert "uniqueCount" in refusal(declared)
    counted = write_workbook(
        tmp_path / "counted.xlsx", sheet, strings_xml([f"{i}" for i in range(1001)], unique=1)
    )
    assert "shared strings: 1,001 strings" in refusal(counted)


def test_shared_string_repeated_in_every_cell_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """calamine copies a shared string into every cell that names it."""
    monkeypatch.setattr(bounds, "MAX_PARSE_STRING_BYTES", 1 << 20)
    rows = "".join(f'<row r="{r}"><c r="A{r}" t="s"><v>0</v></c></row>' for r in range(1, 1001))
    path = write_workbook(tmp_path / "amp.xlsx", sheet_xml(rows), strings_xml(["y" * 2000]))
    assert "shared text its cells repeat" in refusal(path)


# --------------------------------------------------------------------------------------------
# Sheets


def test_wide_sheet_without_row_numbers_is_refused(tmp_path: Path) -> None:
    """Cells without r are placed by position, as calamine does, and counted that way."""
    wide = "<row>" + "<c><v>1</v></c>" * 16_384 + "</row>"
    rows = wide + "<row/>" * 1000 + "<row><c><v>2</v></c></row>"
    path = write_workbook(tmp_path / "noref.xlsx", sheet_xml(rows))
    assert "16,416,768 cells" in refusal(path)  # 1,002 rows x 16,384 columns


def test_far_cell_in_a_later_slice_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xlsx, "SLICE_BYTES", 4000)
    rows = "".join(f'<row r="{r}">{cell(f"A{r}")}{cell(f"B{r}")}</row>' for r in range(1, 400))
    rows += f'<row r="400">{cell("A400")}{cell("XFD1048576")}</row>'
    path = write_workbook(tmp_path / "slices.xlsx", sheet_xml(rows))
    assert "range its cells span (per 16 MiB of XML)" in refusal(path)


def test_used_range_across_slices_is_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each slice is small, but rows() would yield every row between them."""
    monkeypatch.setattr(xlsx, "SLICE_BYTES", 4000)
    monkeypatch.setattr(bounds, "MAX_SHEET_CELLS", 100_000)
    rows = "".join(f'<row r="{r}">{cell(f"A{r}")}{cell(f"B{r}")}</row>' for r in range(1, 400))
    rows += f'<row r="900000">{cell("A900000")}</row>'
    path = write_workbook(tmp_path / "gap.xlsx", sheet_xml(rows))
    assert "used range of 900,000 rows x 2 columns" in refusal(path)


def test_one_huge_row_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xlsx, "SLICE_BYTES", 4000)
    monkeypatch.setattr(sheet_xml_module, "MAX_ROW_XML", 50_000)
    rows = "".join(f'<row r="{r}">{cell(f"A{r}")}</row>' for r in range(1, 300))
    rows += '<row r="300">' + "".join(cell(f"{c}300") for c in ("A", "B", "C")) * 2000 + "</row>"
    path = write_workbook(tmp_path / "row.xlsx", sheet_xml(rows))
    assert "XML of one row" in refusal(path)


@pytest.mark.parametrize(
    "rows",
    [
        '<row r="3"><c r="C3"><v>1</v></c><c r="AB3"><v>1</v></c></row>'
        '<row r="120"><c r="B120"><v>1</v></c></row>',
        '<row r="1"><c r="A1"><v>1</v></c></row><row r="2"><c r="Z2"><v>1</v></c></row>'
        '<row r="9999"><c r="E9999"><v>1</v></c></row>',
        '<row r="1"><c r="XFD1"><v>1</v></c></row><row r="70000"><c r="A70000"><v>1</v></c></row>',
    ],
)
def test_fast_bound_is_at_least_the_exact_range(rows: str) -> None:
    xml = sheet_xml(rows).encode()
    start, end = xml.find(b"sheetData"), xml.rfind(b"sheetData")
    exact = bounds.RangeScan()
    exact.feed(xml, start, end)
    fast = bounds._fast_cells(xml, start, end)
    assert fast is not None and fast >= exact.cells > 0


def test_real_sheets_pass(tmp_path: Path) -> None:
    """A sheet of the client list's shape (76 columns) is read, not refused."""
    rows = [[f"h{c}" for c in range(76)]] + [[r * c for c in range(76)] for r in range(1, 300)]
    path = write_xlsx(tmp_path / "wide.xlsx", {"s": rows})
    (source,) = open_file(path)
    assert len(source.headers) == 76 and sum(1 for _ in source.rows()) == 299


# --------------------------------------------------------------------------------------------
# .xls and CSV


def test_xls_over_the_size_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from loaders.readers import xls

    monkeypatch.setattr(xls, "MAX_XLS_BYTES", 1000)
    path = tmp_path / "big.xls"
    path.write_bytes(XLS_FILE)
    assert "the file:" in refusal(path)


def test_csv_line_without_end_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(csvfile, "MAX_CSV_RECORD_CHARS", 10_000)
    path = tmp_path / "long.csv"
    path.write_text("a,b\n" + "x" * 50_000 + "\n", "utf-8")
    assert "record 2: 10,001 characters or more" in refusal(path)


def test_csv_record_of_too_many_fields_is_refused(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(csvfile, "MAX_CSV_FIELDS", 100)
    path = tmp_path / "wide.csv"
    path.write_text("a,b\n" + ",".join("1" * 101) + "\n", "utf-8")
    assert "record 2: 101 fields" in refusal(path)


def test_csv_field_over_the_field_limit_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "field.csv"
    path.write_text('a,b\n"' + "x" * 200_000 + '",1\n', "utf-8")
    with pytest.raises(SourceError, match="field larger than field limit"):
        open_file(path)


def test_sliced_sheet_without_row_numbers_is_scanned_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large sheet whose rows have no numbers is parsed whole by calamine: it is scanned
    whole first (and still reads when within the limits)."""
    monkeypatch.setattr(xlsx, "SLICE_BYTES", 2000)
    rows = "<row><c><v>1</v></c><c><v>2</v></c></row>" * 300
    path = write_workbook(tmp_path / "ok.xlsx", sheet_xml(rows))
    (source,) = open_file(path)
    assert sum(1 for _ in source.rows()) == 300  # no header row: numbers only
    monkeypatch.setattr(bounds, "MAX_PARSE_CELLS", 500)
    assert "range its cells span" in refusal(path)
