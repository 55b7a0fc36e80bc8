"""Model features: a fixed, ordered set of Float64 columns derived from the filters' evidence.

:func:`feature_frame` is pure polars (no row loops) and tolerates missing evidence columns: a
feature whose source column is absent is null for every row, and a null source value stays null
(the model handles missing values itself, so zero-filling would only hide "unknown"). The one
exception is indicators derived from a column that *is* present: a null ``text_match`` means
"no brand matched", so both match-kind indicators are 0 rather than unknown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import polars as pl

from filters.textops import strip_chars

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
)

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
