"""Price filter: only suspiciously low prices count, after condition and accessory context."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filters.price import PriceFilter
from pipelines.registry import Registry
from tests.conftest import listings


def price_scores(registry: Registry, **cols: list[object]) -> pl.DataFrame:
    return PriceFilter().fit(registry).score(listings(**cols)).collect()


def test_far_below_reference_scores_high_with_reason(tiny_registry: Registry) -> None:
    out = price_scores(tiny_registry, price=[42.0], brand=["Rolex"], category=["watches"])
    assert out.get_column("price_score").item() == 1.0
    (reason,) = out.get_column("price_reasons").item()
    assert reason == "price $42 is 0.4% of Rolex watches reference $9500"


def test_retail_and_high_prices_do_not_count(tiny_registry: Registry) -> None:
    out = price_scores(
        tiny_registry,
        price=[9500.0, 20000.0, 7000.0],
        brand=["Rolex"] * 3,
        category=["watches"] * 3,
    )
    assert out.get_column("price_score").to_list() == [0.0, 0.0, 0.0]
    assert out.get_column("price_reasons").to_list() == [[], [], []]


def test_used_goods_are_compared_with_a_used_price(tiny_registry: Registry) -> None:
    new = price_scores(tiny_registry, price=[3000.0], brand=["Rolex"], category=["watches"])
    used = price_scores(
        tiny_registry, price=[3000.0], brand=["Rolex"], category=["watches"], condition=["used"]
    )
    assert used.get_column("price_score").item() < new.get_column("price_score").item()
    assert used.get_column("price_score").item() == 0.0


def test_category_reference_and_fallback(tiny_registry: Registry) -> None:
    # Gucci shoes reference is 800, bags 1800; no category -> cheapest category (conservative)
    out = price_scores(
        tiny_registry, price=[500.0] * 3, brand=["Gucci"] * 3, category=["bags", "Shoes", None]
    )
    ref = out.get_column("price_reference").to_list()
    assert ref == [1800.0, 800.0, 800.0]


def test_currency_is_converted(tiny_registry: Registry) -> None:
    out = price_scores(
        tiny_registry, price=[1000.0], currency=["CNY"], brand=["Nike"], category=["shoes"]
    )
    assert out.get_column("price_usd").item() == pytest.approx(140.0)


def test_no_brand_means_not_applicable(tiny_registry: Registry) -> None:
    out = price_scores(tiny_registry, price=[1.0], brand=[None])
    assert out.get_column("price_score").to_list() == [None]


def test_accessory_for_a_brand_is_not_priced_as_the_brand(tiny_registry: Registry) -> None:
    frame = listings(price=[15.0], title=["Strap for Rolex"], brand=[None]).with_columns(
        pl.lit("Rolex").alias("text_brand"), pl.lit(True).alias("text_accessory")
    )
    out = PriceFilter().fit(tiny_registry).score(frame).collect()
    assert out.get_column("price_score").to_list() == [None]
    assert out.get_column("price_reasons").to_list() == [
        ["accessory, part or packaging: price not compared with Rolex's"]
    ]


def test_batch_statistics_flag_an_outlier_within_the_brand(tiny_registry: Registry) -> None:
    prices = [1700.0 + 10 * i for i in range(30)] + [700.0]
    out = price_scores(tiny_registry, price=prices, brand=["Gucci"] * 31, category=["bags"] * 31)
    z = out.get_column("price_robust_z")
    assert z[-1] < -6
    assert out.get_column("price_score")[-1] >= 0.5
    assert any("robust SDs below" in r for r in out.get_column("price_reasons")[-1])


@settings(max_examples=50, deadline=None)
@given(st.floats(min_value=0.01, max_value=50_000), st.floats(min_value=0.01, max_value=50_000))
def test_lower_price_never_lowers_the_score(a: float, b: float) -> None:
    from pipelines.registry import load_registry
    from tests.conftest import TINY_BRANDS

    reg = _REG.get("r")
    if reg is None:
        import tempfile
        from pathlib import Path

        d = Path(tempfile.mkdtemp())
        (d / "brands.csv").write_text(TINY_BRANDS)
        reg = _REG["r"] = load_registry(d)
    lo, hi = sorted([a, b])
    out = price_scores(reg, price=[lo, hi], brand=["Rolex"] * 2, category=["watches"] * 2)
    s = out.get_column("price_score").to_list()
    assert s[0] >= s[1]


_REG: dict[str, Registry] = {}
