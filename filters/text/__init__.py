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
running text gives them (:func:`filters.core.normalise.inflected_keys`), never by near misses.

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

The package, one concept per module; each name below is importable from ``filters.text``:

- :mod:`filters.text.policy`: match kinds and scores, reason notes, the token class, limits;
- :mod:`filters.text.forms`: the folded, native and phrase forms of text (polars);
- :mod:`filters.text.lexicon`: the lexicon compiled from the registry (:meth:`TextFilter.fit`);
- :mod:`filters.text.tokens`: normalised titles, tokens and token runs;
- :mod:`filters.text.matching`: exact and non-exact brand mentions;
- :mod:`filters.text.phrases`: counterfeit, suggestive and legitimate phrases; accessories;
- :mod:`filters.text.scoring`: descriptions, corroboration, the score and its reasons;
- :mod:`filters.text.filter`: :class:`TextFilter`;
- :mod:`filters.text.record`: the one-listing twin :meth:`TextFilter.score_record` uses.

Unicode folding, skeletons and the Python twins of the polars string operations are shared
with the registry and the other filters: :mod:`filters.core.normalise` and
:mod:`filters.core.textops`.
"""

from filters.text.filter import (
    TextFilter,
)
from filters.text.forms import (
    REGEX_PROBE_MIN,
    ambiguous_keys,
    ambiguous_surfaces,
    folded,
    glued_core,
    holding_any,
    name_words,
    native_text,
    phrase_text,
    plural_key,
)
from filters.text.lexicon import (
    MatchMemo,
)
from filters.text.phrases import (
    PhraseHits,
)
from filters.text.policy import (
    AMBIGUOUS_ZIPF,
    DESCRIPTION_CHARS,
    KIND_NOTE,
    KIND_RANK,
    KIND_SCORE,
    PLAIN_KINDS,
    TOKEN,
)
from filters.text.record import (
    TextRecordScorer,
)

__all__ = [
    "AMBIGUOUS_ZIPF",
    "DESCRIPTION_CHARS",
    "KIND_NOTE",
    "KIND_RANK",
    "KIND_SCORE",
    "PLAIN_KINDS",
    "REGEX_PROBE_MIN",
    "TOKEN",
    "MatchMemo",
    "PhraseHits",
    "TextFilter",
    "TextRecordScorer",
    "ambiguous_keys",
    "ambiguous_surfaces",
    "folded",
    "glued_core",
    "holding_any",
    "name_words",
    "native_text",
    "phrase_text",
    "plural_key",
]
