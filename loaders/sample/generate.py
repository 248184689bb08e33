"""`luckygas sample`: write the exports and expected.json, deterministically.

The exports are the client workbook, the delivery history workbook, the app's SQLite file,
the residential plan and an Excel lock file; expected.json holds what the pipeline must make
of every row (`truth.py`), the delivery rows' part from `delivery_truth.py`.

Same seed and scale, same bytes: every random choice comes from a seeded stream per part,
workbooks carry fixed timestamps, and nothing depends on the wall clock or on set order.
"""

from __future__ import annotations

import gc
import multiprocessing
import time
from pathlib import Path

from rich.console import Console

from loaders.errors import UserError
from loaders.hashing import sha256_of
from loaders.sample import profile as P
from loaders.sample.app_db import TEST_CLIENTS, assign_app_ids, write_app_db
from loaders.sample.client_workbook import write_client_workbook
from loaders.sample.clients import generate_clients
from loaders.sample.deliveries import plan_deliveries
from loaders.sample.delivery_rows import DATE_MAX, DATE_MIN, history_headers
from loaders.sample.delivery_truth import delivery_defects, expected_outcomes, history_customers
from loaders.sample.history_workbook import write_history_workbook
from loaders.sample.increment import generate_increment
from loaders.sample.model import Client, rng_for, scale_count
from loaders.sample.residential_plan import PLAN_FILE, write_residential_plan
from loaders.sample.truth import (
    FLAGGED,
    GENERATOR_VERSION,
    LOADED,
    MERGED,
    QUARANTINED,
    RAW_ONLY,
    REASONS,
    SCHEMA_VERSION,
    Instance,
    Truth,
    dump_expected,
)


def _letter(col: int) -> str:
    s = ""
    while col:
        col, r = divmod(col - 1, 26)
        s = chr(65 + r) + s
    return s


def _lock_file(path: Path) -> None:
    """An Excel owner file (~$name.xlsx): 165 bytes naming the user who has the file open."""
    user = "luckygas"
    data = bytes([len(user)]) + user.encode("ascii")
    data = data.ljust(54, b" ") + bytes([len(user), 0]) + user.encode("utf-16-le")
    path.write_bytes(data.ljust(165, b"\x00"))


def _closed_days(value: object) -> dict | None:
    """What 公休日 means, for the values that are not a single weekday."""
    if isinstance(value, float) and not value.is_integer():
        a, b = f"{value:g}".split(".")
        return {"weekdays": sorted({int(a), int(b)}), "national_holidays": False, "unparsed": None}
    if value == "Red":
        return {"weekdays": [], "national_holidays": True, "unparsed": None}
    if isinstance(value, str):
        return {"weekdays": [], "national_holidays": False, "unparsed": value}
    return None


def _client_defects(truth: Truth, clients: list[Client]) -> None:
    f, s = P.CLIENT_FILE, P.MASTER_SHEET
    for c in clients:
        cells = c.cells
        for col in list(P.FLAG_COUNTS) + list(P.EQUIPMENT_COUNTS):
            v = cells.get(col)
            if isinstance(v, str) and v not in P.FLAG_WORDS:
                truth.add(
                    "flag_stray_word",
                    f,
                    s,
                    col,
                    FLAGGED,
                    Instance(c.row, v, {"flag": None, "kept": v}),
                    flag="stray_flag_word",
                )
            elif v == "X":
                truth.add(
                    "flag_explicit_no", f, s, col, LOADED, Instance(c.row, v, {"flag": False})
                )
        meaning = _closed_days(cells.get("公休日"))
        if meaning:
            truth.add(
                "closed_day_mixed",
                f,
                s,
                "公休日",
                LOADED,
                Instance(c.row, cells["公休日"], meaning),
            )
        for col, value, rule in P.METRIC_OUTLIERS:
            if cells.get(col) == value:
                truth.add(
                    "business_rule_outlier",
                    f,
                    s,
                    col,
                    FLAGGED,
                    Instance(c.row, value, {"rule": rule}),
                    flag=rule,
                )
        if "台東" in c.address:
            truth.add(
                "tai_variant",
                f,
                s,
                "地址",
                LOADED,
                Instance(
                    c.row,
                    c.address,
                    {"client_code": c.code_text, "normalised": c.address.replace("台", "臺")},
                ),
            )
        for col, text in (("電子發票抬頭", c.invoice_title), ("客戶簡稱", c.short_name)):
            if text != text.strip():
                truth.add(
                    "name_whitespace",
                    f,
                    s,
                    col,
                    LOADED,
                    Instance(c.row, text, {"trimmed": text.strip()}),
                )


