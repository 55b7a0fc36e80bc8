"""Decision thresholds: ``block`` at or above one risk, ``review`` at or above a lower one."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

#: a block threshold above every possible risk: "never block"
NEVER = math.nextafter(1.0, math.inf)


@dataclass(frozen=True)
class Thresholds:
    """``risk >= block`` -> block; ``risk >= review`` -> review; otherwise allow."""

    block: float = 0.8
    review: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.review <= self.block <= 1.0:
            raise ValueError(f"need 0 <= review ({self.review}) <= block ({self.block}) <= 1")

    def decision_expr(self, risk: pl.Expr | None = None) -> pl.Expr:
        r = pl.col("risk") if risk is None else risk
        return (
            pl.when(r >= self.block)
            .then(pl.lit("block"))
            .when(r >= self.review)
            .then(pl.lit("review"))
            .otherwise(pl.lit("allow"))
        )


def pick_block_threshold(
    y: npt.ArrayLike, p: npt.ArrayLike, *, target_precision: float = 0.99
) -> float:
    """The lowest score ``t`` where ``precision(p >= t) >= target_precision``.

    Computed on held-out (out-of-fold) scores. Returns :data:`NEVER` (just above 1.0) when no
    threshold reaches the target, meaning "never block".
    """
    yv = np.asarray(y).astype(np.int64)
    pv = np.asarray(p, dtype=np.float64)
    if yv.shape != pv.shape or yv.ndim != 1:
        raise ValueError("y and p must be 1-d arrays of the same length")
    if not 0.0 < target_precision <= 1.0:
        raise ValueError(f"target_precision must be in (0, 1], not {target_precision}")
    if len(pv) == 0:
        return NEVER
    order = np.argsort(-pv, kind="stable")
    ps, ys = pv[order], yv[order]
    tp = np.cumsum(ys)
    n = np.arange(1, len(ps) + 1)
    # a threshold flags every tied score, so only the last row of each run of ties counts
    last = np.r_[ps[1:] != ps[:-1], True]
    precision = tp[last] / n[last]
    candidates = ps[last][precision >= target_precision]
    return float(candidates.min()) if len(candidates) else NEVER


def pick_review_threshold(p: npt.ArrayLike, *, share: float, block: float | None = None) -> float:
    """The lowest score ``t`` with at most ``share`` of all listings in the review band
    (``t <= p < block``; ``p >= t`` without ``block``); never above ``block``.

    ``share`` is a review budget, so ties are never split past it. Returns ``block`` (no
    review band) or :data:`NEVER` when even the single highest candidate would exceed it.
    """
    pv = np.asarray(p, dtype=np.float64)
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be in [0, 1], not {share}")
    t = NEVER
    total = len(pv)
    if block is not None:
        pv = pv[pv < block]
    if len(pv):
        ps = np.sort(pv)[::-1]
        n = np.arange(1, len(ps) + 1)
        last = np.r_[ps[1:] != ps[:-1], True]
        ok = ps[last][n[last] <= share * total + 1e-9]
        if len(ok):
            t = float(ok.min())
    return t if block is None else min(t, block)


def thresholds_from_scores(
    y: npt.ArrayLike,
    p: npt.ArrayLike,
    *,
    target_precision: float = 0.99,
    review_share: float = 0.02,
) -> tuple[Thresholds, bool]:
    """``block`` at ``target_precision`` and ``review`` from the budget, on held-out scores.

    Returns the thresholds (capped at 1.0) and whether blocking is enabled at all (False when
    no threshold reaches the target precision).
    """
    block = pick_block_threshold(y, p, target_precision=target_precision)
    review = pick_review_threshold(p, share=review_share, block=block)
    return Thresholds(block=min(block, 1.0), review=min(review, 1.0)), block <= 1.0
