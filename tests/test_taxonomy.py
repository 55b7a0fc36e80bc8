"""The category taxonomy: marketplace category names and paths read as the registry's
categories, for pricing and for corroborating ambiguous brand words, on both scoring paths."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filters.price import PriceFilter
from filters.text import TextFilter
from pipelines import Scorer
from pipelines.errors import RegistryError
from pipelines.registry import Registry, default_registry_dir, load_registry
from pipelines.stages import ScoringPlan, score_frame
from pipelines.taxonomy import Taxonomy, category_words, category_words_expr


@pytest.fixture(scope="module")
def registry(seed_registry: Registry) -> Registry:
    return seed_registry


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer.from_registry(default_registry_dir())


@pytest.fixture(scope="module")
def plan(registry: Registry) -> ScoringPlan:
    return ScoringPlan.build(registry)


def both_paths(scorer: Scorer, listings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each listing scored one at a time and in one frame; the two must agree."""
    one = [scorer.score_one({"listing_id": f"x{i}", **x}) for i, x in enumerate(listings)]
    frame = pl.DataFrame(
        [{"listing_id": f"x{i}", "category": None, **x} for i, x in enumerate(listings)],
        schema_overrides={"category": pl.String, "price": pl.Float64},
    )
    batch = scorer.score(frame).to_dicts()
    for a, b in zip(one, batch, strict=True):
        assert (a.decision, list(a.reasons), a.matched_brand) == (
            b["decision"],
            b["reasons"],
            b["matched_brand"],
        )
        assert a.risk == pytest.approx(b["risk"])
    return batch


# ---------------------------------------------------------------- the reported failures


@pytest.mark.parametrize("category", ["Handbags", "Purses", None, "bags", "Women > Bags > Totes"])
def test_a_chanel_flap_bag_at_150_is_priced_as_a_bag_however_its_category_is_written(
    scorer: Scorer, category: str | None
) -> None:
    (row,) = both_paths(
        scorer, [{"title": "Chanel Classic Flap bag", "price": 150.0, "category": category}]
    )
    assert row["decision"] == "block"
    assert row["reasons"][0].startswith("price $150 is 2% of Chanel bags reference $6500")


def test_a_gucci_bag_under_handbags_is_not_priced_against_gucci_perfume(scorer: Scorer) -> None:
    (row,) = both_paths(scorer, [{"title": "Gucci bag", "price": 50.0, "category": "Handbags"}])
    assert row["reasons"][0] == (
        'price $50 is 3% of Gucci bags reference $1800 (listed under "Handbags")'
    )
    assert row["decision"] == "block"


@pytest.mark.parametrize(
    ("title", "category", "brand"),
    [
        ("Jordan 4 Retro", "Sneakers", "Air Jordan"),
        ("Jordan 4 Retro", "Men > Shoes > Trainers", "Air Jordan"),
        ("Jordan 4 Retro", "Zapatillas", "Air Jordan"),
        ("Pandora charm bracelet", "Jewellery", "Pandora"),
        ("Pandora charm bracelet", "Bijoux", "Pandora"),
        ("Pandora charm bracelet", "Joyería", "Pandora"),
        ("Pandora charm bracelet", "Women > Jewelry > Charms", "Pandora"),
    ],
)
def test_an_ambiguous_name_is_corroborated_by_a_category_the_taxonomy_reads(
    scorer: Scorer, title: str, category: str, brand: str
) -> None:
    (row,) = both_paths(scorer, [{"title": title, "price": 8.0, "category": category}])
    assert row["matched_brand"] == brand
    assert row["decision"] != "allow"


def test_an_ambiguous_name_stays_uncorroborated_in_another_category(scorer: Scorer) -> None:
    # "Pandora" in a board-game category is the box of the myth, not the jeweller
    rows = both_paths(
        scorer,
        [
            {"title": "pandora board game", "price": 8.0, "category": "Toys & Games"},
            {"title": "jordan river map", "price": 8.0, "category": "Books"},
        ],
    )
    assert [r["matched_brand"] for r in rows] == [None, None]


