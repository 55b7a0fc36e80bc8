"""The seller strike ledger (embedded SQLite): three strikes within 365 days freeze a seller.

A strike is a ``block`` decision or a rights-holder complaint about one listing. Strikes are
keyed by ``(seller_id, listing_id)``, so rerunning a batch or importing the same complaint twice
never counts twice. Every write is one transaction: a crash leaves the ledger as it was before
the write or after it, never in between.
"""

from __future__ import annotations

import csv
import datetime as dt
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from pipelines.errors import FakestopError

STRIKES_TO_FREEZE = 3
WINDOW_DAYS = 365

_SCHEMA = """
CREATE TABLE IF NOT EXISTS strikes (
    seller_id  TEXT NOT NULL,
    listing_id TEXT NOT NULL,
    brand      TEXT,
    date       TEXT NOT NULL,          -- ISO date of the strike
    source     TEXT NOT NULL,          -- 'block' or 'complaint'
    run_id     TEXT,                   -- the scoring run that recorded it, if any
    PRIMARY KEY (seller_id, listing_id)
);
CREATE INDEX IF NOT EXISTS strikes_by_seller_date ON strikes (seller_id, date);
"""


def _parse_date(text: str, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise FakestopError(f"{where}: date {text!r} is not YYYY-MM-DD") from None


class Ledger:
    """Strikes and frozen sellers, stored in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise FakestopError(f"{self.path}: not a usable strike ledger ({exc})") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_strikes(self, rows: Iterable[tuple[str, str, str | None, str, str, str | None]]) -> int:
        """Insert ``(seller_id, listing_id, brand, date, source, run_id)`` rows in one
        transaction; returns how many were new (existing listings are not counted again)."""
        cur = self._db.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
            before = self._db.total_changes
            cur.executemany("INSERT OR IGNORE INTO strikes VALUES (?, ?, ?, ?, ?, ?)", list(rows))
            added = self._db.total_changes - before
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return added

    def record_blocks(self, scored: pl.DataFrame, *, date: dt.date, run_id: str) -> int:
        """Strike every blocked listing of a scored batch that names a seller."""
        if "seller_id" not in scored.columns:
            return 0
        blocked = scored.filter(
            (pl.col("decision") == "block") & pl.col("seller_id").is_not_null()
        ).select("seller_id", "listing_id", "matched_brand")
        return self.add_strikes(
            (str(s), str(lid), b, date.isoformat(), "block", run_id)
            for s, lid, b in blocked.iter_rows()
        )

    def import_complaints(self, path: str | Path) -> int:
        """Import a CSV of ``seller_id,listing_id,brand,date`` complaints."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise FakestopError(f"{path}: cannot read ({exc.strerror})") from None
        reader = csv.DictReader(text.splitlines())
        need = {"seller_id", "listing_id", "brand", "date"}
        missing = need - set(reader.fieldnames or [])
        if missing:
            raise FakestopError(
                f"{path} line 1: missing column(s) {', '.join(sorted(missing))}; "
                "expected seller_id,listing_id,brand,date"
            )
        rows = []
        for row in reader:
            where = f"{path} line {reader.line_num}"
            seller, listing = (row["seller_id"] or "").strip(), (row["listing_id"] or "").strip()
            if not seller or not listing:
                raise FakestopError(f"{where}: seller_id and listing_id are required")
            date = _parse_date(row["date"] or "", where)
            rows.append(
                (
                    seller,
                    listing,
                    (row["brand"] or "").strip() or None,
                    date.isoformat(),
                    "complaint",
                    None,
                )
            )
        return self.add_strikes(rows)

    def sellers(self, *, as_of: dt.date) -> pl.DataFrame:
        """Sellers with strikes: total, strikes within the window, status (frozen/active)."""
        since = (as_of - dt.timedelta(days=WINDOW_DAYS)).isoformat()
        rows = self._db.execute(
            """SELECT seller_id, COUNT(*),
                      SUM(CASE WHEN date > ? AND date <= ? THEN 1 ELSE 0 END),
                      MAX(date)
               FROM strikes GROUP BY seller_id""",
            (since, as_of.isoformat()),
        ).fetchall()
        frame = pl.DataFrame(
            rows,
            schema={
                "seller_id": pl.String,
                "strikes": pl.Int64,
                "strikes_365d": pl.Int64,
                "last_strike": pl.String,
            },
            orient="row",
        )
        return frame.with_columns(
            pl.when(pl.col("strikes_365d") >= STRIKES_TO_FREEZE)
            .then(pl.lit("frozen"))
            .otherwise(pl.lit("active"))
            .alias("status")
        ).sort(["status", "strikes_365d", "seller_id"], descending=[True, True, False])

    def frozen(self, *, as_of: dt.date) -> pl.DataFrame:
        """``seller_id`` and ``strikes_365d`` of the sellers frozen on ``as_of``."""
        s = self.sellers(as_of=as_of)
        return s.filter(pl.col("status") == "frozen").select("seller_id", "strikes_365d")


def frozen_sellers_blocked(scored: pl.DataFrame, frozen: pl.DataFrame) -> pl.DataFrame:
    """Block every ok listing of a frozen seller, with the reason first."""
    if frozen.height == 0 or "seller_id" not in scored.columns:
        return scored
    hit = pl.col("seller_id").is_in(frozen.get_column("seller_id").implode()) & (
        pl.col("status") == "ok"
    )
    reason = pl.format(
        "seller {} is frozen: {} strikes within {} days",
        pl.col("seller_id"),
        pl.col("__strikes"),
        pl.lit(WINDOW_DAYS),
    )
    return (
        scored.join(
            frozen.rename({"strikes_365d": "__strikes"}),
            on="seller_id",
            how="left",
            maintain_order="left",
        )
        .with_columns(
            pl.when(hit).then(pl.lit("block")).otherwise(pl.col("decision")).alias("decision"),
            pl.when(hit)
            .then(pl.concat_list(pl.concat_list(reason), pl.col("reasons")).list.head(5))
            .otherwise(pl.col("reasons"))
            .alias("reasons"),
        )
        .drop("__strikes")
    )
