"""The seller strike ledger (embedded SQLite): three strikes within 365 days freeze a seller.

A strike is a ``block`` decision or a rights-holder complaint about one listing. Strikes are
keyed by ``(seller_id, listing_id)``, so rerunning a batch or importing the same complaint twice
never counts twice. A block that only the freeze caused (the listing would have been allowed or
reviewed) is not a strike: a frozen seller's strikes age out like anyone's.

Appeals are recorded, never deleted: ``strikes remove`` adds an event after which that
listing's strike no longer counts, and ``sellers unfreeze`` one after which the seller's strikes
recorded so far no longer count (later strikes do). Both keep the strike rows and say who did
what when and why. Every write is one transaction: a crash leaves the ledger as it was before
the write or after it, never in between.

``fakestop network --ledger`` stores the seller rings it found (each run replaces them); a
scoring run then sends the listings of a frozen seller's ring mates that would be allowed to
review, naming the evidence that ties them (:func:`ring_mates_reviewed`). That is no strike.
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
#: a column of scored rows: blocked only because the seller is frozen (not a strike)
BLOCKED_BY_FREEZE = "__blocked_by_freeze"
STRIKE_REMOVED = "strike_removed"
SELLER_UNFROZEN = "seller_unfrozen"
#: sellers who share a ring with a frozen seller, as a scoring run reads them
RING_MATES_SCHEMA = {"seller_id": pl.String, "frozen_mates": pl.String, "evidence": pl.String}

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
CREATE TABLE IF NOT EXISTS events (
    id          INTEGER PRIMARY KEY,
    recorded_at TEXT NOT NULL,         -- UTC time the event was recorded
    date        TEXT NOT NULL,         -- ISO date from which it applies
    action      TEXT NOT NULL,         -- 'strike_removed' or 'seller_unfrozen'
    seller_id   TEXT NOT NULL,
    listing_id  TEXT,                  -- strike_removed: the listing whose strike is removed
    up_to       INTEGER,               -- seller_unfrozen: strikes up to this rowid are cleared
    reason      TEXT
);
CREATE INDEX IF NOT EXISTS events_by_seller ON events (seller_id, action);
CREATE TABLE IF NOT EXISTS ring_members (
    seller_id  TEXT PRIMARY KEY,
    ring_id    INTEGER NOT NULL,       -- ring of the last `fakestop network --ledger` run
    evidence   TEXT NOT NULL,          -- what ties the seller to its ring, as one line
    date       TEXT NOT NULL           -- run date of that network run
);
"""

#: per strike, whether it counts on date ?1: not removed, not cleared by an unfreeze
_COUNTS = f"""
NOT EXISTS (SELECT 1 FROM events e WHERE e.action = '{STRIKE_REMOVED}'
            AND e.seller_id = s.seller_id AND e.listing_id = s.listing_id AND e.date <= ?1)
AND NOT EXISTS (SELECT 1 FROM events e WHERE e.action = '{SELLER_UNFROZEN}'
            AND e.seller_id = s.seller_id AND e.up_to >= s.rowid AND e.date <= ?1)
"""


