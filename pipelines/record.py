"""The scoring chain for one listing, without a query engine (the crawler's fast path).

:func:`score_record` runs validation -> filters -> matched brand -> fusion -> decision ->
reasons on one Python mapping, with each stage's ``*_record`` twin of the batch stage. It gives
the same output row as :func:`pipelines.stages.score_frame` on a one-row frame (tested
differentially in ``tests/test_record_path.py``). A plan whose filters or fusion lack a record
twin is scored through ``score_frame`` instead (see :func:`supports_records`).

:func:`coerce_record` turns the caller's Python values into the contract's types; the API uses
it for frames too, so both paths read a listing the same way.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, cast

import polars as pl

from filters.core.textops import pl_round, pl_str
from pipelines.conditions import canonical_condition
from pipelines.config import Settings
from pipelines.prices import parse_price
from pipelines.schema import INPUT_SCHEMA, PARSE_ERROR, VALIDATION_NOTE, input_renames
from pipelines.stages import FILTER_ORDER, MAX_REASONS, OUTPUT_SCHEMA, ScoringPlan
from pipelines.statistics import RunStatistics
from pipelines.validation import PRICE_RAW, PRICE_SIGN, record_errors, record_fields

#: fields read as text (``image`` may also be bytes)
TEXT_FIELDS = tuple(c for c, t in INPUT_SCHEMA.items() if t == pl.String() and c != "image")


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real | Decimal) and not isinstance(value, bool)


def _as_float(value: Any) -> float:
    """A number as a float; an integer too large for one is +-inf, as the file readers read it."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _as_text(value: Any) -> str:
    try:
        return str(value)
    except ValueError:
        # Python refuses to print integers of more than 4,300 digits
        return f"{_as_float(value):g}"


