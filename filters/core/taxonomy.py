"""The category taxonomy: how marketplaces name categories, read as the registry's categories.

A registry's ``categories.csv`` (``category,parent,synonyms``) holds the taxonomy's nodes: each
node has a name, an optional parent node and ``|``-separated synonyms in any language
(``bags,,handbags|purses|totes|sacs à main|сумки|包``). The shipped registry fills it; a
registry's own file extends the shipped one (a row for a node the shipped file has adds
synonyms, and a parent if it gives one). Every category of ``brands.csv`` is a node too, named
by itself.

A listing's category is read as follows. A path ("Women > Bags > Shoulder Bags") matches by its
most specific segment that names a known node (the last, reading left to right); for a brand,
by its most specific segment that covers one of the brand's categories ("Sporting Goods >
Soccer > Clothing" is sports goods for a brand that sells no clothing); a segment of goods of
no brand's, named as a whole ("Books > Arts & Photography > Fashion"), makes the whole path
one of no brand's.
A segment
matches a node by name or synonym, ignoring case, accents, apostrophes, separators and an
English plural ``s``/``es``; one that names several things ("Jewellery & Watches",
"Clothing, Shoes & Accessories") matches each of its parts; a part that matches nothing as a
whole matches by its longest run of words that does, the rightmost of equals ("Women's
Shoulder Bags" is "shoulder bags"), and a Chinese, Japanese or Korean one by its longest known
ending, then beginning ("女士单肩包" ends with "单肩包").

A node covers registry categories: itself if ``brands.csv`` uses it, else its nearest ancestor
that ``brands.csv`` uses, else every such category below it ("beauty" covers cosmetics and
perfume), else none at all ("books": a category of no brand's).

The same reading serves every path through the code: :meth:`Taxonomy.resolve` is the one
definition, called once per distinct category value of a batch.
"""

from __future__ import annotations

import csv
import functools
import io
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import polars as pl

from filters.core.csvtext import checked_header
from filters.core.errors import RegistryError
from filters.core.paths import default_registry_dir

CATEGORIES_COLUMNS = ("category", "parent", "synonyms")
#: what separates the segments of a category path ("Women > Bags", "Damen/Taschen")
PATH_SEPARATORS = re.compile(r"\s*(?:>|›|»|→|/|\\|\||::)\s*")
#: what joins the things one segment names ("Jewellery & Watches", "Bolsas e Mochilas")
PART_SEPARATORS = re.compile(
    r"\s*(?:,|&|\+|;|、|・)\s*|\s+(?:and|und|et|y|e|ve|и)\s+", re.IGNORECASE
)
#: a category value is read up to this many characters (a reason quotes at most that)
MAX_CATEGORY_CHARS = 200
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
#: dropped from names: "Women's" is "womens"
APOSTROPHES = "['\u2019`\u00b4]"
#: what parts the words of a name
NON_WORD = r"[^\p{L}\p{N}\p{M}]+"
#: what ``str.strip_chars()`` strips (see ``filters.core.textops.strip_chars``)
WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


@functools.cache
def _patterns() -> tuple[Any, Any, Any]:
    """The ``regex`` patterns of :func:`category_words` (``re`` lacks ``\\p{..}``), compiled
    on first use."""
    import regex

    return regex.compile(APOSTROPHES), regex.compile(NON_WORD), regex.compile(r"\p{Mn}")


def category_words(text: str) -> str:
    """A category name as its words: NFKC, case-folded, accents and apostrophes dropped, every
    run of other characters a single space ("Women's Bags" -> ``"womens bags"``,
    "Joyería" -> ``"joyeria"``, "home_appliances" -> ``"home appliances"``)."""
    apostrophes, non_word, marks = _patterns()
    lower = unicodedata.normalize("NFKC", text).lower()
    bare = unicodedata.normalize("NFC", marks.sub("", unicodedata.normalize("NFKD", lower)))
    return non_word.sub(" ", apostrophes.sub("", bare)).strip(WHITESPACE)


