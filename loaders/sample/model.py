"""What every part of the generator shares: the client, cell values, seeded streams, scaling.

Cell values in rendered rows use plain Python types: None is a blank cell, int and float
numeric cells, str text cells, `date`/`datetime` date cells and `XlError` error cells;
`raw_text` and `cell_type` say what a lossless load stages for each.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True)
class XlError:
    """An Excel error cell such as #NAME?; written as a formula whose cached value is the error."""

    code: str
    formula: str = "=#REF!"


NAME_ERR = XlError("#NAME?", "=_xludf.客戶名稱(A2)")
REF_ERR = XlError("#REF!", "=#REF!+1")
VALUE_ERR = XlError("#VALUE!", '="件"+1')


def raw_text(value: object) -> str | None:
    """The text a lossless loader stages for a cell: what the source meant, never a guess.

    Whole numbers lose the float's `.0`, other floats take their shortest round-trip form,
    date cells become ISO text, error cells their code, blanks None, text stays as it is.
    """
    if value is None:
        return None
    if isinstance(value, XlError):
        return value.code
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, datetime):
        if value.time() == datetime.min.time():
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def cell_type(value: object) -> str:
    """Spreadsheet cell type: n(umeric), s(tring), d(ate), e(rror), b(lank) or bool."""
    if value is None:
        return "b"
    if isinstance(value, XlError):
        return "e"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (date, datetime)):
        return "d"
    if isinstance(value, (int, float)):
        return "n"
    return "s"


def rng_for(seed: int, part: str) -> random.Random:
    """An independent random stream per part, so changing one part leaves the others' bytes."""
    return random.Random(f"luckygas:{seed}:{part}")


def scale_count(full: int, factor: float, minimum: int = 0) -> int:
    if full <= 0:
        return 0
    return max(minimum, round(full * factor))


def apportion(weights: list[float], total: int, rng: random.Random) -> list[int]:
    """Split `total` into whole parts proportional to `weights`, without bias.

    Systematic sampling: part i is how many of the points u, u+1, u+2, ... fall in its share of
    [0, total), so every part is the floor or the ceiling of its exact share and the parts add
    up to `total`, however small the shares are.
    """
    s = sum(weights)
    if total <= 0 or s <= 0:
        return [0] * len(weights)
    u = rng.random()
    parts, cum, prev = [], 0.0, 0
    for w in weights:
        cum += w * total / s
        upto = min(total, math.floor(cum + u))
        parts.append(upto - prev)
        prev = upto
    parts[-1] += total - prev
    return parts


def deal(
    rng: random.Random,
    n: int,
    counts: dict,
    filled_full: int | None = None,
    factor: float = 1.0,
    tail=None,
    distinct: int | None = None,
) -> list:
    """n cell values whose shares follow `counts` (full-scale counts), blanks (None) for the rest.

    Every value with a count keeps at least one cell at any scale; `tail(rng)` makes the values
    beyond the listed top ones when `filled_full` (the full-scale count of non-blank cells)
    exceeds the listed counts. `distinct` (full scale) bounds how many different values the
    column holds, as the real file's profile gives it.
    """
    listed = sum(counts.values())
    filled_full = listed if filled_full is None else filled_full
    filled = min(n, scale_count(filled_full, factor, minimum=1 if filled_full else 0))
    targets = {v: max(1, round(c * factor)) for v, c in counts.items() if c > 0}
    # Keep the listed values within the filled cells: trim the largest first.
    while sum(targets.values()) > filled:
        biggest = max(targets, key=lambda v: (targets[v], str(v)))
        if targets[biggest] <= 1:
            break
        targets[biggest] -= 1
    values: list = []
    for v, c in targets.items():
        values.extend([v] * c)
    room = filled - len(values)
    if room > 0 and tail:
        pool: list = []
        want = (
            room
            if distinct is None
            else max(1, min(room, scale_count(distinct - len(targets), factor, 1)))
        )
        for _ in range(want * 50):
            if len(pool) >= want:
                break
            v = tail(rng)
            if v not in targets and v not in pool:
                pool.append(v)
        values.extend(pool[:room])
        while len(values) < filled:
            values.append(rng.choice(pool))
    while len(values) < filled:
        values.append(next(iter(targets)))
    values = values[:n]
    values.extend([None] * (n - len(values)))
    rng.shuffle(values)
    return values


@dataclass
class Client:
    """One client of the master, with what the generator needs to render every export."""

    index: int  # position in 客戶資料 (0-based); the spreadsheet row is index + 2
    code: int
    invoice_title: str
    short_name: str
    address: str
    area: str | None
    cells: dict[str, object] = field(default_factory=dict)  # header -> master cell value
    metered: bool = False
    products: list[tuple[str, int]] = field(default_factory=list)  # (product code, count)
    weight: float = 1.0
    active_until: date | None = None
    salesperson: str = ""
    hours: list[int] = field(default_factory=list)
    app_id: int = 0

    @property
    def row(self) -> int:
        return self.index + 2

    @property
    def code_text(self) -> str:
        return str(self.code)
