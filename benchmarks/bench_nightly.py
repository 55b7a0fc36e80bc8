"""The nightly batch at 100k, 1M and 10M listings: throughput, peak memory, time per stage.

Run: ``python -m benchmarks.bench_nightly --sizes 100000 1000000 10000000`` (``--format csv``
or ``ndjson``: one file of that format instead of Parquet parts)

- **end to end**: ``fakestop score DIR --out OUT`` (default ``--batch-size``) in a child process
  per size, on a directory of Parquet parts of 1M generated listings each (the parts repeat one
  generated million, so generation does not dominate the run, with distinct ids and, after the
  first part, a reference number ending each title: otherwise every listing after the first
  million would repeat one the text filter may remember); wall time,
  rows/s and the child's own peak RSS (``wait4``), and the manifest's seconds per stage;
- **per filter**: the scoring chain's stages one at a time, in-process, on one batch;
- **naive peer**: per-row ``rapidfuzz.process.extractOne`` over a sample, as in ``bench_speed``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

from benchmarks import compile_package, timed_child, write_results
from benchmarks.bench_speed import naive_peer
from pipelines.registry import default_registry_dir, load_registry
from pipelines.stages import (
    ScoringPlan,
    _prepared,
    decisions,
    explained,
    matched_brands,
    validated_listings,
)

PART_ROWS = 1_000_000


def copy_of(base: pl.DataFrame, i: int, rows: int) -> pl.DataFrame:
    """Part ``i``: the first ``rows`` generated listings with ids of its own and, after the
    first part, titles of its own (a reference number at the end)."""
    part = base.head(rows).with_columns(
        (pl.lit(f"p{i}-") + pl.col("listing_id")).alias("listing_id")
    )
    if i == 0:
        return part
    return part.with_columns((pl.col("title") + pl.lit(f" ref{i:03d}")).alias("title"))


def write_parts(base: pl.DataFrame, n: int, folder: Path) -> None:
    folder.mkdir()
    done = 0
    for i in range(-(-n // PART_ROWS)):
        rows = min(PART_ROWS, n - done)
        copy_of(base, i, rows).write_parquet(folder / f"part-{i:03d}.parquet")
        done += rows


def write_one_file(base: pl.DataFrame, n: int, path: Path) -> None:
    """One CSV or NDJSON file (by ``path``'s suffix) of ``n`` listings, the parts of
    :func:`write_parts` one after another."""
    with path.open("wb") as fh:
        done = 0
        for i in range(-(-n // PART_ROWS)):
            rows = min(PART_ROWS, n - done)
            part = copy_of(base, i, rows)
            if path.suffix == ".csv":
                part.write_csv(fh, include_header=i == 0)
            else:
                part.write_ndjson(fh)
            done += rows


def per_stage(frame: pl.DataFrame, plan: ScoringPlan) -> list[tuple[str, float]]:
    """Seconds of each stage of the chain on ``frame``, collected one at a time."""
    out = []
    t0 = time.perf_counter()
    cur = validated_listings(_prepared(frame).lazy(), plan.settings).collect()
    out.append(("validation", time.perf_counter() - t0))
    cur = cur.filter(pl.col("status") == "ok")
    for f in plan.filters:
        t0 = time.perf_counter()
        cur = f.score(cur.lazy()).collect()
        out.append((f"filter: {f.name}", time.perf_counter() - t0))
    t0 = time.perf_counter()
    cur = decisions(plan.fusion.risk(matched_brands(cur.lazy())), plan.thresholds).collect()
    out.append(("fusion + decision", time.perf_counter() - t0))
    t0 = time.perf_counter()
    explained(cur.lazy()).collect()
    out.append(("reasons", time.perf_counter() - t0))
    return out


def main() -> None:
    from seeds.marketplace import generate_marketplace

    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    ap.add_argument("--naive-sample", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--format", choices=["parquet", "csv", "ndjson"], default="parquet")
    args = ap.parse_args()

    registry = load_registry(default_registry_dir())
    reg = str(default_registry_dir())
    base = generate_marketplace(registry, min(PART_ROWS, max(args.sizes)), seed=args.seed)
    load = os.getloadavg()[0]
    print(f"2 cores; {args.format} input; load average at start {load:.2f}\n")
    header = False
    rates = []
    results: dict[str, object] = {"runs": []}
    if not compile_package():
        print("note: fakestop's bytecode could not be written; its starts include compiling it")
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            if args.format in ("csv", "ndjson"):
                src = Path(tmp) / f"in.{args.format}"
                write_one_file(base, n, src)
            else:
                src = Path(tmp) / "in"
                write_parts(base, n, src)
            out = Path(tmp) / "scores.parquet"
            cmd = [sys.executable, "-m", "pipelines.cli", "score", str(src)]
            wall, peak = timed_child([*cmd, "--registry", reg, "--out", str(out), "--quiet"])
            manifest = json.loads(Path(f"{out}.manifest.json").read_text())
            assert manifest["rows"]["in"] == manifest["rows"]["out"] == n
            stages = manifest["stage_seconds"]
            total = sum(stages.values()) or 1.0
            if not header:
                print(f"| listings | wall s | listings/s | peak RSS MB | {' | '.join(stages)} |")
                print(f"|---:|---:|---:|---:|{'---:|' * len(stages)}")
                header = True
            shares = " | ".join(f"{100 * stages[s] / total:.0f}%" for s in stages)
            rates.append(n / wall)
            print(f"| {n:,} | {wall:.1f} | {n / wall:,.0f} | {peak:,.0f} | {shares} |")
            results["runs"].append(  # type: ignore[attr-defined]
                {
                    "listings": n,
                    "wall_s": round(wall, 2),
                    "listings_per_s": round(n / wall),
                    "peak_rss_mb": round(peak),
                    "stage_seconds": stages,
                    "load_average_end": round(os.getloadavg()[0], 2),
                }
            )

    plan = ScoringPlan.build(registry)
    batch = base.head(100_000)
    per_stage(batch.head(1_000), plan)  # warm-up
    stages = per_stage(batch, plan)
    total = sum(s for _, s in stages)
    print(f"\nOne batch of {batch.height:,} listings, stage by stage (in-process):\n")
    print("| stage | seconds | share |")
    print("|---|---:|---:|")
    for name, s in stages:
        print(f"| {name} | {s:.3f} | {100 * s / total:.0f}% |")

    sample = base.get_column("title").head(args.naive_sample).to_list()
    aliases = registry.brands.get_column("aliases").to_list()
    names = sorted({*registry.brand_names, *(a for al in aliases for a in al)})
    naive = args.naive_sample / naive_peer(sample, names)
    print(f"\nnaive per-row extractOne: {naive:,.0f} listings/s; end to end / naive: ", end="")
    print(", ".join(f"{r / naive:.1f}x" for r in rates))
    results["naive_listings_per_s"] = round(naive)
    results["stages_one_batch"] = {name: round(s, 4) for name, s in stages}
    # one section per input format
    write_results("bench_nightly", {args.format: results}, sections=True)


if __name__ == "__main__":
    main()
