"""Local engine vs Spark ``local[2]`` on the same Parquet input, measured in one run.

Run: ``python -m benchmarks.bench_spark --sizes 1000000 4000000``

For each size: the local engine (``fakestop score``, one process) and the Spark engine
(``--engine spark --master local[2]``, session start-up included and reported apart), both as
subprocesses on 16 Parquet parts of generated listings.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipelines.registry import default_registry_dir, load_registry


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    from seeds.marketplace import generate_marketplace

    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 4_000_000])
    ap.add_argument("--parts", type=int, default=16)
    args = ap.parse_args()
    registry = load_registry(default_registry_dir())
    reg = str(default_registry_dir())
    startup_cmd = [
        sys.executable,
        "-c",
        "from pipelines.spark import spark_session; spark_session('local[2]').stop()",
    ]
    startup = timed(startup_cmd)
    print(f"Spark local[2] session start-up alone: {startup:.1f}s\n")
    print("| listings | local s | local rows/s | spark local[2] s | spark rows/s | spark/local |")
    print("|---:|---:|---:|---:|---:|---:|")
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
            local = timed([*base, "--out", f"{tmp}/local/"])
            spark = timed(
                [*base, "--out", f"{tmp}/spark", "--engine", "spark", "--master", "local[2]"]
            )
            print(
                f"| {n:,} | {local:.1f} | {n / local:,.0f} | {spark:.1f} | {n / spark:,.0f} | "
                f"{spark / local:.2f}x |"
            )


if __name__ == "__main__":
    main()
