"""Loading and validating the brand registry directory (its files are described in README.md).

A registry directory holds ``brands.csv`` (required), ``official_images.csv`` and
``known_fakes.csv`` (optional), ``lexicon.toml`` (optional, extends the built-in lexicon),
``common_words.txt`` (optional, one word a line: extends the shipped common words of ten
languages, ``seeds/registry/wordfreq_words.tsv.gz``, built from wordfreq), ``names.csv``
(optional: the brands' names in other scripts, with where each is in use) and
``categories.csv`` (optional, extends the built-in category taxonomy: see
:mod:`filters.core.taxonomy`).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import math
import re
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import polars as pl

from filters.core.csvtext import checked_header, csv_never_closed
from filters.core.errors import RegistryError
from filters.core.paths import default_registry_dir
from filters.core.taxonomy import Taxonomy, default_category_rows, read_category_rows
from filters.core.textops import folded

BRANDS_COLUMNS = ("brand", "category", "reference_price", "aliases")
IMAGES_COLUMNS = ("image", "brand")
#: a brand's name in another script or language ("Rolex", "ja", "ロレックス", where it is used)
NAMES_COLUMNS = ("brand", "language", "name", "source")
NAMES_SCHEMA: dict[str, pl.DataType] = {c: pl.String() for c in NAMES_COLUMNS}
LEXICON_SECTIONS = (
    "counterfeit",
    "legitimate",
    "ordinary",
    "small_goods",
    "products",
    "native_exceptions",
)
#: the kinds a section may hold (ordinary: any brand word; small_goods: shares such as "3%")
LEXICON_KINDS: dict[str, tuple[str, ...]] = {
    "counterfeit": ("strong", "weak"),
    "legitimate": (
        "accessory_prefix",
        "compatible",
        "not_the_product",
        "fitted",
        "accessory",
        "secondhand",
        "refurbished",
        "authorised",
        "phrase_exceptions",
        "comparison_before",
        "comparison_after",
    ),
    "products": ("main", "bundle"),
}
#: the shipped common words (``seeds/tools/build_common_words.py`` builds it from wordfreq)
WORDS_FILE = "wordfreq_words.tsv.gz"
WORDS_SCHEMA = {"word": pl.String, "zipf": pl.Float64, "lang": pl.String}
#: ``[small_goods."3%"]``: a share of a brand's dearest reference price
RE_SHARE = re.compile(r"(\d+(?:\.\d+)?)%")


#: runs of what may part the words of a category name ("home appliances", "Home-Appliances");
#: one character class that Python's and polars' regex engines read alike
CATEGORY_SEPARATORS = "[ \t\n\r\x0b\x0c\xa0\u3000_\\-]+"


def category_key(name: str) -> str:
    """A category name as a key: lower case, its words joined by ``_`` ("Home Appliances" is
    ``home_appliances``), as ``filters.base.category_keys`` gives it for a column."""
    return re.sub(CATEGORY_SEPARATORS, "_", name.lower()).strip("_")


def brand_key(name: str) -> str:
    """Case-, accent- and punctuation-insensitive key of a brand name.

    ``"Hermès"`` -> ``"hermes"``, ``"Dolce & Gabbana"`` -> ``"dolcegabbana"``.
    """
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    kept = [c for c in decomposed if not unicodedata.combining(c) and (c.isalnum())]
    return "".join(kept)


@dataclass(frozen=True)
class Lexicon:
    """Phrase lists by section.

    ``counterfeit`` and ``legitimate`` map a kind (``strong``, ``weak``, ``accessory_prefix``,
    ``secondhand``, ``authorised`` ...) to phrases of every language; ``ordinary`` maps a brand to
    phrases in which its name is an ordinary word (``"sea shell"``, ``"omega 3"``).
    """

    counterfeit: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    legitimate: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    ordinary: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: common words (folded as titles are) and their highest Zipf frequency over the languages
    #: of the word list; a registry's own words have an infinite one
    words: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema={"word": pl.String, "zipf": pl.Float64}),
        compare=False,
    )
    #: share of the brand's dearest reference ("3%") -> the small goods sold for about that
    small_goods: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: ``main``: nouns of the goods reference prices are for; ``bundle``: words adding an item
    products: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: a brand name of a script matched by substring -> longer words holding it that are other
    #: words ("삼성" -> "삼성동", a district of Seoul); unlike ``ordinary``, the name stays plain
    native_exceptions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def small_goods_shares(self) -> dict[str, float]:
        """Each small-goods phrase and its share of the brand's dearest reference price (the
        largest, for a phrase listed under two shares)."""
        out: dict[str, float] = {}
        for kind, phrases in self.small_goods.items():
            match = RE_SHARE.fullmatch(kind)
            assert match is not None  # validated when loaded
            share = float(match.group(1)) / 100
            for p in phrases:
                out[p] = max(share, out.get(p, 0.0))
        return out

    def phrases(self, section: str, kind: str) -> tuple[str, ...]:
        table: Mapping[str, tuple[str, ...]] = getattr(self, section)
        return table.get(kind, ())

    @cached_property
    def common_words(self) -> frozenset[str]:
        """The common words as a set (built on first use: it takes a few tenths of a second)."""
        return frozenset(self.words.get_column("word").to_list())


@dataclass(frozen=True)
class Registry:
    """The brand registry as typed, validated tables.

    Attributes
    ----------
    root : directory it was loaded from
    brands : one row per (brand, category): ``brand``, ``category`` (lower case),
        ``reference_price`` (USD, new retail), ``aliases`` (list of strings)
    official_images, known_fakes : ``image`` (absolute path), ``relpath``, ``brand``
    lexicon : counterfeit phrases, legitimate contexts, ordinary uses, common words
    fingerprint : sha256 of every registry file's content; changes whenever the registry does
    names : the brands' names in other scripts (``names.csv``): ``brand``, ``language``,
        ``name``, ``source``; the text filter reads them as more aliases of the brand
    taxonomy : how marketplaces' category names read as the registry's categories (the shipped
        taxonomy over these brands' categories unless given)
    """

    root: Path
    brands: pl.DataFrame
    official_images: pl.DataFrame
    known_fakes: pl.DataFrame
    lexicon: Lexicon
    fingerprint: str
    names: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=NAMES_SCHEMA))
    taxonomy: Taxonomy = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.taxonomy is None:
            categories = self.brands.get_column("category").unique().to_list()
            object.__setattr__(
                self, "taxonomy", Taxonomy.build(default_category_rows(), categories)
            )

    @property
    def brand_names(self) -> list[str]:
        return self.brands.get_column("brand").unique(maintain_order=True).to_list()

    @property
    def categories(self) -> list[str]:
        return sorted(self.brands.get_column("category").unique().to_list())

    @classmethod
    def load(cls, root: str | Path) -> Registry:
        return load_registry(root)


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RegistryError(f"{path} line {line}: not valid UTF-8") from None


def _csv_rows(path: Path, expected: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text))
    header = checked_header(reader, path, expected)
    rows = []
    line = reader.line_num + 1  # where the next record starts (a quoted field may span lines)
    try:
        for values in reader:
            if values and any(v.strip() for v in values):
                if len(values) != len(header):
                    problem = f"expected {len(header)} fields, got {len(values)}"
                    if _never_closed(text, line):
                        problem = "a quoted field is never closed"
                    raise RegistryError(f"{path} line {line}: {problem}")
                for v in values:
                    _check_characters(path, line, v)
                rows.append((line, {h: v.strip() for h, v in zip(header, values, strict=True)}))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise RegistryError(f"{path} line {line}: malformed CSV ({exc})") from None
    return rows


def _never_closed(text: str, line: int) -> bool:
    """Whether the CSV record starting on ``line`` opens a quoted field that never closes."""
    return csv_never_closed("".join(io.StringIO(text).readlines()[line - 1 :]))


#: control characters and bidirectional overrides/isolates: they make a brand name or reason
#: display differently from what it is (a reversed "xelor" reads as "rolex")
_HIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _check_characters(path: Path, line: int, value: str) -> None:
    hidden = _HIDDEN.search(value)
    if hidden:
        raise RegistryError(
            f"{path} line {line}: {value!r} contains the control character "
            f"U+{ord(hidden.group()):04X}"
        )


def _load_brands(path: Path) -> pl.DataFrame:
    if not path.is_file():
        raise RegistryError(
            f"{path}: missing; a registry needs brands.csv ({','.join(BRANDS_COLUMNS)})"
        )
    seen: dict[tuple[str, str], int] = {}
    brand_display: dict[str, str] = {}
    records = []
    for line, row in _csv_rows(path, BRANDS_COLUMNS):
        brand, category = row["brand"], category_key(row["category"].casefold())
        if not brand:
            raise RegistryError(f"{path} line {line}: brand is empty")
        if not category:
            raise RegistryError(f"{path} line {line}: category is empty for brand {brand!r}")
        key = brand_key(brand)
        if not key:
            raise RegistryError(f"{path} line {line}: brand {brand!r} has no letters or digits")
        other = brand_display.setdefault(key, brand)
        if other != brand:
            raise RegistryError(
                f"{path} line {line}: brand {brand!r} collides with {other!r} "
                "(same name ignoring case, accents and punctuation)"
            )
        raw_price = row["reference_price"]
        try:
            price = float(raw_price)
        except ValueError:
            price = math.nan
        if not math.isfinite(price) or price <= 0:
            raise RegistryError(
                f"{path} line {line}: reference_price {raw_price!r} is not a positive number"
            )
        if (key, category) in seen:
            raise RegistryError(
                f"{path} line {line}: duplicate ({brand}, {category}), first on line "
                f"{seen[(key, category)]}"
            )
        seen[(key, category)] = line
        aliases = [a.strip() for a in row["aliases"].split("|") if a.strip()]
        records.append(
            {"brand": brand, "category": category, "reference_price": price, "aliases": aliases}
        )
    if not records:
        raise RegistryError(f"{path}: no brands")
    return pl.DataFrame(
        records,
        schema={
            "brand": pl.String,
            "category": pl.String,
            "reference_price": pl.Float64,
            "aliases": pl.List(pl.String),
        },
    )


def _load_images(path: Path, root: Path, brands: set[str]) -> pl.DataFrame:
    schema = {"image": pl.String, "relpath": pl.String, "brand": pl.String}
    if not path.is_file():
        return pl.DataFrame(schema=schema)
    records = []
    for line, row in _csv_rows(path, IMAGES_COLUMNS):
        rel, brand = row["image"], row["brand"]
        if not rel:
            raise RegistryError(f"{path} line {line}: image is empty")
        if brand not in brands:
            raise RegistryError(f"{path} line {line}: brand {brand!r} is not in brands.csv")
        full = (root / rel).resolve()
        if not full.is_relative_to(root.resolve()):
            raise RegistryError(f"{path} line {line}: image {rel!r} is outside the registry")
        if not full.is_file():
            raise RegistryError(f"{path} line {line}: image file {rel!r} does not exist")
        records.append({"image": str(full), "relpath": rel, "brand": brand})
    return pl.DataFrame(records, schema=schema)


def _load_names(path: Path, brands: set[str]) -> pl.DataFrame:
    """``names.csv``: one row per name, each naming a brand of ``brands.csv``, a language, the
    name and where it is in use (a page of the brand or of a marketplace)."""
    if not path.is_file():
        return pl.DataFrame(schema=NAMES_SCHEMA)
    records = []
    seen: dict[tuple[str, str], int] = {}
    for line, row in _csv_rows(path, NAMES_COLUMNS):
        if row["brand"] not in brands:
            raise RegistryError(f"{path} line {line}: brand {row['brand']!r} is not in brands.csv")
        for column in ("language", "name", "source"):
            if not row[column]:
                raise RegistryError(f"{path} line {line}: {column} is empty")
        if (row["brand"], row["name"]) in seen:
            raise RegistryError(
                f"{path} line {line}: duplicate name {row['name']!r} of {row['brand']}, first on "
                f"line {seen[(row['brand'], row['name'])]}"
            )
        seen[(row["brand"], row["name"])] = line
        records.append({c: row[c] for c in NAMES_COLUMNS})
    return pl.DataFrame(records, schema=NAMES_SCHEMA)


def _lexicon_tables(path: Path, data: dict[str, object]) -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, list[str]]] = {s: {} for s in LEXICON_SECTIONS}
    for section, body in data.items():
        if section not in LEXICON_SECTIONS:
            raise RegistryError(
                f"{path}: unknown section [{section}], "
                f"expected one of {', '.join(LEXICON_SECTIONS)}"
            )
        if not isinstance(body, dict):
            raise RegistryError(f"{path}: [{section}] must be a table")
        for kind, value in body.items():
            known = LEXICON_KINDS.get(section)
            if known is not None and kind not in known:
                # a misspelt kind would silently do nothing
                raise RegistryError(
                    f"{path}: unknown kind [{section}.{kind}], expected one of {', '.join(known)}"
                )
            if section == "small_goods":
                share = RE_SHARE.fullmatch(kind)
                if share is None or not 0 < float(share.group(1)) <= 100:
                    raise RegistryError(
                        f'{path}: [small_goods."{kind}"] must be named by a share of the '
                        'reference price between 0% and 100%, such as "3%"'
                    )
            # [counterfeit.strong] en = [...] (by language) or ordinary: "Coach" = [...]
            lists = value.values() if isinstance(value, dict) else [value]
            for phrases in lists:
                if not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases):
                    raise RegistryError(f"{path}: [{section}.{kind}] must hold lists of strings")
                out[section].setdefault(kind, []).extend(p.strip() for p in phrases if p.strip())
    return out


def fold_word(word: str) -> str:
    """A word folded as the text filter folds titles: NFKC, lower case, accents stripped (not
    the marks that are letters of their script, Thai vowels, kana voicing), Arabic letter
    variants merged."""
    return folded(word)


def _load_words(table: Path | None, word_files: list[Path]) -> pl.DataFrame:
    """The shipped word table and a registry's own words (one a line, ``#`` comments)."""
    frames = []
    if table is not None:
        try:
            frames.append(
                pl.read_csv(
                    gzip.decompress(table.read_bytes()),
                    separator="\t",
                    comment_prefix="#",
                    quote_char=None,
                    schema=WORDS_SCHEMA,
                ).select("word", "zipf")
            )
        except (pl.exceptions.PolarsError, OSError, EOFError) as exc:
            raise RegistryError(
                f"{table}: unreadable word table ({exc}); expected gzip-compressed tab-separated"
                " word, zipf, lang"
            ) from None
    own: set[str] = set()
    for wf in word_files:
        for raw in _read_text(wf).splitlines():
            w = raw.strip()
            if w and not w.startswith("#"):
                own.add(fold_word(w))
    if own:
        frames.append(
            pl.DataFrame(
                {"word": sorted(own), "zipf": [math.inf] * len(own)},
                schema={"word": pl.String, "zipf": pl.Float64},
            )
        )
    if not frames:
        return pl.DataFrame(schema={"word": pl.String, "zipf": pl.Float64})
    if len(frames) == 1 and table is not None:
        return frames[0]  # built sorted, one row a word
    return pl.concat(frames).group_by("word").agg(pl.col("zipf").max()).sort("word")


def _load_lexicon(paths: list[Path], words: Path | None, word_files: list[Path]) -> Lexicon:
    merged: dict[str, dict[str, list[str]]] = {s: {} for s in LEXICON_SECTIONS}
    for path in paths:
        text = _read_text(path)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            # tomllib says "(at line 3, column 7)" or, for what never closes, "at end of document"
            at = re.search(r"\(at line (\d+), column \d+\)", str(exc))
            line = int(at.group(1)) if at else len(text.splitlines()) or 1
            raise RegistryError(f"{path} line {line}: invalid TOML ({exc})") from None
        for section, table in _lexicon_tables(path, data).items():
            for kind, phrases in table.items():
                merged[section].setdefault(kind, []).extend(phrases)

    def freeze(table: dict[str, list[str]]) -> dict[str, tuple[str, ...]]:
        return {k: tuple(dict.fromkeys(v)) for k, v in table.items()}

    return Lexicon(
        counterfeit=freeze(merged["counterfeit"]),
        legitimate=freeze(merged["legitimate"]),
        ordinary=freeze(merged["ordinary"]),
        words=_load_words(words, word_files),
        small_goods=freeze(merged["small_goods"]),
        products=freeze(merged["products"]),
        native_exceptions=freeze(merged["native_exceptions"]),
    )


def _fingerprint(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(b"\0")
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def load_registry(root: str | Path) -> Registry:
    """Load and validate a registry directory.

    Examples
    --------
    >>> reg = load_registry(default_registry_dir())
    >>> "Gucci" in reg.brand_names
    True
    """
    root = Path(root)
    if not root.is_dir():
        raise RegistryError(f"{root}: registry directory does not exist")
    brands = _load_brands(root / "brands.csv")
    names = set(brands.get_column("brand").to_list())
    official = _load_images(root / "official_images.csv", root, names)
    fakes = _load_images(root / "known_fakes.csv", root, names)
    other_names = _load_names(root / "names.csv", names)
    # the shipped lexicon is the base; a registry's own lexicon.toml extends it
    base = default_registry_dir()
    lex_files = [base / "lexicon.toml"]
    table = base / WORDS_FILE
    word_files = [root / "common_words.txt"]
    if root.resolve() != base.resolve():
        lex_files += [p for p in [root / "lexicon.toml"] if p.is_file()]
    lex_files = [p for p in lex_files if p.is_file()]
    word_files = [p for p in word_files if p.is_file()]
    tables = [table] if table.is_file() else []
    lexicon = _load_lexicon(lex_files, tables[0] if tables else None, word_files)
    # the shipped taxonomy is the base; a registry's own categories.csv extends it
    category_files = [base / "categories.csv"]
    if root.resolve() != base.resolve():
        category_files.append(root / "categories.csv")
    category_files = [p for p in category_files if p.is_file()]
    rows = [r for p in category_files for r in read_category_rows(p, _read_text(p))]
    taxonomy = Taxonomy.build(rows, brands.get_column("category").unique().to_list())
    tracked = [root / "brands.csv"] + [
        p
        for p in (root / "official_images.csv", root / "known_fakes.csv", root / "names.csv")
        if p.is_file()
    ]
    fingerprint = _fingerprint(tracked + lex_files + tables + word_files + category_files)
    return Registry(
        root=root,
        brands=brands,
        official_images=official,
        known_fakes=fakes,
        lexicon=lexicon,
        fingerprint=fingerprint,
        names=other_names,
        taxonomy=taxonomy,
    )
