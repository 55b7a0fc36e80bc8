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
    sigma; mathematical "𝐈" looks like "l", NFKC and lower case make it "i"), each with the
    ASCII letter it looks like: titles are read with these mapped before NFKC. Letters of an
    alphabet (Cyrillic "Н") are kept: their words are words of that script. Fullwidth forms
    of ASCII letters are kept too: they are the letter itself, written wide ("ＧＵＣＣＩ" is
    "gucci" in fullwidth characters, not a misspelt "guccl")."""
    out = {}
    for c in confusables():
        kept = unicodedata.normalize("NFKC", c)
        fullwidth = "\uff01" <= c <= "\uff5e"
        if kept == c or fullwidth or not unicodedata.category(c).startswith("L"):
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


@functools.cache
def _ascii_capital_lookalikes() -> tuple[str, ...]:
    """The ASCII letters among :func:`capital_lookalikes` ("i": its capital reads "l")."""
    return tuple(c for c in capital_lookalikes() if c.isascii())


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
    if form.isascii() and not any(c in form for c in _ascii_capital_lookalikes()):
        return []
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
    if text.isascii():
        # NFD leaves ASCII as it is, so each character's skeleton is its own
        return text.translate(ascii_skeletons())
    mapped = unicodedata.normalize("NFD", text).translate(_prototypes())
    return unicodedata.normalize("NFD", mapped).translate(_combining_marks())


@functools.cache
def ascii_skeletons() -> dict[int, str]:
    """The skeleton of each ASCII character that has another ("m" is "rn", "I" is "l")."""
    table = _prototypes()
    marks = _combining_marks()
    out = {}
    for cp in range(128):
        seen = unicodedata.normalize("NFD", table.get(cp, chr(cp))).translate(marks)
        if seen != chr(cp):
            out[cp] = seen
    return out


@functools.cache
def _prototypes() -> dict[int, str]:
    """:func:`confusables` as a ``str.translate`` table (each character by its prototype in one
    pass in C: forms are read a few hundred thousand times a run)."""
    return {ord(c): prototype for c, prototype in confusables().items()}


@functools.cache
def _combining_marks() -> dict[int, None]:
    """A ``str.translate`` table deleting every character of a non-zero canonical combining
    class (what :func:`unicodedata.combining` reports)."""
    return {cp: None for cp in range(0x110000) if unicodedata.combining(chr(cp))}


#: a Latin letter's Unicode name: its base letter, then what sets it apart (a hook, stroke,
#: tilde or dot; a small capital, a dotless or a script form)
_MARKED_LATIN = re.compile(
    r"LATIN (?:SMALL |CAPITAL )?LETTER (?:SMALL CAPITAL |DOTLESS |SCRIPT )?([A-Z])(?: WITH .+)?"
)


@functools.lru_cache(maxsize=4096)
def _base_letter(c: str) -> str:
    """The base letter of a marked Latin letter, by its Unicode name ("ƫ" LATIN SMALL LETTER T
    WITH PALATAL HOOK is "t", "ᴍ" LATIN LETTER SMALL CAPITAL M is "m"); others unchanged."""
    if c.isascii() or not c.isalpha():
        return c
    found = _MARKED_LATIN.fullmatch(unicodedata.name(c, ""))
    return found.group(1).lower() if found else c


@functools.lru_cache(maxsize=65536)
def visual_reading(form: str) -> str:
    """What a (lower-case) form looks like in plain letters: marked Latin letters as their base
    letter (accents, hooks, strokes, small capitals), then the UTS #39 skeleton, lower case.
    Unlike :func:`skeleton` it is compared by edit distance, with a key's own reading: a
    look-alike letter and a typo together ("onegɑ" for Omega, "ⱴalvoliǹe" for Valvoline) are
    one near miss there.

    >>> visual_reading("onegɑ"), visual_reading("omega"), visual_reading("ⱴalvoliǹe")
    ('onega', 'ornega', 'valvoline')
    """
    based = "".join(_base_letter(c) for c in unicodedata.normalize("NFC", form))
    return skeleton(based).lower()


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
#: scripts whose names are found as substrings, not as words: Chinese, Japanese and Thai are
#: written without spaces between words, and Korean attaches particles to names ("롤렉스가");
#: with the katakana long vowel mark (U+30FC), which is of no one script ("サブマリーナー")
CJK_CLASS = r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}\p{Thai}\u30fc]"
#: separators between two characters of those scripts that the native text drops, so that
#: "ルイ・ヴィトン", "ルイ ヴィトン" and "ルイヴィトン" read alike, "&" too (applied twice: the
#: pattern consumes the character after the separator, and a one-character run may sit
#: between two separators)
NATIVE_JOIN = f"({CJK_CLASS})[ \\t\\n\\r\\x0b\\x0c\u30fb\u00b7=&]+({CJK_CLASS})"
#: Arabic letter variants folded to one letter, as Arabic search engines do (Lucene's
#: ArabicNormalizer): alef wasla, alef maksura -> yeh, teh marbuta -> heh, Persian kaf and yeh,
#: and the tatweel (a stretching stroke) dropped; hamza forms and diacritics are combining marks,
#: already stripped by folding
SCRIPT_FOLD: dict[str, str] = {
    "\u0671": "\u0627",
    "\u0649": "\u064a",
    "\u0629": "\u0647",
    "\u06a9": "\u0643",
    "\u06cc": "\u064a",
    "\u0640": "",
}
_SCRIPT_FOLD_TABLE = str.maketrans(SCRIPT_FOLD)
#: combining marks that folding keeps: they are letters of their script, not accents (kana
#: voicing marks: "レゴ" is not "レコ"; Thai vowels and tone marks: "โซนี่" is not "โซน", zone)
KEPT_MARKS = "\u3099\u309a\u0e31\u0e34-\u0e3a\u0e47-\u0e4e"
#: the combining marks folding strips (accents), one class both regex engines read alike
STRIPPED_MARKS = f"[^\\P{{Mn}}{KEPT_MARKS}]"
_KEPT = {
    "\u3099",
    "\u309a",
    "\u0e31",
    *map(chr, range(0x0E34, 0x0E3B)),
    *map(chr, range(0x0E47, 0x0E4F)),
}
#: characters kept inside phrases ("1:1", "AAA+", "b/u", "d&g", "levi's")
#: (and combining marks: folding keeps those that are letters, Thai vowels and tone marks)
PHRASE_KEEP = r"[^\p{L}\p{M}\p{N}:+/&']+"


def fold(text: str) -> str:
    """NFKC, no zero-width characters, lower case, accents stripped (the listing side)."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if c not in ZERO_WIDTH).casefold()
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if not unicodedata.combining(c) or c in _KEPT)
    ).translate(_SCRIPT_FOLD_TABLE)


