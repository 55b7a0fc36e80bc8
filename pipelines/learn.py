"""``fakestop train`` and ``fakestop bench``: the learned fusion on labelled listings."""

from __future__ import annotations

import warnings as warnings_module
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from models.features import FEATURES, OPTIONAL_INPUTS
from models.fusion import (
    FusionModel,
    choose_thresholds,
    evidence_floor_exprs,
    feature_matrix,
    out_of_fold,
    train,
)
from models.persist import save_model
from models.report import bench, labels, write_report
from models.thresholds import Thresholds
from models.zeroshot import ZeroShotFusion
from pipelines.config import load_settings
from pipelines.errors import FakestopError
from pipelines.registry import load_registry
from pipelines.schema import ROW, conform, read_listings
from pipelines.stages import MAX_REASONS, ScoringPlan, score_frame

#: columns ``bench`` compares, column -> display name
FILTER_COLUMNS = {"text_score": "text", "price_score": "price", "image_score": "image"}
BASELINE_COLUMNS = {"mean": "mean of filters", "max": "max of filters"}


#: each optional input present in the training listings is dropped from a listing's copy
#: with this probability, independently of the others: every combination of present and
#: missing inputs a user may send is about equally common among the copies
INPUT_DROP_RATE = 0.5
#: appended to a copy's listing_id (copies are scored with their listings, ids must differ)
COPY_SUFFIX = "#inputs-dropped"
#: of the copies that keep their seller, this share get a seller id drawn at random from
#: theirs instead (a permutation): counterfeiters and honest shops then share accounts, so
#: the model sees seller statistics that do not follow the label and cannot learn to block
#: on seller evidence alone
SELLER_SHUFFLE_RATE = 0.5
#: appended to a shuffled seller id, so that shuffled accounts form their own sellers and
#: leave the statistics of the listings as given untouched
SHUFFLED_SELLER_SUFFIX = "#shuffled"


def present_inputs(frame: pl.DataFrame) -> dict[str, float]:
    """The optional inputs (:data:`models.features.OPTIONAL_INPUTS`) ``frame`` holds, with
    the share of its rows that have a value."""
    out = {}
    for col in OPTIONAL_INPUTS:
        if col in frame.columns and frame.height:
            share = 1.0 - frame.get_column(col).null_count() / frame.height
            if share > 0:
                out[col] = round(share, 6)
    return out


def with_inputs_dropped(
    frame: pl.DataFrame,
    inputs: list[str],
    *,
    seed: int,
    rate: float = INPUT_DROP_RATE,
    shuffle_rate: float = SELLER_SHUFFLE_RATE,
) -> pl.DataFrame:
    """``frame`` followed by a copy of each listing in which each of ``inputs`` is set to
    null with probability ``rate`` (a null value reads as a missing column: the filters
    and features treat both alike). When ``seller_id`` is among ``inputs``, a copy that keeps
    its seller gets, with probability ``shuffle_rate``, the seller of another such copy
    (a random permutation among them), suffixed :data:`SHUFFLED_SELLER_SUFFIX`."""
    rng = np.random.default_rng(seed)
    copy = frame.drop(ROW, strict=False).with_columns(pl.col("listing_id") + COPY_SUFFIX)
    masks = {col: rng.random(frame.height) < rate for col in inputs}
    dropped = [
        pl.when(pl.Series(mask))
        .then(pl.lit(None, dtype=copy.schema[col]))
        .otherwise(pl.col(col))
        .alias(col)
        for col, mask in masks.items()
    ]
    copy = copy.with_columns(dropped) if dropped else copy
    if "seller_id" in masks:
        copy = _sellers_shuffled(copy, ~masks["seller_id"], rng, shuffle_rate)
    return pl.concat([frame.drop(ROW, strict=False), copy], how="vertical_relaxed")


def _sellers_shuffled(
    copy: pl.DataFrame, kept: npt.NDArray[np.bool_], rng: np.random.Generator, rate: float
) -> pl.DataFrame:
    sellers = copy.get_column("seller_id").cast(pl.String)
    chosen = kept & sellers.is_not_null().to_numpy() & (rng.random(copy.height) < rate)
    at = np.flatnonzero(chosen)
    if len(at) < 2:
        return copy
    values = sellers.to_numpy().copy()
    values[at] = [f"{v}{SHUFFLED_SELLER_SUFFIX}" for v in values[at][rng.permutation(len(at))]]
    return copy.with_columns(pl.Series("seller_id", values, dtype=pl.String))


def shuffled_sellers(frame: pl.DataFrame) -> npt.NDArray[np.bool_]:
    """Rows of a training set whose seller was shuffled (:func:`with_inputs_dropped`)."""
    if "seller_id" not in frame.columns:
        return np.zeros(frame.height, dtype=bool)
    ids = frame.get_column("seller_id").cast(pl.String)
    return ids.str.ends_with(SHUFFLED_SELLER_SUFFIX).fill_null(False).to_numpy()


