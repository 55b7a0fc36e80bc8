"""The forms text takes before matching, as polars expressions and small helpers: the folded
title, the native-script text, the phrase text, capped descriptions, a name's plural and glued
readings, and the names that are ordinary words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import polars as pl

from filters.core.normalise import (
    NATIVE_JOIN,
    PHRASE_KEEP,
    SCRIPT_FOLD,
    STRIPPED_MARKS,
    ZERO_WIDTH_CLASS,
    is_cjk,
)
from filters.core.registry import brand_key
from filters.text.policy import AMBIGUOUS_ZIPF, MIN_NAME_WORD

if TYPE_CHECKING:
    from filters.core.registry import Registry
#: combining marks except U+034F, a combining mark used as a hidden separator ("gu\u034fcci")
MARKS_BUT_HIDDEN = "[^\\P{Mn}\u034f]"


def folded(expr: pl.Expr) -> pl.Expr:
    """NFKC (fullwidth -> ASCII), zero-width characters removed, lower case, accents stripped
    (not the marks that are letters: :data:`KEPT_MARKS`), Arabic letter variants folded."""
    return (
        expr.str.normalize("NFKC")
        .str.replace_all(ZERO_WIDTH_CLASS, "")
        .str.to_lowercase()
        .str.normalize("NFKD")
        .str.replace_all(STRIPPED_MARKS, "")
        .str.normalize("NFC")
        .str.replace_many(list(SCRIPT_FOLD), list(SCRIPT_FOLD.values()))
    )


def native_text(norm: pl.Expr) -> pl.Expr:
    """Normalised titles with the separators between two characters of the scripts matched by
    substring dropped (:data:`NATIVE_JOIN`): native names are searched for in this."""
    joined = norm.str.replace_all(NATIVE_JOIN, "${1}${2}").str.replace_all(NATIVE_JOIN, "${1}${2}")
    return joined.str.replace_all(" {2,}", " ")


def phrase_text(expr: pl.Expr) -> pl.Expr:
    """Folded text as space-separated words with a space at each end: searching for
    ``" ua "`` in it respects word boundaries."""
    return _padded_words(folded(expr))


#: the runs :data:`PHRASE_KEEP` matches, except a lone space: it would be replaced by a space,
#: and most words of a text are set apart by one (the replacement costs 40% less)
_PHRASE_BREAK = PHRASE_KEEP.replace("]+", "]{2,}") + "|" + PHRASE_KEEP.replace("']+", "' ]")


def _padded_words(folded_text: pl.Expr) -> pl.Expr:
    """:func:`phrase_text` of text already folded."""
    spaced = folded_text.str.replace_all(_PHRASE_BREAK, " ").str.strip_chars()
    return pl.concat_str(pl.lit(" "), spaced, pl.lit(" "))


def capped(desc: pl.Expr, limit: int) -> pl.Expr:
    """The first ``limit`` characters of a description: a word cut there is not read (a letter
    is glued to it, so that no name or phrase ends at the cut)."""
    return (
        pl.when(desc.str.len_chars() > limit)
        .then(pl.concat_str(desc.str.slice(0, limit), pl.lit("x")))
        .otherwise(desc)
    )


def _phrase_form_each(phrases: Sequence[str]) -> list[str]:
    """Each lexicon phrase in the same form as listing text ("" if nothing is left); CJK
    phrases unpadded (no spaces there). One query for all: a query per phrase was half the
    filter's start-up."""
    if not phrases:
        return []
    frame = pl.Series("p", list(phrases), dtype=pl.String).to_frame()
    forms = frame.select(phrase_text(pl.col("p")).alias("p"))["p"].to_list()
    # listing text gets two spaces between words (see _phrase_counts), so patterns do too
    return [
        "" if not f.strip() else f.strip() if is_cjk(f) else " " + "  ".join(f.split()) + " "
        for f in forms
    ]


def _single_spaced(forms: Sequence[str]) -> list[str]:
    """Phrase forms as they show in the single-spaced phrase text (listing text doubles its
    spaces to find adjacent phrases): a cheap test for titles that may hold one."""
    return sorted({f if is_cjk(f) else " " + " ".join(f.split()) + " " for f in forms})


def _phrase_forms(phrases: Sequence[str]) -> list[str]:
    """The distinct non-empty forms of lexicon phrases, in order (see :func:`_phrase_form_each`)."""
    return list(dict.fromkeys(f for f in _phrase_form_each(phrases) if f))


