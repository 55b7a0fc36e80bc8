"""Learned fusion: a calibrated, monotone gradient-boosted model over the filters' evidence.

:class:`FusionModel` is a scikit-learn classifier (histogram gradient boosting, which handles
missing values natively, wrapped in probability calibration). :class:`LearnedFusion` is the
drop-in replacement for :class:`models.zeroshot.ZeroShotFusion` in the scoring chain, and
:func:`train` fits one from labelled, scored listings with cross-validated metrics and
decision thresholds picked on out-of-fold scores.

Four rules keep a trained model from failing silently:

- probabilities are smoothed (one pseudo-listing of each class added to the training
  listings), so no risk is exactly 0 or 1 and thresholds never collapse onto them;
- the zero-shot risk is a monotone feature, and a listing the zero-shot fusion scores at
  :data:`EVIDENCE_FLOOR_RISK` or more is at least reviewed unless it states a legitimate
  context (:func:`evidence_floor_exprs`);
- a listing on which no single filter reaches :data:`AGREEMENT_BELOW_RISK` alone and that
  disguises no brand name (:data:`DISGUISE_KINDS`) is blocked only when at least
  :data:`AGREEMENT_FILTERS` filters show evidence of their own
  (:func:`speaking_filter_exprs`); otherwise it is at most reviewed, with a reason;
- :func:`train` refuses a degenerate model (:data:`MIN_CLASS_EXAMPLES`,
  :data:`MIN_DISTINCT_RISKS`, a block threshold that flags nothing out of fold) unless told
  to keep it.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from filters.core.errors import DegenerateModelError, ModelError
from filters.core.textops import pl_round, pl_str
from filters.seller import SellerFilter
from filters.text import KIND_SCORE
from models.compiled import CompiledFusion
from models.features import (
    FEATURES,
    OBFUSCATED_KINDS,
    OPTIONAL_INPUTS,
    feature_frame,
    feature_values,
    legitimate_context,
    legitimate_context_expr,
)
from models.report import labels, pr_metrics
from models.thresholds import Thresholds, pick_block_threshold, pick_review_threshold
from models.zeroshot import DEFAULT_WEIGHTS, ZeroShotFusion

#: known directions: +1 = a higher value never lowers the risk, -1 = never raises it
MONOTONE: dict[str, int] = {
    "text_score": 1,
    "price_score": 1,
    "image_score": 1,
    "text_strong_phrases": 1,
    # a lower price relative to the brand's reference never makes a listing look more genuine
    "price_log_ratio": -1,
    "zero_shot_risk": 1,
}

#: a listing the zero-shot fusion scores at or above this is at least reviewed under a model,
#: unless it states a legitimate context (see :func:`evidence_floor_exprs`)
EVIDENCE_FLOOR_RISK = 0.95
#: a listing on which no single filter reaches this zero-shot risk alone (the zero-shot
#: fusion's default review threshold: the filter's weight times its score,
#: :func:`strongest_filter_expr`) is blocked by a model only when :data:`AGREEMENT_FILTERS`
#: independent filters each show evidence of their own (:func:`speaking_filter_exprs`);
#: otherwise it is at most reviewed. A model learns how filters combine on its training data,
#: and off that data one filter's weak evidence can carry it alone (seller statistics where
#: counterfeiters and honest shops share accounts; a low price on a brand's own small goods,
#: which the price filter itself scores as weak): such a block has no second, independent
#: piece of evidence a reviewer could check. A plain brand mention adds to the zero-shot risk
#: but is no evidence, which is why the strongest single filter is compared, not the sum
AGREEMENT_BELOW_RISK = Thresholds().review
#: match kinds of a brand name written in disguise on purpose (look-alike or fullwidth letters,
#: hidden characters, spacing, leetspeak, masking; not typos, which honest sellers make): a
#: listing that disguises a brand name may be blocked on that alone, whatever the rest says.
#: The text filter lowers its score where the listing reads as an accessory, but nobody
#: disguises a brand's name to sell its genuine part
DISGUISE_KINDS = tuple(k for k in OBFUSCATED_KINDS if k != "typo")
#: filters that must agree to block a listing below :data:`AGREEMENT_BELOW_RISK`
AGREEMENT_FILTERS = 2
#: the text filter's score for a brand named plainly: naming a brand is not evidence of a
#: counterfeit, so the text filter speaks only above it (a disguise, a phrase, a mismatch)
PLAIN_MENTION_SCORE = KIND_SCORE["exact"]
#: the text score from which the seller filter counts a listing as suspicious
SELLER_HIGH_TEXT = SellerFilter().high_text_score
#: fewer labelled listings of a class than this and ``train`` refuses: each of the 5
#: out-of-fold models then holds out at least 10 of each class, and each calibration fold sees
#: both classes in numbers
MIN_CLASS_EXAMPLES = 50
#: out-of-fold risks taking fewer distinct values than this mean the calibration collapsed into
#: a step (risks of about 0 and 1 only): no threshold can be placed between listings
MIN_DISTINCT_RISKS = 10


def auto_monotonic_cst(feature_names: Sequence[str]) -> list[int]:
    """The :data:`MONOTONE` constraint of each feature (0 where none is known)."""
    return [MONOTONE.get(name, 0) for name in feature_names]


class FusionModel(ClassifierMixin, BaseEstimator):
    """Histogram gradient boosting with monotone constraints, calibrated by cross-validation.

    Parameters
    ----------
    feature_names : names of the columns of ``X``, in order; enables automatic monotone
        constraints (see :data:`MONOTONE`) and name-keyed ``monotonic_cst``
    monotonic_cst : per-feature constraints (-1/0/1), as a sequence or a ``name -> int``
        mapping; None = from ``feature_names`` if given, else unconstrained
    method : calibration, ``"isotonic"`` or ``"sigmoid"``
    cv : calibration folds (fewer when a class has fewer members; none below two)
    max_iter, learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization,
    early_stopping : passed to :class:`~sklearn.ensemble.HistGradientBoostingClassifier`
    random_state : seed of the boosting and of the calibration folds

    Probabilities are smoothed as if one listing of each class were added to the ``n``
    training listings: ``p' = (n * p + 1) / (n + k)`` for ``k`` classes. That keeps every
    probability strictly between 0 and 1 (an isotonic calibration gives exact 0 and 1 where the
    training data separates perfectly, which claims more certainty than ``n`` examples can
    support) without changing the order of any two listings.
    """

    def __init__(
        self,
        *,
        feature_names: Sequence[str] | None = None,
        monotonic_cst: Sequence[int] | Mapping[str, int] | None = None,
        method: str = "isotonic",
        cv: int = 3,
        max_iter: int = 100,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 20,
        l2_regularization: float = 0.0,
        early_stopping: str | bool = "auto",
        random_state: int | None = None,
    ) -> None:
        # scikit-learn convention: store the parameters untouched; validate in fit
        self.feature_names = feature_names
        self.monotonic_cst = monotonic_cst
        self.method = method
        self.cv = cv
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.early_stopping = early_stopping
        self.random_state = random_state

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def _constraints(self, n_features: int) -> list[int] | None:
        names = None if self.feature_names is None else list(self.feature_names)
        if names is not None and len(names) != n_features:
            raise ValueError(
                f"feature_names has {len(names)} names but X has {n_features} features"
            )
        cst = self.monotonic_cst
        if cst is None:
            return None if names is None else auto_monotonic_cst(names)
        if isinstance(cst, Mapping):
            if names is None:
                raise ValueError("a name-keyed monotonic_cst needs feature_names")
            unknown = sorted(set(cst) - set(names))
            if unknown:
                raise ValueError(f"monotonic_cst names unknown features: {unknown}")
            values = [int(cst.get(n, 0)) for n in names]
        else:
            values = [int(v) for v in cst]
            if len(values) != n_features:
                raise ValueError(
                    f"monotonic_cst has {len(values)} entries but X has {n_features} features"
                )
        if any(v not in (-1, 0, 1) for v in values):
            raise ValueError("monotonic_cst entries must be -1, 0 or 1")
        return values

    def fit(self, X: Any, y: Any) -> FusionModel:
        """Fit the boosted trees and their calibration."""
        if self.method not in ("isotonic", "sigmoid"):
            raise ValueError(f"method must be 'isotonic' or 'sigmoid', not {self.method!r}")
        if not isinstance(self.cv, int) or self.cv < 2:
            raise ValueError(f"cv must be an integer >= 2, not {self.cv!r}")
        X, y = validate_data(self, X, y, ensure_all_finite="allow-nan", dtype=np.float64)
        check_classification_targets(y)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"Classifier can't train when only one class is present: {self.classes_[0]!r}"
            )
        cst = self._constraints(X.shape[1])
        # a feature missing in every training row carries no information (and the boosting
        # binner rejects it): leave it out, remembering which ones were used
        self.active_features_ = ~np.all(np.isnan(X), axis=0)
        if cst is not None:
            cst = [c for c, a in zip(cst, self.active_features_, strict=True) if a]
        X = self._active(X)
        if cst is not None and not any(cst):
            cst = None
        if cst is not None and len(self.classes_) > 2:
            raise ValueError("monotone constraints need a binary target")
        self.monotonic_cst_ = cst
        booster = HistGradientBoostingClassifier(
            learning_rate=self.learning_rate,
            max_iter=self.max_iter,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            early_stopping=self.early_stopping,
            monotonic_cst=cst,
            random_state=self.random_state,
        )
        smallest = int(np.bincount(y_enc).min())
        folds = min(self.cv, smallest)
        if folds >= 2:
            cv = StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
            self.calibrated_: BaseEstimator = CalibratedClassifierCV(
                booster, method=self.method, cv=cv
            ).fit(X, y_enc)
        else:
            # too few members of a class to hold any out for calibration: raw probabilities
            self.calibrated_ = booster.fit(X, y_enc)
        self.n_iter_ = self._boosting_iterations()
        # the pseudo-counts' weight: see the class docstring
        self.smoothing_n_ = float(len(y_enc))
        return self

    def _active(self, X: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        if self.active_features_.any():
            return X[:, self.active_features_]
        return np.zeros((X.shape[0], 1))  # nothing known: the base rate

    def _boosting_iterations(self) -> int:
        """Most boosting iterations any of the fitted boosters ran (early stopping may cut)."""
        fitted = self.calibrated_
        if isinstance(fitted, CalibratedClassifierCV):
            return max(int(c.estimator.n_iter_) for c in fitted.calibrated_classifiers_)
        return int(fitted.n_iter_)

    def predict_proba(self, X: Any) -> npt.NDArray[np.float64]:
        """Calibrated class probabilities, columns in the order of ``classes_``."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype=np.float64)
        proba = np.asarray(self.calibrated_.predict_proba(self._active(X)), dtype=np.float64)
        return smoothed(proba, self.smoothing_n_)

    def predict(self, X: Any) -> npt.NDArray[Any]:
        """The most probable class."""
        proba = self.predict_proba(X)
        return np.asarray(self.classes_[np.argmax(proba, axis=1)])


