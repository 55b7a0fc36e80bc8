"""Zero-shot fusion: a fixed, documented, monotone combination of the filter scores.

Used when no trained model is given. Each filter's score ``s_f`` (null counts as 0) is treated as
independent evidence with weight ``w_f`` and combined as a noisy-OR::

    risk = 1 - prod_f (1 - w_f * s_f)

so raising any score never lowers the risk, one strong signal is enough, and several weak
signals add up. Default weights: text 1.0, image 1.0, price 0.9 (a low price alone can be a sale).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

DEFAULT_WEIGHTS: dict[str, float] = {"text": 1.0, "image": 1.0, "price": 0.9}


@dataclass(frozen=True)
class ZeroShotFusion:
    """Noisy-OR of filter scores.

    Examples
    --------
    >>> df = pl.DataFrame({"text_score": [0.1, 0.0], "price_score": [1.0, None]})
    >>> ZeroShotFusion().risk(df.lazy()).collect().get_column("risk").round(2).to_list()
    [0.91, 0.0]
    """

    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))

    def risk_expr(self, columns: set[str]) -> pl.Expr:
        keep = pl.lit(1.0)
        for name, weight in self.weights.items():
            col = f"{name}_score"
            if col in columns:
                keep = keep * (1.0 - weight * pl.col(col).fill_null(0.0).clip(0.0, 1.0))
        return (1.0 - keep).clip(0.0, 1.0)

    def risk_record(self, row: Mapping[str, Any]) -> float:
        """:meth:`risk` of one scored listing (a mapping with the filters' columns)."""
        keep = 1.0
        for name, weight in self.weights.items():
            col = f"{name}_score"
            if col in row:
                value = row[col]
                s = 0.0 if value is None else min(max(float(value), 0.0), 1.0)
                keep = keep * (1.0 - weight * s)
        return min(max(1.0 - keep, 0.0), 1.0)

    def risk(self, lf: pl.LazyFrame) -> pl.LazyFrame:
        """Add ``risk`` (Float64 in [0, 1])."""
        cols = set(lf.collect_schema().names())
        return lf.with_columns(self.risk_expr(cols).cast(pl.Float64).alias("risk"))
