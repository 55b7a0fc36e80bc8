"""Regenerate ``seeds/registry/wordfreq_words.tsv.gz``: the common words of ten languages.

Every word that ``wordfreq`` counts at least once per million words (Zipf frequency >= 3.0) in
English, German, French, Spanish, Portuguese, Italian, Dutch, Polish, Russian or Turkish, folded
as the text filter folds titles (NFKC, lower case, accents stripped), letters only, two letters
or more, with its highest Zipf frequency over the ten languages and the language that gives it.

The text filter never reads one of these words as a misspelt brand (Turkish "anket" is not
Anker), and a brand name made only of words at least as common as its ``ambiguous_zipf``
(Guess, Mango, Shell) is ambiguous: a plain mention of it counts only when something
corroborates it.

The file is data built from a maintained resource, not a runtime dependency: the filter reads
it in a few milliseconds, where asking wordfreq for ten languages takes seconds. The header
records the wordfreq version, the languages and the threshold; ``tests/test_wordfreq_words.py``
checks that the shipped file is what this script writes with the installed wordfreq.

Run: ``pip install wordfreq && python -m seeds.tools.build_common_words``
"""

from __future__ import annotations

import gzip
import math
from importlib.metadata import version
from pathlib import Path

import regex

from filters.core.textops import folded

OUT = Path(__file__).resolve().parents[1] / "registry" / "wordfreq_words.tsv.gz"
LANGUAGES = ("en", "de", "fr", "es", "pt", "it", "nl", "pl", "ru", "tr")
#: once per million words
MIN_ZIPF = 3.0
RE_WORD = regex.compile(r"\p{L}{2,}")


def build() -> bytes:
    """The table as text (the same wordfreq gives the same file)."""
    import wordfreq

    best: dict[str, tuple[float, str]] = {}
    floor = 10 ** (MIN_ZIPF - 9)
    for lang in LANGUAGES:
        for word, freq in wordfreq.get_frequency_dict(lang, wordlist="best").items():
            if freq < floor:
                continue
            form = folded(word)
            if not RE_WORD.fullmatch(form):
                continue
            zipf = round(math.log10(freq) + 9, 2)
            if form not in best or zipf > best[form][0]:
                best[form] = (zipf, lang)
    header = [
        f"# wordfreq {version('wordfreq')}, wordlist 'best'; languages {','.join(LANGUAGES)}; "
        f"zipf >= {MIN_ZIPF}",
        "# built by seeds/tools/build_common_words.py: word (folded), its highest zipf frequency"
        " over the languages, that language",
        "word\tzipf\tlang",
    ]
    lines = [f"{w}\t{z:.2f}\t{lang}" for w, (z, lang) in sorted(best.items())]
    text = "\n".join(header + lines) + "\n"
    return text.encode("utf-8")


def compressed(text: bytes) -> bytes:
    """The table as shipped: gzip with no timestamp, so that the same table gives the same file."""
    return gzip.compress(text, compresslevel=9, mtime=0)


def main() -> None:
    data = compressed(build())
    OUT.write_bytes(data)
    print(f"{OUT}: {len(data):,} bytes")


if __name__ == "__main__":
    main()
