"""Seller evidence: a seller's listings seen together."""

from __future__ import annotations

from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from filters.seller import SellerFilter
from pipelines.registry import Registry


def _listings(rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "seller_id": pl.String,
            "text_score": pl.Float64,
            "text_brand": pl.String,
            "price_ratio": pl.Float64,
        },
        orient="row",
    )


def test_shares_are_over_all_of_a_sellers_listings(tiny_registry: Registry) -> None:
    f = SellerFilter().fit(tiny_registry)
    frame = _listings(
        [
            ("s1", 0.9, "Rolex", 0.05),  # strong text, branded and far too cheap
            ("s1", 0.1, None, 0.05),  # cheap but no brand: not "luxury at a low price"
            ("s1", None, None, None),  # no evidence counts as not flagged
            ("s2", 0.2, "Gucci", 1.0),
            (None, 0.9, "Rolex", 0.05),  # no seller: no seller evidence
        ]
    )
    out = f.score(frame).collect()
    assert out.get_column("seller_listings").to_list() == [3, 3, 3, 1, None]
    assert out.get_column("seller_share_high_text").to_list()[:4] == [1 / 3] * 3 + [0.0]
    assert out.get_column("seller_luxury_low_price").to_list()[:4] == [1 / 3] * 3 + [0.0]
    assert out.get_column("seller_share_high_text")[4] is None
    # evidence for the learned fusion only
    assert out.get_column("seller_score").is_null().all()
    assert out.get_column("seller_reasons").to_list() == [[]] * 5


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.one_of(st.none(), st.sampled_from(["a", "b", "c"])),
            st.one_of(st.none(), st.sampled_from([0.0, 0.49, 0.5, 1.0])),
            st.one_of(st.none(), st.just("Rolex")),
            st.one_of(st.none(), st.sampled_from([0.01, 0.3, 2.0])),
        ),
        max_size=30,
    )
)
def test_a_batchs_own_statistics_equal_statistics_passed_in(
    tiny_registry: Registry, rows: list[tuple[Any, ...]]
) -> None:
    """What a local batch computes over itself equals what the Spark runner passes in after
    aggregating the same listings."""
    f = SellerFilter().fit(tiny_registry)
    frame = _listings(rows)
    stats = f.statistics_from_values(f.statistic_values(f.evidence(frame))).collect()
    own = f.score(frame).collect()
    passed = f.score(frame, statistics=stats).collect()
    assert own.equals(passed)
    assert own.height == frame.height
