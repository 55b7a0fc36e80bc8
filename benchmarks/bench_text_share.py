"""How fast the text + price path could be if the text filter cost nothing, against the real
path and the naive peer, measured in one run.

Run: ``python -m benchmarks.bench_text_share --n 1000000 --rounds 2``

- **real**: ``fakestop score`` in a subprocess on a Parquet file of ``n`` generated listings;
- **text filter free**: the same command, with the text filter's work replaced by a gather of
  its real output for the first batch (so the price filter, fusion and reasons see realistic
  brands and evidence; reading, validation, the other filters and writing are unchanged);
- **naive peer**: per-row ``rapidfuzz.process.extractOne`` as in ``bench_speed``.

The two commands alternate, because the machine's speed varies by 15-20% within minutes.
The free figure bounds what any text filter can reach: the rest of the path costs that much.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from benchmarks import compile_package, write_results
from benchmarks.bench_speed import brand_names, naive_peer, score_command
from pipelines.registry import default_registry_dir, load_registry


def _free_text_filter() -> None:
    """Replace the text filter's scoring by a gather of its first batch's real output."""
    import filters.text as text

    real = text.TextFilter._score
    lock = threading.Lock()
    first: dict[str, pl.DataFrame] = {}

    def gathered(self: Any, listings: pl.LazyFrame, statistics: Any = None) -> pl.LazyFrame:
        with lock:
            if "out" not in first:
                first["out"] = real(self, listings, statistics).collect()
        out = first["out"]
        frame = listings.collect()
        added = [c for c in out.columns if c not in frame.columns]
        rows = pl.Series(np.arange(frame.height) % out.height)
        return frame.hstack(out.select(added).select(pl.all().gather(rows))).lazy()

    text.TextFilter._score = gathered  # type: ignore[method-assign]


def _child(mode: str, argv: list[str]) -> int:
    if mode == "free":
        _free_text_filter()
    from pipelines.cli import main

    return main(argv)


def _run(mode: str, src: Path, out: Path) -> float:
    cmd = score_command(src, out, module=("benchmarks.bench_text_share", "--child", mode))
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        sys.exit(_child(sys.argv[2], sys.argv[3:]))
    from seeds.marketplace import generate_marketplace

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--naive-sample", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    registry = load_registry(default_registry_dir())
    listings = generate_marketplace(registry, args.n, seed=args.seed)
    compile_package()
    seconds: dict[str, list[float]] = {"real": [], "free": []}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "listings.parquet"
        listings.write_parquet(src)
        for _ in range(args.rounds):
            for mode in ("real", "free"):
                seconds[mode].append(_run(mode, src, Path(tmp) / f"{mode}.parquet"))
        rows = {
            m: pl.scan_parquet(Path(tmp) / f"{m}.parquet").select(pl.len()).collect().item()
            for m in seconds
        }
    sample = listings.get_column("title").head(args.naive_sample).to_list()
    naive_rate = len(sample) / naive_peer(sample, brand_names(registry))
    print(f"n = {args.n:,} listings, rows out {rows}, naive loop {naive_rate:,.0f}/s\n")
    print("| path | seconds | listings/s | vs naive |")
    print("|---|---:|---:|---:|")
    for mode, label in (("real", "fakestop score"), ("free", "fakestop score, text filter free")):
        best = min(seconds[mode])
        shown = " / ".join(f"{s:.2f}" for s in seconds[mode])
        rate = args.n / best
        print(f"| {label} | {shown} | {rate:,.0f} | {rate / naive_rate:.1f}x |")
    write_results(
        "bench_text_share",
        {
            "listings": args.n,
            "rounds": args.rounds,
            "real_s": [round(s, 2) for s in seconds["real"]],
            "free_s": [round(s, 2) for s in seconds["free"]],
            "naive_sample": len(sample),
            "naive_listings_per_s": round(naive_rate),
        },
    )


if __name__ == "__main__":
    main()