def smoothed(proba: npt.NDArray[np.float64], n: float) -> npt.NDArray[np.float64]:
    """Class probabilities with one pseudo-observation of each class added to ``n``."""
    k = proba.shape[1] if proba.ndim == 2 else 2
    return (np.clip(proba, 0.0, 1.0) * n + 1.0) / (n + k)


# ---------------------------------------------------------------- evidence floor


def _cap(thresholds: Thresholds) -> float:
    """The risk a listing that may not be blocked is lowered to: just below ``block``, so that
    it is reviewed and keeps its rank among the listings (allowed only when ``review`` equals
    ``block``, i.e. there is no review band)."""
    return math.nextafter(thresholds.block, -math.inf)


def strongest_filter_expr(cols: set[str]) -> pl.Expr:
    """The largest zero-shot risk a single filter gives a listing on its own (weight times
    score, :data:`models.zeroshot.DEFAULT_WEIGHTS`; null scores count 0)."""
    parts = [
        pl.col(f"{name}_score").fill_null(0.0).clip(0.0, 1.0) * weight
        for name, weight in DEFAULT_WEIGHTS.items()
        if f"{name}_score" in cols
    ]
    return pl.max_horizontal(parts) if parts else pl.lit(0.0)


def strongest_filter(row: Mapping[str, Any]) -> float:
    """:func:`strongest_filter_expr` of one scored listing."""
    out = 0.0
    for name, weight in DEFAULT_WEIGHTS.items():
        value = row.get(f"{name}_score")
        if value is not None:
            out = max(out, min(max(float(value), 0.0), 1.0) * weight)
    return out