@dataclass
class TrainingSet:
    """Scored, labelled listings (and their copies with inputs dropped) for ``train``."""

    frame: pl.DataFrame
    augmented: npt.NDArray[np.bool_]
    groups: npt.NDArray[np.int64]
    #: copies whose seller id was shuffled (a subset of ``augmented``)
    shuffled: npt.NDArray[np.bool_]
    inputs: dict[str, Any]
    quarantined: int


def training_set(
    source: str | Path | pl.DataFrame,
    plan: ScoringPlan,
    *,
    label: str = "label",
    seed: int = 0,
    drop_inputs: bool = True,
) -> TrainingSet:
    """Score labelled listings (a file, or a frame) for training: each listing as given and,
    with ``drop_inputs``, a copy of it with optional inputs dropped at random
    (:func:`with_inputs_dropped`)."""
    if isinstance(source, pl.DataFrame):
        frame = conform(source, source="listings frame", settings=plan.settings)
        path = "listings frame"
    else:
        frame, path = read_listings(source, plan.settings), str(source)
    if label not in frame.columns:
        raise FakestopError(f"{path}: no label column {label!r} (0/1 or true/false expected)")
    present = present_inputs(frame)
    n = frame.height
    both = with_inputs_dropped(frame, list(present), seed=seed) if drop_inputs else frame
    scored = score_frame(both, plan, keep_evidence=True)
    ok = (scored.get_column("status") == "ok").to_numpy()
    copies = np.arange(scored.height) >= n
    groups = np.arange(scored.height) % max(n, 1)
    frame = scored.filter(pl.Series(ok))
    try:
        labels(frame, label)
    except ValueError as exc:
        raise FakestopError(f"{path}: {exc}") from None
    inputs = {
        "trained_with": list(present),
        "non_null_share": present,
        "dropped_at_random": list(present) if drop_inputs else [],
        "drop_rate": INPUT_DROP_RATE if drop_inputs else 0.0,
    }
    shuffled = copies[ok] & shuffled_sellers(frame)
    if drop_inputs and "seller_id" in present:
        inputs["seller_shuffle_rate"] = SELLER_SHUFFLE_RATE
        inputs["rows_with_sellers_shuffled"] = int(shuffled.sum())
    return TrainingSet(
        frame=frame,
        augmented=copies[ok],
        groups=groups[ok],
        shuffled=shuffled,
        inputs=inputs,
        quarantined=int((~ok[:n]).sum()),
    )


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
    allow_degenerate: bool = False,
) -> dict[str, Any]:
    """Train on ``labelled``, write the model and its card; returns the card.

    The model learns from each listing as given and from a copy with optional inputs dropped
    at random (:func:`training_set`). A degenerate model is refused
    (:class:`~pipelines.errors.DegenerateModelError`) unless ``allow_degenerate``.
    """
    reg = load_registry(registry)
    plan = ScoringPlan.build(reg, settings=load_settings(config), images_root=images)
    data = training_set(labelled, plan, label=label, seed=seed)
    fusion = train(
        data.frame,
        label=label,
        registry_fingerprint=reg.fingerprint,
        target_precision=target_precision,
        review_share=review_share,
        seed=seed,
        groups=data.groups,
        augmented=data.augmented,
        shuffled=data.shuffled,
        inputs=data.inputs,
        allow_degenerate=allow_degenerate,
    )
    fusion.card["quarantined_rows_left_out"] = data.quarantined
    save_model(fusion, out)
    return fusion.card


