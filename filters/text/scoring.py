"""The text score of distinct listings: descriptions read, mentions corroborated (category,
declared brand, counterfeit phrase), one mention chosen per listing, its score and reasons.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from filters.base import (
    declared_brands,
    reason_list,
    spread,
)
from filters.core.normalise import (
    CJK_CLASS,
    PROBE_FOLD,
    ZERO_WIDTH_CLASS,
)
from filters.text.forms import _padded_words, _words, capped, folded, holding_any, native_text
from filters.text.phrases import PhraseHits, TextPhrases
from filters.text.policy import (
    CONTEXT_CHARS,
    DESCRIPTION_KINDS,
    KIND_NOTE,
    KIND_RANK,
    KIND_SCORE,
    PLAIN_KINDS,
)

if TYPE_CHECKING:
    pass


class TextScoring(TextPhrases):
    """Scores and reasons of distinct listings."""

    def description_read(self, desc: pl.Expr) -> pl.Expr:
        """What this filter reads of each description: its first
        :attr:`max_description_chars` characters where they hold a word of a phrase or name it
        searches for (written plainly: in a letter case, with or without accents), else
        nothing."""
        read = capped(desc.cast(pl.String), self.max_description_chars)
        low = read.str.to_lowercase().str.replace_many(list(PROBE_FOLD), list(PROBE_FOLD.values()))
        probe = low.str.contains(self.desc_probe_regex_)
        if self.desc_probe_other_:
            probe = probe | low.str.contains_any(self.desc_probe_other_)
        return (
            pl.when(probe).then(read).otherwise(pl.lit(None, dtype=pl.String)).alias("description")
        )

    def _score_distinct(self, listings: pl.DataFrame) -> pl.DataFrame:
        """This filter's columns for ``listings`` (aligned with it)."""
        cols = listings.columns
        base = self.normalised_titles(listings.lazy())
        titles = base.select("__tid", "__norm", "__ptext", "__raw")
        toks = self._tokens(titles)
        spaced = self._spaced(titles)
        phrases = self._phrase_counts(titles)
        none = pl.lit(None, dtype=pl.String)
        ctx = ["__tid", "pos", "n", "surface", "prev1", "prev2", "prev3"]
        mentions = [
            self._mentions(toks, titles).select(
                *ctx, "form", "brand", "kind", "edits", "ambiguous"
            ),
            spaced.join(self._spaced_matches(spaced), on="surface")
            .with_columns(
                pl.lit(-1, dtype=pl.Int64).alias("pos"),
                pl.lit(1, dtype=pl.Int8).alias("n"),
                none.alias("prev1"),
                none.alias("prev2"),
                none.alias("prev3"),
            )
            .select(*ctx, "form", "brand", "kind", "edits", "ambiguous"),
            phrases.native.join(
                self.native_, left_on="surface", right_on="native", how="inner"
            ).select(
                "__tid",
                pl.lit(-1, dtype=pl.Int64).alias("pos"),
                pl.lit(1, dtype=pl.Int8).alias("n"),
                "surface",
                none.alias("prev1"),
                none.alias("prev2"),
                none.alias("prev3"),
                pl.col("surface").alias("form"),
                "brand",
                pl.lit("native").alias("kind"),
                pl.lit(0, dtype=pl.Int32).alias("edits"),
                "ambiguous",
            ),
        ]
        found = pl.concat(mentions, how="vertical_relaxed")
        found = pl.concat(
            [found, self._description_mentions(base, found.get_column("__tid"))],
            how="vertical_relaxed",
        )
        # one chunk: polars 2.1 panics formatting a string column whose chunks include an
        # empty one between others ("assertion failed: i < self.len()")
        return self._scored(base, cols, found.rechunk(), phrases)

    def _description_mentions(self, base: pl.DataFrame, named: pl.Series) -> pl.DataFrame:
        """Names written plainly in the descriptions of listings whose title names none
        (``named``: the titles with a mention), as rows of :meth:`_mentions` (``kind``
        ``description``, or ``compared`` for a comparison or disclaimer: "works like Dyson",
        "Submariner homage"). Only the first :attr:`max_description_chars` characters are read.
        """
        none = pl.lit(None, dtype=pl.String)
        schema = {
            "__tid": pl.UInt32,
            "pos": pl.Int64,
            "n": pl.Int8,
            "surface": pl.String,
            "prev1": pl.String,
            "prev2": pl.String,
            "prev3": pl.String,
            "form": pl.String,
            "brand": pl.String,
            "kind": pl.String,
            "edits": pl.Int32,
            "ambiguous": pl.Boolean,
        }
        if not self.use_description or "description" not in base.columns:
            return pl.DataFrame(schema=schema)
        desc = pl.col("description").cast(pl.String)
        rows = base.filter(
            ~pl.col("__tid").is_in(named.implode()) & (desc.str.len_bytes() > 0)
        ).select("__tid", capped(desc, self.max_description_chars).alias("__desc"))
        if rows.is_empty():
            return pl.DataFrame(schema=schema)
        d = pl.col("__desc")
        other = rows.select(d.str.len_bytes() != d.str.len_chars()).to_series()
        words = rows.select(_padded_words(d.str.to_lowercase())).to_series()
        at = other.arg_true()
        if at.len():
            words = words.scatter(at, rows[at].select(_padded_words(folded(d))).to_series())
        rows = rows.with_columns(words.alias("__dtext"))
        parts = []
        # names as words: a search of every text, then of those that may hold one
        held = rows.filter(holding_any(rows, "__dtext", self.desc_name_probe_))
        if held.height:
            spaced = pl.col("__dtext").str.replace_all(" ", "  ")
            patterns = self.desc_names_.get_column("__dpat").to_list()
            hits = (
                held.select("__tid", spaced.alias("__spaced"))
                .with_columns(
                    pl.col("__spaced").str.extract_many(patterns, overlapping=False).alias("__dpat")
                )
                .explode("__dpat")
                .drop_nulls("__dpat")
                .unique(["__tid", "__dpat"], keep="first", maintain_order=True)
                .join(self.desc_names_, on="__dpat", how="inner")
            )
            # the words around the name's first occurrence
            around = pl.col("__spaced").str.split(pl.col("__dpat"))
            before = around.list.first().str.slice(-CONTEXT_CHARS)
            after = around.list.get(1, null_on_oob=True).fill_null("").str.slice(0, CONTEXT_CHARS)
            hits = hits.with_columns(
                before.str.replace_all(" +", " ").str.strip_chars(" ").alias("__before"),
                after.str.replace_all(" +", " ").str.strip_chars(" ").alias("__after"),
            )
            compared = pl.lit(False)
            if self.compared_anywhere_:
                compared = pl.col("__spaced").str.contains_any(self.compared_anywhere_)
            if self.compared_before_:
                compared = compared | pl.col("__before").str.contains(self.compared_before_)
            if self.compared_after_:
                compared = compared | pl.col("__after").str.contains(self.compared_after_)
            parts.append(
                hits.select(
                    "__tid",
                    _words(pl.col("__dpat")).alias("surface"),
                    "form",
                    "brand",
                    pl.when(compared)
                    .then(pl.lit("compared"))
                    .otherwise(pl.lit("description"))
                    .alias("kind"),
                    "ambiguous",
                )
            )
        # names of the scripts matched by substring
        if self.native_probe_ and at.len():
            ntext = native_text(folded(d).str.replace_all(f"({CJK_CLASS}+)", " ${1} "))
            native_rows = rows[at].select("__tid", ntext.alias("__ntext"))
            if self.native_exceptions_:
                native_rows = native_rows.with_columns(
                    pl.col("__ntext").str.replace_many(
                        self.native_exceptions_, [" "] * len(self.native_exceptions_)
                    )
                )
            native_rows = native_rows.filter(
                holding_any(native_rows, "__ntext", self.native_probe_)
            )
            if native_rows.height:
                parts.append(
                    native_rows.select(
                        "__tid",
                        pl.col("__ntext")
                        .str.extract_many(self.native_["native"].to_list(), overlapping=False)
                        .alias("surface"),
                    )
                    .explode("surface")
                    .drop_nulls("surface")
                    .unique(["__tid", "surface"], keep="first", maintain_order=True)
                    .join(self.native_, left_on="surface", right_on="native", how="inner")
                    .select(
                        "__tid",
                        "surface",
                        pl.col("surface").alias("form"),
                        "brand",
                        pl.lit("description").alias("kind"),
                        "ambiguous",
                    )
                )
        if not parts:
            return pl.DataFrame(schema=schema)
        # a description that compares with one brand compares with all it names ("Rolex
        # Submariner homage"; "fits Rolex, Omega and Seiko straps")
        compared = (pl.col("kind") == "compared").any().over("__tid")
        return (
            pl.concat(parts, how="vertical_relaxed")
            .select(
                "__tid",
                pl.lit(0, dtype=pl.Int64).alias("pos"),
                pl.lit(1, dtype=pl.Int8).alias("n"),
                "surface",
                none.alias("prev1"),
                none.alias("prev2"),
                none.alias("prev3"),
                "form",
                "brand",
                pl.when(compared).then(pl.lit("compared")).otherwise("kind").alias("kind"),
                pl.lit(0, dtype=pl.Int32).alias("edits"),
                "ambiguous",
            )
            .cast(pl.Schema(schema))
        )

    def _declared_brands(self, base: pl.DataFrame, cols: list[str]) -> pl.Series:
        """The protected brand each listing declares (by brand key), else null."""
        if "brand" not in cols:
            return pl.repeat(None, base.height, dtype=pl.String, eager=True).alias("__declared")
        return declared_brands(base.get_column("brand"), self.brand_by_key_).alias("__declared")

    def _categories(self, base: pl.DataFrame, cols: list[str]) -> pl.Series:
        """The registry categories each listing's category covers (through the taxonomy);
        null where it has none or the taxonomy knows it not."""
        if "category" not in cols:
            return pl.repeat(None, base.height, dtype=pl.List(pl.String), eager=True).alias(
                "__lcat"
            )
        read = self.taxonomy_.resolve_column(base.get_column("category"))
        return (
            read.select(
                pl.when(pl.col("category_status") == "known").then(pl.col("category_covers"))
            )
            .to_series()
            .alias("__lcat")
        )

    def _category_agrees(
        self, cand: pl.DataFrame, rows: pl.DataFrame, tested: pl.Series
    ) -> pl.Series:
        """Per mention of ``cand``: whether its listing's category covers one of its brand's
        categories; computed for the ``tested`` mentions only (false for the others)."""
        out = pl.repeat(False, cand.height, dtype=pl.Boolean, eager=True).alias("__agrees")
        if not tested.any():
            return out
        sub = cand.filter(tested).select(
            pl.int_range(pl.len(), dtype=pl.UInt32).alias("__r"),
            "brand",
            rows.get_column("__lcat").gather(cand.filter(tested).get_column("__tid")).alias("c"),
        )
        agrees = (
            sub.explode("c")
            .with_columns(
                pl.concat_str(["brand", "c"], separator="\x00")
                .is_in(self.brand_category_pairs_.implode())
                .fill_null(False)
                .alias("a")
            )
            .group_by("__r")
            .agg(pl.col("a").any())
            .sort("__r")
        )
        return out.scatter(
            tested.arg_true().gather(agrees.get_column("__r")), agrees.get_column("a")
        )

    def _scored(
        self, base: pl.DataFrame, cols: list[str], found: pl.DataFrame, phrases: PhraseHits
    ) -> pl.DataFrame:
        # every frame here is aligned with ``base`` (row i is title i): columns, not joins
        rows = base.select("__tid", "__raw", pl.col("title").cast(pl.String).alias("__title"))
        rows = rows.with_columns(
            self._declared_brands(base, cols),
            self._categories(base, cols),
            *phrases.per_title.drop("__tid").get_columns(),
            self._title_accessories(base, phrases.accessory_at),
            *self._title_items(base, phrases.item_at).get_columns(),
        )
        # ordinary uses of brand words ("sea shell") and corroboration of ambiguous words
        ordinary = self._ordinary_uses(base, found)
        at = found.get_column("__tid")
        # fullwidth and zero-width characters are properties of the title (tested only on
        # titles that are not ASCII: neither kind is)
        raw = pl.col("__raw")
        other = rows.select(raw.str.len_bytes() != raw.str.len_chars()).to_series()
        hiding = rows.filter(other).select(
            raw.str.contains(r"[\uff01-\uff5e]").alias("__fullwidth"),
            raw.str.contains(ZERO_WIDTH_CLASS).alias("__zero_width"),
            # other compatibility characters: mathematical letters, circled, ligatures
            (raw.str.normalize("NFKC") != raw.str.normalize("NFC")).alias("__compat_chars"),
        )
        hiding = hiding.select(
            spread(hiding.get_column(c), other).fill_null(False) for c in hiding.columns
        )
        cand = found.with_columns(
            *(
                rows.get_column(c).gather(at)
                for c in (
                    "__declared",
                    "text_strong_phrases",
                    "__title",
                    "__raw",
                    "__compat",
                )
            ),
            *(hiding.get_column(c).gather(at) for c in hiding.columns),
            rows.get_column("__lcat").is_null().gather(at).alias("__lnone"),
        )
        # a few titles hold an ordinary phrase: their rows are found by a join of the keys
        # alone (a left join gathers every column of every mention)
        keyed = (
            cand.select("__tid", "form")
            .with_row_index("__k")
            .join(ordinary, on=["__tid", "form"], how="inner")
        )
        # a word in two ordinary phrases of one title ("sea shell necklace") gets a row for
        # each, as a left join gives
        hit = keyed.get_column("__k")
        cand = pl.concat(
            [
                cand.filter(
                    ~pl.int_range(pl.len(), dtype=pl.UInt32).is_in(hit.implode())
                ).with_columns(pl.lit(None, dtype=pl.String).alias("__oph")),
                cand[hit].with_columns(keyed.get_column("__oph")),
            ]
        )
        # two names of one brand in a title corroborate each other ("apple iphone 15"): counted
        # for ambiguous mentions only, outside ordinary phrases
        amb = cand.select(pl.col("ambiguous") & pl.col("__oph").is_null()).to_series()
        names = (
            cand.filter(amb)
            .group_by("__tid", "brand")
            .agg(pl.col("form").n_unique().alias("__names"))
            .filter(pl.col("__names") > 1)
        )
        cand = cand.with_columns(
            amb.alias("__two_names")
            & pl.concat_str(["__tid", "brand"], separator="\x00").is_in(
                names.select(pl.concat_str(["__tid", "brand"], separator="\x00"))
                .to_series()
                .implode()
            )
        )
        in_raw = pl.col("__raw").str.contains(pl.col("surface"), literal=True).alias("__in_raw")
        # written with a capital letter somewhere ("Omega", "OMEGA", "iPhone"): the title does
        # not hold the name in lower case (a script without case, Arabic or Hebrew, capitalises
        # nothing: its folded letter variants are no capitals)
        capitalised = (
            ~pl.col("__title").str.contains(pl.col("surface"), literal=True)
            & (pl.col("surface").str.to_uppercase() != pl.col("surface"))
        ).alias("__capitalised")
        # two kinds of mention read these substring tests: a plain one in a title with
        # fullwidth or zero-width characters (were they hiding it?) and a plain mention of an
        # ambiguous word without a category (is it capitalised?); the others keep the default
        plain_kind = pl.col("kind").is_in(["exact", "alias"])
        tested = cand.select(
            plain_kind
            & (
                pl.col("__compat_chars")
                | pl.col("__zero_width")
                | (pl.col("ambiguous") & pl.col("__lnone"))
            )
        ).to_series()
        sub = cand.filter(tested).select("__tid", "surface", "__raw", "__title")
        # once per mention while that is cheap, else once per distinct surface of a title: a
        # title repeating one word 40,000 times must stay linear
        title_bytes = rows.get_column("__raw").str.len_bytes().sum()
        mention_bytes = sub.get_column("__raw").str.len_bytes().sum()
        if mention_bytes <= 16 * title_bytes + 4096:
            tests = sub.select(in_raw, capitalised)
        else:
            surfaces = sub.unique(["__tid", "surface"]).select(
                "__tid", "surface", in_raw, capitalised
            )
            tests = sub.join(
                surfaces, on=["__tid", "surface"], how="left", maintain_order="left"
            ).select("__in_raw", "__capitalised")
        cand = cand.with_columns(
            spread(tests.get_column("__in_raw"), tested).fill_null(True),
            spread(tests.get_column("__capitalised"), tested).fill_null(False),
        )
        # a plain match whose surface is not in the raw title hid behind fullwidth, zero-width
        # or other compatibility characters ("𝐆𝐮𝐜𝐜𝐢": look-alikes NFKC reads)
        hidden = pl.col("kind").is_in(["exact", "alias"]) & ~pl.col("__in_raw")
        kind = (
            pl.when(hidden & pl.col("__fullwidth"))
            .then(pl.lit("fullwidth"))
            .when(hidden & pl.col("__zero_width"))
            .then(pl.lit("zero_width"))
            .when(hidden & pl.col("__compat_chars"))
            .then(pl.lit("confusable"))
            .otherwise(pl.col("kind"))
        )
        # "laces for Nike": an accessory for the brand if any mention of it follows a prefix,
        # or the title says it is compatible and names an accessory, or is parts or packaging
        prefixes = self.accessory_prefixes_
        prefix_used = pl.coalesce(
            pl.when(pl.col("prev3").is_in(prefixes)).then(pl.col("prev3")),
            pl.when(pl.col("prev2").is_in(prefixes)).then(pl.col("prev2")),
            pl.when(pl.col("prev1").is_in(prefixes)).then(pl.col("prev1")),
        )
        cand = cand.with_columns(
            kind.alias("kind"),
            pl.format('"{} {}": accessory for the brand', prefix_used, pl.col("form")).alias(
                "__accessory"
            ),
        )
        # the first in sort order: the batch's row order must not change the reason
        accessory = (
            cand.filter(pl.col("__accessory").is_not_null())
            .group_by("__tid", "brand")
            .agg(pl.col("__accessory").min())
        )
        # few mentions have one: they are found by a join of the keys alone (a left join
        # gathers every column of every mention)
        keyed = (
            cand.select("__tid", "brand")
            .with_row_index("__k")
            .join(accessory, on=["__tid", "brand"], how="inner")
        )
        # a brand no prefix names as the target takes the title's own reason, if it has one
        cand = cand.with_columns(
            pl.repeat(None, cand.height, dtype=pl.String, eager=True)
            .scatter(keyed.get_column("__k"), keyed.get_column("__accessory"))
            .alias("__accessory")
        ).with_columns(pl.coalesce("__accessory", "__compat").alias("__accessory"))
        # the category agrees where the taxonomy reads it as one of the brand's ("Sneakers"
        # for Air Jordan): asked of the mentions of ambiguous words that need support alone
        support_kinds = ["exact", "alias", "native", "description", "typo", "glued"]
        cand = cand.with_columns(
            self._category_agrees(
                cand,
                rows,
                cand.select(
                    pl.col("ambiguous") & pl.col("kind").is_in(support_kinds) & ~pl.col("__lnone")
                ).to_series(),
            )
        )
        supported = (
            pl.col("__agrees")
            | (pl.col("__declared") == pl.col("brand"))
            | (pl.col("text_strong_phrases") > 0)
            | pl.col("__two_names")
        )
        # without a category, a capitalised brand word ("Omega Speedmaster") is support enough
        # for a plain mention; a misspelling needs the listing's own support
        corroborated = supported | (pl.col("__lnone") & pl.col("__capitalised"))
        # nobody obfuscates an ordinary word: only plain mentions (a native name too: "코치" is
        # a sports coach as well as Coach; a name in the description) and near misses of
        # ambiguous words (and edits of a first letter) need support
        kind_now = pl.col("kind")
        needs = (
            pl.when(kind_now.is_in(["exact", "alias", "native", "description"]))
            .then(corroborated)
            .when(kind_now.is_in(["typo", "glued"]))
            .then(supported)
            .otherwise(pl.lit(True))
        )
        # a name a description compares with ("works like Dyson") only beside a counterfeit
        # phrase
        usable = (
            pl.col("__oph").is_null()
            & (~pl.col("ambiguous") | needs)
            & ((kind_now != "compared") | (pl.col("text_strong_phrases") > 0))
        )
        suppressed = (
            cand.filter(~usable & pl.col("__oph").is_not_null())
            .sort(["__tid", "pos", "n", "form", "__oph"])
            .group_by("__tid", maintain_order=True)
            .agg(
                pl.format(
                    'brand word "{}" used as ordinary word ("{}")',
                    pl.col("surface"),
                    pl.col("__oph"),
                )
                .first()
                .alias("__oreason")
            )
        )
        best = (
            cand.select(
                "__tid",
                "surface",
                "form",
                "brand",
                "kind",
                "edits",
                "__accessory",
                "pos",
                pl.col("kind").replace_strict(KIND_RANK, return_dtype=pl.Int32).alias("__rank"),
                (-pl.col("n").cast(pl.Int32)).alias("__longest"),
                usable.alias("__usable"),
            )
            .filter("__usable")
            .sort(["__tid", "__rank", "edits", "__longest", "pos", "brand", "surface"])
            .filter(pl.col("__tid").is_first_distinct())
            .select("__tid", "surface", "form", "brand", "kind", "edits", "__accessory")
        )
        # the first alias of the chosen brand written plainly ("Apple iPhone 15": "iphone"),
        # which may name a product line; else the chosen name's key where it is plain
        aliases = (
            cand.filter(usable & (pl.col("kind") == "alias"))
            .select("__tid", "brand", "pos", "form")
            .sort(["__tid", "brand", "pos", "form"])
            .unique(["__tid", "brand"], keep="first", maintain_order=True)
            .rename({"form": "__akey"})
        )
        out = (
            rows.join(best, on="__tid", how="left", maintain_order="left")
            .join(suppressed, on="__tid", how="left", maintain_order="left")
            .join(aliases.drop("pos"), on=["__tid", "brand"], how="left", maintain_order="left")
        )
        out = out.with_columns(pl.col("__accessory").is_not_null().alias("text_accessory"))
        has_brand = pl.col("brand").is_not_null()
        s_brand = (
            pl.col("kind").replace_strict(KIND_SCORE, default=0.0, return_dtype=pl.Float64)
            - pl.when(pl.col("edits") >= 2).then(0.05).otherwise(0.0)
        ).fill_null(0.0) * pl.when(pl.col("text_accessory")).then(0.2).otherwise(1.0)
        strong = pl.col("text_strong_phrases") > 0
        s_strong = pl.when(strong & has_brand).then(0.95).when(strong).then(0.15).otherwise(0.0)
        weak = pl.col("text_weak_phrases").cast(pl.Float64)
        s_weak = (
            pl.when(has_brand)
            .then((0.15 * weak).clip(0, 0.3))
            .otherwise((0.05 * weak).clip(0, 0.1))
        )
        mismatch = (
            has_brand
            & pl.col("__declared").is_not_null()
            & (pl.col("__declared") != pl.col("brand"))
        )
        s_mismatch = pl.when(mismatch).then(0.5).otherwise(0.0)
        raw = 1 - (1 - s_brand) * (1 - s_strong) * (1 - s_weak) * (1 - s_mismatch)
        damp = pl.when((pl.col("text_legit") > 0) & ~strong).then(0.7).otherwise(1.0)
        note = pl.col("kind").replace_strict(
            {k: v for k, v in KIND_NOTE.items() if k != "typo"},
            default=None,
            return_dtype=pl.String,
        )
        typo_note = pl.format(
            "{} edit{}",
            pl.col("edits"),
            pl.when(pl.col("edits") == 1).then(pl.lit("")).otherwise(pl.lit("s")),
        )
        mention = (
            pl.when(pl.col("kind").is_in(["exact", "native"]))
            .then(pl.format('title mentions brand "{}"', pl.col("brand")))
            # another name of the brand, a model name included: the reviewer sees which
            .when(pl.col("kind") == "alias")
            .then(pl.format('title mentions "{}" (brand "{}")', pl.col("surface"), pl.col("brand")))
            .when(pl.col("kind").is_in(DESCRIPTION_KINDS))
            .then(
                pl.format(
                    'description mentions "{}" (brand "{}")', pl.col("surface"), pl.col("brand")
                )
            )
            .otherwise(
                pl.format(
                    'title "{}" ~ brand "{}" ({})',
                    pl.col("surface"),
                    pl.col("brand"),
                    pl.when(pl.col("kind") == "typo").then(typo_note).otherwise(note),
                )
            )
        )
        reasons = reason_list(
            pl.when(has_brand).then(mention),
            pl.when(strong).then(pl.format('counterfeit phrase "{}"', pl.col("__strong1"))),
            pl.when(pl.col("text_weak_phrases") > 0).then(
                pl.format('suggestive phrase "{}"', pl.col("__weak1"))
            ),
            pl.col("__accessory"),
            pl.when(mismatch).then(
                pl.format(
                    'declared brand "{}" but title says "{}"', pl.col("__declared"), pl.col("brand")
                )
            ),
            pl.col("__oreason"),
        )
        scored = out.select(
            "__tid",
            (raw * damp).clip(0.0, 1.0).alias("text_score"),
            reasons.alias("text_reasons"),
            pl.col("brand").alias("text_brand"),
            pl.col("kind").alias("text_match"),
            pl.col("edits").cast(pl.Int32).alias("text_edits"),
            "text_strong_phrases",
            "text_weak_phrases",
            "text_legit",
            "text_accessory",
            pl.when(has_brand & pl.col("__declared").is_not_null())
            .then(mismatch)
            .alias("text_brand_mismatch"),
            "text_item",
            "text_item_share",
            "text_condition",
            # the name as a key where the title writes it plainly: the price filter prices a
            # product line's alias ("Apple Watch") with its own rows
            # (in the singular: "Apple Watches" is the "applewatch" line)
            pl.coalesce("__akey", pl.when(pl.col("kind").is_in(PLAIN_KINDS)).then(pl.col("form")))
            .replace(self.plural_base_)
            .alias("text_key"),
        )
        return scored.drop("__tid")
