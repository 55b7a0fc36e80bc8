"""Price filter: only suspiciously low prices count, after condition and accessory context."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filters.price import PriceFilter
from pipelines.registry import Registry, load_registry
from tests.conftest import listings


def price_scores(registry: Registry, **cols: Sequence[object]) -> pl.DataFrame:
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


def small_goods(
    registry: Registry,
    prices: list[float],
    brand: str,
    item: str,
    share: float,
    **cols: list[object],
) -> pl.DataFrame:
    n = len(prices)
    frame = listings(price=prices, brand=[None] * n, **cols).with_columns(
        pl.lit(brand).alias("text_brand"),
        pl.lit(item).alias("text_item"),
        pl.lit(share).alias("text_item_share"),
    )
    return PriceFilter().fit(registry).score(frame).collect()


def test_a_small_good_is_priced_as_a_share_of_the_brands_dearest_goods(
    tiny_registry: Registry,
) -> None:
    # an Apple charger at $19 is Apple's price; at $3 it is not. Against the $999 phone, the
    # $19 counts only half: a low price alone sends a small good to review, never to a block
    out = small_goods(tiny_registry, [19.0, 3.0], "Apple", "charger", 0.03)
    genuine, fake = out.rows(named=True)
    assert genuine["price_score"] == 0.5
    assert genuine["price_reasons"] == [
        'price $19 is 2% of Apple electronics reference $999 (weighed x0.5: "charger" may sell '
        "for less) (no category; Apple's cheapest reference)"
    ]
    assert fake["price_score"] > 0.85
    assert fake["price_reasons"][0] == (
        "price $3.00 is 10% of Apple charger reference $30 (3% of Apple electronics $999)"
    )
    # the dearest category, whatever the listing's: Gucci socks are not priced as shoes' 15%
    (socks,) = small_goods(tiny_registry, [15.0], "Gucci", "socks", 0.15, category=["shoes"]).rows(
        named=True
    )
    assert socks["price_score"] == 1.0
    assert socks["price_reasons"][0].endswith("(15% of Gucci bags $1800)")
    # an item whose reference is near the listing's own category's is priced as that category
    # (a luxury key ring under accessories): the brand's reference keeps its full weight
    (near,) = small_goods(
        tiny_registry, [100.0], "Gucci", "key ring", 0.4, category=["shoes"]
    ).rows(named=True)
    assert near["price_reasons"] == ["price $100 is 12% of Gucci shoes reference $800"]
    assert near["price_score"] > 0.7
    # an accessory for the brand is still not priced at all
    frame = listings(price=[3.0], brand=[None]).with_columns(
        pl.lit("Apple").alias("text_brand"),
        pl.lit(True).alias("text_accessory"),
        pl.lit("charger").alias("text_item"),
        pl.lit(0.03).alias("text_item_share"),
    )
    out = PriceFilter().fit(tiny_registry).score(frame).collect()
    assert out.get_column("price_score").to_list() == [None]


def test_a_title_that_says_used_is_priced_as_used_where_the_condition_is_not(
    tiny_registry: Registry,
) -> None:
    # marketplaces default the condition to new; "pre-owned" in the title is the seller's word
    def frame(condition: list[object]) -> pl.DataFrame:
        return listings(
            price=[1000.0] * 4, brand=["Rolex"] * 4, category=["watches"] * 4, condition=condition
        ).with_columns(
            pl.Series("text_condition", ["used", "refurbished", None, "used"], dtype=pl.String)
        )

    f = PriceFilter().fit(tiny_registry)
    out = f.score(frame(["new", None, "new", "refurbished"])).collect().rows(named=True)
    assert [r["price_reasons"] for r in out] == [
        [
            "price $1000 is 11% of Rolex watches reference $9500 (used price $4750, as the title "
            "says)"
        ],
        [
            "price $1000 is 11% of Rolex watches reference $9500 (refurbished price $6650, as the "
            "title says)"
        ],
        ["price $1000 is 11% of Rolex watches reference $9500"],
        # the listing's own condition stands where it is not new
        ["price $1000 is 11% of Rolex watches reference $9500 (refurbished price $6650)"],
    ]
    assert out[0]["price_score"] < out[1]["price_score"] < out[2]["price_score"]
    records = frame(["new", None, "new", "refurbished"]).to_dicts()
    assert [f.score_record(r)["price_reasons"] for r in records] == [
        r["price_reasons"] for r in out
    ]


def test_a_listings_category_matches_whatever_separates_its_words(
    tiny_registry: Registry,
) -> None:
    # marketplaces write "Home Appliances", "home-appliances" or "home_appliances"
    reg = Registry(
        root=tiny_registry.root,
        brands=pl.concat(
            [
                tiny_registry.brands,
                pl.DataFrame(
                    {
                        "brand": ["Dyson"] * 2,
                        "category": ["home_appliances", "cosmetics"],
                        "reference_price": [450.0, 430.0],
                        "aliases": [[], []],
                    },
                    schema=tiny_registry.brands.schema,
                ),
            ]
        ),
        official_images=tiny_registry.official_images,
        known_fakes=tiny_registry.known_fakes,
        lexicon=tiny_registry.lexicon,
        fingerprint=tiny_registry.fingerprint,
    )
    written = ["Home Appliances", " home-appliances ", "HOME_APPLIANCES", "home  appliances"]
    out = price_scores(reg, price=[45.0] * 4, brand=["Dyson"] * 4, category=written)
    assert out.get_column("price_reference").to_list() == [450.0] * 4
    assert (
        out.get_column("price_reasons").to_list()
        == [["price $45 is 10% of Dyson home appliances reference $450"]] * 4
    )
    record = (
        PriceFilter()
        .fit(reg)
        .score_record({"price": 45.0, "brand": "Dyson", "category": written[1]})
    )
    assert record["price_reasons"] == out.get_column("price_reasons")[1].to_list()


def test_small_goods_stay_out_of_the_brands_batch_statistics(tiny_registry: Registry) -> None:
    # forty $19 Apple chargers in a batch of phones do not pull the phones' median down
    phones = listings(price=[900.0 + i for i in range(30)], brand=["Apple"] * 30)
    chargers = listings(price=[19.0] * 40, brand=["Apple"] * 40).with_columns(
        pl.lit("charger").alias("text_item"), pl.lit(0.03).alias("text_item_share")
    )
    both = pl.concat([phones, chargers], how="diagonal_relaxed").with_columns(
        pl.format("L{}", pl.int_range(pl.len())).alias("listing_id")
    )
    out = PriceFilter().fit(tiny_registry).score(both).collect()
    alone = price_scores(tiny_registry, price=[900.0 + i for i in range(30)], brand=["Apple"] * 30)
    assert out.head(30).get_column("price_robust_z").equals(alone.get_column("price_robust_z"))


def test_an_alias_on_some_rows_only_is_a_product_line_priced_with_them(
    tmp_path: Path,
) -> None:
    # an Apple Watch is not a $999 iPhone, whatever category the seller picked; a misspelt
    # alias names no line and keeps the brand's price
    (tmp_path / "brands.csv").write_text(
        "brand,category,reference_price,aliases\n"
        "Apple,electronics,999,iPhone|iPad\n"
        "Apple,watches,399,Apple Watch\n"
        "Apple,accessories,179,AirPods|AirTag\n",
        encoding="utf-8",
    )
    reg = load_registry(tmp_path)
    keys = ["applewatch", "applewatch", "applewatch", "iphone", None, "airtag"]
    cats = ["electronics", None, "watches", "accessories", "electronics", "electronics"]
    frame = listings(price=[300.0] * 6, brand=[None] * 6, category=cats).with_columns(
        pl.lit("Apple").alias("text_brand"), pl.Series("text_key", keys, dtype=pl.String)
    )
    f = PriceFilter().fit(reg)
    out = f.score(frame).collect()
    assert out.get_column("price_reference").to_list() == [399.0, 399.0, 399.0, 999.0, 999.0, 179.0]
    assert out.get_column("price_reasons")[3].to_list() == [
        'price $300 is 30% of Apple electronics reference $999 (listed under "accessories"; the '
        'title names "iPhone")'
    ]
    for record, row in zip(frame.to_dicts(), out.rows(named=True), strict=True):
        single = f.score_record(record)
        assert (single["price_reference"], single["price_reasons"]) == (
            row["price_reference"],
            row["price_reasons"],
        )


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
    # a small good too, and it never scores above the brand's goods at the same price
    item = small_goods(reg, [lo, hi], "Rolex", "key ring", 0.15)
    si = item.get_column("price_score").to_list()
    assert si[0] >= si[1]
    assert si[0] <= s[0] and si[1] <= s[1]


_REG: dict[str, Registry] = {}


def test_a_stated_volume_scales_the_reference_of_a_category_priced_by_size(
    seed_registry: Registry,
) -> None:
    # perfume references are for 100 ml; a genuine 35 ml bottle or travel spray sells for less
    titles = [
        "Chanel Coco Mademoiselle 100ml",
        "Chanel Coco Mademoiselle 35ml EDP",
        "Chanel Coco Mademoiselle travel spray 3 x 7.5 ml",
        "Chanel No 5 3.4 oz",
        "Chanel Coco Mademoiselle",
        "Chanel No 5 1000ml",
        "Chanel CC earrings 100ml",
    ]
    n = len(titles)
    frame = listings(
        title=titles,
        price=[15.0] * n,
        brand=["Chanel"] * n,
        category=["perfume"] * 6 + ["jewelry"],
    )
    f = PriceFilter().fit(seed_registry)
    out = f.score(frame).collect()
    # 3.4 oz is 100.5 ml: the standard bottle
    factors = [1.0, 0.35**0.5, 0.075**0.5, 1.0, 1.0, 2.0]
    ratios = out.get_column("price_ratio").to_list()
    assert ratios[:6] == pytest.approx([15.0 / (150.0 * v) for v in factors])
    assert ratios[6] == pytest.approx(15.0 / 1500.0)  # jewelry's reference knows no volume
    reasons = out.get_column("price_reasons").to_list()
    assert reasons[1] == ["price $15 is 10% of Chanel perfume reference $150 (35ml price $89)"]
    assert reasons[2] == ["price $15 is 10% of Chanel perfume reference $150 (7.5 ml price $41)"]
    assert (
        reasons[0]
        == reasons[3]
        == reasons[4]
        == ["price $15 is 10% of Chanel perfume reference $150"]
    )
    scores = out.get_column("price_score").to_list()
    assert scores[2] < scores[1] < scores[0] == scores[4]
    # the one-listing path gives the same
    assert [f.score_record(r)["price_reasons"] for r in frame.to_dicts()] == reasons
    assert [f.score_record(r)["price_ratio"] for r in frame.to_dicts()] == pytest.approx(ratios)


def test_a_genuine_small_bottle_is_not_flagged_and_a_cheap_full_bottle_still_is(
    seed_registry: Registry,
) -> None:
    out = price_scores(
        seed_registry,
        title=["Dior Sauvage EDT 30ml", "Dior Sauvage EDT 100ml", "Dior Sauvage EDT 10ml"],
        price=[70.0, 10.0, 4.0],
        brand=["Dior"] * 3,
        category=["perfume"] * 3,
    )
    small, fake, tiny_fake = out.get_column("price_score").to_list()
    assert small == 0.0
    assert fake > 0.8
    assert tiny_fake > 0.5


def test_standard_volumes_are_configurable_and_checked(
    tmp_path: Path, seed_registry: Registry
) -> None:
    from pipelines.config import FakestopError, load_settings

    cfg = tmp_path / "fakestop.toml"
    cfg.write_text("[volumes]\nperfume = 50\ncosmetics = 30\n", encoding="utf-8")
    assert load_settings(cfg).standard_volumes == {"perfume": 50.0, "cosmetics": 30.0}
    cfg.write_text("[volumes]\nperfume = 0\n", encoding="utf-8")
    with pytest.raises(FakestopError, match=r"volumes\.perfume must be > 0"):
        load_settings(cfg)
    with pytest.raises(ValueError, match="standard_volumes"):
        PriceFilter(standard_volumes={"perfume": -1.0}).fit(seed_registry)
