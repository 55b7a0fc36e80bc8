"""Decision thresholds: ``block`` at or above one risk, ``review`` at or above a lower one."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


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
