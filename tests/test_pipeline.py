"""End to end: every input row comes out once, in order, scored or quarantined with a reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.cli import main
from pipelines.errors import SchemaError
from pipelines.registry import Registry
from pipelines.run import run_score
from pipelines.stages import OUTPUT_SCHEMA, ScoringPlan, score_frame
from tests.conftest import listings


@pytest.fixture(scope="module")
def plan(tiny_registry: Registry) -> ScoringPlan:
    return ScoringPlan.build(tiny_registry)


def test_output_has_contract_columns_and_carries_extras(plan: ScoringPlan) -> None:
    frame = listings(
        title=["Rolex Submariner", "mug"],
        price=[40.0, 5.0],
        brand=["Rolex", None],
        category=["watches", None],
        shop=["s1", "s2"],
    )
    out = score_frame(frame, plan)
    assert out.columns == [*frame.columns, *OUTPUT_SCHEMA]
    for col, dtype in OUTPUT_SCHEMA.items():
        assert out.schema[col] == dtype
    assert out.get_column("shop").to_list() == ["s1", "s2"]
    assert out.get_column("decision")[0] == "block"
    assert out.get_column("matched_brand")[0] == "Rolex"


def test_every_flagged_row_has_a_reason(plan: ScoringPlan) -> None:
    frame = listings(
        title=["Rolex"] * 4,
        price=[40.0, 2000.0, 5000.0, 9000.0],
        brand=["Rolex"] * 4,
        category=["watches"] * 4,
    )
    out = score_frame(frame, plan)
    flagged = out.filter(pl.col("decision") != "allow")
    assert flagged.height > 0
    assert (flagged.get_column("reasons").list.len() > 0).all()


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "d", "", None]),
            st.sampled_from(["Rolex watch", "Gucci bag", "", "  ", None, "mug"]),
            st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=32)),
            st.sampled_from([None, "USD", "EUR", "zzz"]),
        ),
        max_size=20,
    )
)
def test_rows_out_equal_rows_in(rows: list[tuple[object, ...]]) -> None:
    frame = pl.DataFrame(
        rows,
        schema={
            "listing_id": pl.String,
            "title": pl.String,
            "price": pl.Float64,
            "currency": pl.String,
        },
        orient="row",
    )
    out = score_frame(frame, _plan())
    assert out.height == frame.height
    assert out.get_column("listing_id").to_list() == frame.get_column("listing_id").to_list()
    status = out.get_column("status")
    assert status.is_in(["ok", "quarantined"]).all()
    assert out.filter(status == "quarantined").get_column("error").is_not_null().all()
    assert out.filter(status == "ok").get_column("decision").is_not_null().all()


_PLANS: dict[str, ScoringPlan] = {}


def _plan() -> ScoringPlan:
    if "p" not in _PLANS:
        import tempfile

        from pipelines.registry import load_registry
        from tests.conftest import TINY_BRANDS

        d = Path(tempfile.mkdtemp())
        (d / "brands.csv").write_text(TINY_BRANDS, encoding="utf-8")
        _PLANS["p"] = ScoringPlan.build(load_registry(d))
    return _PLANS["p"]


def test_file_and_directory_outputs_hold_the_same_rows(tmp_path: Path, plan: ScoringPlan) -> None:
    src = tmp_path / "in.parquet"
    n = 1000
    listings(
        listing_id=[f"id{i % 900}" for i in range(n)],
        title=["Rolex watch" if i % 3 else "cup" for i in range(n)],
        price=[float(10 + i) for i in range(n)],
    ).write_parquet(src)
    # robust price statistics are per scoring batch, so both layouts use the same batches
    one = run_score(src, plan, tmp_path / "one.parquet", batch_size=300, quiet=True)
    run_score(src, plan, f"{tmp_path}/parts/", batch_size=300, quiet=True)
    a = pl.read_parquet(tmp_path / "one.parquet")
    b = pl.read_parquet(tmp_path / "parts" / "*.parquet")
    assert one.rows_in == one.rows_out == n == a.height
    # duplicate ids across batches are quarantined in both layouts
    assert a.equals(b)
    assert a.get_column("status").value_counts().sort("status").get_column("count").to_list() == [
        900,
        100,
    ]


def test_input_files_whose_extra_columns_differ_give_one_output(
    tmp_path: Path, plan: ScoringPlan
) -> None:
    # a directory of parts exported at different times: a column added later, a count that
    # became fractional; every row is carried through with the union of the columns
    d = tmp_path / "in"
    d.mkdir()
    ids = iter(range(10_000))

    def part(name: str, **extra: list[object]) -> None:
        n = len(next(iter(extra.values()))) if extra else 400
        listings(listing_id=[f"L{next(ids)}" for _ in range(n)], **extra).write_parquet(d / name)

    part("a.parquet", qty=[1] * 400)
    part("b.parquet", qty=[1.5] * 400, notes=["boxed"] * 400)
    part("c.parquet")
    out = tmp_path / "out.parquet"
    summary = run_score(d, plan, out, batch_size=300, quiet=True)
    got = pl.read_parquet(out)
    assert summary.rows_in == got.height == 1200
    assert got.schema["qty"] == pl.Float64 and got.schema["notes"] == pl.String
    assert got.get_column("qty").to_list() == [1.0] * 400 + [1.5] * 400 + [None] * 400
    assert got.get_column("notes").to_list() == [None] * 400 + ["boxed"] * 400 + [None] * 400
    assert got.get_column("listing_id").to_list() == [f"L{i}" for i in range(1200)]
    # the parts of a directory output share that schema, so the directory reads as one table
    run_score(d, plan, f"{tmp_path}/parts/", batch_size=300, quiet=True)
    assert pl.read_parquet(tmp_path / "parts" / "*.parquet").equals(got)


def test_a_glob_of_csv_ndjson_and_parquet_files_gives_one_output(
    tmp_path: Path, plan: ScoringPlan
) -> None:
    # exports of one marketplace in three formats: each file's extra columns differ (CSV
    # reads every value as text), and the directory output still reads as one table
    d = tmp_path / "in"
    d.mkdir()
    listings(listing_id=["p1", "p2"], qty=[1, 2]).write_parquet(d / "a.parquet")
    listings(listing_id=["c1", "c2"], shop=["x", "y"]).write_csv(d / "b.csv")
    listings(listing_id=["n1", "n2"], qty=[0.5, 1.5]).write_ndjson(d / "c.ndjson")
    out = tmp_path / "out.parquet"
    summary = run_score(str(d / "*"), plan, out, batch_size=3, quiet=True)
    got = pl.read_parquet(out)
    assert summary.rows_in == got.height == 6
    assert got.get_column("listing_id").to_list() == ["p1", "p2", "c1", "c2", "n1", "n2"]
    assert got.schema["qty"] == pl.Float64 and got.schema["shop"] == pl.String
    assert got.get_column("qty").to_list() == [1.0, 2.0, None, None, 0.5, 1.5]
    assert got.get_column("shop").to_list() == [None, None, "x", "y", None, None]
    run_score(str(d / "*"), plan, f"{tmp_path}/parts/", batch_size=3, quiet=True)
    parts = sorted((tmp_path / "parts").glob("*.parquet"))
    assert len(parts) == 3  # a batch per file
    assert all(pl.read_parquet_schema(p) == pl.read_parquet_schema(parts[0]) for p in parts)
    assert pl.read_parquet(tmp_path / "parts" / "*.parquet").equals(got)


def test_input_files_whose_columns_cannot_be_combined_fail_before_scoring(
    tmp_path: Path, plan: ScoringPlan
) -> None:
    d = tmp_path / "in"
    d.mkdir()
    listings(listing_id=["a", "b"], sizes=[1, 2]).write_parquet(d / "a.parquet")
    listings(listing_id=["c", "d"], sizes=[[1], [2, 3]]).write_parquet(d / "b.parquet")
    out = tmp_path / "out.parquet"
    with pytest.raises(SchemaError, match="columns cannot be combined"):
        run_score(d, plan, out, quiet=True)
    assert not out.exists()


def test_cli_score_writes_output_and_exits_zero(tmp_path: Path, tiny_registry_dir: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text(
        "listing_id,title,price,brand,category\n1,Rolex watch,40,Rolex,watches\n2,,5,,\n"
    )
    out = tmp_path / "out.parquet"
    code = main(
        ["score", str(src), "--registry", str(tiny_registry_dir), "--out", str(out), "--quiet"]
    )
    assert code == 0
    res = pl.read_parquet(out)
    assert res.get_column("status").to_list() == ["ok", "quarantined"]
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["score", "nope.csv", "--registry", "{reg}", "--out", "{tmp}/o.parquet"], "no such file"),
        (
            ["score", "{tmp}/in.csv", "--registry", "{tmp}/noreg", "--out", "{tmp}/o.parquet"],
            "registry directory does not exist",
        ),
        (
            ["score", "{tmp}/bad.csv", "--registry", "{reg}", "--out", "{tmp}/o.parquet"],
            "missing required column(s) price",
        ),
    ],
)
def test_cli_fatal_errors_are_one_line_without_traceback(
    tmp_path: Path, tiny_registry_dir: Path, args: list[str], message: str
) -> None:
    (tmp_path / "in.csv").write_text("listing_id,title,price\n1,a,3\n")
    (tmp_path / "bad.csv").write_text("listing_id,title\n1,a\n")
    argv = [a.format(tmp=tmp_path, reg=tiny_registry_dir) for a in args]
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *argv], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert not (tmp_path / "o.parquet").exists()
