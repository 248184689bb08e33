"""Mary's reviews of exceptions: accepted, expected fixed, or withdrawn, kept across rebuilds.

`luckygas review accept C16 --file F --sheet S --row N --note TEXT --by NAME` (or `--all` for
every current exception of C16) appends one row per source row to `validation.reviews`, with
the exception's fingerprint as it is now (`validation.latest_exceptions`, column
`fingerprint`: an md5 of the row as the pipeline read it, without load ids or load times).
The table lives in schema validation, which no `dbt build`, `--full-refresh`, `luckygas
migrate` or `rollback` drops, so a review outlives every rebuild. It is append-only: the
newest row of a (code, review key) is its current decision, and `withdrawn` cancels it: a rule's
exception is keyed by its record (customer or delivery), a quarantined row by its source row.

The dbt hook (macros/validation/record_validation.sql) reads the reviews back:
`latest_exceptions` shows the current decision beside each exception while the fingerprint
is unchanged, and NULL once the source row changes (the exception is open again);
`rule_status.review_status` is `accepted` for a warn rule whose every exception is accepted.

Each command reads the fingerprints and writes its rows in one transaction, and a selector
that matches nothing is refused before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import psycopg

from loaders.errors import UserError

Decision = Literal["accepted", "expected_fixed", "withdrawn"]
State = Literal["still matching", "open again", "exception gone"]

# What `review list` says of a current review, beside its decision.
STILL_MATCHING: State = "still matching"  # the exception is there, its source row unchanged
OPEN_AGAIN: State = "open again"  # the exception is there, but its source row has changed
EXCEPTION_GONE: State = "exception gone"  # no current exception at that row (fixed, or gone)

# The newest review of each (code, review key), whatever its decision: the hook's view. A
# rule's exception is keyed by its record (the customer or delivery, wherever its row is
# now), a quarantined row by its source row.
_CURRENT_REVIEWS = """
    select
        review_id, code, source_file, source_sheet, source_row, fingerprint, decision, note,
        reviewer, reviewed_at, current_key
    from validation.current_reviews
