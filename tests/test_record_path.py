"""The one-listing path (``score_record`` twins, ``Scorer.score_one``) against the batch path.

Every twin is checked against the polars expression or the batch stage it mirrors: on the
generated marketplace (all the hard cases, both ways) and on hypothesis-drawn text.
"""

from __future__ import annotations

import io
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from filters.core import textops
from filters.text import TextFilter, folded, phrase_text
from models.compiled import CompiledFusion
from models.features import FEATURES
from models.fusion import FusionModel, LearnedFusion, train
from pipelines import Scorer, ValidationError
from pipelines.learn import training_set
from pipelines.record import coerce_record, score_record
from pipelines.registry import Registry, default_registry_dir, load_registry
from pipelines.stages import OUTPUT_SCHEMA, ScoringPlan
from seeds.images import attach_images, sample_registry
from seeds.marketplace import generate_marketplace

# text with the characters the filters treat specially: look-alikes, fullwidth, zero-width,
# accents, CJK, leetspeak and mask symbols, separators, whitespace of several kinds
ALPHABET = st.sampled_from(
    list("abcdegiklmnorstuxyz GUCIRLEX0134579$@!|*•#.-_/:+&'")
    + list("аеорсхіαορ")  # Cyrillic and Greek look-alikes
    + list("ＧＵＣＩ１")  # fullwidth
    + ["\u200b", "\u00ad", "\ufeff", "\u034f", "\u3000", "\u00a0", "\t", "\x1f"]
    + list("éèüñçøåßİ")
    + list("古驰劳力士耐克ルイヴィトン・ー한국")
)
TEXT = st.text(ALPHABET, max_size=40)
WORDS = st.lists(
    st.sampled_from(
        [
            "gucci",
            "guccci",
            "g u c c i",
            "gu**i",
            "r0lex",
            "rolex",
            "ролекс",
            "nike",
            "laces",
            "for",
            "case",
            "compatible",
            "with",
            "replica",
            "aaa",
            "1:1",
            "coach",
            "jacket",
            "sea",
            "shell",
            "omega",
            "3",
            "louis",
            "vuitton",
            "lv",
            "bag",
            "used",
            "高仿",
            "古驰",
            "ＧＵＣＣＩ",
            "gu\u200bcci",
            "calvin",
            "klein",
            "c.k",
            "apple",
            "charger",
            "socks",
            "glasses",
            "case",
            "+",
            "key",
            "ring",
            "replacement",
            "cleaning",
            "cloth",
            "pre-owned",
            "refurbished",
            "watch",
            "iphone",
            "airpods",
        ]
    ),
    max_size=8,
).map(" ".join)


@pytest.fixture(scope="module")
def registry(seed_registry: Registry) -> Registry:
    return seed_registry


@pytest.fixture(scope="module")
def text_filter(registry: Registry) -> TextFilter:
    return TextFilter().fit(registry)


@pytest.fixture(scope="module")
def market(registry: Registry) -> pl.DataFrame:
    return generate_marketplace(registry, n=1500, seed=11)


# ---------------------------------------------------------------- string twins


def _polars(expr: pl.Expr, values: list[str]) -> list[Any]:
    frame = pl.DataFrame({"x": values}, schema={"x": pl.String})
    return frame.select(expr.alias("x"))["x"].to_list()


@settings(max_examples=300, deadline=None)
@given(st.lists(TEXT, min_size=1, max_size=20))
def test_string_twins_equal_polars(values: list[str]) -> None:
    x = pl.col("x")
    assert [textops.folded(v) for v in values] == _polars(folded(x), values)
    assert [textops.phrase_text(v) for v in values] == _polars(phrase_text(x), values)
    assert [textops.strip_chars(v) for v in values] == _polars(x.str.strip_chars(), values)
    assert [v.lower() for v in values] == _polars(x.str.to_lowercase(), values)
    assert [textops.titlecase(v) for v in values] == _polars(x.str.to_titlecase(), values)
    assert [textops.brand_key_expr(v) for v in values] == _polars(
        x.str.to_lowercase().str.normalize("NFKD").str.replace_all(r"[^\p{L}\p{N}]", ""), values
    )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text("ab c", min_size=1, max_size=4), min_size=1, max_size=6),
    st.lists(st.text("ab c", max_size=30), min_size=1, max_size=10),
)
def test_pattern_search_has_polars_semantics(patterns: list[str], texts: list[str]) -> None:
    """Earliest end wins, then the longest; the scan resumes after each match."""
    ps = textops.PatternSet(patterns)
    uniq = list(dict.fromkeys(patterns))
    x = pl.col("x")
    assert [ps.extract(t) for t in texts] == _polars(
        x.str.extract_many(uniq, overlapping=False), texts
    )
    assert [ps.replace(t, "#") for t in texts] == _polars(
        x.str.replace_many(uniq, ["#"] * len(uniq)), texts
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.floats(0, 1e6, allow_nan=False),
            st.integers(0, 10**6).map(lambda i: i / 1000),  # exact halves and thousandths
        ),
        min_size=1,
        max_size=50,
    ),
    st.integers(0, 2),
)
def test_rounding_and_printing_equal_polars(values: list[float], decimals: int) -> None:
    s = pl.Series("x", values, dtype=pl.Float64)
    assert [textops.pl_round(v, decimals) for v in values] == s.round(decimals).to_list()
    rounded = s.round(decimals)
    assert [textops.pl_str(v) for v in rounded.to_list()] == rounded.cast(pl.String).to_list()



