"""``fakestop train`` and ``fakestop bench``: the learned fusion on labelled listings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from models.features import FEATURES
from models.fusion import FusionModel, feature_matrix, out_of_fold, train
from models.persist import save_model
from models.report import bench, labels, write_report
from models.thresholds import thresholds_from_scores
from models.zeroshot import ZeroShotFusion
from pipelines.config import load_settings
from pipelines.errors import FakestopError
from pipelines.registry import load_registry
from pipelines.schema import read_listings
from pipelines.stages import ScoringPlan, score_frame

#: columns ``bench`` compares, column -> display name
FILTER_COLUMNS = {"text_score": "text", "price_score": "price", "image_score": "image"}
BASELINE_COLUMNS = {"mean": "mean of filters", "max": "max of filters"}


def scored_evidence(path: str | Path, plan: ScoringPlan, *, label: str) -> tuple[pl.DataFrame, int]:
    """Score a labelled file keeping every filter's evidence; returns the scored valid rows
    and the number of quarantined rows left out."""
    frame = read_listings(path, plan.settings)
    if label not in frame.columns:
        raise FakestopError(f"{path}: no label column {label!r} (0/1 or true/false expected)")
    scored = score_frame(frame, plan, keep_evidence=True)
    ok = scored.filter(pl.col("status") == "ok")
    try:
        labels(ok, label)
    except ValueError as exc:
        raise FakestopError(f"{path}: {exc}") from None
    return ok, scored.height - ok.height


def train_model(
    labelled: str | Path,
    *,
    registry: str | Path,
    out: str | Path,
    images: str | Path | None = None,
    label: str = "label",
    target_precision: float = 0.99,
    review_share: float = 0.02,
    seed: int = 0,
    config: str | Path | None = None,
) -> dict[str, Any]:
    """Train on ``labelled``, write the model and its card; returns the card."""
    reg = load_registry(registry)
    plan = ScoringPlan.build(reg, settings=load_settings(config), images_root=images)
    frame, quarantined = scored_evidence(labelled, plan, label=label)
    fusion = train(
        frame,
        label=label,
        registry_fingerprint=reg.fingerprint,
        target_precision=target_precision,
        review_share=review_share,
        seed=seed,
    )
    fusion.card["quarantined_rows_left_out"] = quarantined
    save_model(fusion, out)
    return fusion.card


def bench_labelled(
    labelled: str | Path,
    *,
    registry: str | Path,
    report: str | Path,
    images: str | Path | None = None,
    model: str | Path | None = None,
    test: str | Path | None = None,
    label: str = "label",
    seed: int = 0,
    config: str | Path | None = None,
    folds: int = 5,
) -> dict[str, Path]:
    """Compare every filter, the zero-shot fusion, the mean/max baselines and the learned
    fusion on labelled listings; writes ``report.html``, ``metrics.json`` and ``summary.md``.

    The learned fusion is a given ``model``; else one trained on ``labelled`` and evaluated on
    ``test``; else cross-validated (out-of-fold risks, ``folds`` folds) on ``labelled``.
    """
    reg = load_registry(registry)
    settings = load_settings(config)
    # with a model, one pass gives the evidence and the model's risk and decision
    plan = ScoringPlan.build(reg, settings=settings, images_root=images, model=model)
    frame, quarantined = scored_evidence(test or labelled, plan, label=label)
    zero = ZeroShotFusion().risk_expr(set(frame.columns))
    frame = frame.with_columns(zero.alias("zero_shot_risk"))
    how: str
    if model is not None:
        how = f"trained model {Path(model).name}"
    elif test is not None:
        train_frame, _ = scored_evidence(labelled, plan, label=label)
        fusion = train(train_frame, label=label, registry_fingerprint=reg.fingerprint, seed=seed)
        risk = fusion.predict(frame)
        frame = frame.with_columns(pl.Series("risk", risk)).with_columns(
            fusion.thresholds.decision_expr().alias("decision")
        )
        how = f"trained on {Path(labelled).name}, evaluated on {Path(test).name}"
    else:
        y = labels(frame, label)
        counts = np.bincount(y, minlength=2)
        if counts.min() < folds:
            raise FakestopError(
                f"{labelled}: cross-validation needs at least {folds} listings of each class"
            )
        oof = out_of_fold(
            FusionModel(feature_names=FEATURES, random_state=seed),
            feature_matrix(frame),
            y,
            folds=folds,
            seed=seed,
        )
        thresholds, _ = thresholds_from_scores(y, oof)
        frame = frame.with_columns(pl.Series("risk", oof)).with_columns(
            thresholds.decision_expr().alias("decision")
        )
        how = f"{folds}-fold cross-validated on {Path(labelled).name}"
    scores = {
        **{c: n for c, n in FILTER_COLUMNS.items() if c in frame.columns},
        **BASELINE_COLUMNS,
        "zero_shot_risk": "zero-shot fusion",
        "risk": "learned fusion",
    }
    metrics = bench(frame, label=label, scores=scores)
    metrics["learned_fusion"] = how
    metrics["quarantined_rows_left_out"] = quarantined
    return write_report(metrics, frame, report, label=label)
