"""Learned fusion: a calibrated, monotone gradient-boosted model over the filters' evidence.

:class:`FusionModel` is a scikit-learn classifier (histogram gradient boosting, which handles
missing values natively, wrapped in probability calibration). :class:`LearnedFusion` is the
drop-in replacement for :class:`models.zeroshot.ZeroShotFusion` in the scoring chain, and
:func:`train` fits one from labelled, scored listings with cross-validated metrics and
decision thresholds picked on out-of-fold scores.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from models.compiled import CompiledFusion
from models.features import FEATURES, feature_frame, feature_values
from models.report import labels, pr_metrics
from models.thresholds import Thresholds, thresholds_from_scores
from pipelines.errors import ModelError

#: known directions: +1 = a higher value never lowers the risk, -1 = never raises it
MONOTONE: dict[str, int] = {
    "text_score": 1,
    "price_score": 1,
    "image_score": 1,
    "text_strong_phrases": 1,
    # a lower price relative to the brand's reference never makes a listing look more genuine
    "price_log_ratio": -1,
}


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
        proba = self.calibrated_.predict_proba(self._active(X))
        return np.asarray(proba, dtype=np.float64)

    def predict(self, X: Any) -> npt.NDArray[Any]:
        """The most probable class."""
        proba = self.predict_proba(X)
        return np.asarray(self.classes_[np.argmax(proba, axis=1)])


# ---------------------------------------------------------------- fusion


@dataclass
class LearnedFusion:
    """A trained :class:`FusionModel` with its features, thresholds and model card.

    ``risk`` has the same interface as :meth:`models.zeroshot.ZeroShotFusion.risk`.
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
        """Add ``risk`` (Float64 in [0, 1]).

        Collects ``lf``: the model predicts on a matrix.
        """
        frame = lf.collect()
        risk = pl.Series("risk", self.predict(frame), dtype=pl.Float64)
        return frame.with_columns(risk).lazy()


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
) -> npt.NDArray[np.float64]:
    """Out-of-fold positive-class probabilities from stratified ``folds``-fold training."""
    oof = np.empty(len(y), dtype=np.float64)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for train_idx, test_idx in splitter.split(X, y):
        fold = FusionModel(**model.get_params()).fit(X[train_idx], y[train_idx])
        oof[test_idx] = fold.predict_proba(X[test_idx])[:, 1]
    return oof


def train(
    frame: pl.DataFrame,
    *,
    label: str = "label",
    registry_fingerprint: str,
    target_precision: float = 0.99,
    review_share: float = 0.02,
    seed: int = 0,
    folds: int = 5,
    **params: Any,
) -> LearnedFusion:
    """Train a :class:`LearnedFusion` on scored, labelled listings.

    Metrics and thresholds come from ``folds``-fold stratified out-of-fold probabilities (so
    they describe unseen listings); the returned model is then refit on all rows. ``params``
    go to :class:`FusionModel`.
    """
    try:
        y = labels(frame, label)
    except ValueError as e:
        raise ModelError(f"cannot train: {e}") from e
    counts = np.bincount(y, minlength=2)
    if counts.min() < folds:
        raise ModelError(
            f"cannot train: need at least {folds} listings of each class, "
            f"have {int(counts[0])} genuine and {int(counts[1])} counterfeit"
        )
    X = feature_matrix(frame)
    model = FusionModel(feature_names=FEATURES, random_state=seed, **params)
    oof = out_of_fold(model, X, y, folds=folds, seed=seed)
    thresholds, block_enabled = thresholds_from_scores(
        y, oof, target_precision=target_precision, review_share=review_share
    )
    model.fit(X, y)
    card: dict[str, Any] = {
        "features": list(FEATURES),
        "registry_fingerprint": registry_fingerprint,
        "training_data_sha256": data_hash(X, y),
        "n_rows": len(y),
        "class_balance": {"genuine": int(counts[0]), "counterfeit": int(counts[1])},
        "cv": {"folds": folds, "seed": seed, "stratified": True},
        "metrics": pr_metrics(y, oof),
        "thresholds": {
            "block": thresholds.block,
            "review": thresholds.review,
            "block_enabled": block_enabled,
            "target_precision": target_precision,
            "review_share": review_share,
        },
        "params": {k: v for k, v in model.get_params().items() if k != "feature_names"},
    }
    return LearnedFusion(model=model, thresholds=thresholds, features=FEATURES, card=card)
