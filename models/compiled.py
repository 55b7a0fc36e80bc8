"""A fitted :class:`~models.fusion.FusionModel` flattened into arrays for one-row predictions.

scikit-learn's ``predict_proba`` costs milliseconds per call whatever the number of rows
(validation, thread pools, one call per calibration fold). A crawler scoring one listing needs
well under a millisecond, so :class:`CompiledFusion` walks all boosted trees of all calibration
folds at once with numpy and applies the calibrators itself. It reproduces ``predict_proba``:
the trees' leaf values are summed in the booster's order, and the isotonic and sigmoid
calibrators use scikit-learn's (scipy's) formulas, then the model's smoothing
(:func:`models.fusion.smoothed`). ``tests/test_record_path.py`` checks it against
``predict_proba``.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from scipy.special import expit
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression


class FittedFusion(Protocol):
    """What :meth:`CompiledFusion.of` reads of a fitted :class:`models.fusion.FusionModel`
    (which uses this module, so this module does not import it)."""

    classes_: Any
    active_features_: npt.NDArray[np.bool_]
    calibrated_: Any
    smoothing_n_: float


@dataclass(frozen=True)
class _Calibrator:
    """Isotonic (``x``, ``y`` thresholds, clipped to their range) or sigmoid (``a``, ``b``)."""

    kind: str
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    a: float = 0.0
    b: float = 0.0

    @classmethod
    def of(cls, calibrator: Any) -> _Calibrator | None:
        if isinstance(calibrator, IsotonicRegression):
            if calibrator.out_of_bounds != "clip" or not calibrator.increasing_:
                return None
            x = tuple(float(v) for v in calibrator.X_thresholds_)
            y = tuple(float(v) for v in calibrator.y_thresholds_)
            return cls("isotonic", x=x, y=y)
        if hasattr(calibrator, "a_") and hasattr(calibrator, "b_"):
            return cls("sigmoid", a=float(calibrator.a_), b=float(calibrator.b_))
        return None

    def __call__(self, t: float) -> float:
        if self.kind == "sigmoid":
            return float(expit(-(self.a * t + self.b)))
        x, y = self.x, self.y
        if len(y) == 1:
            return y[0]
        t = min(max(t, x[0]), x[-1])
        # scipy.interpolate.interp1d(kind="linear") step by step
        hi = min(max(bisect_left(x, t), 1), len(x) - 1)
        lo = hi - 1
        slope = (y[hi] - y[lo]) / (x[hi] - x[lo])
        return slope * (t - x[lo]) + y[lo]


class _Forests:
    """The trees of binary HistGradientBoostingClassifiers (one per calibration fold), as one
    set of flat arrays, so that a single walk serves all of them."""

    def __init__(self, boosters: list[HistGradientBoostingClassifier]) -> None:
        feats, thrs, mgls, lefts, rights, values = [], [], [], [], [], []
        roots: list[int] = []
        self.baselines: list[float] = []
        self.tree_slices: list[slice] = []
        depth = offset = 0
        for booster in boosters:
            if booster.n_trees_per_iteration_ != 1 or booster.is_categorical_ is not None:
                raise ValueError("only binary boosters without categorical features compile")
            first = len(roots)
            for (predictor,) in booster._predictors:
                nodes = predictor.nodes
                own = np.arange(len(nodes), dtype=np.int64) + offset
                leaf = nodes["is_leaf"].astype(bool)
                roots.append(offset)
                feats.append(np.where(leaf, 0, nodes["feature_idx"]).astype(np.int64))
                thrs.append(nodes["num_threshold"].astype(np.float64))
                mgls.append(nodes["missing_go_to_left"].astype(bool))
                # a leaf points to itself: walking on from a leaf stays there
                lefts.append(np.where(leaf, own, nodes["left"].astype(np.int64) + offset))
                rights.append(np.where(leaf, own, nodes["right"].astype(np.int64) + offset))
                values.append(nodes["value"].astype(np.float64))
                depth = max(depth, int(nodes["depth"].max()))
                offset += len(nodes)
            self.tree_slices.append(slice(first, len(roots)))
            self.baselines.append(float(np.asarray(booster._baseline_prediction).ravel()[0]))
        self.feature = np.concatenate(feats)
        self.threshold = np.concatenate(thrs)
        self.missing_left = np.concatenate(mgls)
        self.left = np.concatenate(lefts)
        self.right = np.concatenate(rights)
        self.value = np.concatenate(values)
        self.roots = np.asarray(roots, dtype=np.int64)
        self.depth = depth

    def raw(self, x: npt.NDArray[np.float64]) -> list[float]:
        """Each booster's decision function for one row."""
        cur = self.roots
        for _ in range(self.depth):
            xv = x[self.feature[cur]]
            go_left = np.where(xv != xv, self.missing_left[cur], xv <= self.threshold[cur])
            cur = np.where(go_left, self.left[cur], self.right[cur])
        leaves = self.value[cur]
        out = []
        for base, part in zip(self.baselines, self.tree_slices, strict=True):
            # summed one tree after another from the baseline, as the booster does
            out.append(float(np.cumsum(np.concatenate(([base], leaves[part])))[-1]))
        return out


class CompiledFusion:
    """``FusionModel.predict_proba(x)[positive]`` for one row, without scikit-learn's overhead.

    Build with :meth:`of`, which returns None for a model shape it does not handle (the caller
    then uses ``predict_proba``).
    """

    def __init__(
        self,
        active: npt.NDArray[np.bool_],
        forests: _Forests,
        calibrators: list[_Calibrator] | None,
        smoothing_n: float,
    ) -> None:
        self.active = active
        self.forests = forests
        self.calibrators = calibrators
        self.smoothing_n = smoothing_n

    @classmethod
    def of(cls, model: FittedFusion) -> CompiledFusion | None:
        classes = list(model.classes_)
        if classes != [0, 1] or not model.active_features_.any():
            return None
        fitted = model.calibrated_
        active = np.asarray(model.active_features_)
        n = float(model.smoothing_n_)
        try:
            if isinstance(fitted, CalibratedClassifierCV):
                boosters, cals = [], []
                for cc in fitted.calibrated_classifiers_:
                    cal = _Calibrator.of(cc.calibrators[0]) if len(cc.calibrators) == 1 else None
                    if cal is None or not isinstance(cc.estimator, HistGradientBoostingClassifier):
                        return None
                    boosters.append(cc.estimator)
                    cals.append(cal)
                return cls(active, _Forests(boosters), cals, n)
            if isinstance(fitted, HistGradientBoostingClassifier):
                return cls(active, _Forests([fitted]), None, n)
        except (ValueError, AttributeError, KeyError):
            return None
        return None

    def predict_one(self, features: list[float | None]) -> float:
        """Counterfeit probability of one row of features (None = missing)."""
        x = np.array([math.nan if v is None else v for v in features], dtype=np.float64)
        raws = self.forests.raw(x[self.active])
        if self.calibrators is None:
            p = float(expit(raws[0]))
        else:
            total = 0.0
            for raw, cal in zip(raws, self.calibrators, strict=True):
                q = cal(raw)
                if 1.0 < q <= 1.0 + 1e-5:
                    q = 1.0
                total += q
            p = total / len(self.calibrators)
        # models.fusion.smoothed, for two classes
        n = self.smoothing_n
        return (min(max(p, 0.0), 1.0) * n + 1.0) / (n + 2)
