"""The text filter: protected brand mentions, counterfeit phrases and legitimate contexts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import polars as pl

from filters.base import (
    check_is_fitted,
    distinct_rows,
)
from filters.text.record import TextRecordScorer
from filters.text.scoring import TextScoring

if TYPE_CHECKING:
    pass


class TextFilter(TextScoring):
    """Brand mentions, obfuscations, counterfeit phrases and legitimate contexts in titles.

    Parameters
    ----------
    max_edits_medium : edits allowed for brand keys of 5-7 letters
    max_edits_long : edits allowed for brand keys of 8 or more letters
    min_fuzzy_len : shortest token that is fuzzy-matched
    use_description : also read the description: counterfeit phrases, and brand names where the
        title names none
    max_description_chars : how much of a description is read (its first characters)
    ambiguous_zipf : a name made only of words at least this common (Zipf frequency in one
        of the word list's languages) is ambiguous: its plain mentions and misspellings count
        only when something corroborates them

    Examples
    --------
    >>> from pipelines.registry import load_registry, default_registry_dir
    >>> f = TextFilter().fit(load_registry(default_registry_dir()))
    >>> out = f.score(pl.DataFrame({"title": ["Guccci Marmont bag"]})).collect()
    >>> out.get_column("text_brand").item(), out.get_column("text_reasons").item()
    ('Gucci', ['title "guccci" ~ brand "Gucci" (1 edit)'])
    """

    name: ClassVar[str] = "text"
    evidence_schema: ClassVar[dict[str, pl.DataType]] = {
        "text_brand": pl.String(),
        "text_match": pl.String(),
        "text_edits": pl.Int32(),
        "text_strong_phrases": pl.Int32(),
        "text_weak_phrases": pl.Int32(),
        "text_legit": pl.Int32(),
        "text_accessory": pl.Boolean(),
        "text_brand_mismatch": pl.Boolean(),
        "text_item": pl.String(),
        "text_item_share": pl.Float64(),
        "text_condition": pl.String(),
        "text_key": pl.String(),
    }

    def score_record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """This filter's columns for one listing (a mapping of validated input fields), equal
        to what :meth:`score` gives for a one-row frame, without a query engine."""
        check_is_fitted(self)
        # built on first use: a batch run never needs it (it costs 30 ms of start-up)
        scorer = getattr(self, "_record_scorer", None)
        if scorer is None:
            scorer = self._record_scorer = TextRecordScorer(self)
        return scorer.score(record)

    def _inputs(self, cols: list[str]) -> list[str]:
        """The columns this filter reads: its output is a function of these alone."""
        read = ["title", "brand", "category", *(["description"] if self.use_description else [])]
        return [c for c in read if c in cols]

    def _score(
        self, listings: pl.LazyFrame, statistics: pl.DataFrame | None = None
    ) -> pl.LazyFrame:
        check_is_fitted(self)
        frame = listings.collect()
        inputs = self._inputs(frame.columns)
        read = frame.select(inputs)
        if "description" in inputs:
            read = read.with_columns(self.description_read(pl.col("description")))
        # listings repeating another's title, description, brand and category are scored once
        # (a description with nothing to read counts as none)
        distinct, back = distinct_rows(read)
        scored = self.results_.apply(distinct, self._score_distinct)
        if back is not None:
            scored = scored.select(pl.all().gather(back))
        return frame.hstack(scored).lazy()