@settings(max_examples=500, deadline=None)
@given(st.lists(st.floats(width=64), min_size=1, max_size=50))
def test_printing_any_float_equals_polars(values: list[float]) -> None:
    """Every Float64, the tiny, the huge, infinities and NaN, prints as polars prints it."""
    printed = pl.Series("x", values, dtype=pl.Float64).cast(pl.String).to_list()
    assert [textops.pl_str(v) for v in values] == printed


# ---------------------------------------------------------------- text filter


def _text_rows(f: TextFilter, frame: pl.DataFrame) -> tuple[list[dict[str, Any]], list[Any]]:
    cols = list(f.output_schema())
    batch = f.score(frame).collect().select(cols).to_dicts()
    return batch, [f.score_record(r) for r in frame.to_dicts()]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=0, abs_tol=1e-12)
    return bool(a == b)


def _assert_rows_equal(
    batch: list[dict[str, Any]], single: list[dict[str, Any]], what: str
) -> None:
    for i, (b, s) in enumerate(zip(batch, single, strict=True)):
        diff = {c: (b[c], s[c]) for c in b if not _same(b[c], s[c])}
        assert not diff, f"{what} row {i}: batch vs record {diff}"


def test_text_record_equals_batch_on_the_marketplace(
    text_filter: TextFilter, market: pl.DataFrame
) -> None:
    frame = market.select("title", "description", "brand", "category")
    batch, single = _text_rows(text_filter, frame)
    _assert_rows_equal(batch, single, "marketplace")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.one_of(TEXT, WORDS),
            st.one_of(st.none(), WORDS),
            st.sampled_from([None, "Gucci", "Rolex", "nike", "  ", "Shell"]),
            st.sampled_from([None, "bags", " Watches ", "lubricants", "", "Home-Appliances"]),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_text_record_equals_batch_on_drawn_titles(
    text_filter: TextFilter, rows: list[tuple[str, str | None, str | None, str | None]]
) -> None:
    frame = pl.DataFrame(rows, schema=["title", "description", "brand", "category"], orient="row")
    batch, single = _text_rows(text_filter, frame)
    _assert_rows_equal(batch, single, "drawn")


def test_text_record_does_not_depend_on_other_listings(text_filter: TextFilter) -> None:
    """A token spelled apart in one listing once took "spaced" from another of the batch."""
    alone = text_filter.score(pl.DataFrame({"title": ["a b g*u*c*c*i bag"]})).collect()
    together = text_filter.score(
        pl.DataFrame({"title": ["a b g*u*c*c*i bag", "g*u*c*c*i"]})
    ).collect()
    assert alone.row(0) == together.row(0)


# ---------------------------------------------------------------- compiled model


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_compiled_model_equals_predict_proba(method: str) -> None:
    rng = np.random.default_rng(3)
    X = rng.random((3000, len(FEATURES)))
    X[rng.random(X.shape) < 0.25] = np.nan
    X[:, 7] = np.nan  # a feature never seen in training
    y = ((np.nan_to_num(X[:, 0]) + 0.5 * rng.random(3000)) > 0.7).astype(int)
    model = FusionModel(feature_names=FEATURES, method=method, random_state=0).fit(X, y)
    compiled = CompiledFusion.of(model)
    assert compiled is not None
    T = rng.random((500, len(FEATURES))) * 1.4 - 0.2  # also outside the training range
    T[rng.random(T.shape) < 0.3] = np.nan
    expected = model.predict_proba(T)[:, 1]
    got = [compiled.predict_one([None if np.isnan(v) else float(v) for v in row]) for row in T]
    np.testing.assert_array_equal(got, expected)


def test_uncalibrated_model_compiles_too() -> None:
    rng = np.random.default_rng(4)
    X = rng.random((40, len(FEATURES)))
    y = np.r_[np.zeros(39, dtype=int), [1]]  # too few positives to calibrate
    model = FusionModel(feature_names=FEATURES, random_state=0).fit(X, y)
    compiled = CompiledFusion.of(model)
    assert compiled is not None and compiled.calibrators is None
    np.testing.assert_array_equal(
        [compiled.predict_one(list(row)) for row in X], model.predict_proba(X)[:, 1]
    )