# ---------------------------------------------------------------- reading categories


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # plural and singular, British and American, marketplace names
        ("Handbag", ("bags",)),
        ("purses", ("bags",)),
        ("Tote Bags", ("bags",)),
        ("Sneaker", ("shoes",)),
        ("Trainers", ("shoes",)),
        ("Footwear", ("shoes",)),
        ("Jewellery", ("jewelry",)),
        ("jewelry", ("jewelry",)),
        ("Bijoux", ("jewelry",)),
        ("Joyería", ("jewelry",)),
        ("Joyeria", ("jewelry",)),
        ("Fragrance", ("perfume",)),
        ("Parfum", ("perfume",)),
        ("Eau de Toilette", ("perfume",)),
        ("Sunglasses", ("eyewear",)),
        ("Wristwatch", ("watches",)),
        ("Home-Appliances", ("home_appliances",)),
        ("HOME_APPLIANCES", ("home_appliances",)),
        ("Cell Phones", ("electronics",)),
        ("Mobile phones", ("electronics",)),
        ("Tyres", ("auto_parts",)),
        ("Tires", ("auto_parts",)),
        # other languages and scripts
        ("Damen > Taschen > Umhängetaschen", ("bags",)),
        ("Femme > Sacs > Sacs à main", ("bags",)),
        ("Женщинам > Сумки > Сумки через плечо", ("bags",)),
        ("Кроссовки", ("shoes",)),
        ("女装 > 女包 > 女士单肩包", ("bags",)),
        ("レディース > バッグ > ショルダーバッグ", ("bags",)),
        ("남성 > 시계", ("watches",)),
        ("Kadın > Ayakkabı", ("shoes",)),
        ("عطور", ("perfume",)),
        # the most specific segment a path names; a segment naming several things
        ("Women > Bags > Shoulder Bags", ("bags",)),
        ("Clothing, Shoes & Accessories > Women > Women's Bags & Handbags", ("bags",)),
        ("Jewellery & Watches", ("jewelry", "watches")),
        ("Jewelry & Watches > Watches, Parts & Accessories > Wristwatches", ("watches",)),
        ("Women > Widgets", ()),  # no node named but "Women": unmatched, see below
        # a node above registry categories covers those below it
        ("Beauty", ("cosmetics", "perfume")),
        ("Health & Beauty", ("cosmetics", "perfume", "pharma")),
        ("Automotive", ("auto_parts", "lubricants")),
        # a category no brand has
        ("Books", ()),
    ],
)
def test_category_values_read_as_registry_categories(
    registry: Registry, value: str, expected: tuple[str, ...]
) -> None:
    # the categories of the most specific segment that covers any
    most_specific, _ = registry.taxonomy.resolve(value).for_brand(registry.categories)
    assert tuple(most_specific) == expected


def test_unknown_absent_and_known_categories_are_told_apart(registry: Registry) -> None:
    t = registry.taxonomy
    assert t.resolve(None).status == "absent"
    assert t.resolve("  ").status == "absent"
    assert t.resolve("Women > Widgets").status == "unmatched"
    assert t.resolve("Garden gnome widgets").status == "known"  # "garden": no brand's category
    assert t.resolve("Books").status == "known"


def test_every_registry_category_has_names_in_the_lexicon_languages(registry: Registry) -> None:
    # each category of the shipped registry is named at least 20 ways, and in Latin, Cyrillic
    # and CJK scripts
    names: dict[str, list[str]] = {}
    for key, node in registry.taxonomy.node_of.items():
        for c in registry.taxonomy.covers[node]:
            names.setdefault(c, []).append(key)
    for category in registry.categories:
        written = names.get(category, [])
        assert len(written) >= 20, category
        assert any(w.isascii() for w in written), category
        assert any("\u0400" <= ch <= "\u04ff" for w in written for ch in w), category
        assert any("\u3040" <= ch <= "\u9fff" for w in written for ch in w), category


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(st.sampled_from(list("aAbé Ö'’_-&>/ßİ包バ\u0301\u00a0")), max_size=20))
def test_category_words_equal_their_polars_twin(text: str) -> None:
    twin = pl.select(category_words_expr(pl.lit(text, dtype=pl.String))).item()
    assert category_words(text) == twin


