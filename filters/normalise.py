"""Text normalisation shared by the text filter: confusables, leetspeak, phrase spacing.

Functions here work on single strings and are applied to *unique* tokens or to the lexicon,
never per listing row.
"""

from __future__ import annotations

import re
import unicodedata

#: Cyrillic and Greek letters that look like Latin ones (lower case, after case folding)
CONFUSABLES: dict[str, str] = {
    # Cyrillic
    "а": "a",
    "в": "b",
    "е": "e",
    "ё": "e",
    "з": "3",
    "к": "k",
    "м": "m",
    "н": "h",
    "о": "o",
    "р": "p",
    "с": "c",
    "т": "t",
    "у": "y",
    "х": "x",
    "ѕ": "s",
    "і": "i",
    "ї": "i",
    "ј": "j",
    "һ": "h",
    "ԁ": "d",
    "ԛ": "q",
    "ԝ": "w",
    "ү": "y",
    "ɡ": "g",
    "ı": "i",
    "ℓ": "l",
    # Greek
    "α": "a",
    "β": "b",
    "ε": "e",
    "η": "n",
    "ι": "i",
    "κ": "k",
    "ν": "v",
    "ο": "o",
    "ρ": "p",
    "τ": "t",
    "υ": "u",
    "χ": "x",
    "γ": "y",
    "ω": "w",
    "μ": "u",
    "ϲ": "c",
    "ς": "c",  # NFKC turns the lunate sigma "ϲ" into a final sigma
    "ϳ": "j",
    # Latin look-alikes outside ASCII
    "ɑ": "a",
    "ɩ": "i",
    "ʀ": "r",
    "ꜱ": "s",
    "ᴄ": "c",
    "ᴏ": "o",
    "ᴜ": "u",
}
_CONFUSABLE_TABLE = str.maketrans(CONFUSABLES)

#: leetspeak digits and symbols; "1" and "|" are ambiguous (i or l): both readings are tried
LEET: dict[str, str] = {
    "0": "o",
    "1": "i",
    "3": "e",
    "4": "a",
    "5": "s",
    "7": "t",
    "8": "b",
    "9": "g",
    "@": "a",
    "$": "s",
    "€": "e",
    "©": "c",
    "®": "r",
    "!": "i",
    "|": "l",
    "£": "l",
}
_LEET_TABLE = str.maketrans(LEET)
_LEET_TABLE_L = str.maketrans({**LEET, "1": "l", "!": "l", "|": "i"})

ZERO_WIDTH = "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u034f\u180e"
ZERO_WIDTH_CLASS = "[" + "".join(f"\\u{ord(c):04x}" for c in ZERO_WIDTH) + "]"
#: characters a listing may use to mask letters of a brand ("Gu**i")
MASK_CHARS = "*•●_#?"
#: scripts written without spaces between words: native brand names are found as substrings
CJK_CLASS = r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]"
#: characters kept inside phrases ("1:1", "AAA+", "b/u", "d&g", "levi's")
PHRASE_KEEP = r"[^\p{L}\p{N}:+/&']+"


def fold(text: str) -> str:
    """NFKC, no zero-width characters, lower case, accents stripped (the listing side)."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if c not in ZERO_WIDTH).casefold()
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if not unicodedata.combining(c))
    )


def phrase_form(text: str) -> str:
    """A phrase or title as space-separated words with a space at each end, so that phrase
    search on it respects word boundaries (" ua " does not occur in " usual ")."""
    words = re.sub(PHRASE_KEEP.replace(r"\p{L}", "\\w").replace(r"\p{N}", ""), " ", fold(text))
    return " " + " ".join(words.split()) + " "


def is_cjk(text: str) -> bool:
    return any(
        "\u3040" <= c <= "\u30ff" or "\u3400" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7af"
        for c in text
    )


def skeleton(token: str) -> str | None:
    """The ASCII reading of a token written with look-alike letters, or None if it has none
    (or still has non-ASCII letters after mapping: it is then a real word of another script)."""
    if token.isascii():
        return None
    mapped = token.translate(_CONFUSABLE_TABLE)
    return mapped if mapped.isascii() and mapped.isalnum() else None


def leet_readings(token: str) -> list[str]:
    """Letter readings of a token mixing letters with leetspeak digits/symbols ("r0lex")."""
    if not any(c.isalpha() for c in token) or not any(c in LEET for c in token):
        return []
    readings = {token.translate(_LEET_TABLE), token.translate(_LEET_TABLE_L)}
    return sorted(r for r in readings if r.isalpha())


def is_masked(token: str) -> bool:
    """Letters with some masked ("gu**i"): at least two visible letters, at most half the
    letters masked, nothing else."""
    masked = sum(c in MASK_CHARS for c in token)
    visible = sum(c.isalpha() for c in token)
    return 0 < masked <= visible and visible >= 2 and masked + visible == len(token)


def mask_pattern(token: str) -> re.Pattern[str] | None:
    """A regex for a masked token ("gu**i" -> ^gu..i$), see :func:`is_masked`; None for
    anything else."""
    if not is_masked(token):
        return None
    return re.compile("^" + "".join("." if c in MASK_CHARS else re.escape(c) for c in token) + "$")
