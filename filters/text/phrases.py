"""Counterfeit, suggestive and legitimate phrases in titles, and the accessory, parts and
small-goods readings of a title.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import polars as pl

from filters.base import (
    index_of,
    spread,
    spread_columns,
)
from filters.text.forms import _padded_words, _words, holding_any, native_text
from filters.text.matching import TextMatching

if TYPE_CHECKING:
    pass


class PhraseHits(NamedTuple):
    """The phrases of a batch's titles: ``per_title`` (aligned with the titles: ``__tid``, the
    counterfeit, suggestive and legitimate phrase counts, the first counterfeit and suggestive
    phrase as the lexicon writes it, and the condition the title claims), ``native`` (a row
    per native brand name: ``__tid``, ``surface``), and where the title-level accessory and
    small-goods tests need to look."""

    per_title: pl.DataFrame
    native: pl.DataFrame
    #: titles that may say they sell an accessory, parts or packaging; or a small good
    accessory_at: pl.Series
    item_at: pl.Series


class TextPhrases(TextMatching):
    """Phrases and the title-level readings (accessory, item, ordinary use)."""

    def _phrase_counts(self, titles: pl.DataFrame) -> PhraseHits:
        """Counterfeit, suggestive and legitimate phrases and native brand names in ``titles``
        (see :class:`PhraseHits`)."""
        # every word gets its own spaces, so adjacent phrases both match
        text = pl.col("__ptext").str.replace_all(" ", "  ")
        cleaned = (
            text.str.replace_many(self.exceptions_, [" "] * len(self.exceptions_))
            if self.exceptions_
            else text
        )

        def hits(patterns: list[str], expr: pl.Expr) -> pl.Expr:
            if not patterns:
                return pl.lit([], dtype=pl.List(pl.String))
            return expr.str.extract_many(patterns, overlapping=False)

        def probe(frame: pl.DataFrame, source: str, patterns: list[str]) -> pl.Series:
            if not patterns:
                return pl.repeat(False, frame.height, dtype=pl.Boolean, eager=True)
            return holding_any(frame, source, patterns)

        # most titles hold no phrase of a group, and a cheap test per title picks the few to
        # search: the phrase text once for all groups, then each group among those that passed
        any_phrase = probe(titles, "__ptext", self.phrase_probe_)
        candidates = titles.filter(any_phrase)

        passed = any_phrase.arg_true()

        def mask(patterns: list[str]) -> tuple[pl.Series, pl.Series]:
            """Where (over ``titles``) a group's probe passes, and where among candidates."""
            inner = probe(candidates, "__ptext", patterns)
            where = pl.repeat(False, titles.height, dtype=pl.Boolean, eager=True)
            return where.scatter(passed.filter(inner), True), inner

        def among(patterns: list[str]) -> tuple[pl.Series, pl.LazyFrame]:
            """Where (over ``titles``) a group's probe passes, and those titles (lazy, so that
            the spaced and cleaned text a group's searches share is computed once)."""
            where, inner = mask(patterns)
            return where, candidates.filter(inner).lazy()

        where, rows = among(self.counterfeit_probe_)
        strong, weak = hits(self.strong_, cleaned), hits(self.weak_, cleaned)
        counterfeit = rows.select(
            "__tid",
            strong.list.len().cast(pl.Int32).alias("text_strong_phrases"),
            weak.list.len().cast(pl.Int32).alias("text_weak_phrases"),
            self._as_written(strong.list.first()).alias("__strong1"),
            self._as_written(weak.list.first()).alias("__weak1"),
        ).collect()
        per_title = spread_columns(counterfeit.drop("__tid"), where)
        where, rows = among(self.legit_probe_)
        # the condition a title claims: used where it holds a phrase of both
        claim = pl.lit(None, dtype=pl.String)
        for condition, forms in (("refurbished", self.refurbished_), ("used", self.secondhand_)):
            if forms:
                held = text.str.contains_any(forms)
                claim = pl.when(held).then(pl.lit(condition)).otherwise(claim)
        legit = rows.select(
            hits(self.legit_, text).list.len().cast(pl.Int32).alias("text_legit"),
            claim.alias("text_condition"),
        ).collect()
        per_title += spread_columns(legit, where)
        # native names: only in titles with a character of a script matched by substring
        norm = pl.col("__norm")
        other = titles.select(norm.str.len_bytes() != norm.str.len_chars()).to_series()
        if self.native_probe_ and other.any():
            native_titles = titles.filter(other).select("__tid", native_text(norm).alias("__ntext"))
            if self.native_exceptions_:
                native_titles = native_titles.with_columns(
                    pl.col("__ntext").str.replace_many(
                        self.native_exceptions_, [" "] * len(self.native_exceptions_)
                    )
                )
            native_titles = native_titles.filter(
                probe(native_titles, "__ntext", self.native_probe_)
            )
        else:
            native_titles = pl.DataFrame(schema={"__tid": pl.UInt32, "__ntext": pl.String})
        native = hits(self.native_["native"].to_list(), pl.col("__ntext"))
        counts = ("text_strong_phrases", "text_weak_phrases", "text_legit")
        return PhraseHits(
            titles.select("__tid")
            .with_columns(per_title)
            .with_columns(pl.col(c).fill_null(0) for c in counts),
            native_titles.select("__tid", native.alias("surface"))
            .explode("surface")
            .drop_nulls("surface"),
            mask(self.title_accessory_probe_)[0],
            mask(self.item_probe_)[0],
        )

    def _title_accessories(self, base: pl.DataFrame, where: pl.Series) -> pl.Series:
        """Per title, aligned with ``base``: why the title sells something other than the
        brand's product at its price, else null. Either it says so ("for parts", "box only",
        "vial"), or it names what is made for another's product ("screen protector"), or it
        holds both a compatibility word and an accessory noun ("Apple Watch band
        compatible 44mm"). Either of the last two alone is not enough: "AirPods Pro compatible
        Android" is what a fake says, and "Apple Watch band" may be Apple's own."""
        none = pl.repeat(None, base.height, dtype=pl.String, eager=True).alias("__compat")
        # ``where``: titles whose phrase text holds a word of the tests (few)
        if not where.any():
            return none
        padded = _padded_words(pl.col("__norm"))
        # every word gets its own spaces, so adjacent phrases both match (see _phrase_counts)
        spaced = padded.str.replace_all(" ", "  ")

        def first(patterns: list[str]) -> pl.Expr:
            if not patterns:
                return pl.lit(None, dtype=pl.String)
            return _words(spaced.str.extract_many(patterns, overlapping=False).list.first())

        notes = base.filter(where).select(
            pl.coalesce(
                pl.format(
                    '"{}" in the title: not the product itself', first(self.not_the_product_)
                ),
                pl.format('"{}" in the title: made for the brand\'s product', first(self.fitted_)),
                pl.format(
                    '"{}" and "{}" in the title: accessory for the brand',
                    first(self.accessory_nouns_),
                    first(self.compatible_),
                ),
                self._head_noun(spaced),
            )
        )
        return spread(notes.to_series(), where).alias("__compat")

    def _head_noun(self, spaced: pl.Expr) -> pl.Expr:
        """The reason a title whose head noun is an accessory sells an accessory ("Apple Watch
        band 44mm", "Galaxy S24 case"), else null: of the product and accessory nouns before
        any bundle word, leftmost-first, the last is an accessory."""
        if not self.head_nouns_:
            return pl.lit(None, dtype=pl.String)
        head = spaced if self.bundle_cut_ is None else spaced.str.replace(self.bundle_cut_, "")
        nouns = head.str.extract_many(self.head_patterns_, overlapping=False, leftmost=True)
        last = nouns.list.last()
        return (
            pl.when(last.is_in(self.head_nouns_))
            .then(pl.format('"{}" is what the title sells: accessory for the brand', _words(last)))
            .otherwise(pl.lit(None, dtype=pl.String))
        )

    def _title_items(self, base: pl.DataFrame, where: pl.Series) -> pl.DataFrame:
        """Per title, aligned with ``base``: ``text_item``, the brand's own small good the
        title sells ("charger", "socks"), and ``text_item_share``, the share of the brand's
        dearest reference price it sells for; null unless the title names one and, once the
        small goods are taken out, no main product and no bundle word ("iPhone 15 with
        charger" sells a phone; "glasses case" a case). Of two, the dearer counts."""
        schema = {"text_item": pl.String, "text_item_share": pl.Float64}
        nothing = pl.DataFrame(
            [pl.repeat(None, base.height, dtype=t, eager=True).alias(c) for c, t in schema.items()]
        )
        # ``where``: titles whose phrase text holds a small good's phrase (few)
        if not where.any():
            return nothing
        # every word gets its own spaces, so adjacent phrases both match (see _phrase_counts)
        spaced = _padded_words(pl.col("__norm")).str.replace_all(" ", "  ")
        forms = self.small_goods_.get_column("__ifrom").to_list()
        rest = spaced.str.replace_many(forms, ["  "] * len(forms))
        guarded = rest.str.contains_any(self.item_guard_) if self.item_guard_ else pl.lit(False)
        sub = base.filter(where).select(
            spaced.str.extract_many(forms, overlapping=False).alias("__ifrom"),
            guarded.alias("__guarded"),
        )
        picked = (
            sub.with_row_index("__r")
            .filter(~pl.col("__guarded"))
            .explode("__ifrom")
            .with_row_index("__o")
            .join(self.small_goods_, on="__ifrom")
            .sort(["__r", "text_item_share", "__o"], descending=[False, True, False])
            .filter(pl.col("__r").is_first_distinct())
        )
        # each searched title's pick, null where it has none
        at = sub.select(
            index_of(pl.int_range(pl.len(), dtype=pl.UInt32), picked.get_column("__r"))
        ).to_series()
        return pl.DataFrame([spread(picked.get_column(c).gather(at), where) for c in schema])

    def _ordinary_uses(self, titles: pl.DataFrame, found: pl.DataFrame) -> pl.DataFrame:
        """Ordinary uses of brand words ("sea shell", "omega 3"): ``__tid``, ``form`` (the
        word's key) and ``__oph`` (the phrase), a row per phrase in a title. A use matters only
        where the title mentions that word, so only those titles are searched (a few in a
        batch; a search of every title with one was most of the phrase search)."""
        words = self.ordinary_.get_column("__okey").unique()
        if words.is_empty():
            return pl.DataFrame(schema={"__tid": pl.UInt32, "form": pl.String, "__oph": pl.String})
        tids = found.filter(pl.col("form").is_in(words.implode())).get_column("__tid").unique()
        # every word gets its own spaces, so adjacent phrases both match (see _phrase_counts)
        text = pl.col("__ptext").str.replace_all(" ", "  ")
        return (
            titles.filter(pl.col("__tid").is_in(tids.implode()))
            .select(
                "__tid",
                text.str.extract_many(
                    self.ordinary_["__ophrase"].to_list(), overlapping=False
                ).alias("__ophrase"),
            )
            .explode("__ophrase")
            .join(self.ordinary_, on="__ophrase")
            .select(
                "__tid",
                pl.col("__okey").alias("form"),
                _words(pl.col("__ophrase")).alias("__oph"),
            )
        )

    def _as_written(self, hit: pl.Expr) -> pl.Expr:
        """A counterfeit phrase hit as the lexicon writes it (lower case): hits are found in
        folded text, which loses accents and kana voicing marks."""
        shown = self.phrases_as_written_
        return _words(hit).replace(list(shown), list(shown.values()))
