"""Python twins of the polars string operations the filters use, for scoring one listing.

A crawler scoring one listing at a time cannot afford a query plan per call (a polars query
costs about 0.1-1 ms of fixed overhead, the text filter runs dozens). These functions give the
same results as the polars expressions they are named after, on one string, so a filter's
``score_record`` can mirror its vectorised ``score``. ``tests/test_record_path.py`` checks each
twin against polars and every ``score_record`` against the batch path.

Regular expressions use the ``regex`` module: it has the Unicode classes (``\\p{L}``, scripts)
that polars' Rust engine has and ``re`` lacks.
"""

from __future__ import annotations

import math
import threading
import unicodedata
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from filters.core.normalise import (
    CJK_CLASS,
    NATIVE_JOIN,
    PHRASE_KEEP,
    STRIPPED_MARKS,
    ZERO_WIDTH_CLASS,
    script_folded,
)

#: the end of a spaced-letters match that is the first letter of a hyphenated word
SPACED_NEXT_WORD = r" \p{L}-$"


class LazyPattern:
    """A ``regex`` pattern compiled on first use: importing ``regex`` takes 20 ms, which a
    batch run (the price filter imports this module) never needs."""

    _lock = threading.Lock()

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._compiled: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._compiled is None:
            import regex

            with self._lock:
                if self._compiled is None:
                    self._compiled = regex.compile(self.pattern)
        return getattr(self._compiled, name)


RE_PHRASE_KEEP = LazyPattern(PHRASE_KEEP)
RE_CJK_RUN = LazyPattern(f"({CJK_CLASS}+)")
RE_NATIVE_JOIN = LazyPattern(NATIVE_JOIN)
RE_MN = LazyPattern(STRIPPED_MARKS)
RE_MARKS_BUT_HIDDEN = LazyPattern("[^\\P{Mn}\u034f]")
RE_ZERO_WIDTH = LazyPattern(ZERO_WIDTH_CLASS)
RE_NOT_LN = LazyPattern(r"[^\p{L}\p{N}]")


#: what ``str.strip_chars()`` strips (Unicode White_Space; Python's ``str.strip`` also strips
#: the separators U+001C-U+001F)
WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def strip_chars(text: str) -> str:
    """``str.strip_chars()``."""
    return text.strip(WHITESPACE)


RE_ALPHA_CHAR = LazyPattern(r"\p{Alphabetic}")


def titlecase(text: str) -> str:
    """``str.to_titlecase()``: a character after a non-alphabetic one (or first) is title
    cased, every other one lower cased ("r0lex" -> "R0Lex")."""
    out = []
    start = True
    for c in text:
        out.append(c.title() if start else c.lower())
        start = RE_ALPHA_CHAR.match(c) is None
    return "".join(out)


def folded(text: str) -> str:
    """:func:`filters.text.folded`: NFKC, zero-width removed, lower case, accents stripped."""
    out = RE_ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", text)).lower()
    out = RE_MN.sub("", unicodedata.normalize("NFKD", out))
    return script_folded(unicodedata.normalize("NFC", out))


def native_text(norm: str) -> str:
    """:func:`filters.text.native_text`: separators between two characters of the scripts
    matched by substring dropped."""
    joined = RE_NATIVE_JOIN.sub(r"\1\2", RE_NATIVE_JOIN.sub(r"\1\2", norm))
    return RE_SPACES.sub(" ", joined)


RE_SPACES = LazyPattern(" {2,}")


def native_form(name: str) -> str:
    """A native brand name (or a word holding one) as :func:`native_text` gives it in a
    normalised title ("ルイ・ヴィトン" -> "ルイヴィトン", "오메가3" -> "오메가 3")."""
    return strip_chars(native_text(RE_CJK_RUN.sub(r" \1 ", folded(name)))).strip(" ")


def phrase_text(text: str) -> str:
    """:func:`filters.text.phrase_text`."""
    return " " + strip_chars(RE_PHRASE_KEEP.sub(" ", folded(text))) + " "


def brand_key_expr(value: str | None) -> str | None:
    """The declared-brand key of the filters: lower case, NFKD, letters and digits only."""
    if value is None:
        return None
    return RE_NOT_LN.sub("", unicodedata.normalize("NFKD", value.lower()))


ASCII_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def probe_pattern(words: Sequence[str]) -> str:
    """One regular expression finding any of ``words`` in text: words that start (end) with
    an ASCII letter, digit or ``_`` must start (end) there, the others may sit anywhere (a
    name of a script without spaces, or a Cyrillic name with a case ending)."""
    import re

    def one(w: str) -> str:
        left = r"(?-u:\b)" if w[0] in ASCII_WORD else ""
        right = r"(?-u:\b)" if w[-1] in ASCII_WORD else ""
        return left + re.escape(w).replace("\\ ", " ") + right

    return "|".join(one(w) for w in sorted(set(words)) if w)