def _parse_date(text: str, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise FakestopError(f"{where}: date {text!r} is not YYYY-MM-DD") from None


class Ledger:
    """Strikes, appeals and frozen sellers, stored in one SQLite file.

    ``create``: make the file if it does not exist (a run's ``--ledger``, ``complaints add``);
    the commands that read or amend a ledger refuse a file that is not there, so that a typo
    is not an empty ledger.
    """

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise FakestopError(
                f"{self.path}: no such strike ledger (one is made by "
                "`fakestop score --ledger` or `fakestop complaints add`)"
            )
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None)
            if (
                not create
                and not self._db.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'strikes'"
                ).fetchone()
            ):
                self._db.close()
                raise FakestopError(f"{self.path}: not a strike ledger (it has no strikes)")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise FakestopError(f"{self.path}: not a usable strike ledger ({exc})") from None
        except OSError as exc:
            raise FakestopError(f"{self.path}: cannot open ({exc.strerror or exc})") from None

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
        """Strike every blocked listing of a scored batch that names a seller, except those
        blocked only because their seller is frozen (:data:`BLOCKED_BY_FREEZE`)."""
        if "seller_id" not in scored.columns:
            return 0
        blocked = (pl.col("decision") == "block") & pl.col("seller_id").is_not_null()
        if BLOCKED_BY_FREEZE in scored.columns:
            blocked = blocked & ~pl.col(BLOCKED_BY_FREEZE).fill_null(False)
        blocked_rows = scored.filter(blocked).select("seller_id", "listing_id", "matched_brand")
        return self.add_strikes(
            (str(s), str(lid), b, date.isoformat(), "block", run_id)
            for s, lid, b in blocked_rows.iter_rows()
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
        """Sellers with strikes: the strikes that count (not removed nor cleared by an
        unfreeze), those within the window, the last strike's date, and the status
        (frozen/active) on ``as_of``."""
        day = as_of.isoformat()
        since = (as_of - dt.timedelta(days=WINDOW_DAYS)).isoformat()
        rows = self._db.execute(
            f"""SELECT seller_id, SUM(counts),
                      SUM(CASE WHEN counts AND date > ?2 AND date <= ?1 THEN 1 ELSE 0 END),
                      MAX(CASE WHEN counts THEN date END)
               FROM (SELECT s.seller_id, s.date, ({_COUNTS}) AS counts FROM strikes s)
               GROUP BY seller_id""",
            (day, since),
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

    def record_rings(self, members: pl.DataFrame, *, date: dt.date) -> int:
        """Replace the stored rings with ``members`` (``seller_id``, ``ring_id``,
        ``evidence``), in one transaction: a network run describes the whole marketplace, so
        sellers no longer in a ring are dropped. Returns the number of members stored."""
        rows = [
            (str(s), int(r), str(e), date.isoformat())
            for s, r, e in members.select("seller_id", "ring_id", "evidence").iter_rows()
        ]
        cur = self._db.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
            cur.execute("DELETE FROM ring_members")
            cur.executemany(
                "INSERT INTO ring_members (seller_id, ring_id, evidence, date) VALUES (?, ?, ?, ?)",
                rows,
            )
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return len(rows)

    def ring_members(self) -> pl.DataFrame:
        """The stored rings: ``seller_id``, ``ring_id``, ``evidence``, ``date``."""
        rows = self._db.execute(
            "SELECT seller_id, ring_id, evidence, date FROM ring_members ORDER BY seller_id"
        ).fetchall()
        return pl.DataFrame(
            rows,
            schema={
                "seller_id": pl.String,
                "ring_id": pl.Int64,
                "evidence": pl.String,
                "date": pl.String,
            },
            orient="row",
        )

    def ring_mates_of_frozen(self, *, as_of: dt.date) -> pl.DataFrame:
        """Sellers who are not frozen but share a stored ring with a seller who is:
        ``seller_id``, ``frozen_mates`` (the frozen members, comma-separated) and
        ``evidence`` (what ties the seller to the ring)."""
        members = self.ring_members()
        if members.height == 0:
            return pl.DataFrame(schema=RING_MATES_SCHEMA)
        frozen = self.frozen(as_of=as_of).get_column("seller_id")
        is_frozen = pl.col("seller_id").is_in(frozen.implode())
        frozen_by_ring = (
            members.filter(is_frozen)
            .group_by("ring_id")
            .agg(pl.col("seller_id").sort().str.join(", ").alias("frozen_mates"))
        )
        return (
            members.filter(~is_frozen)
            .join(frozen_by_ring, on="ring_id")
            .select("seller_id", "frozen_mates", "evidence")
            .sort("seller_id")
        )

    def strikes(self, *, as_of: dt.date, seller: str | None = None) -> pl.DataFrame:
        """Every strike (of ``seller``, or all), with whether it counts on ``as_of`` and, if
        not, the event that says why: the audit trail of appeals."""
        day = as_of.isoformat()
        rows = self._db.execute(
            f"""SELECT s.seller_id, s.listing_id, s.brand, s.date, s.source, ({_COUNTS}),
                   (SELECT e.action || ' on ' || e.date || COALESCE(': ' || e.reason, '')
                    FROM events e WHERE e.seller_id = s.seller_id AND e.date <= ?1 AND (
                        (e.action = '{STRIKE_REMOVED}' AND e.listing_id = s.listing_id)
                        OR (e.action = '{SELLER_UNFROZEN}' AND e.up_to >= s.rowid))
                    ORDER BY e.id LIMIT 1)
               FROM strikes s WHERE ?2 IS NULL OR s.seller_id = ?2
               ORDER BY s.seller_id, s.date, s.listing_id""",
            (day, seller),
        ).fetchall()
        return pl.DataFrame(
            rows,
            schema={
                "seller_id": pl.String,
                "listing_id": pl.String,
                "brand": pl.String,
                "date": pl.String,
                "source": pl.String,
                "counts": pl.Boolean,
                "appeal": pl.String,
            },
            orient="row",
        )

    def events(self) -> pl.DataFrame:
        """Every appeal event, in the order they were recorded."""
        rows = self._db.execute(
            "SELECT recorded_at, date, action, seller_id, listing_id, reason FROM events "
            "ORDER BY id"
        ).fetchall()
        return pl.DataFrame(
            rows,
            schema=dict.fromkeys(
                ["recorded_at", "date", "action", "seller_id", "listing_id", "reason"], pl.String
            ),
            orient="row",
        )

    def _write(self, sql: str, rows: list[tuple[object, ...]]) -> None:
        cur = self._db.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
            cur.executemany(sql, rows)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def remove_strike(self, listing_id: str, *, date: dt.date, reason: str | None) -> list[str]:
        """Record that the strike for ``listing_id`` no longer counts from ``date`` on (an
        appeal upheld); returns the sellers whose strike it was. The strike stays in the
        ledger. Refused if the listing has no strike that still counts."""
        day = date.isoformat()
        sellers = [
            s
            for (s,) in self._db.execute(
                f"SELECT s.seller_id FROM strikes s WHERE s.listing_id = ?2 AND ({_COUNTS})",
                (day, listing_id),
            ).fetchall()
        ]
        if not sellers:
            known = self._db.execute(
                "SELECT COUNT(*) FROM strikes WHERE listing_id = ?", (listing_id,)
            ).fetchone()[0]
            what = "its strike no longer counts" if known else "it has no strike"
            raise FakestopError(f"{self.path}: listing {listing_id}: {what}")
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self._write(
            "INSERT INTO events (recorded_at, date, action, seller_id, listing_id, reason) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(now, day, STRIKE_REMOVED, s, listing_id, reason) for s in sellers],
        )
        return sellers

    def unfreeze(self, seller_id: str, *, date: dt.date, reason: str) -> int:
        """Record that ``seller_id``'s strikes recorded so far no longer count from ``date``
        on (strikes recorded later do); returns how many strikes it clears. Refused if the
        seller is not frozen on ``date``."""
        status = self.sellers(as_of=date).filter(pl.col("seller_id") == seller_id)
        if status.height == 0 or status.get_column("status").item() != "frozen":
            n = 0 if status.height == 0 else status.get_column("strikes_365d").item()
            raise FakestopError(
                f"{self.path}: seller {seller_id} is not frozen on {date.isoformat()} "
                f"({n} strike(s) within {WINDOW_DAYS} days)"
            )
        (up_to,) = self._db.execute(
            "SELECT MAX(rowid) FROM strikes WHERE seller_id = ?", (seller_id,)
        ).fetchone()
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self._write(
            "INSERT INTO events (recorded_at, date, action, seller_id, up_to, reason) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(now, date.isoformat(), SELLER_UNFROZEN, seller_id, up_to, reason)],
        )
        return int(status.get_column("strikes").item())


def frozen_sellers_blocked(scored: pl.DataFrame, frozen: pl.DataFrame) -> pl.DataFrame:
    """Block every ok listing of a frozen seller, with the reason first; the listings that
    were not blocked on their own are marked :data:`BLOCKED_BY_FREEZE` (they are no strike)."""
    if frozen.height == 0 or "seller_id" not in scored.columns:
        return scored.with_columns(pl.lit(False).alias(BLOCKED_BY_FREEZE))
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
            (hit & (pl.col("decision") != "block")).fill_null(False).alias(BLOCKED_BY_FREEZE),
            pl.when(hit).then(pl.lit("block")).otherwise(pl.col("decision")).alias("decision"),
            pl.when(hit)
            .then(pl.concat_list(pl.concat_list(reason), pl.col("reasons")).list.head(5))
            .otherwise(pl.col("reasons"))
            .alias("reasons"),
        )
        .drop("__strikes")
    )


