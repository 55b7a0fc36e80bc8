"""Local engine vs Spark ``local[2]`` on the same Parquet input, measured in one run.

Run: ``python -m benchmarks.bench_spark --sizes 1000000 4000000``

For each size: the local engine (``fakestop score``, one process) and the Spark engine
(``--engine spark --master local[2]``, session start-up included and reported apart), both as
subprocesses on 16 Parquet parts of generated listings, one after the other; then both again
with the run statistics the local run left (``--stats``: one pass each); then Spark's own
cost of moving the rows through Python workers without scoring them (read, ``mapInArrow``
through a polars frame, write: :data:`PASS_THROUGH`), the least any scoring on Spark can take.
The ratios are Spark's time over the local engine's in the same round. Writes
``benchmarks/results/bench_spark.json``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import compile_package, write_results
from pipelines.registry import default_registry_dir, load_registry

#: a Spark job that reads the listings, hands each Arrow batch to a Python worker as a polars
#: frame and back, and writes them: what Spark costs before any scoring
PASS_THROUGH = """
import sys
import polars as pl
import pyarrow as pa
from pipelines.spark import spark_session

spark = spark_session("local[2]")
df = spark.read.parquet(sys.argv[1])


def through(batches):
    for rb in batches:
        yield from pl.DataFrame(pa.Table.from_batches([rb])).to_arrow().to_batches()


df.mapInArrow(through, df.schema).write.mode("overwrite").parquet(sys.argv[2])
spark.stop()
"""


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.splitlines()[-20:])
        raise SystemExit(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{tail}")
    return time.perf_counter() - t0


def main() -> None:
    from seeds.marketplace import generate_marketplace

    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 4_000_000])
    ap.add_argument("--parts", type=int, default=16)
    args = ap.parse_args()
    compile_package()
    load_start = os.getloadavg()[0]
    registry = load_registry(default_registry_dir())
    reg = str(default_registry_dir())
    startup_cmd = [
        sys.executable,
        "-c",
        "from pipelines.spark import spark_session; spark_session('local[2]').stop()",
    ]
    startup = timed(startup_cmd)
    print(f"Spark local[2] session start-up alone: {startup:.1f}s; load {load_start:.1f}\n")
    print(
        "| listings | local s | spark local[2] s | spark/local | with --stats: local s | "
        "spark s | spark/local | Spark pass-through s | pass-through/local |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    runs = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "in"
            src.mkdir()
            frame = generate_marketplace(registry, n, seed=3)
            step = -(-n // args.parts)
            for i in range(args.parts):
                frame.slice(i * step, step).write_parquet(src / f"part-{i:02d}.parquet")
            del frame
            base = [
                sys.executable,
                "-m",
                "pipelines.cli",
                "score",
                str(src),
                "--registry",
                reg,
                "--quiet",
                "--run-date",
                "2026-11-01",
            ]
            spark_args = ["--engine", "spark", "--master", "local[2]"]
            local = timed([*base, "--out", f"{tmp}/local/"])
            spark = timed([*base, "--out", f"{tmp}/spark", *spark_args])
            given = ["--stats", f"{tmp}/local.stats"]
            local_given = timed([*base, *given, "--out", f"{tmp}/local2/"])
            spark_given = timed([*base, *given, "--out", f"{tmp}/spark2", *spark_args])
            through = timed([sys.executable, "-c", PASS_THROUGH, str(src), f"{tmp}/through"])
            print(
                f"| {n:,} | {local:.1f} | {spark:.1f} | {spark / local:.2f}x | "
                f"{local_given:.1f} | {spark_given:.1f} | {spark_given / local_given:.2f}x | "
                f"{through:.1f} | {through / local_given:.2f}x |"
            )
            runs.append(
                {
                    "listings": n,
                    "local_s": round(local, 2),
                    "spark_s": round(spark, 2),
                    "spark_over_local": round(spark / local, 3),
                    "given_statistics_local_s": round(local_given, 2),
                    "given_statistics_spark_s": round(spark_given, 2),
                    "given_statistics_spark_over_local": round(spark_given / local_given, 3),
                    "spark_pass_through_s": round(through, 2),
                    "pass_through_over_local": round(through / local_given, 3),
                    "load_average_end": round(os.getloadavg()[0], 2),
                }
            )
    write_results(
        "bench_spark",
        {
            "parts": args.parts,
            "spark_startup_s": round(startup, 2),
            "load_average_start": round(load_start, 2),
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
