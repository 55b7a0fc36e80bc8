"""Text evidence from maintained reference data: the common words of ten languages (wordfreq),
Unicode's confusables (UTS #39) and the typo families of dnstwist, each checked on data the
project does not write, and on both the batch and the one-listing paths."""

from __future__ import annotations

import gzip
import random
import unicodedata
from typing import Any

import polars as pl
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from filters.core.normalise import confusables, confusables_version, skeleton, visual_reading
from filters.text import TextFilter, ambiguous_keys, ambiguous_surfaces
from pipelines.registry import Registry

LANGUAGES = ("en", "de", "fr", "es", "pt", "it", "nl", "pl", "ru", "tr")


@pytest.fixture(scope="module")
def text_filter(seed_registry: Registry) -> TextFilter:
    return TextFilter().fit(seed_registry)


def both(f: TextFilter, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row's text columns from the batch path, after checking the one-listing path gives
    the same."""
    frame = pl.DataFrame(rows, schema={k: pl.String for k in rows[0]})
    batch = f.score(frame).collect().rows(named=True)
    for row, got in zip(rows, batch, strict=True):
        alone = f.score_record(row)
        for column, value in alone.items():
            assert got[column] == value, (row, column, got[column], value)
    return batch


# ---------------------------------------------------------------- common words (wordfreq)


def test_shipped_word_table_is_what_the_build_script_writes(seed_registry: Registry) -> None:
    """The table is derived data: rebuilt from the installed wordfreq, byte for byte."""
    pytest.importorskip("wordfreq")
    from seeds.tools.build_common_words import OUT, build, compressed

    assert OUT.read_bytes() == compressed(build())


def test_word_table_records_its_source() -> None:
    from seeds.tools.build_common_words import OUT

    header = gzip.decompress(OUT.read_bytes()).decode("utf-8").splitlines()[0]
    assert header.startswith("# wordfreq ") and "zipf >= 3.0" in header
    assert all(lang in header for lang in LANGUAGES)


@pytest.mark.parametrize(
    ("title", "language"),
    [
        ("Anket formu 50 adet", "tr"),
        ("Pada deszcz cały dzień", "pl"),
        ("Logisch denken lernen Buch", "de"),
        ("Tênis leves para corrida", "pt"),
        ("Prado verde con flores", "es"),
    ],
)
def test_ordinary_words_of_ten_languages_are_never_typos(
    text_filter: TextFilter, title: str, language: str
) -> None:
    [row] = both(text_filter, [{"title": title}])
    assert row["text_brand"] is None, (language, row["text_reasons"])


def test_a_registry_adds_its_own_common_words(tmp_path: Any, seed_registry: Registry) -> None:
    from pipelines.registry import load_registry

    (tmp_path / "brands.csv").write_text(
        "brand,category,reference_price,aliases\nGucci,bags,1800,\nZorblax,toys,40,\n",
        encoding="utf-8",
    )
    plain = TextFilter().fit(load_registry(tmp_path))
    assert both(plain, [{"title": "Guccy bag"}])[0]["text_brand"] == "Gucci"
    (tmp_path / "common_words.txt").write_text("# ours\nGuccy\nZorblax\n", encoding="utf-8")
    registry = load_registry(tmp_path)
    assert "guccy" in registry.lexicon.common_words
    own = TextFilter().fit(registry)
    assert both(own, [{"title": "Guccy bag"}])[0]["text_brand"] is None
    # a name made of a registry's own words is ambiguous
    assert "zorblax" in ambiguous_keys(registry)


def test_names_made_only_of_common_words_are_ambiguous(seed_registry: Registry) -> None:
    keys = ambiguous_keys(seed_registry)
    for ordinary in ("apple", "shell", "coach", "boss", "omega", "thenorthface"):
        assert ordinary in keys
    for name in ("gucci", "prada", "rolex", "burberry", "balenciaga", "dolcegabbana"):
        assert name not in keys
    words = pl.DataFrame(
        {"word": ["guess", "mango", "dove", "gucci"], "zipf": [5.2, 3.9, 6.0, 3.3]}
    )
    assert ambiguous_surfaces(["Guess", "Mango", "Dove", "Gucci", "D&G"], words) == {
        "Guess",
        "Mango",
        "Dove",
    }


def test_an_ambiguous_name_needs_corroboration_written_plainly_or_misspelt(
    text_filter: TextFilter,
) -> None:
    rows = both(
        text_filter,
        [
            {"title": "Apple scented candle", "category": "home"},
            {"title": "apple iphone 15 128gb", "category": None},  # two names of one brand
            {"title": "Samsnug Galaxy S24", "category": "electronics"},
            {"title": "Samsnug phone case", "category": "home"},
            {"title": "Adidass sneakers", "category": "shoes"},
            {"title": "Adidass sneakers", "category": None},
        ],
    )
    assert [r["text_brand"] for r in rows] == [None, "Apple", "Samsung", None, "Adidas", None]
    assert rows[2]["text_match"] == "typo"


# ---------------------------------------------------------------- dnstwist typo families


@pytest.mark.parametrize(
    ("title", "category", "brand", "kind"),
    [
        ("urberry scarf", "fashion", "Burberry", "typo"),  # omission of the first letter
        ("Xburberry scarf", "fashion", "Burberry", "typo"),  # insertion before it
        ("Vurberry scarf", "fashion", "Burberry", "typo"),  # keyboard neighbour of the first
        ("Bruberry scarf", "fashion", "Burberry", "typo"),  # transposition
        ("burberry5 scarf", "fashion", "Burberry", "glued"),  # a digit glued to the end
        ("Burbeery scarf", None, "Burberry", "typo"),
        ("Gicci bag", None, "Gucci", "typo"),  # a bit flip (u ^ 0x1c), a vowel swap
    ],
)
def test_typo_families_are_read_at_every_position(
    text_filter: TextFilter, title: str, category: str | None, brand: str, kind: str
) -> None:
    [row] = both(text_filter, [{"title": title, "category": category}])
    assert (row["text_brand"], row["text_match"]) == (brand, kind), row["text_reasons"]


def test_an_edit_of_the_first_letter_needs_corroboration(text_filter: TextFilter) -> None:
    # a name one edit from another at its first letter is often another name ("Pucci" is a
    # common word of the list, Emilio Pucci's brand): the listing must support the reading
    rows = both(
        text_filter,
        [
            {"title": "Hucci silk scarf", "category": None},
            {"title": "Hucci silk scarf", "category": "toys"},
            {"title": "Hucci bag replica", "category": None},
            {"title": "Hucci shoulder bag", "category": "bags"},
            {"title": "Pucci bag replica", "category": None},
        ],
    )
    assert [r["text_brand"] for r in rows] == [None, None, "Gucci", "Gucci", None]


def test_dnstwist_variants_are_read_on_both_paths(text_filter: TextFilter) -> None:
    """Every fuzzer of dnstwist, in-process (no network), on a few brands; the one-listing
    path agrees with the batch path on every variant."""
    dnstwist = pytest.importorskip("dnstwist")
    rng = random.Random(3)
    rows = []
    for brand, category in (("burberry", "fashion"), ("moncler", "fashion"), ("rolex", "watches")):
        fuzzer = dnstwist.Fuzzer(f"{brand}.com")
        fuzzer.generate()
        variants = sorted(
            {p["domain"].rsplit(".", 1)[0] for p in fuzzer.permutations(unicode=True)}
        )
        for v in rng.sample(variants, min(40, len(variants))):
            rows.append({"title": f"{v} new", "category": category})
    out = both(text_filter, rows)
    found = sum(r["text_brand"] is not None for r in out)
    assert found >= 0.6 * len(rows)


# ---------------------------------------------------------------- UTS #39 look-alikes


def test_confusables_are_unicodes_file_with_its_version() -> None:
    assert confusables_version().count(".") == 2
    table = confusables()
    assert len(table) > 6000
    assert table["\u0430"] == "a" and table["m"] == "rn"  # Cyrillic a; m looks like rn


def _latin_lookalikes() -> dict[str, list[str]]:
    """Lower-case ASCII letter -> characters of other scripts UTS #39 reads as it."""
    out: dict[str, list[str]] = {}
    for source, target in confusables().items():
        letter = unicodedata.category(source).startswith("L")
        if letter and len(target) == 1 and "a" <= target <= "z" and not source.isascii():
            out.setdefault(target, []).append(source)
    return out


LOOKS = _latin_lookalikes()


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_lookalike_spelling_of_a_name_reads_as_the_name(
    text_filter: TextFilter, data: st.DataObject
) -> None:
    names = ["gucci", "prada", "rolex", "burberry", "versace", "fendi"]
    name = data.draw(st.sampled_from(names))
    spots = [i for i, c in enumerate(name) if c in LOOKS]
    chosen = data.draw(st.lists(st.sampled_from(spots), min_size=1, max_size=3, unique=True))
    chars = list(name)
    for i in chosen:
        chars[i] = data.draw(st.sampled_from(LOOKS[name[i]]))
    written = "".join(chars)
    assert skeleton(written).lower() == skeleton(name).lower()
    [row] = both(text_filter, [{"title": f"{written} bag"}])
    assert row["text_brand"] is not None, written
    # read as obfuscation: look-alike or fullwidth characters (or, where NFKC and lower case
    # turn a look-alike into another letter, "roＩex", a misspelling)
    assert row["text_score"] >= 0.75, (written, row)


@pytest.mark.parametrize(
    "written",
    [
        "𝐆𝐮𝐜𝐜𝐢",  # mathematical bold
        "ᑭrada",  # Canadian syllabics
        "ΗERMES",  # Greek capital eta
        "Guϲcі",  # Greek lunate sigma, which NFKC would make a final sigma
        "ɡuccі",  # Latin script g, Cyrillic i
        "rnoncler",  # ASCII "rn" for "m"
    ],
)
def test_lookalikes_from_every_script_are_obfuscation(
    text_filter: TextFilter, written: str
) -> None:
    [row] = both(text_filter, [{"title": f"{written} new"}])
    assert row["text_match"] == "confusable" and row["text_score"] >= 0.9, row


def test_a_word_of_another_script_is_not_a_lookalike(text_filter: TextFilter) -> None:
    rows = both(text_filter, [{"title": "Сова рисунок"}, {"title": "Μαμά και παιδί"}])
    assert [r["text_brand"] for r in rows] == [None, None]


def _marked_latin() -> dict[str, list[str]]:
    """Lower-case ASCII letter -> Latin letters Unicode names as that letter with a mark, hook
    or stroke, or as its small capital (from the Unicode database, not from the filter)."""
    out: dict[str, list[str]] = {}
    for code in range(0x80, 0x2C80):
        c = chr(code)
        if len(unicodedata.normalize("NFKC", c)) != 1:
            # a compatibility letter NFKC spells with two ("ŀ" is "l·"): read as those
            continue
        name = unicodedata.name(c, "")
        for prefix in ("LATIN SMALL LETTER ", "LATIN LETTER SMALL CAPITAL "):
            rest = name.removeprefix(prefix)
            base, mark = rest[:1], rest[1:]
            if rest != name and "A" <= base <= "Z" and (not mark or mark.startswith(" WITH ")):
                out.setdefault(base.lower(), []).append(c)
    return out


MARKED = _marked_latin()


@pytest.fixture(scope="module")
def common_words(seed_registry: Registry) -> frozenset[str]:
    """The shipped registry's ordinary words (wordfreq's, in the ten languages)."""
    return frozenset(seed_registry.lexicon.words.get_column("word").to_list())


def test_marked_letters_read_as_their_base_letter() -> None:
    assert visual_reading("ƫ") == "t" and visual_reading("ᴋ") == "k"  # palatal hook, small cap
    assert visual_reading("omega") == visual_reading("oᴍega") == "ornega"  # m looks like rn
    assert not visual_reading("ロレックス").isascii()  # another script is no Latin reading


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_a_lookalike_letter_and_a_typo_together_read_as_the_name(
    text_filter: TextFilter, common_words: frozenset[str], data: st.DataObject
) -> None:
    """A marked Latin letter (Unicode's own names) and one more edit elsewhere, the way
    dnstwist's homoglyph fuzzer writes names: read as the name when the category
    corroborates it, on both paths."""
    name, category = data.draw(
        st.sampled_from(
            [("burberry", "fashion"), ("versace", "fashion"), ("moncler", "fashion"),
             ("cartier", "jewelry"), ("balenciaga", "fashion"), ("valentino", "fashion")]
        )
    )  # fmt: skip
    marked = data.draw(st.sampled_from([i for i, c in enumerate(name) if c in MARKED]))
    edited = data.draw(st.sampled_from([i for i in range(1, len(name)) if i != marked]))
    chars = list(name)
    chars[marked] = data.draw(st.sampled_from(MARKED[name[marked]]))
    other = data.draw(st.sampled_from([c for c in "aeiourstnlk" if c != name[edited]]))
    chars[edited] = other
    written = "".join(chars)
    # an ordinary word once its accents are read away ("vàlentina") is no misspelt name
    plain = "".join(c for c in unicodedata.normalize("NFD", written) if c.isascii())
    assume(plain not in common_words)
    [row] = both(text_filter, [{"title": f"{written} jacket", "category": category}])
    assert row["text_brand"] is not None, written


def test_dnstwist_homoglyphs_are_read_with_their_category(
    text_filter: TextFilter, seed_registry: Registry
) -> None:
    """dnstwist's homoglyph fuzzer (look-alike letters, often with a second change) on every
    protected name of eight letters or more: at least 95% read as the brand when the listing's
    category is the brand's, on both paths."""
    dnstwist = pytest.importorskip("dnstwist")
    rng = random.Random(5)
    firsts = seed_registry.brands.group_by("brand", maintain_order=True).first()
    rows, brands = [], []
    for brand, category in firsts.select("brand", "category").iter_rows():
        key = brand.lower()
        if not key.isascii() or not key.isalpha() or len(key) < 8:
            continue
        fuzzer = dnstwist.Fuzzer(f"{key}.com")
        fuzzer.generate()
        variants = sorted(
            {p["domain"].rsplit(".", 1)[0] for p in fuzzer.permutations(unicode=True)
             if p["fuzzer"] == "homoglyph"} - {key}
        )  # fmt: skip
        for v in rng.sample(variants, min(12, len(variants))):
            rows.append({"title": f"{v} new", "category": category})
            brands.append(brand)
    assert len(rows) >= 100
    out = both(text_filter, rows)
    found = sum(r["text_brand"] == b for r, b in zip(out, brands, strict=True))
    assert found >= 0.95 * len(rows), found / len(rows)


# ---------------------------------------------------------------- accessories made to fit


@settings(max_examples=80, deadline=None)
@given(
    patterns=st.lists(st.sampled_from([" a ", " a  b ", " b ", " c ", " b  c ", "x"]), min_size=1),
    words=st.lists(st.sampled_from(["a", "b", "c", "x", "d"]), max_size=8),
)
def test_leftmost_search_has_polars_semantics(patterns: list[str], words: list[str]) -> None:
    from filters.core.textops import PatternSet

    text = "  " + "  ".join(words) + "  "
    want = (
        pl.Series([text])
        .str.extract_many(list(dict.fromkeys(patterns)), overlapping=False, leftmost=True)
        .to_list()[0]
    )
    assert PatternSet(patterns).extract_leftmost(text) == want


@pytest.mark.parametrize(
    "title",
    [
        "Apple Watch band 44mm black",
        "iPhone 15 case clear",
        "Correa para Apple Watch 44mm",
        "Coque pour iPhone 15 transparente",
        "Hülle für Galaxy S24 Ultra",
        "Custodia per iPhone 15",
        "Capa compatível com iPhone 15",
        "Чехол для iPhone 15",
        "iPhone 15 için kılıf",
        "Rolex watch strap 20mm leather",
        "Fits Dyson V11 replacement filter",
        "Designed for AirPods Pro case",
    ],
)
def test_accessories_made_to_fit_in_every_lexicon_language(
    text_filter: TextFilter, title: str
) -> None:
    [row] = both(text_filter, [{"title": title}])
    assert row["text_brand"] is not None and row["text_accessory"], (title, row["text_reasons"])


@pytest.mark.parametrize(
    "title",
    [
        "Apple Watch Series 9 45mm with sport band",  # the band comes with the watch
        "Cartier Love bracelet 18k",  # a bracelet is the product
        "Apple 20W USB-C charger",  # the brand's own small good
        "Ray-Ban glasses case",  # a small good of two words, not a "case" for something
        "DJI power adapter 30W",
        "Persol lens cleaning cloth",
        "Gucci Marmont bag with dust bag",
        "Rolex Submariner watch",
    ],
)
def test_a_product_is_not_an_accessory(text_filter: TextFilter, title: str) -> None:
    [row] = both(text_filter, [{"title": title}])
    assert row["text_brand"] is not None and not row["text_accessory"], row["text_reasons"]


# ---------------------------------------------------------------- generated hard negatives


def test_generated_word_brands_and_fitting_accessories_are_not_the_brands_goods(
    seed_registry: Registry, text_filter: TextFilter
) -> None:
    """The generator's hard negatives: a brand word used as a word, in a category none of the
    brand's, names no brand; an accessory made to fit a protected brand's product is read as
    an accessory in every language it is written in."""
    from seeds.marketplace import generate_marketplace

    frame = generate_marketplace(seed_registry, 4000, seed=3)
    words = frame.filter(pl.col("kind") == "genuine_word_brand")
    fits = frame.filter(pl.col("kind") == "genuine_fits")
    assert words.height > 50 and fits.height > 100
    pairs = set(seed_registry.brands.select("brand", "category").iter_rows())
    for title, category in words.select("title", "category").iter_rows():
        assert not any((b, category) in pairs for b in seed_registry.brand_names if b in title)
    read = text_filter.score(words.drop("label", "kind")).collect()
    assert read["text_brand"].null_count() == read.height, read.filter(
        pl.col("text_brand").is_not_null()
    ).select("title", "text_reasons")
    read = text_filter.score(fits.drop("label", "kind")).collect()
    named = read.filter(pl.col("text_brand").is_not_null())
    assert named.height > 0.4 * read.height  # some products fitted are not protected
    assert named["text_accessory"].all(), named.filter(~pl.col("text_accessory")).select(
        "title", "text_reasons"
    )
