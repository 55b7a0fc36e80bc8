"""Price filter: is the asking price suspiciously low for the brand it claims?

The price (converted to USD) is compared with the brand's new retail reference price for the
listing's category, adjusted for condition (a used item typically sells for half). The category
is read through the registry's taxonomy ("Handbags", "Women > Bags > Totes" are bags); where it
covers several of the brand's categories ("Jewellery & Watches"), or there is none, or the
taxonomy knows it not, the nouns of goods the title names ("bag", "sunglasses") choose the
cheapest of the brand's categories they name, else the brand's cheapest reference is used; the
reason says which and why. A plain mention of a brand, with no declared brand and no
counterfeit phrase, in a category that covers none of the brand's (a "Rolex" toy under Toys) is
not priced at all: nothing but a name points to the brand's goods. Where the listing's (brand,
reference category) group has enough listings in the run statistics (the median and MAD of the
adjusted log price over a whole input, see :meth:`PriceFilter.aggregate`), a robust z-score of
the log price against them adds evidence; a group the statistics do not know, or know fewer than
``min_group_size`` listings of, adds none. Only low prices count. Listings that name the brand
only as the target of an accessory ("strap for Rolex") are not compared with the brand's own
price.
A title that sells one of the brand's own small goods (the text filter's ``text_item``, "Apple
20W charger") is also compared with that item's share of the brand's dearest reference price;
its price against the brand's goods then counts only ``item_weight`` (by default half): a low
price alone sends it to review, not to a block, since a fake "Air Max 90 socks" may be shoes.
This holds only where the item's reference is at most ``item_max_ratio`` (0.35) of the one the
listing is otherwise compared with: a Gucci key ring listed under accessories is priced as those.

Score: ``s_ratio = clip((ln r_ok - ln r) / (ln r_ok - ln r_floor), 0, 1)`` where ``r`` is the
adjusted price ratio (1 at retail; ``r_ok`` = 0.6, ``r_floor`` = 0.08 by default), and
``price_score = max(s_ratio, z_weight * s_z)`` (for a small good, ``max(s_item, item_weight *
s_ratio, z_weight * s_z)``, ``s_item`` being ``s_ratio`` of the item's reference) with ``s_z``
rising from 0 at ``z = -z_start`` to 1 at ``z = -z_full``. Both are monotone: a lower price
never lowers the score.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import polars as pl

from filters.aggregates import GroupQuantiles
from filters.base import (
    Filter,
    check_is_fitted,
    declared_brands,
    index_of,
    per_values,
    reasons_where,
)
from filters.core.defaults import (
    DEFAULT_CONDITION_FACTORS,
    DEFAULT_RATES,
    DEFAULT_STANDARD_VOLUMES,
    PARTS,
)
from filters.core.registry import brand_key, category_key
from filters.core.taxonomy import category_words, category_words_series
from filters.core.textops import brand_key_expr, pl_round, pl_str

if TYPE_CHECKING:
    from typing import Self

    from filters.core.registry import Registry

#: the group of a listing's run statistics: its brand and the category of its reference price
GROUP_KEYS = ("price_brand", "price_category")
#: the filter's columns that read no run statistics
EVIDENCE_COLUMNS = ("price_brand", "price_usd", "price_reference", "price_ratio")


def _ln(x: float) -> float:
    """``Expr.log()``: -inf at 0, NaN below (math.log raises instead)."""
    if x > 0:
        return math.log(x)
    return -math.inf if x == 0 else math.nan


# a volume as titles write it ("100ml", "3.4 oz", "50 毫升"), in lower case
NUMBER = r"[0-9]+(?:[.,][0-9]+)?"
VOLUME = rf"({NUMBER})\s*(ml|fl\.?\s*oz|oz|毫升)\b"
FL_OZ_ML = 29.5735
# a stated volume this close to the standard is the standard ("3.4 oz" is 100.5 ml)
VOLUME_SAME = 0.1
# a volume's factor stays within these: a 1 ml vial is not priced at nothing, nor a 1 l
# bottle at ten times the reference
VOLUME_FACTOR_BOUNDS = (0.1, 2.0)


def _volume_ml(written: str) -> float:
    """Millilitres of a :data:`VOLUME` match ("3.4 oz" -> 100.5)."""
    found = re.match(NUMBER, written)
    number = float(found.group(0).replace(",", ".")) if found else 0.0
    return number * FL_OZ_ML if "oz" in written else number


def _money_str(x: float) -> str:
    """:func:`_money` on one value."""
    if x >= 10:
        return f"${int(pl_round(x, 0))}"
    return "$" + re.sub(r"\.([0-9])$", r".\g<1>0", pl_str(pl_round(x, 2)))


def _shown(category: str) -> pl.Expr:
    """A category key as reasons write it (``home_appliances``: "home appliances")."""
    return pl.col(category).str.replace_all("_", " ", literal=True)


def _money(expr: pl.Expr) -> pl.Expr:
    """``$1234`` for >= 10, ``$9.99`` below."""
    # one format of either number: both branches of a when are computed for every row
    amount = (
        pl.when(expr >= 10)
        # not strict: a row's reasons are formatted together, and one may not apply to it
        .then(expr.round(0).cast(pl.Int64, strict=False).cast(pl.String))
        # cents always in two digits ("$6.00", not "$6.0")
        .otherwise(expr.round(2).cast(pl.String).str.replace(r"\.([0-9])$", ".${1}0"))
    )
    return pl.format("${}", amount)


class PriceFilter(Filter):
    """Suspiciously low prices for the matched brand.

    Parameters
    ----------
    ratio_ok : adjusted price ratio at or above which the price is unremarkable
    ratio_floor : ratio at or below which the price alone scores 1
    min_group_size : listings of one (brand, category) in the run statistics needed for a
        robust z-score
    z_start, z_full : robust z (negative side) where the group evidence starts / saturates
    z_weight : the most the group evidence alone can score
    item_weight : weight of the brand's reference for a title that sells the brand's small good
    item_max_ratio : a small good's reference counts only when at most this share of the
        reference the listing is otherwise compared with
    rates : USD per currency unit (defaults to :data:`filters.core.defaults.DEFAULT_RATES`)
    condition_factors : share of the new price expected per condition
    standard_volumes : category -> the volume in ml its reference price is for (default:
        perfume, 100 ml); a title that states another volume ("30ml", "3.4 oz") is compared with
        the reference scaled by (volume / standard) ** ``volume_exponent``
    volume_exponent : how price grows with volume (0.5: a 30 ml bottle sells for about 55% of
        a 100 ml one, a 10 ml travel spray for about 32%)

    Examples
    --------
    >>> from pipelines.registry import load_registry, default_registry_dir
    >>> f = PriceFilter().fit(load_registry(default_registry_dir()))
    >>> out = f.score(pl.DataFrame({"title": ["Rolex"], "price": [40.0], "brand": ["Rolex"],
    ...                             "category": ["watches"]})).collect()
    >>> out.get_column("price_score").item() > 0.9
    True
    """

    name: ClassVar[str] = "price"
    evidence_schema: ClassVar[dict[str, pl.DataType]] = {
        "price_brand": pl.String(),
        "price_usd": pl.Float64(),
        "price_reference": pl.Float64(),
        "price_ratio": pl.Float64(),
        "price_robust_z": pl.Float64(),
    }
    carried_schema: ClassVar[dict[str, pl.DataType]] = {
        "__price_base": pl.Float64(),
        "__price_reasons": pl.List(pl.String()),
        "__price_log": pl.Float64(),
        "__price_counted": pl.Boolean(),
        "__price_category": pl.String(),
        "__price_note": pl.String(),
    }

    def __init__(
        self,
        *,
        ratio_ok: float = 0.6,
        ratio_floor: float = 0.08,
        min_group_size: int = 20,
        z_start: float = 2.5,
        z_full: float = 6.0,
        z_weight: float = 0.5,
        item_weight: float = 0.5,
        item_max_ratio: float = 0.35,
        rates: dict[str, float] | None = None,
        condition_factors: dict[str, float] | None = None,
        standard_volumes: dict[str, float] | None = None,
        volume_exponent: float = 0.5,
    ) -> None:
        self.ratio_ok = ratio_ok
        self.ratio_floor = ratio_floor
        self.min_group_size = min_group_size
        self.z_start = z_start
        self.z_full = z_full
        self.z_weight = z_weight
        self.item_weight = item_weight
        self.item_max_ratio = item_max_ratio
        self.rates = rates
        self.condition_factors = condition_factors
        self.standard_volumes = standard_volumes
        self.volume_exponent = volume_exponent

    def fit(self, registry: Registry) -> Self:
        if not 0 < self.ratio_floor < self.ratio_ok:
            raise ValueError("need 0 < ratio_floor < ratio_ok")
        brands = registry.brands
        self.references_ = brands.select(
            pl.col("brand").alias("__pb"),
            pl.col("category").alias("__pcat"),
            pl.col("reference_price").alias("__pref"),
        )

        def per_brand(*, dearest: bool, cat: str, ref: str) -> pl.DataFrame:
            """Each brand's cheapest (or dearest) row: ``__pb``, ``cat``, ``ref``."""
            return (
                brands.sort("reference_price", descending=dearest)
                .group_by("brand", maintain_order=True)
                .first()
                .select(
                    pl.col("brand").alias("__pb"),
                    pl.col("category").alias(cat),
                    pl.col("reference_price").alias(ref),
                )
            )

        # without a matching category, compare with the brand's cheapest category: fewer false flags
        self.fallback_ = per_brand(dearest=False, cat="__fcat", ref="__fref")
        # a small good is priced as a share of the brand's dearest goods
        self.dearest_ = per_brand(dearest=True, cat="__dcat", ref="__dref")
        self.per_brand_ = self.fallback_.join(self.dearest_, on="__pb", maintain_order="left")
        self.brand_keys_ = pl.DataFrame(
            {
                "__bkey": [brand_key(b) for b in registry.brand_names],
                "__declared": registry.brand_names,
            }
        )
        self.rates_ = dict(self.rates or DEFAULT_RATES)
        self.condition_factors_ = dict(self.condition_factors or DEFAULT_CONDITION_FACTORS)
        volumes = (
            DEFAULT_STANDARD_VOLUMES if self.standard_volumes is None else self.standard_volumes
        )
        if any(not v > 0 for v in volumes.values()):
            raise ValueError(f"standard_volumes must be > 0 ml, got {volumes}")
        self.standard_volumes_ = {category_key(c): float(v) for c, v in volumes.items()}
        # the same tables as dictionaries, for score_record
        self.reference_by_brand_category_ = {
            (b, c): p for b, c, p in self.references_.iter_rows() if b is not None
        }
        self.fallback_by_brand_ = {b: (c, p) for b, c, p in self.fallback_.iter_rows()}
        self.dearest_by_brand_ = {b: (c, p) for b, c, p in self.dearest_.iter_rows()}
        self.brand_by_key_ = dict(
            zip(self.brand_keys_["__bkey"], self.brand_keys_["__declared"], strict=True)
        )
        # product lines: an alias on some of a brand's rows only ("Apple Watch" on the watches
        # row) prices a title naming it with those rows, the cheapest where the listing's
        # category is none of them
        rows: dict[str, list[tuple[str, float, frozenset[str]]]] = {}
        #: a line's name as the registry first writes it ("Apple Watch"), for reasons
        self.line_names_: dict[tuple[str, str], str] = {}
        for b, c, p, aliases in brands.select(
            "brand", "category", "reference_price", "aliases"
        ).iter_rows():
            rows.setdefault(b, []).append((c, p, frozenset(brand_key(a) for a in aliases)))
            for a in aliases:
                self.line_names_.setdefault((b, brand_key(a)), a)
        self.lines_: dict[tuple[str, str], tuple[frozenset[str], str, float]] = {}
        for b, brand_rows in rows.items():
            for key in frozenset().union(*(keys for _, _, keys in brand_rows)):
                on = [(c, p) for c, p, keys in brand_rows if key in keys]
                if len(on) < len(brand_rows):
                    cheapest = min(on, key=lambda cp: (cp[1], cp[0]))
                    self.lines_[(b, key)] = (frozenset(c for c, _ in on), *cheapest)
        # the same as tables: a line's cheapest row, and every (brand, key, category) of lines
        self.line_rows_ = pl.DataFrame(
            [(b, k, c, p, self.line_names_[(b, k)]) for (b, k), (_, c, p) in self.lines_.items()],
            schema={
                "b": pl.String,
                "k": pl.String,
                "__lcat": pl.String,
                "__lref": pl.Float64,
                "__lname": pl.String,
            },
            orient="row",
        )
        self.line_members_ = pl.Series(
            [f"{b}\x00{k}\x00{c}" for (b, k), (cats, _, _) in self.lines_.items() for c in cats],
            dtype=pl.String,
        )
        # listings' categories as marketplaces name them, and the nouns of goods in titles
        self.taxonomy_ = registry.taxonomy
        self.title_noun_categories_ = pl.DataFrame(
            [(n, c) for n, cats in self.taxonomy_.title_nouns.items() for c in cats],
            schema={"noun": pl.String, "c": pl.String},
            orient="row",
        )
        self.categories_by_brand_: dict[str, dict[str, float]] = {}
        for b, c, p in self.references_.iter_rows():
            self.categories_by_brand_.setdefault(b, {})[c] = p
        return self

    # ---- stages

    def priced_listings(self, lf: pl.LazyFrame) -> pl.LazyFrame:
        """Add ``__pb`` (brand), reference price and category, ``price_usd``, ``price_ratio``."""
        frame = lf.collect()
        cols = set(frame.columns)
        # string work on brand, category, currency and condition once per distinct value
        text = pl.col("v").cast(pl.String)
        # (source column, its derivations: name -> (expression, dtype, value if absent))
        derived: dict[str, dict[str, tuple[pl.Expr, pl.DataType, Any]]] = {
            "currency": {
                "__prate": (
                    text.str.to_uppercase().replace_strict(
                        self.rates_, default=None, return_dtype=pl.Float64
                    ),
                    pl.Float64(),
                    self.rates_.get("USD"),
                )
            },
            "condition": {
                "__pfactor": (
                    text.str.to_lowercase().replace_strict(
                        self.condition_factors_, default=1.0, return_dtype=pl.Float64
                    ),
                    pl.Float64(),
                    self.condition_factors_.get("new", 1.0),
                ),
                "__pcond": (text.str.to_lowercase(), pl.String(), "new"),
            },
        }
        none = pl.repeat(None, frame.height, dtype=pl.String, eager=True)
        values: list[pl.Series | pl.Expr] = []
        for source, outs in derived.items():
            if source in cols:
                found = per_values(
                    frame.get_column(source), {n: (e, t) for n, (e, t, _) in outs.items()}
                )
                values += found.get_columns()
            else:
                values += [
                    pl.repeat(absent, frame.height, dtype=t, eager=True).alias(n)
                    for n, (_, t, absent) in outs.items()
                ]
        # "Pre-owned Louis Vuitton Neverfull" without a condition: the title's word counts, on
        # the few rows that say so
        by_name = {v.name: v for v in values if isinstance(v, pl.Series)}
        pcond, pfactor = by_name["__pcond"], by_name["__pfactor"]
        at = pl.Series("at", [], dtype=pl.UInt32)
        if "text_condition" in cols:
            claim = frame.get_column("text_condition").cast(pl.String)
            at = (claim.is_not_null() & (pcond.fill_null("new") == "new")).arg_true()
            said = claim.gather(at)
            factors = said.replace_strict(
                self.condition_factors_, default=1.0, return_dtype=pl.Float64
            )
            pcond, pfactor = pcond.clone().scatter(at, said), pfactor.clone().scatter(at, factors)
        claimed = pl.repeat(False, frame.height, dtype=pl.Boolean, eager=True).scatter(at, True)
        values = [
            v
            for v in values
            if not (isinstance(v, pl.Series) and v.name in ("__pcond", "__pfactor"))
        ] + [pcond, pfactor, claimed.alias("__pclaimed"), *self._product_lines(frame, cols)]
        lf = frame.with_columns(
            (
                declared_brands(frame.get_column("brand"), self.brand_keys_)
                if "brand" in cols
                else none
            ).alias("__declared"),
            *values,
        ).lazy()
        matched = pl.col("text_brand") if "text_brand" in cols else pl.lit(None, dtype=pl.String)
        accessory = (
            pl.col("text_accessory").fill_null(False) if "text_accessory" in cols else pl.lit(False)
        )
        # goods sold for parts or not working are not compared with the brand's price either
        accessory = accessory | (pl.col("__pcond") == PARTS).fill_null(False)
        item, share = (
            (pl.col("text_item"), pl.col("text_item_share").cast(pl.Float64))
            if {"text_item", "text_item_share"} <= cols
            else (pl.lit(None, dtype=pl.String), pl.lit(None, dtype=pl.Float64))
        )
        lf = lf.with_columns(
            item.alias("__iname"),
            share.alias("__ishare"),
            pl.coalesce(matched, pl.col("__declared")).alias("__pb"),
            (pl.col("price").cast(pl.Float64) * pl.col("__prate")).alias("price_usd"),
            accessory.alias("__paccessory"),
        ).drop("__prate")
        chosen = lf.collect()
        lf = (
            chosen.with_columns(self._references(chosen, cols))
            .lazy()
            .with_columns(
                pl.when(pl.col("__paccessory") | pl.col("__pweak"))
                .then(None)
                .otherwise(pl.coalesce("__pref", "__fref"))
                .alias("price_reference"),
                pl.when(pl.col("__pref").is_not_null())
                .then(pl.col("__pcat"))
                .otherwise(pl.col("__fcat"))
                .alias("__refcat"),
            )
        )
        # a small good far cheaper than the goods of its reference: "Gucci key ring" listed
        # under accessories is priced as those, whose reference is near the key ring's
        item_ref = pl.col("__ishare") * pl.col("__dref")
        lf = lf.with_columns(
            pl.when(item_ref <= self.item_max_ratio * pl.col("price_reference"))
            .then(item_ref)
            .alias("__iref")
        )
        priced = lf.collect()
        return (
            priced.with_columns(self._volumes(priced))
            .lazy()
            .with_columns((pl.col("__pfactor") * pl.col("__vfactor")).alias("__adj"))
            .with_columns(
                (pl.col("price_usd") / (pl.col("price_reference") * pl.col("__adj"))).alias(
                    "price_ratio"
                ),
                (pl.col("price_usd") / (pl.col("__iref") * pl.col("__pfactor"))).alias("__iratio"),
            )
        )

    def _volumes(self, priced: pl.DataFrame) -> list[pl.Series]:
        """``__vfactor`` (1.0 unless the reference category has a standard volume and the title
        states a volume) and ``__vtext`` (that volume as written: the largest in the title).
        Only the rows priced against such a category are searched."""
        n = priced.height
        factor = pl.repeat(1.0, n, dtype=pl.Float64, eager=True).alias("__vfactor")
        written = pl.repeat(None, n, dtype=pl.String, eager=True).alias("__vtext")
        if not self.standard_volumes_ or "title" not in priced.columns:
            return [factor, written]
        at = (
            priced.select(
                pl.col("__refcat").is_in(list(self.standard_volumes_))
                & pl.col("price_reference").is_not_null()
            )
            .to_series()
            .arg_true()
        )
        if not at.len():
            return [factor, written]
        number = pl.col("v").str.extract(f"^({NUMBER})").str.replace(",", ".")
        found = (
            priced.select("title", "__refcat")[at]
            .select(
                pl.int_range(pl.len(), dtype=pl.UInt32).alias("r"),
                pl.col("title")
                .cast(pl.String)
                .str.to_lowercase()
                .str.extract_all(VOLUME)
                .alias("v"),
                pl.col("__refcat")
                .replace_strict(self.standard_volumes_, return_dtype=pl.Float64)
                .alias("std"),
            )
            .explode("v")
            .drop_nulls("v")
            .with_columns(
                (
                    number.cast(pl.Float64)
                    * pl.when(pl.col("v").str.contains("oz", literal=True))
                    .then(pl.lit(FL_OZ_ML))
                    .otherwise(pl.lit(1.0))
                ).alias("ml")
            )
            # the largest volume, the first written of equals
            .sort(["r", "ml"], descending=[False, True], maintain_order=True)
            .group_by("r", maintain_order=True)
            .first()
            .filter((pl.col("ml") / pl.col("std") - 1).abs() > VOLUME_SAME)
        )
        lo, hi = VOLUME_FACTOR_BOUNDS
        rows = at.gather(found.get_column("r"))
        scaled = found.select(
            ((pl.col("ml") / pl.col("std")).pow(self.volume_exponent)).clip(lo, hi)
        ).to_series()
        return [factor.scatter(rows, scaled), written.scatter(rows, found.get_column("v"))]

    def _product_lines(self, frame: pl.DataFrame, cols: set[str]) -> list[pl.Series]:
        """``__lcat``, ``__lref``: the cheapest row of the product line the title names, and
        ``__lname`` its name. Null for the many rows that name no line."""
        n = frame.height
        lcat = pl.repeat(None, n, dtype=pl.String, eager=True).alias("__lcat")
        lref = pl.repeat(None, n, dtype=pl.Float64, eager=True).alias("__lref")
        lname = pl.repeat(None, n, dtype=pl.String, eager=True).alias("__lname")
        if not self.lines_ or not {"text_key", "text_brand"} <= cols:
            return [lcat, lref, lname]
        keys = frame.get_column("text_key").cast(pl.String)
        at = keys.is_in(self.line_rows_.get_column("k").implode()).arg_true()
        if at.len() == 0:
            return [lcat, lref, lname]
        # a few rows a batch: those whose title names an alias of some product line
        sub = pl.DataFrame(
            {
                "i": at,
                "b": frame.get_column("text_brand").cast(pl.String).gather(at),
                "k": keys.gather(at),
            }
        )
        hits = sub.join(self.line_rows_, on=["b", "k"], how="inner")
        where = hits.get_column("i")
        return [
            lcat.scatter(where, hits.get_column("__lcat")),
            lref.scatter(where, hits.get_column("__lref")),
            lname.scatter(where, hits.get_column("__lname")),
        ]

    def _references(self, frame: pl.DataFrame, cols: set[str]) -> list[pl.Series]:
        """Which of the brand's reference rows each listing is compared with, and why.

        ``__pref``/``__pcat``: the row its category gives, through the taxonomy: of the
        brand's categories that the most specific segment covering any of them covers (those
        of the product line the title names, if it names one), the cheapest the title's nouns
        name, else the cheapest. ``__fref``/``__fcat``: the row used without one: the product
        line's cheapest, else the cheapest the title's nouns name, else the brand's cheapest.
        ``__dref``/``__dcat``: the brand's dearest row. ``__pweak``: a plain mention of the
        brand alone (no declared brand, no counterfeit phrase) in a category that covers none
        of the brand's: not priced. ``__pstatus``, ``__pagrees``, ``__plevel``,
        ``__pmatched``, ``__pnamed``, ``__pnoun``, ``__tnoun``, ``__pcategory``: what the
        reason's note says of where the row came from (see :meth:`_basis`).

        The category's part is worked out once per distinct (brand, category, product line):
        a batch has far fewer of those than rows."""
        n = frame.height
        brands = self.per_brand_
        bi = frame.select(index_of(pl.col("__pb"), brands.get_column("__pb"))).to_series()
        fcat, fref, dcat, dref = (
            brands.get_column(c).gather(bi) for c in ("__fcat", "__fref", "__dcat", "__dref")
        )
        pb = frame.get_column("__pb")
        nulls = pl.repeat(None, n, dtype=pl.String, eager=True)
        falses = pl.repeat(False, n, dtype=pl.Boolean, eager=True)
        category = frame.get_column("category").cast(pl.String) if "category" in cols else nulls
        key = frame.get_column("text_key").cast(pl.String) if "text_key" in cols else nulls
        lcat, lref = frame.get_column("__lcat"), frame.get_column("__lref")
        line_key = pl.select(pl.when(lcat.is_not_null()).then(key)).to_series()
        refs = self.references_.rename({"__pb": "b", "__pcat": "c", "__pref": "p"})
        # per distinct (brand, category, line): what the category says for the brand; the
        # key is a number: brand index and category index (a row naming a line is its own)
        values = category.unique().drop_nulls()
        vid = pl.select(index_of(pl.lit(category), values)).to_series()
        pair = pl.select(
            pl.when(line_key.is_null())
            .then(
                (bi.cast(pl.Int64).fill_null(-1) + 1) * (values.len() + 1)
                + vid.cast(pl.Int64).fill_null(-1)
                + 1
            )
            .otherwise(-pl.int_range(n, dtype=pl.Int64) - 1)
        ).to_series()
        firsts = pair.is_first_distinct()
        distinct = pl.DataFrame({"b": pb, "v": category, "k": line_key}).filter(firsts)
        back = pl.select(index_of(pl.lit(pair), pair.filter(firsts))).to_series()
        read = pl.concat(
            [distinct, self.taxonomy_.resolve_column(distinct.get_column("v"))], how="horizontal"
        ).with_row_index("d")
        covered = (
            read.filter(pl.col("b").is_not_null() & (pl.col("category_status") == "known"))
            .select(
                "d",
                "b",
                "k",
                pl.col("category_covers").alias("c"),
                pl.col("category_ranks").alias("r"),
                pl.col("category_texts").alias("t"),
            )
            .explode(["c", "r", "t"])
            .join(refs, on=["b", "c"], how="inner")
            # the most specific segment of the path that covers one of the brand's categories
            .filter(pl.col("r") == pl.col("r").min().over("d"))
        )
        agreed = covered.unique("d", keep="first", maintain_order=True)
        # of a product line's alias, its own rows
        member = pl.concat_str(["b", "k", "c"], separator="\x00")
        covered = covered.filter(
            pl.col("k").is_null() | member.is_in(self.line_members_.implode())
        ).sort(["d", "p", "c"])
        cheapest = covered.unique("d", keep="first", maintain_order=True)
        counts = covered.group_by("d").agg(pl.len().cast(pl.UInt32).alias("count"))
        m = read.height

        def per_key(table: pl.DataFrame, col: str, dtype: pl.DataType, default: Any) -> pl.Series:
            out = pl.repeat(default, m, dtype=dtype, eager=True)
            return out.scatter(table.get_column("d"), table.get_column(col)).gather(back)

        # "bags" under bags: the category as the registry names it, which a note would repeat
        cheapest = cheapest.join(agreed.select("d", "t"), on="d", how="left", suffix="_level")
        cheapest = cheapest.with_columns(
            pl.Series(
                "named",
                [
                    category_words(t) == c.replace("_", " ")
                    for t, c in zip(
                        cheapest.get_column("t_level").to_list(),
                        cheapest.get_column("c").to_list(),
                        strict=True,
                    )
                ],
                dtype=pl.Boolean,
            )
        )
        agrees = per_key(agreed.with_columns(pl.lit(True).alias("a")), "a", pl.Boolean(), False)
        as_named = per_key(cheapest, "named", pl.Boolean(), False)
        level = per_key(agreed, "t", pl.String(), None)
        count = per_key(counts, "count", pl.UInt32(), 0)
        pref = per_key(cheapest, "p", pl.Float64(), None)
        pcat = per_key(cheapest, "c", pl.String(), None)

        def of_key(col: str) -> pl.Series:
            return read.get_column(col).gather(back)

        status = of_key("category_status")
        matched = of_key("category_matched")
        row_key = back
        strong = (
            frame.get_column("text_strong_phrases").fill_null(0) > 0
            if "text_strong_phrases" in cols
            else falses
        )
        plain = (
            frame.get_column("text_match").is_in(["exact", "alias", "native"]).fill_null(False)
            if "text_match" in cols and "text_brand" in cols
            else falses
        )
        weak = (
            (status == "known")
            & ~agrees
            & plain
            & frame.get_column("__declared").is_null()
            & ~strong
            & pb.is_not_null()
        )
        without = pb.is_not_null() & (count == 0) & ~weak & lcat.is_null()
        # the title's nouns of goods, read where they choose between rows (few rows)
        need = ((count > 1) | without).arg_true()
        pnoun = tnoun = nulls
        # the rows that name a product line take its cheapest row where they have no other
        lines = lcat.is_not_null().arg_true()
        if need.len():
            titles = frame.get_column("title").cast(pl.String).gather(need)
            # each distinct title read once
            distinct_titles = titles.unique().drop_nulls()
            words = category_words_series(distinct_titles)
            found = pl.DataFrame({"t": distinct_titles, "w": words}).select(
                "t", self.taxonomy_.title_nouns_expr(pl.col("w")).alias("noun")
            )
            nouns = (
                pl.DataFrame(
                    {"i": need, "b": pb.gather(need), "d": row_key.gather(need), "t": titles}
                )
                .join(found, on="t", how="inner")
                .explode("noun")
                .join(self.title_noun_categories_, on="noun", how="inner")
                .join(refs, on=["b", "c"], how="inner")
                .sort(["i", "p", "c", "noun"])
            )
            multi = (count > 1).gather(need)
            # several of the brand's rows covered: the cheapest the title names
            named = (
                nouns.filter(pl.col("i").is_in(need.filter(multi).implode()))
                .join(covered.select("d", "c"), on=["d", "c"], how="semi")
                .unique("i", keep="first", maintain_order=True)
            )
            by_title = nouns.filter(pl.col("i").is_in(need.filter(~multi).implode())).unique(
                "i", keep="first", maintain_order=True
            )
            at = named.get_column("i")
            pref = pref.scatter(at, named.get_column("p"))
            pcat = pcat.scatter(at, named.get_column("c"))
            pnoun = pnoun.clone().scatter(at, named.get_column("noun"))
            at = by_title.get_column("i")
            tnoun = tnoun.clone().scatter(at, by_title.get_column("noun"))
            fref = fref.scatter(at, by_title.get_column("p"))
            fcat = fcat.scatter(at, by_title.get_column("c"))
        return [
            pref.alias("__pref"),
            pcat.alias("__pcat"),
            fcat.scatter(lines, lcat.gather(lines)).alias("__fcat"),
            fref.scatter(lines, lref.gather(lines)).alias("__fref"),
            dcat.alias("__dcat"),
            dref.alias("__dref"),
            weak.alias("__pweak"),
            # what the reasons' note says (formatted for the rows that get a reason only)
            status.alias("__pstatus"),
            agrees.alias("__pagrees"),
            level.alias("__plevel"),
            matched.alias("__pmatched"),
            (as_named & pnoun.is_null()).alias("__pnamed"),
            pnoun.alias("__pnoun"),
            tnoun.alias("__tnoun"),
            category.alias("__pcategory"),
        ]

    @staticmethod
    def _shown() -> pl.Expr:
        """The listing's category as the reasons quote it: the segment that gave the brand's
        category, else the most specific one known, else the value as written."""
        return pl.coalesce("__plevel", "__pmatched", "__pcategory").str.replace_all(
            '"', "'", literal=True
        )

    @classmethod
    def _basis(cls) -> pl.Expr:
        """The note a price reason ends with: where its reference row came from (see
        :meth:`_references`); empty for a category named as the registry names it."""
        shown = cls._shown()
        where = (
            pl.when(pl.col("__pstatus") == "absent")
            .then(pl.lit("no category"))
            .when(pl.col("__pstatus") == "unmatched")
            .then(pl.format('category "{}" not known', shown))
            .when(~pl.col("__pagrees"))
            .then(pl.format('category "{}" is none of {}\'s', shown, pl.col("__pb")))
            .otherwise(pl.format('listed under "{}"', shown))
        )
        why = (
            pl.when(pl.col("__pref").is_not_null())
            .then(
                pl.when(pl.col("__pnoun").is_not_null()).then(
                    pl.format('the title says "{}"', pl.col("__pnoun"))
                )
            )
            .when(pl.col("__lname").is_not_null())
            .then(pl.format('the title names "{}"', pl.col("__lname")))
            .when(pl.col("__tnoun").is_not_null())
            .then(pl.format('the title says "{}"', pl.col("__tnoun")))
            .otherwise(pl.format("{}'s cheapest reference", pl.col("__pb")))
        )
        note = pl.format(" ({})", pl.concat_str(where, why, separator="; ", ignore_nulls=True))
        return (
            pl.when(pl.col("__pb").is_null() | pl.col("__pnamed")).then(pl.lit("")).otherwise(note)
        )

    def score_record(
        self,
        record: Mapping[str, Any],
        statistics: Mapping[tuple[str, str], tuple[Any, ...]] | None = None,
    ) -> dict[str, Any]:
        """This filter's columns for one validated listing that already carries the text
        filter's evidence, equal to :meth:`finalised` of :meth:`evidence` on a one-row frame.
        ``statistics``: :meth:`record_statistics` of the run statistics (None: no group known,
        so the robust z-score is null)."""
        check_is_fitted(self)
        declared_raw = record.get("brand")
        bkey = brand_key_expr(None if declared_raw is None else str(declared_raw))
        declared = None if bkey is None else self.brand_by_key_.get(bkey)
        brand = record.get("text_brand") or declared
        currency = record.get("currency")
        currency = "USD" if currency is None else str(currency).upper()
        condition = record.get("condition")
        condition = "new" if condition is None else str(condition).lower()
        claim = record.get("text_condition")
        claimed = claim is not None and condition == "new"
        if claimed:
            condition = str(claim)
        rate = self.rates_.get(currency)
        price = record.get("price")
        price_usd = None if rate is None or price is None else float(price) * rate
        factor = self.condition_factors_.get(condition, 1.0)
        accessory = bool(record.get("text_accessory") or False) or condition == PARTS
        pref, pcat, fcat, fref, weak, basis, shown = self._reference_record(record, brand, declared)
        reference = None if accessory or weak else (pref if pref is not None else fref)
        refcat = pcat if pref is not None else fcat
        vfactor, vtext = 1.0, None
        standard = self.standard_volumes_.get(refcat) if refcat is not None else None
        title = record.get("title")
        if standard is not None and reference is not None and title is not None:
            found = [m.group(0) for m in re.finditer(VOLUME, str(title).lower())]
            largest = max(found, key=_volume_ml) if found else None
            if largest is not None and abs(_volume_ml(largest) / standard - 1) > VOLUME_SAME:
                lo, hi = VOLUME_FACTOR_BOUNDS
                vtext = largest
                vfactor = min(max((_volume_ml(vtext) / standard) ** self.volume_exponent, lo), hi)
        ratio = None
        if price_usd is not None and reference is not None:
            ratio = price_usd / (reference * factor * vfactor)
        group = None
        if statistics is not None and brand is not None and refcat is not None:
            group = statistics.get((brand, refcat))
        z = None
        if group is not None and price_usd is not None:
            median, mad, n = group[0], group[1] * 1.4826, group[2]
            if n is not None and n >= self.min_group_size and mad > 1e-9:
                z = (_ln(price_usd / (factor * vfactor)) - median) / mad
        s_z = 0.0
        if z is not None:
            s_z = min(max((-z - self.z_start) / (self.z_full - self.z_start), 0.0), 1.0)
        item, share = record.get("text_item"), record.get("text_item_share")
        dcat, dref = self.dearest_by_brand_.get(brand, (None, None)) if brand else (None, None)
        item_ref = None if share is None or dref is None else float(share) * dref
        if item_ref is not None and not (
            reference is not None and item_ref <= self.item_max_ratio * reference
        ):
            item_ref = None
        item_ratio = None
        if price_usd is not None and item_ref is not None:
            item_ratio = price_usd / (item_ref * factor)
        reasons: list[str] = []
        score = None
        ln_ok, ln_floor = math.log(self.ratio_ok), math.log(self.ratio_floor)

        def s_of(r: float) -> float:
            return min(max((ln_ok - _ln(r)) / (ln_ok - ln_floor), 0.0), 1.0)

        def reason(r: float, what: object, ref: float, note: str, volume: str | None) -> str:
            assert price_usd is not None
            adj = factor * (vfactor if volume is not None else 1.0)
            pct = r * adj * 100
            shown = pl_str(pl_round(pct, 1) if pct < 1 else pl_round(pct, 0))
            said = [condition] if condition in ("used", "refurbished") else []
            if volume is not None:
                said.append(volume)
            if said:
                claim_note = ", as the title says" if claimed else ""
                note = f" ({', '.join(said)} price {_money_str(ref * adj)}{claim_note}){note}"
            return (
                f"price {_money_str(price_usd)} is {shown.removesuffix('.0')}% of "
                f"{brand} {str(what).replace('_', ' ')} reference {_money_str(ref)}{note}"
            )

        if ratio is not None:
            assert reference is not None
            s_ratio = s_of(ratio)
            s_item = None
            if item_ratio is not None:
                assert item_ref is not None and share is not None and dref is not None
                s_ratio, s_item = self.item_weight * s_ratio, s_of(item_ratio)
                if s_item >= 0.2:
                    pct_share = pl_str(pl_round(float(share) * 100, 1)).removesuffix(".0")
                    dearest = f"{brand} {str(dcat).replace('_', ' ')} {_money_str(dref)}"
                    reasons.append(
                        reason(item_ratio, item, item_ref, f" ({pct_share}% of {dearest})", None)
                    )
            score = max(s_ratio, s_item if s_item is not None else 0.0, self.z_weight * s_z)
            if s_ratio >= 0.2:
                note = ""
                if item_ratio is not None:
                    note = f' (weighed x{self.item_weight:g}: "{item}" may sell for less)'
                reasons.append(reason(ratio, refcat, reference, note + basis, vtext))
        if z is not None and self.z_weight * s_z >= 0.2:
            assert group is not None and refcat is not None
            reasons.append(
                f"price is {pl_str(pl_round(-z, 1))} robust SDs below the median for {brand} "
                f"{refcat.replace('_', ' ')} ({group[2]} listings)"
            )
        if accessory and brand is not None:
            reasons.append(f"accessory, part or packaging: price not compared with {brand}'s")
        if weak and not accessory:
            quoted = str(shown).replace('"', "'")
            reasons.append(
                f'category "{quoted}" is none of {brand}\'s and only the name points to it: '
                "price not compared"
            )
        return {
            "price_score": score,
            "price_reasons": reasons,
            "price_brand": brand,
            "price_usd": price_usd,
            "price_reference": reference,
            "price_ratio": ratio,
            "price_robust_z": z,
        }

    def _reference_record(
        self, record: Mapping[str, Any], brand: str | None, declared: str | None
    ) -> tuple[float | None, str | None, str | None, float | None, bool, str, str | None]:
        """:meth:`_references` for one listing: ``(pref, pcat, fcat, fref, weak, basis,
        shown)``."""
        category = record.get("category")
        read = self.taxonomy_.resolve(None if category is None else str(category))
        text_brand, key = record.get("text_brand"), record.get("text_key")
        line = self.lines_.get((text_brand, key)) if text_brand and key else None
        rows = self.categories_by_brand_.get(brand, {}) if brand else {}
        covered, level = read.for_brand(rows)
        agrees = bool(covered)
        if line is not None:
            covered = [c for c in covered if c in line[0]]
        strong = (record.get("text_strong_phrases") or 0) > 0
        plain = text_brand is not None and record.get("text_match") in ("exact", "alias", "native")
        weak = (
            read.status == "known"
            and not agrees
            and plain
            and declared is None
            and not strong
            and brand is not None
        )
        without = brand is not None and not covered and not weak and line is None
        named: list[tuple[float, str, str]] = []
        title = record.get("title")
        if (len(covered) > 1 or without) and title is not None:
            words = category_words(str(title))
            named = sorted(
                (rows[c], c, noun)
                for noun in self.taxonomy_.title_nouns_in(words)
                for c in self.taxonomy_.title_nouns[noun]
                if c in rows
            )
        pref = pcat = pnoun = None
        if covered:
            in_title = [x for x in named if x[1] in covered] if len(covered) > 1 else []
            if in_title:
                pref, pcat, pnoun = in_title[0]
            else:
                pref, pcat = min((rows[c], c) for c in covered)
        fcat, fref = self.fallback_by_brand_.get(brand, (None, None)) if brand else (None, None)
        tnoun = lname = None
        if line is not None:
            fcat, fref = line[1], line[2]
            lname = self.line_names_[(str(text_brand), str(key))]
        elif without and named:
            fref, fcat, tnoun = named[0]
        shown = (
            level if level is not None else read.matched if read.matched is not None else category
        )
        basis = ""
        if brand is not None:
            if read.status == "absent":
                where = "no category"
            elif read.status == "unmatched":
                where = f'category "{str(shown).replace(chr(34), chr(39))}" not known'
            elif not agrees:
                where = f'category "{str(shown).replace(chr(34), chr(39))}" is none of {brand}\'s'
            else:
                where = f'listed under "{str(shown).replace(chr(34), chr(39))}"'
            if pcat is not None:
                why = None if pnoun is None else f'the title says "{pnoun}"'
            elif lname is not None:
                why = f'the title names "{lname}"'
            elif tnoun is not None:
                why = f'the title says "{tnoun}"'
            else:
                why = f"{brand}'s cheapest reference"
            as_named = (
                pcat is not None
                and pnoun is None
                and category_words(str(shown)) == pcat.replace("_", " ")
            )
            if not as_named:
                basis = f" ({'; '.join(x for x in (where, why) if x is not None)})"
        return pref, pcat, fcat, fref, weak, basis, shown

    # ---- run statistics: the robust statistics of the log price per brand and category

    def aggregate(self) -> GroupQuantiles:
        """Median and MAD of the condition-adjusted log USD price per (brand, reference
        category): the group a listing's price reference comes from."""
        return GroupQuantiles(GROUP_KEYS, "log_price")

    def statistic_values(self, evidence: pl.LazyFrame) -> pl.LazyFrame:
        """``price_brand``, ``price_category`` (the reference's category) and ``log_price`` of
        every listing that has a reference price and sells no small good (a small good's price
        says nothing of its brand's goods' prices)."""
        check_is_fitted(self)
        return evidence.filter(pl.col("__price_counted").fill_null(False)).select(
            pl.col("price_brand"),
            pl.col("__price_category").alias("price_category"),
            pl.col("__price_log").alias("log_price"),
        )

    def statistics_from_partial(self, partial: pl.DataFrame) -> pl.DataFrame:
        """``price_brand``, ``price_category``, ``price_group_median``, ``price_group_mad``,
        ``price_group_n`` and ``price_group_exact`` (False: from a sketch) per group."""
        return (
            self.aggregate()
            .result(partial)
            .select(
                *GROUP_KEYS,
                pl.col("median").alias("price_group_median"),
                pl.col("mad").alias("price_group_mad"),
                pl.col("n").alias("price_group_n"),
                pl.col("exact").alias("price_group_exact"),
            )
        )

    def record_statistics(self, statistics: pl.DataFrame) -> dict[tuple[str, str], tuple[Any, ...]]:
        """Per (brand, category): median, MAD and count."""
        return {
            (b, c): (m, d, n)
            for b, c, m, d, n in statistics.select(
                *GROUP_KEYS, "price_group_median", "price_group_mad", "price_group_n"
            ).iter_rows()
        }

    def _evidence(self, listings: pl.LazyFrame) -> pl.LazyFrame:
        cols = listings.collect_schema().names()
        scored = self.priced_listings(listings).collect()
        ln_ok, ln_floor = math.log(self.ratio_ok), math.log(self.ratio_floor)

        def s_of(ratio: pl.Expr) -> pl.Expr:
            return ((ln_ok - ratio.log()) / (ln_ok - ln_floor)).clip(0.0, 1.0)

        # a small good: its own reference, and the brand's at a lower weight
        item = pl.col("__iratio").is_not_null()
        s_item = s_of(pl.col("__iratio"))
        weight = pl.when(item).then(pl.lit(self.item_weight)).otherwise(pl.lit(1.0))
        s_ratio = s_of(pl.col("price_ratio")) * weight

        def ratio_reason(
            ratio: str, what: str, reference: str, note: pl.Expr, *, volume: bool
        ) -> pl.Expr:
            factor = pl.col("__adj" if volume else "__pfactor")
            pct = pl.col(ratio) * factor * 100
            used = pl.col("__pcond").is_in(["used", "refurbished"])
            stated = pl.col("__vtext").is_not_null() if volume else pl.lit(False)
            condition_note = (
                pl.when(used | stated)
                .then(
                    pl.format(
                        " ({} price {}{})",
                        pl.concat_str(
                            pl.when(used).then(pl.col("__pcond")),
                            pl.when(stated).then(pl.col("__vtext")),
                            separator=", ",
                            ignore_nulls=True,
                        ),
                        _money(pl.col(reference) * factor),
                        pl.when(pl.col("__pclaimed"))
                        .then(pl.lit(", as the title says"))
                        .otherwise(pl.lit("")),
                    )
                )
                .otherwise(pl.lit(""))
            )
            return pl.format(
                "price {} is {}% of {} {} reference {}{}{}",
                _money(pl.col("price_usd")),
                pl.when(pct < 1)
                .then(pct.round(1))
                .otherwise(pct.round(0))
                .cast(pl.String)
                .str.replace(r"\.0$", ""),
                pl.col("__pb"),
                _shown(what),
                _money(pl.col(reference)),
                condition_note,
                note,
            )

        weighed = pl.format(
            ' (weighed x{}: "{}" may sell for less)', pl.lit(f"{self.item_weight:g}"), "__iname"
        )
        brand_reason = ratio_reason(
            "price_ratio",
            "__refcat",
            "price_reference",
            pl.concat_str(pl.col("__inote"), self._basis()),
            volume=True,
        )
        share_pct = (pl.col("__ishare") * 100).round(1).cast(pl.String).str.replace(r"\.0$", "")
        item_reason = ratio_reason(
            "__iratio",
            "__iname",
            "__iref",
            pl.format(
                " ({}% of {} {} {})", share_pct, "__pb", _shown("__dcat"), _money(pl.col("__dref"))
            ),
            volume=False,
        )
        ratio_known = pl.col("price_ratio").is_not_null()
        scored = scored.with_columns(
            pl.when(ratio_known).then(pl.max_horizontal(s_ratio, s_item)).alias("__price_base"),
            pl.col("__pb").alias("price_brand"),
            s_ratio.alias("__sratio"),
            s_item.alias("__sitem"),
            # what the robust z-score compares: the condition- and volume-adjusted log price
            (pl.col("price_usd") / pl.col("__adj")).log().alias("__price_log"),
            # a small good's price says nothing of its brand's goods' prices
            (ratio_known & pl.col("__iratio").is_null()).alias("__price_counted"),
            pl.col("__refcat").alias("__price_category"),
            # the note that follows every other reason: an accessory's, or a plain name's
            # in a category none of the brand's (the two never meet)
            pl.when(pl.col("__paccessory") & pl.col("__pb").is_not_null())
            .then(
                pl.format(
                    "accessory, part or packaging: price not compared with {}'s", pl.col("__pb")
                )
            )
            .when(pl.col("__pweak") & ~pl.col("__paccessory"))
            .then(
                pl.format(
                    'category "{}" is none of {}\'s and only the name points to it: price '
                    "not compared",
                    self._shown(),
                    pl.col("__pb"),
                )
            )
            .alias("__price_note"),
        )
        # the small goods' notes on their few rows alone (a when computes both branches for
        # every row it is given)
        at = scored.select(item.arg_true()).to_series()
        notes = (
            scored.lazy()
            .filter(item)
            .select(
                pl.when(pl.col("__sitem") >= 0.2).then(item_reason).alias("__ireason"),
                weighed.alias("__inote"),
            )
            .collect()
        )
        scored = scored.with_columns(
            pl.repeat(None, scored.height, dtype=pl.String, eager=True)
            .scatter(at, notes.get_column("__ireason"))
            .alias("__ireason"),
            pl.repeat("", scored.height, dtype=pl.String, eager=True)
            .scatter(at, notes.get_column("__inote"))
            .alias("__inote"),
        )
        by_ratio = pl.col("__sratio") >= 0.2
        by_item = pl.col("__ireason").is_not_null()
        reasons = reasons_where(
            scored, by_ratio | by_item, pl.col("__ireason"), pl.when(by_ratio).then(brand_reason)
        )
        return (
            scored.with_columns(reasons.alias("__price_reasons"))
            .select([*cols, *EVIDENCE_COLUMNS, *self.carried_schema])
            .lazy()
        )

    def _finalised(self, evidence: pl.LazyFrame, statistics: pl.DataFrame) -> pl.LazyFrame:
        """The robust z-score against the listing's group in ``statistics`` (none where the
        group is not there, has fewer than ``min_group_size`` listings or no spread), the
        score and the reasons."""
        frame = evidence.collect()
        # each row's group statistics by value: a join would gather every column of the batch
        group = pl.concat_str([*GROUP_KEYS], separator="\x00")
        keys = statistics.select(group.alias("k")).get_column("k")
        at = frame.select(
            index_of(pl.concat_str(["price_brand", "__price_category"], separator="\x00"), keys)
        ).to_series()
        group_n = statistics.get_column("price_group_n").cast(pl.Int64).gather(at)
        median = statistics.get_column("price_group_median").cast(pl.Float64).gather(at)
        mad = statistics.get_column("price_group_mad").cast(pl.Float64).gather(at) * 1.4826
        z = (
            pl.DataFrame(
                {"log": frame.get_column("__price_log"), "m": median, "mad": mad, "n": group_n}
            )
            .select(
                pl.when((pl.col("n") >= self.min_group_size) & (pl.col("mad") > 1e-9)).then(
                    (pl.col("log") - pl.col("m")) / pl.col("mad")
                )
            )
            .to_series()
        )
        frame = frame.with_columns(z.alias("price_robust_z"), group_n.alias("__price_group_n"))
        s_z = (
            ((-pl.col("price_robust_z") - self.z_start) / (self.z_full - self.z_start))
            .clip(0.0, 1.0)
            .fill_null(0.0)
        )
        score = pl.when(pl.col("price_ratio").is_not_null()).then(
            pl.max_horizontal(pl.col("__price_base"), self.z_weight * s_z)
        )
        by_z = (self.z_weight * s_z) >= 0.2
        noted = pl.col("__price_note").is_not_null()
        z_reason = pl.format(
            "price is {} robust SDs below the median for {} {} ({} listings)",
            (-pl.col("price_robust_z")).round(1),
            pl.col("price_brand"),
            _shown("__price_category"),
            pl.col("__price_group_n"),
        )
        # most rows keep their evidence reasons: the few with a z-score's reason or a note get
        # them after the evidence's
        where = frame.select(((self.z_weight * s_z) >= 0.2) | noted).to_series()
        base = frame.get_column("__price_reasons")
        reasons = base
        if where.any():
            more = (
                frame.filter(where)
                .select(
                    pl.concat_list(
                        pl.col("__price_reasons"),
                        pl.when(by_z).then(z_reason),
                        pl.col("__price_note"),
                    )
                    .list.drop_nulls()
                    .alias("r")
                )
                .to_series()
            )
            # each row's reasons: its own, or its new ones placed after all the rows
            at = pl.select(
                pl.when(pl.lit(where))
                .then(where.cast(pl.UInt32).cum_sum() - 1 + base.len())
                .otherwise(pl.int_range(base.len(), dtype=pl.UInt32))
            ).to_series()
            reasons = pl.concat([base, more.cast(base.dtype)]).gather(at)
        return (
            frame.lazy()
            .with_columns(score.alias("price_score"), reasons.alias("price_reasons"))
            .drop("__price_group_n")
        )
