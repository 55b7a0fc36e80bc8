"""A slow, per-title reference for a restricted part of ``TextFilter``: which brand a title
names and how it is written.

It is written independently of ``filters.text`` and ``filters.core.normalise`` and is a true
specification only for titles in this subset (the differential test checks the preconditions):

* a title is words separated by single spaces;
* a word is either a filler (an ordinary word of the language, never a brand) or a one-word
  protected brand name that is not an ordinary word, written in any letter case, either plainly
  or hidden by exactly one of: look-alike letters of another script (``LOOKALIKES``), fullwidth
  forms, or one zero-width character inside it (``ZERO_WIDTH``);
* at most one word per title is hidden, and no brand occurs twice;
* no run of up to three adjacent words spells or nearly spells a multi-word brand.

Specification: a word names a brand when, after removing zero-width characters, reading
fullwidth forms and look-alike letters as the Latin letters they imitate and ignoring case, it
equals the brand's key. The mention reported is the most suspicious one (look-alike, then
fullwidth, then zero-width, then plain), the first in the title among equals.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Latin letter -> look-alike letters (Cyrillic and Greek), lower case
LOOKALIKES: dict[str, str] = {
    "a": "аα",
    "c": "с",
    "e": "е",
    "i": "іι",
    "j": "ј",
    "k": "кκ",
    "o": "оο",
    "p": "рρ",
    "s": "ѕ",
    "x": "хχ",
    "y": "у",
}
_READ_AS_LATIN = {look: latin for latin, looks in LOOKALIKES.items() for look in looks}
#: invisible characters a counterfeiter puts inside a brand name
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
#: most suspicious first
RANK = {"confusable": 0, "fullwidth": 1, "zero_width": 2, "exact": 3}


def to_fullwidth(word: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in word)


def read_word(word: str) -> tuple[str, str]:
    """(the word as plain lower-case Latin letters, how it was written)."""
    kind = "exact"
    if any(c in ZERO_WIDTH for c in word):
        kind = "zero_width"
        word = "".join(c for c in word if c not in ZERO_WIDTH)
    if any("\uff01" <= c <= "\uff5e" for c in word):
        kind = "fullwidth"
        word = "".join(chr(ord(c) - 0xFEE0) if "\uff01" <= c <= "\uff5e" else c for c in word)
    word = word.lower()
    if any(c in _READ_AS_LATIN for c in word):
        kind = "confusable"
        word = "".join(_READ_AS_LATIN.get(c, c) for c in word)
    return word, kind


def reference_mention(title: str, brands: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(brand, kind) of the mention a title in the subset makes, or (None, None).

    ``brands`` maps a brand key (lower-case letters) to the brand's display name.
    """
    found: list[tuple[int, int, str, str]] = []
    for pos, word in enumerate(title.split(" ")):
        plain, kind = read_word(word)
        if plain in brands:
            found.append((RANK[kind], pos, brands[plain], kind))
    if not found:
        return None, None
    _, _, brand, kind = min(found)
    return brand, kind