def _split_text(n_train: int | None, n_copies: int, n_test: int, how: str) -> str:
    copies = f" (+ {n_copies:,} copies with inputs dropped)" if n_copies else ""
    if n_train is None:
        return f"{how}; evaluated on {n_test:,} listings"
    return f"{how}: {n_train:,} listings{copies}; evaluated on {n_test:,} listings"


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

    The learned fusion is a given ``model``; else one trained on ``labelled`` (as ``fakestop
    train`` does) and evaluated on ``test``; else cross-validated on ``labelled`` (out-of-fold
    risks of ``folds`` folds, each listing held out with its copies). Its decisions and the
    zero-shot fusion's are both reported, each at its own thresholds: the configuration's
    ``[decision]`` if it has one, else the model's (learned) and the defaults (zero-shot).
    """
    reg = load_registry(registry)
    settings = load_settings(config)
    zero_plan = ScoringPlan.build(reg, settings=settings, images_root=images)
    warnings: list[str] = []
    if model is not None:
        plan = ScoringPlan.build(reg, settings=settings, images_root=images, model=model)
        frame, quarantined = scored_evidence(test or labelled, plan, label=label)
        card = getattr(plan.fusion, "card", {})
        cv = card.get("cv", {})
        how = f"trained model {Path(model).name}"
        split = _split_text(
            None,
            0,
            frame.height,
            f"{how}, trained on {card.get('n_rows', '?')} listings "
            f"({cv.get('folds', '?')}-fold cross-validated thresholds)",
        )
        learned, learned_from = plan.thresholds, plan.thresholds_from
    elif test is not None:
        data = training_set(labelled, zero_plan, label=label, seed=seed)
        with _kept_warnings(warnings):
            fusion = train(
                data.frame,
                label=label,
                registry_fingerprint=reg.fingerprint,
                seed=seed,
                groups=data.groups,
                augmented=data.augmented,
                shuffled=data.shuffled,
                inputs=data.inputs,
                allow_degenerate=True,
            )
        learned, learned_from = fusion.thresholds, "chosen out of fold on the training file"
        if settings.decision_from is not None:
            learned, learned_from = zero_plan.thresholds, zero_plan.thresholds_from
        plan = replace(zero_plan, fusion=fusion, thresholds=learned, thresholds_from=learned_from)
        frame, quarantined = scored_evidence(test, plan, label=label)
        how = f"learned fusion trained on {Path(labelled).name}, evaluated on {Path(test).name}"
        split = _split_text(
            int((~data.augmented).sum()), int(data.augmented.sum()), frame.height,
            f"trained on {Path(labelled).name}",
        )  # fmt: skip
    else:
        data = training_set(labelled, zero_plan, label=label, seed=seed)
        y = labels(data.frame, label)
        given = ~data.augmented
        counts = np.bincount(y[given], minlength=2)
        if counts.min() < folds:
            raise FakestopError(
                f"{labelled}: cross-validation needs at least {folds} listings of each class"
            )
        oof = out_of_fold(
            FusionModel(feature_names=FEATURES, random_state=seed),
            feature_matrix(data.frame),
            y,
            folds=folds,
            seed=seed,
            groups=data.groups,
        )
        learned, _ = choose_thresholds(y, oof, data.augmented, data.shuffled)
        learned_from = "chosen on the out-of-fold risks themselves (optimistic)"
        if settings.decision_from is not None:
            learned, learned_from = zero_plan.thresholds, zero_plan.thresholds_from
        frame = data.frame.filter(pl.Series(given)).with_columns(pl.Series("risk", oof[given]))
        frame = cross_validated_decisions(frame, learned)
        quarantined = data.quarantined
        how = f"learned fusion, {folds}-fold cross-validated on {Path(labelled).name}"
        split = (
            f"{folds}-fold cross-validation on {int(given.sum()):,} listings (+ "
            f"{int(data.augmented.sum()):,} copies with inputs dropped, each held out with "
            "its listing); every risk is out of fold"
        )
    zero = ZeroShotFusion().risk_expr(set(frame.columns))
    frame = frame.with_columns(zero.alias("zero_shot_risk")).with_columns(
        zero_plan.thresholds.decision_expr(pl.col("zero_shot_risk")).alias("zero_shot_decision")
    )
    scores = {
        **{c: n for c, n in FILTER_COLUMNS.items() if c in frame.columns},
        **BASELINE_COLUMNS,
        "zero_shot_risk": "zero-shot fusion",
        "risk": "learned fusion",
    }
    metrics = bench(
        frame,
        label=label,
        scores=scores,
        decisions={"learned fusion": "decision", "zero-shot fusion": "zero_shot_decision"},
    )
    metrics["learned_fusion"] = how
    metrics["quarantined_rows_left_out"] = quarantined
    metrics["setup"] = {
        "scorer": how,
        "thresholds": {
            "learned fusion": {**_th(learned), "from": learned_from},
            "zero-shot fusion": {
                **_th(zero_plan.thresholds),
                "from": zero_plan.thresholds_from,
            },
        },
        "split": split,
        "warnings": warnings,
    }
    return write_report(metrics, frame, report, label=label, images=images)


def _th(t: Thresholds) -> dict[str, float]:
    return {"block": t.block, "review": t.review}


@contextmanager
def _kept_warnings(into: list[str]) -> Iterator[None]:
    """Collect the UserWarnings raised inside (a kept degenerate model) as text."""
    with warnings_module.catch_warnings(record=True) as caught:
        warnings_module.simplefilter("always", UserWarning)
        yield
    into.extend(str(w.message) for w in caught)


def cross_validated_decisions(frame: pl.DataFrame, thresholds: Thresholds) -> pl.DataFrame:
    """Out-of-fold ``risk`` through the evidence floor, then ``decision`` and ``reasons``
    (the floor's reasons ahead of the filters'), as scoring with the model would give."""
    cols = set(frame.columns)
    zero = ZeroShotFusion().risk_expr(cols).alias("zero_shot_risk")
    floored = frame.with_columns(zero).with_columns(**evidence_floor_exprs(cols, thresholds))
    reasons = pl.concat_list(
        pl.col("fusion_reasons"), pl.col("reasons").fill_null(pl.lit([], pl.List(pl.String)))
    )
    return floored.with_columns(
        thresholds.decision_expr().alias("decision"),
        reasons.list.head(MAX_REASONS).alias("reasons"),
    )
