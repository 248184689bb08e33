"""The Taiwan-date conversion: the Python twin and the dbt macros, driven by one vector file.

1. every vector of seeds/taiwan_date_vectors.csv through `loaders.taiwan_date.parse`;
2. properties: every accepted form of every date from 1912 to 2099 parses back to it;
3. `dbt seed` + `dbt test` (tests/taiwan_date_vectors.sql) on a throwaway database;
4. the macros (compiled from analyses/taiwan_date_check.sql) and the twin agree on every
   vector and on a few thousand generated messy strings.
"""

from __future__ import annotations

import csv
import json
import random
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from psycopg.conninfo import make_conninfo

from loaders import connection
from loaders import taiwan_date as td
from loaders.tests.dbt_runner import dbt_env, run_dbt

ROOT = Path(__file__).resolve().parents[2]
VECTOR_FILE = ROOT / "seeds" / "taiwan_date_vectors.csv"
MACRO_FILE = ROOT / "macros" / "taiwan_date" / "postgres__taiwan_date_parsed.sql"
DATABASE = "luckygas_test_taiwan_date"

# What Python's str.strip() removes, hence what the macro must strip too.
WHITE_SPACE = "".join(c for c in map(chr, range(0x110000)) if c.isspace())


# --- the vector file ------------------------------------------------------------------------


def decode_input(field: str) -> str | None:
    """The seed's `input`: an empty field is NULL (as dbt loads it), else a JSON string body."""
    return None if field == "" else json.loads(f'"{field}"')


def encode_input(text: str) -> str:
    """The inverse of decode_input for non-empty text."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _date(field: str) -> date | None:
    return date.fromisoformat(field) if field else None


@dataclass(frozen=True)
class Vector:
    id: str
    input: str | None
    earliest: date | None
    latest: date | None
    expected: td.Parsed
    note: str


def read_vectors() -> list[Vector]:
    with VECTOR_FILE.open(encoding="utf-8", newline="") as f:
        return [
            Vector(
                id=row["id"],
                input=decode_input(row["input"]),
                earliest=_date(row["earliest"]),
                latest=_date(row["latest"]),
                expected=td.Parsed(_date(row["expected_date"]), row["expected_reason"] or None),
                note=row["note"],
            )
            for row in csv.DictReader(f)
        ]


VECTORS = read_vectors()


def test_vector_file_covers_the_spec():
    assert len(VECTORS) >= 60
    assert len({v.id for v in VECTORS}) == len(VECTORS)
    for v in VECTORS:
        assert (v.expected.value is None) != (v.expected.reason is None), v.id
        assert v.expected.reason in (None, *td.REASONS), v.id
    assert {v.expected.reason for v in VECTORS} >= set(td.REASONS)
    inputs = {v.input for v in VECTORS}
    # every example of docs/taiwan-dates.md, and NULL beside white-space-only text
    spec_examples = {
        "1140521", "990315", "0890229", "1140521.0", "114/5/21", "114-05-21",
        "民國114年5月21日", "114年5月21日", "１１４／０５／２１", "2025-05-21",
        "2025/05/21 00:00:00", "20250521", "1120229", "1141301", "114/02/30", "#NAME?",
        None, "   ",
    }  # fmt: skip
    assert spec_examples <= inputs, spec_examples - inputs
    bounded = [v for v in VECTORS if v.earliest or v.latest]
    assert any(v.expected.value == v.earliest for v in bounded)  # inclusive at both ends
    assert any(v.expected.value == v.latest for v in bounded)


@pytest.mark.parametrize("v", VECTORS, ids=[v.id for v in VECTORS])
def test_python_twin_on_vector(v: Vector):
    assert td.parse(v.input, v.earliest, v.latest) == v.expected, v.note


def test_macro_uses_the_twins_patterns():
    """The SQL regexes are the twin's, anchored, character for character."""
    macro = MACRO_FILE.read_text(encoding="utf-8")
    for pattern in td.PATTERNS:
        assert f"'^{pattern.pattern}$'" in macro, pattern.pattern


# --- properties -----------------------------------------------------------------------------

FIRST_DAY, LAST_DAY = date(1912, 1, 1), date(2099, 12, 31)


Form = Callable[[date], str]


