"""Scale-out on Apache Spark: the same scoring chain, run by ``DataFrame.mapInArrow``.

The driver loads the registry and model once and broadcasts the fitted plan; each Python worker
unpacks it once and runs the local engine's stages (:mod:`pipelines.stages`) on Arrow batches.
What the local engine computes over the whole input is computed here over the whole input too,
so results do not depend on partitioning:

- duplicate ids: only the ids seen more than once are gathered, with their first position in
  input order, and joined back;
- run statistics (:mod:`pipelines.statistics`): one job computes every listing's evidence
  (:func:`pipelines.stages.evidence_frame`, persisted) and each task's partial aggregates; the
  driver merges the partials with the local engine's code and broadcasts the statistics; a
  second, cheap ``mapInArrow`` over the persisted evidence finalises the scores
  (:func:`pipelines.stages.final_frame`). The scoring chain runs once per listing. With given
  statistics (``--stats``) one ``mapInArrow`` scores each batch.

Output is Parquet partitioned by ``run_date`` and written with dynamic partition overwrite: a
failed job leaves the previous run's partition untouched, and a rerun replaces the partition
instead of appending to it.

Submit to a cluster (no master is hard-coded here)::

    spark-submit --master yarn pipelines/spark.py LISTINGS --registry DIR --out OUT_DIR \\
        [--images DIR] [--model MODEL] [--stats STATS] [--run-date YYYY-MM-DD]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import pickle
import re
import shutil
import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from pipelines.errors import FakestopError, MissingInputWarning
from pipelines.schema import PARQUET_SUFFIXES, ROW, conform, input_renames, resolve_sources
from pipelines.stages import ScoringPlan, evidence_frame, final_frame, score_frame
from pipelines.statistics import RunStatistics, StatisticsBuilder, statistics_identity
from pipelines.validation import SEEN_EARLIER

if TYPE_CHECKING:
    from pyspark.broadcast import Broadcast
    from pyspark.sql import DataFrame, SparkSession

#: per Python worker: the plan unpacked from each broadcast, so it is unpacked once per worker
_PLANS: dict[str, ScoringPlan] = {}
RUN_DATE = "run_date"


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


#: the columns the evidence job adds beside the evidence, on the one row per Spark task that
#: carries the task's partial aggregates of one filter (see :func:`run_statistics`)
PARTIAL_FILTER = "__partial_filter"
PARTIAL = "__partial"


def evidence_arrow_schema(input_schema: pa.Schema, plan: ScoringPlan) -> pa.Schema:
    """The evidence job's output: :func:`pipelines.stages.evidence_frame`'s columns for this
    input, and the partial aggregates' two columns."""
    schema = evidence_frame(_empty_input(input_schema, plan), plan).to_arrow().schema
    fields = [f.with_type(_spark_arrow_type(f.type)) for f in schema]
    return pa.schema(
        [*fields, pa.field(PARTIAL_FILTER, pa.string()), pa.field(PARTIAL, pa.binary())]
    )