#: what the description probe folds besides case: Arabic hamza forms, letter variants and
#: diacritics (harakat), which raw descriptions write in many ways
PROBE_FOLD: dict[str, str] = {
    **SCRIPT_FOLD,
    "\u0623": "\u0627",
    "\u0625": "\u0627",
    "\u0622": "\u0627",
    "\u0624": "\u0648",
    "\u0626": "\u064a",
    **{chr(c): "" for c in range(0x064B, 0x0653)},
}
_PROBE_FOLD_TABLE = str.maketrans(PROBE_FOLD)


def probe_folded(text: str) -> str:
    """``text`` as the description probe reads it: lower case, :data:`PROBE_FOLD` applied."""
    return text.lower().translate(_PROBE_FOLD_TABLE)


#: words too common in descriptions to stand for a phrase in the description probe
PROBE_STOP = frozenset(
    {
        "with",
        "without",
        "original",
        "quality",
        "full",
        "open",
        "only",
        "same",
        "not",
        "non",
        "first",
        "top",
        "best",
        "high",
        "grade",
        "size",
        "made",
        "new",
        "the",
        "and",
        "for",
        "of",
        "to",
        "in",
        "on",
        "no",
        "box",
        "set",
        "case",
        "light",
        "real",
        "good",
        "all",
        "one",
    }
)


def probe_word(phrase: str) -> str:
    """What the description probe looks for to find ``phrase`` (lower case): its longest word
    of four or more characters that is not a very common one (:data:`PROBE_STOP`), else the
    whole phrase ("1 to 1", "no box"). A phrase of a script matched by substring is split at
    spaces and separators only (Thai marks are letters)."""
    text = phrase.lower()
    if is_cjk(text):
        words = [w for w in re.split(r"[\s\u30fb\u00b7=&]+", text) if w]
    else:
        keep = PHRASE_KEEP.replace(r"\p{L}", "\\w").replace(r"\p{M}", "").replace(r"\p{N}", "")
        words = [w for w in re.split(keep, text) if w]
    if not words:
        return ""
    if is_cjk(text):
        return max(words, key=lambda w: (len(w), w))
    good = [w for w in words if len(w) >= 4 and w not in PROBE_STOP]
    return max(good, key=lambda w: (len(w), w)) if good else " ".join(words)


