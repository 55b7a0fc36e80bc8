"""The Spark engine: same rows as the local engine, independent of partitioning, safe commits.

Runs on ``local[2]``; skipped with a reason where Java or PySpark is absent.
"""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import polars as pl
import pytest

from models.fusion import LearnedFusion
from pipelines.registry import Registry, load_registry
from pipelines.stages import ScoringPlan, score_frame
from tests.test_run import marketplace

pyspark = pytest.importorskip("pyspark", reason="the spark extra is not installed")
if shutil.which("java") is None:
    pytest.skip("Java is not on PATH: Spark cannot start", allow_module_level=True)

DAY = dt.date(2026, 11, 1)


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from pipelines.spark import spark_session

    session = spark_session("local[2]")
    session.conf.set("spark.sql.shuffle.partitions", "4")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def plan(tiny_registry: Registry) -> ScoringPlan:
    return ScoringPlan.build(tiny_registry)


def frame(n: int = 4000) -> pl.DataFrame:
    # a position column to align rows; prices spread so robust statistics matter
    return marketplace(n).with_row_index("pos").with_columns(pl.col("pos").cast(pl.Int64))


def spark_rows(spark: Any, paths: list[str], plan: ScoringPlan, out: Path) -> pl.DataFrame:
    from pipelines.spark import score_spark

    score_spark(spark, paths, plan, str(out), run_date=DAY)
    return pl.read_parquet(out / f"run_date={DAY.isoformat()}" / "*.parquet").sort("pos")


def assert_same(a: pl.DataFrame, b: pl.DataFrame) -> None:
    assert a.columns == b.columns
    assert a.height == b.height
    for c in a.columns:
        if a.schema[c] == pl.Float64:
            diff = cast(float | None, (a[c] - b[c]).abs().fill_null(0.0).max())
            assert a[c].is_null().equals(b[c].is_null()), c
            assert diff is None or diff <= 1e-9, (c, diff)
        else:
            assert a[c].equals(b[c]), c


def test_spark_output_equals_local_output(spark: Any, plan: ScoringPlan, tmp_path: Path) -> None:
    data = frame()
    src = tmp_path / "in.parquet"
    data.write_parquet(src)
    local = score_frame(data, plan).sort("pos")
    got = spark_rows(spark, [str(src)], plan, tmp_path / "out")
    assert_same(got, local)
    assert (got["status"] == "quarantined").sum() == 7  # repeated ids, found across partitions


def test_results_do_not_depend_on_partitioning(
    spark: Any, plan: ScoringPlan, tmp_path: Path
) -> None:
    data = frame()
    one = tmp_path / "one.parquet"
    data.write_parquet(one)
    parts = tmp_path / "parts"
    parts.mkdir()
    # the same rows split into uneven files: each task sees a different slice
    bounds = [0, 100, 1300, 1400, 3000, data.height]
    for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        data.slice(lo, hi - lo).write_parquet(parts / f"p{i}.parquet")
    a = spark_rows(spark, [str(one)], plan, tmp_path / "a")
    b = spark_rows(spark, [str(parts)], plan, tmp_path / "b")
    assert_same(a, b)
    assert a["price_score"].drop_nulls().len() > 0


def test_failed_job_keeps_previous_partition_and_rerun_has_no_duplicates(
    spark: Any, plan: ScoringPlan, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    good = tmp_path / "good"
    good.mkdir()
    data = frame(2000)
    data.slice(0, 1000).write_parquet(good / "a.parquet")
    data.slice(1000, 1000).write_parquet(good / "b.parquet")
    first = spark_rows(spark, [str(good)], plan, out)
    assert first.height == 2000

    bad = tmp_path / "bad"
    shutil.copytree(good, bad)
    (bad / "c.parquet").write_bytes(b"PAR1 this is not a parquet file PAR1")
    with pytest.raises(Exception):  # noqa: B017 - Spark wraps the reader's error in its own types
        spark_rows(spark, [str(bad)], plan, out)
    after_failure = pl.read_parquet(out / f"run_date={DAY.isoformat()}" / "*.parquet").sort("pos")
    assert after_failure.equals(first)

    again = spark_rows(spark, [str(good)], plan, out)
    assert again.height == 2000 and again["pos"].is_unique().all()


@pytest.fixture(scope="module")
def learned_plan(plan: ScoringPlan, tiny_registry: Registry) -> ScoringPlan:
    from dataclasses import replace

    from models.fusion import train

    labelled = frame(3000)
    scored = score_frame(labelled, plan, keep_evidence=True)
    # five titles make a model of few distinct risks: degenerate, but what is compared here is
    # Spark against the local engine, not the model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fusion = train(
            scored,
            registry_fingerprint=tiny_registry.fingerprint,
            folds=3,
            seed=0,
            allow_degenerate=True,
        )
    return replace(plan, fusion=fusion, thresholds=fusion.thresholds)


