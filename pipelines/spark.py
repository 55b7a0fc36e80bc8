"""Scale-out on Apache Spark: the same scoring chain, run by ``DataFrame.mapInArrow``.

The driver loads the registry and model once and broadcasts the fitted plan; each Python worker
unpacks it once and scores Arrow batches with :func:`pipelines.stages.score_frame`, exactly as
the local engine does. What the local engine computes over the whole input is computed here as
a distributed step first, so results do not depend on partitioning:

- duplicate ids: a window over ``listing_id`` ordered by input position marks later repeats;
- run-level filter statistics (robust price statistics per brand and category, the seller
  shares the trained model reads): the per-row values are produced by ``mapInArrow``,
  aggregated (exact percentiles, per-seller means), and broadcast.

Output is Parquet partitioned by ``run_date`` and written with dynamic partition overwrite: a
failed job leaves the previous run's partition untouched, and a rerun replaces the partition
instead of appending to it.

Submit to a cluster (no master is hard-coded here)::

    spark-submit --master yarn pipelines/spark.py LISTINGS --registry DIR --out OUT_DIR \\
        [--images DIR] [--model MODEL] [--run-date YYYY-MM-DD]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import pickle
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from pipelines.errors import FakestopError
from pipelines.schema import (
    PARQUET_SUFFIXES,
    ROW,
    SEEN_EARLIER,
    conform,
    input_renames,
    resolve_sources,
)
from pipelines.stages import ScoringPlan, score_frame, statistic_values

if TYPE_CHECKING:
    from pyspark.broadcast import Broadcast
    from pyspark.sql import DataFrame, SparkSession

#: per Python worker: the plan unpacked from each broadcast, so it is unpacked once per worker
_PLANS: dict[str, ScoringPlan] = {}
RUN_DATE = "run_date"
#: which filter a row of the statistics pass belongs to
FILTER_COLUMN = "__filter"


#: Spark master URLs fakestop passes on (a typo would otherwise fail deep in the JVM)
MASTER_URL = re.compile(
    r"local(\[(\*|\d+)(,\d+)?\])?|local-cluster\[\d+,\d+,\d+\]|spark://[^\s/]+:\d+(,[^\s/]+:\d+)*"
    r"|yarn|k8s://\S+"
)
#: the oldest Java that Spark 4 runs on
JAVA_MAJOR = 17


def check_master(master: str) -> None:
    """Refuse a master URL Spark would not accept, in one line."""
    if not MASTER_URL.fullmatch(master):
        raise FakestopError(
            f"--master {master!r} is not a Spark master URL "
            "(local, local[N], local[*], spark://HOST:PORT, yarn, k8s://URL)"
        )


def check_java() -> None:
    """Refuse to start Spark without a Java it runs on, in one line (instead of the JVM
    gateway's failure and stack trace)."""
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not java or not os.access(java, os.X_OK):
        where = f"JAVA_HOME={home} has no bin/java" if home else "no java on PATH"
        raise FakestopError(f"--engine spark needs Java {JAVA_MAJOR} or later: {where}")
    try:
        found = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise FakestopError(f"--engine spark: cannot run {java} ({exc})") from None
    version = re.search(r'version "(\d+)(?:\.(\d+))?', found.stderr + found.stdout)
    if version is None:
        raise FakestopError(f"--engine spark: {java} -version says no version")
    major = int(version.group(1))
    if major == 1 and version.group(2):  # "1.8.0_392" is Java 8
        major = int(version.group(2))
    if major < JAVA_MAJOR:
        raise FakestopError(
            f"--engine spark needs Java {JAVA_MAJOR} or later; {java} is Java {major}"
        )


def check_inputs(listings: Sequence[str]) -> None:
    """Refuse, in one line, local inputs that Spark's Parquet reader would fail on with a
    stack trace: missing paths and files of other formats. Paths with a scheme (hdfs://,
    s3a://) are left to Spark."""
    for text in listings:
        if "://" in text:
            continue
        for f in resolve_sources(text):
            if f.suffix.lower() not in PARQUET_SUFFIXES:
                kind = f.suffix.lower().lstrip(".").upper() or "not Parquet"
                raise FakestopError(
                    f"{f}: --engine spark reads Parquet only and this is {kind}; score it "
                    "with the local engine (the default), or convert it to Parquet"
                )


def spark_error(exc: BaseException) -> FakestopError:
    """A Spark or JVM failure as one line: its first line, without the Java stack trace."""
    text = str(exc).strip()
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    java = re.search(r"(?:Exception|Error): (.+)", text)
    if java and (not first or first.startswith(("An error occurred", "py4j"))):
        first = java.group(1).strip()
    return FakestopError(f"Spark: {first or type(exc).__name__}")


def spark_session(master: str | None = None, *, app: str = "fakestop") -> SparkSession:
    """A session for fakestop; ``master`` None leaves it to ``spark-submit``'s configuration."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app).config(
        "spark.sql.sources.partitionOverwriteMode", "dynamic"
    )
    if master is not None:
        builder = builder.master(master)
        if master.startswith("local"):
            # the scoring chain has a fixed cost per Arrow batch: Spark's 10,000 rows is small
            builder = builder.config("spark.sql.execution.arrow.maxRecordsPerBatch", "50000")
        if master.startswith("local") and not os.environ.get("PYSPARK_PYTHON"):
            # local workers must run this interpreter, which has fakestop installed
            os.environ["PYSPARK_PYTHON"] = sys.executable
    return builder.getOrCreate()


def _plan(bc: Broadcast[tuple[str, bytes]]) -> ScoringPlan:
    token, payload = bc.value
    plan = _PLANS.get(token)
    if plan is None:
        # bytes pickled by this run's own driver, never a user-supplied file
        plan = _PLANS[token] = pickle.loads(payload)
    return plan


def _frame(rb: pa.RecordBatch, plan: ScoringPlan) -> pl.DataFrame:
    frame = pl.DataFrame(pa.Table.from_batches([rb]))
    return conform(frame, source="Spark partition", settings=plan.settings)


def _empty_input(schema: pa.Schema, plan: ScoringPlan) -> pl.DataFrame:
    return conform(pl.DataFrame(schema.empty_table()), source="listings", settings=plan.settings)


def _spark_arrow_type(t: pa.DataType) -> pa.DataType:
    """Arrow types Spark accepts: plain strings and lists instead of large/view variants."""
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_list(t) or pa.types.is_list_view(t) or pa.types.is_list(t):
        return pa.list_(_spark_arrow_type(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(_spark_arrow_type(f.type)) for f in t])
    return t


def output_arrow_schema(input_schema: pa.Schema, plan: ScoringPlan) -> pa.Schema:
    """The output schema, declared once: what the local engine produces for this input."""
    schema = score_frame(_empty_input(input_schema, plan), plan).to_arrow().schema
    return pa.schema([f.with_type(_spark_arrow_type(f.type)) for f in schema])


def _spark_schema(schema: pa.Schema) -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


#: repeated ids up to this many are broadcast to the tasks; more are joined by a shuffle
BROADCAST_REPEATS = 1_000_000


def _with_positions(df: DataFrame) -> DataFrame:
    """Input position and, per id, whether an earlier row had the same id.

    "Earlier" follows the local engine's order: files sorted by path, rows in file order
    (Spark packs files into tasks by size, so task order alone would not do). Only the ids
    that occur more than once are gathered and joined back: the listings keep their input
    partitioning instead of being shuffled by id into many small tasks.
    """
    from pyspark.sql import functions as F

    df = df.withColumn("__file", F.input_file_name()).withColumn(
        ROW, F.monotonically_increasing_id()
    )
    first = F.min(F.struct("__file", ROW))
    repeated = (
        df.where(F.col("listing_id").isNotNull())
        .groupBy("listing_id")
        .agg(F.count(F.lit(1)).alias("__n"), first.alias("__first"))
        .where(F.col("__n") > 1)
        .select(
            "listing_id",
            F.col("__first.__file").alias("__first_file"),
            F.col(f"__first.{ROW}").alias("__first_row"),
        )
    )
    if repeated.count() <= BROADCAST_REPEATS:
        repeated = F.broadcast(repeated)
    marked = df.join(repeated, on="listing_id", how="left")
    earlier = F.col("__first_file").isNotNull() & ~(
        (F.col("__file") == F.col("__first_file")) & (F.col(ROW) == F.col("__first_row"))
    )
    # the join puts its key first: keep the input's column order
    return marked.select(*df.columns, earlier.alias(SEEN_EARLIER))


def _price_statistics(values: DataFrame) -> DataFrame:
    """Exact median and MAD of the log price per (brand, reference category)."""
    from pyspark.sql import functions as F

    keys = ["__pb", "__refcat"]
    med = values.groupBy(*keys).agg(
        F.percentile("__logp", 0.5).alias("price_group_median"),
        F.count(F.lit(1)).cast("long").alias("price_group_n"),
    )
    mad = (
        values.join(med, keys)
        .withColumn("__dev", F.abs(F.col("__logp") - F.col("price_group_median")))
        .groupBy(*keys)
        .agg(F.percentile("__dev", 0.5).alias("price_group_mad"))
    )
    return med.join(mad, keys).select(
        *keys, "price_group_median", "price_group_mad", "price_group_n"
    )


def _seller_statistics(values: DataFrame) -> DataFrame:
    """Per seller: the mean of each flag and the number of listings."""
    from pyspark.sql import functions as F

    return values.groupBy("seller_id").agg(
        F.avg("__high_text").alias("seller_share_high_text"),
        F.avg("__low_lux").alias("seller_luxury_low_price"),
        F.count(F.lit(1)).cast("long").alias("seller_listings"),
    )


#: distributed versions of each filter's ``statistics_from_values``
SPARK_AGGREGATIONS = {"price": _price_statistics, "seller": _seller_statistics}


def run_statistics(
    df: DataFrame, plan: ScoringPlan, bc: Broadcast[tuple[str, bytes]]
) -> dict[str, pl.DataFrame]:
    """Run-level statistics over the whole input, as a distributed aggregation.

    One ``mapInArrow`` pass yields every filter's per-row values (the scoring chain runs once
    per batch); its output holds each filter's columns prefixed ``<filter>__`` and a
    ``__filter`` column saying whose row it is.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    probe = statistic_values(_empty_input(_arrow_schema(df), plan), plan)
    if not probe:
        return {}
    for name in probe:
        if name not in SPARK_AGGREGATIONS:
            raise NotImplementedError(
                f"filter {name!r} has run-level statistics but no Spark aggregation"
            )
    fields = [pa.field(FILTER_COLUMN, pa.string())]
    for name, empty_values in probe.items():
        for f in empty_values.to_arrow().schema:
            fields.append(pa.field(f"{name}__{f.name}", _spark_arrow_type(f.type)))
    schema = pa.schema(fields)

    empty = pl.DataFrame(schema.empty_table())

    def values(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        plan = _plan(bc)
        for rb in batches:
            parts = [
                frame.select(
                    pl.lit(name).alias(FILTER_COLUMN),
                    *(pl.col(c).alias(f"{name}__{c}") for c in frame.columns),
                )
                for name, frame in statistic_values(_frame(rb, plan), plan).items()
            ]
            # an empty frame of every column first: a batch may lack some filter's rows
            table = pl.concat([empty, *parts], how="diagonal_relaxed").to_arrow()
            yield from table.select(schema.names).cast(schema).to_batches()

    every = df.mapInArrow(values, _spark_schema(schema)).persist(StorageLevel.MEMORY_AND_DISK)
    stats: dict[str, pl.DataFrame] = {}
    try:
        for name, empty_values in probe.items():
            own = every.where(F.col(FILTER_COLUMN) == name).select(
                *(F.col(f"`{name}__{c}`").alias(c) for c in empty_values.columns)
            )
            result = SPARK_AGGREGATIONS[name](own)
            # the same column types as the single-machine aggregation
            local = next(f for f in plan.filters if f.name == name)
            local_schema = local.statistics_from_values(empty_values.lazy()).collect_schema()
            stats[name] = pl.DataFrame(result.toArrow()).cast(local_schema)
    finally:
        every.unpersist()
    return stats


def _arrow_schema(df: DataFrame) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(df.schema)


def score_spark(
    spark: SparkSession,
    listings: str | Sequence[str],
    plan: ScoringPlan,
    out: str,
    *,
    run_date: dt.date,
) -> DataFrame:
    """Score Parquet listings on Spark into ``out``/run_date=YYYY-MM-DD/ and return the scored
    DataFrame (already written)."""
    from pyspark.sql import functions as F

    paths = [listings] if isinstance(listings, str) else list(listings)
    from pyspark import StorageLevel

    # read by the statistics pass and the scoring pass: read and mark repeated ids once
    raw = spark.read.parquet(*paths)
    renames = input_renames(raw.columns, plan.settings.columns, source=", ".join(paths))
    if renames:
        raw = raw.withColumnsRenamed(renames)
    df = _with_positions(raw).persist(StorageLevel.MEMORY_AND_DISK)
    bc = spark.sparkContext.broadcast((uuid.uuid4().hex, pickle.dumps(plan)))
    try:
        stats = run_statistics(df, plan, bc)
        input_schema = _arrow_schema(df)
        out_schema = output_arrow_schema(input_schema, plan)

        def scored(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            plan = _plan(bc)
            for rb in batches:
                table = score_frame(_frame(rb, plan), plan, statistics=stats).to_arrow()
                yield from table.cast(out_schema).to_batches()

        result = df.mapInArrow(scored, _spark_schema(out_schema)).withColumn(
            RUN_DATE, F.lit(run_date.isoformat())
        )
        (
            result.write.mode("overwrite")
            .option("partitionOverwriteMode", "dynamic")
            .partitionBy(RUN_DATE)
            .parquet(out)
        )
    finally:
        bc.unpersist()
        df.unpersist()
    return spark.read.parquet(out).where(F.col(RUN_DATE) == run_date.isoformat())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``spark-submit pipelines/spark.py ...``."""
    from pipelines.config import load_settings
    from pipelines.registry import load_registry

    ap = argparse.ArgumentParser(prog="fakestop-spark")
    ap.add_argument(
        "listings", nargs="+", help="Parquet files or directories (any Spark filesystem)"
    )
    ap.add_argument("--registry", required=True)
    ap.add_argument("--images", default=None)
    ap.add_argument("--out", required=True)
    ap.add_argument("--config", default=None)
    ap.add_argument("--model", default=None, help="model file from `fakestop train`")
    ap.add_argument("--run-date", default=None)
    ap.add_argument("--master", default=None)
    args = ap.parse_args(argv)
    run_date = dt.date.fromisoformat(args.run_date) if args.run_date else dt.date.today()
    plan = ScoringPlan.build(
        load_registry(args.registry),
        settings=load_settings(args.config),
        images_root=args.images,
        model=args.model,
    )
    spark = spark_session(args.master)
    score_spark(spark, args.listings, plan, args.out, run_date=run_date)
    return 0


if __name__ == "__main__":
    sys.exit(main())