TITLE_WORDS = st.lists(
    st.sampled_from(
        [
            "gucci",
            "bag",
            "shoulder",
            "bags",
            "watch",
            "case",
            "eau",
            "de",
            "toilette",
            "手表",
            "劳力士手表",
            "包",
            "sneakers",
            "ring",
            "key",
            "x",
            "Sac",
            "à",
            "main",
            "sunglasses",
        ]
    ),
    max_size=8,
).map(" ".join)


@functools.cache
def shipped_taxonomy() -> Taxonomy:
    return load_registry(default_registry_dir()).taxonomy


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TITLE_WORDS)
def test_title_nouns_equal_their_polars_twin(title: str) -> None:
    t = shipped_taxonomy()
    words = category_words(title)
    twin = pl.select(t.title_nouns_expr(pl.lit(words, dtype=pl.String))).item().to_list()
    assert t.title_nouns_in(words) == twin


# ---------------------------------------------------------------- pricing


def test_without_a_category_the_titles_nouns_choose_the_product_line(scorer: Scorer) -> None:
    rows = both_paths(
        scorer,
        [
            {"title": "Gucci sunglasses", "price": 50.0},
            {"title": "Gucci", "price": 50.0},
            {"title": "Cartier Love bracelet", "price": 300.0, "category": "Jewellery & Watches"},
            {"title": "Rolex Submariner", "price": 50.0, "category": "Widgets"},
        ],
    )
    reasons = [r["reasons"][0] for r in rows]
    assert reasons == [
        "price $50 is 11% of Gucci eyewear reference $450 (no category; the title says "
        '"sunglasses")',
        "price $50 is 38% of Gucci perfume reference $130 (no category; Gucci's cheapest "
        "reference)",
        'price $300 is 7% of Cartier jewelry reference $4500 (listed under "Jewellery & '
        'Watches"; the title says "bracelet")',
        'price $50 is 0.5% of Rolex watches reference $9500 (category "Widgets" not known; '
        "Rolex's cheapest reference)",
    ]


def test_the_cheapest_of_the_products_a_title_names_is_the_reference(scorer: Scorer) -> None:
    # a gift set that adds a bag to a perfume is priced as the perfume
    (row,) = both_paths(scorer, [{"title": "Chanel perfume gift set with bag", "price": 120.0}])
    assert row["reasons"] == ['title mentions brand "Chanel"']
    assert row["decision"] == "allow"


def test_a_plain_mention_in_a_category_of_none_of_the_brands_is_not_priced(
    scorer: Scorer,
) -> None:
    rows = both_paths(
        scorer,
        [
            {"title": "Rolex Submariner", "price": 50.0, "category": "Toys"},
            {"title": "Rolex Submariner", "price": 50.0, "category": "Toys", "brand": "Rolex"},
            {"title": "Rolex Submariner replica", "price": 50.0, "category": "Toys"},
            {"title": "R0lex Submariner", "price": 50.0, "category": "Toys"},
            {"title": "Rolex Submariner", "price": 50.0, "category": "Watches"},
        ],
    )
    weak, declared, phrase, obfuscated, right = rows
    assert weak["decision"] == "allow"
    assert weak["reasons"] == [
        'title mentions brand "Rolex"',
        'category "Toys" is none of Rolex\'s and only the name points to it: price not compared',
    ]
    # declared, a counterfeit phrase or an obfuscated name: priced as the brand's goods
    for row in (declared, phrase, obfuscated):
        assert any("Rolex watches reference $9500" in r for r in row["reasons"]), row
        assert "is none of Rolex's" in next(r for r in row["reasons"] if r.startswith("price"))
    assert right["decision"] == "block"


