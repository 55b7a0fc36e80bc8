"""Brand mentions in tokens and token runs: exact keys by join, then the non-exact readings
(near misses within the edit budget, look-alike letters, leetspeak, masked and spaced letters)
on the forms that could read as a key, each distinct form classified once.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from rapidfuzz import process
from rapidfuzz.distance import OSA

from filters.core.normalise import (
    LEET,
    MASK_CHARS,
    ascii_skeletons,
    capital_lookalikes,
    capital_readings,
    is_masked,
    leet_readings,
    skeleton,
    visual_reading,
)
from filters.text.forms import _partials, glued_core
from filters.text.policy import MAX_NGRAM, MIN_GLUE_KEY, MIN_GLUE_WORD
from filters.text.tokens import TextTokens

if TYPE_CHECKING:
    pass
FORM_MATCH_SCHEMA: dict[str, pl.DataType] = {
    "form": pl.String(),
    "n": pl.Int8(),
    "brand": pl.String(),
    "kind": pl.String(),
    "edits": pl.Int32(),
    "ambiguous": pl.Boolean(),
    "ksig": pl.String(),
}


SURFACE_MATCH_SCHEMA: dict[str, pl.DataType] = {
    "surface": pl.String(),
    **{k: v for k, v in FORM_MATCH_SCHEMA.items() if k not in ("form", "n")},
}


class TextMatching(TextTokens):
    """Brand mentions: exact and non-exact matches of distinct forms."""

    def form_matches(self, forms: pl.DataFrame) -> pl.DataFrame:
        """Brand matches of distinct ``form``, ``n``: ``form``, ``n``, ``brand``, ``kind``,
        ``edits``, ``ambiguous``, ``ksig`` (matches of forms of earlier batches included).

        Exact matches are a join. The other kinds are tried only on forms that could read as a
        key (by length and letters: a model number never can), and a form's match depends on
        the form alone, so each is classified once per fitted filter and remembered for later
        batches. Only those forms are remembered: most forms are model numbers, sizes and other
        words met once."""
        # two runs can spell one form ("ab c", "a bc")
        distinct = forms.select("form", "n").unique()
        exact = self._exact_matches(distinct)
        form, n = pl.col("form"), pl.col("n")
        length = form.str.len_chars()
        head = pl.concat_str(form.str.slice(0, 1), length.cast(pl.String))
        # an ASCII form reads as a look-alike only through the few ASCII letters UTS #39 maps
        # ("rnoncler"): tried only if the mapped form is a key's reading; a form with other
        # characters is read in Python (few distinct forms have them)
        ascii_looks = self.ascii_looks_
        looks = (
            form.str.replace_many(list(ascii_looks), list(ascii_looks.values()))
            .str.to_lowercase()
            .is_in(list(self.look_lower_))
            if ascii_looks
            else pl.lit(False)
        ) | ~form.str.contains(r"^[a-z0-9]+$")
        keys = list(self.key_info_)
        digits = [d for d in LEET if d.isdigit()]
        leet = (
            form.str.contains(r"\p{L}")
            & form.str.contains(self.leet_form_)
            & (
                form.str.replace_many(digits, [LEET[d] for d in digits]).is_in(keys)
                | form.str.replace_many(
                    digits, ["l" if d == "1" else LEET[d] for d in digits]
                ).is_in(keys)
            )
        )
        # digits glued to a name of five letters or more ("burberry5")
        glued = (n == 1) & form.str.strip_chars("0123456789").is_in(self.glue_keys_)
        near = (
            ((n == 1) & length.is_in(self.typo_lengths_))
            | ((n > 1) & head.is_in(self.multi_typo_heads_))
            # a name glued to a word
            | ((n == 1) & (length >= MIN_GLUE_KEY + MIN_GLUE_WORD))
        )
        candidates = distinct.join(exact.select("form", "n"), on=["form", "n"], how="anti")
        # each reading is tried only on the forms it applies to: look-alikes on forms of
        # letters only or with other characters than a-z and 0-9, leetspeak on
        # forms with digits, glued digits on letters with digits at an end, near misses on a-z
        # forms (each query over every form cost more than the readings)
        applies = candidates.select(
            (~form.str.contains(r"^[a-z0-9]+$") | form.str.contains(r"^[a-z]+$")).alias("looks"),
            form.str.contains(r"[0-9]").alias("leet"),
            form.str.contains(r"^[0-9]+[a-z]+[0-9]*$|^[a-z]+[0-9]+$").alias("glued"),
            (form.str.contains(r"^[a-z0-9]+$") & form.str.contains(r"[a-z]")).alias("near"),
        )
        could = np.zeros(candidates.height, dtype=bool)
        tests = (looks, leet, glued, near)
        for where, test in zip(applies.get_columns(), tests, strict=True):
            at = where.arg_true()
            if at.len():
                hit = candidates[at].select(test.fill_null(False)).to_series()
                could[at.filter(hit).to_numpy()] = True
        others = self.memo_.lookup(
            "forms",
            candidates.filter(pl.Series(could)),
            ["form", "n"],
            self._classify_forms,
            FORM_MATCH_SCHEMA,
        )
        return pl.concat([exact, others]).unique(
            subset=["form", "n"], keep="first", maintain_order=True
        )

    def _exact_matches(self, uniq: pl.DataFrame) -> pl.DataFrame:
        keys = self.exact_keys_.rename({"key": "mkey", "sig": "ksig"})
        return (
            uniq.join(keys, left_on="form", right_on="mkey", how="inner")
            .with_columns(pl.lit(0, dtype=pl.Int32).alias("edits"))
            .select(list(FORM_MATCH_SCHEMA))
            .cast(pl.Schema(FORM_MATCH_SCHEMA))
        )

    def surface_matches(self, toks: pl.DataFrame) -> pl.DataFrame:
        """Leetspeak and masked matches of the batch's distinct single tokens as written (read
        letter for letter: only tokens with letters, as long as some key)."""
        tok = pl.col("tok")
        # tokens repeat: the tests run on the distinct ones (a token with a letter has a plain
        # form)
        distinct = (
            toks.select(tok.unique())
            .filter(
                tok.str.contains(r"[^\p{L}]")
                & tok.str.contains(r"\p{L}")
                & tok.str.len_chars().is_in(self.key_lengths_)
            )
            .select(tok.alias("surface"))
        )
        return self.memo_.lookup(
            "surfaces", distinct, ["surface"], self._classify_surfaces, SURFACE_MATCH_SCHEMA
        )

    def _classify_forms(self, rest: pl.DataFrame) -> pl.DataFrame:
        """Typo, look-alike and leetspeak matches of distinct ``(form, n)`` that are not exact
        matches (multi-token forms are typos only of multi-word keys); :meth:`form_matches`
        passes only forms that could read as a key."""
        key_info = self.key_info_
        extra: list[tuple[str, int, str, str, int, bool, str | None]] = []
        form = pl.col("form")
        # no ordinary word of the word list's languages is a misspelt or look-alike name
        common_words = self._common_words()
        common = {f for f in rest.get_column("form").to_list() if f in common_words}
        # look-alike letters: the UTS #39 skeleton must equal a key's exactly (a-z forms only
        # where one of their readings can: see _plain_look_candidates)
        plain = form.str.contains(r"^[a-z]+$")
        looks = (~form.str.contains(r"^[a-z0-9]+$")) | (plain & self._plain_look_candidates())
        for text, n in rest.filter(looks).iter_rows():
            key = None if text in common else self._look_alike(text)
            if key is not None:
                b, _, amb, ksig = key_info[key]
                extra.append((text, n, b, "confusable", 0, amb, ksig))
        # near misses: length-bucketed cdist over distinct forms, never common words
        fuzzy = rest.filter(
            form.str.contains(r"^[a-z]+$") & (form.str.len_chars() >= self.min_fuzzy_len)
        )
        single = [f for f in fuzzy.filter(pl.col("n") == 1)["form"].to_list() if f not in common]
        # a digit typed for a letter or between letters ("burb4erry"): read after leetspeak
        # and glued digits, which come first below
        mixed = rest.filter(
            (pl.col("n") == 1)
            & form.str.contains(r"^[a-z0-9]+$")
            & form.str.contains(r"[0-9]")
            & form.str.contains(r"[a-z]")
            & (form.str.len_chars() >= self.min_fuzzy_len)
        )["form"].to_list()
        multi = fuzzy.filter(pl.col("n") > 1)["form"].to_list()
        for text, key, d, first in self._near_misses(single, self.fuzzy_keys_):
            b, _, amb, ksig = key_info[key]
            if text not in _partials(key, ksig):
                # an edit of the first letter, or two edits ("sapling" for Spalding), ask for
                # corroboration, as an ambiguous name does
                extra.append((text, 1, b, "typo", d, amb or first or d >= 2, ksig))
        for text, key, d, _ in self._near_misses(multi, self.multi_fuzzy_keys_, same_first=True):
            b, _, amb, ksig = key_info[key]
            # as many tokens as the name has words: "calvin klein t" is not a typo
            n = len((ksig or "").split(","))
            if n <= MAX_NGRAM:
                extra.append((text, n, b, "typo", d, amb or d >= 2, ksig))
        # leetspeak over whole forms, so multi-word names read too ("bott3ga veneta", "7he north")
        for text, n in rest.filter(form.str.contains(r"[0-9]")).iter_rows():
            hit = next((r for r in leet_readings(text) if r in key_info), None)
            if hit is not None:
                b, _, amb, ksig = key_info[hit]
                extra.append((text, n, b, "leet", 0, amb, ksig))
            elif n == 1 and (core := glued_core(text)) is not None and core in self.glue_keys_set_:
                b, _, amb, ksig = key_info[core]
                extra.append((text, n, b, "glued", 0, amb, ksig))
        for text, key, d, first in self._near_misses(mixed, self.fuzzy_keys_):
            b, _, amb, ksig = key_info[key]
            if text not in _partials(key, ksig):
                extra.append((text, 1, b, "typo", d, amb or first or d >= 2, ksig))
        # a name glued to a common word ("guccishop", "shopgucci")
        words = rest.filter(
            (pl.col("n") == 1)
            & form.str.contains(r"^[a-z]+$")
            & (form.str.len_chars() >= MIN_GLUE_KEY + MIN_GLUE_WORD)
        ).get_column("form")
        if not words.is_empty():
            for text, key in self._glued_words(words.filter(~words.is_in(list(common)))):
                b, _, amb, ksig = key_info[key]
                extra.append((text, 1, b, "glued", 0, amb, ksig))
        # a look-alike letter and a typo together ("onegɑ" for Omega), last: only single forms
        # no other reading took
        taken = {e[0] for e in extra if e[1] == 1}
        looked: dict[str, list[str]] = {}
        for text in rest.filter(pl.col("n") == 1)["form"].to_list():
            if text in taken or text in common:
                continue
            reading = self._look_typo_query(text)
            if reading is not None:
                looked.setdefault(reading, []).append(text)
        for reading, seen, d, first in self._near_misses(sorted(looked), self.look_typo_keys_):
            key = self.look_typo_of_[seen]
            for text in looked[reading]:
                match = self._look_typo_match(text, key, d, first)
                if match is not None:
                    extra.append((text, 1, *match))
        return pl.DataFrame(extra, schema=FORM_MATCH_SCHEMA, orient="row").unique(
            subset=["form", "n"], keep="first", maintain_order=True
        )

    def _look_typo_query(self, form: str) -> str | None:
        """The visual reading of a single-token form that no other reading matched, to be
        compared with the keys' by edit distance: forms with characters other than a-z and
        0-9, and a-z forms of a near miss's length holding a letter run UTS #39 reads as one
        letter ("rnicrosotf"); None for other forms and for readings that are not a-z letters
        (another script) or too short for a near miss."""
        if form.isascii() and form.isalnum():
            if not form.isalpha() or len(form) not in self.typo_lengths_set_:
                return None
            if not any(run in form for run in self.look_runs_):
                return None
        reading = visual_reading(form)
        if len(reading) < self.min_fuzzy_len or not (reading.isascii() and reading.isalpha()):
            return None
        return reading

    def _look_typo_match(
        self, form: str, key: str, edits: int, first: bool
    ) -> tuple[str, str, int, bool, str | None] | None:
        """(brand, kind, edits, ambiguous, ksig) of a form whose visual reading is ``edits``
        from ``key``'s: a look-alike when it equals it, else a typo, which asks for support as
        any typo does (an edit of the first letter, or two edits); None for a part of a
        name of several words."""
        b, _, amb, ksig = self.key_info_[key]
        if edits == 0:
            return b, "confusable", 0, amb, ksig
        if form in _partials(key, ksig):
            return None
        return b, "typo", edits, amb or first or edits >= 2, ksig

    def _glued_words(self, forms: pl.Series) -> list[tuple[str, str]]:
        """(form, key) for forms that are a key of five letters or more glued to a common
        word of three or more ("guccishop", "shopgucci"): the longest key, at the start first."""
        found: dict[str, str] = {}
        frame = forms.to_frame("form").lazy()
        form, size = pl.col("form"), pl.col("form").str.len_chars()
        # the forms that start or end with a key, longest key first, the start before the
        # end; then whether the rest is a common word (a set lookup, not a hash of the word
        # list per key length)
        parts = []
        for length in sorted({len(k) for k in self.glue_keys_}, reverse=True):
            long_enough = size >= length + MIN_GLUE_WORD
            parts.append(
                frame.filter(long_enough & form.str.slice(0, length).is_in(self.glue_keys_)).select(
                    "form",
                    form.str.slice(0, length).alias("key"),
                    form.str.slice(length).alias("word"),
                )
            )
            parts.append(
                frame.filter(long_enough & form.str.slice(-length).is_in(self.glue_keys_)).select(
                    "form",
                    form.str.slice(-length).alias("key"),
                    form.str.slice(0, size - length).alias("word"),
                )
            )
        common = self._common_words()
        for text, key, word in pl.concat(parts).collect().iter_rows():
            if word in common:
                found.setdefault(text, key)
        return sorted(found.items())

    def _plain_look_candidates(self) -> pl.Expr:
        """Whether an a-z ``form`` may read as a key through :meth:`_look_alike`: a condition
        every match meets, computed in one pass. An ASCII string's skeleton is each
        character's own (NFD leaves ASCII as it is), so the lower-case and upper-case
        readings are two replacements; the readings with capital look-alikes ("i" read as
        the "l" its capital looks like) all equal the lower-case reading once those letters
        are made one."""
        table = ascii_skeletons()
        src, dst = [chr(c) for c in table], list(table.values())
        form = pl.col("form")
        lower = form.str.replace_many(src, dst).str.to_lowercase() if src else form
        upper = form.str.to_uppercase()
        upper = upper.str.replace_many(src, dst) if src else upper
        # the capital look-alikes of a-z letters, as their readings: one letter each
        pairs = {
            skeleton(c).lower(): skeleton(reading).lower()
            for c, reading in capital_lookalikes().items()
            if c.isascii()
        }
        candidate = lower.is_in(list(self.look_lower_)) | upper.is_in(list(self.look_upper_))
        if not pairs:
            return candidate
        if not all(len(a) == 1 and len(b) == 1 for a, b in pairs.items()):
            # no one-letter merge: every form is read in Python
            return pl.lit(True)
        merged = lower.str.replace_many(list(pairs), list(pairs.values()))
        keys = list(self.look_lower_)
        merged_keys = pl.Series(keys, dtype=pl.String).str.replace_many(
            list(pairs), list(pairs.values())
        )
        return candidate | merged.is_in(merged_keys.implode())

    def _look_alike(self, form: str) -> str | None:
        """The key a form reads as through look-alike characters (UTS #39 skeletons compared
        in lower and in upper case), else None. Titles are read in lower case, which loses
        the look of some capitals (Greek capital iota looks like "l", its small letter like
        "i"): a small letter whose capital reads as another ASCII letter is read both ways."""
        key = self.look_lower_.get(skeleton(form).lower())
        if key is None:
            key = self.look_upper_.get(skeleton(form.upper()))
        if key is None:
            key = next(
                (self.look_lower_[r] for r in capital_readings(form) if r in self.look_lower_),
                None,
            )
        return key if key != form else None

    def _masked_brand(self, surface: str) -> str | None:
        """The one brand whose key (4+ letters) fits a masked surface ("gu**i"), else None.
        Ambiguous words too: nobody masks the letters of an ordinary word."""
        if not is_masked(surface):
            return None
        # what the pattern matches: a key as long, equal wherever a letter is shown
        size, found = len(surface), None
        for i, c in enumerate(surface):
            if c in MASK_CHARS:
                continue
            keys = self.mask_index_.get((size, i, c))
            if not keys:
                return None
            found = keys if found is None else found & keys
            if not found:
                return None
        hits = {self.key_info_[k][0] for k in found or ()}
        return hits.pop() if len(hits) == 1 else None

    def _classify_surfaces(self, uniq: pl.DataFrame) -> pl.DataFrame:
        key_info = self.key_info_
        rows: list[tuple[str, str, str, int, bool, str | None]] = []
        for surface in uniq["surface"].to_list():
            hit = next((r for r in leet_readings(surface) if r in key_info), None)
            if hit is not None:
                b, _, amb, ksig = key_info[hit]
                rows.append((surface, b, "leet", 0, amb, ksig))
                continue
            brand = self._masked_brand(surface)
            if brand is not None:
                rows.append((surface, brand, "masked", 0, False, None))
        return pl.DataFrame(rows, schema=SURFACE_MATCH_SCHEMA, orient="row")

    def _classify_masked(self, uniq: pl.DataFrame) -> pl.DataFrame:
        rows = [(s, self._masked_brand(s)) for s in uniq.get_column("surface").to_list()]
        return pl.DataFrame(
            [r for r in rows if r[1] is not None], schema=["surface", "brand"], orient="row"
        )

    def _masked_runs(self, toks: pl.DataFrame) -> pl.DataFrame:
        """Names masked across a word break ("ray-b*n" is "rayb*n"): runs of 2-3 tokens of
        one title, each with a letter, one with a mask character, read together. Rows as
        :meth:`form_matches` gives them, with ``k``, the run's first token."""
        at = toks.select(pl.arg_where(pl.col("tok").str.contains_any(list(MASK_CHARS)))).to_series()
        masked_rows = at.to_numpy().astype(np.int64)
        size = toks.height
        tok, plain, tid = (toks.get_column(c) for c in ("tok", "plain", "__tid"))
        runs = []
        # only runs through a token with a mask character (a few in a batch) are built
        for n in range(2, MAX_NGRAM + 1):
            starts = np.unique(np.concatenate([masked_rows - j for j in range(n)]))
            starts = starts[(starts >= 0) & (starts + n <= size)].astype(np.int64)
            window = [starts + i for i in range(n)]
            runs.append(
                pl.DataFrame(
                    {
                        "k": starts,
                        **{f"__t{i}": tok.gather(w) for i, w in enumerate(window)},
                        **{f"__p{i}": plain.gather(w) for i, w in enumerate(window)},
                        **{f"__s{i}": tid.gather(w) for i, w in enumerate(window)},
                    }
                )
                .select(
                    "k",
                    pl.lit(n, dtype=pl.Int8).alias("n"),
                    pl.concat_str([f"__t{i}" for i in range(n)]).alias("surface"),
                    pl.concat_str([f"__p{i}" for i in range(n)]).alias("form"),
                    pl.all_horizontal(
                        [pl.col(f"__t{i}").str.contains(r"\p{L}") for i in range(n)]
                        + [pl.col(f"__s{i}") == pl.col("__s0") for i in range(1, n)]
                    ).alias("__ok"),
                )
                .filter(pl.col("__ok"))
            )
        # a masked name is letters and mask characters only, as long as some key
        surface = pl.col("surface")
        head = pl.concat_str(surface.str.slice(0, 1), surface.str.len_chars().cast(pl.String))
        found = pl.concat(runs).filter(
            head.is_in(self.mask_heads_)
            & surface.str.contains("^[\\p{L}" + re.escape(MASK_CHARS) + "]+$")
        )
        brands = self.memo_.lookup(
            "masked runs",
            found.select("surface").unique(),
            ["surface"],
            self._classify_masked,
            {"surface": pl.String(), "brand": pl.String()},
        )
        return found.join(brands, on="surface", how="inner").select(
            "k",
            "form",
            "n",
            "brand",
            pl.lit("masked").alias("kind"),
            pl.lit(0, dtype=pl.Int32).alias("edits"),
            pl.lit(False).alias("ambiguous"),
            pl.lit(None, dtype=pl.String).alias("ksig"),
        )

    def _spaced_matches(self, spaced: pl.DataFrame) -> pl.DataFrame:
        """Spaced-out letters spelling a key: a table of their own, so that a token's match
        never depends on another listing of the batch spelling the same letters apart."""
        key_info = self.key_info_
        rows = [
            (surface, *key_info[form][:1], "spaced", 0, key_info[form][2], key_info[form][3])
            for surface, form in spaced.select("surface", "form").unique().iter_rows()
            if form in key_info and len(form) >= 3
        ]
        return pl.DataFrame(rows, schema=SURFACE_MATCH_SCHEMA, orient="row").unique(
            subset=["surface"], keep="first", maintain_order=True
        )

    def _mentions(self, toks: pl.DataFrame, titles: pl.DataFrame) -> pl.DataFrame:
        """Brand mentions by token: ``__tid``, ``pos``, ``n``, ``surface``, ``prev1..3`` (the
        1-3 plain tokens before it), ``form``, ``brand``, ``kind``, ``edits``, ``ambiguous``.
        The context columns are built for the matched tokens only."""
        coded, runs = self._runs(toks)
        matched = runs.join(self.form_matches(runs), on=["form", "n"], how="inner")
        by_surface = self.surface_matches(toks)
        row = pl.int_range(pl.len(), dtype=pl.Int64).alias("k")
        parts = [
            coded.select(row, pl.col(f"c{n}").alias("code"))
            .join(matched.filter(pl.col("n") == n), on="code", how="inner")
            .select("k", *FORM_MATCH_SCHEMA)
            for n in range(1, MAX_NGRAM + 1)
        ]
        parts.append(
            toks.select(row, pl.col("tok").alias("surface"), pl.col("plain").alias("form"))
            .filter(pl.col("form") != "")
            .join(by_surface, on="surface", how="inner")
            .select("k", "form", pl.lit(1, dtype=pl.Int8).alias("n"), *list(FORM_MATCH_SCHEMA)[2:])
        )
        parts.append(self._masked_runs(toks))
        hits = pl.concat(parts, how="vertical_relaxed")
        found = (
            self._in_context(toks, hits)
            .with_columns(
                # a run of tokens matching a multi-word key with other word breaks: spaced
                pl.when(
                    (pl.col("n") > 1)
                    & pl.col("kind").is_in(["exact", "alias"])
                    & (pl.col("sig") != pl.col("ksig"))
                    # letters set apart ("d.i.o.r"); "Mont Blanc" for "Montblanc" is not obfuscation
                    & pl.col("sig").str.contains(r"^[12](?:,[12])*$")
                )
                .then(pl.lit("spaced"))
                .otherwise(pl.col("kind"))
                .alias("kind"),
            )
            .filter(
                # single letters set apart that spell a 2-3 letter abbreviation ("size L V-neck",
                # "vitamin C K") are ordinary text far more often than a disguised brand
                ~(
                    (pl.col("n") > 1)
                    & (pl.col("form").str.len_chars() <= 3)
                    & pl.col("sig").str.contains(r"^1(?:,1)*$")
                    & (pl.col("sig") != pl.col("ksig").fill_null(""))  # "D&G" as registered
                )
            )
        )
        # a name spelt exactly by fewer tokens from the same place is no misspelling of that name
        # with the next word: "Levis t-shirt" is "levis", not "levis t" one edit from "levi s"
        # (the same name: same brand and word lengths; "Mercedes-eBnz" still misspells the
        # longer name)
        # (near misses are few: only their titles' exact mentions are compared)
        same = ["__tid", "pos", "brand", "ksig"]
        typos = found.with_row_index("__row").filter(pl.col("kind") == "typo")
        if typos.is_empty():
            return found
        shadowed = (
            found.filter(
                pl.col("kind").is_in(["exact", "alias"])
                & pl.col("__tid").is_in(typos.get_column("__tid").implode())
            )
            .select(*same, pl.col("n").alias("__pn"))
            .join(typos.select("__row", *same, "n"), on=same, how="inner")
            .filter(pl.col("__pn") < pl.col("n"))
            .get_column("__row")
        )
        if shadowed.is_empty():
            return found
        keep = pl.repeat(True, found.height, eager=True).scatter(shadowed, False)
        return found.filter(keep)

    @staticmethod
    def _in_context(toks: pl.DataFrame, hits: pl.DataFrame) -> pl.DataFrame:
        """Matches at token rows ``k`` (``n`` tokens long) with their title, position,
        surface, token-length signature and preceding tokens."""
        size = toks.height
        k = hits.get_column("k").to_numpy()
        tid = toks.get_column("__tid")
        here = tid.gather(k) if size else tid.clear()

        @functools.cache
        def where(offset: int) -> tuple[np.ndarray, pl.Series]:
            """Token rows ``k + offset`` (clipped) and where they leave the title (shared by
            the columns read at one offset)."""
            idx = k + offset
            clipped = np.clip(idx, 0, max(size - 1, 0))
            if offset == 0:
                return clipped, pl.Series(np.zeros(len(k), dtype=bool))
            inside = (idx >= 0) & (idx < size)
            return clipped, pl.Series(~(inside & (tid.gather(clipped) == here).to_numpy()))

        def at(col: str, offset: int) -> pl.Series:
            """``col`` at token ``k + offset`` of the same title, else null."""
            clipped, outside = where(offset)
            values = toks.get_column(col).gather(clipped)
            return values.set(outside, None) if size else values

        n = pl.col("n")
        tokens = [
            pl.col("__t0"),
            pl.when(n > 1).then(pl.col("__t1")),
            pl.when(n > 2).then(pl.col("__t2")),
        ]
        lengths = [pl.col(c).str.len_chars().cast(pl.String) for c in ("__p0", "__p1", "__p2")]
        sig = [lengths[0], pl.when(n > 1).then(lengths[1]), pl.when(n > 2).then(lengths[2])]
        prev = [pl.col(f"__b{i}") for i in (1, 2, 3)]
        return hits.with_columns(
            here.alias("__tid"),
            toks.get_column("pos").gather(k).alias("pos")
            if size
            else pl.lit(0, pl.Int64).alias("pos"),
            *(at("tok", i).alias(f"__t{i}") for i in range(MAX_NGRAM)),
            *(at("plain", i).alias(f"__p{i}") for i in range(MAX_NGRAM)),
            *(at("plain", -i).alias(f"__b{i}") for i in range(1, MAX_NGRAM + 1)),
        ).select(
            "__tid",
            "pos",
            "n",
            pl.concat_str(tokens, separator=" ", ignore_nulls=True).alias("surface"),
            pl.concat_str(sig, separator=",", ignore_nulls=True).alias("sig"),
            "ksig",
            prev[0].alias("prev1"),
            pl.concat_str([prev[1], prev[0]], separator=" ").alias("prev2"),
            pl.concat_str([prev[2], prev[1], prev[0]], separator=" ").alias("prev3"),
            "form",
            "brand",
            "kind",
            "edits",
            "ambiguous",
        )

    def _near_misses(
        self, queries: list[str], keys: list[str], *, same_first: bool = False
    ) -> list[tuple[str, str, int, bool]]:
        """(query, key, edits, first letter differs) within each key's edit budget, nearest
        key per query (``same_first``: only keys the query shares its first letter with)."""
        if not queries or not keys:
            return []
        out: list[tuple[str, str, int, bool]] = []
        q_len = np.fromiter((len(q) for q in queries), dtype=np.int64, count=len(queries))
        for length in sorted({len(k) for k in keys}):
            budget = self.edit_budget(length)
            bucket_keys = [k for k in keys if len(k) == length]
            sel = np.flatnonzero(np.abs(q_len - length) <= budget)
            if sel.size == 0:
                continue
            bucket = [queries[i] for i in sel]
            dist = process.cdist(
                bucket,
                bucket_keys,
                scorer=OSA.distance,
                score_cutoff=budget,
                dtype=np.int8,
                workers=-1,
            )
            qi, ki = np.nonzero(dist <= budget)
            for a, b in zip(qi.tolist(), ki.tolist(), strict=True):
                first = bucket[a][0] != bucket_keys[b][0]
                # a name of several words keeps its first letter: dropping a leading word makes
                # no typo ("creuset" is not "Le Creuset", "for jordan" is not "Air Jordan")
                if not (same_first and first):
                    out.append((bucket[a], bucket_keys[b], int(dist[a, b]), first))
        # nearest key first; of equals, one keeping the first letter
        best: dict[str, tuple[str, str, int, bool]] = {}
        for q, k, d, first in sorted(out, key=lambda t: (t[0], t[2], t[3], t[1])):
            best.setdefault(q, (q, k, d, first))
        return list(best.values())
