"""The learned fusion against the zero-shot fusion under distribution shift.

Run: ``python -m benchmarks.bench_shift`` (``--n 6000 --test-n 4000 --brands 40``); writes
``benchmarks/results/bench_shift.json``.

A model is trained as ``fakestop train`` trains it (each listing as given plus a copy with
optional inputs dropped at random; thresholds from out-of-fold risks) on one generated
marketplace with photos (seed 0). The model and the zero-shot fusion then score each shift,
each at its own thresholds (the model card's; the zero-shot defaults, block 0.8, review 0.5):

- ``another_seed``: the marketplace generated with another seed (1);
- ``without_<column>``: that marketplace with one optional column dropped (``seller_id``,
  ``image``, ``category``, ``description``, ``condition``, ``brand``);
- ``mixed_sellers``: that marketplace with its seller ids shuffled, so that counterfeiters and
  honest sellers share accounts (the generator gives each side its own sellers);
- ``other_mix``: another mix of kinds (seed 2): more stealth (disguised names, plain names at
  a low price, premium copies; few blatant phrases), more accessories, more used and
  refurbished goods;
- ``everyday``: the side generators' everyday listings and brands' own small goods;
- robustness families (:data:`FAMILIES`): a function ``(registry, n, seed) -> labelled
  listings``. Built in: ``disguised_names``, every disguise of the marketplace generator
  (typo, look-alike letters, fullwidth, zero-width, leetspeak, spaced, masked) against the
  usual genuine mix. Others plug in with ``--family NAME=module:function``.

``--only NAME`` (repeatable) runs the named shifts only.

Per shift: PR-AUC, block precision and recall of both fusions, and the floors: the learned
fusion's block precision >= 0.98, its block recall >= the zero-shot block recall - 0.02, and no
listing the zero-shot fusion scores >= 0.95 allowed by the model without a legitimate context.
"""

from __future__ import annotations

import argparse
import importlib
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sklearn.metrics import average_precision_score

from benchmarks import run_record, write_results
from models.features import OPTIONAL_INPUTS, legitimate_context_expr
from models.fusion import EVIDENCE_FLOOR_RISK
from pipelines.learn import train_model
from pipelines.registry import Registry, default_registry_dir, load_registry
from pipelines.stages import ScoringPlan, score_frame
from seeds.marketplace import (
    FAKE_KINDS,
    generate_everyday,
    generate_marketplace,
    generate_small_goods,
)

RESULTS = Path(__file__).resolve().parent / "results" / "bench_shift.json"
#: the floors the learned fusion is held to under every shift
FLOORS = {"block_precision": 0.98, "recall_margin": 0.02, "floor_violations": 0}
#: a robustness family: ``(registry, n, seed) -> labelled listings`` (contract columns,
#: ``label`` and ``kind``)
Family = Callable[[Registry, int, int], pl.DataFrame]

DISGUISES = (
    "fake_typo",
    "fake_confusable",
    "fake_fullwidth",
    "fake_zero_width",
    "fake_leet",
    "fake_spaced",
    "fake_masked",
)
#: the ``other_mix`` shift's kind weights (the generator's own for kinds not named)
OTHER_MIX: dict[str, float] = {
    # stealth: disguised or plain names at a low price and premium copies, few phrases
    "fake_phrase": 0.03,
    "fake_native": 0.02,
    **dict.fromkeys(DISGUISES, 0.10),
    "fake_low_price": 0.30,
    "fake_premium": 0.20,
    # more accessories, used and refurbished goods
    "genuine_accessory": 0.25,
    "genuine_used": 0.25,
    "genuine_refurbished": 0.10,
}


def disguised_names(registry: Registry, n: int, seed: int) -> pl.DataFrame:
    """Counterfeits written with every disguise of the generator, against the usual genuine
    mix (no photos)."""
    weights = {k: 0.0 for k in FAKE_KINDS if k not in DISGUISES}
    return generate_marketplace(registry, n, seed=seed, kinds=weights)


FAMILIES: dict[str, Family] = {"disguised_names": disguised_names}


def _load_family(spec: str) -> tuple[str, Family]:
    name, _, target = spec.partition("=")
    module, _, func = target.partition(":")
    if not (name and module and func):
        raise SystemExit(f"--family {spec!r}: expected NAME=module:function")
    fn = getattr(importlib.import_module(module), func)
    return name, fn


def _block_pr(y: np.ndarray, block: np.ndarray) -> tuple[float | None, float | None]:
    tp = int((block & (y == 1)).sum())
    flagged = int(block.sum())
    positives = int((y == 1).sum())
    return (tp / flagged if flagged else None, tp / positives if positives else None)


def measure(scored: pl.DataFrame, zero_block: float) -> dict[str, Any]:
    """Both fusions' PR-AUC and block precision / recall on one scored shift, and the
    evidence-floor violations of the model."""
    ok = scored.filter(pl.col("status") == "ok")
    y = ok.get_column("label").cast(pl.Int64).to_numpy()
    learned = ok.get_column("risk").to_numpy()
    zero = ok.get_column("zero_shot_risk").to_numpy()
    lp, lr = _block_pr(y, (ok.get_column("decision") == "block").to_numpy())
    zp, zr = _block_pr(y, zero >= zero_block)
    context = legitimate_context_expr(set(ok.columns))
    violations = ok.filter(
        (pl.col("zero_shot_risk") >= EVIDENCE_FLOOR_RISK)
        & (pl.col("decision") == "allow")
        & context.is_null()
    ).height
    both = y.min() != y.max()
    return {
        "n": len(y),
        "positives": int(y.sum()),
        "learned": {
            "pr_auc": float(average_precision_score(y, learned)) if both else None,
            "block_precision": lp,
            "block_recall": lr,
        },
        "zero_shot": {
            "pr_auc": float(average_precision_score(y, zero)) if both else None,
            "block_precision": zp,
            "block_recall": zr,
        },
        "floor_violations": violations,
    }