def category_words_series(texts: pl.Series) -> pl.Series:
    """:func:`category_words_expr` of a column: Unicode normalisation runs only on the texts
    that are not ASCII (for ASCII it changes nothing)."""
    ascii_ = (texts.str.len_bytes() == texts.str.len_chars()).fill_null(True)
    # on ASCII, the classes of NON_WORD and APOSTROPHES are these (and faster to match)
    cheap = texts.to_frame("t").select(
        pl.col("t")
        .str.to_lowercase()
        .str.replace_all("['`]", "")
        .str.replace_all("[^a-z0-9]+", " ")
        .str.strip_chars()
    )
    out = cheap.to_series()
    at = (~ascii_).arg_true()
    if at.len():
        rest = texts.gather(at).to_frame("t").select(category_words_expr(pl.col("t")))
        out = out.scatter(at, rest.to_series())
    return out.alias(texts.name)


def category_words_expr(expr: pl.Expr) -> pl.Expr:
    """:func:`category_words` of a text column."""
    return (
        expr.str.normalize("NFKC")
        .str.to_lowercase()
        .str.normalize("NFKD")
        .str.replace_all(r"\p{Mn}", "")
        .str.normalize("NFC")
        .str.replace_all(APOSTROPHES, "")
        .str.replace_all(NON_WORD, " ")
        .str.strip_chars()
    )


def _number_variants(words: str) -> list[str]:
    """The English singular and plural of a name's last word ("bags" -> "bag"; "watch" ->
    "watches"), for ASCII words of three letters or more."""
    head, _, last = words.rpartition(" ")
    if not (last.isascii() and last.isalpha() and len(last) >= 3):
        return []
    forms = set()
    if last.endswith("es") and last[:-2].endswith(("ch", "sh", "x", "s", "z")):
        forms.add(last[:-2])
    elif last.endswith("s") and not last.endswith("ss"):
        forms.add(last[:-1])
    else:
        forms.add(last + ("es" if last.endswith(("ch", "sh", "x", "s", "z")) else "s"))
    return [f"{head} {f}".strip() for f in forms]


class Resolution(NamedTuple):
    """What a listing's category value says.

    ``status``: ``"absent"`` (no category), ``"unmatched"`` (no segment names a known node),
    ``"known"``. ``categories``: the registry categories its segments cover (sorted; empty for
    a category of no brand's goods); ``ranks`` and ``texts``, aligned with them: how specific
    the segment that covers each one is (0: the most specific known segment) and that
    segment's text. ``matched``: the most specific known segment.
    """

    status: str
    categories: tuple[str, ...]
    matched: str | None
    ranks: tuple[int, ...] = ()
    texts: tuple[str, ...] = ()

    def for_brand(self, brand_categories: Iterable[str]) -> tuple[list[str], str | None]:
        """Of ``brand_categories``, those the most specific segment that covers any of them
        covers, and that segment's text (``[]`` and None where no segment covers one)."""
        mine = set(brand_categories)
        found = [
            (r, c, t)
            for c, r, t in zip(self.categories, self.ranks, self.texts, strict=True)
            if c in mine
        ]
        if not found:
            return [], None
        best = min(r for r, _, _ in found)
        return sorted(c for r, c, _ in found if r == best), next(
            t for r, _, t in found if r == best
        )


ABSENT = Resolution("absent", (), None)
UNMATCHED = Resolution("unmatched", (), None)


@dataclass(frozen=True)
class NodeRow:
    """One row of a ``categories.csv``."""

    path: Path | None
    line: int
    category: str
    parent: str
    synonyms: tuple[str, ...]


