"""Conditions as marketplaces name them: ``New with tags``, ``Pre-owned``, ``Used - Like New``,
``Open box``, ``For parts or not working`` are read as ``new``, ``used``, ``refurbished`` or
``parts`` through a synonym table (:data:`pipelines.config.DEFAULT_CONDITION_SYNONYMS`, extended
by a configuration's ``[condition_synonyms]``).

A condition that is neither a known condition nor a synonym is priced as ``new`` (the full
reference price: the strictest reading) and the listing gets a reason saying so; it is never
quarantined for it. The batch path applies :func:`canonical_condition` to each distinct value
of a batch, the one-listing path to its one value.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

import polars as pl

from filters.core.textops import strip_chars

_SEPARATORS = re.compile(r"[\W_]+")


def condition_key(text: str) -> str:
    """A condition as the synonym table is keyed: NFKC, lower case, every run of characters
    other than letters and digits one space.

    Examples
    --------
    >>> condition_key("Used - Like New"), condition_key("PRE-OWNED"), condition_key("New (other)")
    ('used like new', 'pre owned', 'new other')
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _SEPARATORS.sub(" ", folded).strip()


def unknown_condition_note(text: str) -> str:
    return f'condition "{strip_chars(text)}" is not a known condition: priced as new'


def canonical_condition(
    text: str | None, known: tuple[str, ...], synonyms: Mapping[str, str]
) -> tuple[str, str | None]:
    """``(condition, note)``: the condition ``text`` is priced as, and a reason if it was not
    recognised. A missing or blank condition is ``new`` without a note.

    Examples
    --------
    >>> from pipelines.config import Settings
    >>> s = Settings()
    >>> canonical_condition("New with tags", s.conditions, s.condition_synonyms)
    ('new', None)
    >>> canonical_condition("Pre-owned", s.conditions, s.condition_synonyms)
    ('used', None)
    >>> canonical_condition("mint-ish", s.conditions, s.condition_synonyms)[1]
    'condition "mint-ish" is not a known condition: priced as new'
    """
    if text is None or not strip_chars(text):
        return "new", None
    key = condition_key(text)
    if key in known:
        return key, None
    found = synonyms.get(key)
    if found is not None:
        return found, None
    return "new", unknown_condition_note(text)


def canonical_conditions(
    values: pl.Series, known: tuple[str, ...], synonyms: Mapping[str, str]
) -> tuple[pl.Series, pl.Series]:
    """:func:`canonical_condition` of a column, computed once per distinct value:
    ``(condition, note)``."""
    distinct = values.drop_nulls().unique()
    mapped = [canonical_condition(v, known, synonyms) for v in distinct.to_list()]
    conditions = values.replace_strict(
        distinct, [c for c, _ in mapped], default="new", return_dtype=pl.String
    )
    notes = values.replace_strict(
        distinct, [n for _, n in mapped], default=None, return_dtype=pl.String
    )
    return conditions.alias("condition"), notes.alias("note")
