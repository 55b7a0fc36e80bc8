"""Text normalisation shared by the text filter: UTS #39 skeletons, leetspeak, phrase spacing.

Functions here work on single strings and are applied to *unique* tokens or to the lexicon,
never per listing row.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from pathlib import Path

#: Unicode's confusables (UTS #39), shipped as the consortium publishes it
CONFUSABLES_FILE = Path(__file__).resolve().parent / "data" / "confusables.txt"


@functools.cache
def confusables() -> dict[str, str]:
    """Each confusable character and its prototype (UTS #39 ``confusables.txt``)."""
    table: dict[str, str] = {}
    for line in CONFUSABLES_FILE.read_text(encoding="utf-8-sig").splitlines():
        data = line.split("#", 1)[0].strip()
        if not data:
            continue
        source, target, *_ = (part.strip() for part in data.split(";"))
        table[chr(int(source, 16))] = "".join(chr(int(c, 16)) for c in target.split())
    return table


@functools.cache
def confusables_version() -> str:
    """The Unicode version of the shipped confusables data ("17.0.0")."""
    for line in CONFUSABLES_FILE.read_text(encoding="utf-8-sig").splitlines()[:20]:
        if line.startswith("# Version:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


@functools.cache
def nfkc_lost_lookalikes() -> dict[str, str]:
    """Compatibility letters that look like an ASCII letter but that NFKC and lower case turn
    into a letter that does not (Greek lunate sigma "ϲ" looks like "c", NFKC makes it a final
    sigma; fullwidth "Ｉ" looks like "l", NFKC and lower case make it "i"), each with the ASCII
    letter it looks like: titles are read with these mapped before NFKC. Letters of an
    alphabet (Cyrillic "Н") are kept: their words are words of that script."""
    out = {}
    for c in confusables():
        kept = unicodedata.normalize("NFKC", c)
        if kept == c or not unicodedata.category(c).startswith("L"):
            continue
        seen = skeleton(c)
        read = skeleton(unicodedata.normalize("NFKC", c).lower())
        if seen.isascii() and seen.isalpha() and read.lower() != seen.lower():
            out[c] = seen
    return out


@functools.cache
def capital_lookalikes() -> dict[str, str]:
    """Small letters whose capital looks like another ASCII letter than they do (Greek "ι"
    reads "i", its capital "Ι" reads "l"), each with the capital's reading (lower case)."""
    out = {}
    for c in confusables():
        small = c.lower()
        if small == c or len(small) != 1:
            continue
        seen = skeleton(c).lower()
        if seen.isascii() and seen.isalpha() and skeleton(small).lower() != seen:
            out[small] = seen
    return out


@functools.lru_cache(maxsize=4096)
def _reads_ascii(c: str) -> bool:
    return skeleton(c).isascii()


#: at most this many letters of a form are read both ways (2 ** 4 readings)
MAX_CAPITAL_READINGS = 4


def capital_readings(form: str) -> list[str]:
    """The lower-case skeletons of a (lower-case) form with each small letter of
    :func:`capital_lookalikes` read as its own look-alike or as its capital's, other than the
    plain reading; none if it has no such letter or more than :data:`MAX_CAPITAL_READINGS`."""
    table = capital_lookalikes()
    spots = [i for i, c in enumerate(form) if c in table]
    if not spots or len(spots) > MAX_CAPITAL_READINGS:
        return []
    # every other letter must read as ASCII already (most words of other scripts fail here)
    if not all(i in spots or _reads_ascii(c) for i, c in enumerate(form)):
        return []
    out = []
    for mask in range(1, 1 << len(spots)):
        chars = list(form)
        for bit, i in enumerate(spots):
            if mask >> bit & 1:
                chars[i] = table[form[i]]
        out.append(skeleton("".join(chars)).lower())
    return out


def skeleton(text: str) -> str:
    """The UTS #39 skeleton of ``text`` (NFD, each character by its prototype, NFD again),
    with combining marks then dropped, as the filter ignores accents. Two strings that look
    alike have equal skeletons; a skeleton is lossy ("m" is "rn"), so skeletons are compared
    for equality, never by edit distance.

    >>> skeleton("gucсі") == skeleton("gucci")  # Cyrillic с and і
    True
    """
    table = confusables()
    mapped = "".join(table.get(c, c) for c in unicodedata.normalize("NFD", text))
    return "".join(c for c in unicodedata.normalize("NFD", mapped) if not unicodedata.combining(c))


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
