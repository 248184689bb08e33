"""The client master (客戶資料): 76 columns whose values follow the real file's profile."""

from __future__ import annotations

import random
from datetime import date

from loaders.sample import profile as P
from loaders.sample.model import Client, deal, rng_for, scale_count


def _codes(rng: random.Random, n: int, factor: float) -> list[int]:
    """Unique 7-digit codes with the real leading-digit shares; includes the real extremes."""
    per_prefix = {p: max(1, round(c * factor)) for p, c in P.CODE_PREFIX_COUNTS.items()}
    while sum(per_prefix.values()) > n:
        per_prefix[max(per_prefix, key=per_prefix.get)] -= 1
    while sum(per_prefix.values()) < n:
        per_prefix[18] += 1
    fixed = {P.CODE_MIN, P.CODE_MAX, 1804832}
    codes: set[int] = set(fixed)
    for prefix, count in sorted(per_prefix.items()):
        lo = max(prefix * 100000, P.CODE_MIN)
        hi = min(prefix * 100000 + 99999, P.CODE_MAX)
        have = sum(1 for c in codes if c // 100000 == prefix)
        while have < count:
            c = rng.randint(lo, hi)
            if c not in codes:
                codes.add(c)
                have += 1
    assert len(codes) == n, (len(codes), n)
    return sorted(codes)


def random_address(rng: random.Random, area: str | None) -> str:
    township = P.AREA_TOWNSHIP.get((area or "A")[0], "臺東市")
    road = rng.choice(P.ROADS)
    number = rng.randint(1, 680)
    sub = rng.choice(["", "", "", "", "", "之1", "之2"])
    lane = rng.choice(["", "", "", "", f"{rng.randint(1, 300)}巷"])
    return f"臺東縣{township}{road}{lane}{number}{sub}號"


def _tail_number(rng: random.Random, lo: float, hi: float, step: float) -> float:
    k = rng.randint(int(lo / step), int(hi / step))
    return round(k * step, 4)


METRIC_TAILS = {
    "月配送量": lambda r: float(r.choice([r.randint(1, 60) * 20, r.randint(1, 400) * 5])),
    "退氣": lambda r: float(r.randint(8, 400)),
    "實際購買公斤數": lambda r: float(r.randint(1, 3000)),
    "退氣比例": lambda r: round(r.uniform(0.01, 0.6), r.choice([2, 2, 3, 4])),
    "平均日使用": lambda r: _tail_number(r, 0.1, 80.0, 0.1),
    "串接數量": lambda r: float(r.choice([r.randint(2, 50) * 4, r.choice([500, 600, 800, 1000])])),
    "備用量": lambda r: float(r.choice([r.randint(0, 60) * 2, r.choice([300, 400, 500, 1000])])),
    "最大週期": lambda r: float(r.randint(1, 162)),
    "可延後天數": lambda r: float(r.randint(0, 82)),
    "是否需要當天去": lambda r: float(r.randint(-286, 245)),
}


def _config_tail(r: random.Random) -> str:
    a = r.choice([50, 20, 20, 16])
    if r.random() < 0.5:
        return f"{a}*{r.randint(1, 9)}"
    return f"{a}*{r.randint(1, 5)}+{r.choice([16, 4])}*{r.randint(1, 3)}"


def _usage_tail(r: random.Random) -> str:
    size, n = r.choice([20, 20, 16, 4, 50]), r.randint(1, 4)
    return r.choice(
        [
            f"{r.choice(P.APPLIANCES)}{size}*{n}",
            f"{size}KG:{n}+{r.randint(1, n)}",
            f"重量發報{size}*{n}",
            f"{r.choice(P.APPLIANCES)}{r.choice(P.APPLIANCES)}{size}*{n}",
            f"{size}KG+{r.choice([16, 4])}KG:{n}+{r.randint(1, 3)}",
        ]
    )


def _spare_tail(r: random.Random) -> str:
    first = f"{r.choice([20, 16, 50])}*{r.randint(1, 6)}"
    return first if r.random() < 0.5 else f"{first}+{r.choice([16, 4, 10])}*{r.randint(1, 3)}"


def _switch_tail(r: random.Random) -> str:
    return r.choice(["自動切替器KA", "發報切替器TAX-", "壓差開關KA", "切替器R"]) + str(
        r.randint(20, 60)
    )


def generate_clients(seed: int, n: int) -> list[Client]:
    """n clients in code order, as the master lists them."""
    factor = n / P.FULL_CLIENTS
    rng = rng_for(seed, "clients")
    codes = _codes(rng, n, factor)

    # Text columns. Short names almost unique; invoice titles shared by branches (~5 %).
    short_names: list[str] = []
    seen: dict[str, int] = {}
    for _ in range(n):
        name = rng.choice(P.SHORT_NAME_HEADS) + rng.choice(P.SHORT_NAME_TAILS)
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1 and rng.random() < 0.97:
            name = f"{name}{'二三四五六七八'[min(seen[name] - 2, 6)]}店"
        short_names.append(name)
    invoices = [s + rng.choice(P.INVOICE_SUFFIXES) for s in short_names]
    for i in range(n):
        if i > 0 and rng.random() < 0.05:
            invoices[i] = invoices[rng.randrange(i)]

    areas = deal(rng, n, P.AREAS, filled_full=P.FULL_CLIENTS - P.AREA_BLANK, factor=factor)
    pricing = deal(rng, n, P.PRICING, factor=factor)
    metered = [p == "流量" for p in pricing]
    cylinder_idx = [i for i in range(n) if not metered[i]]
    metered_idx = [i for i in range(n) if metered[i]]

    cells: list[dict[str, object]] = [{} for _ in range(n)]
    for col, counts in P.CYLINDER_COUNTS.items():
        values = deal(rng, len(cylinder_idx), counts, factor=factor)
        for i in range(n):
            cells[i][col] = None
        for i, v in zip(cylinder_idx, values, strict=True):
            cells[i][col] = v
    for col, counts in P.METERED_COUNTS.items():
        values = deal(rng, len(metered_idx), counts, factor=factor)
        for i in range(n):
            cells[i][col] = None
        for i, v in zip(metered_idx, values, strict=True):
            cells[i][col] = v

    columns: dict[str, list] = {
        "系統上鋼瓶數量": deal(rng, n, P.CYLINDER_CONFIG_TOP, P.CYLINDER_CONFIG_FILLED, factor, _config_tail, 77),
        "計價方式": pricing,
        "結帳方式": deal(rng, n, {k: v for k, v in P.PAYMENT.items() if k}, P.FULL_CLIENTS - 1, factor),
        "時段早1午2晚3全天0": deal(rng, n, {k: v for k, v in P.TIME_OF_DAY.items() if k is not None}, None, factor),
        "公休日": deal(rng, n, P.CLOSED_DAY_COUNTS, None, factor),
        "狀態": [None] * n,
        "切替器型號": deal(rng, n, P.SWITCH_MODELS_TOP, P.SWITCH_MODELS_FILLED, factor, _switch_tail, 43),
        "區域": areas,
        "1汽車/2機車/0全部": deal(rng, n, {k: v for k, v in P.VEHICLE.items() if k is not None}, None, factor),
        "單一區域供應": deal(rng, n, {k: v for k, v in P.SINGLE_AREA.items() if k is not None}, None, factor),
        "預備桶": deal(rng, n, P.SPARE_TOP, P.SPARE_FILLED, factor, _spare_tail, 42),
        "類型": deal(rng, n, P.CUSTOMER_TYPES, None, factor),
    }  # fmt: skip
    for col, counts in P.FLAG_COUNTS.items():
        columns[col] = deal(rng, n, counts, None, factor)
    for col, counts in P.EQUIPMENT_COUNTS.items():
        columns[col] = deal(rng, n, counts, None, factor)
    for col in P.HOUR_COLUMNS:
        columns[col] = deal(rng, n, {1.0: P.HOUR_COUNTS[col]}, None, factor)
    for col, filled in P.METRIC_FILLED.items():
        top = {v: c for v, c in P.METRIC_TOP[col].items()}
        columns[col] = deal(rng, n, top, filled, factor, METRIC_TAILS[col], P.METRIC_DISTINCT[col])
    for col, (filled, top) in P.USAGE_AREA_TOP.items():
        columns[col] = deal(rng, n, top, filled, factor, _usage_tail, P.USAGE_AREA_DISTINCT[col])

    # The real outliers a business rule must catch: each once, on rows that hold a value.
    out_rows = rng.sample(range(n), len(P.METRIC_OUTLIERS))
    for row, (col, value, _rule) in zip(out_rows, P.METRIC_OUTLIERS, strict=True):
        columns[col][row] = value

    clients: list[Client] = []
    sales_rng = rng_for(seed, "clients:sales")
    for i in range(n):
        area = areas[i]
        address = random_address(rng, area)
        c = Client(
            index=i,
            code=codes[i],
            invoice_title=invoices[i],
            short_name=short_names[i],
            address=address,
            area=area,
            metered=metered[i],
        )
        row = cells[i]
        for col, values in columns.items():
            row[col] = values[i]
        c.cells = row
        c.salesperson = sales_rng.choice(P.SALESPEOPLE)
        c.hours = [h for h, col in zip(range(8, 20), P.HOUR_COLUMNS, strict=True) if row[col]]
        c.products = [
            (p.code, int(row[p.client_column]))
            for p in P.PRODUCTS
            if isinstance(row.get(p.client_column), float) and row[p.client_column] > 0
        ]
        if not c.products:
            c.products = [("GAS-F50-R", 1)] if c.metered else [("GAS-C20-R", 2)]
        usage = row.get("平均日使用")
        c.weight = (
            0.4 + min(float(usage), 30.0) / 10 if isinstance(usage, float) and usage > 0 else 0.5
        )
        if row.get("已解約") == "V":
            c.active_until = date(rng.randint(2016, 2024), rng.randint(1, 12), 1)
        clients.append(c)

    _place_addresses(rng, clients, factor)
    for c in clients:
        c.cells["客戶"] = float(c.code)
        c.cells["電子發票抬頭"] = c.invoice_title
        c.cells["客戶簡稱"] = c.short_name
        c.cells["地址"] = c.address
    return clients


def _place_addresses(rng: random.Random, clients: list[Client], factor: float) -> None:
    """Places instead of addresses, 台東 written for 臺東, names with a stray space (as real)."""
    n = len(clients)
    order = list(range(n))
    rng.shuffle(order)
    n_places = scale_count(16, factor, minimum=2)
    n_tai = scale_count(1, factor, minimum=2)
    for k, i in enumerate(order[:n_places]):
        clients[i].address = P.PLACES[k % len(P.PLACES)]
    for i in order[n_places : n_places + n_tai]:
        clients[i].address = clients[i].address.replace("臺東", "台東")
    # Addresses that do not end with 號: a floor or a landmark appended.
    k = n_places + n_tai
    n_floor = scale_count(68, factor, minimum=2)
    for i in order[k : k + n_floor]:
        clients[i].address += rng.choice(["1樓", "2樓", "旁", "對面"])
    # About 8 % of clients share an address with another (stalls of one market, one building).
    k += n_floor
    n_shared = scale_count(85, factor, minimum=2)
    for i in order[k : k + n_shared]:
        j = order[rng.randrange(k + n_shared, len(order) - 2)]
        clients[i].address = clients[j].address
    a, b = order[-1], order[-2]
    clients[a].invoice_title = clients[a].invoice_title + " "
    clients[b].short_name = " " + clients[b].short_name
