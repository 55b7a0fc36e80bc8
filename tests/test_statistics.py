"""Run statistics: mergeable aggregates (exact, or a KLL sketch within its stated bound), the
statistics file, and what unseen sellers and groups get."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filters.aggregates import GroupQuantiles, GroupSums, rank_error
from pipelines.config import Settings
from pipelines.registry import Registry, load_registry
from pipelines.stages import ScoringPlan, evidence_frame, final_frame
from pipelines.statistics import (
    RunStatistics,
    StatisticsError,
    load_statistics,
    statistics_identity,
    statistics_of,
)
from tests.test_run import marketplace


def merged_in_pieces(
    agg: GroupQuantiles | GroupSums, frame: pl.DataFrame, cuts: list[int], seed: int
) -> pl.DataFrame:
    """The partial of ``frame`` made from pieces cut at ``cuts``, merged in a shuffled order
    and grouping."""
    bounds = [0, *sorted(c for c in cuts if 0 < c < frame.height), frame.height]
    parts = [agg.partial(frame.slice(a, b - a)) for a, b in itertools.pairwise(bounds)]
    random.Random(seed).shuffle(parts)
    while len(parts) > 1:
        k = random.Random(seed + len(parts)).randint(2, len(parts))
        parts = [agg.merge(parts[:k]), *parts[k:]]
    return parts[0]


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),
            st.sampled_from([-1.5, 0.0, 0.25, 2.0, 3.5, 7.0]) | st.floats(-50, 50),
        ),
        min_size=1,
        max_size=80,
    ),
    cuts=st.lists(st.integers(0, 80), max_size=6),
    seed=st.integers(0, 1000),
)
def test_exact_quantiles_are_numpys_whatever_the_pieces(
    rows: list[tuple[str, float]], cuts: list[int], seed: int
) -> None:
    frame = pl.DataFrame(rows, schema={"g": pl.String, "v": pl.Float64}, orient="row")
    agg = GroupQuantiles(("g",), "v")
    whole = agg.result(agg.partial(frame))
    assert whole.equals(agg.result(merged_in_pieces(agg, frame, cuts, seed)))
    for g, median, mad, n, exact in whole.iter_rows():
        values = frame.filter(pl.col("g") == g).get_column("v").to_numpy()
        assert exact and n == len(values)
        assert median == pytest.approx(np.median(values), abs=1e-12)
        assert mad == pytest.approx(np.median(np.abs(values - np.median(values))), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["s1", "s2", "s3", None]), st.integers(0, 1), st.integers(0, 1)),
        max_size=60,
    ),
    cuts=st.lists(st.integers(0, 60), max_size=5),
    seed=st.integers(0, 1000),
)
def test_group_sums_merge_in_any_order(
    rows: list[tuple[str | None, int, int]], cuts: list[int], seed: int
) -> None:
    frame = pl.DataFrame(rows, schema={"k": pl.String, "x": pl.Int64, "y": pl.Int64}, orient="row")
    agg = GroupSums("k", ("x", "y"))
    whole = agg.merge([agg.partial(frame)]).sort("k")
    assert whole.equals(merged_in_pieces(agg, frame, cuts, seed).sort("k"))
    expected = (
        frame.drop_nulls("k")
        .group_by("k")
        .agg(pl.len().cast(pl.Int64).alias("n"), pl.col("x").sum(), pl.col("y").sum())
        .sort("k")
    )
    assert whole.equals(expected)


def test_sketched_groups_stay_within_the_sketch_error_bound() -> None:
    """Beyond ``max_exact_rows`` distinct values the largest groups are sketched (KLL); their
    median's rank and the share within median +- MAD stay within the documented bounds."""
    rng = np.random.default_rng(3)
    n = 120_000
    values = {
        "big": rng.lognormal(3.0, 0.8, n),
        "wide": rng.normal(0.0, 5.0, n).round(3),  # repeated values
        "small": rng.normal(1.0, 1.0, 300),
    }
    frame = pl.concat(pl.DataFrame({"g": [g] * len(v), "v": v}) for g, v in values.items()).sample(
        fraction=1.0, shuffle=True, seed=1
    )
    agg = GroupQuantiles(("g",), "v", max_exact_rows=5_000)
    parts = [agg.partial(frame.slice(i, 20_000)) for i in range(0, frame.height, 20_000)]
    result = agg.result(agg.merge(parts))
    by_group = {row[0]: row for row in result.iter_rows()}
    eps, eps_all = rank_error(), rank_error(all_quantiles=True)
    assert 0.01 < eps < eps_all < 0.02
    for g in ("big", "wide"):
        _, median, mad, count, exact = by_group[g]
        v = np.sort(values[g])
        assert not exact and count == n
        rank = (np.searchsorted(v, median, "left") + np.searchsorted(v, median, "right")) / 2 / n
        assert abs(rank - 0.5) <= eps
        within = np.mean(np.abs(v - median) <= mad)
        assert abs(within - 0.5) <= 2 * eps_all
        # and the MAD close to the exact one (a lognormal's MAD is about 0.47 of its median)
        exact_mad = np.median(np.abs(v - np.median(v)))
        assert mad == pytest.approx(exact_mad, rel=0.1)
    # the small group kept its exact statistics
    _, median, mad, count, exact = by_group["small"]
    assert exact and count == 300 and median == pytest.approx(np.median(values["small"]))


