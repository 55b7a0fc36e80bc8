"""The category taxonomy, defined in :mod:`filters.core.taxonomy` (the price filter reads it)."""

from __future__ import annotations

from filters.core.taxonomy import (
    ABSENT,
    APOSTROPHES,
    CATEGORIES_COLUMNS,
    MAX_CATEGORY_CHARS,
    NON_WORD,
    PART_SEPARATORS,
    PATH_SEPARATORS,
    UNMATCHED,
    WHITESPACE,
    NodeRow,
    Resolution,
    Taxonomy,
    category_words,
    category_words_expr,
    category_words_series,
    default_category_rows,
    read_category_rows,
    title_words,
)

__all__ = [
    "ABSENT",
    "APOSTROPHES",
    "CATEGORIES_COLUMNS",
    "MAX_CATEGORY_CHARS",
    "NON_WORD",
    "PART_SEPARATORS",
    "PATH_SEPARATORS",
    "UNMATCHED",
    "WHITESPACE",
    "NodeRow",
    "Resolution",
    "Taxonomy",
    "category_words",
    "category_words_expr",
    "category_words_series",
    "default_category_rows",
    "read_category_rows",
    "title_words",
]