def script_folded(text: str) -> str:
    """``text`` with :data:`SCRIPT_FOLD`'s letter variants folded."""
    return text.translate(_SCRIPT_FOLD_TABLE)


def is_cjk(text: str) -> bool:
    """Whether ``text`` has a character of a script matched by substring (:data:`CJK_CLASS`:
    kana, Han, Hangul, Thai)."""
    return any(
        "\u3040" <= c <= "\u30ff"
        or "\u3400" <= c <= "\u9fff"
        or "\uac00" <= c <= "\ud7af"
        or "\u0e00" <= c <= "\u0e7f"
        for c in text
    )


#: word-boundary scripts whose names take affixes in running text, by the first letter's range
_CYRILLIC, _GREEK, _ARABIC, _HEBREW = (
    ("\u0400", "\u04ff"),
    ("\u0370", "\u03ff"),
    (
        "\u0600",
        "\u06ff",
    ),
    ("\u0590", "\u05ff"),
)
#: Russian case and plural endings a foreign brand name takes ("Ролекса", "Найки", "Адидасом")
CYRILLIC_ENDINGS = ("а", "у", "ом", "е", "ы", "и", "ов", "ам", "ами", "ах")
#: endings of a name in -а/-я (declined like "Прада": "Прады", "Праде", "Праду", "Прадой")
CYRILLIC_A_ENDINGS = ("ы", "и", "е", "у", "ой", "ою", "ей")
#: Arabic proclitics written onto the next word: and, with, for, so, like, the, and their pairs
ARABIC_PREFIXES = ("ال", "و", "ب", "ل", "ف", "ك", "وال", "بال", "لل", "فال", "كال", "وب", "ول")
#: Hebrew prefixes written onto the next word: the, and, in, to, from, that, as, and pairs
HEBREW_PREFIXES = (
    "ה", "ו", "ב", "ל", "מ", "ש", "כ", "וה", "וב", "ול", "ומ", "וש", "שה", "שב", "של", "מה", "כש",
)  # fmt: skip


def inflected_keys(key: str, sig: str | None) -> list[tuple[str, str]]:
    """The forms a native brand key takes in running text of its script, with their word
    lengths: Russian case endings on the last word ("ролекса"), Arabic and Hebrew prefixes on
    the first ("ورولكس", "ורולקס"), and Greek words ending in a final sigma (titles write
    "Αντιντάς", keys are case folded to "αντιντασ"). Latin keys and keys of other scripts have
    none."""
    if not key:
        return []
    lengths = [int(x) for x in (sig or str(len(key))).split(",") if x] or [len(key)]
    first = key[0]
    out: list[tuple[str, list[int]]] = []
    if _CYRILLIC[0] <= first <= _CYRILLIC[1]:
        vowels = "аеёиоуыэюяь"
        if key[-1] in "ая":
            stem = key[:-1]
            out += [
                (stem + e, [*lengths[:-1], lengths[-1] - 1 + len(e)]) for e in CYRILLIC_A_ENDINGS
            ]
        elif key[-1] not in vowels and key[-1] not in "йь":
            out += [(key + e, [*lengths[:-1], lengths[-1] + len(e)]) for e in CYRILLIC_ENDINGS]
    elif _ARABIC[0] <= first <= _ARABIC[1]:
        out += [(p + key, [lengths[0] + len(p), *lengths[1:]]) for p in ARABIC_PREFIXES]
    elif _HEBREW[0] <= first <= _HEBREW[1]:
        out += [(p + key, [lengths[0] + len(p), *lengths[1:]]) for p in HEBREW_PREFIXES]
    elif _GREEK[0] <= first <= _GREEK[1]:
        ends, at = [], 0
        for n in lengths:
            at += n
            ends.append(at - 1)
        chars = list(key)
        changed = False
        for i in ends:
            if chars[i] == "σ":
                chars[i] = "ς"
                changed = True
        if changed:
            out.append(("".join(chars), lengths))
    return [(k, ",".join(str(n) for n in ls)) for k, ls in out if k != key]


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
