"""The text filter on one listing, in plain Python (see :mod:`filters.core.textops`).

:class:`TextRecordScorer` mirrors :meth:`filters.text.TextFilter._score` step by step: the
same tokens, n-gram forms, brand matches, phrase hits, corroboration and scoring, so that
``score_record`` returns what ``score`` returns for a one-row frame. Matches of distinct forms
are cached (titles share most of their words), so a warm call costs tens of microseconds.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, NamedTuple

import regex
from rapidfuzz import process
from rapidfuzz.distance import OSA

import filters.core.textops as textops
from filters.core.normalise import MASK_CHARS, leet_readings, nfkc_lost_lookalikes, probe_folded
from filters.text.forms import _partials, glued_core
from filters.text.policy import (
    CONTEXT_CHARS,
    KIND_NOTE,
    KIND_RANK,
    KIND_SCORE,
    MAX_NGRAM,
    MIN_GLUE_KEY,
    MIN_GLUE_WORD,
    PLAIN_KINDS,
    TOKEN,
)
from filters.text.scoring import TextScoring

RE_TOKEN = regex.compile(TOKEN)
RE_SPACED = regex.compile(r"(?:^|[^\p{L}\p{N}])((?:\p{L}[ .\-_·*/]+){2,}\p{L})(?:[^\p{L}\p{N}]|$)")
RE_EDGE_NON_L = regex.compile(r"^[^\p{L}]+|[^\p{L}]+$")
RE_SPACED_NEXT_WORD = regex.compile(textops.SPACED_NEXT_WORD)
RE_NON_L = regex.compile(r"[^\p{L}]")
RE_LOWER_ALNUM = regex.compile(r"[a-z0-9]+")
RE_LOWER = regex.compile(r"[a-z]+")
RE_DIGIT = regex.compile(r"[0-9]")
RE_LETTER = regex.compile(r"\p{L}")
RE_FULLWIDTH = regex.compile(r"[\uff01-\uff5e]")
RE_SIGS_12 = regex.compile(r"^[12](?:,[12])*$")
RE_SIGS_1 = regex.compile(r"^1(?:,1)*$")


class Match(NamedTuple):
    brand: str
    kind: str
    edits: int
    ambiguous: bool
    ksig: str | None


class Mention(NamedTuple):
    pos: int
    n: int
    surface: str
    prev1: str | None
    prev2: str | None
    prev3: str | None
    form: str
    brand: str
    kind: str
    edits: int
    ambiguous: bool


def _join(parts: list[str | None]) -> str | None:
    """``concat_str(..., separator=" ")``: null if any part is null."""
    if any(p is None for p in parts):
        return None
    return " ".join(p for p in parts if p is not None)


def _words(phrase: str | None) -> str | None:
    return None if phrase is None else " ".join(w for w in phrase.split(" ") if w != "")


class TextRecordScorer:
    """Lookups of a fitted :class:`~filters.text.TextFilter`, arranged for one listing."""

    def __init__(self, f: TextScoring) -> None:
        self.context_chars = CONTEXT_CHARS

        self.f = f
        self.kind_rank, self.kind_score, self.kind_note = KIND_RANK, KIND_SCORE, KIND_NOTE
        self.plain_kinds = PLAIN_KINDS
        self.max_ngram = MAX_NGRAM
        self.partials = _partials
        self.unlost = str.maketrans(nfkc_lost_lookalikes())
        self.glued_core = glued_core
        self.glue_lengths = sorted({len(k) for k in f.glue_keys_}, reverse=True)
        self.key_info: dict[str, Match] = {
            k: Match(b, kind, 0, bool(amb), ksig)
            for k, b, kind, ksig, amb in f.keys_.select(
                "key", "brand", "kind", "sig", "ambiguous"
            ).iter_rows()
        }
        # names and their plurals, looked up as written (readings use key_info alone)
        self.exact_info: dict[str, Match] = {
            k: Match(b, kind, 0, bool(amb), ksig)
            for k, b, kind, ksig, amb in f.exact_keys_.select(
                "key", "brand", "kind", "sig", "ambiguous"
            ).iter_rows()
        }
        self.native: dict[str, list[tuple[str, bool]]] = {}
        for key, brand, ambiguous in f.native_.iter_rows():
            self.native.setdefault(key, []).append((brand, bool(ambiguous)))
        self.native_exceptions = textops.PatternSet(f.native_exceptions_)
        self.desc_names = textops.PatternSet(f.desc_names_.get_column("__dpat").to_list())
        self.desc_info: dict[str, tuple[str, str, bool]] = {
            pat: (form, brand, bool(amb))
            for pat, brand, form, amb in f.desc_names_.select(
                "__dpat", "brand", "form", "ambiguous"
            ).iter_rows()
        }
        self.desc_probe = textops.WordProbe(f.desc_probe_)
        self.compared_before = regex.compile(f.compared_before_) if f.compared_before_ else None
        self.compared_after = regex.compile(f.compared_after_) if f.compared_after_ else None
        self.fuzzy_keys = list(f.fuzzy_keys_)
        self.multi_keys = list(f.multi_fuzzy_keys_)
        self.max_budget = max((f.edit_budget(len(k)) for k in self.fuzzy_keys), default=0)
        # the word list stays a sorted column: a set of its 300,000 words would cost a few
        # tenths of a second to build, a lookup by bisection a few microseconds
        self.common_words = f.common_
        self.brand_cats = frozenset(f.brand_categories_.iter_rows())
        self.brand_by_key: dict[str, str] = {}
        for k, b in f.brand_by_key_.iter_rows():
            self.brand_by_key.setdefault(k, b)
        self.strong = textops.PatternSet(f.strong_)
        self.weak = textops.PatternSet(f.weak_)
        self.exceptions = textops.PatternSet(f.exceptions_)
        self.legit = textops.PatternSet(f.legit_)
        self.secondhand = tuple(f.secondhand_)
        self.refurbished = tuple(f.refurbished_)
        self.compatible = textops.PatternSet(f.compatible_)
        self.not_the_product = textops.PatternSet(f.not_the_product_)
        self.fitted = textops.PatternSet(f.fitted_)
        self.title_accessory_probe = tuple(f.title_accessory_probe_)
        self.accessory_nouns = textops.PatternSet(f.accessory_nouns_)
        self.head_nouns = frozenset(f.head_nouns_)
        self.product_nouns = frozenset(f.product_nouns_)
        self.head_patterns = textops.PatternSet(f.head_patterns_)
        self.bundle_cut = None if f.bundle_cut_ is None else regex.compile(f.bundle_cut_)
        self.item_probe = tuple(f.item_probe_)
        self.small_goods = textops.PatternSet(f.small_goods_.get_column("__ifrom").to_list())
        self.item_of: dict[str, tuple[str, float]] = {
            form: (item, share) for form, item, share in f.small_goods_.iter_rows()
        }
        self.item_guard = tuple(f.item_guard_)
        self.ordinary_phrases = textops.PatternSet(f.ordinary_["__ophrase"].to_list())
        self.ordinary: dict[str, str] = {}
        for phrase, okey in f.ordinary_.iter_rows():
            self.ordinary.setdefault(phrase, okey)
        self.native_set = textops.PatternSet(f.native_["native"].to_list())
        self.prefixes = frozenset(f.accessory_prefixes_)
        self._caches()

    def _caches(self) -> None:
        self.is_common = lru_cache(maxsize=200_000)(self._is_common)
        self.form_match = lru_cache(maxsize=200_000)(self._form_match)
        self.surface_match = lru_cache(maxsize=50_000)(self._surface_match)
        self.masked_brand = lru_cache(maxsize=50_000)(self.f._masked_brand)

    # the caches are rebuilt, not pickled (the Spark runner ships fitted filters to workers)
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["form_match"], state["surface_match"], state["masked_brand"]
        del state["is_common"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._caches()

    # ------------------------------------------------------------ matching (cached)

    def _is_common(self, word: str) -> bool:
        """Whether ``word`` is in the filter's (sorted) word list."""
        words = self.common_words
        at = words.search_sorted(word)
        return bool(at < words.len() and words[at] == word)

    def _glued_word(self, form: str) -> str | None:
        """The key a form glues to a common word, as ``TextFilter._glued_words``."""
        if len(form) < MIN_GLUE_KEY + MIN_GLUE_WORD:
            return None
        keys = self.f.glue_keys_set_
        for length in self.glue_lengths:
            if len(form) < length + MIN_GLUE_WORD:
                continue
            head, tail = form[:length], form[length:]
            if head in keys and self.is_common(tail):
                return head
            head, tail = form[: len(form) - length], form[len(form) - length :]
            if tail in keys and self.is_common(head):
                return tail
        return None

    def _nearest(
        self, query: str, keys: list[str], *, same_first: bool = False
    ) -> tuple[str, int, bool] | None:
        """The nearest key within its edit budget (of equals, one keeping the first letter,
        then the alphabetically first), as ``TextFilter._near_misses``: (key, edits, whether
        the first letter differs)."""
        if not keys or self.max_budget == 0:
            return None
        best: tuple[int, bool, str] | None = None
        for key, dist, _ in process.extract(
            query, keys, scorer=OSA.distance, score_cutoff=self.max_budget, limit=None
        ):
            budget = self.f.edit_budget(len(key))
            first = query[0] != key[0]
            if dist <= budget and abs(len(query) - len(key)) <= budget:
                if same_first and first:
                    continue
                cand = (int(dist), first, key)
                if best is None or cand < best:
                    best = cand
        return None if best is None else (best[2], best[0], best[1])

    def _form_match(self, form: str, n: int) -> Match | None:
        """The brand match of one n-gram form (``TextFilter.form_matches``, by form): a
        look-alike letter and a typo together last, as there."""
        hit = self._form_reading(form, n)
        if hit is not None or n != 1 or self.is_common(form):
            return hit
        reading = self.f._look_typo_query(form)
        if reading is None:
            return None
        near = self._nearest(reading, self.f.look_typo_keys_)
        if near is None:
            return None
        seen, d, first = near
        found = self.f._look_typo_match(form, self.f.look_typo_of_[seen], d, first)
        return None if found is None else Match(*found)

    def _form_reading(self, form: str, n: int) -> Match | None:
        """The match of one n-gram form by every reading but look-alike typos."""
        info = self.key_info
        hit = self.exact_info.get(form)
        if hit is not None:
            return hit
        lower = RE_LOWER.fullmatch(form) is not None
        if (lower or not RE_LOWER_ALNUM.fullmatch(form)) and not self.is_common(form):
            key = self.f._look_alike(form)
            if key is not None:
                m = info[key]
                return Match(m.brand, "confusable", 0, m.ambiguous, m.ksig)
        if lower and len(form) >= self.f.min_fuzzy_len:
            if n == 1 and not self.is_common(form):
                near = self._nearest(form, self.fuzzy_keys)
                if near is not None:
                    key, d, first = near
                    m = info[key]
                    if form not in self.partials(key, m.ksig):
                        return Match(m.brand, "typo", d, m.ambiguous or first or d >= 2, m.ksig)
                glued = self._glued_word(form)
                if glued is not None:
                    m = info[glued]
                    return Match(m.brand, "glued", 0, m.ambiguous, m.ksig)
            elif n > 1:
                near = self._nearest(form, self.multi_keys, same_first=True)
                if near is not None:
                    key, d, _ = near
                    m = info[key]
                    # the match row is keyed by the name's word count, as in the batch path
                    if len((m.ksig or "").split(",")) == n:
                        return Match(m.brand, "typo", d, m.ambiguous or d >= 2, m.ksig)
            return None
        if RE_DIGIT.search(form):
            if RE_LETTER.search(form):
                reading = next((r for r in leet_readings(form) if r in info), None)
                if reading is not None:
                    m = info[reading]
                    return Match(m.brand, "leet", 0, m.ambiguous, m.ksig)
            core = self.glued_core(form) if n == 1 else None
            if core is not None and core in self.f.glue_keys_set_:
                m = info[core]
                return Match(m.brand, "glued", 0, m.ambiguous, m.ksig)
            # a digit typed for a letter or between letters, as TextFilter._classify_forms
            if (
                n == 1
                and RE_LOWER_ALNUM.fullmatch(form)
                and RE_LETTER.search(form)
                and len(form) >= self.f.min_fuzzy_len
            ):
                near = self._nearest(form, self.fuzzy_keys)
                if near is not None:
                    key, d, first = near
                    m = info[key]
                    if form not in self.partials(key, m.ksig):
                        return Match(m.brand, "typo", d, m.ambiguous or first or d >= 2, m.ksig)
        return None

    def _surface_match(self, surface: str) -> Match | None:
        """Leetspeak or masked letters in one token as written."""
        reading = next((r for r in leet_readings(surface) if r in self.key_info), None)
        if reading is not None:
            m = self.key_info[reading]
            return Match(m.brand, "leet", 0, m.ambiguous, m.ksig)
        brand = self.masked_brand(surface)
        return None if brand is None else Match(brand, "masked", 0, False, None)

    # ------------------------------------------------------------ one listing

    def mentions(self, norm: str) -> list[Mention]:
        """Every brand mention in a normalised title, in the batch path's order."""
        toks: list[str] = [t.strip("!|") for t in RE_TOKEN.findall(norm)]
        plain = [textops.RE_NOT_LN.sub("", t) for t in toks]
        out: list[Mention] = []
        n_tok = len(toks)

        def prev(i: int, k: int) -> str | None:
            return plain[i - k] if i - k >= 0 else None

        for n in range(1, self.max_ngram + 1):
            for i in range(n_tok - n + 1):
                parts = plain[i : i + n]
                form = "".join(parts)
                if not form:
                    continue
                m = self.form_match(form, n)
                if m is None:
                    continue
                sig = ",".join(str(len(p)) for p in parts)
                kind = m.kind
                if (
                    n > 1
                    and kind in ("exact", "alias")
                    and m.ksig is not None
                    and sig != m.ksig
                    and RE_SIGS_12.match(sig)
                ):
                    kind = "spaced"
                if n > 1 and len(form) <= 3 and RE_SIGS_1.match(sig) and sig != (m.ksig or ""):
                    continue
                p1, p2, p3 = prev(i, 1), prev(i, 2), prev(i, 3)
                out.append(
                    Mention(
                        i,
                        n,
                        " ".join(toks[i : i + n]),
                        p1,
                        _join([p2, p1]),
                        _join([p3, p2, p1]),
                        form,
                        m.brand,
                        kind,
                        m.edits,
                        m.ambiguous,
                    )
                )
        for i, (tok, form) in enumerate(zip(toks, plain, strict=True)):
            if not form or not RE_NON_L.search(tok):
                continue
            m = self.surface_match(tok)
            if m is not None:
                p1, p2, p3 = prev(i, 1), prev(i, 2), prev(i, 3)
                out.append(
                    Mention(
                        i,
                        1,
                        tok,
                        p1,
                        _join([p2, p1]),
                        _join([p3, p2, p1]),
                        form,
                        m.brand,
                        m.kind,
                        m.edits,
                        m.ambiguous,
                    )
                )
        # a name masked across a word break ("ray-b*n"), as TextFilter._masked_runs
        for n in range(2, self.max_ngram + 1):
            for i in range(n_tok - n + 1):
                window = toks[i : i + n]
                if not all(RE_LETTER.search(t) for t in window) or not any(
                    c in MASK_CHARS for t in window for c in t
                ):
                    continue
                brand = self.masked_brand("".join(window))
                if brand is None:
                    continue
                parts = plain[i : i + n]
                form = "".join(parts)
                sig = ",".join(str(len(p)) for p in parts)
                if len(form) <= 3 and RE_SIGS_1.match(sig):
                    continue
                p1, p2, p3 = prev(i, 1), prev(i, 2), prev(i, 3)
                out.append(
                    Mention(
                        i,
                        n,
                        " ".join(window),
                        p1,
                        _join([p2, p1]),
                        _join([p3, p2, p1]),
                        form,
                        brand,
                        "masked",
                        0,
                        False,
                    )
                )
        for match in RE_SPACED.finditer(norm):
            surface = RE_EDGE_NON_L.sub("", RE_SPACED_NEXT_WORD.sub("", match.group(0)))
            form = RE_NON_L.sub("", surface)
            if len(form) >= 3 and form in self.key_info:
                m = self.key_info[form]
                out.append(
                    Mention(
                        -1, 1, surface, None, None, None, form, m.brand, "spaced", 0, m.ambiguous
                    )
                )

        # TextFilter._mentions: no misspelling of a name fewer tokens spell exactly there
        def same(hit: Mention) -> tuple[int, str, str | None]:
            match = self.form_match(hit.form, hit.n)
            return hit.pos, hit.brand, None if match is None else match.ksig

        exact: dict[tuple[int, str, str | None], int] = {}
        for hit in out:
            if hit.kind in ("exact", "alias"):
                exact[same(hit)] = min(hit.n, exact.get(same(hit), hit.n))
        return [
            hit for hit in out if not (hit.kind == "typo" and exact.get(same(hit), hit.n) < hit.n)
        ]

    def description_mentions(self, desc: str) -> list[Mention]:
        """:meth:`TextFilter._description_mentions` of one description."""
        limit = self.f.max_description_chars
        text = desc[:limit] + "x" if len(desc) > limit else desc
        if text.isascii():
            words = " " + textops.strip_chars(textops.RE_PHRASE_KEEP.sub(" ", text.lower())) + " "
        else:
            words = textops.phrase_text(text)
        spaced = words.replace(" ", "  ")
        hits: list[tuple[str, str, str, bool, bool]] = []  # surface, form, brand, amb, compared
        anywhere = any(p in spaced for p in self.f.compared_anywhere_)
        for pat in dict.fromkeys(self.desc_names.extract(spaced)):
            form, brand, ambiguous = self.desc_info[pat]
            parts = spaced.split(pat)
            before = _tidy(parts[0][-self.context_chars :])
            after = _tidy(parts[1][: self.context_chars]) if len(parts) > 1 else ""
            compared = bool(
                anywhere
                or (self.compared_before is not None and self.compared_before.search(before))
                or (self.compared_after is not None and self.compared_after.search(after))
            )
            hits.append((_words(pat) or "", form, brand, ambiguous, compared))
        out = [
            Mention(
                0,
                1,
                surface,
                None,
                None,
                None,
                form,
                brand,
                "description",
                0,
                ambiguous,
            )
            for surface, form, brand, ambiguous, _ in hits
        ]
        if not text.isascii() and self.native_set.patterns:
            ntext = textops.native_text(textops.RE_CJK_RUN.sub(r" \1 ", textops.folded(text)))
            if self.native_exceptions.patterns:
                ntext = self.native_exceptions.replace(ntext, " ")
            for hit in dict.fromkeys(self.native_set.extract(ntext)):
                for brand, ambiguous in self.native.get(hit, ()):
                    out.append(
                        Mention(
                            0, 1, hit, None, None, None, hit, brand, "description", 0, ambiguous
                        )
                    )
        # a description that compares with one brand compares with all it names
        if any(h[4] for h in hits):
            out = [m._replace(kind="compared") for m in out]
        return out

    def _title_accessory(self, norm: str, ptext: str) -> str | None:
        """:meth:`TextFilter._title_accessories` of one normalised title (``ptext``: its
        listing's phrase text, which the batch path tests first)."""
        if not any(p in ptext for p in self.title_accessory_probe):
            return None
        spaced = (" " + textops.strip_chars(textops.RE_PHRASE_KEEP.sub(" ", norm)) + " ").replace(
            " ", "  "
        )
        part = self.not_the_product.extract(spaced) if self.not_the_product.patterns else []
        if part:
            return f'"{_words(part[0])}" in the title: not the product itself'
        fitted = self.fitted.extract(spaced) if self.fitted.patterns else []
        if fitted:
            return f'"{_words(fitted[0])}" in the title: made for the brand\'s product'
        word = self.compatible.extract(spaced) if self.compatible.patterns else []
        noun = self.accessory_nouns.extract(spaced) if self.accessory_nouns.patterns else []
        if word and noun:
            return (
                f'"{_words(noun[0])}" and "{_words(word[0])}" in the title: accessory for the brand'
            )
        return self._head_noun(spaced)

    def _head_noun(self, spaced: str) -> str | None:
        """:meth:`TextFilter._head_noun` of one title's spaced text."""
        if not self.head_nouns:
            return None
        head = spaced if self.bundle_cut is None else self.bundle_cut.sub("", spaced, count=1)
        nouns = self.head_patterns.extract_leftmost(head)
        if not nouns or nouns[-1] not in self.head_nouns:
            return None
        return f'"{_words(nouns[-1])}" is what the title sells: accessory for the brand'

    def _title_item(self, norm: str, ptext: str) -> tuple[str | None, float | None]:
        """:meth:`TextFilter._title_items` of one normalised title."""
        if not any(p in ptext for p in self.item_probe):
            return None, None
        spaced = (" " + textops.strip_chars(textops.RE_PHRASE_KEEP.sub(" ", norm)) + " ").replace(
            " ", "  "
        )
        rest = self.small_goods.replace(spaced, "  ")
        if any(p in rest for p in self.item_guard):
            return None, None
        best: tuple[str, float] | None = None
        for form in self.small_goods.extract(spaced):
            item, share = self.item_of[form]
            if best is None or share > best[1]:
                best = (item, share)
        return best if best is not None else (None, None)

    def score(self, record: Mapping[str, Any]) -> dict[str, Any]:
        f = self.f
        title_value = record.get("title")
        title = "" if title_value is None else str(title_value)
        desc_value = record.get("description") if f.use_description else None
        desc = "" if desc_value is None else str(desc_value)
        limit = f.max_description_chars
        # what is read of the description (TextFilter.description_read)
        read = desc[:limit] + "x" if len(desc) > limit else desc
        if read and not self.desc_probe.search(probe_folded(read)):
            read = ""
        text = f"{title} | {read}"
        if text.isascii():
            norm = title.lower()
            ptext = " " + textops.strip_chars(textops.RE_PHRASE_KEEP.sub(" ", text.lower())) + " "
            raw = title.lower()
        else:
            norm = textops.RE_CJK_RUN.sub(r" \1 ", textops.folded(title.translate(self.unlost)))
            ptext = textops.phrase_text(text)
            raw = textops.RE_MARKS_BUT_HIDDEN.sub("", _nfd(title.lower()))

        # phrases
        spaced_text = ptext.replace(" ", "  ")
        cleaned = (
            self.exceptions.replace(spaced_text, " ") if self.exceptions.patterns else spaced_text
        )
        strong = self.strong.extract(cleaned)
        weak = self.weak.extract(cleaned)
        legit = self.legit.extract(spaced_text)
        ordinary_hits = self.ordinary_phrases.extract(spaced_text)
        native_hits: list[str] = []
        if not norm.isascii() and self.native_set.patterns:
            ntext = textops.native_text(norm)
            if self.native_exceptions.patterns:
                ntext = self.native_exceptions.replace(ntext, " ")
            native_hits = self.native_set.extract(ntext)

        found = self.mentions(norm)
        for hit in native_hits:
            for brand, ambiguous in self.native.get(hit, ()):
                found.append(
                    Mention(-1, 1, hit, None, None, None, hit, brand, "native", 0, ambiguous)
                )

        if not found and read:
            found = self.description_mentions(read)

        declared_raw = record.get("brand")
        dkey = textops.brand_key_expr(None if declared_raw is None else str(declared_raw))
        declared = None if dkey is None else self.brand_by_key.get(dkey)
        cat_raw = record.get("category")
        cat_read = self.f.taxonomy_.resolve(None if cat_raw is None else str(cat_raw))
        # the registry categories the listing's category covers; None: none given, or unknown
        lcats = cat_read.categories if cat_read.status == "known" else None
        n_strong = len(strong)

        # ordinary uses of brand words, by brand key, in hit order
        ordinary_by_key: dict[str, list[str]] = {}
        for phrase in ordinary_hits:
            okey = self.ordinary.get(phrase)
            if okey is not None:
                ordinary_by_key.setdefault(okey, []).append(_words(phrase) or "")

        rows: list[tuple[Mention, str, str | None]] = []  # mention, kind, ordinary phrase
        for m in found:
            kind = m.kind
            if kind in ("exact", "alias") and m.surface not in raw:
                if RE_FULLWIDTH.search(raw):
                    kind = "fullwidth"
                elif textops.RE_ZERO_WIDTH.search(raw):
                    kind = "zero_width"
                elif unicodedata.normalize("NFKC", raw) != unicodedata.normalize("NFC", raw):
                    kind = "confusable"
            for oph in ordinary_by_key.get(m.form, [None]):
                rows.append((m, kind, oph))

        compat = self._title_accessory(norm, ptext)
        accessory: dict[str, str] = {}
        for m, _, _ in rows:
            prefix = next(
                (p for p in (m.prev3, m.prev2, m.prev1) if p is not None and p in self.prefixes),
                None,
            )
            if prefix is not None:
                note = f'"{prefix} {m.form}": accessory for the brand'
                if m.brand not in accessory or note < accessory[m.brand]:
                    accessory[m.brand] = note
        if compat is not None:
            for m, _, _ in rows:
                accessory.setdefault(m.brand, compat)

        # two names of one brand corroborate each other (ambiguous mentions outside ordinary
        # phrases, as TextFilter._scored)
        names: dict[str, set[str]] = {}
        for m, _, oph in rows:
            if m.ambiguous and oph is None:
                names.setdefault(m.brand, set()).add(m.form)
        usable: list[tuple[Mention, str]] = []
        suppressed: list[tuple[int, int, str, str, str]] = []
        for m, kind, oph in rows:
            if oph is not None:
                suppressed.append((m.pos, m.n, m.form, oph, m.surface))
                continue
            if kind == "compared" and not n_strong:
                continue
            if m.ambiguous and kind in ("exact", "alias", "native", "description", "typo", "glued"):
                supported = (
                    (lcats is not None and any((m.brand, c) in self.brand_cats for c in lcats))
                    or (declared is not None and declared == m.brand)
                    or n_strong > 0
                    or len(names.get(m.brand, ())) > 1
                )
                if kind in ("exact", "alias") and not supported and lcats is None:
                    # without a category, a capitalised brand word is support enough (a script
                    # without case, Arabic or Hebrew, capitalises nothing)
                    supported = m.surface not in title and m.surface.upper() != m.surface
                if not supported:
                    continue
            usable.append((m, kind))
        oreason = None
        if suppressed:
            _, _, _, oph, surface = min(suppressed)
            oreason = f'brand word "{surface}" used as ordinary word ("{oph}")'

        best: tuple[Mention, str] | None = None
        if usable:
            best = min(
                usable,
                key=lambda mk: (
                    self.kind_rank[mk[1]],
                    mk[0].edits,
                    -mk[0].n,
                    mk[0].pos,
                    mk[0].brand,
                    mk[0].surface,
                ),
            )
        out = self._scored(best, accessory, declared, strong, weak, legit, oreason)
        # TextFilter._scored: the chosen brand's first plain alias, else its plain name's key
        out["text_key"] = None
        if best is not None:
            first_alias = min(
                ((m.pos, m.form) for m, k in usable if k == "alias" and m.brand == best[0].brand),
                default=None,
            )
            if first_alias is not None:
                out["text_key"] = first_alias[1]
            elif best[1] in self.plain_kinds:
                out["text_key"] = best[0].form
            if out["text_key"] is not None:
                out["text_key"] = self.f.plural_base_.get(out["text_key"], out["text_key"])
        out["text_item"], out["text_item_share"] = self._title_item(norm, ptext)
        out["text_condition"] = (
            "used"
            if any(p in spaced_text for p in self.secondhand)
            else "refurbished"
            if any(p in spaced_text for p in self.refurbished)
            else None
        )
        return out

    def _as_written(self, hit: str) -> str:
        words = _words(hit) or ""
        return self.f.phrases_as_written_.get(words, words)

    def _scored(
        self,
        best: tuple[Mention, str] | None,
        accessory: dict[str, str],
        declared: str | None,
        strong: list[str],
        weak: list[str],
        legit: list[str],
        oreason: str | None,
    ) -> dict[str, Any]:
        brand = kind = surface = acc = None
        edits: int | None = None
        if best is not None:
            m, kind = best
            brand, edits, surface = m.brand, m.edits, m.surface
            acc = accessory.get(m.brand)
        has_brand = brand is not None
        is_accessory = acc is not None
        s_brand = 0.0
        if kind is not None:
            s_brand = self.kind_score.get(kind, 0.0) - (0.05 if (edits or 0) >= 2 else 0.0)
        s_brand = s_brand * (0.2 if is_accessory else 1.0)
        n_strong, n_weak, n_legit = len(strong), len(weak), len(legit)
        s_strong = 0.95 if n_strong and has_brand else 0.15 if n_strong else 0.0
        w = float(n_weak)
        s_weak = min(max(0.15 * w, 0.0), 0.3) if has_brand else min(max(0.05 * w, 0.0), 0.1)
        mismatch = has_brand and declared is not None and declared != brand
        s_mismatch = 0.5 if mismatch else 0.0
        raw = 1 - (1 - s_brand) * (1 - s_strong) * (1 - s_weak) * (1 - s_mismatch)
        damp = 0.7 if n_legit > 0 and not n_strong else 1.0
        score = min(max(raw * damp, 0.0), 1.0)

        reasons: list[str] = []
        if has_brand:
            if kind in ("exact", "native"):
                reasons.append(f'title mentions brand "{brand}"')
            elif kind == "alias":
                reasons.append(f'title mentions "{surface}" (brand "{brand}")')
            elif kind in ("description", "compared"):
                reasons.append(f'description mentions "{surface}" (brand "{brand}")')
            else:
                if kind == "typo":
                    note = f"{edits} edit{'' if edits == 1 else 's'}"
                else:
                    note = self.kind_note.get(kind or "", "")
                reasons.append(f'title "{surface}" ~ brand "{brand}" ({note})')
        if n_strong:
            reasons.append(f'counterfeit phrase "{self._as_written(strong[0])}"')
        if n_weak:
            reasons.append(f'suggestive phrase "{self._as_written(weak[0])}"')
        if acc is not None:
            reasons.append(acc)
        if mismatch:
            reasons.append(f'declared brand "{declared}" but title says "{brand}"')
        if oreason is not None:
            reasons.append(oreason)
        return {
            "text_score": score if not math.isnan(score) else None,
            "text_reasons": reasons,
            "text_brand": brand,
            "text_match": kind,
            "text_edits": edits,
            "text_strong_phrases": n_strong,
            "text_weak_phrases": n_weak,
            "text_legit": n_legit,
            "text_accessory": is_accessory,
            "text_brand_mismatch": (mismatch if has_brand and declared is not None else None),
        }


def _tidy(text: str) -> str:
    """Words around a name: runs of spaces as one, none at either end."""
    return RE_SPACES.sub(" ", text).strip(" ")


RE_SPACES = regex.compile(" +")


def _nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)
