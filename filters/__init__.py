"""Filter families. ``REGISTRY`` maps each filter's name to its class; the common checks in
``tests/test_filter_contract.py`` run over every entry."""

from __future__ import annotations

from filters.base import Filter

REGISTRY: dict[str, type[Filter]] = {}

__all__ = ["REGISTRY", "Filter"]