class Taxonomy:
    """The nodes of ``categories.csv`` files and the registry's categories, ready to read
    listings' categories with :meth:`resolve`.

    Examples
    --------
    >>> t = Taxonomy.build(default_category_rows(), ["bags", "shoes", "perfume", "cosmetics"])
    >>> t.resolve("Women > Bags > Shoulder Bags").categories
    ('bags',)
    >>> t.resolve("Beauty").categories
    ('cosmetics', 'perfume')
    """

    def __init__(
        self,
        node_of: dict[str, str],
        covers: dict[str, tuple[str, ...]],
        title_nouns: dict[str, tuple[str, ...]],
        nodes: Sequence[str],
    ) -> None:
        #: key (words) of a name, synonym or their plural/singular -> node
        self.node_of = node_of
        #: node -> the registry categories it covers
        self.covers = covers
        #: a noun that may name goods in a title (phrase words) -> the categories it covers
        self.title_nouns = title_nouns
        self.nodes = tuple(nodes)
        self._cache: dict[str, Resolution] = {}
        # a noun is found in a title's words (:func:`title_words`) as itself between spaces,
        # or, written in Chinese, Japanese or Korean (no spaces between words), anywhere
        self._cjk_nouns = tuple(k for k in title_nouns if _CJK.search(k))
        self._longest = max((k.count(" ") + 1 for k in title_nouns), default=0)
        #: the patterns :meth:`title_nouns_expr` searches
        self.title_patterns = [k if _CJK.search(k) else f" {k} " for k in title_nouns]

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state["_cache"] = {}
        return state

    # ------------------------------------------------------------------ build

    @classmethod
    def build(cls, rows: Iterable[NodeRow], registry_categories: Iterable[str]) -> Taxonomy:
        """The taxonomy of ``rows`` (later rows extend earlier ones) and the registry's
        categories (``brands.csv``'s, keyed as :func:`filters.core.registry.category_key`)."""
        registry = sorted(set(registry_categories))
        parent: dict[str, str] = {}
        synonyms: dict[str, list[str]] = {}
        where: dict[str, NodeRow] = {}
        claimed: dict[str, tuple[str, NodeRow]] = {}
        rows = list(rows)
        for row in rows:
            node = _node_name(row.category)
            if not node:
                raise RegistryError(f"{_at(row)}: category is empty")
            where.setdefault(node, row)
            if row.parent:
                parent[node] = _node_name(row.parent)
            names = synonyms.setdefault(node, [])
            for s in row.synonyms:
                key = category_words(s)
                if not key:
                    continue
                other = claimed.get(key)
                # within one file a synonym names one node; a later file may move it
                if other is not None and other[0] != node and other[1].path == row.path:
                    raise RegistryError(
                        f"{_at(row)}: synonym {s!r} of {row.category!r} is already a synonym "
                        f"of {other[0]!r} ({_at(other[1])})"
                    )
                if other is not None and other[0] != node:
                    synonyms[other[0]] = [x for x in synonyms[other[0]] if category_words(x) != key]
                claimed[key] = (node, row)
                names.append(s)
        for node in registry:
            synonyms.setdefault(node, [])
        for node, named_parent in parent.items():
            if named_parent not in synonyms:
                row = where[node]
                raise RegistryError(
                    f"{_at(row)}: parent {named_parent!r} of {node!r} is not a category of the "
                    "file or of brands.csv"
                )
        # no cycles
        for node in parent:
            seen = [node]
            up: str | None = parent.get(node)
            while up is not None:
                if up in seen:
                    raise RegistryError(
                        f"{_at(where[node])}: categories form a cycle ({' > '.join([*seen, up])})"
                    )
                seen.append(up)
                up = parent.get(up)
        covers = _coverage(list(synonyms), parent, set(registry))
        node_of: dict[str, str] = {}
        variants: dict[str, set[str]] = {}
        for node, names in synonyms.items():
            for name in [node, *names]:
                key = category_words(name)
                if key:
                    node_of.setdefault(key, node)
                    for v in _number_variants(key):
                        variants.setdefault(v, set()).add(node)
        # a registry category's own name is always itself
        for node in registry:
            node_of[category_words(node)] = node
        for key, owners in variants.items():
            if key not in node_of and len(owners) == 1:
                node_of[key] = next(iter(owners))
        # nouns searched in titles: the names of goods, as phrase words; not one CJK character
        # ("包" of "包邮", free shipping) and not a node that covers no registry category
        title_nouns: dict[str, set[str]] = {}
        for key, node in node_of.items():
            if (
                not covers[node]
                or (len(key) < 2 and _CJK.search(key))
                or (len(key) < 3 and key.isascii())
            ):
                continue
            title_nouns.setdefault(key, set()).update(covers[node])
        return cls(
            node_of,
            covers,
            {k: tuple(sorted(v)) for k, v in sorted(title_nouns.items())},
            list(synonyms),
        )

    # ------------------------------------------------------------------ reading

    def _part_node(self, key: str) -> str | None:
        """The node a part names as a whole, else by some of its words (see
        :meth:`_word_node`)."""
        node = self.node_of.get(key)
        return node if node is not None else self._word_node(key)

    def _word_node(self, key: str) -> str | None:
        """The node named by the longest run of a part's words (the rightmost of equals), or
        by the longest known ending, then beginning, of a CJK word."""
        words = key.split(" ")
        if len(words) > 1:
            for size in range(len(words) - 1, 0, -1):
                for start in range(len(words) - size, -1, -1):
                    node = self.node_of.get(" ".join(words[start : start + size]))
                    if node is not None:
                        return node
        elif _CJK.search(key):
            for size in range(len(key) - 1, 0, -1):
                for piece in (key[len(key) - size :], key[:size]):
                    node = self.node_of.get(piece)
                    if node is not None:
                        return node
        return None

    def _segment(self, segment: str) -> tuple[list[str], str, bool] | None:
        """The nodes one path segment names, the text that named them, and whether one of
        its parts was named as a whole (not by some of its words)."""
        whole = category_words(segment)
        if not whole:
            return None
        node = self.node_of.get(whole)
        if node is not None:
            return [node], segment, True
        parts = [p for p in PART_SEPARATORS.split(segment) if p and p.strip()]
        found: list[str] = []
        named: list[str] = []
        exact = False
        for part in parts:
            key = category_words(part)
            if not key:
                continue
            node = self.node_of.get(key)
            exact = exact or node is not None
            if node is None:
                node = self._word_node(key)
            if node is not None:
                found.append(node)
                named.append(part.strip())
        if not found:
            return None
        return found, segment if len(parts) > 1 else named[0], exact

    def resolve(self, value: str | None) -> Resolution:
        """What the category ``value`` says (see the module's documentation).

        Examples
        --------
        >>> t = Taxonomy.build(default_category_rows(), ["bags", "jewelry", "watches"])
        >>> t.resolve("Jewellery & Watches").categories
        ('jewelry', 'watches')
        >>> t.resolve("Garden gnomes").status
        'unmatched'
        """
        if value is None:
            return ABSENT
        value = value[:MAX_CATEGORY_CHARS]
        found = self._cache.get(value)
        if found is not None:
            return found
        segments = [s for s in PATH_SEPARATORS.split(value) if s.strip()]
        out = ABSENT if not segments else UNMATCHED
        # every segment of a path is true of the listing, the last the most specific; one
        # filing goods of no brand's ("Books > Arts & Photography > Fashion": a book) decides
        levels: list[tuple[tuple[str, ...], str]] = []
        for segment in segments:
            hit = self._segment(segment)
            if hit is not None:
                nodes, text, exact = hit
                cats = tuple(sorted({c for n in nodes for c in self.covers[n]}))
                if not cats and exact:
                    levels = [(cats, text.strip())]
                    break
                levels.append((cats, text.strip()))
        if levels:
            rank: dict[str, tuple[int, str]] = {}
            for depth, (cats, text) in enumerate(reversed(levels)):
                for c in cats:
                    rank.setdefault(c, (depth, text))
            ordered = sorted(rank)
            out = Resolution(
                "known",
                tuple(ordered),
                levels[-1][1],
                tuple(rank[c][0] for c in ordered),
                tuple(rank[c][1] for c in ordered),
            )
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[value] = out
        return out

    def resolve_column(self, values: pl.Series) -> pl.DataFrame:
        """:meth:`resolve` of every value, aligned with ``values``: ``category_status``,
        ``category_covers``, ``category_ranks``, ``category_texts`` (lists) and
        ``category_matched``. Computed once per distinct value."""
        text = values.cast(pl.String)
        uniq = text.unique().drop_nulls()
        found = [self.resolve(v) for v in uniq.to_list()]
        table = pl.DataFrame(
            {
                "v": uniq,
                "category_status": [r.status for r in found],
                "category_covers": [list(r.categories) for r in found],
                "category_ranks": [list(r.ranks) for r in found],
                "category_texts": [list(r.texts) for r in found],
                "category_matched": [r.matched for r in found],
            },
            schema={
                "v": pl.String,
                "category_status": pl.String,
                "category_covers": pl.List(pl.String),
                "category_ranks": pl.List(pl.Int32),
                "category_texts": pl.List(pl.String),
                "category_matched": pl.String,
            },
        )
        out = text.to_frame("v").join(table, on="v", how="left", maintain_order="left").drop("v")
        return out.with_columns(pl.col("category_status").fill_null("absent"))

    def title_nouns_in(self, words: str) -> list[str]:
        """The nouns of :attr:`title_nouns` in a title's words (:func:`title_words`), in
        sorted order; equal to :meth:`title_nouns_expr`."""
        found = set()
        tokens = words.split(" ")
        for start in range(len(tokens)):
            for size in range(1, min(self._longest, len(tokens) - start) + 1):
                key = " ".join(tokens[start : start + size])
                if key in self.title_nouns:
                    found.add(key)
        if self._cjk_nouns and _CJK.search(words):
            found.update(k for k in self._cjk_nouns if k in words)
        return sorted(found)

    def title_nouns_expr(self, words: pl.Expr) -> pl.Expr:
        """The nouns of :attr:`title_nouns` in each title's words (a column of
        :func:`title_words`), as a sorted list without repeats."""
        if not self.title_patterns:
            return pl.lit([], dtype=pl.List(pl.String))
        padded = pl.concat_str(pl.lit(" "), words, pl.lit(" "))
        return (
            padded.str.extract_many(self.title_patterns, overlapping=True)
            .list.eval(pl.element().str.strip_chars(" "))
            .list.unique()
            .list.sort()
        )

    def unmatched_counts(self, values: pl.Series) -> dict[str, int]:
        """Each category value that matches no node, with its number of rows."""
        counts = values.cast(pl.String).drop_nulls().value_counts()
        out: dict[str, int] = {}
        for value, n in counts.iter_rows():
            if self.resolve(value).status == "unmatched":
                out[value[:MAX_CATEGORY_CHARS]] = out.get(value[:MAX_CATEGORY_CHARS], 0) + int(n)
        return out