def test_a_model_input_the_listings_lack_is_said_once_on_spark(
    spark: Any, learned_plan: ScoringPlan, tmp_path: Path
) -> None:
    """As the local engine says it: the listings lack an input the model was trained with."""
    import copy
    from dataclasses import replace

    from pipelines.errors import MissingInputWarning

    # the model as `fakestop train` records it: trained with the listings' seller ids
    fusion = copy.deepcopy(learned_plan.fusion)
    assert isinstance(fusion, LearnedFusion)
    fusion.card = {**fusion.card, "inputs": {"trained_with": ["seller_id"]}}
    learned_plan = replace(learned_plan, fusion=fusion)
    assert learned_plan.missing_inputs([]) == ["seller_id"]
    src = tmp_path / "no_sellers.parquet"
    frame(200).drop("seller_id").write_parquet(src)
    with pytest.warns(MissingInputWarning, match="seller_id") as said:
        spark_rows(spark, [str(src)], learned_plan, tmp_path / "out")
    assert sum(issubclass(w.category, MissingInputWarning) for w in said) == 1
    # a column that is there but empty is missing too
    empty = tmp_path / "empty_sellers.parquet"
    frame(200).with_columns(pl.lit(None, dtype=pl.String).alias("seller_id")).write_parquet(empty)
    with pytest.warns(MissingInputWarning, match="seller_id"):
        spark_rows(spark, [str(empty)], learned_plan, tmp_path / "out2")


def test_seller_aggregates_with_a_model_do_not_depend_on_partitioning(
    spark: Any, learned_plan: ScoringPlan, tmp_path: Path
) -> None:
    """The seller shares the model reads span the whole input, not one task's slice."""
    data = frame()
    assert data["seller_id"].n_unique() < data.height / 3  # sellers with many listings
    one = tmp_path / "one.parquet"
    data.write_parquet(one)
    parts = tmp_path / "parts"
    parts.mkdir()
    bounds = [0, 700, 1500, 2900, data.height]
    for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        data.slice(lo, hi - lo).write_parquet(parts / f"p{i}.parquet")
    local = score_frame(data, learned_plan).sort("pos")
    a = spark_rows(spark, [str(one)], learned_plan, tmp_path / "a")
    b = spark_rows(spark, [str(parts)], learned_plan, tmp_path / "b")
    assert_same(a, local)
    assert_same(b, local)
    # the seller statistics are those of the whole input, which per-file ones are not
    import pickle
    import uuid

    from pipelines.spark import _evidence_job, _with_positions, run_statistics
    from pipelines.stages import evidence_frame
    from pipelines.statistics import statistics_of

    def local_stats(part: pl.DataFrame) -> pl.DataFrame:
        found = evidence_frame(part, learned_plan)
        table = statistics_of([found], learned_plan.filters).table("seller")
        assert table is not None
        return table.sort("seller_id")

    bc = spark.sparkContext.broadcast((uuid.uuid4().hex, pickle.dumps(learned_plan)))
    try:
        df = _with_positions(spark.read.parquet(str(parts)))
        evidence, _ = _evidence_job(df, learned_plan, bc)
        table = run_statistics(evidence, learned_plan).table("seller")
        assert table is not None
        distributed = table.sort("seller_id")
    finally:
        bc.unpersist()
    whole = local_stats(data)
    assert_same(distributed, whole)
    first_file = local_stats(data.slice(0, 700))
    assert not first_file.equals(whole.filter(pl.col("seller_id").is_in(first_file["seller_id"])))