def speaking_filter_exprs(cols: set[str]) -> dict[str, pl.Expr]:
    """Per filter, whether it shows evidence of its own about a listing (null never does):

    - text: a score above a plain brand mention (:data:`PLAIN_MENTION_SCORE`);
    - price, image: any score;
    - seller: another of the seller's listings has suspicious text (its share of such
      listings counts one listing more than this one's own text adds). The seller's share of
      branded listings at a low price repeats the price filter's evidence across the account
      and is not independent of it, so it does not count.
    """
    out: dict[str, pl.Expr] = {}
    if "text_score" in cols:
        out["text"] = pl.col("text_score") > PLAIN_MENTION_SCORE
    for name in ("price", "image"):
        if f"{name}_score" in cols:
            out[name] = pl.col(f"{name}_score") > 0
    if {"seller_share_high_text", "seller_listings"} <= cols:
        own = (
            (pl.col("text_score") >= SELLER_HIGH_TEXT).fill_null(False).cast(pl.Float64)
            if "text_score" in cols
            else pl.lit(0.0)
        )
        suspicious = pl.col("seller_share_high_text") * pl.col("seller_listings").cast(pl.Float64)
        out["seller"] = suspicious - own >= 0.5
    return {k: e.fill_null(False) for k, e in out.items()}


