"""The legacy app's SQLite database (`luckygas.db`): clients, drivers, vehicles, deliveries,
routes and an empty delivery_predictions table, in the shape docs/raw-formats.md describes.

Booleans are 0/1 integers, timestamps ISO text, dates ISO; deliveries point at clients.id,
not at the client code. Six test clients sit among the real ones.
"""

from __future__ import annotations

import os
import random
import sqlite3
from datetime import date, datetime, time, timedelta
from pathlib import Path

from loaders.sample import profile as P
from loaders.sample.app_deliveries import APP_DRIVERS, APP_PLATES, IMPORT_NOTE
from loaders.sample.delivery_rows import AppDelivery
from loaders.sample.model import Client, rng_for

TEST_CLIENTS = [
    ("C6BD61152", "測試餐廳", "測試餐廳"),
    ("C7A0F3301", "測試小吃", "測試小吃店"),
    ("TEST001", "測試客戶A", "測試客戶A"),
    ("T-0002", "test client", "Test Client Ltd."),
    ("DEMO-01", "Demo 商店", "Demo 商店"),
    ("123", "測試用戶", "測試用戶"),
]

CLIENT_COLUMNS: list[tuple[str, str]] = [
    ("id", "INTEGER PRIMARY KEY"), ("client_code", "VARCHAR(20)"), ("invoice_title", "VARCHAR(200)"),
    ("short_name", "VARCHAR(100)"), ("address", "TEXT"), ("name", "VARCHAR(100)"),
    ("contact_person", "VARCHAR(50)"), ("tax_id", "VARCHAR(8)"), ("is_corporate", "BOOLEAN"),
    ("district", "VARCHAR(50)"), ("latitude", "FLOAT"), ("longitude", "FLOAT"),
    ("delivery_time_preference", "VARCHAR(50)"), ("notes", "TEXT"), ("is_active", "BOOLEAN"),
    ("cylinder_50kg", "INTEGER"), ("cylinder_20kg_business", "INTEGER"),
    ("cylinder_16kg_business", "INTEGER"), ("cylinder_20kg", "INTEGER"), ("cylinder_16kg", "INTEGER"),
    ("cylinder_10kg", "INTEGER"), ("cylinder_4kg", "INTEGER"), ("cylinder_16kg_goodluck", "INTEGER"),
    ("cylinder_10kg_safety", "INTEGER"), ("cylinder_happiness", "INTEGER"),
    ("cylinder_20kg_goodluck", "INTEGER"), ("flow_50kg", "INTEGER"), ("flow_20kg", "INTEGER"),
    ("flow_16kg", "INTEGER"), ("flow_20kg_goodluck", "INTEGER"), ("flow_16kg_goodluck", "INTEGER"),
    ("pricing_method", "VARCHAR(20)"), ("payment_method", "VARCHAR(20)"), ("payment_file", "BOOLEAN"),
    ("subscription_member", "BOOLEAN"), ("needs_same_day_delivery", "BOOLEAN"),
] + [(f"hour_{h}_{h + 1}", "BOOLEAN") for h in range(8, 20)] + [
    ("time_slot", "INTEGER"), ("holiday", "VARCHAR(20)"), ("monthly_delivery_volume", "FLOAT"),
    ("gas_return_ratio", "FLOAT"), ("actual_purchase_kg", "FLOAT"), ("daily_usage_avg", "FLOAT"),
    ("series_connection_count", "INTEGER"), ("reserve_amount", "INTEGER"), ("max_cycle_days", "INTEGER"),
    ("can_delay_days", "INTEGER"), ("needs_same_day", "INTEGER"), ("area", "VARCHAR(50)"),
    ("vehicle_type", "INTEGER"), ("single_area_supply", "INTEGER"), ("primary_usage_area", "VARCHAR(100)"),
    ("secondary_usage_area", "VARCHAR(100)"), ("switch_model", "VARCHAR(100)"),
    ("has_flow_meter", "BOOLEAN"), ("has_switch", "BOOLEAN"), ("has_smart_scale", "BOOLEAN"),
    ("client_type", "VARCHAR(20)"), ("is_terminated", "BOOLEAN"), ("created_at", "DATETIME"),
    ("updated_at", "DATETIME"),
]  # fmt: skip
assert len(CLIENT_COLUMNS) == 72