def test_photos_are_hashed_on_the_executors_like_locally(
    spark: Any, seed_registry: Registry, tmp_path: Path
) -> None:
    """Image paths resolve under the images root on the executors, with the local safety
    rules: the same image scores and reasons as the local engine, a path leaving the root and
    a broken file get a null score and a reason."""
    from seeds.images import attach_images, sample_registry
    from seeds.marketplace import generate_marketplace

    brands = ["Gucci", "Rolex", "Nike", "Chanel", "Prada", "Omega"]
    reg_dir = sample_registry(seed_registry, tmp_path / "registry", brands, seed=3)
    registry = load_registry(reg_dir)
    images = tmp_path / "images"
    market = generate_marketplace(registry, n=3000, seed=5, true_brand=True)
    # listings of the brands with photos, and as many of others
    ours = pl.col("true_brand").is_in(brands)
    market = pl.concat([market.filter(ours), market.filter(~ours).head(60)])
    market = attach_images(market, registry, images, seed=5, share=0.8).drop("true_brand")
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    hostile = {0: "../registry/brands.csv", 1: "broken.jpg", 2: str(reg_dir / "brands.csv")}
    market = market.with_row_index("pos").with_columns(
        pl.col("pos").cast(pl.Int64),
        pl.col("pos")
        .replace_strict(hostile, default=pl.col("image"), return_dtype=pl.String)
        .alias("image"),
    )
    src = tmp_path / "in.parquet"
    market.write_parquet(src)
    plan = ScoringPlan.build(registry, images_root=images)
    local = score_frame(market, plan).sort("pos")
    got = spark_rows(spark, [str(src)], plan, tmp_path / "out")
    assert_same(got, local)
    assert got["image_score"].drop_nulls().gt(0).sum() > 0, "no photo was matched"
    reasons = got.sort("pos")["reasons"].to_list()
    assert got["image_score"].head(3).is_null().all()
    assert any("escapes the images directory" in r for r in reasons[0])
    assert any("image not usable" in r for r in reasons[1])
    assert any("escapes the images directory" in r for r in reasons[2])


def test_a_failing_spark_job_is_one_line_without_a_java_trace(
    spark: Any, tiny_registry_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipelines.cli import main

    src = tmp_path / "listings.parquet"
    src.write_bytes(b"PAR1 this is not a Parquet file at all PAR1")
    argv = ["score", str(src), "--registry", str(tiny_registry_dir), "--out",
            f"{tmp_path}/out/", "--engine", "spark", "--master", "local[2]", "--quiet"]  # fmt: skip
    try:
        assert main(argv) == 2
    finally:
        spark.sparkContext.setLogLevel("ERROR")
    err = capsys.readouterr().err
    assert err.startswith("fakestop: error: Spark: ") and err.count("\n") == 1, err
    assert "\tat " not in err and "Traceback" not in err


def test_export_headers_are_matched_on_spark(spark: Any, plan: ScoringPlan, tmp_path: Path) -> None:
    data = frame(200).rename({"listing_id": "Listing_ID", "title": "Item Title"})
    src = tmp_path / "in.parquet"
    data.write_parquet(src)
    from pipelines.config import Settings

    mapped = ScoringPlan(
        registry=plan.registry,
        filters=plan.filters,
        fusion=plan.fusion,
        thresholds=plan.thresholds,
        settings=Settings(columns={"title": "Item Title"}),
    )
    got = spark_rows(spark, [str(src)], mapped, tmp_path / "out")
    local = score_frame(frame(200), plan).sort("pos")
    assert_same(got, local)


@pytest.mark.parametrize("partitions", [1, 4, 16])
def test_results_with_a_model_are_the_local_ones_on_1_4_and_16_partitions(
    spark: Any, learned_plan: ScoringPlan, tmp_path: Path, partitions: int
) -> None:
    """Risk within 1e-12 and the same decisions and reasons as the local engine, however many
    tasks the input is cut into; and with the local run's statistics given, in one pass."""
    from pipelines.spark import score_spark
    from pipelines.stages import evidence_frame
    from pipelines.statistics import statistics_of

    data = frame(3000)
    parts = tmp_path / "parts"
    parts.mkdir()
    step = -(-data.height // partitions)
    for i in range(partitions):
        data.slice(i * step, step).write_parquet(parts / f"p{i:02d}.parquet")
    # every file a task of its own
    spark.conf.set("spark.sql.files.openCostInBytes", str(128 * 2**20))
    try:
        assert spark.read.parquet(str(parts)).rdd.getNumPartitions() == partitions
        local = score_frame(data, learned_plan).sort("pos")
        got = spark_rows(spark, [str(parts)], learned_plan, tmp_path / "out")
        assert_same(got, local)
        assert (got["risk"] - local["risk"]).abs().max() <= 1e-12  # type: ignore[operator]
        stats = statistics_of([evidence_frame(data, learned_plan)], learned_plan.filters)
        score_spark(
            spark, [str(parts)], learned_plan, str(tmp_path / "given"), run_date=DAY,
            statistics=stats,
        )  # fmt: skip
        given = pl.read_parquet(tmp_path / "given" / f"run_date={DAY}" / "*.parquet").sort("pos")
        assert_same(given, local)
    finally:
        spark.conf.unset("spark.sql.files.openCostInBytes")
    assert local["decision"].n_unique() >= 2