def _roc_forms() -> dict[str, Form]:
    """Every ROC spelling the conversion accepts, by name (ASCII; full width is added below)."""
    forms: dict[str, Form] = {
        "compact": lambda d: str(td.roc_compact(d)),
        "compact zero-padded": lambda d: f"{td.roc_compact(d):07d}",
        "compact .0": lambda d: f"{td.roc_compact(d)}.0",
        "compact zero-padded .0": lambda d: f"{td.roc_compact(d):07d}.0",
        "Chinese 民國": lambda d: td.roc_chinese(d, prefix=True),
        "Chinese": lambda d: td.roc_chinese(d, prefix=False),
        "Chinese padded": lambda d: f"民國{td.roc_year(d)}年{d.month:02d}月{d.day:02d}日",
        "Chinese spaced": lambda d: f"民國 {td.roc_year(d)} 年 {d.month} 月 {d.day} 日",
        "Chinese spaced after marks": lambda d: (
            f"{td.roc_year(d)}年 {d.month:02d}月  {d.day:02d}日"
        ),
        "Chinese ideographic spaces": lambda d: (
            f"{td.roc_year(d)}\u3000年\u3000{d.month}\u3000月\u3000{d.day}\u3000日"
        ),
    }
    for sep in "/-.":
        forms[f"{sep}"] = lambda d, sep=sep: td.roc_separated(d, sep)
        forms[f"{sep} padded"] = lambda d, sep=sep: td.roc_separated(d, sep, pad=True)
        forms[f"{sep} padded year"] = lambda d, sep=sep: (
            f"{td.roc_year(d):03d}{sep}{d.month:02d}{sep}{d.day:02d}"
        )
    return forms


ROC_FORMS = _roc_forms()
GREGORIAN_FORMS: dict[str, Form] = {
    "ISO": lambda d: d.isoformat(),
    "slash": lambda d: d.strftime("%Y/%m/%d"),
    "dash unpadded": lambda d: f"{d.year}-{d.month}-{d.day}",
    "dot": lambda d: d.strftime("%Y.%m.%d"),
    "ISO datetime": lambda d: d.strftime("%Y-%m-%d 00:00:00"),
    "slash datetime": lambda d: d.strftime("%Y/%m/%d 00:00:00"),
    "ISO T fraction": lambda d: d.strftime("%Y-%m-%dT13:45:00.5"),
    "compact": lambda d: d.strftime("%Y%m%d"),
    "compact .0": lambda d: d.strftime("%Y%m%d.0"),
}
ASCII_FORMS = {
    **{f"ROC {k}": f for k, f in ROC_FORMS.items()},
    **{f"Gregorian {k}": f for k, f in GREGORIAN_FORMS.items()},
}
FORMS = {
    **ASCII_FORMS,
    **{f"full-width {k}": (lambda d, f=f: td.to_fullwidth(f(d))) for k, f in ASCII_FORMS.items()},
}
FORM_LIST = list(FORMS.items())


def test_every_day_parses_back_from_one_of_its_forms():
    """Every day of 1912-2099 (68,665), each through the next form in turn."""
    d, i = FIRST_DAY, 0
    while d <= LAST_DAY:
        name, form = FORM_LIST[i % len(FORM_LIST)]
        assert td.parse(form(d)) == td.Parsed(d, None), (name, form(d))
        d, i = d + timedelta(days=1), i + 1


@settings(max_examples=400, deadline=None)
@given(
    st.dates(FIRST_DAY, LAST_DAY),
    st.sampled_from(["", *WHITE_SPACE]),
    st.sampled_from(["", *WHITE_SPACE]),
)
@example(FIRST_DAY, "", "")
@example(LAST_DAY, "", "")
@example(date(1920, 12, 31), "", "")  # ROC 9: 5-digit compact
@example(date(1921, 1, 1), "", "")  # ROC 10: 6-digit compact
@example(date(2010, 12, 31), "", "")  # ROC 99
@example(date(2011, 1, 1), "", "")  # ROC 100
@example(date(1912, 2, 29), " ", "\t")
@example(date(2000, 2, 29), "\u3000", "\u3000")
@example(date(2024, 2, 29), "", "\n")
def test_every_form_of_a_date_parses_back(d: date, before: str, after: str):
    for name, form in FORM_LIST:
        for text in (form(d), before + form(d) + after):
            assert td.parse(text) == td.Parsed(d, None), (name, text)
            assert td.parse(text, d, d) == td.Parsed(d, None), (name, text)  # inclusive bounds
    assert td.parse(d.isoformat(), d + timedelta(days=1)).reason == td.OUT_OF_RANGE
    assert td.parse(d.isoformat(), None, d - timedelta(days=1)).reason == td.OUT_OF_RANGE


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_parse_gives_a_date_or_a_reason_for_any_text(text: str):
    parsed = td.parse(text)
    assert (parsed.value is None) != (parsed.reason is None)
    assert parsed.reason in (None, *td.REASONS)