@pytest.fixture(scope="module")
def plan(tiny_registry: Registry) -> ScoringPlan:
    return ScoringPlan.build(tiny_registry)


def built(plan: ScoringPlan, frame: pl.DataFrame) -> RunStatistics:
    identity = statistics_identity(plan.registry, plan.settings, plan.filters)
    return statistics_of([evidence_frame(frame, plan)], plan.filters, identity=identity)


def test_a_statistics_file_round_trips_and_refuses_what_it_cannot_vouch_for(
    tmp_path: Path, plan: ScoringPlan, tiny_registry_dir: Path
) -> None:
    stats = built(plan, marketplace(2000))
    path = stats.save(tmp_path / "stats.parquet")
    loaded = load_statistics(path, plan)
    assert loaded.fingerprint == stats.fingerprint
    for name, table in stats.tables.items():
        assert loaded.tables[name].equals(table), name
    assert loaded.summary()["sellers"] == 50 and loaded.summary()["price_groups"] > 0

    # a value changed, the metadata kept: the fingerprint no longer matches
    table = pq.read_table(path)
    column = table.column("price_group_median").to_pylist()
    at = next(i for i, v in enumerate(column) if v is not None)
    column[at] += 0.001
    altered = table.set_column(
        table.schema.get_field_index("price_group_median"), "price_group_median", [column]
    )
    pq.write_table(altered.replace_schema_metadata(table.schema.metadata), tmp_path / "alt.parquet")
    with pytest.raises(StatisticsError, match="does not match its fingerprint"):
        load_statistics(tmp_path / "alt.parquet", plan)

    other_registry = tmp_path / "registry"
    other_registry.mkdir()
    text = (tiny_registry_dir / "brands.csv").read_text()
    (other_registry / "brands.csv").write_text(text.replace("9500", "9600"))
    other = ScoringPlan.build(load_registry(other_registry))
    with pytest.raises(StatisticsError, match="built with another registry"):
        load_statistics(path, other)
    rates = {**Settings().rates, "EUR": 1.2}
    configured = ScoringPlan.build(plan.registry, settings=Settings(rates=rates))
    with pytest.raises(StatisticsError, match=r"another configuration \(differs in rates\)"):
        load_statistics(path, configured)

    pl.DataFrame({"x": [1]}).write_parquet(tmp_path / "plain.parquet")
    with pytest.raises(StatisticsError, match="not a fakestop statistics file"):
        load_statistics(tmp_path / "plain.parquet", plan)
    with pytest.raises(StatisticsError, match="does not exist"):
        load_statistics(tmp_path / "missing.parquet", plan)


def test_unseen_sellers_count_as_one_listing_and_unseen_groups_give_no_z(
    plan: ScoringPlan,
) -> None:
    # 60 Rolex watches around $5,000 from sellers s0..s3, and one at $900 from a new seller
    n = 60
    known = pl.DataFrame(
        {
            "listing_id": [f"k{i}" for i in range(n)],
            "title": ["Rolex Submariner"] * n,
            "price": [5000.0 * (1 + (i % 7) / 20) for i in range(n)],
            "category": ["watches"] * n,
            "seller_id": [f"s{i % 4}" for i in range(n)],
        }
    )
    stats = built(plan, known)
    one = pl.DataFrame(
        {
            "listing_id": ["x"],
            "title": ["Rolex Submariner"],
            "price": [900.0],
            "category": ["watches"],
            "seller_id": ["new"],
        }
    )
    evidence = evidence_frame(one, plan)
    with_stats = final_frame(evidence, plan, stats, one.columns, keep_evidence=True).row(
        0, named=True
    )
    assert with_stats["seller_listings"] == 1  # a seller with this one listing
    assert with_stats["seller_share_high_text"] == 0.0
    assert with_stats["price_robust_z"] < -2.5
    assert any("robust SDs below the median for Rolex watches (60 listings)" in r
               for r in with_stats["reasons"])  # fmt: skip
    # statistics of no listing: no group is known
    empty = RunStatistics.empty(plan.filters)
    alone = final_frame(evidence, plan, empty, one.columns, keep_evidence=True).row(0, named=True)
    assert alone["price_robust_z"] is None and alone["seller_listings"] == 1
    assert alone["risk"] <= with_stats["risk"]
    # a known seller's shares are the statistics', not the listing's
    again = final_frame(
        evidence_frame(one.with_columns(pl.lit("s1").alias("seller_id")), plan),
        plan,
        stats,
        one.columns,
        keep_evidence=True,
    ).row(0, named=True)
    assert again["seller_listings"] == 15