DELIVERY_COLUMNS: list[tuple[str, str]] = [
    ("id", "INTEGER PRIMARY KEY"), ("client_id", "INTEGER REFERENCES clients(id)"),
    ("scheduled_date", "DATE"), ("scheduled_time_start", "VARCHAR(5)"), ("scheduled_time_end", "VARCHAR(5)"),
    ("actual_delivery_time", "DATETIME"), ("driver_id", "INTEGER REFERENCES drivers(id)"),
    ("vehicle_id", "INTEGER REFERENCES vehicles(id)"), ("status", "VARCHAR(20)"),
    ("delivered_50kg", "INTEGER"), ("delivered_20kg", "INTEGER"), ("delivered_16kg", "INTEGER"),
    ("delivered_10kg", "INTEGER"), ("delivered_4kg", "INTEGER"), ("returned_50kg", "INTEGER"),
    ("returned_20kg", "INTEGER"), ("returned_16kg", "INTEGER"), ("returned_10kg", "INTEGER"),
    ("returned_4kg", "INTEGER"), ("notes", "TEXT"), ("signature_url", "VARCHAR(500)"),
    ("photo_url", "VARCHAR(500)"), ("route_sequence", "INTEGER"), ("distance_km", "FLOAT"),
    ("estimated_duration_minutes", "INTEGER"), ("created_at", "DATETIME"), ("updated_at", "DATETIME"),
]  # fmt: skip

SIZES = P.APP_SIZES
APP_CLIENT_CYLINDER_COLUMNS = [
    "cylinder_50kg", "cylinder_20kg_business", "cylinder_16kg_business", "cylinder_20kg",
    "cylinder_16kg", "cylinder_10kg", "cylinder_4kg", "cylinder_16kg_goodluck",
    "cylinder_10kg_safety", "cylinder_happiness", "cylinder_20kg_goodluck", "flow_50kg",
    "flow_20kg", "flow_16kg", "flow_20kg_goodluck", "flow_16kg_goodluck",
]  # fmt: skip


