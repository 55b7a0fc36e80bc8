"""Text filter: protected brand mentions (plain, obfuscated, native-script), counterfeit phrases
and the contexts that make a mention legitimate.

Work is done on *distinct* values. Listings repeating another's title, description, brand and
category are scored once, and a fitted filter remembers the listings it has scored
(:class:`filters.base.RowMemo`). Titles are normalised and split into tokens with polars. Every
distinct token (and adjacent-token pair/triple, for multi-word brands; runs are coded as integers
from their tokens' ids) is matched against the brand keys: exact by join; near misses with
``rapidfuzz.process.cdist`` over length buckets; look-alike letters by skeleton equality;
leetspeak and masked letters by their readings. The non-exact kinds are tried only on forms that
could read as a key, and each form is classified once per fitted filter (:class:`MatchMemo`).
The matches are joined back to the listings on integers. No Python code runs per listing.

Names in other scripts (``names.csv`` and aliases): Chinese, Japanese, Korean and Thai names are
searched for as substrings of the title's native text (:func:`native_text`: separators between
two such characters dropped; the lexicon's ``[native_exceptions]`` taken out first); Cyrillic,
Greek, Arabic and Hebrew names are keys like Latin ones, found by exact lookup with the forms
running text gives them (:func:`filters.normalise.inflected_keys`), never by near misses.

Score (monotone in every piece of evidence)::

    s_brand    = 0.10 plain mention; 0.80 typo (0.75 at 2 edits); 0.85 leetspeak or masked;
                 0.80 spaced letters; 0.90 look-alike, fullwidth or zero-width characters;
                 0.05 a name written plainly in the description where the title names none
                 (a compared one, "works like Dyson", only with a counterfeit phrase);
                 x 0.2 when the brand is only the target of an accessory ("laces for Nike";
                 "Apple Watch band compatible 44mm": an accessory noun and a compatibility word)
                 or the title sells parts, packaging or a sample ("for parts", "box only")
    s_strong   = 0.95 counterfeit phrase with a brand, 0.15 without one ("replica ship model")
    s_weak     = 0.15 per suggestive phrase, at most 0.30 (0.05 / 0.10 without a brand)
    s_mismatch = 0.50 when the declared brand is another protected brand
    text_score = (1 - prod(1 - s)) x (0.7 if a legitimate context and no counterfeit phrase)

Edit budget per brand key length: <= 4 letters exact only, 5-7 one edit, >= 8 two edits (OSA:
a transposition is one edit); a typo keeps the first letter. Common words of the language are
never fuzzy-matched ("couch" is not "coach"), and brand words that are ordinary words (lexicon
``[ordinary]``: coach, shell, apple, omega...) count, when written plainly, only when
corroborated: the listing's category covers one of the brand's (read through the registry's
category taxonomy: "Sneakers" and "Men > Shoes > Trainers" are shoes), the declared brand
agrees, or a counterfeit phrase is present — and never inside an ordinary phrase
("sea shell", "omega 3").
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol, cast

import numpy as np
import polars as pl
from rapidfuzz import process
from rapidfuzz.distance import OSA

from filters.base import (
    Filter,
    RowMemo,
    check_is_fitted,
    compacted,
    declared_brands,
    distinct_rows,
    index_of,
    reason_list,
    spread,
    spread_columns,
)
from filters.core.registry import brand_key
from filters.normalise import (
    CJK_CLASS,
    LEET,
    MASK_CHARS,
    NATIVE_JOIN,
    PHRASE_KEEP,
    PROBE_FOLD,
    SCRIPT_FOLD,
    STRIPPED_MARKS,
    ZERO_WIDTH_CLASS,
    ascii_skeletons,
    capital_lookalikes,
    capital_readings,
    confusables,
    fold,
    inflected_keys,
    is_cjk,
    is_masked,
    leet_readings,
    nfkc_lost_lookalikes,
    probe_folded,
    probe_word,
    script_folded,
    skeleton,
    visual_reading,
)
from filters.textops import SPACED_NEXT_WORD, native_form, probe_pattern

if TYPE_CHECKING:
    from typing import Self

    from filters.core.registry import Registry

#: match kinds, most suspicious first (used to pick one mention per listing)
KIND_RANK = {
    "confusable": 0,
    "fullwidth": 1,
    "zero_width": 2,
    "masked": 3,
    "leet": 4,
    "spaced": 5,
    "typo": 6,
    "glued": 7,
    "native": 8,
    "alias": 9,
    "exact": 9,
    "description": 10,
    "compared": 11,
}
#: mentions written as the registry writes the name: ``form`` is its key (obfuscated ones are
#: priced as the brand's goods, whatever product line they name)
PLAIN_KINDS = ("exact", "alias", "native")
KIND_SCORE = {
    "exact": 0.10,
    "alias": 0.10,
    "native": 0.10,
    "typo": 0.80,
    "glued": 0.40,
    "leet": 0.85,
    "masked": 0.85,
    "spaced": 0.80,
    "confusable": 0.90,
    "fullwidth": 0.90,
    "zero_width": 0.90,
    # a name in the description only (the title names no brand): weaker than in the title
    "description": 0.05,
    "compared": 0.05,
}
#: mentions found in the description (a name written plainly there): "compared" ones are
#: comparisons or disclaimers ("works like Dyson", "Submariner homage") and count only with a
#: counterfeit phrase
DESCRIPTION_KINDS = ("description", "compared")
#: how much of a description is read: its first characters (a word cut there is not read)
DESCRIPTION_CHARS = 600
#: words that may stand between a comparison word and the name ("fits all Nike shoes")
COMPARISON_FILLERS = (
    "the", "a", "an", "your", "all", "any", "most", "other", "original", "genuine", "real",
)  # fmt: skip
#: how far before a name in a description a comparison word is looked for (characters)
CONTEXT_CHARS = 48
KIND_NOTE = {
    "typo": "{edits} edit{plural}",
    "glued": "glued to digits or a word",
    "leet": "leetspeak",
    "masked": "masked letters",
    "spaced": "spaced letters",
    "confusable": "look-alike characters",
    "fullwidth": "fullwidth characters",
    "zero_width": "hidden zero-width characters",
}
TOKEN_SYMBOLS = list("$@€©®£|!*•●#")
TOKEN = "[\\p{L}\\p{N}" + "".join(TOKEN_SYMBOLS) + "]+"
#: combining marks except U+034F, a combining mark used as a hidden separator ("gu\u034fcci")
MARKS_BUT_HIDDEN = "[^\\P{Mn}\u034f]"
MAX_NGRAM = 3
#: a run of tokens is coded in this many bits (an int64 without its sign)
CODE_BITS = 63


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


#: a name glued to a word: the name's and the word's fewest letters ("guccishop")
MIN_GLUE_KEY = 5
MIN_GLUE_WORD = 3


def glued_core(form: str) -> str | None:
    """The letters of a form that has digits glued to either end ("burberry5" -> "burberry",
    "2gucci" -> "gucci"), else None."""
    core = form.strip("0123456789")
    return core if core != form and core.isascii() and core.isalpha() else None


#: a name made only of words at least this common (Zipf frequency: 3.5 is about three times in
#: a million words) in one of the word list's languages is ambiguous
AMBIGUOUS_ZIPF = 3.5
#: the shortest run of letters of a name that counts as one of its words ("D&G" has none)
MIN_NAME_WORD = 2


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


FORM_MATCH_SCHEMA: dict[str, pl.DataType] = {
    "form": pl.String(),
    "n": pl.Int8(),
    "brand": pl.String(),
    "kind": pl.String(),
    "edits": pl.Int32(),
    "ambiguous": pl.Boolean(),
    "ksig": pl.String(),
}
SURFACE_MATCH_SCHEMA: dict[str, pl.DataType] = {
    "surface": pl.String(),
    **{k: v for k, v in FORM_MATCH_SCHEMA.items() if k not in ("form", "n")},
}


class PhraseHits(NamedTuple):
    """The phrases of a batch's titles: ``per_title`` (aligned with the titles: ``__tid``, the
    counterfeit, suggestive and legitimate phrase counts, the first counterfeit and suggestive
    phrase as the lexicon writes it, and the condition the title claims), ``native`` (a row
    per native brand name: ``__tid``, ``surface``), and where the title-level accessory and
    small-goods tests need to look."""

    per_title: pl.DataFrame
    native: pl.DataFrame
    #: titles that may say they sell an accessory, parts or packaging; or a small good
    accessory_at: pl.Series
    item_at: pl.Series


class MatchMemo:
    """Distinct values a fitted filter has classified (hits and misses), by table, so that
    each batch classifies only values no earlier batch had. Bounded: past ``max_rows`` a
    table starts over. Safe to share between threads: values are classified outside the lock
    (two batches at once may both classify a value; it is kept once). Not pickled (a copy
    starts empty)."""

    def __init__(self, max_rows: int = 2_000_000) -> None:
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._seen: dict[str, pl.DataFrame] = {}
        self._hits: dict[str, pl.DataFrame] = {}

    def lookup(
        self,
        table: str,
        distinct: pl.DataFrame,
        on: list[str],
        classify: Callable[[pl.DataFrame], pl.DataFrame],
        schema: Mapping[str, pl.DataType],
    ) -> pl.DataFrame:
        """The hits among every value classified so far, after classifying ``distinct``'s
        new values (hits may include values of earlier batches)."""
        empty = pl.DataFrame(schema=dict(schema))
        with self._lock:
            seen = self._seen.get(table)
            hits = self._hits.get(table, empty)
        new = distinct if seen is None else distinct.join(seen, on=on, how="anti")
        if not new.height:
            return hits
        found = classify(new).select(list(schema)).cast(pl.Schema(schema))
        with self._lock:
            seen = self._seen.get(table)
            kept = self._hits.get(table, empty)
            if seen is not None and seen.height + new.height > self.max_rows:
                seen, kept = None, empty  # full: start over
            new = compacted(new)
            self._seen[table] = new if seen is None else pl.concat([seen, new], rechunk=False)
            self._hits[table] = (
                pl.concat([kept, found.join(kept, on=on, how="anti")]).rechunk()
                if kept.height
                else found
            )
        # found holds only values the snapshot had not seen
        return pl.concat([hits, found])

    def tables(self) -> list[str]:
        """The tables holding classified values."""
        return sorted(self._seen)

    def __getstate__(self) -> dict[str, Any]:
        return {"max_rows": self.max_rows}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["max_rows"])  # type: ignore[misc]


class RecordScorer(Protocol):
    """The one-listing twin of a fitted text filter (:mod:`filters.text_record`)."""

    def score(self, record: Mapping[str, Any]) -> dict[str, Any]: ...


class TextFilter(Filter):
    """Brand mentions, obfuscations, counterfeit phrases and legitimate contexts in titles.

    Parameters
    ----------
    max_edits_medium : edits allowed for brand keys of 5-7 letters
    max_edits_long : edits allowed for brand keys of 8 or more letters
    min_fuzzy_len : shortest token that is fuzzy-matched
    use_description : also read the description: counterfeit phrases, and brand names where the
        title names none
    max_description_chars : how much of a description is read (its first characters)
    ambiguous_zipf : a name made only of words at least this common (Zipf frequency in one
        of the word list's languages) is ambiguous: its plain mentions and misspellings count
        only when something corroborates them

    Examples
    --------
    >>> from pipelines.registry import load_registry, default_registry_dir
    >>> f = TextFilter().fit(load_registry(default_registry_dir()))
    >>> out = f.score(pl.DataFrame({"title": ["Guccci Marmont bag"]})).collect()
    >>> out.get_column("text_brand").item(), out.get_column("text_reasons").item()
    ('Gucci', ['title "guccci" ~ brand "Gucci" (1 edit)'])
    """

    name: ClassVar[str] = "text"
    #: builds the one-listing twin of a fitted filter: :mod:`filters.text_record` sets it when
    #: imported (the twin reads this module's tables, so this module does not import it)
    record_scorer: ClassVar[Callable[[TextFilter], RecordScorer]]
    evidence_schema: ClassVar[dict[str, pl.DataType]] = {
        "text_brand": pl.String(),
        "text_match": pl.String(),
        "text_edits": pl.Int32(),
        "text_strong_phrases": pl.Int32(),
        "text_weak_phrases": pl.Int32(),
        "text_legit": pl.Int32(),
        "text_accessory": pl.Boolean(),
        "text_brand_mismatch": pl.Boolean(),
        "text_item": pl.String(),
        "text_item_share": pl.Float64(),
        "text_condition": pl.String(),
        "text_key": pl.String(),
    }

    def __init__(
        self,
        *,
        max_edits_medium: int = 1,
        max_edits_long: int = 2,
        min_fuzzy_len: int = 4,
        use_description: bool = True,
        max_description_chars: int = DESCRIPTION_CHARS,
        ambiguous_zipf: float = AMBIGUOUS_ZIPF,
    ) -> None:
        self.max_edits_medium = max_edits_medium
        self.max_edits_long = max_edits_long
        self.min_fuzzy_len = min_fuzzy_len
        self.use_description = use_description
        self.max_description_chars = max_description_chars
        self.ambiguous_zipf = ambiguous_zipf

    # ------------------------------------------------------------------ fit

    def edit_budget(self, key_len: int) -> int:
        """Edits a typo of a brand key of ``key_len`` letters may hold: none up to 4 letters,
        :attr:`max_edits_medium` up to 7, :attr:`max_edits_long` from 8."""
        return 0 if key_len <= 4 else self.max_edits_medium if key_len <= 7 else self.max_edits_long

    def fit(self, registry: Registry) -> Self:
        lex = registry.lexicon
        # the word list judges names of its languages; names in other scripts the [ordinary]
        # list names are ambiguous too ("Омега", "코치": the list has no Korean, and a
        # transliterated name is a rare word of a language even where it is an ordinary one)
        ordinary_keys = {
            k for k in (brand_key(script_folded(w)) for w in lex.ordinary) if not k.isascii()
        }
        rows: list[tuple[str, str, str, str | None, bool]] = []
        aliases_of: dict[str, set[str]] = {}
        for brand, aliases in registry.brands.select("brand", "aliases").iter_rows():
            aliases_of.setdefault(brand, set()).update(aliases)
        # names in other scripts (names.csv) are more aliases
        for brand, name in registry.names.select("brand", "name").iter_rows():
            aliases_of.setdefault(brand, set()).add(name)
        # names made only of common words ("Shell", "Guess", "The North Face", "Омега"), by the
        # word list
        surfaces = [*registry.brand_names, *(a for al in aliases_of.values() for a in al)]
        ambiguous = ambiguous_surfaces(surfaces, lex.words, self.ambiguous_zipf)
        native_ordinary = {native_form(w) for w in lex.ordinary if is_cjk(w)}
        word_surfaces: list[tuple[str, str]] = []
        native_surfaces: list[str] = []
        for brand in registry.brand_names:
            aliases = sorted(aliases_of.get(brand, ()))
            for surface, kind in [(brand, "exact"), *((a, "alias") for a in aliases)]:
                if is_cjk(surface):
                    # found as a substring of the title's native text, as folded there
                    form = native_form(surface)
                    native_surfaces.append(surface)
                    rows.append((form, brand, "native", None, form in native_ordinary))
                    continue
                # Arabic letter variants folded as in titles
                key = brand_key(script_folded(surface))
                if not key:
                    continue
                # word lengths as the listing tokeniser splits them ("Tod's" -> 3,1)
                words = tuple(len(brand_key(w)) for w in re.split(r"[\W_]+", surface))
                sig = ",".join(str(n) for n in words if n)
                rows.append((key, brand, kind, sig, surface in ambiguous or key in ordinary_keys))
                word_surfaces.append((surface, key))
        keys = pl.DataFrame(
            rows, schema=["key", "brand", "kind", "sig", "ambiguous"], orient="row"
        ).unique(subset=["key", "kind"], keep="first", maintain_order=True)
        latin = keys.filter(pl.col("kind") != "native")
        # one key -> one brand: a key claimed by two brands is dropped (it identifies neither)
        dup = (
            latin.group_by("key").agg(pl.col("brand").n_unique().alias("n")).filter(pl.col("n") > 1)
        )
        latin = latin.join(dup, on="key", how="anti").unique(
            subset=["key"], keep="first", maintain_order=True
        )
        self.keys_ = latin.select("key", "brand", "kind", "sig", "ambiguous")
        self.key_info_ = {
            k: (b, kind, amb, ksig) for k, b, kind, ksig, amb in self.keys_.iter_rows()
        }
        self.key_lengths_ = sorted({len(k) for k in self.key_info_})
        # a form (letters and digits) with a leetspeak reading: letters and leetspeak digits only
        leet_digits = "".join(sorted(c for c in LEET if c.isdigit()))
        self.leet_form_ = rf"^[\p{{L}}{leet_digits}]+$"
        # keys (4+ letters) by (length, position, letter): a masked surface's candidates are
        # the intersection over its shown letters
        mask_index: dict[tuple[int, int, str], set[str]] = {}
        for k in self.key_info_:
            if len(k) >= 4:
                for i, c in enumerate(k):
                    mask_index.setdefault((len(k), i, c), set()).add(k)
        self.mask_index_ = {at: frozenset(ks) for at, ks in mask_index.items()}
        # first character and length of a masked name: a key's, or a mask character
        self.mask_heads_ = sorted(
            f"{c}{len(k)}" for k in self.key_info_ if len(k) >= 4 for c in {k[0], *MASK_CHARS}
        )
        self.memo_ = MatchMemo()
        self.results_ = RowMemo()
        self.native_ = keys.filter(pl.col("kind") == "native").select(
            pl.col("key").alias("native"), "brand", "ambiguous"
        )
        # ambiguous names too: their misspellings count when corroborated; only Latin keys have
        # near misses: a name in another script is matched as written
        self.fuzzy_keys_ = [
            k for k in latin["key"].to_list() if self.edit_budget(len(k)) > 0 and k.isascii()
        ]
        # first letter and length a near miss can have: a key's, within its edit budget
        self.multi_fuzzy_keys_ = [
            k for k in self.fuzzy_keys_ if "," in (self.key_info_[k][3] or "")
        ]

        def near(keys: list[str]) -> list[str]:
            heads = set()
            for k in keys:
                budget = self.edit_budget(len(k))
                for size in range(len(k) - budget, len(k) + budget + 1):
                    if size >= self.min_fuzzy_len:
                        heads.add(f"{k[0]}{size}")
            return sorted(heads)

        # a one-token near miss may differ in its first letter: any length within a budget
        self.typo_lengths_ = sorted({int(h[1:]) for h in near(self.fuzzy_keys_)})
        self.multi_typo_heads_ = near(self.multi_fuzzy_keys_)
        # look-alike readings (UTS #39 skeletons) of the keys, in lower and upper case: Greek
        # capital eta looks like H, its small letter like n
        self.look_lower_: dict[str, str] = {}
        self.look_upper_: dict[str, str] = {}
        for k in self.key_info_:
            self.look_lower_.setdefault(skeleton(k).lower(), k)
            self.look_upper_.setdefault(skeleton(k.upper()), k)
        # the ASCII letters UTS #39 reads as others ("m" as "rn"): an ASCII form is tried as a
        # look-alike only when replacing them gives a key's reading
        table = confusables()
        self.ascii_looks_ = {c: table[c] for c in "abcdefghijklmnopqrstuvwxyz" if c in table}
        # a look-alike letter and a typo together: each key's visual reading (see
        # normalise.visual_reading) with its key, and the ASCII letter runs UTS #39 reads as
        # one letter ("rn" as "m"), which an a-z form must hold to be read so
        self.look_typo_of_: dict[str, str] = {}
        for k in self.fuzzy_keys_:
            self.look_typo_of_.setdefault(visual_reading(k), k)
        self.look_typo_keys_ = sorted(self.look_typo_of_)
        self.look_runs_ = sorted(
            {v for v in self.ascii_looks_.values() if len(v) > 1 and v.isascii() and v.isalpha()}
        )
        self.typo_lengths_set_ = frozenset(self.typo_lengths_)
        # names that digits glued to either end still spell ("burberry5"): five letters or more
        self.glue_keys_ = sorted(
            k for k in self.key_info_ if re.fullmatch(rf"[a-z]{{{MIN_GLUE_KEY},}}", k)
        )
        self.glue_keys_set_ = frozenset(self.glue_keys_)
        self.brand_categories_ = registry.brands.select(
            "brand", pl.col("category").alias("__tcat")
        ).unique()
        self.brand_category_pairs_ = self.brand_categories_.select(
            pl.concat_str(["brand", "__tcat"], separator="\x00")
        ).to_series()
        # listings' categories as marketplaces name them ("Sneakers", "Women > Jewellery")
        self.taxonomy_ = registry.taxonomy
        self.brand_by_key_ = pl.DataFrame(
            {
                "__dkey": [brand_key(b) for b in registry.brand_names],
                "__declared": registry.brand_names,
            }
        )
        # the word list is folded as titles are (accents stripped, lower case), and sorted
        self.common_ = lex.words.get_column("word").alias("common")
        # plurals are plain mentions ("Timberlands", "Ray Bans", "Uggs", "AF1s"), found by exact
        # lookup only: read through leetspeak "iPhone 5" would be "iphones", and a plural lends
        # no edit budget ("nikee" is no near miss of "nikes"); never a word of its own
        # ("benefits") nor another key
        # a name in another script as running text inflects it ("Ролекса", "ורולקס"): neither
        # a plural nor an inflected form may be a common word
        inflected = {
            name: inflected_keys(name, words_sig)
            for name, _, _, words_sig, _ in self.keys_.iter_rows()
        }
        grown_forms = {p for p in map(plural_key, self.key_info_) if p is not None}
        grown_forms |= {form for forms in inflected.values() for form, _ in forms}
        common = set(self.common_.filter(self.common_.is_in(sorted(grown_forms))).to_list())
        plural_rows = []
        self.plural_base_: dict[str, str] = {}
        for name, owner, how, words_sig, amb in self.keys_.iter_rows():
            plural = plural_key(name)
            if plural is not None and plural not in common and plural not in self.key_info_:
                *head, last = (words_sig or str(len(name))).split(",")
                grown = str(int(last) + len(plural) - len(name))
                plural_rows.append((plural, owner, how, ",".join([*head, grown]), amb))
                self.plural_base_[plural] = name
            for form, form_sig in inflected[name]:
                if form not in common and form not in self.key_info_:
                    plural_rows.append((form, owner, how, form_sig, amb))
                    self.plural_base_.setdefault(form, name)
        self.exact_keys_ = pl.concat(
            [self.keys_, pl.DataFrame(plural_rows, schema=self.keys_.schema, orient="row")]
        ).unique(subset=["key"], keep="first", maintain_order=True)
        self.strong_ = _phrase_forms(lex.phrases("counterfeit", "strong"))
        self.weak_ = [
            p
            for p in _phrase_forms(lex.phrases("counterfeit", "weak"))
            if p not in set(self.strong_)
        ]
        # folded phrase (as words) -> the lexicon's spelling, the first phrase to fold to it
        self.phrases_as_written_: dict[str, str] = {}
        written = [*lex.phrases("counterfeit", "strong"), *lex.phrases("counterfeit", "weak")]
        for phrase, form in zip(written, _phrase_form_each(written), strict=True):
            if form:
                self.phrases_as_written_.setdefault(" ".join(form.split()), phrase.lower())
        self.exceptions_ = _phrase_forms(lex.phrases("legitimate", "phrase_exceptions"))
        secondhand = _phrase_forms(lex.phrases("legitimate", "secondhand"))
        refurbished = _phrase_forms(lex.phrases("legitimate", "refurbished"))
        self.legit_ = list(
            dict.fromkeys(
                [*secondhand, *refurbished, *_phrase_forms(lex.phrases("legitimate", "authorised"))]
            )
        )
        prefixes = _phrase_forms(lex.phrases("legitimate", "accessory_prefix"))
        self.accessory_prefixes_ = sorted({" ".join(p.split()) for p in prefixes})
        ordinary_pairs = [(p, word) for word, phrases in lex.ordinary.items() for p in phrases]
        ordinary_forms = _phrase_form_each([p for p, _ in ordinary_pairs])
        # per word, its phrases' distinct forms, in order
        # (a word that inflects is keyed by the form the phrase holds: "ящик пандоры" is an
        # ordinary use of the mention "пандоры")
        ordinary_rows = list(
            dict.fromkeys(
                (form, self._ordinary_key(word, form))
                for (_, word), form in zip(ordinary_pairs, ordinary_forms, strict=True)
                if form
            )
        )
        self.ordinary_ = pl.DataFrame(
            ordinary_rows, schema=["__ophrase", "__okey"], orient="row"
        ).unique(subset=["__ophrase"], keep="first", maintain_order=True)
        # a phrase shows in the single-spaced phrase text as its words with single spaces
        # (listing text doubles its spaces to find adjacent phrases)
        self.counterfeit_probe_ = _single_spaced([*self.strong_, *self.weak_])
        self.legit_probe_ = _single_spaced(self.legit_)
        # "Apple Watch band compatible 44mm": a compatibility word and an accessory noun
        self.compatible_ = _phrase_forms(lex.phrases("legitimate", "compatible"))
        self.accessory_nouns_ = _phrase_forms(lex.phrases("legitimate", "accessory"))
        self.compatible_probe_ = _single_spaced(self.compatible_)
        # "for parts", "box only", "vial": not the product itself, whatever the brand's price
        self.not_the_product_ = _phrase_forms(lex.phrases("legitimate", "not_the_product"))
        # "Galaxy S23 screen protector": made for the phone by what it is
        self.fitted_ = _phrase_forms(lex.phrases("legitimate", "fitted"))
        self.title_accessory_probe_ = _single_spaced(
            [*self.compatible_, *self.not_the_product_, *self.fitted_]
        )
        # "Apple 20W USB-C charger": a brand's own small good, priced as a share of its goods
        shares: dict[str, tuple[float, str]] = {}
        written_items = list(lex.small_goods_shares().items())
        item_forms = _phrase_form_each([p for p, _ in written_items])
        for (phrase, share), form in zip(written_items, item_forms, strict=True):
            if form and share > shares.get(form, (0.0, ""))[0]:
                shares[form] = (share, phrase.lower())
        self.small_goods_ = pl.DataFrame(
            [(f, p, s) for f, (s, p) in shares.items()],
            schema={"__ifrom": pl.String, "text_item": pl.String, "text_item_share": pl.Float64},
            orient="row",
        )
        self.item_probe_ = _single_spaced(list(shares))
        self.item_guard_ = _phrase_forms(
            lex.phrases("products", "main") + lex.phrases("products", "bundle")
        )
        self.secondhand_ = secondhand
        self.refurbished_ = refurbished
        # "Apple Watch band 44mm": the head noun (the last product or accessory noun before a
        # bundle word) is an accessory; a noun that names a main product or a brand's own small
        # good too is not one ("bracelet", "charger", "glasses case")
        products = _phrase_forms(lex.phrases("products", "main"))
        own = set(self.small_goods_.get_column("__ifrom").to_list())
        self.product_nouns_ = products
        self.head_nouns_ = [
            f for f in self.accessory_nouns_ if f not in set(products) and f not in own
        ]
        # the nouns a title's head is read from, longest first, so that a brand's own small
        # good is read whole ("glasses case", "power adapter"), never as its last word's
        # accessory noun ("case", "adapter")
        self.head_patterns_ = sorted(
            dict.fromkeys([*own, *products, *self.head_nouns_]), key=len, reverse=True
        )
        bundle = _phrase_forms(lex.phrases("products", "bundle"))
        self.bundle_cut_ = (
            "(?:" + "|".join(re.escape(b) for b in bundle) + ").*$" if bundle else None
        )
        self.title_accessory_probe_ = sorted(
            {*self.title_accessory_probe_, *_single_spaced(self.head_nouns_)}
        )
        # one pass over every title finds those that may hold a phrase of any group
        self.phrase_probe_ = sorted(
            {
                *self.counterfeit_probe_,
                *self.legit_probe_,
                *self.title_accessory_probe_,
                *self.item_probe_,
            }
        )
        self.native_probe_ = sorted(set(self.native_["native"].to_list()))
        self.native_surfaces_ = native_surfaces
        self._fit_description(lex, word_surfaces)
        # words holding a native brand name that are other words ("ブルガリア", Bulgaria; "삼성동",
        # a district of Seoul): taken out of the native text before the search
        exceptions = [*lex.ordinary.items(), *lex.native_exceptions.items()]
        self.native_exceptions_ = sorted(
            {native_form(p) for word, ps in exceptions if is_cjk(word) for p in ps} - {""}
        )
        self._record_scorer: RecordScorer | None = None
        return self

    def _fit_description(self, lex: Any, word_surfaces: list[tuple[str, str]]) -> None:
        """Names as a description's phrase text writes them (``desc_names_``: ``__dpat``, the
        name's words with the listing text's doubled spaces, ``brand``, ``form`` (its key),
        ``ambiguous``), and the comparison contexts as regular expressions."""
        info = {k: (b, amb, sig) for k, b, _, sig, amb in self.exact_keys_.iter_rows()}

        def split(key: str, sig: str | None) -> str:
            lengths = [int(x) for x in (sig or str(len(key))).split(",") if x]
            out, at = [], 0
            for n in lengths:
                out.append(key[at : at + n])
                at += n
            return " ".join(w for w in out if w)

        # a name's words: as the phrase text writes its surface ("levi's", "dolce & gabbana"),
        # its key's words ("levi s") and the key as one word ("levis")
        surfaces = [sf for sf, _ in word_surfaces]
        as_text = _phrase_form_each(surfaces)
        rows: dict[str, set[str]] = {}
        for (_, key), form in zip(word_surfaces, as_text, strict=True):
            if key in info and form:
                rows.setdefault(" ".join(form.split()), set()).add(key)
        for key, (_, _, sig) in info.items():
            for words in (split(key, sig), key):
                rows.setdefault(words, set()).add(key)
        table = []
        for words, keys in rows.items():
            brands = {info[k][0] for k in keys}
            if len(brands) != 1 or not words:
                continue  # a name two brands share identifies neither
            key = min(keys)
            table.append((" " + "  ".join(words.split()) + " ", brands.pop(), key, info[key][1]))
        self.desc_names_ = pl.DataFrame(
            table,
            schema={
                "__dpat": pl.String,
                "brand": pl.String,
                "form": pl.String,
                "ambiguous": pl.Boolean,
            },
            orient="row",
        ).sort("__dpat")
        self.desc_name_probe_ = _single_spaced(self.desc_names_["__dpat"].to_list())
        before = [
            *_phrase_forms(lex.phrases("legitimate", "comparison_before")),
            *_phrase_forms(lex.phrases("legitimate", "accessory_prefix")),
        ]
        after = _phrase_forms(lex.phrases("legitimate", "comparison_after"))
        # on the words before a name (single-spaced, no padding) and after it
        words_before = "|".join(sorted({re.escape(" ".join(p.split())) for p in before}))
        fillers = "|".join(COMPARISON_FILLERS)
        self.compared_before_ = f"(?:^| )(?:{words_before})(?: (?:{fillers}))?$" if before else ""
        words_after = "|".join(sorted({re.escape(" ".join(p.split())) for p in after}))
        # (up to two words between: "Neverfull MM compatible")
        self.compared_after_ = (
            f"^(?:[^ ]+ ){{0,2}}(?:(?:{fillers}) )?(?:{words_after})(?: |$)" if after else ""
        )
        # a description saying the item is compatible with others compares with every name it
        # holds ("Apple, Samsung and Google phones: compatible charger"); not "fits", which
        # descriptions say of the item itself ("strap fits most wrists")
        self.compared_anywhere_ = list(self.compatible_)
        # what a description must hold to be read at all: a word of every phrase searched in
        # it and of every name (the longest word; lower case, Arabic letters folded), found
        # in the raw text by one regular expression (most descriptions hold none)
        phrases = [
            *lex.phrases("counterfeit", "strong"),
            *lex.phrases("counterfeit", "weak"),
            *lex.phrases("legitimate", "secondhand"),
            *lex.phrases("legitimate", "refurbished"),
            *lex.phrases("legitimate", "authorised"),
            # (an ordinary phrase holding its brand word is found by the word: "delivery vans")
            *(
                p
                for w, ps in lex.ordinary.items()
                for p in ps
                if brand_key(script_folded(w)) not in brand_key(fold(p))
            ),
            *(sf for sf, _ in word_surfaces),
            *rows,
            *self.native_surfaces_,
        ]
        probe = {probe_folded(probe_word(p)) for p in phrases}
        probe |= {probe_folded(probe_word(fold(p))) for p in phrases}
        self.desc_probe_ = sorted(w for w in probe if w)
        # words with an ASCII letter at an end need its word boundary: one regex; the others
        # (other scripts) are substrings: one Aho-Corasick search (a regex holding them both
        # was 300 times slower)
        self.desc_probe_regex_ = probe_pattern([w for w in self.desc_probe_ if w.isascii()])
        self.desc_probe_other_ = [w for w in self.desc_probe_ if not w.isascii()]

    def _ordinary_key(self, word: str, phrase_form: str) -> str:
        """The key an ordinary phrase (in phrase form) is about: the brand word's key, or the
        inflected form of it that the phrase holds."""
        key = brand_key(script_folded(word))
        info = self.key_info_.get(key)
        words = set(phrase_form.split())
        for form, _ in inflected_keys(key, None if info is None else info[3]):
            if form in words:
                return form
        return key

    def score_record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """This filter's columns for one listing (a mapping of validated input fields), equal
        to what :meth:`score` gives for a one-row frame, without a query engine."""
        check_is_fitted(self)
        # built on first use: a batch run never needs it (it costs 30 ms of start-up)
        scorer = getattr(self, "_record_scorer", None)
        if scorer is None:
            scorer = self._record_scorer = type(self).record_scorer(self)
        return scorer.score(record)

    # ------------------------------------------------------------------ stages

    def normalised_titles(self, lf: pl.LazyFrame) -> pl.DataFrame:
        """``__tid`` row id, ``__norm`` (folded title, CJK runs spaced apart), ``__ptext``
        (phrase form of title and description), ``__raw`` (title with only case and accents
        folded: to tell fullwidth and zero-width obfuscation from plain text)."""
        cols = set(lf.collect_schema().names())
        title = pl.col("title").cast(pl.String).fill_null("")
        desc = (
            capped(pl.col("description").cast(pl.String).fill_null(""), self.max_description_chars)
            if self.use_description and "description" in cols
            else pl.lit("")
        )
        text = pl.concat_str(title, pl.lit(" | "), desc)
        df = lf.with_row_index("__tid").collect()
        # most titles are ASCII: Unicode normalisation is the identity there, so it runs only
        # on the others (lazy, so that the lower-cased title is computed once)
        lower = title.str.to_lowercase()
        cheap = (
            df.lazy()
            .select(
                lower.alias("__norm"),
                _padded_words(text.str.to_lowercase()).alias("__ptext"),
                lower.alias("__raw"),
                (text.str.len_bytes() != text.str.len_chars()).alias("__other"),
            )
            .collect()
        )
        at = cheap.get_column("__other").arg_true()
        norm = cheap.drop("__other")
        if at.len():
            # folding commutes with appending " | " (a space neither composes with what
            # precedes it nor is a cased letter), so the folded title is folded once
            other = df[at].with_columns(folded(title).alias("__ftitle"))
            ftitle = pl.col("__ftitle")
            # tokens are read from the title with the look-alikes NFKC would lose mapped first
            # (Greek lunate sigma "ϲ" is a "c", not the final sigma NFKC makes of it)
            lost = nfkc_lost_lookalikes()
            tokens = folded(title.str.replace_many(list(lost), list(lost.values())))
            rest = other.select(
                tokens.str.replace_all(f"({CJK_CLASS}+)", " ${1} ").alias("__norm"),
                _padded_words(pl.concat_str(ftitle, pl.lit(" | "), folded(desc))).alias("__ptext"),
                lower.str.normalize("NFD").str.replace_all(MARKS_BUT_HIDDEN, "").alias("__raw"),
            )
            norm = norm.with_columns(
                norm.get_column(c).scatter(at, rest.get_column(c)) for c in rest.columns
            )
        return df.with_columns(norm)

    def _tokens(self, titles: pl.DataFrame) -> pl.DataFrame:
        """One row per token, in title order: ``__tid``, ``pos``, ``tok`` (as written, folded)
        and ``plain`` (letters and digits only)."""
        lists = titles.select("__tid", pl.col("__norm").str.extract_all(TOKEN).alias("tok"))
        # a token's position: its row in the exploded frame minus its title's first row
        start = lists.select(
            "__tid",
            "tok",
            (pl.col("tok").list.len().cum_sum() - pl.col("tok").list.len()).alias("__start"),
        ).explode("tok")
        toks = (
            start.drop_nulls("tok")
            .with_columns(
                (pl.int_range(pl.len(), dtype=pl.Int64) - pl.col("__start")).alias("pos"),
                pl.col("tok").str.strip_chars("!|"),
            )
            .drop("__start")
        )
        # besides letters and digits a token holds only TOKEN's symbols: the few tokens with
        # one are cleaned, the others are their own plain form
        tok = toks.get_column("tok")
        odd = toks.select(pl.col("tok").str.contains_any(TOKEN_SYMBOLS)).to_series().arg_true()
        plain = tok.clone().scatter(odd, tok.gather(odd).str.replace_all(r"[^\p{L}\p{N}]", ""))
        return toks.with_columns(plain.alias("plain"))

    @staticmethod
    def _runs(toks: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Each token and runs of 2-3 adjacent tokens of one title, coded as integers: ``c1``
        .. ``c3`` aligned with ``toks`` (null past the title's end); and the distinct runs:
        ``n``, ``code`` and ``form`` (their plain tokens concatenated).

        A batch has few distinct tokens (6k in 320k), so its runs repeat far more than they
        differ: forms are built and matched once per distinct run and joined back on integers,
        not on strings."""
        plain = toks.get_column("plain")
        vocab = plain.unique(maintain_order=True)
        size = max(vocab.len(), 1)
        ids = toks.select(index_of(pl.col("plain"), vocab).cast(pl.Int64)).to_series()
        tid, token = pl.col("__tid"), pl.col("__p")
        codes = [token.alias("c1")]
        run, bound = token, size
        for i in range(1, MAX_NGRAM):
            if bound * size >= 1 << CODE_BITS:
                # too many distinct tokens for the run's code: number the runs so far densely
                run, bound = run.rank("dense").cast(pl.Int64) - 1, max(toks.height, 1)
            run, bound = run * size + token.shift(-i), bound * size
            codes.append(pl.when(tid.shift(-i) == tid).then(run).alias(f"c{i + 1}"))
        coded = toks.select(tid, ids.alias("__p")).select(codes)
        distinct = []
        for n in range(1, MAX_NGRAM + 1):
            code = coded.get_column(f"c{n}")
            at = (code.is_first_distinct() & code.is_not_null()).arg_true()
            form = pl.concat_str(
                [plain.gather(at + i) for i in range(n)] if at.len() else [plain.clear()]
            )
            distinct.append(
                pl.DataFrame({"n": pl.repeat(n, at.len(), dtype=pl.Int8, eager=True)}).with_columns(
                    code.gather(at).alias("code"), form.alias("form")
                )
            )
        runs = pl.concat(distinct).filter(pl.col("form") != "")
        return coded, runs

    @staticmethod
    def _spaced(titles: pl.DataFrame) -> pl.DataFrame:
        """Letters written apart ("g u c c i", "n.i.k.e", "p-r-a-d-a") read as one word."""
        spaced = r"(?:^|[^\p{L}\p{N}])((?:\p{L}[ .\-_·*/]+){2,}\p{L})(?:[^\p{L}\p{N}]|$)"
        return (
            titles.select("__tid", pl.col("__norm").str.extract_all(spaced).alias("surface"))
            .explode("surface")
            .drop_nulls("surface")
            # a letter after a space and before a hyphen starts the next word ("G U C C I
            # t-shirt"), not the name
            .with_columns(pl.col("surface").str.replace(SPACED_NEXT_WORD, ""))
            .with_columns(pl.col("surface").str.replace_all(r"^[^\p{L}]+|[^\p{L}]+$", ""))
            .with_columns(pl.col("surface").str.replace_all(r"[^\p{L}]", "").alias("form"))
        )

    def form_matches(self, forms: pl.DataFrame) -> pl.DataFrame:
        """Brand matches of distinct ``form``, ``n``: ``form``, ``n``, ``brand``, ``kind``,
        ``edits``, ``ambiguous``, ``ksig`` (matches of forms of earlier batches included).

        Exact matches are a join. The other kinds are tried only on forms that could read as a
        key (by length and letters: a model number never can), and a form's match depends on
        the form alone, so each is classified once per fitted filter and remembered for later
        batches. Only those forms are remembered: most forms are model numbers, sizes and other
        words met once."""
        # two runs can spell one form ("ab c", "a bc")
        distinct = forms.select("form", "n").unique()
        exact = self._exact_matches(distinct)
        form, n = pl.col("form"), pl.col("n")
        length = form.str.len_chars()
        head = pl.concat_str(form.str.slice(0, 1), length.cast(pl.String))
        # an ASCII form reads as a look-alike only through the few ASCII letters UTS #39 maps
        # ("rnoncler"): tried only if the mapped form is a key's reading; a form with other
        # characters is read in Python (few distinct forms have them)
        ascii_looks = self.ascii_looks_
        looks = (
            form.str.replace_many(list(ascii_looks), list(ascii_looks.values()))
            .str.to_lowercase()
            .is_in(list(self.look_lower_))
            if ascii_looks
            else pl.lit(False)
        ) | ~form.str.contains(r"^[a-z0-9]+$")
        keys = list(self.key_info_)
        digits = [d for d in LEET if d.isdigit()]
        leet = (
            form.str.contains(r"\p{L}")
            & form.str.contains(self.leet_form_)
            & (
                form.str.replace_many(digits, [LEET[d] for d in digits]).is_in(keys)
                | form.str.replace_many(
                    digits, ["l" if d == "1" else LEET[d] for d in digits]
                ).is_in(keys)
            )
        )
        # digits glued to a name of five letters or more ("burberry5")
        glued = (n == 1) & form.str.strip_chars("0123456789").is_in(self.glue_keys_)
        near = (
            ((n == 1) & length.is_in(self.typo_lengths_))
            | ((n > 1) & head.is_in(self.multi_typo_heads_))
            # a name glued to a word
            | ((n == 1) & (length >= MIN_GLUE_KEY + MIN_GLUE_WORD))
        )
        candidates = distinct.join(exact.select("form", "n"), on=["form", "n"], how="anti")
        # each reading is tried only on the forms it applies to: look-alikes on forms of
        # letters only or with other characters than a-z and 0-9, leetspeak on
        # forms with digits, glued digits on letters with digits at an end, near misses on a-z
        # forms (each query over every form cost more than the readings)
        applies = candidates.select(
            (~form.str.contains(r"^[a-z0-9]+$") | form.str.contains(r"^[a-z]+$")).alias("looks"),
            form.str.contains(r"[0-9]").alias("leet"),
            form.str.contains(r"^[0-9]+[a-z]+[0-9]*$|^[a-z]+[0-9]+$").alias("glued"),
            (form.str.contains(r"^[a-z0-9]+$") & form.str.contains(r"[a-z]")).alias("near"),
        )
        could = np.zeros(candidates.height, dtype=bool)
        tests = (looks, leet, glued, near)
        for where, test in zip(applies.get_columns(), tests, strict=True):
            at = where.arg_true()
            if at.len():
                hit = candidates[at].select(test.fill_null(False)).to_series()
                could[at.filter(hit).to_numpy()] = True
        others = self.memo_.lookup(
            "forms",
            candidates.filter(pl.Series(could)),
            ["form", "n"],
            self._classify_forms,
            FORM_MATCH_SCHEMA,
        )
        return pl.concat([exact, others]).unique(
            subset=["form", "n"], keep="first", maintain_order=True
        )

    def _exact_matches(self, uniq: pl.DataFrame) -> pl.DataFrame:
        keys = self.exact_keys_.rename({"key": "mkey", "sig": "ksig"})
        return (
            uniq.join(keys, left_on="form", right_on="mkey", how="inner")
            .with_columns(pl.lit(0, dtype=pl.Int32).alias("edits"))
            .select(list(FORM_MATCH_SCHEMA))
            .cast(pl.Schema(FORM_MATCH_SCHEMA))
        )

    def surface_matches(self, toks: pl.DataFrame) -> pl.DataFrame:
        """Leetspeak and masked matches of the batch's distinct single tokens as written (read
        letter for letter: only tokens with letters, as long as some key)."""
        tok = pl.col("tok")
        # tokens repeat: the tests run on the distinct ones (a token with a letter has a plain
        # form)
        distinct = (
            toks.select(tok.unique())
            .filter(
                tok.str.contains(r"[^\p{L}]")
                & tok.str.contains(r"\p{L}")
                & tok.str.len_chars().is_in(self.key_lengths_)
            )
            .select(tok.alias("surface"))
        )
        return self.memo_.lookup(
            "surfaces", distinct, ["surface"], self._classify_surfaces, SURFACE_MATCH_SCHEMA
        )

    def _classify_forms(self, rest: pl.DataFrame) -> pl.DataFrame:
        """Typo, look-alike and leetspeak matches of distinct ``(form, n)`` that are not exact
        matches (multi-token forms are typos only of multi-word keys); :meth:`form_matches`
        passes only forms that could read as a key."""
        key_info = self.key_info_
        extra: list[tuple[str, int, str, str, int, bool, str | None]] = []
        form = pl.col("form")
        # no ordinary word of the word list's languages is a misspelt or look-alike name
        common_words = self._common_words()
        common = {f for f in rest.get_column("form").to_list() if f in common_words}
        # look-alike letters: the UTS #39 skeleton must equal a key's exactly (a-z forms only
        # where one of their readings can: see _plain_look_candidates)
        plain = form.str.contains(r"^[a-z]+$")
        looks = (~form.str.contains(r"^[a-z0-9]+$")) | (plain & self._plain_look_candidates())
        for text, n in rest.filter(looks).iter_rows():
            key = None if text in common else self._look_alike(text)
            if key is not None:
                b, _, amb, ksig = key_info[key]
                extra.append((text, n, b, "confusable", 0, amb, ksig))
        # near misses: length-bucketed cdist over distinct forms, never common words
        fuzzy = rest.filter(
            form.str.contains(r"^[a-z]+$") & (form.str.len_chars() >= self.min_fuzzy_len)
        )
        single = [f for f in fuzzy.filter(pl.col("n") == 1)["form"].to_list() if f not in common]
        # a digit typed for a letter or between letters ("burb4erry"): read after leetspeak
        # and glued digits, which come first below
        mixed = rest.filter(
            (pl.col("n") == 1)
            & form.str.contains(r"^[a-z0-9]+$")
            & form.str.contains(r"[0-9]")
            & form.str.contains(r"[a-z]")
            & (form.str.len_chars() >= self.min_fuzzy_len)
        )["form"].to_list()
        multi = fuzzy.filter(pl.col("n") > 1)["form"].to_list()
        for text, key, d, first in self._near_misses(single, self.fuzzy_keys_):
            b, _, amb, ksig = key_info[key]
            if text not in _partials(key, ksig):
                # an edit of the first letter, or two edits ("sapling" for Spalding), ask for
                # corroboration, as an ambiguous name does
                extra.append((text, 1, b, "typo", d, amb or first or d >= 2, ksig))
        for text, key, d, _ in self._near_misses(multi, self.multi_fuzzy_keys_, same_first=True):
            b, _, amb, ksig = key_info[key]
            # as many tokens as the name has words: "calvin klein t" is not a typo
            n = len((ksig or "").split(","))
            if n <= MAX_NGRAM:
                extra.append((text, n, b, "typo", d, amb or d >= 2, ksig))
        # leetspeak over whole forms, so multi-word names read too ("bott3ga veneta", "7he north")
        for text, n in rest.filter(form.str.contains(r"[0-9]")).iter_rows():
            hit = next((r for r in leet_readings(text) if r in key_info), None)
            if hit is not None:
                b, _, amb, ksig = key_info[hit]
                extra.append((text, n, b, "leet", 0, amb, ksig))
            elif n == 1 and (core := glued_core(text)) is not None and core in self.glue_keys_set_:
                b, _, amb, ksig = key_info[core]
                extra.append((text, n, b, "glued", 0, amb, ksig))
        for text, key, d, first in self._near_misses(mixed, self.fuzzy_keys_):
            b, _, amb, ksig = key_info[key]
            if text not in _partials(key, ksig):
                extra.append((text, 1, b, "typo", d, amb or first or d >= 2, ksig))
        # a name glued to a common word ("guccishop", "shopgucci")
        words = rest.filter(
            (pl.col("n") == 1)
            & form.str.contains(r"^[a-z]+$")
            & (form.str.len_chars() >= MIN_GLUE_KEY + MIN_GLUE_WORD)
        ).get_column("form")
        if not words.is_empty():
            for text, key in self._glued_words(words.filter(~words.is_in(list(common)))):
                b, _, amb, ksig = key_info[key]
                extra.append((text, 1, b, "glued", 0, amb, ksig))
        # a look-alike letter and a typo together ("onegɑ" for Omega), last: only single forms
        # no other reading took
        taken = {e[0] for e in extra if e[1] == 1}
        looked: dict[str, list[str]] = {}
        for text in rest.filter(pl.col("n") == 1)["form"].to_list():
            if text in taken or text in common:
                continue
            reading = self._look_typo_query(text)
            if reading is not None:
                looked.setdefault(reading, []).append(text)
        for reading, seen, d, first in self._near_misses(sorted(looked), self.look_typo_keys_):
            key = self.look_typo_of_[seen]
            for text in looked[reading]:
                match = self._look_typo_match(text, key, d, first)
                if match is not None:
                    extra.append((text, 1, *match))
        return pl.DataFrame(extra, schema=FORM_MATCH_SCHEMA, orient="row").unique(
            subset=["form", "n"], keep="first", maintain_order=True
        )

    def _look_typo_query(self, form: str) -> str | None:
        """The visual reading of a single-token form that no other reading matched, to be
        compared with the keys' by edit distance: forms with characters other than a-z and
        0-9, and a-z forms of a near miss's length holding a letter run UTS #39 reads as one
        letter ("rnicrosotf"); None for other forms and for readings that are not a-z letters
        (another script) or too short for a near miss."""
        if form.isascii() and form.isalnum():
            if not form.isalpha() or len(form) not in self.typo_lengths_set_:
                return None
            if not any(run in form for run in self.look_runs_):
                return None
        reading = visual_reading(form)
        if len(reading) < self.min_fuzzy_len or not (reading.isascii() and reading.isalpha()):
            return None
        return reading

    def _look_typo_match(
        self, form: str, key: str, edits: int, first: bool
    ) -> tuple[str, str, int, bool, str | None] | None:
        """(brand, kind, edits, ambiguous, ksig) of a form whose visual reading is ``edits``
        from ``key``'s: a look-alike when it equals it, else a typo, which asks for support as
        any typo does (an edit of the first letter, or two edits); None for a part of a
        name of several words."""
        b, _, amb, ksig = self.key_info_[key]
        if edits == 0:
            return b, "confusable", 0, amb, ksig
        if form in _partials(key, ksig):
            return None
        return b, "typo", edits, amb or first or edits >= 2, ksig

    def _glued_words(self, forms: pl.Series) -> list[tuple[str, str]]:
        """(form, key) for forms that are a key of five letters or more glued to a common
        word of three or more ("guccishop", "shopgucci"): the longest key, at the start first."""
        found: dict[str, str] = {}
        frame = forms.to_frame("form").lazy()
        form, size = pl.col("form"), pl.col("form").str.len_chars()
        # the forms that start or end with a key, longest key first, the start before the
        # end; then whether the rest is a common word (a set lookup, not a hash of the word
        # list per key length)
        parts = []
        for length in sorted({len(k) for k in self.glue_keys_}, reverse=True):
            long_enough = size >= length + MIN_GLUE_WORD
            parts.append(
                frame.filter(long_enough & form.str.slice(0, length).is_in(self.glue_keys_)).select(
                    "form",
                    form.str.slice(0, length).alias("key"),
                    form.str.slice(length).alias("word"),
                )
            )
            parts.append(
                frame.filter(long_enough & form.str.slice(-length).is_in(self.glue_keys_)).select(
                    "form",
                    form.str.slice(-length).alias("key"),
                    form.str.slice(0, size - length).alias("word"),
                )
            )
        common = self._common_words()
        for text, key, word in pl.concat(parts).collect().iter_rows():
            if word in common:
                found.setdefault(text, key)
        return sorted(found.items())

    def _common_words(self) -> frozenset[str]:
        """:attr:`common_` as a set, made on first use (not pickled: it is rebuilt)."""
        words: frozenset[str] | None = self.__dict__.get("_common_set")
        if words is None:
            words = self.__dict__["_common_set"] = frozenset(self.common_.to_list())
        return words

    def __getstate__(self) -> dict[str, Any]:
        state = cast(dict[str, Any], super().__getstate__())
        return {k: v for k, v in state.items() if k != "_common_set"}

    def _plain_look_candidates(self) -> pl.Expr:
        """Whether an a-z ``form`` may read as a key through :meth:`_look_alike`: a condition
        every match meets, computed in one pass. An ASCII string's skeleton is each
        character's own (NFD leaves ASCII as it is), so the lower-case and upper-case
        readings are two replacements; the readings with capital look-alikes ("i" read as
        the "l" its capital looks like) all equal the lower-case reading once those letters
        are made one."""
        table = ascii_skeletons()
        src, dst = [chr(c) for c in table], list(table.values())
        form = pl.col("form")
        lower = form.str.replace_many(src, dst).str.to_lowercase() if src else form
        upper = form.str.to_uppercase()
        upper = upper.str.replace_many(src, dst) if src else upper
        # the capital look-alikes of a-z letters, as their readings: one letter each
        pairs = {
            skeleton(c).lower(): skeleton(reading).lower()
            for c, reading in capital_lookalikes().items()
            if c.isascii()
        }
        candidate = lower.is_in(list(self.look_lower_)) | upper.is_in(list(self.look_upper_))
        if not pairs:
            return candidate
        if not all(len(a) == 1 and len(b) == 1 for a, b in pairs.items()):
            # no one-letter merge: every form is read in Python
            return pl.lit(True)
        merged = lower.str.replace_many(list(pairs), list(pairs.values()))
        keys = list(self.look_lower_)
        merged_keys = pl.Series(keys, dtype=pl.String).str.replace_many(
            list(pairs), list(pairs.values())
        )
        return candidate | merged.is_in(merged_keys.implode())

    def _look_alike(self, form: str) -> str | None:
        """The key a form reads as through look-alike characters (UTS #39 skeletons compared
        in lower and in upper case), else None. Titles are read in lower case, which loses
        the look of some capitals (Greek capital iota looks like "l", its small letter like
        "i"): a small letter whose capital reads as another ASCII letter is read both ways."""
        key = self.look_lower_.get(skeleton(form).lower())
        if key is None:
            key = self.look_upper_.get(skeleton(form.upper()))
        if key is None:
            key = next(
                (self.look_lower_[r] for r in capital_readings(form) if r in self.look_lower_),
                None,
            )
        return key if key != form else None

    def _masked_brand(self, surface: str) -> str | None:
        """The one brand whose key (4+ letters) fits a masked surface ("gu**i"), else None.
        Ambiguous words too: nobody masks the letters of an ordinary word."""
        if not is_masked(surface):
            return None
        # what the pattern matches: a key as long, equal wherever a letter is shown
        size, found = len(surface), None
        for i, c in enumerate(surface):
            if c in MASK_CHARS:
                continue
            keys = self.mask_index_.get((size, i, c))
            if not keys:
                return None
            found = keys if found is None else found & keys
            if not found:
                return None
        hits = {self.key_info_[k][0] for k in found or ()}
        return hits.pop() if len(hits) == 1 else None

    def _classify_surfaces(self, uniq: pl.DataFrame) -> pl.DataFrame:
        key_info = self.key_info_
        rows: list[tuple[str, str, str, int, bool, str | None]] = []
        for surface in uniq["surface"].to_list():
            hit = next((r for r in leet_readings(surface) if r in key_info), None)
            if hit is not None:
                b, _, amb, ksig = key_info[hit]
                rows.append((surface, b, "leet", 0, amb, ksig))
                continue
            brand = self._masked_brand(surface)
            if brand is not None:
                rows.append((surface, brand, "masked", 0, False, None))
        return pl.DataFrame(rows, schema=SURFACE_MATCH_SCHEMA, orient="row")

    def _classify_masked(self, uniq: pl.DataFrame) -> pl.DataFrame:
        rows = [(s, self._masked_brand(s)) for s in uniq.get_column("surface").to_list()]
        return pl.DataFrame(
            [r for r in rows if r[1] is not None], schema=["surface", "brand"], orient="row"
        )

    def _masked_runs(self, toks: pl.DataFrame) -> pl.DataFrame:
        """Names masked across a word break ("ray-b*n" is "rayb*n"): runs of 2-3 tokens of
        one title, each with a letter, one with a mask character, read together. Rows as
        :meth:`form_matches` gives them, with ``k``, the run's first token."""
        at = toks.select(pl.arg_where(pl.col("tok").str.contains_any(list(MASK_CHARS)))).to_series()
        masked_rows = at.to_numpy().astype(np.int64)
        size = toks.height
        tok, plain, tid = (toks.get_column(c) for c in ("tok", "plain", "__tid"))
        runs = []
        # only runs through a token with a mask character (a few in a batch) are built
        for n in range(2, MAX_NGRAM + 1):
            starts = np.unique(np.concatenate([masked_rows - j for j in range(n)]))
            starts = starts[(starts >= 0) & (starts + n <= size)].astype(np.int64)
            window = [starts + i for i in range(n)]
            runs.append(
                pl.DataFrame(
                    {
                        "k": starts,
                        **{f"__t{i}": tok.gather(w) for i, w in enumerate(window)},
                        **{f"__p{i}": plain.gather(w) for i, w in enumerate(window)},
                        **{f"__s{i}": tid.gather(w) for i, w in enumerate(window)},
                    }
                )
                .select(
                    "k",
                    pl.lit(n, dtype=pl.Int8).alias("n"),
                    pl.concat_str([f"__t{i}" for i in range(n)]).alias("surface"),
                    pl.concat_str([f"__p{i}" for i in range(n)]).alias("form"),
                    pl.all_horizontal(
                        [pl.col(f"__t{i}").str.contains(r"\p{L}") for i in range(n)]
                        + [pl.col(f"__s{i}") == pl.col("__s0") for i in range(1, n)]
                    ).alias("__ok"),
                )
                .filter(pl.col("__ok"))
            )
        # a masked name is letters and mask characters only, as long as some key
        surface = pl.col("surface")
        head = pl.concat_str(surface.str.slice(0, 1), surface.str.len_chars().cast(pl.String))
        found = pl.concat(runs).filter(
            head.is_in(self.mask_heads_)
            & surface.str.contains("^[\\p{L}" + re.escape(MASK_CHARS) + "]+$")
        )
        brands = self.memo_.lookup(
            "masked runs",
            found.select("surface").unique(),
            ["surface"],
            self._classify_masked,
            {"surface": pl.String(), "brand": pl.String()},
        )
        return found.join(brands, on="surface", how="inner").select(
            "k",
            "form",
            "n",
            "brand",
            pl.lit("masked").alias("kind"),
            pl.lit(0, dtype=pl.Int32).alias("edits"),
            pl.lit(False).alias("ambiguous"),
            pl.lit(None, dtype=pl.String).alias("ksig"),
        )

    def _spaced_matches(self, spaced: pl.DataFrame) -> pl.DataFrame:
        """Spaced-out letters spelling a key: a table of their own, so that a token's match
        never depends on another listing of the batch spelling the same letters apart."""
        key_info = self.key_info_
        rows = [
            (surface, *key_info[form][:1], "spaced", 0, key_info[form][2], key_info[form][3])
            for surface, form in spaced.select("surface", "form").unique().iter_rows()
            if form in key_info and len(form) >= 3
        ]
        return pl.DataFrame(rows, schema=SURFACE_MATCH_SCHEMA, orient="row").unique(
            subset=["surface"], keep="first", maintain_order=True
        )

    def _mentions(self, toks: pl.DataFrame, titles: pl.DataFrame) -> pl.DataFrame:
        """Brand mentions by token: ``__tid``, ``pos``, ``n``, ``surface``, ``prev1..3`` (the
        1-3 plain tokens before it), ``form``, ``brand``, ``kind``, ``edits``, ``ambiguous``.
        The context columns are built for the matched tokens only."""
        coded, runs = self._runs(toks)
        matched = runs.join(self.form_matches(runs), on=["form", "n"], how="inner")
        by_surface = self.surface_matches(toks)
        row = pl.int_range(pl.len(), dtype=pl.Int64).alias("k")
        parts = [
            coded.select(row, pl.col(f"c{n}").alias("code"))
            .join(matched.filter(pl.col("n") == n), on="code", how="inner")
            .select("k", *FORM_MATCH_SCHEMA)
            for n in range(1, MAX_NGRAM + 1)
        ]
        parts.append(
            toks.select(row, pl.col("tok").alias("surface"), pl.col("plain").alias("form"))
            .filter(pl.col("form") != "")
            .join(by_surface, on="surface", how="inner")
            .select("k", "form", pl.lit(1, dtype=pl.Int8).alias("n"), *list(FORM_MATCH_SCHEMA)[2:])
        )
        parts.append(self._masked_runs(toks))
        hits = pl.concat(parts, how="vertical_relaxed")
        found = (
            self._in_context(toks, hits)
            .with_columns(
                # a run of tokens matching a multi-word key with other word breaks: spaced
                pl.when(
                    (pl.col("n") > 1)
                    & pl.col("kind").is_in(["exact", "alias"])
                    & (pl.col("sig") != pl.col("ksig"))
                    # letters set apart ("d.i.o.r"); "Mont Blanc" for "Montblanc" is not obfuscation
                    & pl.col("sig").str.contains(r"^[12](?:,[12])*$")
                )
                .then(pl.lit("spaced"))
                .otherwise(pl.col("kind"))
                .alias("kind"),
            )
            .filter(
                # single letters set apart that spell a 2-3 letter abbreviation ("size L V-neck",
                # "vitamin C K") are ordinary text far more often than a disguised brand
                ~(
                    (pl.col("n") > 1)
                    & (pl.col("form").str.len_chars() <= 3)
                    & pl.col("sig").str.contains(r"^1(?:,1)*$")
                    & (pl.col("sig") != pl.col("ksig").fill_null(""))  # "D&G" as registered
                )
            )
        )
        # a name spelt exactly by fewer tokens from the same place is no misspelling of that name
        # with the next word: "Levis t-shirt" is "levis", not "levis t" one edit from "levi s"
        # (the same name: same brand and word lengths; "Mercedes-eBnz" still misspells the
        # longer name)
        # (near misses are few: only their titles' exact mentions are compared)
        same = ["__tid", "pos", "brand", "ksig"]
        typos = found.with_row_index("__row").filter(pl.col("kind") == "typo")
        if typos.is_empty():
            return found
        shadowed = (
            found.filter(
                pl.col("kind").is_in(["exact", "alias"])
                & pl.col("__tid").is_in(typos.get_column("__tid").implode())
            )
            .select(*same, pl.col("n").alias("__pn"))
            .join(typos.select("__row", *same, "n"), on=same, how="inner")
            .filter(pl.col("__pn") < pl.col("n"))
            .get_column("__row")
        )
        if shadowed.is_empty():
            return found
        keep = pl.repeat(True, found.height, eager=True).scatter(shadowed, False)
        return found.filter(keep)

    @staticmethod
    def _in_context(toks: pl.DataFrame, hits: pl.DataFrame) -> pl.DataFrame:
        """Matches at token rows ``k`` (``n`` tokens long) with their title, position,
        surface, token-length signature and preceding tokens."""
        size = toks.height
        k = hits.get_column("k").to_numpy()
        tid = toks.get_column("__tid")
        here = tid.gather(k) if size else tid.clear()

        @functools.cache
        def where(offset: int) -> tuple[np.ndarray, pl.Series]:
            """Token rows ``k + offset`` (clipped) and where they leave the title (shared by
            the columns read at one offset)."""
            idx = k + offset
            clipped = np.clip(idx, 0, max(size - 1, 0))
            if offset == 0:
                return clipped, pl.Series(np.zeros(len(k), dtype=bool))
            inside = (idx >= 0) & (idx < size)
            return clipped, pl.Series(~(inside & (tid.gather(clipped) == here).to_numpy()))

        def at(col: str, offset: int) -> pl.Series:
            """``col`` at token ``k + offset`` of the same title, else null."""
            clipped, outside = where(offset)
            values = toks.get_column(col).gather(clipped)
            return values.set(outside, None) if size else values

        n = pl.col("n")
        tokens = [
            pl.col("__t0"),
            pl.when(n > 1).then(pl.col("__t1")),
            pl.when(n > 2).then(pl.col("__t2")),
        ]
        lengths = [pl.col(c).str.len_chars().cast(pl.String) for c in ("__p0", "__p1", "__p2")]
        sig = [lengths[0], pl.when(n > 1).then(lengths[1]), pl.when(n > 2).then(lengths[2])]
        prev = [pl.col(f"__b{i}") for i in (1, 2, 3)]
        return hits.with_columns(
            here.alias("__tid"),
            toks.get_column("pos").gather(k).alias("pos")
            if size
            else pl.lit(0, pl.Int64).alias("pos"),
            *(at("tok", i).alias(f"__t{i}") for i in range(MAX_NGRAM)),
            *(at("plain", i).alias(f"__p{i}") for i in range(MAX_NGRAM)),
            *(at("plain", -i).alias(f"__b{i}") for i in range(1, MAX_NGRAM + 1)),
        ).select(
            "__tid",
            "pos",
            "n",
            pl.concat_str(tokens, separator=" ", ignore_nulls=True).alias("surface"),
            pl.concat_str(sig, separator=",", ignore_nulls=True).alias("sig"),
            "ksig",
            prev[0].alias("prev1"),
            pl.concat_str([prev[1], prev[0]], separator=" ").alias("prev2"),
            pl.concat_str([prev[2], prev[1], prev[0]], separator=" ").alias("prev3"),
            "form",
            "brand",
            "kind",
            "edits",
            "ambiguous",
        )

    def _near_misses(
        self, queries: list[str], keys: list[str], *, same_first: bool = False
    ) -> list[tuple[str, str, int, bool]]:
        """(query, key, edits, first letter differs) within each key's edit budget, nearest
        key per query (``same_first``: only keys the query shares its first letter with)."""
        if not queries or not keys:
            return []
        out: list[tuple[str, str, int, bool]] = []
        q_len = np.fromiter((len(q) for q in queries), dtype=np.int64, count=len(queries))
        for length in sorted({len(k) for k in keys}):
            budget = self.edit_budget(length)
            bucket_keys = [k for k in keys if len(k) == length]
            sel = np.flatnonzero(np.abs(q_len - length) <= budget)
            if sel.size == 0:
                continue
            bucket = [queries[i] for i in sel]
            dist = process.cdist(
                bucket,
                bucket_keys,
                scorer=OSA.distance,
                score_cutoff=budget,
                dtype=np.int8,
                workers=-1,
            )
            qi, ki = np.nonzero(dist <= budget)
            for a, b in zip(qi.tolist(), ki.tolist(), strict=True):
                first = bucket[a][0] != bucket_keys[b][0]
                # a name of several words keeps its first letter: dropping a leading word makes
                # no typo ("creuset" is not "Le Creuset", "for jordan" is not "Air Jordan")
                if not (same_first and first):
                    out.append((bucket[a], bucket_keys[b], int(dist[a, b]), first))
        # nearest key first; of equals, one keeping the first letter
        best: dict[str, tuple[str, str, int, bool]] = {}
        for q, k, d, first in sorted(out, key=lambda t: (t[0], t[2], t[3], t[1])):
            best.setdefault(q, (q, k, d, first))
        return list(best.values())

    def _phrase_counts(self, titles: pl.DataFrame) -> PhraseHits:
        """Counterfeit, suggestive and legitimate phrases and native brand names in ``titles``
        (see :class:`PhraseHits`)."""
        # every word gets its own spaces, so adjacent phrases both match
        text = pl.col("__ptext").str.replace_all(" ", "  ")
        cleaned = (
            text.str.replace_many(self.exceptions_, [" "] * len(self.exceptions_))
            if self.exceptions_
            else text
        )

        def hits(patterns: list[str], expr: pl.Expr) -> pl.Expr:
            if not patterns:
                return pl.lit([], dtype=pl.List(pl.String))
            return expr.str.extract_many(patterns, overlapping=False)

        def probe(frame: pl.DataFrame, source: str, patterns: list[str]) -> pl.Series:
            if not patterns:
                return pl.repeat(False, frame.height, dtype=pl.Boolean, eager=True)
            return holding_any(frame, source, patterns)

        # most titles hold no phrase of a group, and a cheap test per title picks the few to
        # search: the phrase text once for all groups, then each group among those that passed
        any_phrase = probe(titles, "__ptext", self.phrase_probe_)
        candidates = titles.filter(any_phrase)

        passed = any_phrase.arg_true()

        def mask(patterns: list[str]) -> tuple[pl.Series, pl.Series]:
            """Where (over ``titles``) a group's probe passes, and where among candidates."""
            inner = probe(candidates, "__ptext", patterns)
            where = pl.repeat(False, titles.height, dtype=pl.Boolean, eager=True)
            return where.scatter(passed.filter(inner), True), inner

        def among(patterns: list[str]) -> tuple[pl.Series, pl.LazyFrame]:
            """Where (over ``titles``) a group's probe passes, and those titles (lazy, so that
            the spaced and cleaned text a group's searches share is computed once)."""
            where, inner = mask(patterns)
            return where, candidates.filter(inner).lazy()

        where, rows = among(self.counterfeit_probe_)
        strong, weak = hits(self.strong_, cleaned), hits(self.weak_, cleaned)
        counterfeit = rows.select(
            "__tid",
            strong.list.len().cast(pl.Int32).alias("text_strong_phrases"),
            weak.list.len().cast(pl.Int32).alias("text_weak_phrases"),
            self._as_written(strong.list.first()).alias("__strong1"),
            self._as_written(weak.list.first()).alias("__weak1"),
        ).collect()
        per_title = spread_columns(counterfeit.drop("__tid"), where)
        where, rows = among(self.legit_probe_)
        # the condition a title claims: used where it holds a phrase of both
        claim = pl.lit(None, dtype=pl.String)
        for condition, forms in (("refurbished", self.refurbished_), ("used", self.secondhand_)):
            if forms:
                held = text.str.contains_any(forms)
                claim = pl.when(held).then(pl.lit(condition)).otherwise(claim)
        legit = rows.select(
            hits(self.legit_, text).list.len().cast(pl.Int32).alias("text_legit"),
            claim.alias("text_condition"),
        ).collect()
        per_title += spread_columns(legit, where)
        # native names: only in titles with a character of a script matched by substring
        norm = pl.col("__norm")
        other = titles.select(norm.str.len_bytes() != norm.str.len_chars()).to_series()
        if self.native_probe_ and other.any():
            native_titles = titles.filter(other).select("__tid", native_text(norm).alias("__ntext"))
            if self.native_exceptions_:
                native_titles = native_titles.with_columns(
                    pl.col("__ntext").str.replace_many(
                        self.native_exceptions_, [" "] * len(self.native_exceptions_)
                    )
                )
            native_titles = native_titles.filter(
                probe(native_titles, "__ntext", self.native_probe_)
            )
        else:
            native_titles = pl.DataFrame(schema={"__tid": pl.UInt32, "__ntext": pl.String})
        native = hits(self.native_["native"].to_list(), pl.col("__ntext"))
        counts = ("text_strong_phrases", "text_weak_phrases", "text_legit")
        return PhraseHits(
            titles.select("__tid")
            .with_columns(per_title)
            .with_columns(pl.col(c).fill_null(0) for c in counts),
            native_titles.select("__tid", native.alias("surface"))
            .explode("surface")
            .drop_nulls("surface"),
            mask(self.title_accessory_probe_)[0],
            mask(self.item_probe_)[0],
        )

    def _title_accessories(self, base: pl.DataFrame, where: pl.Series) -> pl.Series:
        """Per title, aligned with ``base``: why the title sells something other than the
        brand's product at its price, else null. Either it says so ("for parts", "box only",
        "vial"), or it names what is made for another's product ("screen protector"), or it
        holds both a compatibility word and an accessory noun ("Apple Watch band
        compatible 44mm"). Either of the last two alone is not enough: "AirPods Pro compatible
        Android" is what a fake says, and "Apple Watch band" may be Apple's own."""
        none = pl.repeat(None, base.height, dtype=pl.String, eager=True).alias("__compat")
        # ``where``: titles whose phrase text holds a word of the tests (few)
        if not where.any():
            return none
        padded = _padded_words(pl.col("__norm"))
        # every word gets its own spaces, so adjacent phrases both match (see _phrase_counts)
        spaced = padded.str.replace_all(" ", "  ")

        def first(patterns: list[str]) -> pl.Expr:
            if not patterns:
                return pl.lit(None, dtype=pl.String)
            return _words(spaced.str.extract_many(patterns, overlapping=False).list.first())

        notes = base.filter(where).select(
            pl.coalesce(
                pl.format(
                    '"{}" in the title: not the product itself', first(self.not_the_product_)
                ),
                pl.format('"{}" in the title: made for the brand\'s product', first(self.fitted_)),
                pl.format(
                    '"{}" and "{}" in the title: accessory for the brand',
                    first(self.accessory_nouns_),
                    first(self.compatible_),
                ),
                self._head_noun(spaced),
            )
        )
        return spread(notes.to_series(), where).alias("__compat")

    def _head_noun(self, spaced: pl.Expr) -> pl.Expr:
        """The reason a title whose head noun is an accessory sells an accessory ("Apple Watch
        band 44mm", "Galaxy S24 case"), else null: of the product and accessory nouns before
        any bundle word, leftmost-first, the last is an accessory."""
        if not self.head_nouns_:
            return pl.lit(None, dtype=pl.String)
        head = spaced if self.bundle_cut_ is None else spaced.str.replace(self.bundle_cut_, "")
        nouns = head.str.extract_many(self.head_patterns_, overlapping=False, leftmost=True)
        last = nouns.list.last()
        return (
            pl.when(last.is_in(self.head_nouns_))
            .then(pl.format('"{}" is what the title sells: accessory for the brand', _words(last)))
            .otherwise(pl.lit(None, dtype=pl.String))
        )

    def _title_items(self, base: pl.DataFrame, where: pl.Series) -> pl.DataFrame:
        """Per title, aligned with ``base``: ``text_item``, the brand's own small good the
        title sells ("charger", "socks"), and ``text_item_share``, the share of the brand's
        dearest reference price it sells for; null unless the title names one and, once the
        small goods are taken out, no main product and no bundle word ("iPhone 15 with
        charger" sells a phone; "glasses case" a case). Of two, the dearer counts."""
        schema = {"text_item": pl.String, "text_item_share": pl.Float64}
        nothing = pl.DataFrame(
            [pl.repeat(None, base.height, dtype=t, eager=True).alias(c) for c, t in schema.items()]
        )
        # ``where``: titles whose phrase text holds a small good's phrase (few)
        if not where.any():
            return nothing
        # every word gets its own spaces, so adjacent phrases both match (see _phrase_counts)
        spaced = _padded_words(pl.col("__norm")).str.replace_all(" ", "  ")
        forms = self.small_goods_.get_column("__ifrom").to_list()
        rest = spaced.str.replace_many(forms, ["  "] * len(forms))
        guarded = rest.str.contains_any(self.item_guard_) if self.item_guard_ else pl.lit(False)
        sub = base.filter(where).select(
            spaced.str.extract_many(forms, overlapping=False).alias("__ifrom"),
            guarded.alias("__guarded"),
        )
        picked = (
            sub.with_row_index("__r")
            .filter(~pl.col("__guarded"))
            .explode("__ifrom")
            .with_row_index("__o")
            .join(self.small_goods_, on="__ifrom")
            .sort(["__r", "text_item_share", "__o"], descending=[False, True, False])
            .filter(pl.col("__r").is_first_distinct())
        )
        # each searched title's pick, null where it has none
        at = sub.select(
            index_of(pl.int_range(pl.len(), dtype=pl.UInt32), picked.get_column("__r"))
        ).to_series()
        return pl.DataFrame([spread(picked.get_column(c).gather(at), where) for c in schema])

    def _ordinary_uses(self, titles: pl.DataFrame, found: pl.DataFrame) -> pl.DataFrame:
        """Ordinary uses of brand words ("sea shell", "omega 3"): ``__tid``, ``form`` (the
        word's key) and ``__oph`` (the phrase), a row per phrase in a title. A use matters only
        where the title mentions that word, so only those titles are searched (a few in a
        batch; a search of every title with one was most of the phrase search)."""
        words = self.ordinary_.get_column("__okey").unique()
        if words.is_empty():
            return pl.DataFrame(schema={"__tid": pl.UInt32, "form": pl.String, "__oph": pl.String})
        tids = found.filter(pl.col("form").is_in(words.implode())).get_column("__tid").unique()
        # every word gets its own spaces, so adjacent phrases both match (see _phrase_counts)
        text = pl.col("__ptext").str.replace_all(" ", "  ")
        return (
            titles.filter(pl.col("__tid").is_in(tids.implode()))
            .select(
                "__tid",
                text.str.extract_many(
                    self.ordinary_["__ophrase"].to_list(), overlapping=False
                ).alias("__ophrase"),
            )
            .explode("__ophrase")
            .join(self.ordinary_, on="__ophrase")
            .select(
                "__tid",
                pl.col("__okey").alias("form"),
                _words(pl.col("__ophrase")).alias("__oph"),
            )
        )

    def _inputs(self, cols: list[str]) -> list[str]:
        """The columns this filter reads: its output is a function of these alone."""
        read = ["title", "brand", "category", *(["description"] if self.use_description else [])]
        return [c for c in read if c in cols]

    def _score(
        self, listings: pl.LazyFrame, statistics: pl.DataFrame | None = None
    ) -> pl.LazyFrame:
        check_is_fitted(self)
        frame = listings.collect()
        inputs = self._inputs(frame.columns)
        read = frame.select(inputs)
        if "description" in inputs:
            read = read.with_columns(self.description_read(pl.col("description")))
        # listings repeating another's title, description, brand and category are scored once
        # (a description with nothing to read counts as none)
        distinct, back = distinct_rows(read)
        scored = self.results_.apply(distinct, self._score_distinct)
        if back is not None:
            scored = scored.select(pl.all().gather(back))
        return frame.hstack(scored).lazy()

    def description_read(self, desc: pl.Expr) -> pl.Expr:
        """What this filter reads of each description: its first
        :attr:`max_description_chars` characters where they hold a word of a phrase or name it
        searches for (written plainly: in a letter case, with or without accents), else
        nothing."""
        read = capped(desc.cast(pl.String), self.max_description_chars)
        low = read.str.to_lowercase().str.replace_many(list(PROBE_FOLD), list(PROBE_FOLD.values()))
        probe = low.str.contains(self.desc_probe_regex_)
        if self.desc_probe_other_:
            probe = probe | low.str.contains_any(self.desc_probe_other_)
        return (
            pl.when(probe).then(read).otherwise(pl.lit(None, dtype=pl.String)).alias("description")
        )

    def _score_distinct(self, listings: pl.DataFrame) -> pl.DataFrame:
        """This filter's columns for ``listings`` (aligned with it)."""
        cols = listings.columns
        base = self.normalised_titles(listings.lazy())
        titles = base.select("__tid", "__norm", "__ptext", "__raw")
        toks = self._tokens(titles)
        spaced = self._spaced(titles)
        phrases = self._phrase_counts(titles)
        none = pl.lit(None, dtype=pl.String)
        ctx = ["__tid", "pos", "n", "surface", "prev1", "prev2", "prev3"]
        mentions = [
            self._mentions(toks, titles).select(
                *ctx, "form", "brand", "kind", "edits", "ambiguous"
            ),
            spaced.join(self._spaced_matches(spaced), on="surface")
            .with_columns(
                pl.lit(-1, dtype=pl.Int64).alias("pos"),
                pl.lit(1, dtype=pl.Int8).alias("n"),
                none.alias("prev1"),
                none.alias("prev2"),
                none.alias("prev3"),
            )
            .select(*ctx, "form", "brand", "kind", "edits", "ambiguous"),
            phrases.native.join(
                self.native_, left_on="surface", right_on="native", how="inner"
            ).select(
                "__tid",
                pl.lit(-1, dtype=pl.Int64).alias("pos"),
                pl.lit(1, dtype=pl.Int8).alias("n"),
                "surface",
                none.alias("prev1"),
                none.alias("prev2"),
                none.alias("prev3"),
                pl.col("surface").alias("form"),
                "brand",
                pl.lit("native").alias("kind"),
                pl.lit(0, dtype=pl.Int32).alias("edits"),
                "ambiguous",
            ),
        ]
        found = pl.concat(mentions, how="vertical_relaxed")
        found = pl.concat(
            [found, self._description_mentions(base, found.get_column("__tid"))],
            how="vertical_relaxed",
        )
        # one chunk: polars 2.1 panics formatting a string column whose chunks include an
        # empty one between others ("assertion failed: i < self.len()")
        return self._scored(base, cols, found.rechunk(), phrases)

    def _description_mentions(self, base: pl.DataFrame, named: pl.Series) -> pl.DataFrame:
        """Names written plainly in the descriptions of listings whose title names none
        (``named``: the titles with a mention), as rows of :meth:`_mentions` (``kind``
        ``description``, or ``compared`` for a comparison or disclaimer: "works like Dyson",
        "Submariner homage"). Only the first :attr:`max_description_chars` characters are read.
        """
        none = pl.lit(None, dtype=pl.String)
        schema = {
            "__tid": pl.UInt32,
            "pos": pl.Int64,
            "n": pl.Int8,
            "surface": pl.String,
            "prev1": pl.String,
            "prev2": pl.String,
            "prev3": pl.String,
            "form": pl.String,
            "brand": pl.String,
            "kind": pl.String,
            "edits": pl.Int32,
            "ambiguous": pl.Boolean,
        }
        if not self.use_description or "description" not in base.columns:
            return pl.DataFrame(schema=schema)
        desc = pl.col("description").cast(pl.String)
        rows = base.filter(
            ~pl.col("__tid").is_in(named.implode()) & (desc.str.len_bytes() > 0)
        ).select("__tid", capped(desc, self.max_description_chars).alias("__desc"))
        if rows.is_empty():
            return pl.DataFrame(schema=schema)
        d = pl.col("__desc")
        other = rows.select(d.str.len_bytes() != d.str.len_chars()).to_series()
        words = rows.select(_padded_words(d.str.to_lowercase())).to_series()
        at = other.arg_true()
        if at.len():
            words = words.scatter(at, rows[at].select(_padded_words(folded(d))).to_series())
        rows = rows.with_columns(words.alias("__dtext"))
        parts = []
        # names as words: a search of every text, then of those that may hold one
        held = rows.filter(holding_any(rows, "__dtext", self.desc_name_probe_))
        if held.height:
            spaced = pl.col("__dtext").str.replace_all(" ", "  ")
            patterns = self.desc_names_.get_column("__dpat").to_list()
            hits = (
                held.select("__tid", spaced.alias("__spaced"))
                .with_columns(
                    pl.col("__spaced").str.extract_many(patterns, overlapping=False).alias("__dpat")
                )
                .explode("__dpat")
                .drop_nulls("__dpat")
                .unique(["__tid", "__dpat"], keep="first", maintain_order=True)
                .join(self.desc_names_, on="__dpat", how="inner")
            )
            # the words around the name's first occurrence
            around = pl.col("__spaced").str.split(pl.col("__dpat"))
            before = around.list.first().str.slice(-CONTEXT_CHARS)
            after = around.list.get(1, null_on_oob=True).fill_null("").str.slice(0, CONTEXT_CHARS)
            hits = hits.with_columns(
                before.str.replace_all(" +", " ").str.strip_chars(" ").alias("__before"),
                after.str.replace_all(" +", " ").str.strip_chars(" ").alias("__after"),
            )
            compared = pl.lit(False)
            if self.compared_anywhere_:
                compared = pl.col("__spaced").str.contains_any(self.compared_anywhere_)
            if self.compared_before_:
                compared = compared | pl.col("__before").str.contains(self.compared_before_)
            if self.compared_after_:
                compared = compared | pl.col("__after").str.contains(self.compared_after_)
            parts.append(
                hits.select(
                    "__tid",
                    _words(pl.col("__dpat")).alias("surface"),
                    "form",
                    "brand",
                    pl.when(compared)
                    .then(pl.lit("compared"))
                    .otherwise(pl.lit("description"))
                    .alias("kind"),
                    "ambiguous",
                )
            )
        # names of the scripts matched by substring
        if self.native_probe_ and at.len():
            ntext = native_text(folded(d).str.replace_all(f"({CJK_CLASS}+)", " ${1} "))
            native_rows = rows[at].select("__tid", ntext.alias("__ntext"))
            if self.native_exceptions_:
                native_rows = native_rows.with_columns(
                    pl.col("__ntext").str.replace_many(
                        self.native_exceptions_, [" "] * len(self.native_exceptions_)
                    )
                )
            native_rows = native_rows.filter(
                holding_any(native_rows, "__ntext", self.native_probe_)
            )
            if native_rows.height:
                parts.append(
                    native_rows.select(
                        "__tid",
                        pl.col("__ntext")
                        .str.extract_many(self.native_["native"].to_list(), overlapping=False)
                        .alias("surface"),
                    )
                    .explode("surface")
                    .drop_nulls("surface")
                    .unique(["__tid", "surface"], keep="first", maintain_order=True)
                    .join(self.native_, left_on="surface", right_on="native", how="inner")
                    .select(
                        "__tid",
                        "surface",
                        pl.col("surface").alias("form"),
                        "brand",
                        pl.lit("description").alias("kind"),
                        "ambiguous",
                    )
                )
        if not parts:
            return pl.DataFrame(schema=schema)
        # a description that compares with one brand compares with all it names ("Rolex
        # Submariner homage"; "fits Rolex, Omega and Seiko straps")
        compared = (pl.col("kind") == "compared").any().over("__tid")
        return (
            pl.concat(parts, how="vertical_relaxed")
            .select(
                "__tid",
                pl.lit(0, dtype=pl.Int64).alias("pos"),
                pl.lit(1, dtype=pl.Int8).alias("n"),
                "surface",
                none.alias("prev1"),
                none.alias("prev2"),
                none.alias("prev3"),
                "form",
                "brand",
                pl.when(compared).then(pl.lit("compared")).otherwise("kind").alias("kind"),
                pl.lit(0, dtype=pl.Int32).alias("edits"),
                "ambiguous",
            )
            .cast(pl.Schema(schema))
        )

    def _as_written(self, hit: pl.Expr) -> pl.Expr:
        """A counterfeit phrase hit as the lexicon writes it (lower case): hits are found in
        folded text, which loses accents and kana voicing marks."""
        shown = self.phrases_as_written_
        return _words(hit).replace(list(shown), list(shown.values()))

    def _declared_brands(self, base: pl.DataFrame, cols: list[str]) -> pl.Series:
        """The protected brand each listing declares (by brand key), else null."""
        if "brand" not in cols:
            return pl.repeat(None, base.height, dtype=pl.String, eager=True).alias("__declared")
        return declared_brands(base.get_column("brand"), self.brand_by_key_).alias("__declared")

    def _categories(self, base: pl.DataFrame, cols: list[str]) -> pl.Series:
        """The registry categories each listing's category covers (through the taxonomy);
        null where it has none or the taxonomy knows it not."""
        if "category" not in cols:
            return pl.repeat(None, base.height, dtype=pl.List(pl.String), eager=True).alias(
                "__lcat"
            )
        read = self.taxonomy_.resolve_column(base.get_column("category"))
        return (
            read.select(
                pl.when(pl.col("category_status") == "known").then(pl.col("category_covers"))
            )
            .to_series()
            .alias("__lcat")
        )

    def _category_agrees(
        self, cand: pl.DataFrame, rows: pl.DataFrame, tested: pl.Series
    ) -> pl.Series:
        """Per mention of ``cand``: whether its listing's category covers one of its brand's
        categories; computed for the ``tested`` mentions only (false for the others)."""
        out = pl.repeat(False, cand.height, dtype=pl.Boolean, eager=True).alias("__agrees")
        if not tested.any():
            return out
        sub = cand.filter(tested).select(
            pl.int_range(pl.len(), dtype=pl.UInt32).alias("__r"),
            "brand",
            rows.get_column("__lcat").gather(cand.filter(tested).get_column("__tid")).alias("c"),
        )
        agrees = (
            sub.explode("c")
            .with_columns(
                pl.concat_str(["brand", "c"], separator="\x00")
                .is_in(self.brand_category_pairs_.implode())
                .fill_null(False)
                .alias("a")
            )
            .group_by("__r")
            .agg(pl.col("a").any())
            .sort("__r")
        )
        return out.scatter(
            tested.arg_true().gather(agrees.get_column("__r")), agrees.get_column("a")
        )

    def _scored(
        self, base: pl.DataFrame, cols: list[str], found: pl.DataFrame, phrases: PhraseHits
    ) -> pl.DataFrame:
        # every frame here is aligned with ``base`` (row i is title i): columns, not joins
        rows = base.select("__tid", "__raw", pl.col("title").cast(pl.String).alias("__title"))
        rows = rows.with_columns(
            self._declared_brands(base, cols),
            self._categories(base, cols),
            *phrases.per_title.drop("__tid").get_columns(),
            self._title_accessories(base, phrases.accessory_at),
            *self._title_items(base, phrases.item_at).get_columns(),
        )
        # ordinary uses of brand words ("sea shell") and corroboration of ambiguous words
        ordinary = self._ordinary_uses(base, found)
        at = found.get_column("__tid")
        # fullwidth and zero-width characters are properties of the title (tested only on
        # titles that are not ASCII: neither kind is)
        raw = pl.col("__raw")
        other = rows.select(raw.str.len_bytes() != raw.str.len_chars()).to_series()
        hiding = rows.filter(other).select(
            raw.str.contains(r"[\uff01-\uff5e]").alias("__fullwidth"),
            raw.str.contains(ZERO_WIDTH_CLASS).alias("__zero_width"),
            # other compatibility characters: mathematical letters, circled, ligatures
            (raw.str.normalize("NFKC") != raw.str.normalize("NFC")).alias("__compat_chars"),
        )
        hiding = hiding.select(
            spread(hiding.get_column(c), other).fill_null(False) for c in hiding.columns
        )
        cand = found.with_columns(
            *(
                rows.get_column(c).gather(at)
                for c in (
                    "__declared",
                    "text_strong_phrases",
                    "__title",
                    "__raw",
                    "__compat",
                )
            ),
            *(hiding.get_column(c).gather(at) for c in hiding.columns),
            rows.get_column("__lcat").is_null().gather(at).alias("__lnone"),
        )
        # a few titles hold an ordinary phrase: their rows are found by a join of the keys
        # alone (a left join gathers every column of every mention)
        keyed = (
            cand.select("__tid", "form")
            .with_row_index("__k")
            .join(ordinary, on=["__tid", "form"], how="inner")
        )
        # a word in two ordinary phrases of one title ("sea shell necklace") gets a row for
        # each, as a left join gives
        hit = keyed.get_column("__k")
        cand = pl.concat(
            [
                cand.filter(
                    ~pl.int_range(pl.len(), dtype=pl.UInt32).is_in(hit.implode())
                ).with_columns(pl.lit(None, dtype=pl.String).alias("__oph")),
                cand[hit].with_columns(keyed.get_column("__oph")),
            ]
        )
        # two names of one brand in a title corroborate each other ("apple iphone 15"): counted
        # for ambiguous mentions only, outside ordinary phrases
        amb = cand.select(pl.col("ambiguous") & pl.col("__oph").is_null()).to_series()
        names = (
            cand.filter(amb)
            .group_by("__tid", "brand")
            .agg(pl.col("form").n_unique().alias("__names"))
            .filter(pl.col("__names") > 1)
        )
        cand = cand.with_columns(
            amb.alias("__two_names")
            & pl.concat_str(["__tid", "brand"], separator="\x00").is_in(
                names.select(pl.concat_str(["__tid", "brand"], separator="\x00"))
                .to_series()
                .implode()
            )
        )
        in_raw = pl.col("__raw").str.contains(pl.col("surface"), literal=True).alias("__in_raw")
        # written with a capital letter somewhere ("Omega", "OMEGA", "iPhone"): the title does
        # not hold the name in lower case (a script without case, Arabic or Hebrew, capitalises
        # nothing: its folded letter variants are no capitals)
        capitalised = (
            ~pl.col("__title").str.contains(pl.col("surface"), literal=True)
            & (pl.col("surface").str.to_uppercase() != pl.col("surface"))
        ).alias("__capitalised")
        # two kinds of mention read these substring tests: a plain one in a title with
        # fullwidth or zero-width characters (were they hiding it?) and a plain mention of an
        # ambiguous word without a category (is it capitalised?); the others keep the default
        plain_kind = pl.col("kind").is_in(["exact", "alias"])
        tested = cand.select(
            plain_kind
            & (
                pl.col("__compat_chars")
                | pl.col("__zero_width")
                | (pl.col("ambiguous") & pl.col("__lnone"))
            )
        ).to_series()
        sub = cand.filter(tested).select("__tid", "surface", "__raw", "__title")
        # once per mention while that is cheap, else once per distinct surface of a title: a
        # title repeating one word 40,000 times must stay linear
        title_bytes = rows.get_column("__raw").str.len_bytes().sum()
        mention_bytes = sub.get_column("__raw").str.len_bytes().sum()
        if mention_bytes <= 16 * title_bytes + 4096:
            tests = sub.select(in_raw, capitalised)
        else:
            surfaces = sub.unique(["__tid", "surface"]).select(
                "__tid", "surface", in_raw, capitalised
            )
            tests = sub.join(
                surfaces, on=["__tid", "surface"], how="left", maintain_order="left"
            ).select("__in_raw", "__capitalised")
        cand = cand.with_columns(
            spread(tests.get_column("__in_raw"), tested).fill_null(True),
            spread(tests.get_column("__capitalised"), tested).fill_null(False),
        )
        # a plain match whose surface is not in the raw title hid behind fullwidth, zero-width
        # or other compatibility characters ("𝐆𝐮𝐜𝐜𝐢": look-alikes NFKC reads)
        hidden = pl.col("kind").is_in(["exact", "alias"]) & ~pl.col("__in_raw")
        kind = (
            pl.when(hidden & pl.col("__fullwidth"))
            .then(pl.lit("fullwidth"))
            .when(hidden & pl.col("__zero_width"))
            .then(pl.lit("zero_width"))
            .when(hidden & pl.col("__compat_chars"))
            .then(pl.lit("confusable"))
            .otherwise(pl.col("kind"))
        )
        # "laces for Nike": an accessory for the brand if any mention of it follows a prefix,
        # or the title says it is compatible and names an accessory, or is parts or packaging
        prefixes = self.accessory_prefixes_
        prefix_used = pl.coalesce(
            pl.when(pl.col("prev3").is_in(prefixes)).then(pl.col("prev3")),
            pl.when(pl.col("prev2").is_in(prefixes)).then(pl.col("prev2")),
            pl.when(pl.col("prev1").is_in(prefixes)).then(pl.col("prev1")),
        )
        cand = cand.with_columns(
            kind.alias("kind"),
            pl.format('"{} {}": accessory for the brand', prefix_used, pl.col("form")).alias(
                "__accessory"
            ),
        )
        # the first in sort order: the batch's row order must not change the reason
        accessory = (
            cand.filter(pl.col("__accessory").is_not_null())
            .group_by("__tid", "brand")
            .agg(pl.col("__accessory").min())
        )
        # few mentions have one: they are found by a join of the keys alone (a left join
        # gathers every column of every mention)
        keyed = (
            cand.select("__tid", "brand")
            .with_row_index("__k")
            .join(accessory, on=["__tid", "brand"], how="inner")
        )
        # a brand no prefix names as the target takes the title's own reason, if it has one
        cand = cand.with_columns(
            pl.repeat(None, cand.height, dtype=pl.String, eager=True)
            .scatter(keyed.get_column("__k"), keyed.get_column("__accessory"))
            .alias("__accessory")
        ).with_columns(pl.coalesce("__accessory", "__compat").alias("__accessory"))
        # the category agrees where the taxonomy reads it as one of the brand's ("Sneakers"
        # for Air Jordan): asked of the mentions of ambiguous words that need support alone
        support_kinds = ["exact", "alias", "native", "description", "typo", "glued"]
        cand = cand.with_columns(
            self._category_agrees(
                cand,
                rows,
                cand.select(
                    pl.col("ambiguous") & pl.col("kind").is_in(support_kinds) & ~pl.col("__lnone")
                ).to_series(),
            )
        )
        supported = (
            pl.col("__agrees")
            | (pl.col("__declared") == pl.col("brand"))
            | (pl.col("text_strong_phrases") > 0)
            | pl.col("__two_names")
        )
        # without a category, a capitalised brand word ("Omega Speedmaster") is support enough
        # for a plain mention; a misspelling needs the listing's own support
        corroborated = supported | (pl.col("__lnone") & pl.col("__capitalised"))
        # nobody obfuscates an ordinary word: only plain mentions (a native name too: "코치" is
        # a sports coach as well as Coach; a name in the description) and near misses of
        # ambiguous words (and edits of a first letter) need support
        kind_now = pl.col("kind")
        needs = (
            pl.when(kind_now.is_in(["exact", "alias", "native", "description"]))
            .then(corroborated)
            .when(kind_now.is_in(["typo", "glued"]))
            .then(supported)
            .otherwise(pl.lit(True))
        )
        # a name a description compares with ("works like Dyson") only beside a counterfeit
        # phrase
        usable = (
            pl.col("__oph").is_null()
            & (~pl.col("ambiguous") | needs)
            & ((kind_now != "compared") | (pl.col("text_strong_phrases") > 0))
        )
        suppressed = (
            cand.filter(~usable & pl.col("__oph").is_not_null())
            .sort(["__tid", "pos", "n", "form", "__oph"])
            .group_by("__tid", maintain_order=True)
            .agg(
                pl.format(
                    'brand word "{}" used as ordinary word ("{}")',
                    pl.col("surface"),
                    pl.col("__oph"),
                )
                .first()
                .alias("__oreason")
            )
        )
        best = (
            cand.select(
                "__tid",
                "surface",
                "form",
                "brand",
                "kind",
                "edits",
                "__accessory",
                "pos",
                pl.col("kind").replace_strict(KIND_RANK, return_dtype=pl.Int32).alias("__rank"),
                (-pl.col("n").cast(pl.Int32)).alias("__longest"),
                usable.alias("__usable"),
            )
            .filter("__usable")
            .sort(["__tid", "__rank", "edits", "__longest", "pos", "brand", "surface"])
            .filter(pl.col("__tid").is_first_distinct())
            .select("__tid", "surface", "form", "brand", "kind", "edits", "__accessory")
        )
        # the first alias of the chosen brand written plainly ("Apple iPhone 15": "iphone"),
        # which may name a product line; else the chosen name's key where it is plain
        aliases = (
            cand.filter(usable & (pl.col("kind") == "alias"))
            .select("__tid", "brand", "pos", "form")
            .sort(["__tid", "brand", "pos", "form"])
            .unique(["__tid", "brand"], keep="first", maintain_order=True)
            .rename({"form": "__akey"})
        )
        out = (
            rows.join(best, on="__tid", how="left", maintain_order="left")
            .join(suppressed, on="__tid", how="left", maintain_order="left")
            .join(aliases.drop("pos"), on=["__tid", "brand"], how="left", maintain_order="left")
        )
        out = out.with_columns(pl.col("__accessory").is_not_null().alias("text_accessory"))
        has_brand = pl.col("brand").is_not_null()
        s_brand = (
            pl.col("kind").replace_strict(KIND_SCORE, default=0.0, return_dtype=pl.Float64)
            - pl.when(pl.col("edits") >= 2).then(0.05).otherwise(0.0)
        ).fill_null(0.0) * pl.when(pl.col("text_accessory")).then(0.2).otherwise(1.0)
        strong = pl.col("text_strong_phrases") > 0
        s_strong = pl.when(strong & has_brand).then(0.95).when(strong).then(0.15).otherwise(0.0)
        weak = pl.col("text_weak_phrases").cast(pl.Float64)
        s_weak = (
            pl.when(has_brand)
            .then((0.15 * weak).clip(0, 0.3))
            .otherwise((0.05 * weak).clip(0, 0.1))
        )
        mismatch = (
            has_brand
            & pl.col("__declared").is_not_null()
            & (pl.col("__declared") != pl.col("brand"))
        )
        s_mismatch = pl.when(mismatch).then(0.5).otherwise(0.0)
        raw = 1 - (1 - s_brand) * (1 - s_strong) * (1 - s_weak) * (1 - s_mismatch)
        damp = pl.when((pl.col("text_legit") > 0) & ~strong).then(0.7).otherwise(1.0)
        note = pl.col("kind").replace_strict(
            {k: v for k, v in KIND_NOTE.items() if k != "typo"},
            default=None,
            return_dtype=pl.String,
        )
        typo_note = pl.format(
            "{} edit{}",
            pl.col("edits"),
            pl.when(pl.col("edits") == 1).then(pl.lit("")).otherwise(pl.lit("s")),
        )
        mention = (
            pl.when(pl.col("kind").is_in(["exact", "native"]))
            .then(pl.format('title mentions brand "{}"', pl.col("brand")))
            # another name of the brand, a model name included: the reviewer sees which
            .when(pl.col("kind") == "alias")
            .then(pl.format('title mentions "{}" (brand "{}")', pl.col("surface"), pl.col("brand")))
            .when(pl.col("kind").is_in(DESCRIPTION_KINDS))
            .then(
                pl.format(
                    'description mentions "{}" (brand "{}")', pl.col("surface"), pl.col("brand")
                )
            )
            .otherwise(
                pl.format(
                    'title "{}" ~ brand "{}" ({})',
                    pl.col("surface"),
                    pl.col("brand"),
                    pl.when(pl.col("kind") == "typo").then(typo_note).otherwise(note),
                )
            )
        )
        reasons = reason_list(
            pl.when(has_brand).then(mention),
            pl.when(strong).then(pl.format('counterfeit phrase "{}"', pl.col("__strong1"))),
            pl.when(pl.col("text_weak_phrases") > 0).then(
                pl.format('suggestive phrase "{}"', pl.col("__weak1"))
            ),
            pl.col("__accessory"),
            pl.when(mismatch).then(
                pl.format(
                    'declared brand "{}" but title says "{}"', pl.col("__declared"), pl.col("brand")
                )
            ),
            pl.col("__oreason"),
        )
        scored = out.select(
            "__tid",
            (raw * damp).clip(0.0, 1.0).alias("text_score"),
            reasons.alias("text_reasons"),
            pl.col("brand").alias("text_brand"),
            pl.col("kind").alias("text_match"),
            pl.col("edits").cast(pl.Int32).alias("text_edits"),
            "text_strong_phrases",
            "text_weak_phrases",
            "text_legit",
            "text_accessory",
            pl.when(has_brand & pl.col("__declared").is_not_null())
            .then(mismatch)
            .alias("text_brand_mismatch"),
            "text_item",
            "text_item_share",
            "text_condition",
            # the name as a key where the title writes it plainly: the price filter prices a
            # product line's alias ("Apple Watch") with its own rows
            # (in the singular: "Apple Watches" is the "applewatch" line)
            pl.coalesce("__akey", pl.when(pl.col("kind").is_in(PLAIN_KINDS)).then(pl.col("form")))
            .replace(self.plural_base_)
            .alias("text_key"),
        )
        return scored.drop("__tid")