def ring_mates_reviewed(scored: pl.DataFrame, mates: pl.DataFrame) -> pl.DataFrame:
    """Send every ok listing of a ring mate of a frozen seller that would be allowed to
    ``review``, with the reason first (naming the frozen mates and the shared evidence).
    Listings blocked on their own stay blocked; nothing here is a strike."""
    if mates.height == 0 or "seller_id" not in scored.columns:
        return scored
    hit = (
        pl.col("seller_id").is_in(mates.get_column("seller_id").implode())
        & (pl.col("status") == "ok")
        & (pl.col("decision") == "allow")
    )
    reason = pl.format(
        "seller {} is in a ring with frozen seller(s) {}: {}",
        pl.col("seller_id"),
        pl.col("__frozen_mates"),
        pl.col("__ring_evidence"),
    )
    return (
        scored.join(
            mates.rename({"frozen_mates": "__frozen_mates", "evidence": "__ring_evidence"}),
            on="seller_id",
            how="left",
            maintain_order="left",
        )
        .with_columns(
            pl.when(hit).then(pl.lit("review")).otherwise(pl.col("decision")).alias("decision"),
            pl.when(hit)
            .then(pl.concat_list(pl.concat_list(reason), pl.col("reasons")).list.head(5))
            .otherwise(pl.col("reasons"))
            .alias("reasons"),
        )
        .drop("__frozen_mates", "__ring_evidence")
    )
