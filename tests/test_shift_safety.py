"""A trained model keeps its precision off its training data: seller evidence alone never
blocks, thresholds keep a margin, copies with shuffled sellers in training, condition ``parts``
as a legitimate context."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections import Counter

import numpy as np
import polars as pl
import pytest

from filters.core.textops import pl_round, pl_str
from models.features import legitimate_context, legitimate_context_expr
from models.fusion import (
    AGREEMENT_BELOW_RISK,
    AGREEMENT_FILTERS,
    LearnedFusion,
    choose_thresholds,
    evidence_floor_exprs,
    evidence_floor_record,
    speaking_filter_exprs,
    speaking_filters,
    strongest_filter_expr,
    top_of_gap,
    train,
)
from models.thresholds import Thresholds, pick_block_threshold
from pipelines.learn import (
    COPY_SUFFIX,
    SHUFFLED_SELLER_SUFFIX,
    shuffled_sellers,
    training_set,
    with_inputs_dropped,
)
from pipelines.record import score_record
from pipelines.registry import Registry
from pipelines.stages import ScoringPlan, score_frame
from seeds.marketplace import generate_marketplace

# ---------------------------------------------------------------- two filters to block


@pytest.fixture(scope="module")
def blind_fusion(seed_registry: Registry) -> LearnedFusion:
    """A model that learned nothing useful (labels unrelated to the evidence), kept anyway:
    its risks sit near the base rate whatever the listing says."""
    frame = generate_marketplace(seed_registry, 600, seed=8)
    scored = score_frame(frame, ScoringPlan.build(seed_registry), keep_evidence=True)
    rng = np.random.default_rng(0)
    scored = scored.with_columns(pl.Series("label", (rng.random(scored.height) < 0.3)))
    scored = scored.with_columns(pl.col("label").cast(pl.Int8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return train(scored, registry_fingerprint="r", folds=3, allow_degenerate=True)


def _eager(blind: LearnedFusion) -> tuple[LearnedFusion, Thresholds]:
    """The blind model with thresholds below its base-rate risks: it would block everything."""
    t = Thresholds(block=0.01, review=0.005)
    return dataclasses.replace(blind, thresholds=t), t


def test_one_weak_filter_alone_never_blocks(
    seed_registry: Registry, blind_fusion: LearnedFusion
) -> None:
    fusion, t = _eager(blind_fusion)
    plan = ScoringPlan.build(seed_registry)
    plan.fusion, plan.thresholds = fusion, t
    frame = generate_marketplace(seed_registry, 1500, seed=31)
    rng = np.random.default_rng(0)
    sellers = frame.get_column("seller_id").to_numpy()
    frame = frame.with_columns(pl.Series("seller_id", rng.permutation(sellers)))
    scored = score_frame(frame, plan, keep_evidence=True).filter(pl.col("status") == "ok")
    speaking = speaking_filter_exprs(set(scored.columns))
    scored = scored.with_columns(
        pl.sum_horizontal(e.cast(pl.Int32) for e in speaking.values()).alias("spoke"),
        strongest_filter_expr(set(scored.columns)).alias("strongest"),
    )
    low = scored.filter(pl.col("strongest") < AGREEMENT_BELOW_RISK)
    alone = low.filter(pl.col("spoke") < AGREEMENT_FILTERS)
    agreed = low.filter(pl.col("spoke") >= AGREEMENT_FILTERS)
    # the model would block all of them; one filter's evidence (or none) is not enough
    assert alone.height >= 100 and agreed.height >= 20, (alone.height, agreed.height)
    assert (alone.get_column("decision") == "review").all()
    # lowered just below the block threshold: reviewed, and still ranked above the rest
    assert (alone.get_column("risk") == math.nextafter(t.block, 0)).all()
    assert (agreed.get_column("decision") == "block").all()
    for row in alone.head(50).iter_rows(named=True):
        assert row["reasons"][0].startswith("model risk "), row["reasons"]
        assert f"blocking needs {AGREEMENT_FILTERS} filters" in row["reasons"][0]
    # with the seller's shares alone speaking (mixed accounts), the reason names the seller
    seller_only = alone.filter(pl.col("spoke") == 1).filter(speaking["seller"])
    assert seller_only.height > 0
    assert "(seller)" in seller_only.row(0, named=True)["reasons"][0]
    # a filter that alone reaches the zero-shot review threshold leaves the model's decision
    high = scored.filter(pl.col("strongest") >= AGREEMENT_BELOW_RISK)
    assert high.height > 0 and (high.get_column("decision") == "block").all()


def test_agreement_rule_is_the_same_one_listing_at_a_time(
    seed_registry: Registry, blind_fusion: LearnedFusion
) -> None:
    fusion, t = _eager(blind_fusion)
    plan = ScoringPlan.build(seed_registry)
    plan.fusion, plan.thresholds = fusion, t
    records = generate_marketplace(seed_registry, 30, seed=32).to_dicts()
    records += [
        {"listing_id": "a1", "title": "Wooden cutting board black", "price": 20.0},
        {"listing_id": "a2", "title": "Rolex Submariner watch", "price": 9000.0},
        {"listing_id": "a3", "title": "R0lex Submariner watch", "price": 9000.0},
    ]
    capped = 0
    for rec in records:
        single = score_record(rec, plan)
        batch = score_frame(pl.DataFrame([rec]), plan).to_dicts()[0]
        for c in ("risk", "decision", "reasons"):
            assert single[c] == batch[c], (rec["listing_id"], c, single[c], batch[c])
        capped += single["reasons"][:1] != [] and single["reasons"][0].startswith("model risk")
    assert capped >= 5


def test_speaking_filters_record_and_frame_agree() -> None:
    rows: list[dict[str, float | None]] = [
        # a plain brand mention, no price or photo evidence: nothing
        {"text_score": 0.1, "price_score": 0.0, "seller_share_high_text": 0.0},
        # a disguise; one of the seller's 5 listings has suspicious text
        {"text_score": 0.16, "seller_share_high_text": 0.2, "seller_listings": 5},
        {"text_score": 0.07, "price_score": 0.3, "image_score": 0.5},
        # the seller's only suspicious listing is this one: an echo of its own text
        {"text_score": 0.6, "seller_share_high_text": 0.25, "seller_listings": 4},
        # ... and one more besides it
        {"text_score": 0.6, "seller_share_high_text": 0.5, "seller_listings": 4},
        # cheap branded listings across the account repeat the price evidence
        {"text_score": None, "seller_luxury_low_price": 0.5, "seller_listings": 4},
    ]
    schema = {
        "text_score": pl.Float64,
        "price_score": pl.Float64,
        "image_score": pl.Float64,
        "seller_share_high_text": pl.Float64,
        "seller_luxury_low_price": pl.Float64,
        "seller_listings": pl.Int64,
    }
    frame = pl.DataFrame(rows, schema=schema)
    got = frame.select(**speaking_filter_exprs(set(frame.columns))).to_dicts()
    for row, flags in zip(frame.to_dicts(), got, strict=True):
        assert speaking_filters(row) == [k for k, v in flags.items() if v]
    assert [speaking_filters(r) for r in rows] == [
        [],
        ["text", "seller"],
        ["price", "image"],
        ["text"],
        ["text", "seller"],
        [],
    ]


def test_capped_listing_reason_matches_between_paths() -> None:
    t = Thresholds(block=0.5, review=0.2)
    row = {
        "risk": 0.93,
        "zero_shot_risk": 0.07,
        "text_score": 0.07,
        "price_score": 0.0,
        "image_score": None,
        "seller_share_high_text": 0.3,
        "seller_luxury_low_price": 0.1,
        "seller_listings": 10.0,
    }
    risk, reasons = evidence_floor_record(row, t)
    frame = pl.DataFrame([row], schema={k: pl.Float64 for k in row})
    out = frame.with_columns(**evidence_floor_exprs(set(frame.columns), t)).row(0, named=True)
    assert risk == out["risk"] == math.nextafter(t.block, 0)
    assert reasons == out["fusion_reasons"]
    assert reasons == [
        f"model risk {pl_str(pl_round(0.93, 3))} but no filter above {pl_str(pl_round(0.07, 2))}"
        " alone and evidence from 1 filter(s) (seller): at most review (blocking needs 2 filters)"
    ]
    # two filters: blocked as the model says
    agreed = {**row, "price_score": 0.4}
    assert evidence_floor_record(agreed, t) == (0.93, [])
    # a brand name disguised on purpose is evidence of its own; a typo is not
    for kind, kept in (("spaced", True), ("confusable", True), ("typo", False)):
        disguised = {**row, "text_score": 0.16, "text_match": kind, "seller_listings": None}
        frame = pl.DataFrame([disguised])
        out = frame.with_columns(**evidence_floor_exprs(set(frame.columns), t)).row(0, named=True)
        got = evidence_floor_record(disguised, t)
        assert got == (out["risk"], out["fusion_reasons"])
        assert (got[0] == 0.93) is kept, kind


# ---------------------------------------------------------------- a threshold with a margin


def test_block_threshold_sits_at_the_top_of_the_out_of_fold_gap() -> None:
    rng = np.random.default_rng(0)
    genuine = rng.uniform(0.0, 0.1, 900)
    fakes = rng.uniform(0.6, 1.0, 300)
    y = np.r_[np.zeros(900, np.int64), np.ones(300, np.int64)]
    oof = np.r_[genuine, fakes]
    lowest = pick_block_threshold(y, oof, target_precision=0.99)
    assert lowest < 0.1  # the bottom of the gap: no margin at all
    t, block = choose_thresholds(y, oof)
    assert t.block == block == fakes.min()  # the widest margin
    # the same counterfeits blocked, fewer genuine listings
    assert ((oof >= t.block) & (y == 1) == (oof >= lowest) & (y == 1)).all()
    assert ((oof >= t.block) & (y == 0)).sum() < ((oof >= lowest) & (y == 0)).sum()
    assert top_of_gap(y, oof, 1.5) == 1.5  # never blocks stays never


def test_block_threshold_holds_precision_on_shuffled_sellers() -> None:
    rng = np.random.default_rng(1)
    n = 1000
    y = (rng.random(3 * n) < 0.3).astype(np.int64)
    oof = np.where(y == 1, rng.uniform(0.5, 1.0, 3 * n), rng.uniform(0.0, 0.2, 3 * n))
    copies = np.arange(3 * n) >= n
    shuffled = np.arange(3 * n) >= 2 * n
    # with sellers shuffled, genuine listings reach high risks
    hot = shuffled & (y == 0) & (rng.random(3 * n) < 0.1)
    oof[hot] = rng.uniform(0.5, 0.8, hot.sum())
    without, _ = choose_thresholds(y, oof, copies)
    with_shuffled, _ = choose_thresholds(y, oof, copies, shuffled)
    assert with_shuffled.block > without.block
    block = oof >= with_shuffled.block
    assert y[block & shuffled].mean() >= 0.99


# ---------------------------------------------------------------- copies with sellers shuffled


def test_copies_shuffle_kept_sellers_among_themselves() -> None:
    n = 4000
    frame = pl.DataFrame(
        {
            "listing_id": [f"l{i}" for i in range(n)],
            "title": ["x"] * n,
            "seller_id": [f"s{i % 97}" for i in range(n)],
            "image": ["p.jpg"] * n,
        }
    )
    both = with_inputs_dropped(frame, ["seller_id", "image"], seed=0)
    assert both.head(n).equals(frame)
    copies = both.slice(n)
    assert copies.get_column("listing_id").str.ends_with(COPY_SUFFIX).all()
    mask = shuffled_sellers(both)
    assert not mask[:n].any()
    share = mask[n:].mean()
    assert 0.22 < share < 0.28, share  # kept (1/2) x shuffled (1/2)
    moved = copies.filter(pl.Series(mask[n:]))
    original = frame.filter(pl.Series(mask[n:]))
    ids = moved.get_column("seller_id").str.strip_suffix(SHUFFLED_SELLER_SUFFIX)
    # a permutation among the shuffled copies: the same accounts, other listings
    assert Counter(ids.to_list()) == Counter(original.get_column("seller_id").to_list())
    assert (ids != original.get_column("seller_id")).to_numpy().mean() > 0.9
    kept = copies.filter(~pl.Series(mask[n:]) & pl.col("seller_id").is_not_null())
    assert (
        kept.get_column("seller_id")
        == frame.filter(
            ~pl.Series(mask[n:]) & copies.get_column("seller_id").is_not_null()
        ).get_column("seller_id")
    ).all()


def test_training_set_marks_shuffled_copies(seed_registry: Registry) -> None:
    frame = generate_marketplace(seed_registry, 400, seed=33)
    data = training_set(frame, ScoringPlan.build(seed_registry), seed=0)
    assert data.shuffled.sum() > 50
    assert not (data.shuffled & ~data.augmented).any()
    assert data.inputs["rows_with_sellers_shuffled"] == int(data.shuffled.sum())
    sellers = data.frame.filter(pl.Series(data.shuffled)).get_column("seller_id")
    assert sellers.str.ends_with(SHUFFLED_SELLER_SUFFIX).all()
    # shuffled accounts mix counterfeit and genuine listings: their shares are not the label
    shuffled = data.frame.filter(pl.Series(data.shuffled))
    mixed = shuffled.group_by("seller_id").agg(pl.col("label").n_unique() > 1)
    assert mixed.get_column("label").any()


# ---------------------------------------------------------------- condition parts


@pytest.mark.parametrize("condition", ["parts", "used", "refurbished"])
def test_condition_parts_is_a_legitimate_context(condition: str) -> None:
    row = {"condition": condition, "text_accessory": False, "text_legit": 0}
    frame = pl.DataFrame([row])
    expr = frame.select(legitimate_context_expr(set(frame.columns))).item()
    assert expr == legitimate_context(row) == f"condition {condition}"
    assert legitimate_context({"condition": "new"}) is None


def test_shuffled_copies_never_disable_blocking() -> None:
    """Where no threshold reaches the target on the few shuffled copies, the threshold of
    the listings and their copies stands (the two-filter rule still holds there)."""
    rng = np.random.default_rng(2)
    y = (rng.random(2000) < 0.3).astype(np.int64)
    oof = np.where(y == 1, rng.uniform(0.5, 1.0, 2000), rng.uniform(0.0, 0.2, 2000))
    shuffled = np.zeros(2000, dtype=bool)
    shuffled[1000:1040] = True
    oof[1000:1040] = np.where(y[1000:1040] == 1, 0.6, 0.99)  # genuine above every fake
    copies = np.arange(2000) >= 1000
    without, _ = choose_thresholds(y, oof, copies)
    with_few, block = choose_thresholds(y, oof, copies, shuffled)
    assert block <= 1.0 and with_few == without