class WordProbe:
    """Whether a text holds one of ``words`` as :func:`probe_pattern` finds them (with the
    regex's ASCII word boundaries), without a regex of thousands of alternatives: the words
    are indexed by their first two characters."""

    def __init__(self, words: Sequence[str]) -> None:
        self.index: dict[str, list[tuple[str, bool, bool]]] = {}
        self.single: dict[str, list[tuple[str, bool, bool]]] = {}
        for w in sorted({w for w in words if w}):
            entry = (w, w[0] in ASCII_WORD, w[-1] in ASCII_WORD)
            if len(w) == 1:
                self.single.setdefault(w, []).append(entry)
            else:
                self.index.setdefault(w[:2], []).append(entry)

    def search(self, text: str) -> bool:
        n = len(text)
        index, single = self.index, self.single
        for i in range(n):
            found = index.get(text[i : i + 2], ()) if i + 1 < n else ()
            for w, left, right in (*found, *single.get(text[i], ())):
                if not text.startswith(w, i):
                    continue
                if left and i > 0 and text[i - 1] in ASCII_WORD:
                    continue
                end = i + len(w)
                if right and end < n and text[end] in ASCII_WORD:
                    continue
                return True
        return False


class PatternSet:
    """Non-overlapping multi-pattern search with the semantics of polars' ``extract_many`` and
    ``replace_many`` (Aho-Corasick "standard"): scanning left to right, the match that ends
    first is taken (the longest of those ending at the same place), and the scan resumes where
    it ended."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = tuple(dict.fromkeys(p for p in patterns if p))
        self._order = {p: i for i, p in enumerate(self.patterns)}
        # a space-padded phrase can only occur where its first word is a word of the text:
        # index those by that word, so a text is searched only for the phrases it may hold
        self.by_first_word: dict[str, list[str]] = {}
        self.ascii_rest: list[str] = []
        self.other_rest: list[str] = []
        for p in self.patterns:
            if p.startswith(" ") and p.endswith(" ") and p.strip():
                self.by_first_word.setdefault(p.split()[0], []).append(p)
            elif p.isascii():
                self.ascii_rest.append(p)
            else:
                self.other_rest.append(p)

    def _candidates(self, text: str) -> list[str]:
        out = list(self.ascii_rest)
        if not text.isascii():
            out += self.other_rest
        index = self.by_first_word
        if index:
            for word in set(text.split()):
                out += index.get(word, ())
        return out

    def _matches(self, text: str) -> list[tuple[int, int]]:
        occ: list[tuple[int, int]] = []
        for p in self._candidates(text):
            i = text.find(p)
            while i >= 0:
                occ.append((i + len(p), i))
                i = text.find(p, i + 1)
        if not occ:
            return []
        # earliest end first; at the same end the longest (earliest start)
        occ.sort()
        out: list[tuple[int, int]] = []
        resume = 0
        for end, start in occ:
            if start >= resume:
                out.append((start, end))
                resume = end
        return out

    def extract(self, text: str) -> list[str]:
        return [text[s:e] for s, e in self._matches(text)]

    def extract_leftmost(self, text: str) -> list[str]:
        """``extract_many(..., leftmost=True)``: leftmost-first, non-overlapping (of the
        matches starting first, the pattern listed first; the scan resumes where it ended)."""
        order = self._order
        occ: list[tuple[int, int, str]] = []
        for p in self._candidates(text):
            i = text.find(p)
            while i >= 0:
                occ.append((i, order[p], p))
                i = text.find(p, i + 1)
        occ.sort()
        out, resume = [], 0
        for start, _, p in occ:
            if start >= resume:
                out.append(p)
                resume = start + len(p)
        return out

    def replace(self, text: str, with_: str) -> str:
        parts, last = [], 0
        for s, e in self._matches(text):
            parts += [text[last:s], with_]
            last = e
        parts.append(text[last:])
        return "".join(parts)


def pl_round(x: float, decimals: int) -> float:
    """``Expr.round(decimals)``: scaled, rounded half to even, scaled back (so
    ``round(2.325, 2)`` is 2.32 in Python but 2.33 in polars)."""
    if not math.isfinite(x):
        return x
    scale = 10.0**decimals
    return round(x * scale) / scale


def pl_str(x: float) -> str:
    """A Float64 cast to String, as ``pl.format`` prints it."""
    text = repr(float(x))
    if text == "nan":
        return "NaN"
    if "e-" in text:
        mantissa, exponent = text.split("e-")
        if int(exponent) <= 5:
            # polars prints numbers from 1e-5 in positional notation ("0.00001")
            return format(Decimal(text), "f")
        # and smaller ones with an exponent of no leading zero ("1.5e-7")
        return f"{mantissa}e-{int(exponent)}"
    return text