def generate(
    out: Path,
    scale: str = "small",
    seed: int = 20250521,
    console: Console | None = None,
    increment: bool = False,
) -> dict:
    """Write the sample into `out`; returns the expected.json document.

    With `increment`, write only the daily-load increment of that sample (its base files are
    planned in memory, not written) and expected-increment.json: see `increment.py`.
    """
    if scale not in P.SCALES:
        raise UserError(f"unknown scale {scale!r}: use one of {', '.join(P.SCALES)}")
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output directory {out}: {exc.strerror}") from exc
    # Millions of small objects and no reference cycles worth collecting: the cyclic garbage
    # collector only rescans them (it doubled the planning time at full scale).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        run = generate_increment if increment else _generate
        return run(out, scale, seed, console or Console(stderr=True))
    finally:
        if was_enabled:
            gc.enable()


def _generate(out: Path, scale: str, seed: int, console: Console) -> dict:
    n_clients, row_factor = P.SCALES[scale]
    started = time.perf_counter()

    def step(msg: str) -> None:
        console.print(f"[dim]{time.perf_counter() - started:6.1f}s[/] {msg}")

    truth = Truth()
    clients = generate_clients(seed, n_clients)
    test_ids = assign_app_ids(seed, clients)
    step(f"{len(clients):,} clients")
    plan = plan_deliveries(seed, clients, row_factor, test_ids)
    step(
        f"{plan.history_rows:,} history rows ({len(plan.outsiders):,} clients outside the"
        f" master), {plan.app_rows:,} app deliveries"
    )

    # App clients that differ from the master only in spelling: spaces in codes, 台 for 臺.
    rng = rng_for(seed, "app-variants")
    factor = n_clients / P.FULL_CLIENTS
    picks = rng.sample(clients, scale_count(12, factor, 2) + scale_count(40, factor, 2))
    n_ws = scale_count(12, factor, 2)
    code_variants = {
        c.app_id: rng.choice([f"{c.code} ", f" {c.code}", f"{c.code}  "]) for c in picks[:n_ws]
    }
    address_variants = {
        c.app_id: c.address.replace("臺", "台") for c in picks[n_ws:] if "臺" in c.address
    }

    client_path = out / P.CLIENT_FILE
    facts, errors = write_client_workbook(client_path, seed, clients)
    step(f"wrote {P.CLIENT_FILE}")
    # The history workbook is the slow part: a forked process writes it while this one writes
    # the SQLite file and works out expected.json (same bytes either way).
    history_path = out / P.HISTORY_FILE
    writer = multiprocessing.get_context("fork").Process(
        target=write_history_workbook, args=(history_path, plan.history), name="history-writer"
    )
    writer.start()
    app_path = out / P.APP_FILE
    app_counts = write_app_db(
        app_path, seed, clients, test_ids, plan.app, code_variants, address_variants
    )
    step(f"wrote {P.APP_FILE}")
    plan_path = out / PLAN_FILE
    plan_sheets = write_residential_plan(plan_path, seed)
    step(f"wrote {PLAN_FILE}")
    _lock_file(out / P.LOCK_FILE)

    # Sources: every sheet and table, with what a lossless raw load must hold.
    for fact in facts:
        data_rows = fact.last_row - (fact.header_row or 0)
        truth.sources.append(
            {
                "file": P.CLIENT_FILE, "sheet": fact.name, "kind": "sheet", "layout": fact.layout,
                "header_row": fact.header_row, "last_row": fact.last_row, "data_rows": data_rows,
                "columns": fact.last_column, "headers": fact.headers,
                **catalogue(CLIENT_SHEET_LAYOUTS, fact.name, data_rows),
            }
        )  # fmt: skip
    for name, rows in plan.history.items():
        headers = history_headers(name)
        truth.sources.append(
            {
                "file": P.HISTORY_FILE, "sheet": name, "kind": "sheet", "layout": "table",
                "header_row": 1, "last_row": len(rows) + 1, "data_rows": len(rows),
                "columns": len(headers), "headers": headers,
                **catalogue({name: "history_daily"}, name, len(rows)),
            }
        )  # fmt: skip
    for table, (n, columns) in app_counts.items():
        truth.sources.append(
            {
                "file": P.APP_FILE, "sheet": table, "kind": "table", "layout": "table",
                "header_row": None, "last_row": n, "data_rows": n, "columns": len(columns),
                "headers": columns, **catalogue(APP_TABLE_LAYOUTS, table, n),
            }
        )  # fmt: skip
    for sheet in plan_sheets:
        truth.sources.append(
            {"file": PLAN_FILE, **sheet, **catalogue({}, sheet["sheet"], sheet["data_rows"], "residential_plan")}
        )  # fmt: skip
    for src in truth.sources:
        truth.set_headers(src["file"], src["sheet"], src["headers"])

    # Defects and outcomes.
    _client_defects(truth, clients)
    for sheet, cells in errors.items():
        for row, col, err in cells:
            truth.add(
                "excel_error",
                P.CLIENT_FILE,
                sheet,
                _letter(col),
                RAW_ONLY,
                Instance(row, err),
                column_index=col,
            )
    by_app_id = {c.app_id: c for c in clients}
    for app_id, code in code_variants.items():
        truth.add("app_code_whitespace", P.APP_FILE, "clients", "client_code", LOADED,
                  Instance(app_id, code, {"client_code": by_app_id[app_id].code_text}))  # fmt: skip
    for app_id, address in address_variants.items():
        c = by_app_id[app_id]
        truth.add("app_tai_variant", P.APP_FILE, "clients", "address", LOADED,
                  Instance(app_id, address, {"client_code": c.code_text, "normalised": c.address.replace("台", "臺")}))  # fmt: skip
    for c in clients:
        truth.add("app_client_same_client", P.APP_FILE, "clients", None, MERGED,
                  Instance(c.app_id, merged_into={"sheet": P.MASTER_SHEET, "row": c.row}, has_cell=False),
                  merged_into_file=P.CLIENT_FILE)  # fmt: skip
    for app_id, (code, _, _) in zip(test_ids, TEST_CLIENTS, strict=True):
        truth.add("app_test_client", P.APP_FILE, "clients", "client_code", QUARANTINED,
                  Instance(app_id, code), reason="test_client")  # fmt: skip

    recon = delivery_defects(truth, {P.HISTORY_FILE: plan.history}, plan.app)
    history_rows = [hr for rows in plan.history.values() for hr in rows]
    outside = history_customers(truth, history_rows, clients)
    outcomes = expected_outcomes(clients, history_rows, plan.app, recon, outside)
    truth.column_sums = _column_sums(plan)

    writer.join()
    if writer.exitcode != 0:
        raise RuntimeError(f"writing {history_path} failed (exit code {writer.exitcode})")
    step(f"wrote {P.HISTORY_FILE}")
    files = []
    for path in (client_path, history_path, app_path, plan_path, out / P.LOCK_FILE):
        files.append({"file": path.name, "bytes": path.stat().st_size, "sha256": sha256_of(path)})
    doc = {
        "schema_version": SCHEMA_VERSION,
        "generator": {"version": GENERATOR_VERSION, "scale": scale, "seed": seed},
        "date_bounds": {"earliest": DATE_MIN.isoformat(), "latest": DATE_MAX.isoformat()},
        "files": files,
        "sources": truth.sources,
        "outcomes": outcomes,
        "column_sums": truth.column_sums,
        "reasons": REASONS,
        "defect_kinds": truth.kind_counts(),
        "defects": [g.as_json() for g in truth.groups()],
    }
    (out / "expected.json").write_text(dump_expected(doc), encoding="utf-8")
    step(
        f"wrote expected.json ({len(doc['defects'])} defect groups, {sum(doc['defect_kinds'].values()):,} rows)"
    )
    return doc


