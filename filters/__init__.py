"""Filter families. ``REGISTRY`` maps each filter's name to its class; the common checks in
``tests/test_filter_contract.py`` run over every entry."""

from __future__ import annotations

from filters.base import Filter
from filters.image import ImageFilter
from filters.price import PriceFilter
from filters.seller import SellerFilter
from filters.text import TextFilter, TextRecordScorer

REGISTRY: dict[str, type[Filter]] = {
    TextFilter.name: TextFilter,
    ImageFilter.name: ImageFilter,
    PriceFilter.name: PriceFilter,
    SellerFilter.name: SellerFilter,
}

__all__ = [
    "REGISTRY",
    "Filter",
    "ImageFilter",
    "PriceFilter",
    "SellerFilter",
    "TextFilter",
    "TextRecordScorer",
]
