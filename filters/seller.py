"""Seller evidence: how a seller's listings look together.

A seller whose listings mostly name brands with counterfeit signals, or sell branded goods far
below their price, is more likely to be a counterfeiter than the same listing from a seller of
plain goods. These shares are run statistics (one seller's listings may be anywhere in the
input): the filter flags each listing in its evidence step, the flags are counted per seller
over a whole input (exactly, see :class:`filters.aggregates.GroupSums`), and the final step
reads each listing's seller's shares. A seller the statistics have not seen is taken as a
seller with this one listing: its shares are the listing's own flags and its count 1. The filter
adds evidence for the learned fusion only: ``seller_score`` is null and the zero-shot fusion does
not read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import polars as pl

from filters.aggregates import GroupSums
from filters.base import Filter, check_is_fitted

if TYPE_CHECKING:
    from typing import Self

    from filters.core.registry import Registry

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
    carried_schema: ClassVar[dict[str, pl.DataType]] = {
        "__seller_high_text": pl.Int64(),
        "__seller_low_price": pl.Int64(),
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
            text.fill_null(False).cast(pl.Int64),
            (ratio & branded).fill_null(False).cast(pl.Int64),
        )

    def _evidence(self, listings: pl.LazyFrame) -> pl.LazyFrame:
        high, low = self._flags(set(listings.collect_schema().names()))
        return listings.with_columns(
            pl.lit(None, pl.Float64).alias("seller_score"),
            pl.lit([], pl.List(pl.String)).alias("seller_reasons"),
            high.alias("__seller_high_text"),
            low.alias("__seller_low_price"),
        )

    # ---- run statistics: per seller, the listings and how many of them are flagged

    def aggregate(self) -> GroupSums:
        return GroupSums("seller_id", ("high_text", "low_price"))

    def statistic_values(self, evidence: pl.LazyFrame) -> pl.LazyFrame:
        """``seller_id`` and the two flags (0/1) of every listing that has a seller."""
        check_is_fitted(self)
        if "seller_id" not in evidence.collect_schema().names():
            return pl.LazyFrame(
                schema={"seller_id": pl.String, "high_text": pl.Int64, "low_price": pl.Int64}
            )
        return evidence.filter(pl.col("seller_id").is_not_null()).select(
            pl.col("seller_id").cast(pl.String),
            pl.col("__seller_high_text").alias("high_text"),
            pl.col("__seller_low_price").alias("low_price"),
        )

    def statistics_from_partial(self, partial: pl.DataFrame) -> pl.DataFrame:
        """Per seller: the share of each flag among its listings and the number of listings."""
        n = pl.col("n")
        return partial.select(
            pl.col("seller_id"),
            (pl.col("high_text") / n).alias("seller_share_high_text"),
            (pl.col("low_price") / n).alias("seller_luxury_low_price"),
            n.cast(pl.Int64).alias("seller_listings"),
        ).sort("seller_id")

    def record_statistics(self, statistics: pl.DataFrame) -> dict[str, tuple[Any, ...]]:
        return {
            s: (high, low, n)
            for s, high, low, n in statistics.select(
                "seller_id", "seller_share_high_text", "seller_luxury_low_price", "seller_listings"
            ).iter_rows()
        }

    def _finalised(self, evidence: pl.LazyFrame, statistics: pl.DataFrame) -> pl.LazyFrame:
        cols = evidence.collect_schema().names()
        if "seller_id" not in cols:
            return evidence.with_columns(
                pl.lit(None, t).alias(c) for c, t in self.evidence_schema.items()
            )
        frame = evidence.collect()
        known = self._gathered(frame.get_column("seller_id").cast(pl.String), statistics)
        # a seller the statistics have not seen: a seller with this one listing
        has = pl.col("seller_id").is_not_null()
        seen = pl.col("seller_listings").is_not_null()
        return (
            frame.hstack(known)
            .lazy()
            .with_columns(
                pl.when(seen)
                .then(pl.col("seller_share_high_text"))
                .when(has)
                .then(pl.col("__seller_high_text").cast(pl.Float64))
                .alias("seller_share_high_text"),
                pl.when(seen)
                .then(pl.col("seller_luxury_low_price"))
                .when(has)
                .then(pl.col("__seller_low_price").cast(pl.Float64))
                .alias("seller_luxury_low_price"),
                pl.when(seen)
                .then(pl.col("seller_listings"))
                .when(has)
                .then(pl.lit(1, pl.Int64))
                .alias("seller_listings"),
            )
        )

    def _gathered(self, sellers: pl.Series, statistics: pl.DataFrame) -> pl.DataFrame:
        """The statistics of each of ``sellers`` (null where unseen), found by binary search
        in the sorted seller column: a join would hash the whole table for every batch."""
        ids = statistics.get_column("seller_id")
        if ids.len() and not ids.is_sorted():
            statistics = statistics.sort("seller_id")
            ids = statistics.get_column("seller_id")
        if ids.len() == 0:
            return pl.DataFrame(
                {
                    c: pl.repeat(None, sellers.len(), dtype=t, eager=True)
                    for c, t in self.evidence_schema.items()
                }
            )
        at = ids.search_sorted(sellers, side="left").clip(0, ids.len() - 1)
        found = (ids.gather(at) == sellers).fill_null(False)
        at = pl.select(pl.when(found).then(at)).to_series()
        return pl.DataFrame(
            {
                c: statistics.get_column(c).cast(t).gather(at)
                for c, t in self.evidence_schema.items()
            }
        )

    def score_record(
        self, record: Mapping[str, Any], statistics: Mapping[str, tuple[Any, ...]] | None = None
    ) -> dict[str, Any]:
        """The seller evidence of one listing: its seller's shares in ``statistics``
        (:meth:`record_statistics`), else those of a seller with this one listing."""
        check_is_fitted(self)
        out: dict[str, Any] = {"seller_score": None, "seller_reasons": []}
        seller = record.get("seller_id")
        if "seller_id" not in record or seller is None:
            out.update(dict.fromkeys(self.evidence_schema))
            return out
        known = None if statistics is None else statistics.get(str(seller))
        if known is not None:
            out["seller_share_high_text"], out["seller_luxury_low_price"] = known[0], known[1]
            out["seller_listings"] = known[2]
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