def speaking_filters(row: Mapping[str, Any]) -> list[str]:
    """:func:`speaking_filter_exprs` of one scored listing: the names of the filters that
    show evidence of their own."""
    out = []
    text = row.get("text_score")
    if text is not None and text > PLAIN_MENTION_SCORE:
        out.append("text")
    for name in ("price", "image"):
        value = row.get(f"{name}_score")
        if value is not None and value > 0:
            out.append(name)
    share, listings = row.get("seller_share_high_text"), row.get("seller_listings")
    if share is not None and listings is not None:
        own = 1.0 if text is not None and text >= SELLER_HIGH_TEXT else 0.0
        if share * float(listings) - own >= 0.5:
            out.append("seller")
    return out


def evidence_floor_exprs(cols: set[str], thresholds: Thresholds) -> dict[str, pl.Expr]:
    """``risk`` raised to ``thresholds.review`` where the zero-shot fusion scores a listing at
    :data:`EVIDENCE_FLOOR_RISK` or more and it states no legitimate context, lowered just
    below ``thresholds.block`` (:func:`_cap`) where the model would block a listing on which
    no single filter reaches :data:`AGREEMENT_BELOW_RISK` (:func:`strongest_filter_expr`) with
    fewer than :data:`AGREEMENT_FILTERS` filters speaking (:func:`speaking_filter_exprs`) and
    no brand name disguised (:data:`DISGUISE_KINDS`),
    and ``fusion_reasons`` saying so (or saying which legitimate context let the model allow
    such a listing). Needs ``risk`` and ``zero_shot_risk``."""
    zs = pl.col("zero_shot_risk")
    risk = pl.col("risk")
    context = legitimate_context_expr(cols)
    strong = (zs >= EVIDENCE_FLOOR_RISK).fill_null(False) & (risk < thresholds.review)
    floor = strong & context.is_null()
    speaking = speaking_filter_exprs(cols)
    count = pl.sum_horizontal(e.cast(pl.Int32) for e in speaking.values()) if speaking else None
    spoke = pl.lit(0, pl.Int32) if count is None else count
    names = (
        pl.concat_str(
            [pl.when(e).then(pl.lit(n)) for n, e in speaking.items()],
            separator=", ",
            ignore_nulls=True,
        )
        if speaking
        else pl.lit("")
    )
    strongest = strongest_filter_expr(cols)
    disguised = (
        pl.col("text_match").cast(pl.String).str.to_lowercase().is_in(DISGUISE_KINDS)
        if "text_match" in cols
        else pl.lit(False)
    ).fill_null(False)
    alone = (
        (strongest < AGREEMENT_BELOW_RISK)
        & ~disguised
        & (risk >= thresholds.block)
        & (spoke < AGREEMENT_FILTERS)
    )
    cap = _cap(thresholds)
    reason = (
        pl.when(floor)
        .then(
            pl.format(
                "zero-shot risk {} and no legitimate context: at least review (model risk {})",
                zs.round(2),
                risk.round(3),
            )
        )
        .when(strong)
        .then(pl.format("zero-shot risk {} lowered by the model: {}", zs.round(2), context))
        .when(alone)
        .then(
            pl.format(
                "model risk {} but no filter above {} alone and evidence from {} filter(s) ({}): "
                "at most review (blocking needs {} filters)",
                risk.round(3),
                strongest.round(2),
                spoke,
                pl.when(names == "").then(pl.lit("none")).otherwise(names),
                pl.lit(AGREEMENT_FILTERS),
            )
        )
    )
    return {
        "risk": pl.when(floor)
        .then(pl.lit(thresholds.review))
        .when(alone)
        .then(pl.lit(cap))
        .otherwise(risk)
        .alias("risk"),
        "fusion_reasons": pl.when(reason.is_not_null())
        .then(pl.concat_list(reason))
        .otherwise(pl.lit([], dtype=pl.List(pl.String)))
        .alias("fusion_reasons"),
    }


