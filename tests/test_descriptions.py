"""Brand names in the description: read when the title names no brand, weaker than a title
mention; with a counterfeit phrase anywhere, strong evidence; comparisons and disclaimers
("fits Nike shoes", "not affiliated with Apple", "works like Dyson") are no mention of the
goods' brand. Only the first characters of a description are read.

The honest descriptions here are written for these tests, not taken from the generator."""

from __future__ import annotations

import polars as pl
import pytest

from filters.core.textops import WordProbe, probe_pattern
from filters.text import DESCRIPTION_CHARS, TextFilter
from pipelines import Scorer
from pipelines.registry import default_registry_dir, load_registry


@pytest.fixture(scope="module")
def registry():
    return load_registry(default_registry_dir())


@pytest.fixture(scope="module")
def text_filter(registry):
    return TextFilter().fit(registry)


COLS = ["text_score", "text_brand", "text_match", "text_reasons", "text_strong_phrases"]


def both_paths(f: TextFilter, rows: list[dict]) -> pl.DataFrame:
    """Score ``rows`` in a batch and one at a time; the two must agree exactly."""
    schema = {"title": pl.String, "description": pl.String, "category": pl.String}
    batch = f.score(pl.DataFrame(rows, schema=schema)).collect()
    for i, row in enumerate(rows):
        one = f.score_record(row)
        want = {c: batch[c][i] for c in COLS}
        want["text_reasons"] = list(want["text_reasons"])
        assert {c: one[c] for c in COLS} == want, row
    return batch


def one(f: TextFilter, title: str, description: str, category: str | None = None) -> dict:
    out = both_paths(f, [{"title": title, "description": description, "category": category}])
    return out.row(0, named=True)


def test_the_reported_listing_is_blocked(registry):
    scorer = Scorer.from_registry(default_registry_dir())
    result = scorer.score_one(
        {
            "listing_id": "d1",
            "title": "Luxury diver watch",
            "description": "Rolex Submariner replica, AAA quality, 1:1",
            "price": 90.0,
        }
    )
    assert result.decision == "block"
    assert result.matched_brand == "Rolex"
    assert any(r.startswith("description mentions") for r in result.reasons)


def test_a_description_mention_is_weaker_than_a_title_mention(text_filter):
    in_title = one(text_filter, "Rolex Submariner watch", "")
    in_desc = one(text_filter, "Diver watch", "Rolex Submariner, steel bracelet.")
    assert in_desc["text_brand"] == in_title["text_brand"] == "Rolex"
    assert in_desc["text_match"] == "description"
    assert 0 < in_desc["text_score"] < in_title["text_score"]
    assert in_desc["text_reasons"] == ['description mentions "rolex" (brand "Rolex")']


def test_the_title_brand_wins(text_filter):
    row = one(text_filter, "Seiko automatic diver", "Better than a Rolex Submariner.")
    assert row["text_brand"] == "Seiko"


def test_a_phrase_anywhere_with_a_brand_anywhere_is_strong(text_filter):
    assert one(text_filter, "Gucci bag", "mirror quality, 1:1")["text_score"] >= 0.9
    assert one(text_filter, "Shoulder bag replica", "Gucci Marmont, new")["text_score"] >= 0.9
    assert one(text_filter, "Shoulder bag", "Gucci Marmont, super copy")["text_score"] >= 0.9


#: honest descriptions that name a brand only to say what the item fits, is like or is not
HONEST = [
    ("Shoe laces 120cm flat", "Fits Nike and Adidas trainers.", "shoes"),
    (
        "Silicone phone case",
        "Designed for the Apple iPhone 15. Not affiliated with Apple Inc.",
        None,
    ),
    ("Stick vacuum cleaner 25kPa", "Works like Dyson for a fraction of the price.", None),
    ("Diver watch 40mm sapphire", "Our take on the Rolex Submariner: a homage, not a copy.", None),
    ("Leather watch strap", "Suits Rolex, Omega and Tudor lug widths (20mm).", "watches"),
    ("Women's perfume 50ml", "A fragrance similar to Chanel Coco Mademoiselle.", "perfume"),
    ("Sunglasses case", "Holds Ray-Ban Wayfarer and most frames.", None),
    ("Bag organiser insert", "Louis Vuitton Neverfull MM compatible, felt.", "bags"),
    pytest.param(
        "Tennis racket strings",
        "Wilson, Babolat and Head rackets: this string fits all.",
        None,
        marks=pytest.mark.xfail(
            strict=True,
            reason="a comparison after a list of names is not read ('fits' alone is said of "
            "the item itself too: 'strap fits most wrists')",
        ),
    ),
    ("Phone charger 20W", "Apple, Samsung and Google phones: compatible fast charger.", None),
]


