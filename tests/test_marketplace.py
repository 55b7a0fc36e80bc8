"""The labelled sample marketplace: reproducible, well-formed, labelled as its kinds say."""

from __future__ import annotations

import random
import subprocess
import sys
import unicodedata
from pathlib import Path

import polars as pl
import pytest
from rapidfuzz.distance import OSA

from pipelines.registry import Registry, brand_key
from seeds.marketplace import (
    FAKE_KINDS,
    GENUINE_KINDS,
    LEET_OUT,
    LOOKALIKE,
    OBFUSCATIONS,
    OTHER_CATEGORIES,
    generate_everyday,
    generate_marketplace,
    generate_small_goods,
    obfuscate,
)

REPO = Path(__file__).resolve().parents[1]
SCHEMA = {
    "listing_id": pl.String,
    "title": pl.String,
    "description": pl.String,
    "category": pl.String,
    "brand": pl.String,
    "seller_id": pl.String,
    "currency": pl.String,
    "condition": pl.String,
    "price": pl.Float64,
    "label": pl.Int8,
    "kind": pl.String,
}


@pytest.fixture(scope="module")
def big(seed_registry: Registry) -> pl.DataFrame:
    return generate_marketplace(seed_registry, 5000, seed=11)


def test_weights_are_distributions() -> None:
    assert not set(GENUINE_KINDS) & set(FAKE_KINDS)
    assert all(k.startswith("genuine_") for k in GENUINE_KINDS)
    assert all(k.startswith("fake_") for k in FAKE_KINDS)
    assert sum(GENUINE_KINDS.values()) == pytest.approx(1.0)
    assert sum(FAKE_KINDS.values()) == pytest.approx(1.0)
    assert {f"fake_{f}" for f in OBFUSCATIONS} <= set(FAKE_KINDS)


def test_same_seed_same_marketplace_other_seed_another(seed_registry: Registry) -> None:
    a = generate_marketplace(seed_registry, 300, seed=5)
    assert a.equals(generate_marketplace(seed_registry, 300, seed=5))
    b = generate_marketplace(seed_registry, 300, seed=6)
    assert a["title"].to_list() != b["title"].to_list()
    assert a["kind"].to_list() != b["kind"].to_list()
    # samples from different seeds can be combined without id collisions
    assert not set(a["listing_id"]) & set(b["listing_id"])


def test_columns_and_dtypes(big: pl.DataFrame, seed_registry: Registry) -> None:
    assert dict(big.schema) == SCHEMA
    assert big.height == 5000
    for col in ("listing_id", "title", "seller_id", "currency", "condition", "price", "kind"):
        assert big[col].null_count() == 0, col
    assert (big["title"].str.strip_chars().str.len_chars() > 0).all()
    assert (big["price"] > 0).all() and big["price"].is_finite().all()
    assert set(big["currency"]) <= {"USD", "EUR", "GBP", "CNY"}
    assert set(big["condition"]) <= {"new", "used", "refurbished"}
    categories = set(seed_registry.categories) | OTHER_CATEGORIES
    assert set(big["category"].drop_nulls()) <= categories
    declared = set(big["brand"].drop_nulls())
    assert declared and declared <= set(seed_registry.brand_names)


def test_listing_ids_unique(big: pl.DataFrame) -> None:
    assert big["listing_id"].n_unique() == big.height


def test_label_matches_kind(big: pl.DataFrame) -> None:
    assert set(big["kind"]) <= set(GENUINE_KINDS) | set(FAKE_KINDS)
    expected = big["kind"].str.starts_with("fake_").cast(pl.Int8)
    assert (big["label"] == expected).all()
    assert set(big["label"]) == {0, 1}


def test_every_kind_appears(big: pl.DataFrame) -> None:
    assert set(big["kind"]) == set(GENUINE_KINDS) | set(FAKE_KINDS)