# ---------------------------------------------------------------- the whole chain


def _plan(registry: Registry, fusion: LearnedFusion | None = None) -> ScoringPlan:
    plan = ScoringPlan.build(registry)
    if fusion is not None:
        plan.fusion, plan.thresholds = fusion, fusion.thresholds
    return plan


@pytest.fixture(scope="module")
def learned(registry: Registry, market: pl.DataFrame) -> LearnedFusion:
    # trained as `fakestop train` trains: each listing and a copy with inputs dropped
    data = training_set(market, _plan(registry))
    return train(
        data.frame,
        registry_fingerprint=registry.fingerprint,
        folds=3,
        seed=0,
        groups=data.groups,
        augmented=data.augmented,
    )


def _one_by_one(plan: ScoringPlan, records: list[dict[str, Any]]) -> None:
    scorer = Scorer(plan, on_error="quarantine")
    assert scorer.records, "the seed plan must take the one-listing path"
    for i, rec in enumerate(records):
        fast = scorer.score_one(rec)
        (slow,) = scorer.score_batch([rec])
        diff = {
            c: (getattr(fast, c), getattr(slow, c))
            for c in ("listing_id", *OUTPUT_SCHEMA)
            if not _same(getattr(fast, c), getattr(slow, c))
        }
        assert not diff, f"listing {i} {rec.get('title')!r}: record vs frame {diff}"


def test_score_one_equals_the_frame_path_zero_shot(
    registry: Registry, market: pl.DataFrame
) -> None:
    records = market.drop("image", strict=False).head(200).to_dicts()
    _one_by_one(_plan(registry), records)


def test_score_one_equals_the_frame_path_with_a_model(
    registry: Registry, market: pl.DataFrame, learned: LearnedFusion
) -> None:
    records = market.drop("image", strict=False).tail(150).to_dicts()
    _one_by_one(_plan(registry, learned), records)


def test_score_one_equals_the_frame_path_with_photos(registry: Registry, tmp_path: Path) -> None:
    brands = ["Gucci", "Rolex", "Nike", "Chanel", "Prada", "Omega"]
    reg_dir = sample_registry(registry, tmp_path / "registry", brands, seed=2)
    with_photos = load_registry(reg_dir)
    market = generate_marketplace(with_photos, n=80, seed=4, true_brand=True)
    images = tmp_path / "images"
    market = attach_images(market, with_photos, images, seed=4, share=0.8)
    plan = ScoringPlan.build(with_photos, images_root=images)
    records = market.drop("true_brand").to_dicts()
    # the same photos as bytes and as Pillow images, and a broken one
    for rec in records[:10]:
        if rec["image"] is not None:
            data = (images / rec["image"]).read_bytes()
            records.append({**rec, "listing_id": rec["listing_id"] + "b", "image": data})
            records.append(
                {
                    **rec,
                    "listing_id": rec["listing_id"] + "p",
                    "image": Image.open(io.BytesIO(data)),
                }
            )
            records.append({**rec, "listing_id": rec["listing_id"] + "t", "image": data[:300]})
    records.append({**records[0], "listing_id": "escape", "image": "../registry/brands.csv"})
    # a known fake's own photo, so that the paths are compared on a photo that matches
    shutil.copy(with_photos.known_fakes.get_column("image")[0], images / "known_fake.jpg")
    records.append({**records[0], "listing_id": "known", "image": "known_fake.jpg"})
    _one_by_one(plan, records)
    matched = [Scorer(plan).score_one(r) for r in records if r.get("image") is not None]
    assert any(r.image_score is not None and r.image_score > 0 for r in matched)


HOSTILE: list[dict[str, Any]] = [
    {"listing_id": "h1", "title": "Rolex", "price": "12.50"},
    {"listing_id": "h2", "title": "Rolex", "price": " 7 "},
    {"listing_id": "h3", "title": "Rolex", "price": True},
    {"listing_id": "h4", "title": "Rolex", "price": float("nan")},
    {"listing_id": "h5", "title": "Rolex", "price": float("inf")},
    {"listing_id": "h6", "title": "Rolex", "price": -3},
    {"listing_id": "h7", "title": ["Rolex"], "price": 3},
    {"listing_id": 8, "title": 123, "price": 3},
    {"listing_id": "h9", "title": "Rolex", "price": 1e300, "currency": "eur"},
    {"listing_id": "h10", "title": "Rolex", "price": 40, "currency": "XXX"},
    {"listing_id": "h11", "title": "Rolex", "price": 40, "condition": " Used "},
    {"listing_id": "h12", "title": "Rolex", "price": 40, "condition": "broken"},
    {"listing_id": " ", "title": "\u200b", "price": None},
    {"listing_id": "h14", "title": "Rolex " * 2000, "price": 5, "seller_id": "s1"},
    {"listing_id": "h15", "title": "\u202egucci\u202c bag", "price": 5, "label": 1.0},
    {"listing_id": "h16", "title": "Rolex", "price": 40, "label": "yes"},
]


