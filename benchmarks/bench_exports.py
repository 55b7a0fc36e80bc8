"""What reading exports as they come costs: the same listings as a plain CSV (UTF-8, commas,
prices as numbers) and as a shop's export (Windows-1252, semicolons, CRLF, blank lines, its own
headers, prices written ``1.299,00 €``, a few thousand distinct as a shop sets them, conditions
named ``Gebraucht``), read and validated in the same process.

    python -m benchmarks.bench_exports --rows 1000000

Writes ``benchmarks/results/bench_exports.json``. The baseline is the plain file read by the
same code: the ratio is what the export's formatting costs. A second table times the price
column alone: prices that need reading against a polars cast of plain numbers.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import tempfile
import time
from pathlib import Path

import polars as pl

from benchmarks import write_results
from pipelines.config import Settings
from pipelines.prices import parsed_prices
from pipelines.schema import iter_listing_batches, validated_listings

TITLES = ["Rolex Submariner", "Gucci Marmont Tasche", "Kaffeebecher weiß", "Nike Air Max 90",
          "Schreibtischlampe", "Louis Vuitton Neverfull"]  # fmt: skip
GERMAN = {"listing_id": "Artikelnummer", "title": "Titel", "price": "Preis",
          "condition": "Zustand", "seller_id": "Verkäufer"}  # fmt: skip


def _euro(value: float) -> str:
    whole, cents = f"{value:.2f}".split(".")
    grouped = f"{int(whole):,}".replace(",", ".")
    return f"{grouped},{cents} €"


def write_exports(root: Path, rows: int, seed: int = 0) -> tuple[Path, Path]:
    rnd = random.Random(seed)
    plain, shop = root / "plain.csv", root / "shop.csv"
    with (
        open(plain, "w", newline="", encoding="utf-8") as a,
        open(shop, "w", newline="", encoding="cp1252") as b,
    ):
        pa, sb = csv.writer(a), csv.writer(b, delimiter=";", lineterminator="\r\n")
        pa.writerow(["listing_id", "title", "price", "condition", "seller_id"])
        sb.writerow([GERMAN[c] for c in ["listing_id", "title", "price", "condition", "seller_id"]])
        for i in range(rows):
            # prices as shops set them: a few thousand distinct values, most ending in ,99 / ,90
            value = round(math.exp(rnd.uniform(math.log(5), math.log(5000)))) + rnd.choice(
                [0.0, 0.9, 0.99]
            )
            used = rnd.random() < 0.3
            title = f"{rnd.choice(TITLES)} {i % 997}"
            pa.writerow([f"L{i}", title, f"{value:.2f}", "used" if used else "new", f"s{i % 5000}"])
            sb.writerow(
                [f"L{i}", title, _euro(value), "Gebraucht" if used else "Neu", f"s{i % 5000}"]
            )
            if i % 1000 == 999:
                b.write("\r\n")
    return plain, shop


def read_all(path: Path, settings: Settings) -> tuple[float, int]:
    t0 = time.perf_counter()
    rows = 0
    for batch in iter_listing_batches(path, 100_000, settings):
        rows += validated_listings(batch.lazy(), settings).collect().height
    return time.perf_counter() - t0, rows


def best(f: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=300_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plain, shop = write_exports(Path(tmp), args.rows)
        base, shop_settings = Settings(), Settings(columns=GERMAN, encoding="cp1252")
        runs: dict[str, list[float]] = {"plain": [], "shop": []}
        for _ in range(args.repeat):  # alternated, so that the machine's load hits both
            seconds, n_plain = read_all(plain, base)
            runs["plain"].append(seconds)
            seconds, n_shop = read_all(shop, shop_settings)
            runs["shop"].append(seconds)
        assert n_plain == n_shop == args.rows, (n_plain, n_shop)
        prices = pl.read_csv(plain, columns=["price"], infer_schema=False)["price"]
        distinct_euro = (prices.str.replace(".", ",", literal=True) + " €").str.strip_chars()
        cast = best(lambda: prices.cast(pl.Float64, strict=False), args.repeat)
        plain_parse = best(lambda: parsed_prices(prices, None, "auto"), args.repeat)
        euro_parse = best(lambda: parsed_prices(distinct_euro, None, "auto"), args.repeat)
        unique = pl.Series([f"{i / 7:.2f}" for i in range(args.rows)])
        unique = unique.str.replace(".", ",", literal=True) + " €"
        unique_parse = best(lambda: parsed_prices(unique, None, "auto"), args.repeat)
    result = {
        "rows": args.rows,
        "read_and_validate_seconds": {k: round(min(v), 3) for k, v in runs.items()},
        "shop_over_plain": round(min(runs["shop"]) / min(runs["plain"]), 2),
        "price_column_seconds": {
            "cast_plain_numbers": round(cast, 4),
            "parsed_plain_numbers": round(plain_parse, 4),
            "parsed_shop_prices": round(euro_parse, 4),
            "parsed_all_distinct_shop_prices": round(unique_parse, 4),
        },
        "distinct_shop_prices": distinct_euro.n_unique(),
    }
    write_results("bench_exports", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
