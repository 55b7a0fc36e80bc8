"""Model features: a fixed, ordered set of Float64 columns derived from the filters' evidence.

:func:`feature_frame` is pure polars (no row loops) and tolerates missing evidence columns: a
feature whose source column is absent is null for every row, and a null source value stays null
(the model handles missing values itself, so zero-filling would only hide "unknown"). The one
exception is indicators derived from a column that *is* present: a null ``text_match`` means
"no brand matched", so both match-kind indicators are 0 rather than unknown.

``zero_shot_risk`` is the zero-shot fusion's risk (:mod:`models.zeroshot`): the learned model
gets the documented combination of the filter scores as one more (monotone) feature, so that a
strong single-filter signal is evidence it has seen in every training row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import polars as pl

from filters.core.defaults import PARTS
from filters.core.textops import strip_chars
from models.zeroshot import ZeroShotFusion

#: match kinds where the brand is written as itself (or an official alias / native script)
PLAIN_KINDS: tuple[str, ...] = ("exact", "alias", "native")
#: match kinds where the brand was disguised to slip past keyword filters
OBFUSCATED_KINDS: tuple[str, ...] = (
    "typo",
    "leet",
    "masked",
    "spaced",
    "confusable",
    "fullwidth",
    "zero_width",
)

FEATURES: tuple[str, ...] = (
    "text_score",
    "price_score",
    "image_score",
    "text_is_obfuscated",
    "text_is_plain_mention",
    "text_edits",
    "text_strong_phrases",
    "text_weak_phrases",
    "text_legit",
    "text_accessory",
    "text_brand_mismatch",
    "price_log_ratio",
    "price_robust_z",
    "condition_used",
    "condition_refurbished",
    "image_official_distance",
    "image_fake_distance",
    "image_present",
    "seller_share_high_text",
    "seller_luxury_low_price",
    "zero_shot_risk",
)

#: the optional input columns and the evidence each one feeds; a model is trained with each of
#: them dropped at random (see :func:`pipelines.learn.with_inputs_dropped`)
OPTIONAL_INPUTS: dict[str, str] = {
    "seller_id": "the seller's shares of suspicious listings",
    "image": "photo matches",
    "category": "category agreement and the category's reference price",
    "description": "phrases in the description",
    "condition": "used and refurbished reference prices",
    "brand": "declared-brand mismatches",
}

_ZERO_SHOT = ZeroShotFusion()
_NULL = pl.lit(None, dtype=pl.Float64)


def _num(cols: set[str], name: str) -> pl.Expr:
    """A present column as Float64 (booleans become 0/1), else all-null."""
    return pl.col(name).cast(pl.Float64) if name in cols else _NULL


def feature_exprs(cols: set[str]) -> dict[str, pl.Expr]:
    """One Float64 expression per feature, for a frame with columns ``cols``."""
    match = pl.col("text_match").cast(pl.String).str.to_lowercase()
    if "text_match" in cols:
        is_obfuscated = match.is_in(OBFUSCATED_KINDS).fill_null(False).cast(pl.Float64)
        is_plain = match.is_in(PLAIN_KINDS).fill_null(False).cast(pl.Float64)
    else:
        is_obfuscated = is_plain = _NULL

    if "price_ratio" in cols:
        ratio = pl.col("price_ratio").cast(pl.Float64)
        # a ratio <= 0 has no logarithm; it means a broken price, not a cheap one
        log_ratio = pl.when(ratio > 0).then(ratio.log()).otherwise(_NULL)
    else:
        log_ratio = _NULL

    condition = pl.col("condition").cast(pl.String).str.strip_chars().str.to_lowercase()
    if "condition" in cols:
        # the schema defaults a blank condition to "new", so null means "not used/refurbished"
        used = (condition == "used").fill_null(False).cast(pl.Float64)
        refurbished = (condition == "refurbished").fill_null(False).cast(pl.Float64)
    else:
        used = refurbished = _NULL

    exprs: dict[str, pl.Expr] = {
        "text_score": _num(cols, "text_score"),
        "price_score": _num(cols, "price_score"),
        "image_score": _num(cols, "image_score"),
        "text_is_obfuscated": is_obfuscated,
        "text_is_plain_mention": is_plain,
        "text_edits": _num(cols, "text_edits"),
        "text_strong_phrases": _num(cols, "text_strong_phrases"),
        "text_weak_phrases": _num(cols, "text_weak_phrases"),
        "text_legit": _num(cols, "text_legit"),
        "text_accessory": _num(cols, "text_accessory"),
        "text_brand_mismatch": _num(cols, "text_brand_mismatch"),
        "price_log_ratio": log_ratio,
        "price_robust_z": _num(cols, "price_robust_z"),
        "condition_used": used,
        "condition_refurbished": refurbished,
        "image_official_distance": _num(cols, "image_official_distance"),
        "image_fake_distance": _num(cols, "image_fake_distance"),
        "image_present": _num(cols, "image_present"),
        # run-level statistics of the seller filter (filters/seller.py)
        "seller_share_high_text": _num(cols, "seller_share_high_text"),
        "seller_luxury_low_price": _num(cols, "seller_luxury_low_price"),
        "zero_shot_risk": _ZERO_SHOT.risk_expr(cols),
    }
    assert tuple(exprs) == FEATURES  # keeps the list and the expressions in step
    return {name: e.cast(pl.Float64).alias(name) for name, e in exprs.items()}


def _value(row: Mapping[str, Any], name: str) -> float | None:
    value = row.get(name)
    return None if value is None else float(value)


def feature_values(row: Mapping[str, Any]) -> list[float | None]:
    """:data:`FEATURES` of one scored listing (a mapping with the filters' columns, as
    ``feature_frame`` computes them for a one-row frame); None = missing."""
    match = row.get("text_match")
    kind = None if match is None else str(match).lower()
    present = "text_match" in row
    ratio = _value(row, "price_ratio")
    condition = row.get("condition")
    cond = None if condition is None else strip_chars(str(condition)).lower()
    has = set(row)
    values: dict[str, float | None] = {
        "text_score": _value(row, "text_score"),
        "price_score": _value(row, "price_score"),
        "image_score": _value(row, "image_score"),
        "text_is_obfuscated": (float(kind in OBFUSCATED_KINDS) if present else None),
        "text_is_plain_mention": (float(kind in PLAIN_KINDS) if present else None),
        "text_edits": _value(row, "text_edits"),
        "text_strong_phrases": _value(row, "text_strong_phrases"),
        "text_weak_phrases": _value(row, "text_weak_phrases"),
        "text_legit": _value(row, "text_legit"),
        "text_accessory": _value(row, "text_accessory"),
        "text_brand_mismatch": _value(row, "text_brand_mismatch"),
        "price_log_ratio": (math.log(ratio) if ratio is not None and ratio > 0 else None),
        "price_robust_z": _value(row, "price_robust_z"),
        "condition_used": (float(cond == "used") if "condition" in has else None),
        "condition_refurbished": (float(cond == "refurbished") if "condition" in has else None),
        "image_official_distance": _value(row, "image_official_distance"),
        "image_fake_distance": _value(row, "image_fake_distance"),
        "image_present": _value(row, "image_present"),
        "seller_share_high_text": _value(row, "seller_share_high_text"),
        "seller_luxury_low_price": _value(row, "seller_luxury_low_price"),
        "zero_shot_risk": _ZERO_SHOT.risk_record(row),
    }
    return [values[name] for name in FEATURES]


def feature_frame(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Exactly the :data:`FEATURES` columns (Float64, in order), one row per input row.

    Examples
    --------
    >>> lf = pl.LazyFrame({"text_score": [0.9, None], "text_match": ["leet", None]})
    >>> df = feature_frame(lf).collect()
    >>> df.columns == list(FEATURES)
    True
    >>> df.get_column("text_is_obfuscated").to_list(), df.get_column("price_score").to_list()
    ([1.0, 0.0], [None, None])
    """
    cols = set(lf.collect_schema().names())
    return lf.select(list(feature_exprs(cols).values()))


