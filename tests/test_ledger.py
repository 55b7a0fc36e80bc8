"""A strike ledger that is fair and reversible: a freeze makes no strikes of its own, appeals are
recorded (never deleted), and reading a ledger that is not there is an error."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import polars as pl
import pytest

from pipelines.cli import main
from pipelines.errors import FakestopError
from pipelines.ledger import Ledger
from pipelines.registry import Registry
from pipelines.run import run_score
from pipelines.stages import ScoringPlan
from tests.conftest import listings

DAY = dt.date(2026, 3, 1)


@pytest.fixture(scope="module")
def plan(tiny_registry: Registry) -> ScoringPlan:
    return ScoringPlan.build(tiny_registry)


def status(db: Path, seller: str, day: dt.date) -> tuple[str, int]:
    with Ledger(db, create=False) as led:
        row = led.sellers(as_of=day).filter(pl.col("seller_id") == seller)
    if row.height == 0:
        return "active", 0
    return row.get_column("status").item(), row.get_column("strikes_365d").item()


def freeze(db: Path, tmp_path: Path, seller: str = "A", day: dt.date = DAY) -> None:
    complaints = tmp_path / "complaints.csv"
    complaints.write_text(
        "seller_id,listing_id,brand,date\n"
        + "".join(f"{seller},{seller}-c{i},Gucci,{day.isoformat()}\n" for i in range(3))
    )
    assert main(["complaints", "add", str(complaints), "--ledger", str(db)]) == 0
    assert status(db, seller, day) == ("frozen", 3)


def honest(seller: str, n: int, tag: str) -> pl.DataFrame:
    return listings(
        listing_id=[f"{seller}-{tag}-{i}" for i in range(n)],
        title=["Rolex Datejust"] * n,
        price=[8000.0] * n,
        brand=["Rolex"] * n,
        category=["watches"] * n,
        seller_id=[seller] * n,
    )


def nightly(
    tmp_path: Path, plan: ScoringPlan, db: Path, frame: pl.DataFrame, day: dt.date
) -> pl.DataFrame:
    src = tmp_path / f"in-{day}.parquet"
    frame.write_parquet(src)
    out = tmp_path / f"out-{day}.parquet"
    run_score(src, plan, out, quiet=True, ledger=db, run_date=day)
    return pl.read_parquet(out)


def test_blocks_caused_by_a_freeze_are_not_strikes(tmp_path: Path, plan: ScoringPlan) -> None:
    db = tmp_path / "ledger.sqlite"
    freeze(db, tmp_path)
    # the frozen seller keeps listing honest-looking goods every night for a year
    for k, day in enumerate(DAY + dt.timedelta(days=d) for d in (1, 120, 240, 360)):
        out = nightly(tmp_path, plan, db, honest("A", 3, f"n{k}"), day)
        assert out.get_column("decision").to_list() == ["block"] * 3
        assert out.get_column("reasons")[0][0].startswith("seller A is frozen")
        assert "__blocked_by_freeze" not in out.columns
        assert status(db, "A", day) == ("frozen", 3)
    # a year after the complaints, the seller ages out: the freeze made no strikes
    assert status(db, "A", DAY + dt.timedelta(days=366)) == ("active", 0)
    # a listing that is blocked on its own evidence is still a strike while frozen
    fake = listings(
        listing_id=["A-fake"],
        title=["Rolex Submariner replica"],
        price=[40.0],
        brand=["Rolex"],
        category=["watches"],
        seller_id=["A"],
    )
    nightly(tmp_path, plan, db, fake, DAY + dt.timedelta(days=10))
    assert status(db, "A", DAY + dt.timedelta(days=10)) == ("frozen", 4)


def test_a_strike_removed_after_an_appeal_is_recorded_not_deleted(
    tmp_path: Path, plan: ScoringPlan, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "ledger.sqlite"
    freeze(db, tmp_path)
    argv = ["strikes", "remove", "--ledger", str(db), "--listing", "A-c1"]
    assert main([*argv, "--reason", "the rights holder withdrew", "--date", "2026-03-05"]) == 0
    assert "strike for listing A-c1 (seller A) removed" in capsys.readouterr().out
    assert status(db, "A", DAY + dt.timedelta(days=4)) == ("active", 2)
    # on the day before the removal, the ledger still says what it said then
    assert status(db, "A", DAY + dt.timedelta(days=3)) == ("frozen", 3)
    with Ledger(db, create=False) as led:
        trail = led.strikes(as_of=DAY + dt.timedelta(days=30), seller="A")
        events = led.events()
    assert trail.height == 3  # nothing deleted
    removed = trail.filter(pl.col("listing_id") == "A-c1").row(0, named=True)
    assert removed["counts"] is False
    assert removed["appeal"] == "strike_removed on 2026-03-05: the rights holder withdrew"
    assert events.select("action", "seller_id", "listing_id").rows() == [
        ("strike_removed", "A", "A-c1")
    ]
    # removing it again, or a listing without a strike, is refused in one line
    assert main(argv) == 2
    assert "listing A-c1: its strike no longer counts" in capsys.readouterr().err
    assert main([*argv[:-1], "nope"]) == 2
    assert "listing nope: it has no strike" in capsys.readouterr().err
    # the list shows the audit trail
    assert main(["strikes", "list", "--ledger", str(db), "--seller", "A"]) == 0
    assert "the rights holder withdrew" in capsys.readouterr().out


def test_unfreeze_clears_the_strikes_so_far_and_later_ones_count(
    tmp_path: Path, plan: ScoringPlan, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "ledger.sqlite"
    freeze(db, tmp_path)
    argv = ["sellers", "unfreeze", "--ledger", str(db), "--seller", "A"]
    assert main([*argv, "--reason", "invoices checked", "--date", "2026-03-02"]) == 0
    assert "seller A unfrozen from 2026-03-02: its 3 strike(s)" in capsys.readouterr().out
    assert status(db, "A", DAY + dt.timedelta(days=1)) == ("active", 0)
    assert status(db, "A", DAY) == ("frozen", 3)  # as it was before the appeal
    out = nightly(tmp_path, plan, db, honest("A", 2, "after"), DAY + dt.timedelta(days=2))
    assert out.get_column("decision").to_list() == ["allow", "allow"]
    # unfreezing a seller who is not frozen is refused; --reason is required
    assert main([*argv, "--reason", "again"]) == 2
    assert "seller A is not frozen" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(argv)
    # new strikes after the unfreeze count again
    complaints = tmp_path / "later.csv"
    complaints.write_text(
        "seller_id,listing_id,brand,date\n"
        + "".join(f"A,A-later{i},Gucci,2026-03-10\n" for i in range(3))
    )
    assert main(["complaints", "add", str(complaints), "--ledger", str(db)]) == 0
    assert status(db, "A", DAY + dt.timedelta(days=10)) == ("frozen", 3)
    with Ledger(db, create=False) as led:
        assert led.strikes(as_of=DAY + dt.timedelta(days=10), seller="A").height == 6
        assert led.events().get_column("reason").to_list() == ["invoices checked"]


@pytest.mark.parametrize(
    "argv",
    [
        ["sellers", "--ledger", "{db}"],
        ["strikes", "list", "--ledger", "{db}"],
        ["strikes", "remove", "--ledger", "{db}", "--listing", "x"],
        ["sellers", "unfreeze", "--ledger", "{db}", "--seller", "s", "--reason", "r"],
    ],
)
def test_commands_that_read_a_ledger_refuse_one_that_is_not_there(
    tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "typo.sqlite"
    assert main([a.format(db=db) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{db}: no such strike ledger" in err
    assert not db.exists()
    # an SQLite file that is not a ledger is not made into one
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    assert main([a.format(db=other) for a in argv]) == 2
    assert "not a strike ledger" in capsys.readouterr().err
    with sqlite3.connect(other) as con:
        assert [r[0] for r in con.execute("SELECT name FROM sqlite_master")] == ["t"]


def test_as_of_errors_name_the_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "ledger.sqlite"
    Ledger(db).close()
    assert main(["sellers", "--ledger", str(db), "--as-of", "yesterday"]) == 2
    assert "--as-of 'yesterday' is not YYYY-MM-DD" in capsys.readouterr().err
    assert main(["sellers", "--ledger", str(db)]) == 0


def test_a_ledger_from_before_appeals_is_read_and_amended(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite"
    with sqlite3.connect(db) as con:
        con.execute(
            "CREATE TABLE strikes (seller_id TEXT NOT NULL, listing_id TEXT NOT NULL, "
            "brand TEXT, date TEXT NOT NULL, source TEXT NOT NULL, run_id TEXT, "
            "PRIMARY KEY (seller_id, listing_id))"
        )
        con.executemany(
            "INSERT INTO strikes VALUES (?, ?, NULL, ?, 'block', NULL)",
            [("S", f"l{i}", DAY.isoformat()) for i in range(3)],
        )
    assert status(db, "S", DAY) == ("frozen", 3)
    with Ledger(db, create=False) as led:
        led.unfreeze("S", date=DAY, reason="appeal")
    assert status(db, "S", DAY) == ("active", 0)
    with pytest.raises(FakestopError, match="not frozen"), Ledger(db, create=False) as led:
        led.unfreeze("S", date=DAY, reason="appeal")