@pytest.mark.parametrize(("title", "description", "category"), HONEST)
def test_comparisons_and_disclaimers_name_no_brand(text_filter, title, description, category):
    row = one(text_filter, title, description, category)
    assert row["text_brand"] is None, row["text_reasons"]
    assert row["text_score"] < 0.2


def test_a_comparison_with_a_counterfeit_phrase_counts(text_filter):
    row = one(text_filter, "Diver watch", "Rolex Submariner homage, 1:1 super clone")
    assert row["text_brand"] == "Rolex"
    assert row["text_match"] == "compared"
    assert row["text_score"] >= 0.9


def test_an_ordinary_word_in_a_description_needs_support(text_filter):
    # Coach is also a sports coach: the listing's category or a counterfeit phrase supports it
    assert one(text_filter, "Whistle", "For every football coach.")["text_brand"] is None
    assert one(text_filter, "Leather bag", "Coach tabby bag, new", "bags")["text_brand"] == "Coach"
    assert one(text_filter, "Leather bag", "Coach tabby replica")["text_brand"] == "Coach"


def test_native_names_in_descriptions(text_filter):
    row = one(text_filter, "Watch", "ロレックス サブマリーナー スーパーコピー")
    assert row["text_brand"] == "Rolex"
    assert row["text_score"] >= 0.9
    row = one(text_filter, "Сумка", "Сумка Луи Виттона, реплика")
    assert row["text_brand"] == "Louis Vuitton"


def test_only_the_first_characters_are_read(text_filter):
    filler = "Ships fast. " * (DESCRIPTION_CHARS // 12 + 5)
    assert one(text_filter, "Bag", filler + "Gucci replica")["text_brand"] is None
    assert one(text_filter, "Bag", "Gucci replica. " + filler)["text_brand"] == "Gucci"
    # a name cut at the limit is not read as a shorter word
    cut = "x" * (DESCRIPTION_CHARS - 5) + " Guccione replica"
    assert one(text_filter, "Bag", cut)["text_brand"] is None


def test_descriptions_with_nothing_to_read_are_ignored(text_filter):
    """A description holding no word of a phrase or a name scores as no description: the
    listing's title is scored once whatever its description says."""
    rows = [
        {"title": "Gucci bag", "description": f"Ships within {i} days.", "category": None}
        for i in range(50)
    ]
    out = both_paths(text_filter, rows)
    assert out["text_score"].n_unique() == 1


@pytest.mark.parametrize(
    "text",
    [
        "rolex",
        "a rolex.",
        "xrolex",
        "rolexy",
        "ролекса",
        "ujrolex_",
        "1:1",
        "11:1",
        "ua",
        "quality",
        "高仿包",
        "ورولكس",
        "",
        "aaa+",
        "aaa+x",
    ],
)
def test_the_word_probe_agrees_with_its_regex(text):
    words = ["rolex", "ролекс", "1:1", "ua", "高仿", "رولكس", "aaa+", "x"]
    batch = pl.Series([text]).str.contains(probe_pattern(words)).item()
    assert WordProbe(words).search(text) == batch


def test_generated_description_families_score_alike_on_both_paths(registry, text_filter):
    from seeds.marketplace import generate_descriptions

    listings = generate_descriptions(registry, 300, seed=3)
    rows = listings.select("title", "description", "category").to_dicts()
    both_paths(text_filter, rows)