def test_kinds_look_like_their_case(big: pl.DataFrame) -> None:
    """A few cheap sanity checks that the kind describes the listing."""
    by = big.partition_by("kind", as_dict=True)

    def rows(kind: str) -> pl.DataFrame:
        return by[(kind,)]

    assert (rows("genuine_used")["condition"] == "used").all()
    assert (rows("genuine_refurbished")["condition"] == "refurbished").all()
    assert rows("genuine_authorised")["brand"].null_count() == 0
    assert rows("genuine_generic")["brand"].null_count() == rows("genuine_generic").height
    assert (rows("genuine_accessory")["category"] == "accessories").all()
    assert rows("fake_native")["title"].str.contains(r"[\u3400-\u9fff]").all()
    assert rows("fake_fullwidth")["title"].str.contains(r"[\uff01-\uff5e]").all()
    assert rows("fake_zero_width")["title"].str.contains("[\u200b\u200c\u200d\u00ad]").all()
    assert rows("fake_masked")["title"].str.contains(r"\*").all()
    assert rows("fake_leet")["title"].str.contains(r"[0-9]").all()
    assert rows("fake_confusable")["title"].str.contains(r"[^\x00-\x7f]").all()
    # fake listings are much cheaper than genuine ones of the same brand, except premium copies
    fake_low = rows("fake_low_price")["price"].median()
    authorised = rows("genuine_authorised")["price"].median()
    assert isinstance(fake_low, float) and isinstance(authorised, float)
    assert fake_low < authorised / 3


@pytest.mark.parametrize("share", [0.0, 0.2, 0.35, 0.6, 1.0])
def test_fake_share_respected(seed_registry: Registry, share: float) -> None:
    n = 3000
    labels = generate_marketplace(seed_registry, n, seed=2, fake_share=share)["label"]
    observed = labels.cast(pl.Float64).mean()
    assert isinstance(observed, float)
    # binomial standard deviation is at most 0.0092 at n=3000: allow 4 of them
    assert observed == pytest.approx(share, abs=0.037)
    if share in (0.0, 1.0):
        assert observed == share


def test_genuine_kind_mix_follows_weights(big: pl.DataFrame) -> None:
    genuine = big.filter(pl.col("label") == 0)
    share = genuine["kind"].value_counts(normalize=True)
    got = dict(zip(share["kind"], share["proportion"], strict=True))
    for kind, weight in GENUINE_KINDS.items():
        assert got[kind] == pytest.approx(weight, abs=0.04), kind


def test_bad_arguments(seed_registry: Registry) -> None:
    empty = generate_marketplace(seed_registry, 0)
    assert empty.height == 0 and dict(empty.schema) == SCHEMA
    with pytest.raises(ValueError, match="n must be"):
        generate_marketplace(seed_registry, -1)
    for share in (-0.1, 1.5):
        with pytest.raises(ValueError, match="fake_share"):
            generate_marketplace(seed_registry, 10, fake_share=share)
    with pytest.raises(ValueError, match="unknown obfuscation family"):
        obfuscate("Gucci", "rot13", random.Random(0))


# ---------------------------------------------------------------- obfuscate

NAMES = ["Gucci", "Balenciaga", "Louis Vuitton", "Rolex", "Chanel", "Versace", "Prada"]


@pytest.mark.parametrize("family", OBFUSCATIONS)
def test_obfuscate_changes_the_name_and_is_deterministic(family: str) -> None:
    for name in NAMES:
        for seed in range(8):
            out = obfuscate(name, family, random.Random(seed))
            assert out != name
            assert out == obfuscate(name, family, random.Random(seed))


@pytest.mark.parametrize("family", OBFUSCATIONS)
def test_obfuscated_text_still_reads_as_the_name(family: str) -> None:
    """Each family changes the name only in its own way, so a reader still recognises it."""
    for name in NAMES:
        for seed in range(8):
            out = obfuscate(name, family, random.Random(seed))
            check_family(name, family, out)


