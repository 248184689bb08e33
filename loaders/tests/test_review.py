"""`luckygas review`: Mary's decisions on exceptions, kept across rebuilds, on the small sample.

The tests run in file order on one database of their own (module fixture: the small sample
loaded and built): accept one exception of a warn rule, then every exception of another;
mark one expected fixed and withdraw it; rebuild with `--full-refresh` (the reviews still
apply); change the source row behind an accepted exception in raw and build again (open
again); refusals that write nothing; and last a `luckygas migrate` of the same files, after
which the reviews still apply. The rules and rows are read from validation.latest_exceptions,
never hard-coded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from loaders.cli import main
from loaders.sample.generate import generate
from loaders.tests.dbt_runner import dbt_env, environ, fresh_database, run_dbt

SHORT_NAME = "客戶簡稱"  # a cell both the client master and the history have
# The small sample's delivery success rate (99.58 %) is below the plan's 99.9 % on purpose
# (its defects are dense): a migration of it accepts 99.5 %, as in test_migrate.py.
ACCEPT = ["--success-target", "delivery=0.995"]


@dataclass(frozen=True)
class Db:
    conninfo: str
    env: dict[str, str]  # PG* and dbt's paths: for the CLI and dbt
    sample: Path
    tmp: Path


@dataclass(frozen=True)
class Picked:
    """The rules and the row the tests review (found in the first build)."""

    one: str  # a warn rule of the customers with at least two exceptions: one row accepted
    row: tuple[str, str, int]  # that row: a source row with a 客戶簡稱 cell
    other: tuple[str, str, int]  # another row of the rule: expected fixed, then withdrawn
    every: str  # another warn rule: every exception accepted


def rows(conninfo: str, query: str, params=()) -> list[tuple]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def cli(db: Db, *args: str) -> int:
    with environ(db.env):
        return main(["review", *args])


def selector(key: tuple[str, str, int]) -> list[str]:
    return ["--file", key[0], "--sheet", key[1], "--row", str(key[2])]


def exception_reviews(conninfo: str, code: str) -> dict[tuple[str, str, int], tuple]:
    """{(file, sheet, row): (decision, note, reviewer, reviewed_at, fingerprint, run_id)}."""
    return {
        (f, s, r): rest
        for f, s, r, *rest in rows(
            conninfo,
            "select source_file, source_sheet, source_row, review_decision, review_note,"
            " reviewer, reviewed_at, fingerprint, run_id from validation.latest_exceptions"
            " where code = %s",
            (code,),
        )
    }


def review_status(conninfo: str) -> dict[str, str | None]:
    return dict(rows(conninfo, "select rule_id, review_status from validation.rule_status"))


def reviews_written(conninfo: str) -> int:
    return rows(conninfo, "select count(*) from validation.reviews")[0][0]


def raw_table(conninfo: str, file: str, sheet: str) -> str:
    return rows(
        conninfo,
        "select table_name from raw._sources where source_file = %s and sheet = %s"
        " and outcome <> 'failed' order by load_id desc limit 1",
        (file, sheet),
    )[0][0]


@pytest.fixture(scope="module")
def db(pg, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("review")
    sample = tmp / "sample"
    generate(sample, scale="small", seed=9)
    with fresh_database(pg, "rv") as (conninfo, env):
        run_env = dbt_env(env, tmp)
        with environ(run_env):
            assert main(["load", str(sample)]) == 0
        build = run_dbt(["build"], run_env)
        assert build.returncode == 0, build.stdout[-3000:]
        yield Db(conninfo, run_env, sample, tmp)


@pytest.fixture(scope="module")
def picked(db) -> Picked:
    warn_counts = """
        select e.code, count(*), bool_and(e.source_row is not null), min(e.entity)
        from validation.latest_exceptions as e
        inner join validation.rule_status as s on s.rule_id = e.code
        where e.kind = 'rule' and s.status = 'warn'
        group by e.code
        order by count(*) desc, e.code
    """
    warn = rows(db.conninfo, warn_counts)
    with_short_name = {
        r[0]
        for r in rows(
            db.conninfo, "select table_name from raw._columns where column_name = %s", (SHORT_NAME,)
        )
    }
    for code, n, _, entity in warn:
        if entity != "customer" or n < 2:
            continue
        keys = sorted(k for k in exception_reviews(db.conninfo, code) if k[2] is not None)
        usable = [k for k in keys if raw_table(db.conninfo, k[0], k[1]) in with_short_name]
        if usable:
            one, row = code, usable[0]
            break
    else:
        pytest.fail(f"no warn rule of the customers with two exceptions in the sample: {warn}")
    other = next(k for k in keys if k != row)
    # every exception of the other rule names its source row (else it can never be accepted);
    # a delivery rule if there is one: the incremental marts are rebuilt by --full-refresh
    candidates = [(entity != "delivery", n, code) for code, n, named, entity in warn if named]
    every = min(c for c in candidates if c[2] != one)[2]
    return Picked(one, row, other, every)


def test_accept_one_exception_marks_it_and_only_it(db, picked, capsys):
    capsys.readouterr()
    args = ["accept", picked.one, *selector(picked.row), "--note", "客戶確認", "--by", "Mary"]
    assert cli(db, *args) == 0
    said = capsys.readouterr().out
    assert f"1 exception accepted for {picked.one} by Mary" in said
    marked = exception_reviews(db.conninfo, picked.one)
    decision, note, reviewer, reviewed_at, *_ = marked.pop(picked.row)
    assert (decision, note, reviewer) == ("accepted", "客戶確認", "Mary") and reviewed_at
    assert {m[0] for m in marked.values()} == {None}  # the rule's other rows are still open
    assert review_status(db.conninfo)[picked.one] is None  # not every row is accepted


def test_accept_all_marks_the_warn_rule_accepted(db, picked, capsys):
    capsys.readouterr()
    assert cli(db, "accept", picked.every, "--all", "--note", "known, kept", "--by", "Mary") == 0
    n = len(exception_reviews(db.conninfo, picked.every))
    assert f"{n} exceptions accepted for {picked.every} by Mary" in capsys.readouterr().out
    assert {m[0] for m in exception_reviews(db.conninfo, picked.every).values()} == {"accepted"}
    status = review_status(db.conninfo)
    assert status[picked.every] == "accepted"
    assert {rule for rule, s in status.items() if s is not None} == {picked.every}


def test_expect_fixed_then_withdraw(db, picked, capsys):
    assert cli(db, "expect-fixed", picked.one, *selector(picked.other), "--by", "Mary") == 0
    assert "1 exception marked expected fixed" in capsys.readouterr().out
    decision, note, *_ = exception_reviews(db.conninfo, picked.one)[picked.other]
    assert (decision, note) == ("expected_fixed", None)
    assert cli(db, "withdraw", picked.one, *selector(picked.other), "--by", "Mary") == 0
    assert "1 review withdrawn" in capsys.readouterr().out
    assert exception_reviews(db.conninfo, picked.one)[picked.other][0] is None
    assert cli(db, "list", picked.one) == 0
    listed = capsys.readouterr().out
    assert "1 current reviews: 1 still matching, 0 open again, 0 exception gone" in listed


def test_reviews_survive_a_full_refresh(db, picked):
    before = exception_reviews(db.conninfo, picked.one)[picked.row]
    build = run_dbt(["build", "--full-refresh"], db.env)
    assert build.returncode == 0, build.stdout[-3000:]
    after = exception_reviews(db.conninfo, picked.one)[picked.row]
    assert after[5] != before[5]  # a new run's exception
    assert after[:5] == before[:5]  # same fingerprint, so the same decision applies
    assert {m[0] for m in exception_reviews(db.conninfo, picked.every).values()} == {"accepted"}
    assert review_status(db.conninfo)[picked.every] == "accepted"


def test_a_changed_source_row_is_open_again(db, picked, capsys):
    file, sheet, row = picked.row
    reviewed = exception_reviews(db.conninfo, picked.one)[picked.row][4]
    table = raw_table(db.conninfo, file, sheet)
    with psycopg.connect(db.conninfo, autocommit=True) as conn:
        changed = conn.execute(
            psycopg.sql.SQL(
                "update {} set {} = coalesce({}, '') || '（新）' where _source_row = %s"
            ).format(
                psycopg.sql.Identifier("raw", table),
                psycopg.sql.Identifier(SHORT_NAME),
                psycopg.sql.Identifier(SHORT_NAME),
            ),
            (row,),
        ).rowcount
    assert changed == 1
    build = run_dbt(["build"], db.env)
    assert build.returncode == 0, build.stdout[-3000:]
    now = exception_reviews(db.conninfo, picked.one)
    assert picked.row in now, "the exception should still be there, on the changed row"
    decision, note, reviewer, reviewed_at, fingerprint, _ = now[picked.row]
    assert fingerprint != reviewed, "the changed cell should change the record's fingerprint"
    assert (decision, note, reviewer, reviewed_at) == (None, None, None, None)
    assert review_status(db.conninfo)[picked.every] == "accepted"  # the other rule unchanged

    capsys.readouterr()
    assert cli(db, "list") == 0
    listed = capsys.readouterr().out
    [line] = [x for x in listed.splitlines() if picked.one in x and f" {row} " in x]
    assert "accepted" in line and "open again" in line
    n = len(exception_reviews(db.conninfo, picked.every))
    assert f"{n + 1} current reviews: {n} still matching, 1 open again, 0 exception gone" in listed


def test_a_review_whose_exception_is_gone_says_so(db, picked, capsys):
    file, sheet, _ = picked.row
    fixed = (file, sheet, 999_999)  # a row since fixed: the review stays, its exception is gone
    with psycopg.connect(db.conninfo, autocommit=True) as conn:
        conn.execute(
            "insert into validation.reviews (code, source_file, source_sheet, source_row,"
            " fingerprint, decision, note, reviewer) values (%s, %s, %s, %s, 'x', 'accepted',"
            " 'fixed since', 'Mary')",
            (picked.one, *fixed),
        )
    try:
        capsys.readouterr()
        assert cli(db, "list", picked.one) == 0
        listed = capsys.readouterr().out
        [line] = [x for x in listed.splitlines() if " 999999 " in x]
        assert "exception gone" in line
        assert "2 current reviews: 0 still matching, 1 open again, 1 exception gone" in listed
    finally:
        with psycopg.connect(db.conninfo, autocommit=True) as conn:
            conn.execute("delete from validation.reviews where source_row = 999999")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["accept", "{one}", "--file", "{file}", "--sheet", "{sheet}", "--row", "999999",
          "--note", "n", "--by", "Mary"],
         ["no current exception of {one}", "row 999999", "{file}"]),
        (["accept", "Z99", "--all", "--note", "n", "--by", "Mary"],
         ["Z99", "no current exceptions"]),
        (["accept", "{one}", "--file", "{file}", "--sheet", "{sheet}", "--row", "{row}",
          "--note", "n"], ["--by"]),
        (["accept", "{one}", "--file", "{file}", "--sheet", "{sheet}", "--row", "{row}",
          "--by", "Mary"], ["--note"]),
        (["accept", "{one}", "--all", "--row", "{row}", "--note", "n", "--by", "Mary"], ["--all"]),
        (["expect-fixed", "{one}", "--file", "{file}", "--by", "Mary"], ["--row"]),
        (["withdraw", "{one}", "--file", "{file}", "--sheet", "{sheet}", "--row", "999999",
          "--by", "Mary"], ["no current review of {one}"]),
    ],
    ids=["no-such-row", "no-such-code", "no-by", "no-note", "all-and-row", "half-a-row",
         "withdraw-nothing"],
)  # fmt: skip
def test_refusals_are_one_line_and_write_nothing(db, picked, capsys, args, says):
    file, sheet, row = picked.row
    fill = {"one": picked.one, "file": file, "sheet": sheet, "row": row}
    before = reviews_written(db.conninfo)
    capsys.readouterr()
    assert cli(db, *(a.format(**fill) for a in args)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("luckygas: "), err
    for text in says:
        assert text.format(**fill) in err[0]
    assert reviews_written(db.conninfo) == before


def test_review_on_an_unbuilt_database_is_one_clear_error(pg, capsys):
    with fresh_database(pg, "rv_empty") as (_, env), environ(env):
        assert main(["review", "list"]) == 2
        assert main(["review", "accept", "C16", "--all", "--note", "n", "--by", "M"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("dbt build" in line for line in err), err


def test_reviews_survive_luckygas_migrate(db, picked):
    """validation is none of the schemas a migration backs up, rebuilds in shadow and swaps:
    after `luckygas migrate` of the same files the reviews still apply."""
    before = reviews_written(db.conninfo)
    runs = {m[5] for m in exception_reviews(db.conninfo, picked.every).values()}
    with environ(db.env):
        code = main(
            ["migrate", "--backup-dir", str(db.tmp / "backups"), "--verify-backup", "list",
             *ACCEPT, str(db.sample)]
        )  # fmt: skip
    assert code == 0
    assert rows(db.conninfo, "select outcome from validation.migrations")[-1] == ("succeeded",)
    assert reviews_written(db.conninfo) == before
    migrated = exception_reviews(db.conninfo, picked.every).values()
    assert {m[5] for m in migrated}.isdisjoint(runs)  # the exceptions of the migration's build
    assert {m[0] for m in migrated} == {"accepted"}
    assert review_status(db.conninfo)[picked.every] == "accepted"
    # the row changed in raw stays changed (its file did not change), so still open again
    assert exception_reviews(db.conninfo, picked.one)[picked.row][0] is None
