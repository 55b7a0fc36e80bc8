"""Seller rings on a generated marketplace, and the nearest-photo search they rely on.

    python -m benchmarks.bench_network --listings 1000000 --sellers 50000

1. ``best_matches`` 100k x 100k (pHash + dHash, the image filter's criterion) on random hashes
   and on clustered near-copies, with brute force over the same hashes as the in-process
   baseline.
2. ``find_rings`` over ``seeds.network.generate_network``'s marketplace (20% of listings with
   a photo, given as already computed hashes), in a child process so that its peak memory is
   its own: wall time, peak RSS, pairwise precision and recall over seller pairs in the same
   ring against the generator's operations, the share of other sellers put in a ring (and of
   the honest dropshippers among them), each evidence stage's seconds, and the same scores
   under the rules that would let photos link alone (:data:`RULES`).

Writes ``benchmarks/results/bench_network.json``. The machine's load average is recorded with
the figures: timings on a shared machine are upper bounds; the rings run's CPU seconds (all
threads) bound what it needs on a machine of its own.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from benchmarks import write_results

CRITERION: dict[str, Any] = {"max_distance": 28, "max_phash": 14}


def _timed(f: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = f()
    return time.perf_counter() - t0, out


def hamming(n: int, seed: int, brute_queries: int) -> dict[str, Any]:
    from benchmarks.bench_image import near_copy_sets
    from filters.image import best_matches

    rng = np.random.default_rng(seed)
    sets = {
        "random": tuple(rng.integers(0, 2**64, n, dtype=np.uint64) for _ in range(4)),
        "near copies of 10,000 (p=0.05)": near_copy_sets(rng, n, 10_000, 0.05),
    }
    out: dict[str, Any] = {}
    m = min(brute_queries, n)
    for name, (qp, qd, rp, rd) in sets.items():
        seconds, bm = _timed(
            lambda qp=qp, qd=qd, rp=rp, rd=rd: best_matches(qp, qd, rp, rd, **CRITERION)
        )
        brute_s, brute = _timed(
            lambda qp=qp, qd=qd, rp=rp, rd=rd: best_matches(
                qp[:m], qd[:m], rp, rd, **CRITERION, method="brute"
            )
        )
        same = all(np.array_equal(a[:m], b) for a, b in zip(bm, brute, strict=True))
        out[name] = {
            "best_matches_seconds": round(seconds, 2),
            "brute_force_seconds_extrapolated": round(brute_s * n / m, 1),
            "matched": int((bm.ref >= 0).sum()),
            "checked_against_brute_force": m,
            "same": same,
        }
    return out


#: the rules that would let photos link alone, measured beside the default (photos corroborate)
RULES: dict[str, dict[str, Any]] = {
    "two shared photos link": {"keys_per_kind": {"photo": 2.0}},
    "a photo of at most 3 sellers links alone": {"photo_alone_up_to": 3},
}


def _stage_seconds(frame: pl.DataFrame, registry: Any) -> dict[str, float]:
    """Each evidence stage of ``find_rings`` timed on its own (same inputs, same settings)."""
    from pipelines import network

    settings = network.NetworkSettings()
    prepared = network._prepared(frame)
    drop = network._brand_tokens(registry)
    out: dict[str, float] = {}
    hashes = network.listing_hashes(prepared, images_root=None)
    out["photos (references, clusters, mirrors)"], _ = _timed(
        lambda: network.photo_evidence(
            hashes, network._references(registry, settings.workers), settings
        )
    )
    for column in ("title", "description"):
        out[f"{column} texts"], _ = _timed(
            lambda c=column: network.text_evidence(prepared, c, drop, settings)
        )
    out["contacts"], _ = _timed(lambda: network.contact_evidence(prepared))
    out["accounts"], _ = _timed(lambda: network.account_evidence(prepared, settings))
    evidence = network.seller_evidence(prepared, registry, settings=settings)
    out["links and rings"], _ = _timed(
        lambda: network._ring_labels(network.seller_links(evidence, settings))
    )
    return {k: round(v, 2) for k, v in out.items()}


def _peak_rss_bytes() -> int:
    """This process's own peak resident memory: ``VmHWM`` of its address space (``ru_maxrss``
    keeps the parent's size at the fork before the child's exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _rings_child(listings: str, registry: str, out: str) -> None:
    from pipelines.network import NetworkSettings, _ring_labels, find_rings
    from pipelines.registry import load_registry

    frame = pl.read_parquet(listings).drop("operation", "photo_kind", "label")
    reg = load_registry(registry)
    t0, c0 = time.perf_counter(), time.process_time()
    result = find_rings(frame, reg)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _peak_rss_bytes()
    result.rings.write_parquet(Path(out) / "rings.parquet")
    # the ceiling: rings if every pair of sellers sharing any key were linked
    every = result.links.with_columns(pl.lit(True).alias("strong"))
    labels = _ring_labels(every)
    labels.group_by("ring_id").agg(pl.col("seller_id").alias("sellers")).write_parquet(
        Path(out) / "rings-every-key.parquet"
    )
    for k, options in enumerate(RULES.values()):
        find_rings(frame, reg, settings=NetworkSettings(**options)).rings.write_parquet(
            Path(out) / f"rings-rule{k}.parquet"
        )
    stages = _stage_seconds(frame, reg)
    (Path(out) / "child.json").write_text(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu,
                "peak_rss_bytes": peak,
                "stats": result.stats,
                "stage_seconds": stages,
            }
        )
    )


