"""Taiwan (ROC, 民國) dates: the Python twin of the dbt macro `taiwan_date`.

ROC year = Gregorian year - 1911. The raw layer keeps every cell as text, so parsing takes
text and returns a date or None, with the reason when it is None. The accepted forms and the
reasons are those of docs/taiwan-dates.md; one vector file (seeds/taiwan_date_vectors.csv)
drives the tests of this function and of the SQL macro, so both behave alike.

Formatting goes the other way (a date to each ROC form); the sample generator uses it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

ROC_OFFSET = 1911

# Why a value is not a date. Stable codes: the exception report and the quarantine use them.
EMPTY = "empty"
UNPARSEABLE = "unparseable"
NOT_CALENDAR_DATE = "not_calendar_date"
OUT_OF_RANGE = "out_of_range"
REASONS = (EMPTY, UNPARSEABLE, NOT_CALENDAR_DATE, OUT_OF_RANGE)

# ASCII digits only, never `\d`: in Python `\d` also matches other scripts' digits (١١٤...),
# which NFKC leaves alone and int() reads, so the twin would accept what SQL's [0-9] rejects.
# The macro (macros/taiwan_date/postgres__taiwan_date_parsed.sql) uses these exact
# patterns, anchored; a test checks it.
_ROC_COMPACT = re.compile(r"([0-9]{1,3})([0-9]{2})([0-9]{2})(?:\.0+)?")
_GREG_COMPACT = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})(?:\.0+)?")
_ROC_SEPARATED = re.compile(r"([0-9]{1,3})([/.-])([0-9]{1,2})\2([0-9]{1,2})")
_GREG_SEPARATED = re.compile(
    r"([0-9]{4})([/.-])([0-9]{1,2})\2([0-9]{1,2})"
    r"(?:[ T][0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?)?"
)
# Chinese: spaces may stand between the parts (after 民國, on either side of 年 and 月, before
# 日), never inside a number or inside 民國. `[ ]` is a space after NFKC, which also maps the
# ideographic space U+3000, the no-break space and U+2000-U+200A to it; other white space
# (a tab, a line break) between the parts stays unparseable.
_CHINESE = re.compile(
    r"(?:民國[ ]*)?([0-9]{1,3})[ ]*年[ ]*([0-9]{1,2})[ ]*月[ ]*([0-9]{1,2})[ ]*日"
)
# In the order parse() tries them (they are disjoint: the year's digit count and the
# separators tell them apart, so the order only documents precedence).
PATTERNS = (_GREG_COMPACT, _ROC_COMPACT, _GREG_SEPARATED, _ROC_SEPARATED, _CHINESE)


@dataclass(frozen=True)
class Parsed:
    """The outcome of parsing one value: a date, or None and the reason."""

    value: date | None
    reason: str | None


def _normalise(text: str) -> str:
    # NFKC maps full-width digits and separators (１１４／０５／２１) to ASCII.
    return unicodedata.normalize("NFKC", text).strip()


def _calendar(year: int, month: int, day: int) -> Parsed:
    if year < 1:
        return Parsed(None, NOT_CALENDAR_DATE)
    try:
        return Parsed(date(year, month, day), None)
    except ValueError:
        return Parsed(None, NOT_CALENDAR_DATE)


def parse(text: str | None, earliest: date | None = None, latest: date | None = None) -> Parsed:
    """Parse an ROC or Gregorian date written as text; never raises, never guesses."""
    if text is None:
        return Parsed(None, EMPTY)
    s = _normalise(text)
    if not s:
        return Parsed(None, EMPTY)

    parsed: Parsed | None = None
    if m := _GREG_COMPACT.fullmatch(s):
        parsed = _calendar(int(m[1]), int(m[2]), int(m[3]))
    elif m := _ROC_COMPACT.fullmatch(s):
        roc = int(m[1])
        parsed = _calendar(roc + ROC_OFFSET if roc else 0, int(m[2]), int(m[3]))
    elif m := _GREG_SEPARATED.fullmatch(s):
        parsed = _calendar(int(m[1]), int(m[3]), int(m[4]))
    elif m := _ROC_SEPARATED.fullmatch(s):
        roc = int(m[1])
        parsed = _calendar(roc + ROC_OFFSET if roc else 0, int(m[3]), int(m[4]))
    elif m := _CHINESE.fullmatch(s):
        roc = int(m[1])
        parsed = _calendar(roc + ROC_OFFSET if roc else 0, int(m[2]), int(m[3]))
    if parsed is None:
        return Parsed(None, UNPARSEABLE)
    if parsed.value is not None and (
        (earliest is not None and parsed.value < earliest)
        or (latest is not None and parsed.value > latest)
    ):
        return Parsed(None, OUT_OF_RANGE)
    return parsed


def to_date(text: str | None, earliest: date | None = None, latest: date | None = None):
    """The date, or None: the shape of the SQL macro `taiwan_date`."""
    return parse(text, earliest, latest).value


def roc_year(d: date) -> int:
    return d.year - ROC_OFFSET


def roc_compact(d: date) -> int:
    """1140521 for 2025-05-21; 990315 for 2010-03-15 (a 6-digit ROC date)."""
    return roc_year(d) * 10000 + d.month * 100 + d.day


def roc_separated(d: date, sep: str = "/", pad: bool = False) -> str:
    if pad:
        return f"{roc_year(d)}{sep}{d.month:02d}{sep}{d.day:02d}"
    return f"{roc_year(d)}{sep}{d.month}{sep}{d.day}"


def roc_chinese(d: date, prefix: bool = True) -> str:
    core = f"{roc_year(d)}年{d.month}月{d.day}日"
    return f"民國{core}" if prefix else core


_FULLWIDTH = str.maketrans("0123456789/-.", "０１２３４５６７８９／－．")


def to_fullwidth(text: str) -> str:
    """ASCII digits and date separators to their full-width forms (as typed with a CJK IME)."""
    return text.translate(_FULLWIDTH)
