"""Deterministic, safe PostgreSQL names for raw tables and their columns.

Tables: `<file>__<sheet>` in lowercase ASCII (runs of anything else become `_`), e.g.
`luckygas__clients`. When the slug is not the name itself (Chinese, punctuation, spaces,
case) or had to be shortened, 8 hex digits of the SHA-1 of the exact file and sheet names are
appended, so two names can never collide: `f_2025_05_commercial_client_list__5a61fcbc` for the
sheet 客戶資料. A name starting with a digit gets the prefix `f_`. CSV files have one table,
named after the file alone. Every name fits PostgreSQL's 63-byte limit; `raw._sources` records
the original file and sheet beside each table name.

The file's kind and extension are not part of the name (the dbt models read the raw tables by
these names), so a sheet `clients` of `k.xlsx` and a table `clients` of `k.db`, or `k.csv` and
`k.tsv`, share one table: `loaders.raw` refuses such a collision (in one run, and against the
source the table last held) rather than let one replace the other.

Columns: the header text itself (Chinese kept; white space at either end removed and every
run inside, line breaks included, made one space, since they cannot be typed), so raw tables
read like the source. A blank header becomes `col_<n>` (n = 1-based column position), a
header seen before in the same row becomes `<header>_<n>`, a header longer than 63 bytes is
cut and given `_<4 hex>` of its hash, and a sheet with no header row has `col_1` ...
`col_<n>`. `raw._columns` records each column's original header. Lineage columns start with
`_` and cannot be taken by a header.

Names are only ever used through psycopg's `sql.Identifier`, never spliced into SQL text.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

MAX_IDENTIFIER_BYTES = 63
LINEAGE_COLUMNS = ("_load_id", "_source_file", "_source_sha256", "_source_sheet", "_source_row")
RESERVED_COLUMNS = (*LINEAGE_COLUMNS, "_loaded_at")  # _loaded_at is filled by a default

_NON_SLUG = re.compile(r"[^a-z0-9]+")


def _hash(*parts: str, length: int = 8) -> str:
    return hashlib.sha1("\x00".join(parts).encode("utf-8")).hexdigest()[:length]


def slug(text: str) -> str:
    """Lowercase ASCII letters, digits and single underscores."""
    folded = unicodedata.normalize("NFKC", text).lower()
    return _NON_SLUG.sub("_", folded).strip("_")


def _lossless(text: str, slugged: str) -> bool:
    """Whether the slug says everything the text said: together the two tests hold only when
    the slug is the text itself."""
    return slugged == re.sub(r"[ \-_.]+", "_", text).strip("_") and slugged == text.lower()


def table_name(file_name: str, sheet: str, file_kind: str) -> str:
    """The raw table for one sheet or table of one file (`file_name` without directories)."""
    stem = file_name.rsplit(".", 1)[0] if "." in file_name else file_name
    file_part = slug(stem) or "file"
    lossy = not _lossless(stem, file_part)
    if file_kind == "csv":
        name = file_part
    else:
        sheet_part = slug(sheet)
        lossy = lossy or not _lossless(sheet, sheet_part)
        name = f"{file_part}__{sheet_part}" if sheet_part else f"{file_part}__"
    if name[0].isdigit():
        name = "f_" + name
    room = MAX_IDENTIFIER_BYTES - 9  # for "_" + 8 hex
    if len(name) > room:
        name, lossy = name[:room].rstrip("_"), True
    if lossy:
        sep = "" if name.endswith("__") else "_"
        name = f"{name}{sep}{_hash(file_name, sheet)}"
    return name


def _fit(name: str) -> str:
    encoded = name.encode("utf-8")
    if len(encoded) <= MAX_IDENTIFIER_BYTES:
        return name
    cut = encoded[: MAX_IDENTIFIER_BYTES - 5].decode("utf-8", errors="ignore")
    return f"{cut}_{_hash(name, length=4)}"


def column_names(headers: list[str | None]) -> list[str]:
    """One unique column name per header cell (see the module docstring for the rule)."""
    names: list[str] = []
    seen = set(RESERVED_COLUMNS)
    for position, header in enumerate(headers, start=1):
        text = " ".join((header or "").split())
        name = _fit(text) if text else f"col_{position}"
        if name in seen:
            name = _fit(f"{text or 'col'}_{position}")
        while name in seen:  # a header literally named like a generated one
            name = _fit(f"{name}_{position}")
        seen.add(name)
        names.append(name)
    return names
