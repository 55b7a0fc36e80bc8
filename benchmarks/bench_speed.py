"""Throughput of the text + price path against the naive peer, measured in one run.

Run: ``python -m benchmarks.bench_speed --n 1000000``

- **fakestop end to end**: ``fakestop score`` in a subprocess on a Parquet file of ``n``
  generated listings (read, validate, text, price, fusion, write), wall time and peak RSS;
  then the same listings with every title made unique (a model number appended), because the
  text filter scores each distinct listing text once and the generated titles repeat;
- **fakestop in-process**: the scoring chain on the frame already in memory;
- **naive peer**: per-row ``rapidfuzz.process.extractOne(title, brand names, scorer=partial_ratio,
  score_cutoff=90)`` over a sample, which is how a first filter is usually written.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import polars as pl
from rapidfuzz import fuzz, process

from benchmarks import compile_package
from pipelines.registry import Registry, default_registry_dir, load_registry
from pipelines.stages import ScoringPlan, score_frame


def score_command(src: Path, out: Path, *, module: Sequence[str] = ("pipelines.cli",)) -> list[str]:
    """``fakestop score`` of ``src`` into ``out`` with the seed registry, quiet, as a subprocess
    command (``module``: what ``python -m`` runs before the ``score`` arguments)."""
    return [
        sys.executable,
        "-m",
        *module,
        "score",
        str(src),
        "--registry",
        str(default_registry_dir()),
        "--out",
        str(out),
        "--quiet",
    ]


def brand_names(registry: Registry) -> list[str]:
    """Every brand name and alias: what the naive peer matches titles against."""
    return sorted(
        {
            *registry.brand_names,
            *(a for al in registry.brands.get_column("aliases").to_list() for a in al),
        }
    )


def naive_peer(titles: list[str], names: list[str]) -> float:
    """Seconds for per-row extractOne over every brand name and alias."""
    t0 = time.perf_counter()
    for t in titles:
        process.extractOne(t, names, scorer=fuzz.partial_ratio, score_cutoff=90)
    return time.perf_counter() - t0


def end_to_end(listings: pl.DataFrame) -> tuple[float, float, int]:
    """Seconds, peak RSS (MB, the largest of this process's children so far) and rows out of
    ``fakestop score`` in a subprocess on ``listings`` written to Parquet."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "listings.parquet"
        listings.write_parquet(src)
        out = Path(tmp) / "scores.parquet"
        t0 = time.perf_counter()
        subprocess.run(score_command(src, out), check=True)
        seconds = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        rows_out = pl.scan_parquet(out).select(pl.len()).collect().item()
    return seconds, peak_mb, rows_out


def main() -> None:
    from seeds.marketplace import generate_marketplace

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--naive-sample", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    registry = load_registry(default_registry_dir())
    t0 = time.perf_counter()
    listings = generate_marketplace(registry, args.n, seed=args.seed)
    gen_s = time.perf_counter() - t0
    if not compile_package():
        print("note: fakestop's bytecode could not be written; its starts include compiling it")
    e2e_s, peak_mb, rows_out = end_to_end(listings)
    # the filter scores each distinct listing text once: the same listings with every title
    # made unique (a model number appended) show the cost when nothing repeats
    distinct = listings.with_columns(
        pl.concat_str(
            "title", pl.lit(" model "), pl.int_range(pl.len()).cast(pl.String).str.zfill(7)
        ).alias("title")
    )
    distinct_s, _, _ = end_to_end(distinct)

    plan = ScoringPlan.build(registry)
    t0 = time.perf_counter()
    scored = score_frame(listings, plan)
    inproc_s = time.perf_counter() - t0
    assert scored.height == args.n

    names = brand_names(registry)
    sample = listings.get_column("title").head(args.naive_sample).to_list()
    naive_s = naive_peer(sample, names)
    naive_rate = len(sample) / naive_s

    e2e_rate = args.n / e2e_s
    inproc_rate = args.n / inproc_s
    print(
        f"n = {args.n:,} listings (generated in {gen_s:.1f}s), {os.cpu_count()} cores, "
        f"rows out = {rows_out:,}, {len(names)} brand names+aliases\n"
    )
    print("| path | seconds | listings/s | vs naive |")
    print("|---|---:|---:|---:|")
    print(
        f"| fakestop score, end to end (subprocess, Parquet in/out) | {e2e_s:.2f} | "
        f"{e2e_rate:,.0f} | {e2e_rate / naive_rate:.0f}x |"
    )
    distinct_rate = args.n / distinct_s
    print(
        f"| fakestop score, end to end, every title distinct | {distinct_s:.2f} | "
        f"{distinct_rate:,.0f} | {distinct_rate / naive_rate:.0f}x |"
    )
    print(
        f"| fakestop scoring chain, in-process | {inproc_s:.2f} | {inproc_rate:,.0f} | "
        f"{inproc_rate / naive_rate:.0f}x |"
    )
    print(
        f"| naive per-row extractOne (sample of {len(sample):,}) | {naive_s:.2f} | "
        f"{naive_rate:,.0f} | 1x |"
    )
    print(f"\npeak RSS of `fakestop score` on {args.n:,} listings: {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