def test_hostile_values_agree_between_paths(registry: Registry) -> None:
    _one_by_one(_plan(registry), HOSTILE)


def test_wrong_types_are_named_in_the_error(registry: Registry) -> None:
    scorer = Scorer(_plan(registry))
    with pytest.raises(ValidationError, match="title: expected text, got list"):
        scorer.score_one({"listing_id": "x", "title": ["Rolex"], "price": 3})
    with pytest.raises(ValidationError, match="price: expected a number, got bool") as info:
        scorer.score_one({"listing_id": "x", "title": "Rolex", "price": True})
    assert info.value.field is not None
    assert coerce_record({"price": "1e3"})["price"] == 1000.0


def test_score_one_equals_fakestop_score_with_batches_of_one(
    registry: Registry, market: pl.DataFrame, tmp_path: Path
) -> None:
    """``fakestop score --batch-size 1`` scores each listing on its own, as ``score_one``."""
    # without sellers: blocks would add strikes to the run's ledger, and a frozen seller's
    # later listings are blocked whatever they say
    sample = market.drop("image", "seller_id", strict=False).slice(100, 25)
    src, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    sample.write_parquet(src)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "score",
            str(src),
            "--registry",
            str(default_registry_dir()),
            "--out",
            str(out),
            "--batch-size",
            "1",
            "--quiet",
        ],
        check=True,
    )
    cli = pl.read_parquet(out).select("listing_id", *OUTPUT_SCHEMA).to_dicts()
    scorer = Scorer.from_registry(default_registry_dir(), on_error="quarantine")
    for row, rec in zip(cli, sample.to_dicts(), strict=True):
        got = scorer.score_one(rec)
        for c in ("listing_id", *OUTPUT_SCHEMA):
            want = tuple(row[c] or ()) if c == "reasons" else row[c]
            assert _same(getattr(got, c), want), (rec["title"], c, getattr(got, c), want)


def test_record_path_output_columns_cover_the_contract(registry: Registry) -> None:
    row = score_record({"listing_id": "a", "title": "Guccci bag", "price": 20}, _plan(registry))
    assert set(OUTPUT_SCHEMA) <= set(row)
    assert row["decision"] in {"block", "review"} and row["reasons"]


def test_fitted_plan_pickles_and_scores_the_same_after(registry: Registry) -> None:
    """The Spark runner broadcasts the fitted plan; the per-word caches are rebuilt there."""
    import pickle

    plan = _plan(registry)
    listing = {"listing_id": "p", "title": "Guccci bag 1:1", "price": 30.0}
    before = score_record(listing, plan)
    copy = pickle.loads(pickle.dumps(plan))
    assert score_record(listing, copy) == before


_SCORES = st.one_of(st.none(), st.sampled_from([0.0, 0.35, 0.5, 0.95]))
_REASONS = st.one_of(
    st.none(), st.lists(st.sampled_from(["a", "ab", "b", "", "price $1", "é"]), max_size=3)
)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(_SCORES, _REASONS, _SCORES, _REASONS, _SCORES, _REASONS, st.booleans()),
        min_size=1,
        max_size=20,
    )
)
def test_reason_order_equals_the_record_path_on_ties(rows: list[tuple[Any, ...]]) -> None:
    """Equal scores are ordered by their reasons, the same way in both paths."""
    from pipelines.record import _explained
    from pipelines.stages import explained

    frame = pl.DataFrame(
        [
            {
                "text_score": ts,
                "text_reasons": tr,
                "image_score": is_,
                "image_reasons": ir,
                "price_score": ps,
                "price_reasons": pr,
                "risk": 0.6,
                "decision": "review" if flagged else "allow",
            }
            for ts, tr, is_, ir, ps, pr, flagged in rows
        ],
        schema={
            "text_score": pl.Float64,
            "text_reasons": pl.List(pl.String),
            "image_score": pl.Float64,
            "image_reasons": pl.List(pl.String),
            "price_score": pl.Float64,
            "price_reasons": pl.List(pl.String),
            "risk": pl.Float64,
            "decision": pl.String,
        },
    )
    got = explained(frame.lazy()).collect().get_column("reasons").to_list()
    assert got == [_explained(row) for row in frame.iter_rows(named=True)]