def floors_met(m: dict[str, Any]) -> dict[str, bool]:
    """Which floors one shift meets (a precision with nothing blocked counts as unmet)."""
    lp, lr = m["learned"]["block_precision"], m["learned"]["block_recall"]
    zr = m["zero_shot"]["block_recall"]
    return {
        "block_precision": lp is not None and lp >= FLOORS["block_precision"],
        "block_recall": lr is not None and (zr is None or lr >= zr - FLOORS["recall_margin"]),
        "evidence_floor": m["floor_violations"] <= FLOORS["floor_violations"],
    }


def shifts(
    registry: Registry,
    images: Path,
    *,
    n: int,
    families: dict[str, Family],
) -> dict[str, pl.DataFrame]:
    """Every shift's labelled listings."""
    from seeds.images import attach_images

    other = generate_marketplace(registry, n, seed=1, true_brand=True)
    other = attach_images(other, registry, images, seed=1).drop("true_brand")
    out = {"another_seed": other}
    for column in OPTIONAL_INPUTS:
        out[f"without_{column}"] = other.drop(column)
    rng = np.random.default_rng(7)
    sellers = other.get_column("seller_id").to_numpy()
    out["mixed_sellers"] = other.with_columns(pl.Series("seller_id", rng.permutation(sellers)))
    mix = generate_marketplace(registry, n, seed=2, true_brand=True, kinds=OTHER_MIX)
    out["other_mix"] = attach_images(mix, registry, images, seed=2).drop("true_brand")
    half = n // 2
    out["everyday"] = pl.concat(
        [generate_everyday(registry, half, seed=3), generate_small_goods(registry, half, seed=3)]
    )
    for name, family in families.items():
        out[name] = family(registry, n, 4)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--n", type=int, default=6000, help="training listings")
    ap.add_argument("--test-n", type=int, default=4000, help="listings per shift")
    ap.add_argument("--brands", type=int, default=40, help="brands with registry photos")
    ap.add_argument("--family", action="append", default=[], help="NAME=module:function")
    ap.add_argument("--only", action="append", default=[], help="run only this shift (repeatable)")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    from filters.image import build_image_cache
    from seeds.images import attach_images, sample_registry

    families = dict(FAMILIES)
    families.update(_load_family(spec) for spec in args.family)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_shift_") as tmp:
        root = Path(tmp)
        base = load_registry(default_registry_dir())
        reg_dir = sample_registry(base, root / "registry", base.brand_names[: args.brands])
        registry = load_registry(reg_dir)
        build_image_cache(registry)
        images = root / "images"
        market = generate_marketplace(registry, args.n, seed=0, true_brand=True)
        market = attach_images(market, registry, images, seed=0).drop("true_brand")
        market.write_parquet(root / "train.parquet")
        model = root / "model.skops"
        t = time.perf_counter()
        card = train_model(root / "train.parquet", registry=reg_dir, images=images, out=model)
        train_seconds = time.perf_counter() - t
        plan = ScoringPlan.build(registry, images_root=images, model=model)
        zero_block = ScoringPlan.build(registry).thresholds.block
        results: dict[str, Any] = {}
        chosen = shifts(registry, images, n=args.test_n, families=families)
        unknown = sorted(set(args.only) - set(chosen))
        if unknown:
            raise SystemExit(f"--only {unknown}: no such shift (known: {sorted(chosen)})")
        for name, frame in chosen.items():
            if args.only and name not in args.only:
                continue
            scored = score_frame(frame, plan, keep_evidence=True)
            m = measure(scored, zero_block)
            m["floors_met"] = floors_met(m)
            results[name] = m
            lm, zm = m["learned"], m["zero_shot"]
            print(
                f"{name:22s} learned AP {lm['pr_auc']:.4f} P {lm['block_precision'] or 0:.4f} "
                f"R {lm['block_recall'] or 0:.4f} | zero-shot AP {zm['pr_auc']:.4f} "
                f"P {zm['block_precision'] or 0:.4f} R {zm['block_recall'] or 0:.4f} | "
                f"floor violations {m['floor_violations']} {m['floors_met']}",
                flush=True,
            )
    report = {
        "train": {
            "listings": args.n,
            "brands_with_photos": args.brands,
            "seconds": round(train_seconds, 1),
            "thresholds": {k: card["thresholds"][k] for k in ("block", "review")},
            "oof_flag_rates": card["oof_flag_rates"],
            "inputs": card["inputs"],
        },
        "zero_shot_thresholds": {"block": zero_block},
        "floors": FLOORS,
        "families": sorted(families),
        "shifts": results,
        "all_floors_met": all(all(m["floors_met"].values()) for m in results.values()),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    out = Path(args.out)
    if out.resolve() == RESULTS:
        write_results("bench_shift", report)
    else:
        report["run"] = run_record("bench_shift", argv)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"all floors met: {report['all_floors_met']} -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