def check_family(name: str, family: str, out: str) -> None:
    if family == "typo":
        words, typed = name.split(), out.split()
        assert len(words) == len(typed)
        changed = [(w, t) for w, t in zip(words, typed, strict=True) if w != t]
        assert len(changed) == 1, out
        w, t = changed[0]
        assert t[0] == w[0] and OSA.distance(w.lower(), t.lower()) == 1, out
    elif family == "confusable":
        assert len(out) == len(name)
        diff = [(a, b) for a, b in zip(name, out, strict=True) if a != b]
        assert 1 <= len(diff) <= 2
        assert all(b in LOOKALIKE[a.lower()] for a, b in diff), out
    elif family == "fullwidth":
        assert unicodedata.normalize("NFKC", out) == name
        assert all(not ("!" <= c <= "~") for c in out)
    elif family == "zero_width":
        hidden = [c for c in out if c in "\u200b\u200c\u200d\u00ad"]
        assert len(hidden) == 1 and len(out) == len(name) + 1
        assert out.replace(hidden[0], "") == name
    elif family == "leet":
        assert len(out) == len(name)
        diff = [(a, b) for a, b in zip(name, out, strict=True) if a != b]
        assert 1 <= len(diff) <= 2
        assert all(LEET_OUT[a.lower()] == b for a, b in diff), out
    elif family == "spaced":
        letters = [c for c in out if c.isalnum()]
        assert "".join(letters) == brand_key(name).upper()
        seps = {c for c in out if not c.isalnum()}
        assert len(seps) == 1 and seps <= {" ", ".", "-"}
        assert len(out) == 2 * len(letters) - 1
    elif family == "masked":
        assert len(out) == len(name)
        spots = [(i, b) for i, (a, b) in enumerate(zip(name, out, strict=True)) if a != b]
        assert 1 <= len(spots) <= 2
        assert all(b == "*" and 0 < i < len(name) - 1 for i, b in spots), out
    else:  # pragma: no cover - every family is listed above
        raise AssertionError(family)


# ---------------------------------------------------------------- CLI


def test_cli_writes_the_same_sample(tmp_path: Path, seed_registry: Registry) -> None:
    out = tmp_path / "tmp.parquet"
    proc = subprocess.run(
        [sys.executable, "-m", "seeds.marketplace", "--n", "200", "--seed", "3", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    frame = pl.read_parquet(out)
    assert frame.height == 200 and dict(frame.schema) == SCHEMA
    assert frame.equals(generate_marketplace(seed_registry, 200, seed=3))
    fakes = int(frame["label"].sum())
    assert f"200 listings ({fakes} counterfeit)" in proc.stdout


def test_small_goods_are_deterministic_labelled_and_scored_apart(seed_registry: Registry) -> None:
    from pipelines.stages import ScoringPlan, score_frame

    small = generate_small_goods(seed_registry, 400, seed=3)
    assert small.equals(generate_small_goods(seed_registry, 400, seed=3))
    assert small.get_column("listing_id").n_unique() == 400
    assert small.group_by("kind").agg(pl.col("label").unique()).sort("kind").rows() == [
        ("fake_small_goods", [1]),
        ("genuine_small_goods", [0]),
    ]
    scored = score_frame(small, ScoringPlan.build(seed_registry))
    shares = scored.group_by("kind").agg(
        (pl.col("decision") == "block").mean().alias("blocked"),
        (pl.col("decision") != "allow").mean().alias("flagged"),
    )
    by_kind = {k: (b, f) for k, b, f in shares.iter_rows()}
    # a brand's own charger at its price is never blocked; most fakes are at least reviewed
    assert by_kind["genuine_small_goods"][0] == 0.0
    assert by_kind["fake_small_goods"][1] >= 0.9


def test_everyday_listings_are_deterministic_labelled_and_read_right(
    seed_registry: Registry,
) -> None:
    from pipelines.stages import ScoringPlan, score_frame

    every = generate_everyday(seed_registry, 600, seed=5)
    assert every.equals(generate_everyday(seed_registry, 600, seed=5))
    assert every.get_column("listing_id").n_unique() == 600
    labels = dict(every.group_by("kind").agg(pl.col("label").unique()).iter_rows())
    assert labels == {
        "genuine_plural": [0],
        "genuine_small_bottle": [0],
        "genuine_fan_kit": [0],
        "fake_model_name": [1],
        "fake_plural": [1],
        "fake_small_bottle": [1],
    }
    scored = score_frame(every, ScoringPlan.build(seed_registry))
    flagged = dict(scored.group_by("kind").agg((pl.col("decision") != "allow").mean()).iter_rows())
    # plurals, small bottles and fan kits at their price are allowed; fakes of each are flagged
    for kind, share in flagged.items():
        if kind.startswith("genuine_"):
            assert share == 0.0, kind
        else:
            assert share >= 0.95, kind
