"""Seller evidence: how a seller's listings look together.

A seller whose listings mostly name brands with counterfeit signals, or sell branded goods far
below their price, is more likely to be a counterfeiter than the same listing from a seller of
plain goods. These shares are run-level statistics (one seller's listings may be anywhere in
the input), so the filter exposes them through :meth:`statistic_values`: the Spark runner
aggregates them over the whole input and broadcasts the result, and a local batch aggregates
over itself. The filter adds evidence for the learned fusion only: ``seller_score`` is null and
the zero-shot fusion does not read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import polars as pl

from filters.base import Filter, check_is_fitted

if TYPE_CHECKING:
    from typing import Self

    from pipelines.registry import Registry

#: the brand columns a listing's brand may come from, most specific first
BRAND_COLUMNS: tuple[str, ...] = ("text_brand", "price_brand", "image_brand")


class SellerFilter(Filter):
    """Shares of a seller's listings with a strong text signal and with a low branded price.

    Parameters
    ----------
    high_text_score : a listing counts as "high text" from this ``text_score`` on
    low_price_ratio : a branded listing below this share of its reference price counts as
        "luxury at a low price"
    """

    name: ClassVar[str] = "seller"
    evidence_schema: ClassVar[dict[str, pl.DataType]] = {
        "seller_share_high_text": pl.Float64(),
        "seller_luxury_low_price": pl.Float64(),
        "seller_listings": pl.Int64(),
    }
    depends_on: ClassVar[tuple[str, ...]] = ("text", "image", "price")

    def __init__(self, *, high_text_score: float = 0.5, low_price_ratio: float = 0.3) -> None:
        self.high_text_score = high_text_score
        self.low_price_ratio = low_price_ratio

    def fit(self, registry: Registry) -> Self:
        if not 0.0 <= self.high_text_score <= 1.0:
            raise ValueError("high_text_score must be in [0, 1]")
        if not self.low_price_ratio > 0.0:
            raise ValueError("low_price_ratio must be > 0")
        self.cutoffs_ = (float(self.high_text_score), float(self.low_price_ratio))
        return self

    def _flags(self, cols: set[str]) -> tuple[pl.Expr, pl.Expr]:
        high_text, low_ratio = self.cutoffs_
        text = (
            (pl.col("text_score") >= high_text)
            if "text_score" in cols
            else pl.lit(None, pl.Boolean)
        )
        brands = [c for c in BRAND_COLUMNS if c in cols]
        branded = pl.coalesce(brands).is_not_null() if brands else pl.lit(False)
        ratio = pl.col("price_ratio") < low_ratio if "price_ratio" in cols else pl.lit(None)
        # a missing flag counts as "not flagged": shares are over all of the seller's listings
        return (
            text.fill_null(False).cast(pl.Float64),
            (ratio & branded).fill_null(False).cast(pl.Float64),
        )

    def statistic_values(self, listings: pl.LazyFrame) -> pl.LazyFrame:
        """``seller_id`` and the two flags of every listing that has a seller."""
        check_is_fitted(self)
        cols = set(listings.collect_schema().names())
        if "seller_id" not in cols:
            return pl.LazyFrame(
                schema={"seller_id": pl.String, "__high_text": pl.Float64, "__low_lux": pl.Float64}
            )
        high, low = self._flags(cols)
        return listings.filter(pl.col("seller_id").is_not_null()).select(
            pl.col("seller_id").cast(pl.String), high.alias("__high_text"), low.alias("__low_lux")
        )

    def statistics_from_values(self, values: pl.LazyFrame) -> pl.LazyFrame:
        """Per seller: the mean of each flag and the number of listings."""
        return values.group_by("seller_id").agg(
            pl.col("__high_text").mean().alias("seller_share_high_text"),
            pl.col("__low_lux").mean().alias("seller_luxury_low_price"),
            pl.len().cast(pl.Int64).alias("seller_listings"),
        )

    def _score(
        self, listings: pl.LazyFrame, statistics: pl.DataFrame | None = None
    ) -> pl.LazyFrame:
        cols = listings.collect_schema().names()
        extra = [
            pl.lit(None, pl.Float64).alias("seller_score"),
            pl.lit([], pl.List(pl.String)).alias("seller_reasons"),
        ]
        if "seller_id" not in cols:
            nulls = [pl.lit(None, t).alias(c) for c, t in self.evidence_schema.items()]
            return listings.with_columns(*extra, *nulls)
        if statistics is None:
            # the batch's own statistics as window aggregates: a join would gather every
            # column of the batch (twice the cost)
            high, low = self._flags(set(cols))
            seller = pl.col("seller_id").cast(pl.String)
            has = pl.col("seller_id").is_not_null()
            return listings.with_columns(
                *extra,
                pl.when(has).then(high.mean().over(seller)).alias("seller_share_high_text"),
                pl.when(has).then(low.mean().over(seller)).alias("seller_luxury_low_price"),
                pl.when(has).then(pl.len().over(seller).cast(pl.Int64)).alias("seller_listings"),
            ).select([*cols, *self.output_schema()])
        stats = statistics.lazy()
        keyed = listings.with_columns(pl.col("seller_id").cast(pl.String).alias("__seller"))
        joined = keyed.join(
            stats.rename({"seller_id": "__seller"}),
            on="__seller",
            how="left",
            maintain_order="left",
        )
        return joined.with_columns(*extra).select([*cols, *self.output_schema()])

    def score_record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The seller evidence of one listing scored alone (a batch of one)."""
        check_is_fitted(self)
        out: dict[str, Any] = {"seller_score": None, "seller_reasons": []}
        seller = record.get("seller_id")
        if "seller_id" not in record or seller is None:
            out.update(dict.fromkeys(self.evidence_schema))
            return out
        high_text, low_ratio = self.cutoffs_
        score = record.get("text_score")
        ratio = record.get("price_ratio")
        branded = any(record.get(c) is not None for c in BRAND_COLUMNS)
        out["seller_share_high_text"] = 1.0 if score is not None and score >= high_text else 0.0
        low = ratio is not None and ratio < low_ratio and branded
        out["seller_luxury_low_price"] = 1.0 if low else 0.0
        out["seller_listings"] = 1
        return out