def _partials(key: str, ksig: str | None) -> set[str]:
    """A multi-word key without its first or last word ("mobil" of "Mobil 1"): a name cut
    short, not a misspelling."""
    lengths = [int(x) for x in (ksig or "").split(",") if x]
    if len(lengths) < 2:
        return set()
    return {key[: len(key) - lengths[-1]], key[lengths[0] :]}


#: from this many patterns on, a regex alternation finds texts holding one faster than
#: ``contains_any`` (225 phrases over 59,537 texts: 7.1 against 11.5 ms; 72: 4.4 against 3.6)
REGEX_PROBE_MIN = 120


def holding_any(frame: pl.DataFrame, source: str, patterns: Sequence[str]) -> pl.Series:
    """Whether each text of ``frame[source]`` holds one of ``patterns`` (literal substrings),
    as ``str.contains_any`` gives it; many patterns are searched as one regex alternation,
    unless the regex engine refuses one that large."""
    if len(patterns) >= REGEX_PROBE_MIN:
        alternation = "|".join(pl.escape_regex(p) for p in patterns)
        try:
            return frame.select(pl.col(source).str.contains(alternation)).to_series()
        except pl.exceptions.ComputeError:
            # the automaton below takes any number of patterns
            return frame.select(pl.col(source).str.contains_any(list(patterns))).to_series()
    return frame.select(pl.col(source).str.contains_any(list(patterns))).to_series()


def _words(expr: pl.Expr) -> pl.Expr:
    """A phrase hit as plain words (the padding spaces of phrase text dropped)."""
    return expr.str.replace_all(" +", " ").str.strip_chars(" ")


def plural_key(key: str) -> str | None:
    """The plural of a brand key as titles write it ("timberland" -> "timberlands", "rolex"
    -> "rolexes"), or None for keys too short or already ending in "s"."""
    if len(key) < 3 or key.endswith("s") or not key.isascii():
        return None
    return key + ("es" if key.endswith(("x", "z", "ch", "sh")) else "s")


def glued_core(form: str) -> str | None:
    """The letters of a form that has digits glued to either end ("burberry5" -> "burberry",
    "2gucci" -> "gucci"), else None."""
    core = form.strip("0123456789")
    return core if core != form and core.isascii() and core.isalpha() else None


def name_words(surface: str) -> list[str]:
    """The words of a brand name as the word list spells them ("Tod's" -> ["tod"]): letters
    only, folded, two letters or more; digits and single letters do not count."""
    words = (brand_key(w) for w in re.split(r"[\W_]+", surface))
    return [w for w in words if len(w) >= MIN_NAME_WORD and w.isalpha()]


def ambiguous_surfaces(
    surfaces: Sequence[str], words: pl.DataFrame, min_zipf: float = AMBIGUOUS_ZIPF
) -> set[str]:
    """The names (of ``surfaces``) made only of common words: each word at least ``min_zipf``
    common in ``words`` (``word``, ``zipf``: the lexicon's word table). "Guess", "Shell" and
    "The North Face" are; "Gucci" (1-2 per million words, as a name) is not.

    >>> table = pl.DataFrame({"word": ["shell", "gucci"], "zipf": [4.4, 3.3]})
    >>> sorted(ambiguous_surfaces(["Shell", "Gucci", "D&G"], table))
    ['Shell']
    """
    split = {s: name_words(s) for s in surfaces}
    wanted = sorted({w for ws in split.values() for w in ws})
    common = set(
        words.filter(pl.col("word").is_in(wanted) & (pl.col("zipf") >= min_zipf))
        .get_column("word")
        .to_list()
    )
    return {s for s, ws in split.items() if ws and all(w in common for w in ws)}


def ambiguous_keys(registry: Registry, min_zipf: float = AMBIGUOUS_ZIPF) -> set[str]:
    """The keys of a registry's names and aliases made only of common words (see
    :func:`ambiguous_surfaces`): "shell", "thenorthface"."""
    surfaces = [
        *registry.brand_names,
        *(a for al in registry.brands.get_column("aliases").to_list() for a in al),
    ]
    return {brand_key(s) for s in ambiguous_surfaces(surfaces, registry.lexicon.words, min_zipf)}
