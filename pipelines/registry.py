"""The brand registry, defined in :mod:`filters.core.registry` (the filters are fitted on it)."""

from __future__ import annotations

from filters.core.registry import (
    BRANDS_COLUMNS,
    CATEGORY_SEPARATORS,
    IMAGES_COLUMNS,
    LEXICON_KINDS,
    LEXICON_SECTIONS,
    NAMES_COLUMNS,
    NAMES_SCHEMA,
    RE_SHARE,
    WORDS_FILE,
    WORDS_SCHEMA,
    Lexicon,
    Registry,
    brand_key,
    category_key,
    default_registry_dir,
    fold_word,
    load_registry,
)

__all__ = [
    "BRANDS_COLUMNS",
    "CATEGORY_SEPARATORS",
    "IMAGES_COLUMNS",
    "LEXICON_KINDS",
    "LEXICON_SECTIONS",
    "NAMES_COLUMNS",
    "NAMES_SCHEMA",
    "RE_SHARE",
    "WORDS_FILE",
    "WORDS_SCHEMA",
    "Lexicon",
    "Registry",
    "brand_key",
    "category_key",
    "default_registry_dir",
    "fold_word",
    "load_registry",
]