"""


@dataclass(frozen=True)
class Selector:
    """Which exceptions of a code: one source row (file, sheet, row), or all of them."""

    file: str | None = None
    sheet: str | None = None
    row: int | None = None
    all: bool = False

    def check(self) -> None:
        """UserError unless exactly one of: --all; --file, --sheet and --row together."""
        given = [x is not None for x in (self.file, self.sheet, self.row)]
        if self.all and any(given):
            raise UserError("give either --all or --file, --sheet and --row, not both")
        if not self.all and not all(given):
            raise UserError("give --file, --sheet and --row of one source row, or --all")

    def describe(self, code: str) -> str:
        if self.all:
            return f"{code} (--all)"
        return f"{code} at {where(self.file, self.sheet, self.row)}"


@dataclass(frozen=True)
class Outcome:
    """What a review command wrote."""

    code: str
    decision: Decision
    reviewer: str
    rows: list[tuple[str, str, int]]  # the (file, sheet, row) of each review written
    without_source_row: int = 0  # exceptions of the code that name no source row (--all)


@dataclass(frozen=True)
class Review:
    """A current review (the newest of its row, not withdrawn) and how it stands now."""

    code: str
    source_file: str
    source_sheet: str
    source_row: int
    decision: Decision
    note: str | None
    reviewer: str
    reviewed_at: datetime
    state: State


def where(file: str | None, sheet: str | None, row: int | None) -> str:
    """A source row as one phrase; the sheet quoted (a sheet name may end in a space)."""
    return f"{file}, sheet '{sheet}', row {row}"


def accept(
    conn: psycopg.Connection, code: str, selector: Selector, *, note: str | None, reviewer: str
) -> Outcome:
    """Mark the selected current exceptions of `code` accepted; a note and a name required."""
    if not (note or "").strip():
        raise UserError(f"accepting {selector.describe(code)} needs --note: why it is accepted")
    return _review(conn, code, selector, "accepted", note=note, reviewer=reviewer)


def expect_fixed(
    conn: psycopg.Connection,
    code: str,
    selector: Selector,
    *,
    note: str | None = None,
    reviewer: str,
) -> Outcome:
    """Mark the selected current exceptions of `code` as expected to be fixed at the source."""
    return _review(conn, code, selector, "expected_fixed", note=note, reviewer=reviewer)


def withdraw(
    conn: psycopg.Connection,
    code: str,
    selector: Selector,
    *,
    note: str | None = None,
    reviewer: str,
) -> Outcome:
    """Cancel the current reviews of `code` the selector names (whatever their exception)."""
    return _review(conn, code, selector, "withdrawn", note=note, reviewer=reviewer)


def current(conn: psycopg.Connection, code: str | None = None) -> list[Review]:
    """Every current review (of `code`, if given) and whether it still matches its exception."""
    _check_built(conn)
    rows = conn.execute(
        f"""
        with current_review as ({_CURRENT_REVIEWS}),
        exception as (
            select code, review_key, fingerprint
            from validation.latest_exceptions
        )
        select
            r.code, r.source_file, r.source_sheet, r.source_row, r.decision, r.note,
            r.reviewer, r.reviewed_at,
            case
                when exists (
                    select from exception as e
                    where (e.code, e.review_key) = (r.code, r.current_key)
                        and e.fingerprint = r.fingerprint
                ) then %(matching)s
                when exists (
                    select from exception as e
                    where (e.code, e.review_key) = (r.code, r.current_key)
                ) then %(open)s
                else %(gone)s
            end
        from current_review as r
        where r.decision <> 'withdrawn' and (%(code)s::text is null or r.code = %(code)s)
        order by r.code, r.source_file, r.source_sheet, r.source_row
        """,
        {"code": code, "matching": STILL_MATCHING, "open": OPEN_AGAIN, "gone": EXCEPTION_GONE},
    ).fetchall()
    return [Review(*row) for row in rows]


# -- internals ---------------------------------------------------------------------------


def _exists(conn: psycopg.Connection, relation: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (relation,)).fetchone()[0]


def _check_built(conn: psycopg.Connection) -> None:
    """UserError unless the validation schema has the reviews and the fingerprints."""
    if not _exists(conn, "validation.latest_exceptions"):
        raise UserError("no validation results in this database: run `dbt build` first")
    if not _exists(conn, "validation.reviews"):
        raise UserError(
            "validation.reviews does not exist yet: run `dbt build` with this version of the"
            " project first (its on-run-end hook creates it)"
        )
    columns = {
        r[0]
        for r in conn.execute(
            "select attname from pg_attribute"
            " where attrelid = 'validation.latest_exceptions'::regclass"
            " and attnum > 0 and not attisdropped"
        )
    }
    if "fingerprint" not in columns:
        raise UserError(
            "validation.latest_exceptions has no fingerprint column: run `dbt build` with this"
            " version of the project first (its on-run-end hook adds it)"
        )


def _review(
    conn: psycopg.Connection,
    code: str,
    selector: Selector,
    decision: Decision,
    *,
    note: str | None,
    reviewer: str,
) -> Outcome:
    selector.check()
    reviewer = (reviewer or "").strip()
    if not reviewer:
        raise UserError(f"reviewing {selector.describe(code)} needs --by NAME: who decides")
    note = note.strip() if note and note.strip() else None
    _check_built(conn)
    with conn.transaction():
        if decision == "withdrawn":
            targets, without = _reviews_to_withdraw(conn, code, selector), 0
        else:
            targets, without = _exceptions(conn, code, selector)
        with conn.cursor() as cur:
            cur.executemany(
                "insert into validation.reviews (code, source_file, source_sheet, source_row,"
                " review_key, fingerprint, decision, note, reviewer)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [(code, f, s, r, k, fp, decision, note, reviewer) for f, s, r, k, fp in targets],
            )
    return Outcome(code, decision, reviewer, [(f, s, r) for f, s, r, _, _ in targets], without)


def _exceptions(
    conn: psycopg.Connection, code: str, selector: Selector
) -> tuple[list[tuple[str, str, int, str, str]], int]:
    """(file, sheet, row, review key, fingerprint) of each selected current exception, and
    how many exceptions of the code name no source row (they cannot be reviewed); UserError
    if none."""
    found = conn.execute(
        """
        select source_file, source_sheet, source_row, review_key,
            array_agg(distinct fingerprint) filter (where fingerprint is not null)
        from validation.latest_exceptions
        where code = %(code)s
            and source_file is not null and source_sheet is not null and source_row is not null
            and (%(all)s or (source_file, source_sheet, source_row)
                = (%(file)s::text, %(sheet)s::text, %(row)s::integer))
        group by source_file, source_sheet, source_row, review_key
        order by source_file, source_sheet, source_row
        """,
        {"code": code, "all": selector.all, **_key(selector)},
    ).fetchall()
    (total, without) = conn.execute(
        "select count(*), count(*) filter (where source_file is null or source_sheet is null"
        " or source_row is null) from validation.latest_exceptions where code = %s",
        (code,),
    ).fetchone()
    if not found:
        raise UserError(_nothing_matches(conn, code, selector, total, without))
    targets = []
    for file, sheet, row, key, fingerprints in found:
        if not fingerprints:
            raise UserError(
                f"the exception of {code} at {where(file, sheet, row)} has no fingerprint:"
                " run `dbt build` with this version of the project first"
            )
        if len(fingerprints) > 1:
            raise UserError(
                f"{code} at {where(file, sheet, row)} is {len(fingerprints)} exceptions with"
                " different records, and a review holds one fingerprint per source row: nothing"
                " written"
            )
        targets.append((file, sheet, row, key, fingerprints[0]))
    return targets, (without if selector.all else 0)


def _reviews_to_withdraw(
    conn: psycopg.Connection, code: str, selector: Selector
) -> list[tuple[str, str, int, str, str]]:
    """(file, sheet, row, review key, fingerprint) of each selected current review;
    UserError if none."""
    found = conn.execute(
        f"""
        select source_file, source_sheet, source_row, current_key, fingerprint
        from ({_CURRENT_REVIEWS}) as r
        where decision <> 'withdrawn' and code = %(code)s
            and (%(all)s or (source_file, source_sheet, source_row)
                = (%(file)s::text, %(sheet)s::text, %(row)s::integer))
        order by source_file, source_sheet, source_row
        """,
        {"code": code, "all": selector.all, **_key(selector)},
    ).fetchall()
    if not found:
        raise UserError(
            f"no current review of {selector.describe(code)} to withdraw: nothing written"
        )
    return found


def _key(selector: Selector) -> dict[str, object]:
    return {"file": selector.file, "sheet": selector.sheet, "row": selector.row}


def _nothing_matches(
    conn: psycopg.Connection, code: str, selector: Selector, total: int, without: int
) -> str:
    """One line: what was asked, and what there is instead."""
    asked = f"no current exception of {selector.describe(code)} in validation.latest_exceptions"
    if total == 0:
        codes = [
            r[0]
            for r in conn.execute(
                "select distinct code from validation.latest_exceptions order by 1"
            )
        ]
        listed = ", ".join(codes) if codes else "none"
        return (
            f"{asked}: {code} has no current exceptions (codes that have: {listed});"
            " nothing written"
        )
    if without == total:
        return (
            f"{asked}: its {total} exceptions name no source row, so none can be reviewed;"
            " nothing written"
        )
    return (
        f"{asked} ({code} has {total} current exceptions; `luckygas report` lists them);"
        " nothing written"
    )