def evidence_floor_record(
    row: Mapping[str, Any], thresholds: Thresholds
) -> tuple[float, list[str]]:
    """:func:`evidence_floor_exprs` for one scored listing: ``(risk, fusion_reasons)``."""
    risk = float(row["risk"])
    zs = row.get("zero_shot_risk")
    strongest = strongest_filter(row)
    match = row.get("text_match")
    disguised = match is not None and str(match).lower() in DISGUISE_KINDS
    if strongest < AGREEMENT_BELOW_RISK and not disguised and risk >= thresholds.block:
        speaking = speaking_filters(row)
        if len(speaking) >= AGREEMENT_FILTERS:
            return risk, []
        why = (
            f"model risk {pl_str(pl_round(risk, 3))} but no filter above "
            f"{pl_str(pl_round(strongest, 2))} alone and evidence from {len(speaking)} filter(s) "
            f"({', '.join(speaking) or 'none'}): at most review "
            f"(blocking needs {AGREEMENT_FILTERS} filters)"
        )
        return _cap(thresholds), [why]
    if zs is None or not (zs >= EVIDENCE_FLOOR_RISK and risk < thresholds.review):
        return risk, []
    context = legitimate_context(row)
    shown = pl_str(pl_round(zs, 2))
    if context is None:
        model = pl_str(pl_round(risk, 3))
        why = f"zero-shot risk {shown} and no legitimate context: at least review"
        return thresholds.review, [f"{why} (model risk {model})"]
    return risk, [f"zero-shot risk {shown} lowered by the model: {context}"]


# ---------------------------------------------------------------- fusion


@dataclass
class LearnedFusion:
    """A trained :class:`FusionModel` with its features, thresholds and model card.

    ``risk`` has the same interface as :meth:`models.zeroshot.ZeroShotFusion.risk`;
    :meth:`evidence_floor` then applies the zero-shot evidence floor for the run's thresholds.
    """

    model: FusionModel
    thresholds: Thresholds
    features: tuple[str, ...] = FEATURES
    card: dict[str, Any] = field(default_factory=dict)

    def predict(self, frame: pl.DataFrame) -> npt.NDArray[np.float64]:
        """The counterfeit probability of each row of a scored frame."""
        X = feature_matrix(frame, self.features)
        if len(X) == 0:
            return np.zeros(0, dtype=np.float64)
        proba = self.model.predict_proba(X)
        positive = int(np.flatnonzero(self.model.classes_ == 1)[0])
        return np.clip(proba[:, positive], 0.0, 1.0)

    def risk_record(self, row: Mapping[str, Any]) -> float:
        """:meth:`risk` of one scored listing (a mapping with the filters' columns)."""
        unknown = [f for f in self.features if f not in FEATURES]
        if unknown:
            raise ModelError(f"the model expects features this version cannot compute: {unknown}")
        values = dict(zip(FEATURES, feature_values(row), strict=True))
        x = [values[f] for f in self.features]
        compiled = self._compiled()
        if compiled is not None:
            return compiled.predict_one(x)
        X = np.array([[np.nan if v is None else v for v in x]], dtype=np.float64)
        proba = self.model.predict_proba(X)
        positive = int(np.flatnonzero(self.model.classes_ == 1)[0])
        return float(np.clip(proba[0, positive], 0.0, 1.0))

    def _compiled(self) -> CompiledFusion | None:
        # built on first use; a race only builds it twice
        if "_compiled_model" not in self.__dict__:
            self.__dict__["_compiled_model"] = CompiledFusion.of(self.model)
        compiled: CompiledFusion | None = self.__dict__["_compiled_model"]
        return compiled

    def risk(self, lf: pl.LazyFrame) -> pl.LazyFrame:
        """Add ``risk`` (Float64 in (0, 1)) and ``zero_shot_risk``.

        Collects ``lf``: the model predicts on a matrix.
        """
        frame = lf.collect()
        risk = pl.Series("risk", self.predict(frame), dtype=pl.Float64)
        zero = ZeroShotFusion().risk_expr(set(frame.columns)).alias("zero_shot_risk")
        return frame.with_columns(risk).with_columns(zero).lazy()

    def evidence_floor(self, lf: pl.LazyFrame, thresholds: Thresholds) -> pl.LazyFrame:
        """Raise ``risk`` to ``thresholds.review`` where strong zero-shot evidence stands
        unexplained, and add ``fusion_reasons`` (see :func:`evidence_floor_exprs`)."""
        cols = set(lf.collect_schema().names())
        return lf.with_columns(**evidence_floor_exprs(cols, thresholds))

    def evidence_floor_record(
        self, row: Mapping[str, Any], thresholds: Thresholds
    ) -> tuple[float, list[str]]:
        """:meth:`evidence_floor` of one listing whose ``risk`` is set: ``(risk, reasons)``."""
        if "zero_shot_risk" not in row:
            row = {**row, "zero_shot_risk": ZeroShotFusion().risk_record(row)}
        return evidence_floor_record(row, thresholds)

    @property
    def trained_inputs(self) -> tuple[str, ...]:
        """The optional input columns the model was trained with (see ``train``)."""
        inputs = self.card.get("inputs", {}).get("trained_with", [])
        return tuple(str(c) for c in inputs)

    def missing_inputs(self, present: Iterable[str]) -> list[str]:
        """The optional inputs the model was trained with that ``present`` lacks."""
        have = set(present)
        return [c for c in self.trained_inputs if c not in have]


