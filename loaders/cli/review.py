"""`luckygas review`: Mary's reviews of exceptions (accept, expect-fixed, withdraw, list)."""

from __future__ import annotations

import argparse

from rich.markup import escape

from loaders.cli.output import out


def _cmd_review(args: argparse.Namespace) -> int:
    from rich.table import Table

    from loaders import connection, review

    with connection.connect(autocommit=True) as conn:
        if args.action == "list":
            reviews = review.current(conn, args.code)
        else:
            selector = review.Selector(args.file, args.sheet, args.row, args.all)
            write = {
                "accept": review.accept,
                "expect-fixed": review.expect_fixed,
                "withdraw": review.withdraw,
            }[args.action]
            done = write(conn, args.code, selector, note=args.note, reviewer=args.by)
    if args.action == "list":
        table = Table(title=f"current reviews{f' of {args.code}' if args.code else ''}")
        for col in ("code", "file", "sheet", "row", "decision", "note", "by", "when", "now"):
            table.add_column(col, justify="right" if col == "row" else "left")
        for r in reviews:
            table.add_row(
                escape(r.code), escape(r.source_file), escape(repr(r.source_sheet)),
                str(r.source_row), r.decision, escape(r.note or ""), escape(r.reviewer),
                f"{r.reviewed_at:%Y-%m-%d %H:%M}", r.state,
            )  # fmt: skip
        out.print(table)
        states = ", ".join(
            f"{sum(r.state == s for r in reviews)} {s}"
            for s in (review.STILL_MATCHING, review.OPEN_AGAIN, review.EXCEPTION_GONE)
        )
        out.print(f"{len(reviews)} current reviews: {states}")
        return 0
    n = len(done.rows)
    what = {"accepted": "accepted", "expected_fixed": "marked expected fixed"}
    noun = "exception" if n == 1 else "exceptions"
    line = (
        f"{n} {'review' if n == 1 else 'reviews'} withdrawn for {done.code}"
        if done.decision == "withdrawn"
        else f"{n} {noun} {what[done.decision]} for {done.code}"
    )
    line += f" by {done.reviewer}"
    if n == 1 and not args.all:
        line += f": {review.where(*done.rows[0])}"
    if done.without_source_row:
        line += (
            f"; {done.without_source_row} exceptions of {done.code} name no source row"
            " (not reviewed)"
        )
    out.print(escape(line), soft_wrap=True)
    return 0


def add_commands(sub) -> None:
    rev = sub.add_parser(
        "review",
        help="mark exceptions accepted or expected fixed (kept across rebuilds), or list reviews",
    )
    actions = rev.add_subparsers(dest="action", required=True)
    for name, text, note in (
        ("accept", "accept exceptions of a rule or quarantine reason (a note and --by required)",
         "why it is accepted (required)"),
        ("expect-fixed", "mark exceptions as expected to be fixed in the source file",
         "what is expected (optional)"),
        ("withdraw", "cancel the current reviews of those rows", "why (optional)"),
    ):  # fmt: skip
        act = actions.add_parser(name, help=text)
        act.add_argument("code", metavar="CODE", help="rule id (C16 ...) or quarantine reason")
        act.add_argument("--file", help="the source file, as validation.exceptions names it")
        act.add_argument("--sheet", help="the source sheet (or SQLite table)")
        act.add_argument("--row", type=int, help="the source row number")
        act.add_argument(
            "--all", action="store_true", help="every current exception of CODE instead of one row"
        )
        act.add_argument("--note", help=note)
        act.add_argument("--by", metavar="NAME", help="who decides (required)")
        act.set_defaults(func=_cmd_review)
    lst = actions.add_parser(
        "list", help="the current reviews, and whether each still matches its exception"
    )
    lst.add_argument("code", metavar="CODE", nargs="?", help="only this rule or reason")
    lst.set_defaults(func=_cmd_review)
