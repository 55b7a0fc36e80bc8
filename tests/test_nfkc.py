"""The NFKC shortcut: texts that hold no character NFKC could change are left as they are,
and the result is always the normaliser's own."""

from __future__ import annotations

import unicodedata

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.contacts import nfkc, nfkc_unstable

#: texts of every kind a listing holds: fullwidth digits, ligatures, decomposed accents,
#: Hangul jamo, circled and superscript digits, compatibility ideographs, emoji, Arabic
#: presentation forms, a lone combining mark
SAMPLES = [
    "WeChat: lee_shop88",
    "ＷｅＣｈａｔ：ｌｅｅ８８",
    "+８６ １３８ ００１３ ８０００",
    "ﬁne ﬂower",
    "cafe\u0301",
    "café",
    "\u1100\u1161\u11a8",
    "①②③ x² ㎏ ™ ℡",
    "\uf900 豈 \u2f00",
    "🔥✅⭐ 【HOT】 ~ ->",
    "\ufefb\ufe8d",
    "\u0301 alone",
    "Привет мир, ελληνικά, עברית, ไทย",
    "",
]


def test_nfkc_equals_the_normaliser_on_listing_texts() -> None:
    texts = pl.Series([*SAMPLES, None])
    want = [None if t is None else unicodedata.normalize("NFKC", t) for t in texts.to_list()]
    assert nfkc(texts).to_list() == want


def test_nfkc_leaves_its_input_untouched() -> None:
    texts = pl.Series(["ＷｅＣｈａｔ", "plain"])
    nfkc(texts)
    assert texts.to_list() == ["ＷｅＣｈａｔ", "plain"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(st.characters(exclude_categories=["Cs"]), max_size=12), max_size=8))
def test_nfkc_equals_the_normaliser_on_any_text(texts: list[str]) -> None:
    assert nfkc(pl.Series(texts, dtype=pl.String)).to_list() == [
        unicodedata.normalize("NFKC", t) for t in texts
    ]


def test_every_text_outside_the_class_is_already_normal() -> None:
    """Every character outside the class, alone and after each letter that starts a canonical
    pair, is left alone by NFKC: the shortcut never skips a text that would change."""
    stable = pl.Series([chr(c) for c in range(0x80, 0x3400) if not 0xD800 <= c <= 0xDFFF])
    stable = stable.filter(~stable.str.contains(nfkc_unstable()))
    for prefix in ("", "e", "A", "\u1100", "\u3046"):
        texts = prefix + stable
        assert (texts.str.normalize("NFKC") == texts).all()