def test_a_category_value_with_quotes_reads_in_the_reason(scorer: Scorer) -> None:
    (row,) = both_paths(scorer, [{"title": "Rolex", "price": 50.0, "category": 'Toys "kids"'}])
    assert "category \"Toys 'kids'\" is none of Rolex's" in row["reasons"][-1]


def test_price_filter_record_equals_batch_on_drawn_categories(registry: Registry) -> None:
    text = TextFilter().fit(registry)
    # a batch's robust statistics have no one-listing twin
    price = PriceFilter(min_group_size=10**9).fit(registry)
    titles = [
        "Gucci bag",
        "Cartier bracelet",
        "Chanel",
        "Apple Watch band",
        "Jordan 4",
        "Nike sneakers",
        "Rolex watch",
        "Dior lipstick",
        "Castrol oil",
    ]
    categories = [
        None,
        "Handbags",
        "Jewellery & Watches",
        "Beauty",
        "Books",
        "Widgets",
        "Women > Shoes > Sneakers",
        "Automotive",
        "bags",
        "Electronics",
    ]
    rows = [
        {"title": t, "category": c, "price": 20.0 + i, "brand": b}
        for i, (t, c, b) in enumerate(
            (t, c, b) for t in titles for c in categories for b in (None, "Gucci")
        )
    ]
    frame = pl.DataFrame(rows, schema_overrides={"category": pl.String, "brand": pl.String})
    with_text = text.score(frame).collect()
    batch = price.score(with_text).collect()
    for record, out in zip(with_text.to_dicts(), batch.to_dicts(), strict=True):
        one = price.score_record(record)
        for column in ("price_score", "price_reasons", "price_reference", "price_brand"):
            expected = out[column]
            if isinstance(expected, float):
                expected = pytest.approx(expected, rel=1e-12)
            assert one[column] == expected, (record["title"], record["category"], column)


# ---------------------------------------------------------------- the registry's file


def _registry_with(tmp_path: Path, categories: str) -> Path:
    root = tmp_path / "reg"
    root.mkdir()
    shutil.copy(default_registry_dir() / "brands.csv", root / "brands.csv")
    (root / "categories.csv").write_text(categories, encoding="utf-8")
    return root


def test_a_registry_extends_the_taxonomy_for_its_marketplace(tmp_path: Path) -> None:
    root = _registry_with(
        tmp_path,
        "category,parent,synonyms\n"
        "bags,,Bolsas de grife|Luxus-Taschen\n"
        "streetwear,fashion,Streetwear|Hype\n"
        "accessories,,Handbags\n",  # this marketplace files handbags with accessories
    )
    t = load_registry(root).taxonomy
    assert t.resolve("Moda > Bolsas de grife").for_brand(["bags", "fashion"])[0] == ["bags"]
    assert t.resolve("Hype").categories == ("fashion",)
    assert t.resolve("Handbags").categories == ("accessories",)
    assert t.resolve("Purses").categories == ("bags",)
    assert load_registry(root).fingerprint != load_registry(default_registry_dir()).fingerprint


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("category,parent,synonyms\nbags,luggage_and_more,Sacks\n", "parent 'luggage_and_more'"),
        ("category,parent,synonyms\na,b,\nb,a,\n", "cycle"),
        ("category,parent,synonyms\nbags,,Sacks\nshoes,,sacks\n", "already a synonym of 'bags'"),
        ("category,synonyms\nbags,Sacks\n", "missing column(s) parent"),
        ("category,parent,synonyms\n,,Sacks\n", "line 2: category is empty"),
        ("category,parent,synonyms\nbags,,Sacks,extra\n", "line 2: expected 3 fields"),
    ],
)
def test_a_bad_categories_file_is_named_with_its_line(
    tmp_path: Path, text: str, message: str
) -> None:
    root = _registry_with(tmp_path, text)
    with pytest.raises(RegistryError, match=r"categories\.csv") as err:
        load_registry(root)
    assert message in str(err.value)


