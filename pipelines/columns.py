"""The listing columns a run reads, and the columns every scored output adds to them."""

from __future__ import annotations

import polars as pl

#: the input columns and the dtype each is read as
INPUT_SCHEMA: dict[str, pl.DataType] = {
    "listing_id": pl.String(),
    "title": pl.String(),
    "price": pl.Float64(),
    "description": pl.String(),
    "category": pl.String(),
    "brand": pl.String(),
    "seller_id": pl.String(),
    "currency": pl.String(),
    "condition": pl.String(),
    "image": pl.String(),
    "label": pl.Int64(),
}

#: the columns every scored output adds to the input columns
OUTPUT_SCHEMA: dict[str, pl.DataType] = {
    "risk": pl.Float64(),
    "decision": pl.String(),
    "text_score": pl.Float64(),
    "price_score": pl.Float64(),
    "image_score": pl.Float64(),
    "matched_brand": pl.String(),
    "reasons": pl.List(pl.String()),
    "status": pl.String(),
    "error": pl.String(),
    "price_raw": pl.String(),
}