# --- dbt on a throwaway database ------------------------------------------------------------


@dataclass(frozen=True)
class DbtDatabase:
    conninfo: str
    env: dict[str, str]
    target: Path
    seed: subprocess.CompletedProcess

    def dbt(self, *args: str) -> subprocess.CompletedProcess:
        return _run_dbt(list(args), self.env)


def _run_dbt(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return run_dbt(args, env, timeout=180)


@pytest.fixture(scope="module")
def seeded(pg, tmp_path_factory) -> Iterator[DbtDatabase]:
    """A fresh database holding the vector seed (`dbt seed`), and how to run dbt against it."""
    tmp = tmp_path_factory.mktemp("taiwan-date-dbt")
    env = dbt_env(pg.env, tmp, PGDATABASE=DATABASE)
    with psycopg.connect(pg.conninfo, autocommit=True) as admin:
        connection.drop_database(admin, DATABASE)
        admin.execute(f'create database "{DATABASE}"')
    try:
        seed = _run_dbt(["seed", "--select", "taiwan_date_vectors"], env)
        assert seed.returncode == 0, seed.stdout + seed.stderr
        yield DbtDatabase(make_conninfo(pg.conninfo, dbname=DATABASE), env, tmp / "target", seed)
    finally:
        with psycopg.connect(pg.conninfo, autocommit=True) as admin:
            connection.drop_database(admin, DATABASE)


def test_dbt_seed_and_vector_test_pass(seeded: DbtDatabase):
    # every vector loaded (a seed is always reloaded whole: dbt_project.yml, +full_refresh)
    assert f"CREATE {len(VECTORS)}" in seeded.seed.stdout, seeded.seed.stdout
    result = seeded.dbt("test", "--select", "taiwan_date_vectors")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS taiwan_date_vectors " in result.stdout, result.stdout  # the singular test ran


# --- SQL and Python agree -------------------------------------------------------------------

# Characters the generator mixes: digits (weighted), separators, the Chinese marks, full-width
# forms, every white-space character, and look-alikes that NFKC maps (or leaves) to tempt one
# side: circled, superscript and mathematical digits, ㋄ (5月), ㏠ (1日), Kangxi ⽇ and ⽉,
# Arabic-Indic digits, a diaeresis (NFKC: space + combining mark), small and leader dots.
DIGITS = "0123456789"
MESSY = (
    DIGITS * 6
    + "/-.:T t" * 3
    + "年月日民國" * 2
    + "０１２３４５６７８９／－．：Ｔ"
    + WHITE_SPACE
    + "①⑩²𝟏㋄㏠⽇⽉١٣\u00a8\u2024\ufe52\ufe63#?x中華"
)


def _random_date(rng: random.Random) -> date:
    return date(1, 1, 1) + timedelta(days=rng.randrange((date(2999, 12, 31) - date(1, 1, 1)).days))


def _number(rng: random.Random, max_digits: int) -> str:
    return "".join(rng.choice(DIGITS) for _ in range(rng.randint(0, max_digits)))


def _gap(rng: random.Random) -> str:
    """What may stand between the parts of a Chinese date, or may not (a tab, a line break)."""
    return rng.choice(["", "", "", " ", "  ", "\u3000", "\u00a0", " \u3000", "\t", "\n"])


def valid_form(rng: random.Random) -> str:
    """A form the conversion accepts, of some day of years 1-2999, maybe full-width or padded."""
    d = _random_date(rng)
    forms = list(GREGORIAN_FORMS.values()) if d.year >= 1000 else [date.isoformat]
    forms += ROC_FORMS.values() if 1912 <= d.year <= 2910 else []
    text = rng.choice(forms)(d)
    text = td.to_fullwidth(text) if rng.random() < 0.3 else text
    if rng.random() < 0.3:
        text = rng.choice(WHITE_SPACE) + text + rng.choice(["", *WHITE_SPACE])
    return text


def messy_string(rng: random.Random) -> str:
    kind = rng.randrange(6)
    if kind == 0:
        return valid_form(rng)
    if kind == 1:  # a valid form with a few edits
        chars = list(valid_form(rng))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(chars) + 1)
            edit = rng.randrange(3)
            if edit == 0 or not chars:
                chars.insert(at, rng.choice(MESSY))
            elif edit == 1:
                del chars[min(at, len(chars) - 1)]
            else:
                chars[min(at, len(chars) - 1)] = rng.choice(MESSY)
        return "".join(chars)
    if kind == 2:  # digits, maybe with an Excel float tail
        return _number(rng, 10) + rng.choice(["", "", ".0", ".00", ".5", "."])
    if kind == 3:  # separated, separators maybe mixed, maybe a time
        sep = rng.choice("/-.")
        second = sep if rng.random() < 0.8 else rng.choice("/-. ")
        text = f"{_number(rng, 5)}{sep}{_number(rng, 3)}{second}{_number(rng, 3)}"
        return text + rng.choice(["", "", " 00:00", "T1:02:03.4", " 25:99:99"])
    if kind == 4:  # Chinese, maybe with white space between the parts
        prefix = rng.choice(["", "民國", "中華民國", "民國 ", "民國\u3000", "民 國"])
        year, month, day = _number(rng, 4), _number(rng, 3), _number(rng, 3)
        a, b, c, d, e = (_gap(rng) for _ in range(5))
        return f"{prefix}{year}{a}年{b}{month}{c}月{d}{day}{e}日"
    return "".join(rng.choice(MESSY) for _ in range(rng.randint(0, 12)))


