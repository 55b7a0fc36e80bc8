"""Learned fusion: training time at scale and held-out quality.

Run: ``python -m benchmarks.bench_fusion --n 100000``

- features for ``n`` generated listings and a copy of each with optional inputs dropped at
  random (as ``fakestop train`` scores them; text + price, no photos) are computed once, then
  :func:`models.fusion.train` (5-fold out-of-fold metrics and thresholds, then a refit) is timed
  against the named baseline: one plain ``HistGradientBoostingClassifier`` fit on the same matrix;
- held-out quality: train on the first 60% (and their copies), score the rest.

API latency is measured by :mod:`benchmarks.bench_api`.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score

from benchmarks import write_results
from models.features import FEATURES
from models.fusion import feature_matrix, train
from models.report import precision_at_recall
from pipelines.learn import training_set
from pipelines.registry import default_registry_dir, load_registry
from pipelines.stages import ScoringPlan
from seeds.marketplace import generate_marketplace


def percentiles(samples: list[float]) -> tuple[float, float]:
    arr = np.asarray(samples) * 1000.0
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--calls", type=int, default=300)
    args = ap.parse_args()

    registry = load_registry(default_registry_dir())
    plan = ScoringPlan.build(registry)
    market = generate_marketplace(registry, args.n, seed=args.seed)
    t = time.perf_counter()
    data = training_set(market, plan, seed=0)
    t_features = time.perf_counter() - t
    scored = data.frame

    X = feature_matrix(scored)
    y = scored.get_column("label").to_numpy().astype(np.int64)
    t = time.perf_counter()
    # the baseline sees the same informative columns (no photos here: image features are empty)
    HistGradientBoostingClassifier(random_state=0).fit(X[:, ~np.isnan(X).all(axis=0)], y)
    t_plain = time.perf_counter() - t
    t = time.perf_counter()
    train(
        scored,
        registry_fingerprint=registry.fingerprint,
        seed=0,
        groups=data.groups,
        augmented=data.augmented,
    )
    t_train = time.perf_counter() - t

    cut = int(market.height * 0.6)
    first = pl.Series(data.groups < cut)
    fusion = train(
        scored.filter(first),
        registry_fingerprint=registry.fingerprint,
        seed=0,
        groups=data.groups[first.to_numpy()],
        augmented=data.augmented[first.to_numpy()],
    )
    test = scored.filter(~first & ~pl.Series(data.augmented))
    risk = fusion.predict(test)
    yt = test.get_column("label").to_numpy()
    block = risk >= fusion.thresholds.block

    print(
        f"## Learned fusion, {market.height:,} listings + {int(data.augmented.sum()):,} copies "
        f"with inputs dropped, {len(FEATURES)} features\n"
    )
    print("| step | seconds | ratio |")
    print("|---|---|---|")
    print(f"| features (text + price chain, listings and copies) | {t_features:.1f} | |")
    print(f"| baseline: one HistGradientBoosting fit | {t_plain:.1f} | 1.0 |")
    print(f"| fakestop train (5-fold OOF + calibrated refit) | {t_train:.1f} | "
          f"{t_train / t_plain:.1f} |")  # fmt: skip
    print("\nHeld-out (train 60%, test 40%):\n")
    print("| PR-AUC | P@R0.9 | block precision | block recall |")
    print("|---|---|---|---|")
    prec = float(yt[block].mean()) if block.any() else float("nan")
    rec = float(block[yt == 1].mean())
    pr_auc = float(average_precision_score(yt, risk))
    p_at_r = float(precision_at_recall(yt, risk, 0.9))
    print(f"| {pr_auc:.4f} | {p_at_r:.4f} | {prec:.4f} | {rec:.4f} |")
    write_results(
        "bench_fusion",
        {
            "listings": market.height,
            "copies": int(data.augmented.sum()),
            "features": len(FEATURES),
            "features_s": round(t_features, 2),
            "baseline_fit_s": round(t_plain, 2),
            "train_s": round(t_train, 2),
            "train_over_baseline": round(t_train / t_plain, 2),
            "held_out": {
                "listings": len(yt),
                "pr_auc": round(pr_auc, 4),
                "precision_at_recall_0.9": round(p_at_r, 4),
                "block_precision": round(prec, 4),
                "block_recall": round(rec, 4),
            },
        },
    )


if __name__ == "__main__":
    main()