def title_words(title: str) -> str:
    """A title as the words nouns are searched in: :func:`category_words`."""
    return category_words(title)


def _node_name(name: str) -> str:
    """A node's name as the registry keys categories ("Home Appliances" -> home_appliances)."""
    return category_words(name).replace(" ", "_")


def _at(row: NodeRow) -> str:
    return f"{row.path if row.path is not None else 'categories'} line {row.line}"


def _coverage(
    nodes: list[str], parent: dict[str, str], registry: set[str]
) -> dict[str, tuple[str, ...]]:
    below: dict[str, set[str]] = {n: set() for n in nodes}
    for n in nodes:
        if n in registry:
            above = parent.get(n)
            while above is not None:
                below[above].add(n)
                above = parent.get(above)
    out: dict[str, tuple[str, ...]] = {}
    for n in nodes:
        up: str | None = n
        while up is not None and up not in registry:
            up = parent.get(up)
        out[n] = (up,) if up is not None else tuple(sorted(below[n]))
    return out


def read_category_rows(path: Path, text: str) -> list[NodeRow]:
    """The rows of a ``categories.csv`` (its text given), checked: the header names
    :data:`CATEGORIES_COLUMNS`, every row has a category."""
    reader = csv.reader(io.StringIO(text))
    header = checked_header(reader, path, CATEGORIES_COLUMNS)
    rows = []
    line = reader.line_num + 1
    try:
        for values in reader:
            if values and any(v.strip() for v in values):
                if len(values) != len(header):
                    raise RegistryError(
                        f"{path} line {line}: expected {len(header)} fields, got {len(values)}"
                    )
                row = {h: v.strip() for h, v in zip(header, values, strict=True)}
                if not row["category"]:
                    raise RegistryError(f"{path} line {line}: category is empty")
                synonyms = tuple(s.strip() for s in row["synonyms"].split("|") if s.strip())
                rows.append(NodeRow(path, line, row["category"], row["parent"], synonyms))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise RegistryError(f"{path} line {line}: malformed CSV ({exc})") from None
    return rows


def default_category_rows() -> list[NodeRow]:
    """The rows of the shipped registry's ``categories.csv``."""
    path = default_registry_dir() / "categories.csv"
    return read_category_rows(path, path.read_text(encoding="utf-8"))