def assign_app_ids(seed: int, clients: list[Client]) -> list[int]:
    """Give every client its app id (code order) with the six test clients among them."""
    rng = rng_for(seed, "app-ids")
    total = len(clients) + len(TEST_CLIENTS)
    test_ids = sorted(rng.sample(range(max(2, len(clients) // 3), total + 1), len(TEST_CLIENTS)))
    it = iter(clients)
    for app_id in range(1, total + 1):
        if app_id not in test_ids:
            next(it).app_id = app_id
    return test_ids


def _ts(d: date, rng: random.Random) -> str:
    t = datetime.combine(d, time(rng.randint(7, 20), rng.randint(0, 59), rng.randint(0, 59)))
    return t.isoformat(sep=" ")


def _int(v: object) -> int | None:
    return int(v) if isinstance(v, float) else None


def _flag(v: object) -> int:
    return 0 if v is None or v == "X" else 1


def _client_row(rng: random.Random, c: Client, code_text: str, address: str) -> list:
    cells = c.cells
    township = next((t for t in P.AREA_TOWNSHIP.values() if t in c.address), None)
    hours = c.hours
    pref = f"{min(hours):02d}:00-{max(hours) + 1:02d}:00" if hours else None
    created = date(2019, 6, 1) + timedelta(days=rng.randint(0, 120))
    corporate = c.invoice_title.rstrip().endswith(("公司", "企業社", "商行"))
    holiday = cells.get("公休日")
    row = [
        c.app_id, code_text, c.invoice_title, c.short_name, address, c.short_name.strip(),
        rng.choice([None, None, rng.choice(P.SALESPEOPLE)[:1] + rng.choice(["先生", "小姐", "老闆"])]),
        f"{rng.randint(10000000, 99999999)}" if corporate else None, int(corporate), township,
        round(22.75 + rng.uniform(-0.35, 0.45), 6), round(121.14 + rng.uniform(-0.2, 0.25), 6), pref,
        rng.choice([None, None, None, "後門進", "先電聯", "鐵門密碼1234"]),
        0 if c.active_until else 1,
    ]  # fmt: skip
    product_cols = [p.client_column for p in P.PRODUCTS]
    row += [_int(cells.get(col)) or 0 for col in product_cols]
    row += [
        cells.get("計價方式"),
        cells.get("結帳方式"),
        _flag(cells.get("結帳用檔案")),
        _flag(cells.get("訂閱式會員")),
        _flag(cells.get("需要當天配送")),
    ]
    row += [_flag(cells.get(col)) for col in P.HOUR_COLUMNS]
    row += [
        _int(cells.get("時段早1午2晚3全天0")),
        None if holiday is None else (f"{holiday:g}" if isinstance(holiday, float) else holiday),
        cells.get("月配送量"), cells.get("退氣比例"), cells.get("實際購買公斤數"), cells.get("平均日使用"),
        _int(cells.get("串接數量")), _int(cells.get("備用量")), _int(cells.get("最大週期")),
        _int(cells.get("可延後天數")), _int(cells.get("是否需要當天去")), c.area,
        _int(cells.get("1汽車/2機車/0全部")), _int(cells.get("單一區域供應")),
        cells.get("第一使用區域(串接)"), cells.get("第二使用區域"), cells.get("切替器型號"),
        _flag(cells.get("流量表")), _flag(cells.get("切替器")), _flag(cells.get("智慧秤")),
        cells.get("類型"), 0 if c.active_until is None else 1,
        _ts(created, rng), _ts(created + timedelta(days=rng.randint(0, 1800)), rng),
    ]  # fmt: skip
    assert len(row) == 72
    return row


def _test_client_row(rng: random.Random, app_id: int, code: str, short: str, title: str) -> list:
    row: list = [None] * 72
    row[:15] = [app_id, code, title, short, "台東縣台東市測試路1號", short, "工程師", None, 0,
                "臺東市", 22.7583, 121.1444, "09:00-17:00", "測試資料請勿配送", 1]  # fmt: skip
    for i in range(15, 31):
        row[i] = 0
    row[15 + 3] = 1
    row[31:36] = ["桶裝", "現金", 0, 0, 0]
    for i in range(36, 48):
        row[i] = 1
    row[70] = row[71] = _ts(date(2024, 3, 1), rng)
    row[69] = 0
    return row


def write_app_db(
    path: Path,
    seed: int,
    clients: list[Client],
    test_ids: list[int],
    deliveries: list[AppDelivery],
    code_variants: dict[int, str],
    address_variants: dict[int, str],
) -> dict[str, tuple[int, list[str]]]:
    """Write the SQLite file; returns each table's row count and column names."""
    rng = rng_for(seed, "app-db")
    tmp = path.with_name(path.name + ".partial")
    tmp.unlink(missing_ok=True)
    con = sqlite3.connect(tmp)
    try:
        _write(con, rng, clients, test_ids, deliveries, code_variants, address_variants)
        tables = ("clients", "drivers", "vehicles", "deliveries", "routes", "delivery_predictions")
        counts = {
            t: (
                con.execute(f'select count(*) from "{t}"').fetchone()[0],
                [r[1] for r in con.execute(f'pragma table_info("{t}")')],
            )
            for t in tables
        }
    finally:
        con.close()
    os.replace(tmp, path)
    return counts


def _write(con, rng, clients, test_ids, deliveries, code_variants, address_variants) -> None:
    cur = con.cursor()
    cur.execute("pragma journal_mode=delete")
    cols = ", ".join(f"{n} {t}" for n, t in CLIENT_COLUMNS)
    cur.execute(f"create table clients ({cols})")
    cur.execute(
        "create table drivers (id INTEGER PRIMARY KEY, name VARCHAR(50), phone VARCHAR(20), "
        "employee_id VARCHAR(20), is_active BOOLEAN, created_at DATETIME, updated_at DATETIME)"
    )
    cur.execute(
        "create table vehicles (id INTEGER PRIMARY KEY, plate_number VARCHAR(20), vehicle_type "
        "VARCHAR(20), capacity_kg INTEGER, is_active BOOLEAN, created_at DATETIME)"
    )
    cols = ", ".join(f"{n} {t}" for n, t in DELIVERY_COLUMNS)
    cur.execute(f"create table deliveries ({cols})")
    cur.execute(
        "create table routes (id INTEGER PRIMARY KEY, route_date DATE, area VARCHAR(50), driver_id "
        "INTEGER, vehicle_id INTEGER, route_name VARCHAR(100), status VARCHAR(20), total_stops "
        "INTEGER, created_at DATETIME)"
    )
    cur.execute(
        "create table delivery_predictions (id INTEGER PRIMARY KEY, client_id INTEGER, "
        "predicted_date DATE, confidence FLOAT, model_version VARCHAR(20), created_at DATETIME)"
    )

    rows = []
    by_id = {c.app_id: c for c in clients}
    test_iter = iter(TEST_CLIENTS)
    for app_id in range(1, len(clients) + len(TEST_CLIENTS) + 1):
        if app_id in test_ids:
            code, short, title = next(test_iter)
            rows.append(_test_client_row(rng, app_id, code, short, title))
        else:
            c = by_id[app_id]
            rows.append(
                _client_row(
                    rng,
                    c,
                    code_variants.get(app_id, c.code_text),
                    address_variants.get(app_id, c.address),
                )
            )
    cur.executemany(f"insert into clients values ({', '.join('?' * 72)})", rows)

    # The real app's drivers and vehicles are 3 test rows each, its routes 1 row.
    drivers = [
        (1, APP_DRIVERS[0], "0900000000", "T001", 1),
        (2, APP_DRIVERS[1], None, "T002", 0),
        (3, APP_DRIVERS[2], "0911111111", "T003", 1),
    ]
    cur.executemany(
        "insert into drivers values (?, ?, ?, ?, ?, '2024-03-01 09:00:00', '2024-03-02 10:00:00')",
        drivers,
    )
    vehicles = [(k + 1, plate, "truck", 1200, 1) for k, plate in enumerate(APP_PLATES)]
    cur.executemany("insert into vehicles values (?, ?, ?, ?, ?, '2024-03-01 09:00:00')", vehicles)

    drows = []
    for a in deliveries:
        delivered = [a.sizes.get(kg, 0) for kg in SIZES]
        if a.imported:
            # the importer: the history's day, no time, no quantities, no driver
            stamp = f"{a.day.isoformat()} 08:00:00"
            drows.append(
                (
                    a.id, a.client_id, a.day.isoformat(), None, None, a.day.isoformat(),
                    a.driver_id, a.vehicle_id, a.status, *delivered, 0, 0, 0, 0, 0,
                    IMPORT_NOTE, None, None, None, None, None, stamp,
                    stamp if a.kind is None else _ts(a.day + timedelta(days=rng.randint(1, 30)), rng),
                )
            )  # fmt: skip
            continue
        start_h = int((a.time or "09:00")[:2])
        sched = datetime.combine(a.day, time(start_h, int((a.time or "09:00")[3:])))
        returned = [max(0, q) if rng.random() < 0.9 else 0 for q in delivered]
        done = a.status == "COMPLETED"
        drows.append(
            (
                a.id, a.client_id, a.day.isoformat(), f"{start_h:02d}:00", f"{min(start_h + 3, 21):02d}:00",
                sched.isoformat(sep=" ") if done else None, a.driver_id, a.vehicle_id, a.status,
                *delivered, *returned,
                rng.choice([None] * 8 + ["放後門", "客戶不在，放門口", "已收現"]),
                f"/uploads/signatures/{a.id}.png" if done and rng.random() < 0.6 else None,
                None, rng.randint(1, 40), round(rng.uniform(0.5, 60.0), 2), rng.randint(5, 45),
                (sched - timedelta(days=rng.randint(0, 3))).isoformat(sep=" "), sched.isoformat(sep=" "),
            )
        )  # fmt: skip
    cur.executemany(
        f"insert into deliveries values ({', '.join('?' * len(DELIVERY_COLUMNS))})", drows
    )

    last = max((a.day for a in deliveries), default=date(2025, 5, 31))
    cur.execute(
        "insert into routes values (1, ?, '測試', 1, 1, '測試路線', 'draft', 0, ?)",
        (last.isoformat(), f"{last.isoformat()} 06:30:00"),
    )
    con.commit()