# ---------------------------------------------------------------- legitimate context

#: the listing's own condition values that explain a low price
SECOND_HAND: tuple[str, ...] = ("used", "refurbished")
#: the listing's own condition values that state a legitimate context: second hand, or sold
#: for parts / not working (never compared with the brand's price either)
LEGITIMATE_CONDITIONS: tuple[str, ...] = (*SECOND_HAND, PARTS)


def legitimate_context_expr(cols: set[str]) -> pl.Expr:
    """What legitimate context a scored listing states, as text (null = none): an accessory,
    part or packaging; a second-hand claim in the title or the ``condition`` column; or a
    legitimate-context phrase of the lexicon ("compatible with", "for parts"); the ``condition``
    column saying ``parts`` counts as well."""
    parts: list[pl.Expr] = []
    if "text_accessory" in cols:
        accessory = pl.col("text_accessory").fill_null(False)
        parts.append(pl.when(accessory).then(pl.lit("accessory, part or packaging")))
    if "text_condition" in cols:
        claim = pl.col("text_condition").cast(pl.String)
        parts.append(pl.when(claim.is_not_null()).then(pl.format("title says {}", claim)))
    if "condition" in cols:
        cond = pl.col("condition").cast(pl.String).str.strip_chars().str.to_lowercase()
        stated = cond.is_in(LEGITIMATE_CONDITIONS)
        parts.append(pl.when(stated).then(pl.format("condition {}", cond)))
    if "text_legit" in cols:
        legit = pl.col("text_legit").fill_null(0) > 0
        parts.append(pl.when(legit).then(pl.lit("legitimate-context phrase in the title")))
    if not parts:
        return pl.lit(None, dtype=pl.String)
    return pl.coalesce(parts)


def legitimate_context(row: Mapping[str, Any]) -> str | None:
    """:func:`legitimate_context_expr` of one scored listing."""
    if row.get("text_accessory"):
        return "accessory, part or packaging"
    claim = row.get("text_condition")
    if claim is not None:
        return f"title says {claim}"
    condition = row.get("condition")
    cond = None if condition is None else strip_chars(str(condition)).lower()
    if cond in LEGITIMATE_CONDITIONS:
        return f"condition {cond}"
    if (row.get("text_legit") or 0) > 0:
        return "legitimate-context phrase in the title"
    return None