def generated_cases(
    count: int, seed: int = 20250521
) -> list[tuple[str, str, date | None, date | None]]:
    """(id, text, earliest, latest): fixed edge cases, then seeded random messy strings."""
    rng = random.Random(seed)
    texts = [c for w in WHITE_SPACE for c in (w, f"{w}1140521{w}", f"1140521{w}")]
    texts += [messy_string(rng) for _ in range(count)]
    cases = []
    for i, text in enumerate(texts):
        earliest = latest = None
        if rng.random() < 0.3:
            earliest = rng.choice([None, date(1912, 1, 1), date(2010, 1, 1), _random_date(rng)])
            latest = rng.choice([None, date(2025, 12, 31), _random_date(rng)])
        cases.append((f"generated-{i:05d}", text, earliest, latest))
    return cases


def _relation(conn: psycopg.Connection) -> str:
    (schema,) = conn.execute(
        "select table_schema from information_schema.tables where table_name = 'taiwan_date_vectors'"
    ).fetchone()
    return f'"{schema}".taiwan_date_vectors'


def _disagreements(
    rows, cases: dict[str, tuple[str | None, date | None, date | None]]
) -> list[str]:
    out = []
    for id_, input_text, earliest, latest, sql_date, sql_reason in rows:
        text, want_earliest, want_latest = cases.pop(id_)
        python = td.parse(text, want_earliest, want_latest)
        if (input_text, earliest, latest) != (text, want_earliest, want_latest):
            out.append(f"{id_}: the SQL read {input_text!r} {earliest} {latest}, not {text!r}")
        elif (sql_date, sql_reason) != (python.value, python.reason):
            out.append(
                f"{id_}: {text!r} [{earliest}, {latest}]: SQL {sql_date} {sql_reason},"
                f" Python {python.value} {python.reason}"
            )
    out += [f"{id_}: no SQL row" for id_ in cases]
    return out


def test_sql_and_python_agree(seeded: DbtDatabase):
    result = seeded.dbt("compile", "--select", "taiwan_date_check")
    assert result.returncode == 0, result.stdout + result.stderr
    sql = (seeded.target / "compiled/luckygas/analyses/taiwan_date_check.sql").read_text("utf-8")
    vectors = {v.id: (v.input, v.earliest, v.latest) for v in VECTORS}
    generated = generated_cases(4000)
    with psycopg.connect(seeded.conninfo) as conn:
        disagreements = _disagreements(conn.execute(sql).fetchall(), dict(vectors))
        # the generated strings, added to the seed table in a transaction rolled back after
        with conn.transaction(force_rollback=True):
            with conn.cursor().copy(
                f"copy {_relation(conn)} (id, input, earliest, latest) from stdin"
            ) as copy:
                for id_, text, earliest, latest in generated:
                    copy.write_row((id_, encode_input(text), earliest, latest))
            rows = conn.execute(sql).fetchall()
        cases = {id_: (text, earliest, latest) for id_, text, earliest, latest in generated}
        disagreements += _disagreements([r for r in rows if r[0] in cases], cases)
    for line in disagreements:
        print(line)
    assert len(rows) == len(vectors) + len(generated)
    assert not disagreements, f"{len(disagreements)} disagreements: {disagreements[:20]}"