def _ipc(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_ipc(buf)
    return buf.getvalue()


def _evidence_job(
    df: DataFrame, plan: ScoringPlan, bc: Broadcast[tuple[str, bytes]]
) -> tuple[DataFrame, pa.Schema]:
    """``df``'s evidence, computed once per listing by one ``mapInArrow``, and each task's
    partial aggregates of the run statistics (one row per task and filter, after its
    evidence rows; the builder merges a task's batches as it goes)."""
    schema = evidence_arrow_schema(_arrow_schema(df), plan)
    names = [n for n in schema.names if n not in (PARTIAL_FILTER, PARTIAL)]

    def evidence(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        plan = _plan(bc)
        builder = StatisticsBuilder(plan.filters)
        for rb in batches:
            found = evidence_frame(_frame(rb, plan), plan)
            builder.add(found)
            table = found.select(names).to_arrow()
            table = table.append_column(
                pa.field(PARTIAL_FILTER, pa.string()), pa.nulls(table.num_rows, pa.string())
            ).append_column(pa.field(PARTIAL, pa.binary()), pa.nulls(table.num_rows, pa.binary()))
            yield from table.cast(schema).to_batches()
        rows = [(name, _ipc(part)) for name, part in builder.merged_partials().items()] + [
            (LISTINGS, builder.listings.to_bytes(8, "little"))
        ]
        empty = {n: pa.nulls(len(rows), schema.field(n).type) for n in names}
        columns = {
            **empty,
            PARTIAL_FILTER: pa.array([name for name, _ in rows], pa.string()),
            PARTIAL: pa.array([blob for _, blob in rows], pa.binary()),
        }
        yield from pa.table(columns, schema=schema).to_batches()

    return df.mapInArrow(evidence, _spark_schema(schema)), schema


#: the partial row of a task that carries its count of valid listings (8 bytes, little-endian)
LISTINGS = "__listings"


def run_statistics(evidence: DataFrame, plan: ScoringPlan) -> RunStatistics:
    """The run statistics of the whole input from the evidence job's partial aggregates:
    the tasks' partials are collected and merged on the driver, as the local engine merges
    its batches' (the same code, so the same result)."""
    from pyspark.sql import functions as F

    rows = (
        evidence.where(F.col(PARTIAL_FILTER).isNotNull()).select(PARTIAL_FILTER, PARTIAL).toArrow()
    )
    builder = StatisticsBuilder(
        plan.filters,
        identity=statistics_identity(plan.registry, plan.settings, plan.filters),
    )
    names = rows.column(PARTIAL_FILTER).to_pylist()
    blobs = rows.column(PARTIAL).to_pylist()
    for name, blob in zip(names, blobs, strict=True):
        if name == LISTINGS:
            builder.add_partials({}, listings=int.from_bytes(blob, "little"))
        else:
            builder.add_partials({name: pl.read_ipc(io.BytesIO(blob))}, listings=0)
    return builder.result()


def missing_model_inputs(df: DataFrame, plan: ScoringPlan) -> list[str]:
    """The optional inputs the plan's trained model was trained with that ``df`` lacks: no
    such column, or one with no value in any row (one count over those columns); none for the
    zero-shot fusion. What the local engine says of its listings, said of the whole input."""
    from pyspark.sql import functions as F

    wanted = plan.missing_inputs([])
    present = [c for c in wanted if c in df.columns]
    if present:
        counts = df.select(*(F.count(F.col(c)).alias(c) for c in present)).first()
        present = [c for c in present if counts is not None and counts[c]]
    return plan.missing_inputs(present)


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
    statistics: RunStatistics | None = None,
) -> DataFrame:
    """Score Parquet listings on Spark into ``out``/run_date=YYYY-MM-DD/ and return the scored
    DataFrame (already written).

    ``statistics``: the run statistics to score with; without them they are computed over the
    whole input (see :func:`score_spark_with_statistics`)."""
    return score_spark_with_statistics(
        spark, listings, plan, out, run_date=run_date, statistics=statistics
    )[0]


def score_spark_with_statistics(
    spark: SparkSession,
    listings: str | Sequence[str],
    plan: ScoringPlan,
    out: str,
    *,
    run_date: dt.date,
    statistics: RunStatistics | None = None,
) -> tuple[DataFrame, RunStatistics]:
    """:func:`score_spark`, and the statistics it scored with.

    With ``statistics``, one ``mapInArrow`` scores each batch. Without, one job computes
    every listing's evidence (persisted) and each task's partial aggregates, which the driver
    merges into the run statistics and broadcasts; a second, cheap ``mapInArrow`` over the
    persisted evidence finalises the scores. The scoring chain runs once per listing.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    paths = [listings] if isinstance(listings, str) else list(listings)
    raw = spark.read.parquet(*paths)
    renames = input_renames(raw.columns, plan.settings.columns, source=", ".join(paths))
    if renames:
        raw = raw.withColumnsRenamed(renames)
    missing = missing_model_inputs(raw, plan)
    if missing:
        from models.fusion import missing_inputs_message

        warnings.warn(missing_inputs_message(missing), MissingInputWarning, stacklevel=2)
    df = _with_positions(raw)
    input_schema = _arrow_schema(df)
    input_columns = input_schema.names
    out_schema = output_arrow_schema(input_schema, plan)
    bc = spark.sparkContext.broadcast((uuid.uuid4().hex, pickle.dumps(plan)))
    cached: list[DataFrame] = []
    stats_bc = None
    try:
        if statistics is not None:
            stats = statistics
            stats_bc = spark.sparkContext.broadcast((uuid.uuid4().hex, pickle.dumps(stats)))

            def scored(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
                plan = _plan(bc)
                given = _statistics(stats_bc)
                for rb in batches:
                    table = score_frame(_frame(rb, plan), plan, statistics=given).to_arrow()
                    yield from table.cast(out_schema).to_batches()

            result = df.mapInArrow(scored, _spark_schema(out_schema))
        else:
            evidence, ev_schema = _evidence_job(df, plan, bc)
            # on disk: held in memory the evidence (wider than the input) crowds out the
            # final step's own memory, and a 1M-listing run on local[2] with the default
            # 1 GB driver lost its JVM
            evidence = evidence.persist(StorageLevel.DISK_ONLY)
            cached.append(evidence)
            stats = run_statistics(evidence, plan)
            stats_bc = spark.sparkContext.broadcast((uuid.uuid4().hex, pickle.dumps(stats)))
            ev_names = [n for n in ev_schema.names if n not in (PARTIAL_FILTER, PARTIAL)]
            ev_types = pl.DataFrame(
                pa.schema([ev_schema.field(n) for n in ev_names]).empty_table()
            ).schema

            def finalised(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
                plan = _plan(bc)
                given = _statistics(stats_bc)
                for rb in batches:
                    frame = pl.DataFrame(pa.Table.from_batches([rb])).cast(ev_types)
                    table = final_frame(frame, plan, given, input_columns).to_arrow()
                    yield from table.cast(out_schema).to_batches()

            rows = evidence.where(F.col(PARTIAL_FILTER).isNull()).select(*ev_names)
            result = rows.mapInArrow(finalised, _spark_schema(out_schema))
        result = result.withColumn(RUN_DATE, F.lit(run_date.isoformat()))
        (
            result.write.mode("overwrite")
            .option("partitionOverwriteMode", "dynamic")
            .partitionBy(RUN_DATE)
            .parquet(out)
        )
    finally:
        bc.unpersist()
        if stats_bc is not None:
            stats_bc.unpersist()
        for frame in cached:
            frame.unpersist()
    return spark.read.parquet(out).where(F.col(RUN_DATE) == run_date.isoformat()), stats


#: per Python worker: the statistics unpickled from each broadcast
_STATISTICS: dict[str, RunStatistics] = {}


def _statistics(bc: Broadcast[tuple[str, bytes]]) -> RunStatistics:
    token, payload = bc.value
    stats = _STATISTICS.get(token)
    if stats is None:
        # bytes pickled by this run's own driver, never a user-supplied file
        stats = _STATISTICS[token] = pickle.loads(payload)
    return stats


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``spark-submit pipelines/spark.py ...``."""
    from pipelines.config import load_settings
    from pipelines.registry import load_registry
    from pipelines.statistics import load_statistics

    ap = argparse.ArgumentParser(prog="fakestop-spark")
    ap.add_argument(
        "listings", nargs="+", help="Parquet files or directories (any Spark filesystem)"
    )
    ap.add_argument("--registry", required=True)
    ap.add_argument("--images", default=None)
    ap.add_argument("--out", required=True)
    ap.add_argument("--config", default=None)
    ap.add_argument("--model", default=None, help="model file from `fakestop train`")
    ap.add_argument("--stats", default=None, help="run statistics (`fakestop stats build`)")
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
    statistics = None if args.stats is None else load_statistics(args.stats, plan)
    spark = spark_session(args.master)
    score_spark(spark, args.listings, plan, args.out, run_date=run_date, statistics=statistics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