def _column_sums(plan) -> list[dict]:
    """Sum of the numeric cells of each quantity column, per source: an independent check.
    The history's 5-column layout has no quantity column."""
    app_sums = {}
    for kg in P.APP_SIZES:
        app_sums[f"delivered_{kg}kg"] = sum(a.sizes.get(kg, 0) for a in plan.app)
    return [{"file": P.APP_FILE, "sheet": "deliveries", "sums": app_sums}]


# The catalogue layout (seeds/raw_layouts.csv) of each sheet and table the sample writes.
CLIENT_SHEET_LAYOUTS = {
    "客戶資料": "client_master", "人員安排範本": "staffing_template", "派遣單範本": "dispatch_template",
    "延後名單": "postponed_list", "待配送名單 ": "pending_list", "待配送整理": "pending_sorting",
    "上傳清單": "upload_template",
}  # fmt: skip
APP_TABLE_LAYOUTS = {
    "clients": "app_clients", "deliveries": "app_deliveries", "drivers": "app_drivers",
    "vehicles": "app_vehicles", "routes": "app_routes", "delivery_predictions": "app_predictions",
}  # fmt: skip
MIGRATED_LAYOUTS = {
    "client_master", "history_daily", "history_transaction", "app_clients", "app_deliveries"
}  # fmt: skip


def catalogue(
    layouts: dict[str, str], name: str, rows: int, default: str = "dispatch_sheet"
) -> dict:
    """The catalogue layout and role a source must get in validation.raw_tables."""
    layout = layouts.get(name, default)
    if rows == 0 and layout not in MIGRATED_LAYOUTS and layout != "app_predictions":
        layout = "empty"
    return {
        "catalogue_layout": layout,
        "role": "migrated" if layout in MIGRATED_LAYOUTS else "not_migrated",
    }