def missing_inputs_message(missing: Sequence[str]) -> str:
    """One line naming the inputs a model was trained with that the listings lack."""
    parts = [f"{c} ({OPTIONAL_INPUTS.get(c, 'its evidence')})" for c in missing]
    return (
        "the model was trained with optional inputs these listings lack: "
        + "; ".join(parts)
        + ". It was trained for their absence too, but their evidence is missing."
    )


def feature_matrix(
    frame: pl.DataFrame, features: Sequence[str] = FEATURES
) -> npt.NDArray[np.float64]:
    """The features of a scored frame as a float64 matrix (null -> NaN)."""
    unknown = [f for f in features if f not in FEATURES]
    if unknown:
        raise ModelError(f"the model expects features this version cannot compute: {unknown}")
    feats = feature_frame(frame.lazy()).select(list(features)).collect()
    return np.ascontiguousarray(feats.to_numpy(), dtype=np.float64)


def data_hash(X: npt.NDArray[np.float64], y: npt.NDArray[np.int64]) -> str:
    """sha256 over the feature matrix and the labels, in a fixed byte layout."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(X, dtype="<f8").tobytes())
    h.update(np.ascontiguousarray(y, dtype="<i8").tobytes())
    return h.hexdigest()


def out_of_fold(
    model: FusionModel,
    X: npt.NDArray[np.float64],
    y: npt.NDArray[np.int64],
    *,
    folds: int = 5,
    seed: int = 0,
    groups: npt.ArrayLike | None = None,
) -> npt.NDArray[np.float64]:
    """Out-of-fold positive-class probabilities from stratified ``folds``-fold training.

    Rows sharing a ``groups`` value (a listing and its copies with inputs dropped) are held
    out together, so that no listing is predicted by a model trained on a copy of itself.
    """
    oof = np.empty(len(y), dtype=np.float64)
    splitter: StratifiedKFold | StratifiedGroupKFold
    if groups is None:
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
        splits = splitter.split(X, y)
    else:
        splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
        splits = splitter.split(X, y, np.asarray(groups))
    for train_idx, test_idx in splits:
        fold = FusionModel(**model.get_params()).fit(X[train_idx], y[train_idx])
        oof[test_idx] = fold.predict_proba(X[test_idx])[:, 1]
    return oof


def flag_rates(
    y: npt.NDArray[np.int64], risk: npt.NDArray[np.float64], thresholds: Thresholds
) -> dict[str, float | int | None]:
    """Share of listings at or above each threshold, and block precision / recall."""
    n = len(y)
    block = risk >= thresholds.block
    review = (risk >= thresholds.review) & ~block
    tp = int((block & (y == 1)).sum())
    flagged = int(block.sum())
    positives = int((y == 1).sum())
    return {
        "n": n,
        "block": flagged / n if n else None,
        "review": int(review.sum()) / n if n else None,
        "block_precision": tp / flagged if flagged else None,
        "block_recall": tp / positives if positives else None,
    }


def too_few_examples(counts: npt.NDArray[np.int64]) -> str | None:
    """Why ``counts`` (genuine, counterfeit) are too few to train on (None = enough)."""
    if counts.min() >= MIN_CLASS_EXAMPLES:
        return None
    return (
        f"{int(counts[1])} counterfeit and {int(counts[0])} genuine listings, fewer than the "
        f"{MIN_CLASS_EXAMPLES} of each class a model needs"
    )


def degenerate_reasons(
    counts: npt.NDArray[np.int64], oof: npt.NDArray[np.float64], block_flags: int
) -> list[str]:
    """Why a trained model would not work (empty when it is fine)."""
    problems = [] if (few := too_few_examples(counts)) is None else [few]
    distinct = len(np.unique(oof))
    if distinct < MIN_DISTINCT_RISKS:
        problems.append(
            f"the calibration collapsed: out-of-fold risks take only {distinct} distinct "
            f"values (at least {MIN_DISTINCT_RISKS} expected)"
        )
    if block_flags == 0:
        problems.append("the block threshold flags no listing of its own out-of-fold data")
    return problems


def top_of_gap(y: npt.NDArray[np.int64], oof: npt.NDArray[np.float64], block: float) -> float:
    """``block`` raised to the lowest counterfeit risk at or above it: the same out-of-fold
    listings are blocked, but the threshold sits at the top of the gap that separates them from
    the genuine listings below rather than at its bottom. Training data that separates the
    classes widely leaves such a gap, and a threshold at its bottom has no margin: genuine
    listings a little off the training data (sellers mixed, everyday goods) cross it."""
    above = oof[(y == 1) & (oof >= block)]
    return float(above.min()) if len(above) else block


def choose_thresholds(
    y: npt.NDArray[np.int64],
    oof: npt.NDArray[np.float64],
    copies: npt.NDArray[np.bool_] | None = None,
    shuffled: npt.NDArray[np.bool_] | None = None,
    *,
    target_precision: float = 0.99,
    review_share: float = 0.02,
) -> tuple[Thresholds, float]:
    """Thresholds from out-of-fold risks: ``block`` the lowest risk whose precision reaches
    ``target_precision`` on the listings as given, on their ``copies`` (with inputs dropped)
    and on the copies whose sellers were ``shuffled`` each, then raised to the top of the gap
    (:func:`top_of_gap`); ``review`` the review budget's on the listings as given. Returns the
    thresholds (capped at 1.0) and the uncapped block threshold (above 1.0 = never blocks)."""
    copies = np.zeros(len(y), dtype=bool) if copies is None else copies
    shuffled = np.zeros(len(y), dtype=bool) if shuffled is None else shuffled
    given = ~copies
    blocks = [
        pick_block_threshold(y[part], oof[part], target_precision=target_precision)
        for part in (given, copies)
        if part.any() and y[part].min() != y[part].max()
    ]
    block = max(blocks) if blocks else pick_block_threshold(y, oof)
    if shuffled.any() and y[shuffled].min() != y[shuffled].max():
        # the copies with shuffled sellers raise the threshold where they can; where no
        # threshold reaches the target on them (few copies), the two-filter rule still holds
        mixed = pick_block_threshold(y[shuffled], oof[shuffled], target_precision=target_precision)
        if mixed <= 1.0:
            block = max(block, mixed)
    if block <= 1.0:
        block = top_of_gap(y, oof, block)
    review = pick_review_threshold(oof[given], share=review_share, block=block)
    return Thresholds(block=min(block, 1.0), review=min(review, 1.0)), block


def train(
    frame: pl.DataFrame,
    *,
    label: str = "label",
    registry_fingerprint: str,
    target_precision: float = 0.99,
    review_share: float = 0.02,
    seed: int = 0,
    folds: int = 5,
    groups: npt.ArrayLike | None = None,
    augmented: npt.ArrayLike | None = None,
    shuffled: npt.ArrayLike | None = None,
    inputs: Mapping[str, Any] | None = None,
    allow_degenerate: bool = False,
    **params: Any,
) -> LearnedFusion:
    """Train a :class:`LearnedFusion` on scored, labelled listings.

    Metrics and thresholds come from ``folds``-fold stratified out-of-fold probabilities (so
    they describe unseen listings); the returned model is then refit on all rows. ``params``
    go to :class:`FusionModel`.

    ``augmented`` marks rows that are copies of other rows with optional inputs dropped, and
    ``groups`` ties each copy to its listing (see :func:`pipelines.learn.with_inputs_dropped`):
    copies are held out with their listing, the block threshold reaches ``target_precision``
    on the listings as given and on the copies each, and the class counts are of the listings
    as given. ``shuffled`` marks the copies whose sellers were shuffled: the block threshold
    reaches ``target_precision`` on them too. ``inputs`` goes to the card as it is.

    Raises :class:`~filters.core.errors.DegenerateModelError` (one line naming every problem)
    when a class has fewer than :data:`MIN_CLASS_EXAMPLES` listings, the out-of-fold risks
    take fewer than :data:`MIN_DISTINCT_RISKS` values, or the block threshold flags nothing
    out of fold; with ``allow_degenerate`` the model is returned with the problems in its
    card's ``warnings`` and a :class:`UserWarning`.
    """
    try:
        y = labels(frame, label)
    except ValueError as e:
        raise ModelError(f"cannot train: {e}") from e
    copies = (
        np.zeros(len(y), dtype=bool) if augmented is None else np.asarray(augmented, dtype=bool)
    )
    if copies.shape != y.shape:
        raise ValueError("augmented must have one flag per row")
    mixed = np.zeros(len(y), dtype=bool) if shuffled is None else np.asarray(shuffled, dtype=bool)
    if mixed.shape != y.shape:
        raise ValueError("shuffled must have one flag per row")
    given = ~copies
    counts = np.bincount(y[given], minlength=2)
    if counts.min() < folds:
        raise ModelError(
            f"cannot train: need at least {folds} listings of each class, "
            f"have {int(counts[0])} genuine and {int(counts[1])} counterfeit"
        )
    few = too_few_examples(counts)
    if few is not None and not allow_degenerate:
        # refused before the cross-validation's cost
        raise DegenerateModelError(f"cannot train: {few} (--allow-degenerate to keep it)")
    X = feature_matrix(frame)
    model = FusionModel(feature_names=FEATURES, random_state=seed, **params)
    oof = out_of_fold(model, X, y, folds=folds, seed=seed, groups=groups)
    thresholds, block = choose_thresholds(
        y, oof, copies, mixed, target_precision=target_precision, review_share=review_share
    )
    rates = {"as_given": flag_rates(y[given], oof[given], thresholds)}
    if copies.any():
        rates["inputs_dropped"] = flag_rates(y[copies], oof[copies], thresholds)
    if mixed.any():
        rates["sellers_shuffled"] = flag_rates(y[mixed], oof[mixed], thresholds)
    block_flags = int((oof >= block).sum())
    problems = degenerate_reasons(counts, oof, block_flags)
    if problems and not allow_degenerate:
        raise DegenerateModelError(
            "cannot train: " + "; ".join(problems) + " (--allow-degenerate to keep it)"
        )
    for problem in problems:
        warnings.warn(f"degenerate model kept: {problem}", UserWarning, stacklevel=2)
    model.fit(X, y)
    card: dict[str, Any] = {
        "features": list(FEATURES),
        "registry_fingerprint": registry_fingerprint,
        "training_data_sha256": data_hash(X, y),
        "n_rows": int(given.sum()),
        "n_rows_with_inputs_dropped": int(copies.sum()),
        "class_balance": {"genuine": int(counts[0]), "counterfeit": int(counts[1])},
        "inputs": dict(inputs or {}),
        "cv": {"folds": folds, "seed": seed, "stratified": True, "grouped": groups is not None},
        "metrics": pr_metrics(y[given], oof[given]),
        "metrics_inputs_dropped": pr_metrics(y[copies], oof[copies]) if copies.any() else None,
        "oof_flag_rates": rates,
        "thresholds": {
            "block": thresholds.block,
            "review": thresholds.review,
            "block_enabled": block <= 1.0,
            "target_precision": target_precision,
            "review_share": review_share,
            "block_at": "top of the out-of-fold gap (lowest counterfeit risk at or above the "
            "lowest threshold reaching the target precision)",
        },
        "calibration": {
            "method": model.method,
            "smoothing": "one pseudo-listing of each class: p' = (n p + 1) / (n + 2)",
            "distinct_oof_risks": len(np.unique(oof)),
        },
        "evidence_floor": {"zero_shot_risk": EVIDENCE_FLOOR_RISK, "at_least": "review"},
        "agreement": {
            "zero_shot_risk_below": AGREEMENT_BELOW_RISK,
            "block_needs_filters": AGREEMENT_FILTERS,
            "else_at_most": "review",
        },
        "warnings": problems,
        "params": {k: v for k, v in model.get_params().items() if k != "feature_names"},
    }
    return LearnedFusion(model=model, thresholds=thresholds, features=FEATURES, card=card)