def rings(listings: int, sellers: int, seed: int, workdir: Path) -> dict[str, Any]:
    from seeds.network import generate_network, pairwise_scores, ring_truth

    data = workdir / f"market-{listings}-{sellers}-{seed}.parquet"
    reg_dir = workdir / f"registry-{seed}"
    gen_s = None
    if not data.exists():
        gen_s, (frame, _) = _timed(lambda: generate_network(listings, sellers, reg_dir, seed=seed))
        frame.write_parquet(data)
    ctx = multiprocessing.get_context("spawn")
    child = ctx.Process(target=_rings_child, args=(str(data), str(reg_dir), str(workdir)))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"the rings run failed (exit {child.exitcode})")
    run = json.loads((workdir / "child.json").read_text())
    frame = pl.read_parquet(data, columns=["seller_id", "operation", "phash", "photo_kind"])
    truth, n_sellers = ring_truth(frame), frame["seller_id"].n_unique()
    dropshippers = frame.filter(pl.col("photo_kind") == "supplier").select("seller_id").unique()

    def scored(rings: pl.DataFrame) -> dict[str, Any]:
        members = rings.select(pl.col("sellers").explode().alias("seller_id"))
        out = pairwise_scores(truth, rings, n_sellers)
        out["dropshippers_in_rings"] = members.join(dropshippers, on="seller_id").height
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}

    scores = scored(pl.read_parquet(workdir / "rings.parquet"))
    rules = {
        name: scored(pl.read_parquet(workdir / f"rings-rule{k}.parquet"))
        for k, name in enumerate(RULES)
    }
    rules["every shared key links (ceiling)"] = scored(
        pl.read_parquet(workdir / "rings-every-key.parquet")
    )
    return {
        "listings": listings,
        "sellers": sellers,
        "listings_with_photo": int(frame["phash"].is_not_null().sum()),
        "operations": int(frame["operation"].n_unique() - 1),
        "sellers_in_operations": int(truth.height),
        "dropshippers": dropshippers.height,
        # None: the marketplace was generated by an earlier run (--workdir)
        "generate_seconds": None if gen_s is None else round(gen_s, 1),
        "find_rings_seconds": round(run["seconds"], 1),
        # busy seconds on all cores: what a machine without other work needs, at most
        "find_rings_cpu_seconds": round(run["cpu_seconds"], 1),
        "peak_rss_gb": round(run["peak_rss_bytes"] / 2**30, 2),
        **scores,
        "stage_seconds": run["stage_seconds"],
        "other_rules": rules,
        "stats": run["stats"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--listings", type=int, default=1_000_000)
    ap.add_argument("--sellers", type=int, default=50_000)
    ap.add_argument("--hashes", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--skip-hamming", action="store_true")
    ap.add_argument("--workdir", default=None, help="keep the generated marketplace here")
    args = ap.parse_args()
    result: dict[str, Any] = {}
    if not args.skip_hamming:
        result["best_matches"] = hamming(args.hashes, args.seed, 2_000)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        result["rings"] = rings(args.listings, args.sellers, args.seed, work)
    write_results("bench_network", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