def coerce_record(listing: Mapping[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """The listing with contract fields in their Python types, plus ``price_raw``,
    ``__price_sign`` and a ``__parse_error`` naming every field whose value has the wrong type.

    Fields are named as :func:`pipelines.schema.input_renames` names a file's columns. Text
    fields take strings, and numbers as their decimal text; ``price`` takes numbers and prices
    written as text (:func:`pipelines.prices.parse_price`); ``label`` takes integers (and
    integral floats); ``image`` takes a path string or bytes. Anything else is a parse error,
    and the field counts as missing.
    """
    settings = settings or Settings()
    out = dict(listing)
    renames = input_renames(
        [k for k in out if isinstance(k, str)], settings.columns, source="listing"
    )
    for old, new in renames.items():
        out[new] = out.pop(old)
    problems: list[str] = []
    for name in TEXT_FIELDS:
        if name not in out:
            continue
        value = out[name]
        if value is None or isinstance(value, str):
            continue
        if _is_number(value):
            out[name] = _as_text(value)
        else:
            problems.append(f"{name}: expected text, got {type(value).__name__}")
            out[name] = None
    raw = out.get("price")
    price: float | None = None
    sign: str | None = None
    if raw is None:
        price_raw = None
    elif isinstance(raw, str):
        price_raw = raw
        currency = out.get("currency")
        price, sign = parse_price(
            raw, settings.price_locale, currency if isinstance(currency, str) else None
        )
    elif _is_number(raw):
        price = _as_float(raw)
        price_raw = pl_str(price)
    else:
        price_raw = f"({type(raw).__name__})"
        problems.append(f"price: expected a number, got {type(raw).__name__}")
    out["price"] = price
    out[PRICE_RAW] = price_raw
    out[PRICE_SIGN] = sign
    if "label" in out and out["label"] is not None:
        label = out["label"]
        if _is_number(label) and _as_float(label).is_integer():
            out["label"] = int(label)
        else:
            problems.append(f"label: expected an integer, got {label!r}")
            out["label"] = None
    image = out.get("image")
    if isinstance(image, bytearray | memoryview):
        out["image"] = bytes(image)
    elif image is not None and not isinstance(image, str | bytes):
        problems.append(f"image: expected a path or bytes, got {type(image).__name__}")
        out["image"] = None
    out[PARSE_ERROR] = "; ".join(problems) or None
    return out


# ---------------------------------------------------------------- validation


def validated_record(rec: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """:func:`pipelines.schema.validated_listings` for one (coerced) listing: adds ``status``
    and ``error``, sets ``currency`` and ``condition``, and the note of an unknown condition."""
    fields = record_fields(rec, settings)
    condition, note = canonical_condition(
        rec.get("condition"), settings.conditions, settings.condition_synonyms
    )
    errors = record_errors(fields)
    out = dict(rec)
    out["error"] = "; ".join(errors) or None
    out["status"] = "ok" if not errors else "quarantined"
    out["currency"] = fields["effective"] or "USD"
    out["condition"] = condition
    out[VALIDATION_NOTE] = note
    return out


# ---------------------------------------------------------------- chain


def supports_records(plan: ScoringPlan) -> bool:
    """Whether every filter and the fusion of ``plan`` has a one-listing twin."""
    return all(f.has_record_path() for f in plan.filters) and hasattr(plan.fusion, "risk_record")


def _explained(row: dict[str, Any]) -> list[str]:
    """:func:`pipelines.stages.explained`: reasons of the strongest filter first."""
    parts = []
    for name in FILTER_ORDER:
        if f"{name}_reasons" in row:
            score = row.get(f"{name}_score")
            parts.append((-1.0 if score is None else score, list(row[f"{name}_reasons"] or [])))
    parts.sort(reverse=True)
    merged = list(row.get("fusion_reasons") or [])
    merged += [r for _, reasons in parts for r in reasons if r is not None]
    if row["decision"] != "allow" and not merged:
        merged = [f"risk {pl_str(pl_round(row['risk'], 2))} from several weak signals"]
    note = row.get(VALIDATION_NOTE)
    if note is not None:
        return [*merged[: MAX_REASONS - 1], note]
    return merged[:MAX_REASONS]


def score_record(
    listing: Mapping[str, Any], plan: ScoringPlan, statistics: RunStatistics | None = None
) -> dict[str, Any]:
    """One output row (the contract's output columns and ``listing_id``) for one listing.

    ``listing`` is a mapping of input fields; :func:`coerce_record` is applied first.
    ``statistics``: the run statistics to score with (None: statistics of no listing, see
    :mod:`pipelines.statistics`).
    """
    rec = validated_record(coerce_record(listing, plan.settings), plan.settings)
    out: dict[str, Any] = {"listing_id": rec.get("listing_id")}
    if rec["status"] != "ok":
        out.update(dict.fromkeys(OUTPUT_SCHEMA))
        out.update(
            status=rec["status"], error=rec["error"], reasons=None, price_raw=rec.get(PRICE_RAW)
        )
        return out
    row = dict(rec)
    for f in plan.filters:
        if f.aggregate() is None:
            row.update(f.score_record(row))
        else:
            lookup = None if statistics is None else statistics.record_lookup(f)
            row.update(cast(Any, f).score_record(row, lookup))
    row["matched_brand"] = next(
        (row[c] for c in ("text_brand", "price_brand", "image_brand") if row.get(c) is not None),
        None,
    )
    risk = plan.fusion.risk_record(row)  # type: ignore[attr-defined]
    row["risk"] = risk
    t = plan.thresholds
    floor = getattr(plan.fusion, "evidence_floor_record", None)
    if floor is not None:
        risk, row["fusion_reasons"] = floor(row, t)
        row["risk"] = risk
    row["decision"] = "block" if risk >= t.block else "review" if risk >= t.review else "allow"
    row["reasons"] = _explained(row)
    for name in OUTPUT_SCHEMA:
        out[name] = row.get(name)
    out["status"], out["error"] = "ok", None
    return out
