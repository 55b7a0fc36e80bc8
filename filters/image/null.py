"""How near unrelated photographs come: the chance model behind the image filter's match band
and match strength.

The image filter compares a listing photo with every reference hash of the registry (each
reference photo in :data:`filters.image.VARIANTS` variants) by the combined distance, pHash +
dHash Hamming distance (0-128). Two unrelated photographs are rarely near, but they are compared
many times: a registry of 1,000 photos is 14,000 comparisons per listing photo. So whether a
distance is evidence depends on the number of comparisons.

The distance between unrelated real photographs was measured on the sample photographs that
scikit-image, matplotlib and scikit-learn ship, cropped many ways (``benchmarks/
bench_image_robustness.py``, section ``images``). Its lower tail, the only part that matters, is
fitted by a beta-binomial distribution on 128 trials (:data:`NULL_TAIL`), which follows the
measured share of pairs within distance d from d = 16 (about 1 pair in 100 million) to d = 48
and continues it smoothly below, where no sample can measure it. Then, for a listing photo and
``m`` reference hashes, the chance that some unrelated reference lies within ``d`` is at most
``1 - (1 - F(d)) ** m`` (F the per-pair tail); variants of one photo are correlated, so this
overstates the chance.

- **Match band**: the largest ``d`` whose chance stays within :data:`CHANCE_BUDGET` (1 in
  100,000 listings), at most :data:`MAX_BAND`.
- **Match strength**: how many orders of magnitude the chance of ``d`` lies below the budget,
  over :data:`STRENGTH_DECADES`: 0 at the edge of the band, 1 once the chance is a hundred times
  below it. It falls with distance, without a step. A hundred is the measured gap between
  unrelated photos in general and photos of similar material (portraits, alike in framing as
  the product photos of one category are, come up to about 100 times nearer): a match at full
  strength stays within the budget even among photos of one kind.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import numpy.typing as npt

#: bits of a combined (pHash + dHash) hash pair
BITS = 128
#: (alpha, beta) of the beta-binomial fitted to the lower tail of the combined distance between
#: unrelated real photographs (:func:`fit_null_tail`; ``bench_image_robustness.py`` re-derives it)
NULL_TAIL = (22.77, 16.26)
#: the chance of a false match a listing photo may run against the whole registry
CHANCE_BUDGET = 1e-5
#: orders of magnitude below the budget at which a match reaches full strength
STRENGTH_DECADES = 2.0
#: the band never goes beyond this (the search cost and the pHash cap were set for it)
MAX_BAND = 28


def _log10_tail(alpha: float, beta: float) -> np.ndarray:
    """log10 P(D <= d) for d = 0..128 under BetaBinomial(128, alpha, beta)."""
    from scipy.special import betaln, gammaln

    k = np.arange(BITS + 1, dtype=np.float64)
    log_pmf = (
        gammaln(BITS + 1.0)
        - gammaln(k + 1.0)
        - gammaln(BITS - k + 1.0)
        + betaln(k + alpha, BITS - k + beta)
        - betaln(alpha, beta)
    )
    log_cdf = np.logaddexp.accumulate(log_pmf)
    return np.minimum(log_cdf, 0.0) / math.log(10)


@functools.lru_cache(maxsize=8)
def _tail_table(alpha: float, beta: float) -> np.ndarray:
    table = _log10_tail(alpha, beta)
    table.flags.writeable = False
    return table


def pair_chance(distance: npt.ArrayLike, tail: tuple[float, float] = NULL_TAIL) -> np.ndarray:
    """P(D <= distance) for one unrelated (photo, reference hash) pair.

    Examples
    --------
    >>> float(pair_chance(64)) > 0.3, float(pair_chance(16)) < 1e-7
    (True, True)
    """
    d = np.clip(np.asarray(distance, dtype=np.int64), -1, BITS)
    table = _tail_table(*tail)
    out = np.where(d < 0, 0.0, 10.0 ** table[np.maximum(d, 0)])
    return np.asarray(out, dtype=np.float64)


def chance_within(
    distance: npt.ArrayLike, comparisons: int, tail: tuple[float, float] = NULL_TAIL
) -> np.ndarray:
    """The chance that an unrelated photo lies within ``distance`` of at least one of
    ``comparisons`` reference hashes: ``1 - (1 - F(d)) ** comparisons``.

    Examples
    --------
    >>> bool(chance_within(20, 14_000) > chance_within(20, 14))
    True
    """
    f = pair_chance(distance, tail)
    return np.asarray(-np.expm1(max(comparisons, 0) * np.log1p(-np.minimum(f, 1 - 1e-16))))


def match_band(
    comparisons: int,
    *,
    budget: float = CHANCE_BUDGET,
    limit: int = MAX_BAND,
    tail: tuple[float, float] = NULL_TAIL,
) -> int:
    """The largest combined distance (at most ``limit``) whose chance against ``comparisons``
    reference hashes stays within ``budget``; -1 when even distance 0 exceeds it.

    Examples
    --------
    >>> match_band(14) > match_band(14_000) > match_band(1_400_000)
    True
    """
    d = np.arange(limit + 1)
    ok = np.flatnonzero(chance_within(d, comparisons, tail) <= budget)
    return int(ok.max()) if ok.size else -1


def match_strength(
    distance: npt.ArrayLike,
    comparisons: int,
    *,
    budget: float = CHANCE_BUDGET,
    tail: tuple[float, float] = NULL_TAIL,
) -> np.ndarray:
    """Strength of a match at ``distance`` in [0, 1]: the orders of magnitude its chance lies
    below ``budget``, over :data:`STRENGTH_DECADES`.

    Examples
    --------
    >>> s = match_strength([0, 8, 12, 40], 3_000)
    >>> bool(s[0] == 1.0 and s[0] >= s[1] >= s[2] > s[3] == 0.0)
    True
    """
    chance = chance_within(distance, comparisons, tail)
    with np.errstate(divide="ignore"):
        decades = np.log10(budget) - np.log10(chance)
    return np.clip(decades / STRENGTH_DECADES, 0.0, 1.0)


def fit_null_tail(
    counts: npt.ArrayLike, *, low: int = 16, high: int = 48, min_pairs: int = 5
) -> tuple[float, float]:
    """Fit (alpha, beta) of a beta-binomial on 128 trials to the lower tail of measured
    combined distances.

    ``counts[d]`` is the number of unrelated pairs at distance ``d``. The fit minimises the
    squared error of log10 P(D <= d) over ``low <= d <= high`` where at least ``min_pairs``
    pairs lie within ``d``, each point weighted by the log of that count (a tail point
    measured on few pairs is noisy).
    """
    from scipy.optimize import minimize

    h = np.asarray(counts, dtype=np.float64)
    if h.size != BITS + 1 or h.sum() <= 0:
        raise ValueError(f"counts must hold {BITS + 1} non-negative counts, not all zero")
    cum = np.cumsum(h)
    d = np.arange(BITS + 1)
    sel = (d >= low) & (d <= high) & (cum >= min_pairs)
    if sel.sum() < 3:
        raise ValueError(
            f"too few measured pairs below distance {high} to fit the tail "
            f"({int(cum[min(high, BITS)])} pairs)"
        )
    target = np.log10(cum[sel] / h.sum())
    weight = np.log(cum[sel])

    def loss(x: np.ndarray) -> float:
        a, b = np.exp(x)
        model = _log10_tail(float(a), float(b))[sel]
        return float((weight * (model - target) ** 2).sum())

    mean = float((h * d).sum() / h.sum()) / BITS
    start = np.log([20.0 * mean + 1e-3, 20.0 * (1 - mean) + 1e-3])
    res = minimize(loss, start, method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-9})
    a, b = np.exp(res.x)
    return round(float(a), 2), round(float(b), 2)


__all__ = [
    "CHANCE_BUDGET",
    "MAX_BAND",
    "NULL_TAIL",
    "STRENGTH_DECADES",
    "chance_within",
    "fit_null_tail",
    "match_band",
    "match_strength",
    "pair_chance",
]
