"""Titles normalised and split into tokens, adjacent-token runs coded as integers, and spaced
letters found.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from filters.base import (
    index_of,
)
from filters.core.normalise import (
    CJK_CLASS,
    nfkc_lost_lookalikes,
)
from filters.core.textops import SPACED_NEXT_WORD
from filters.text.forms import MARKS_BUT_HIDDEN, _padded_words, capped, folded
from filters.text.lexicon import TextLexicon
from filters.text.policy import MAX_NGRAM, TOKEN, TOKEN_SYMBOLS

if TYPE_CHECKING:
    pass


#: a run of tokens is coded in this many bits (an int64 without its sign)
CODE_BITS = 63


class TextTokens(TextLexicon):
    """Normalised titles and their tokens."""

    def normalised_titles(self, lf: pl.LazyFrame) -> pl.DataFrame:
        """``__tid`` row id, ``__norm`` (folded title, CJK runs spaced apart), ``__ptext``
        (phrase form of title and description), ``__raw`` (title with only case and accents
        folded: to tell fullwidth and zero-width obfuscation from plain text)."""
        cols = set(lf.collect_schema().names())
        title = pl.col("title").cast(pl.String).fill_null("")
        desc = (
            capped(pl.col("description").cast(pl.String).fill_null(""), self.max_description_chars)
            if self.use_description and "description" in cols
            else pl.lit("")
        )
        text = pl.concat_str(title, pl.lit(" | "), desc)
        df = lf.with_row_index("__tid").collect()
        # most titles are ASCII: Unicode normalisation is the identity there, so it runs only
        # on the others (lazy, so that the lower-cased title is computed once)
        lower = title.str.to_lowercase()
        cheap = (
            df.lazy()
            .select(
                lower.alias("__norm"),
                _padded_words(text.str.to_lowercase()).alias("__ptext"),
                lower.alias("__raw"),
                (text.str.len_bytes() != text.str.len_chars()).alias("__other"),
            )
            .collect()
        )
        at = cheap.get_column("__other").arg_true()
        norm = cheap.drop("__other")
        if at.len():
            # folding commutes with appending " | " (a space neither composes with what
            # precedes it nor is a cased letter), so the folded title is folded once
            other = df[at].with_columns(folded(title).alias("__ftitle"))
            ftitle = pl.col("__ftitle")
            # tokens are read from the title with the look-alikes NFKC would lose mapped first
            # (Greek lunate sigma "ϲ" is a "c", not the final sigma NFKC makes of it)
            lost = nfkc_lost_lookalikes()
            tokens = folded(title.str.replace_many(list(lost), list(lost.values())))
            rest = other.select(
                tokens.str.replace_all(f"({CJK_CLASS}+)", " ${1} ").alias("__norm"),
                _padded_words(pl.concat_str(ftitle, pl.lit(" | "), folded(desc))).alias("__ptext"),
                lower.str.normalize("NFD").str.replace_all(MARKS_BUT_HIDDEN, "").alias("__raw"),
            )
            norm = norm.with_columns(
                norm.get_column(c).scatter(at, rest.get_column(c)) for c in rest.columns
            )
        return df.with_columns(norm)

    def _tokens(self, titles: pl.DataFrame) -> pl.DataFrame:
        """One row per token, in title order: ``__tid``, ``pos``, ``tok`` (as written, folded)
        and ``plain`` (letters and digits only)."""
        lists = titles.select("__tid", pl.col("__norm").str.extract_all(TOKEN).alias("tok"))
        # a token's position: its row in the exploded frame minus its title's first row
        start = lists.select(
            "__tid",
            "tok",
            (pl.col("tok").list.len().cum_sum() - pl.col("tok").list.len()).alias("__start"),
        ).explode("tok")
        toks = (
            start.drop_nulls("tok")
            .with_columns(
                (pl.int_range(pl.len(), dtype=pl.Int64) - pl.col("__start")).alias("pos"),
                pl.col("tok").str.strip_chars("!|"),
            )
            .drop("__start")
        )
        # besides letters and digits a token holds only TOKEN's symbols: the few tokens with
        # one are cleaned, the others are their own plain form
        tok = toks.get_column("tok")
        odd = toks.select(pl.col("tok").str.contains_any(TOKEN_SYMBOLS)).to_series().arg_true()
        plain = tok.clone().scatter(odd, tok.gather(odd).str.replace_all(r"[^\p{L}\p{N}]", ""))
        return toks.with_columns(plain.alias("plain"))

    @staticmethod
    def _runs(toks: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Each token and runs of 2-3 adjacent tokens of one title, coded as integers: ``c1``
        .. ``c3`` aligned with ``toks`` (null past the title's end); and the distinct runs:
        ``n``, ``code`` and ``form`` (their plain tokens concatenated).

        A batch has few distinct tokens (6k in 320k), so its runs repeat far more than they
        differ: forms are built and matched once per distinct run and joined back on integers,
        not on strings."""
        plain = toks.get_column("plain")
        vocab = plain.unique(maintain_order=True)
        size = max(vocab.len(), 1)
        ids = toks.select(index_of(pl.col("plain"), vocab).cast(pl.Int64)).to_series()
        tid, token = pl.col("__tid"), pl.col("__p")
        codes = [token.alias("c1")]
        run, bound = token, size
        for i in range(1, MAX_NGRAM):
            if bound * size >= 1 << CODE_BITS:
                # too many distinct tokens for the run's code: number the runs so far densely
                run, bound = run.rank("dense").cast(pl.Int64) - 1, max(toks.height, 1)
            run, bound = run * size + token.shift(-i), bound * size
            codes.append(pl.when(tid.shift(-i) == tid).then(run).alias(f"c{i + 1}"))
        coded = toks.select(tid, ids.alias("__p")).select(codes)
        distinct = []
        for n in range(1, MAX_NGRAM + 1):
            code = coded.get_column(f"c{n}")
            at = (code.is_first_distinct() & code.is_not_null()).arg_true()
            form = pl.concat_str(
                [plain.gather(at + i) for i in range(n)] if at.len() else [plain.clear()]
            )
            distinct.append(
                pl.DataFrame({"n": pl.repeat(n, at.len(), dtype=pl.Int8, eager=True)}).with_columns(
                    code.gather(at).alias("code"), form.alias("form")
                )
            )
        runs = pl.concat(distinct).filter(pl.col("form") != "")
        return coded, runs

    @staticmethod
    def _spaced(titles: pl.DataFrame) -> pl.DataFrame:
        """Letters written apart ("g u c c i", "n.i.k.e", "p-r-a-d-a") read as one word."""
        spaced = r"(?:^|[^\p{L}\p{N}])((?:\p{L}[ .\-_·*/]+){2,}\p{L})(?:[^\p{L}\p{N}]|$)"
        return (
            titles.select("__tid", pl.col("__norm").str.extract_all(spaced).alias("surface"))
            .explode("surface")
            .drop_nulls("surface")
            # a letter after a space and before a hyphen starts the next word ("G U C C I
            # t-shirt"), not the name
            .with_columns(pl.col("surface").str.replace(SPACED_NEXT_WORD, ""))
            .with_columns(pl.col("surface").str.replace_all(r"^[^\p{L}]+|[^\p{L}]+$", ""))
            .with_columns(pl.col("surface").str.replace_all(r"[^\p{L}]", "").alias("form"))
        )
