"""Crawler API latency: ``Scorer`` start-up and ``score_one`` per call, against the frame path.

Run: ``python -m benchmarks.bench_api --calls 2000``

- start-up: ``Scorer.from_registry`` on the seed registry plus 120 official photos and 120 known
  fakes whose hashes were cached by ``fakestop registry build`` (as in production);
- ``score_one`` p50/p99 on generated listings, each seen once (the matcher's per-word cache
  starts empty), with the zero-shot fusion and with a trained model, without a photo and with
  an 800x800 JPEG (bytes, a distinct photo per call);
- the named baseline: the same listings through the frame path (``score_batch`` of one
  listing, i.e. ``score_frame`` on a one-row frame), measured in the same run.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import write_results
from filters.image import build_image_cache
from models.fusion import train
from models.persist import save_model
from pipelines.api import Scorer
from pipelines.registry import default_registry_dir, load_registry
from pipelines.stages import ScoringPlan, score_frame
from seeds.images import product_photo, sample_registry
from seeds.marketplace import generate_marketplace


def timed(fn: Callable[[dict[str, Any]], object], items: list[dict[str, Any]]) -> list[float]:
    out = []
    for item in items:
        t = time.perf_counter()
        fn(item)
        out.append(time.perf_counter() - t)
    return out


def summary(name: str, samples: list[float], base: float | None) -> dict[str, Any]:
    """p50 and p99 in milliseconds of ``samples`` (seconds), and the baseline's p50 over its."""
    ms = np.asarray(samples) * 1000.0
    p50, p99 = float(np.percentile(ms, 50)), float(np.percentile(ms, 99))
    return {
        "call": name,
        "calls": len(samples),
        "p50_ms": round(p50, 3),
        "p99_ms": round(p99, 3),
        "speedup_p50": None if base is None else round(base / p50, 1),
    }


def row(r: dict[str, Any]) -> str:
    ratio = "" if r["speedup_p50"] is None else f"{r['speedup_p50']:.0f}x"
    return f"| {r['call']} | {r['calls']:,} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {ratio} |"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--baseline-calls", type=int, default=200)
    ap.add_argument("--photos", type=int, default=300)
    ap.add_argument("--seed", type=int, default=21)
    args = ap.parse_args()

    registry = load_registry(default_registry_dir())
    with tempfile.TemporaryDirectory() as tmp:
        reg_dir = sample_registry(registry, Path(tmp) / "reg", registry.brand_names[:60])
        build_image_cache(load_registry(reg_dir))
        t = time.perf_counter()
        scorer = Scorer.from_registry(reg_dir, on_error="quarantine")
        t_start = time.perf_counter() - t
        photo_registry = load_registry(reg_dir)

        # a model trained on other listings than the ones timed
        train_frame = generate_marketplace(registry, 6000, seed=args.seed + 1)
        scored = score_frame(train_frame, ScoringPlan.build(photo_registry), keep_evidence=True)
        model_path = Path(tmp) / "model.skops"
        # only its latency is measured here (its quality is bench_fusion's): a model whose
        # calibration has few distinct risks on these 6,000 listings walks the same trees
        model = train(
            scored,
            registry_fingerprint=photo_registry.fingerprint,
            folds=3,
            allow_degenerate=True,
        )
        save_model(model, model_path)
        t = time.perf_counter()
        learned = Scorer.from_registry(reg_dir, model=model_path, on_error="quarantine")
        t_start_model = time.perf_counter() - t

        market = generate_marketplace(registry, args.calls + args.baseline_calls, seed=args.seed)
        items = market.drop("image", strict=False).to_dicts()
        timed_items, base_items = items[: args.calls], items[args.calls :]
        jpegs = []
        for i in range(args.photos):
            buf = io.BytesIO()
            product_photo(50_000 + i, 800).save(buf, "JPEG", quality=85)
            jpegs.append(buf.getvalue())
        with_photo = [
            {**r, "image": jpegs[i % len(jpegs)]} for i, r in enumerate(timed_items[: args.photos])
        ]
        base_photo = [{**r, "image": jpegs[i]} for i, r in enumerate(base_items)]

        assert scorer.records and learned.records
        base_plain = timed(lambda r: scorer.score_batch([r]), base_items)
        base_img = timed(lambda r: scorer.score_batch([r]), base_photo)
        zero_plain = timed(scorer.score_one, timed_items)
        zero_again = timed(scorer.score_one, timed_items)
        model_plain = timed(learned.score_one, timed_items)
        zero_img = timed(scorer.score_one, with_photo)
        model_img = timed(learned.score_one, with_photo)

    b_plain = float(np.percentile(np.asarray(base_plain) * 1000.0, 50))
    b_img = float(np.percentile(np.asarray(base_img) * 1000.0, 50))
    print(
        f"Start-up (seed registry, {2 * 60 * 2} cached photo hashes): zero-shot {t_start:.2f} s,"
        f" with model {t_start_model:.2f} s\n"
    )
    rows = [
        summary("baseline: frame path (`score_batch([listing])`), no photo", base_plain, None),
        summary("`score_one`, zero-shot, no photo, first sight", zero_plain, b_plain),
        summary("`score_one`, zero-shot, no photo, repeated", zero_again, b_plain),
        summary("`score_one`, trained model, no photo", model_plain, b_plain),
        summary("baseline: frame path, 800x800 JPEG bytes", base_img, None),
        summary("`score_one`, zero-shot, 800x800 JPEG bytes", zero_img, b_img),
        summary("`score_one`, trained model, 800x800 JPEG bytes", model_img, b_img),
    ]
    print("| call | calls | p50 ms | p99 ms | p50 speed-up vs baseline |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(row(r))
    write_results(
        "bench_api",
        {
            "cached_photo_hashes": 2 * 60 * 2,
            "startup_s": round(t_start, 3),
            "startup_with_model_s": round(t_start_model, 3),
            "calls": rows,
        },
    )


if __name__ == "__main__":
    main()
