"""Throughput of the text + price path against the naive peer, measured in one run.

Run: ``python -m benchmarks.bench_speed --n 1000000`` (``--baseline DIR``: also compare with
the fakestop checked out in ``DIR``, e.g. ``git worktree add --detach DIR <commit>``)

- **fakestop end to end**: ``fakestop score`` in a subprocess on a Parquet file of ``n``
  generated listings (read, validate, text, price, fusion, write), wall time and peak RSS;
  then the same listings with every title made unique (a model number appended), because the
  text filter scores each distinct listing text once and the generated titles repeat;
- **fakestop in-process**: the scoring chain on the frame already in memory;
- **naive peer**: per-row ``rapidfuzz.process.extractOne(title, brand names, scorer=partial_ratio,
  score_cutoff=90)`` over a sample, which is how a first filter is usually written;
- **descriptions**: the same listings with descriptions of 50-300 words, scored in-process batch
  by batch with the text filter reading descriptions (phrases; brand names where the title has
  none) and not reading them, alternately, so that both see the same load; the ratio is the
  cost of reading descriptions. ``--only descriptions`` runs this part alone.
- **against a baseline** (``--baseline DIR``): ``fakestop score`` of this checkout and of the
  one in ``DIR`` (run with ``DIR`` as the working directory, so its packages are imported) on
  the same file, alternately (new, old, old, new, ...) for ``--rounds`` rounds: the ratio of
  the medians, and each round's, with each child's own peak RSS.

Writes ``benchmarks/results/bench_speed.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import polars as pl
from rapidfuzz import fuzz, process

from benchmarks import compile_package, timed_child, write_results
from filters.text import DESCRIPTION_CHARS, TextFilter
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


def against_baseline(listings: pl.DataFrame, baseline: Path, rounds: int) -> dict[str, object]:
    """``fakestop score`` of this checkout and of ``baseline``'s, alternately, on one file."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "listings.parquet"
        listings.write_parquet(src)
        times: dict[str, list[float]] = {"new": [], "old": []}
        peaks: dict[str, list[float]] = {"new": [], "old": []}
        for r in range(rounds):
            order = ("new", "old") if r % 2 == 0 else ("old", "new")
            for which in order:
                out = Path(tmp) / f"{which}.parquet"
                cwd = baseline if which == "old" else None
                wall, peak = timed_child(score_command(src, out), cwd=cwd)
                times[which].append(wall)
                peaks[which].append(peak)
            print(f"round {r + 1}: new {times['new'][-1]:.2f}s, old {times['old'][-1]:.2f}s, "
                  f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
        same = pl.read_parquet(Path(tmp) / "new.parquet").equals(
            pl.read_parquet(Path(tmp) / "old.parquet")
        )
    new, old = statistics.median(times["new"]), statistics.median(times["old"])
    return {
        "rounds": rounds,
        "new_s": [round(t, 2) for t in times["new"]],
        "old_s": [round(t, 2) for t in times["old"]],
        "new_peak_mb": [round(p) for p in peaks["new"]],
        "old_peak_mb": [round(p) for p in peaks["old"]],
        "median_new_s": round(new, 2),
        "median_old_s": round(old, 2),
        "new_over_old": round(new / old, 3),
        "round_ratios": [round(a / b, 3) for a, b in zip(times["new"], times["old"], strict=True)],
        "same_output": same,
    }


def end_to_end(listings: pl.DataFrame) -> tuple[float, float, int]:
    """Seconds, peak RSS (MB) and rows out of ``fakestop score`` in a subprocess on
    ``listings`` written to Parquet."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "listings.parquet"
        listings.write_parquet(src)
        out = Path(tmp) / "scores.parquet"
        seconds, peak_mb = timed_child(score_command(src, out))
        rows_out = pl.scan_parquet(out).select(pl.len()).collect().item()
    return seconds, peak_mb, rows_out


def description_cost(
    registry: Registry, listings: pl.DataFrame, *, seed: int, batch: int = 100_000
) -> dict[str, float]:
    """Seconds of the scoring chain on ``listings`` given descriptions of 50-300 words, with the
    text filter reading descriptions and not, batch by batch, alternately (which goes first
    alternates too)."""
    from seeds.marketplace import with_descriptions

    t0 = time.perf_counter()
    described = with_descriptions(listings, seed=seed)
    gen_s = time.perf_counter() - t0
    words = described.select(pl.col("description").str.split(" ").list.len()).to_series()
    reading = ScoringPlan.build(registry)
    base = ScoringPlan.build(registry)
    blind = dataclasses.replace(
        base,
        filters=[
            TextFilter(use_description=False).fit(registry) if f.name == "text" else f
            for f in base.filters
        ],
    )
    seconds = {"reading": 0.0, "not_reading": 0.0}
    cpu = {"reading": 0.0, "not_reading": 0.0}
    for i, at in enumerate(range(0, described.height, batch)):
        part = described.slice(at, batch)
        order = [("reading", reading), ("not_reading", blind)]
        for name, plan in order if i % 2 == 0 else order[::-1]:
            t, c = time.perf_counter(), time.process_time()
            score_frame(part, plan)
            seconds[name] += time.perf_counter() - t
            cpu[name] += time.process_time() - c
    return {
        "n": described.height,
        "description_words_mean": float(words.to_numpy().mean()) if len(words) else 0.0,
        "description_chars_read": DESCRIPTION_CHARS,
        "generated_s": gen_s,
        "reading_s": seconds["reading"],
        "not_reading_s": seconds["not_reading"],
        "ratio": seconds["reading"] / seconds["not_reading"],
        # CPU seconds of this process (all its threads): less moved by other work on the machine
        "reading_cpu_s": cpu["reading"],
        "not_reading_cpu_s": cpu["not_reading"],
        "cpu_ratio": cpu["reading"] / cpu["not_reading"],
    }


def main() -> None:
    from seeds.marketplace import generate_marketplace

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--naive-sample", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--only", choices=["descriptions"], default=None)
    ap.add_argument("--baseline", type=Path, default=None, help="checkout of the code before")
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()

    registry = load_registry(default_registry_dir())
    t0 = time.perf_counter()
    listings = generate_marketplace(registry, args.n, seed=args.seed)
    gen_s = time.perf_counter() - t0
    load = os.getloadavg()[0]
    cost = description_cost(registry, listings, seed=args.seed)
    write_results("bench_speed", {"descriptions": cost}, sections=True)
    print(
        f"descriptions ({cost['description_words_mean']:.0f} words on average, first "
        f"{DESCRIPTION_CHARS} characters read): scoring chain {cost['reading_s']:.2f}s reading "
        f"them, {cost['not_reading_s']:.2f}s not: x{cost['ratio']:.3f}; CPU "
        f"{cost['reading_cpu_s']:.2f}s / {cost['not_reading_cpu_s']:.2f}s: "
        f"x{cost['cpu_ratio']:.3f} (load {load:.1f})\n"
    )
    if args.only == "descriptions":
        return
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
    results: dict[str, object] = {
        "listings": args.n,
        "generated_s": round(gen_s, 2),
        "end_to_end_s": round(e2e_s, 2),
        "end_to_end_distinct_s": round(distinct_s, 2),
        "in_process_s": round(inproc_s, 2),
        "naive_sample": len(sample),
        "naive_s": round(naive_s, 3),
        "naive_listings_per_s": round(naive_rate),
        "peak_rss_mb": round(peak_mb),
    }
    if args.baseline is not None:
        print(f"\n`fakestop score` against {args.baseline}, alternately:")
        compared = against_baseline(listings, args.baseline, args.rounds)
        print(
            f"median new {compared['median_new_s']}s, old {compared['median_old_s']}s: "
            f"new/old {compared['new_over_old']} (rounds {compared['round_ratios']}); "
            f"same output: {compared['same_output']}"
        )
        results["baseline"] = {"checkout": str(args.baseline), **compared}
    write_results("bench_speed", {"throughput": results}, sections=True)


if __name__ == "__main__":
    main()