def test_scoring_without_a_category_column_reads_the_titles(plan: ScoringPlan) -> None:
    frame = pl.DataFrame({"listing_id": ["a"], "title": ["Gucci bag"], "price": [50.0]})
    out = score_frame(frame, plan)
    assert out.get_column("reasons").item()[0] == (
        'price $50 is 3% of Gucci bags reference $1800 (no category; the title says "bag")'
    )


def test_the_run_manifest_lists_the_categories_that_matched_nothing(tmp_path: Path) -> None:
    from pipelines.run import run_score

    plan = ScoringPlan.build(load_registry(default_registry_dir()))
    src = tmp_path / "in.parquet"
    pl.DataFrame(
        {
            "listing_id": [f"l{i}" for i in range(7)],
            "title": ["Gucci bag"] * 7,
            "price": [50.0] * 7,
            "category": [
                "Handbags",
                "Widgets",
                "Widgets",
                "Sprockets > Cogs",
                None,
                "Books",
                "Widgets",
            ],
        }
    ).write_parquet(src)
    run_score(src, plan, tmp_path / "out.parquet", batch_size=3, quiet=True)
    manifest = json.loads((tmp_path / "out.parquet.manifest.json").read_text())
    assert manifest["unmatched_categories"] == {
        "rows": 4,
        "values": 2,
        "counts": {"Widgets": 3, "Sprockets > Cogs": 1},
    }


def test_a_path_reads_for_each_brand_by_its_most_specific_segment_that_covers_it(
    registry: Registry,
) -> None:
    t = registry.taxonomy
    soccer = t.resolve("Sporting Goods > Team Sports > Soccer > Clothing, Shoes & Accessories")
    assert soccer.for_brand(["sports"]) == (["sports"], "Soccer")
    assert soccer.for_brand(["fashion", "sports"]) == (
        ["fashion"],
        "Clothing, Shoes & Accessories",
    )
    watches = t.resolve("Joyas y Relojes > Relojes > Relojes de pulsera")
    assert watches.for_brand(["watches"]) == (["watches"], "Relojes")
    assert watches.for_brand(["bags"]) == ([], None)


def test_a_segment_of_goods_of_no_brands_makes_the_path_none_of_any_brands(
    registry: Registry, scorer: Scorer
) -> None:
    t = registry.taxonomy
    assert t.resolve("Books > Arts & Photography > Fashion").categories == ()
    assert t.resolve("Home & Garden > Home Décor > Posters & Prints").categories == ()
    # named only by a word of a longer name, it does not decide: "Martial Arts" is no art
    assert t.resolve("Sporting Goods > Boxing & Martial Arts").categories == ("sports",)
    (row,) = both_paths(
        scorer,
        [{"title": "Prada catwalk book", "price": 40.0, "category": "Books > Arts > Fashion"}],
    )
    assert row["decision"] == "allow"
    assert row["reasons"][-1].startswith('category "Books" is none of Prada\'s')


def test_the_category_families_meet_their_floors(registry: Registry, plan: ScoringPlan) -> None:
    from seeds.marketplace import generate_categories

    listings = generate_categories(registry, 600, seed=3)
    assert set(listings.get_column("kind")) == {
        "genuine_category_path",
        "genuine_no_category",
        "genuine_brand_media",
        "fake_category_path",
        "fake_no_category",
        "fake_ambiguous_category",
    }
    assert listings.equals(generate_categories(registry, 600, seed=3))
    out = score_frame(listings, plan)
    fakes = out.filter(pl.col("label") == 1)
    blocked = out.filter(pl.col("decision") == "block")
    assert (fakes.get_column("decision") != "allow").to_numpy().mean() >= 0.95
    assert blocked.get_column("label").to_numpy().mean() >= 0.98


def test_score_one_equals_the_frame_path_on_the_category_families(
    registry: Registry, scorer: Scorer
) -> None:
    from seeds.marketplace import generate_categories

    listings = generate_categories(registry, 240, seed=5).drop("label", "kind")
    both_paths(scorer, listings.to_dicts())
