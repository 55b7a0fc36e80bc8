"""The lexicon a fitted text filter holds: brand keys, aliases, native names, phrases and
contexts compiled from the registry, the edit budget, and the memo of classified forms.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast

import polars as pl

from filters.base import (
    Filter,
    RowMemo,
    compacted,
)
from filters.core.normalise import (
    LEET,
    MASK_CHARS,
    confusables,
    fold,
    inflected_keys,
    is_cjk,
    probe_folded,
    probe_word,
    script_folded,
    skeleton,
    visual_reading,
)
from filters.core.registry import brand_key
from filters.core.textops import native_form, probe_pattern
from filters.text.forms import (
    _phrase_form_each,
    _phrase_forms,
    _single_spaced,
    ambiguous_surfaces,
    plural_key,
)
from filters.text.policy import AMBIGUOUS_ZIPF, COMPARISON_FILLERS, DESCRIPTION_CHARS, MIN_GLUE_KEY

if TYPE_CHECKING:
    from typing import Self

    from filters.core.registry import Registry


class MatchMemo:
    """Distinct values a fitted filter has classified (hits and misses), by table, so that
    each batch classifies only values no earlier batch had. Bounded: past ``max_rows`` a
    table starts over. Safe to share between threads: values are classified outside the lock
    (two batches at once may both classify a value; it is kept once). Not pickled (a copy
    starts empty)."""

    def __init__(self, max_rows: int = 2_000_000) -> None:
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._seen: dict[str, pl.DataFrame] = {}
        self._hits: dict[str, pl.DataFrame] = {}

    def lookup(
        self,
        table: str,
        distinct: pl.DataFrame,
        on: list[str],
        classify: Callable[[pl.DataFrame], pl.DataFrame],
        schema: Mapping[str, pl.DataType],
    ) -> pl.DataFrame:
        """The hits among every value classified so far, after classifying ``distinct``'s
        new values (hits may include values of earlier batches)."""
        empty = pl.DataFrame(schema=dict(schema))
        with self._lock:
            seen = self._seen.get(table)
            hits = self._hits.get(table, empty)
        new = distinct if seen is None else distinct.join(seen, on=on, how="anti")
        if not new.height:
            return hits
        found = classify(new).select(list(schema)).cast(pl.Schema(schema))
        with self._lock:
            seen = self._seen.get(table)
            kept = self._hits.get(table, empty)
            if seen is not None and seen.height + new.height > self.max_rows:
                seen, kept = None, empty  # full: start over
            new = compacted(new)
            self._seen[table] = new if seen is None else pl.concat([seen, new], rechunk=False)
            self._hits[table] = (
                pl.concat([kept, found.join(kept, on=on, how="anti")]).rechunk()
                if kept.height
                else found
            )
        # found holds only values the snapshot had not seen
        return pl.concat([hits, found])

    def tables(self) -> list[str]:
        """The tables holding classified values."""
        return sorted(self._seen)

    def __getstate__(self) -> dict[str, Any]:
        return {"max_rows": self.max_rows}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["max_rows"])  # type: ignore[misc]


class RecordScorer(Protocol):
    """The one-listing twin of a fitted text filter (:mod:`filters.text.record`)."""

    def score(self, record: Mapping[str, Any]) -> dict[str, Any]: ...


class TextLexicon(Filter):
    """The text filter's parameters and fitted lexicon (:meth:`fit`)."""

    def __init__(
        self,
        *,
        max_edits_medium: int = 1,
        max_edits_long: int = 2,
        min_fuzzy_len: int = 4,
        use_description: bool = True,
        max_description_chars: int = DESCRIPTION_CHARS,
        ambiguous_zipf: float = AMBIGUOUS_ZIPF,
    ) -> None:
        self.max_edits_medium = max_edits_medium
        self.max_edits_long = max_edits_long
        self.min_fuzzy_len = min_fuzzy_len
        self.use_description = use_description
        self.max_description_chars = max_description_chars
        self.ambiguous_zipf = ambiguous_zipf

    def edit_budget(self, key_len: int) -> int:
        """Edits a typo of a brand key of ``key_len`` letters may hold: none up to 4 letters,
        :attr:`max_edits_medium` up to 7, :attr:`max_edits_long` from 8."""
        return 0 if key_len <= 4 else self.max_edits_medium if key_len <= 7 else self.max_edits_long

    def fit(self, registry: Registry) -> Self:
        lex = registry.lexicon
        # the word list judges names of its languages; names in other scripts the [ordinary]
        # list names are ambiguous too ("Омега", "코치": the list has no Korean, and a
        # transliterated name is a rare word of a language even where it is an ordinary one)
        ordinary_keys = {
            k for k in (brand_key(script_folded(w)) for w in lex.ordinary) if not k.isascii()
        }
        rows: list[tuple[str, str, str, str | None, bool]] = []
        aliases_of: dict[str, set[str]] = {}
        for brand, aliases in registry.brands.select("brand", "aliases").iter_rows():
            aliases_of.setdefault(brand, set()).update(aliases)
        # names in other scripts (names.csv) are more aliases
        for brand, name in registry.names.select("brand", "name").iter_rows():
            aliases_of.setdefault(brand, set()).add(name)
        # names made only of common words ("Shell", "Guess", "The North Face", "Омега"), by the
        # word list
        surfaces = [*registry.brand_names, *(a for al in aliases_of.values() for a in al)]
        ambiguous = ambiguous_surfaces(surfaces, lex.words, self.ambiguous_zipf)
        native_ordinary = {native_form(w) for w in lex.ordinary if is_cjk(w)}
        word_surfaces: list[tuple[str, str]] = []
        native_surfaces: list[str] = []
        for brand in registry.brand_names:
            aliases = sorted(aliases_of.get(brand, ()))
            for surface, kind in [(brand, "exact"), *((a, "alias") for a in aliases)]:
                if is_cjk(surface):
                    # found as a substring of the title's native text, as folded there
                    form = native_form(surface)
                    native_surfaces.append(surface)
                    rows.append((form, brand, "native", None, form in native_ordinary))
                    continue
                # Arabic letter variants folded as in titles
                key = brand_key(script_folded(surface))
                if not key:
                    continue
                # word lengths as the listing tokeniser splits them ("Tod's" -> 3,1)
                words = tuple(len(brand_key(w)) for w in re.split(r"[\W_]+", surface))
                sig = ",".join(str(n) for n in words if n)
                rows.append((key, brand, kind, sig, surface in ambiguous or key in ordinary_keys))
                word_surfaces.append((surface, key))
        keys = pl.DataFrame(
            rows, schema=["key", "brand", "kind", "sig", "ambiguous"], orient="row"
        ).unique(subset=["key", "kind"], keep="first", maintain_order=True)
        latin = keys.filter(pl.col("kind") != "native")
        # one key -> one brand: a key claimed by two brands is dropped (it identifies neither)
        dup = (
            latin.group_by("key").agg(pl.col("brand").n_unique().alias("n")).filter(pl.col("n") > 1)
        )
        latin = latin.join(dup, on="key", how="anti").unique(
            subset=["key"], keep="first", maintain_order=True
        )
        self.keys_ = latin.select("key", "brand", "kind", "sig", "ambiguous")
        self.key_info_ = {
            k: (b, kind, amb, ksig) for k, b, kind, ksig, amb in self.keys_.iter_rows()
        }
        self.key_lengths_ = sorted({len(k) for k in self.key_info_})
        # a form (letters and digits) with a leetspeak reading: letters and leetspeak digits only
        leet_digits = "".join(sorted(c for c in LEET if c.isdigit()))
        self.leet_form_ = rf"^[\p{{L}}{leet_digits}]+$"
        # keys (4+ letters) by (length, position, letter): a masked surface's candidates are
        # the intersection over its shown letters
        mask_index: dict[tuple[int, int, str], set[str]] = {}
        for k in self.key_info_:
            if len(k) >= 4:
                for i, c in enumerate(k):
                    mask_index.setdefault((len(k), i, c), set()).add(k)
        self.mask_index_ = {at: frozenset(ks) for at, ks in mask_index.items()}
        # first character and length of a masked name: a key's, or a mask character
        self.mask_heads_ = sorted(
            f"{c}{len(k)}" for k in self.key_info_ if len(k) >= 4 for c in {k[0], *MASK_CHARS}
        )
        self.memo_ = MatchMemo()
        self.results_ = RowMemo()
        self.native_ = keys.filter(pl.col("kind") == "native").select(
            pl.col("key").alias("native"), "brand", "ambiguous"
        )
        # ambiguous names too: their misspellings count when corroborated; only Latin keys have
        # near misses: a name in another script is matched as written
        self.fuzzy_keys_ = [
            k for k in latin["key"].to_list() if self.edit_budget(len(k)) > 0 and k.isascii()
        ]
        # first letter and length a near miss can have: a key's, within its edit budget
        self.multi_fuzzy_keys_ = [
            k for k in self.fuzzy_keys_ if "," in (self.key_info_[k][3] or "")
        ]

        def near(keys: list[str]) -> list[str]:
            heads = set()
            for k in keys:
                budget = self.edit_budget(len(k))
                for size in range(len(k) - budget, len(k) + budget + 1):
                    if size >= self.min_fuzzy_len:
                        heads.add(f"{k[0]}{size}")
            return sorted(heads)

        # a one-token near miss may differ in its first letter: any length within a budget
        self.typo_lengths_ = sorted({int(h[1:]) for h in near(self.fuzzy_keys_)})
        self.multi_typo_heads_ = near(self.multi_fuzzy_keys_)
        # look-alike readings (UTS #39 skeletons) of the keys, in lower and upper case: Greek
        # capital eta looks like H, its small letter like n
        self.look_lower_: dict[str, str] = {}
        self.look_upper_: dict[str, str] = {}
        for k in self.key_info_:
            self.look_lower_.setdefault(skeleton(k).lower(), k)
            self.look_upper_.setdefault(skeleton(k.upper()), k)
        # the ASCII letters UTS #39 reads as others ("m" as "rn"): an ASCII form is tried as a
        # look-alike only when replacing them gives a key's reading
        table = confusables()
        self.ascii_looks_ = {c: table[c] for c in "abcdefghijklmnopqrstuvwxyz" if c in table}
        # a look-alike letter and a typo together: each key's visual reading (see
        # normalise.visual_reading) with its key, and the ASCII letter runs UTS #39 reads as
        # one letter ("rn" as "m"), which an a-z form must hold to be read so
        self.look_typo_of_: dict[str, str] = {}
        for k in self.fuzzy_keys_:
            self.look_typo_of_.setdefault(visual_reading(k), k)
        self.look_typo_keys_ = sorted(self.look_typo_of_)
        self.look_runs_ = sorted(
            {v for v in self.ascii_looks_.values() if len(v) > 1 and v.isascii() and v.isalpha()}
        )
        self.typo_lengths_set_ = frozenset(self.typo_lengths_)
        # names that digits glued to either end still spell ("burberry5"): five letters or more
        self.glue_keys_ = sorted(
            k for k in self.key_info_ if re.fullmatch(rf"[a-z]{{{MIN_GLUE_KEY},}}", k)
        )
        self.glue_keys_set_ = frozenset(self.glue_keys_)
        self.brand_categories_ = registry.brands.select(
            "brand", pl.col("category").alias("__tcat")
        ).unique()
        self.brand_category_pairs_ = self.brand_categories_.select(
            pl.concat_str(["brand", "__tcat"], separator="\x00")
        ).to_series()
        # listings' categories as marketplaces name them ("Sneakers", "Women > Jewellery")
        self.taxonomy_ = registry.taxonomy
        self.brand_by_key_ = pl.DataFrame(
            {
                "__dkey": [brand_key(b) for b in registry.brand_names],
                "__declared": registry.brand_names,
            }
        )
        # the word list is folded as titles are (accents stripped, lower case), and sorted
        self.common_ = lex.words.get_column("word").alias("common")
        # plurals are plain mentions ("Timberlands", "Ray Bans", "Uggs", "AF1s"), found by exact
        # lookup only: read through leetspeak "iPhone 5" would be "iphones", and a plural lends
        # no edit budget ("nikee" is no near miss of "nikes"); never a word of its own
        # ("benefits") nor another key
        # a name in another script as running text inflects it ("Ролекса", "ורולקס"): neither
        # a plural nor an inflected form may be a common word
        inflected = {
            name: inflected_keys(name, words_sig)
            for name, _, _, words_sig, _ in self.keys_.iter_rows()
        }
        grown_forms = {p for p in map(plural_key, self.key_info_) if p is not None}
        grown_forms |= {form for forms in inflected.values() for form, _ in forms}
        common = set(self.common_.filter(self.common_.is_in(sorted(grown_forms))).to_list())
        plural_rows = []
        self.plural_base_: dict[str, str] = {}
        for name, owner, how, words_sig, amb in self.keys_.iter_rows():
            plural = plural_key(name)
            if plural is not None and plural not in common and plural not in self.key_info_:
                *head, last = (words_sig or str(len(name))).split(",")
                grown = str(int(last) + len(plural) - len(name))
                plural_rows.append((plural, owner, how, ",".join([*head, grown]), amb))
                self.plural_base_[plural] = name
            for form, form_sig in inflected[name]:
                if form not in common and form not in self.key_info_:
                    plural_rows.append((form, owner, how, form_sig, amb))
                    self.plural_base_.setdefault(form, name)
        self.exact_keys_ = pl.concat(
            [self.keys_, pl.DataFrame(plural_rows, schema=self.keys_.schema, orient="row")]
        ).unique(subset=["key"], keep="first", maintain_order=True)
        self.strong_ = _phrase_forms(lex.phrases("counterfeit", "strong"))
        self.weak_ = [
            p
            for p in _phrase_forms(lex.phrases("counterfeit", "weak"))
            if p not in set(self.strong_)
        ]
        # folded phrase (as words) -> the lexicon's spelling, the first phrase to fold to it
        self.phrases_as_written_: dict[str, str] = {}
        written = [*lex.phrases("counterfeit", "strong"), *lex.phrases("counterfeit", "weak")]
        for phrase, form in zip(written, _phrase_form_each(written), strict=True):
            if form:
                self.phrases_as_written_.setdefault(" ".join(form.split()), phrase.lower())
        self.exceptions_ = _phrase_forms(lex.phrases("legitimate", "phrase_exceptions"))
        secondhand = _phrase_forms(lex.phrases("legitimate", "secondhand"))
        refurbished = _phrase_forms(lex.phrases("legitimate", "refurbished"))
        self.legit_ = list(
            dict.fromkeys(
                [*secondhand, *refurbished, *_phrase_forms(lex.phrases("legitimate", "authorised"))]
            )
        )
        prefixes = _phrase_forms(lex.phrases("legitimate", "accessory_prefix"))
        self.accessory_prefixes_ = sorted({" ".join(p.split()) for p in prefixes})
        ordinary_pairs = [(p, word) for word, phrases in lex.ordinary.items() for p in phrases]
        ordinary_forms = _phrase_form_each([p for p, _ in ordinary_pairs])
        # per word, its phrases' distinct forms, in order
        # (a word that inflects is keyed by the form the phrase holds: "ящик пандоры" is an
        # ordinary use of the mention "пандоры")
        ordinary_rows = list(
            dict.fromkeys(
                (form, self._ordinary_key(word, form))
                for (_, word), form in zip(ordinary_pairs, ordinary_forms, strict=True)
                if form
            )
        )
        self.ordinary_ = pl.DataFrame(
            ordinary_rows, schema=["__ophrase", "__okey"], orient="row"
        ).unique(subset=["__ophrase"], keep="first", maintain_order=True)
        # a phrase shows in the single-spaced phrase text as its words with single spaces
        # (listing text doubles its spaces to find adjacent phrases)
        self.counterfeit_probe_ = _single_spaced([*self.strong_, *self.weak_])
        self.legit_probe_ = _single_spaced(self.legit_)
        # "Apple Watch band compatible 44mm": a compatibility word and an accessory noun
        self.compatible_ = _phrase_forms(lex.phrases("legitimate", "compatible"))
        self.accessory_nouns_ = _phrase_forms(lex.phrases("legitimate", "accessory"))
        self.compatible_probe_ = _single_spaced(self.compatible_)
        # "for parts", "box only", "vial": not the product itself, whatever the brand's price
        self.not_the_product_ = _phrase_forms(lex.phrases("legitimate", "not_the_product"))
        # "Galaxy S23 screen protector": made for the phone by what it is
        self.fitted_ = _phrase_forms(lex.phrases("legitimate", "fitted"))
        self.title_accessory_probe_ = _single_spaced(
            [*self.compatible_, *self.not_the_product_, *self.fitted_]
        )
        # "Apple 20W USB-C charger": a brand's own small good, priced as a share of its goods
        shares: dict[str, tuple[float, str]] = {}
        written_items = list(lex.small_goods_shares().items())
        item_forms = _phrase_form_each([p for p, _ in written_items])
        for (phrase, share), form in zip(written_items, item_forms, strict=True):
            if form and share > shares.get(form, (0.0, ""))[0]:
                shares[form] = (share, phrase.lower())
        self.small_goods_ = pl.DataFrame(
            [(f, p, s) for f, (s, p) in shares.items()],
            schema={"__ifrom": pl.String, "text_item": pl.String, "text_item_share": pl.Float64},
            orient="row",
        )
        self.item_probe_ = _single_spaced(list(shares))
        self.item_guard_ = _phrase_forms(
            lex.phrases("products", "main") + lex.phrases("products", "bundle")
        )
        self.secondhand_ = secondhand
        self.refurbished_ = refurbished
        # "Apple Watch band 44mm": the head noun (the last product or accessory noun before a
        # bundle word) is an accessory; a noun that names a main product or a brand's own small
        # good too is not one ("bracelet", "charger", "glasses case")
        products = _phrase_forms(lex.phrases("products", "main"))
        own = set(self.small_goods_.get_column("__ifrom").to_list())
        self.product_nouns_ = products
        self.head_nouns_ = [
            f for f in self.accessory_nouns_ if f not in set(products) and f not in own
        ]
        # the nouns a title's head is read from, longest first, so that a brand's own small
        # good is read whole ("glasses case", "power adapter"), never as its last word's
        # accessory noun ("case", "adapter")
        self.head_patterns_ = sorted(
            dict.fromkeys([*own, *products, *self.head_nouns_]), key=len, reverse=True
        )
        bundle = _phrase_forms(lex.phrases("products", "bundle"))
        self.bundle_cut_ = (
            "(?:" + "|".join(re.escape(b) for b in bundle) + ").*$" if bundle else None
        )
        self.title_accessory_probe_ = sorted(
            {*self.title_accessory_probe_, *_single_spaced(self.head_nouns_)}
        )
        # one pass over every title finds those that may hold a phrase of any group
        self.phrase_probe_ = sorted(
            {
                *self.counterfeit_probe_,
                *self.legit_probe_,
                *self.title_accessory_probe_,
                *self.item_probe_,
            }
        )
        self.native_probe_ = sorted(set(self.native_["native"].to_list()))
        self.native_surfaces_ = native_surfaces
        self._fit_description(lex, word_surfaces)
        # words holding a native brand name that are other words ("ブルガリア", Bulgaria; "삼성동",
        # a district of Seoul): taken out of the native text before the search
        exceptions = [*lex.ordinary.items(), *lex.native_exceptions.items()]
        self.native_exceptions_ = sorted(
            {native_form(p) for word, ps in exceptions if is_cjk(word) for p in ps} - {""}
        )
        self._record_scorer: RecordScorer | None = None
        return self

    def _fit_description(self, lex: Any, word_surfaces: list[tuple[str, str]]) -> None:
        """Names as a description's phrase text writes them (``desc_names_``: ``__dpat``, the
        name's words with the listing text's doubled spaces, ``brand``, ``form`` (its key),
        ``ambiguous``), and the comparison contexts as regular expressions."""
        info = {k: (b, amb, sig) for k, b, _, sig, amb in self.exact_keys_.iter_rows()}

        def split(key: str, sig: str | None) -> str:
            lengths = [int(x) for x in (sig or str(len(key))).split(",") if x]
            out, at = [], 0
            for n in lengths:
                out.append(key[at : at + n])
                at += n
            return " ".join(w for w in out if w)

        # a name's words: as the phrase text writes its surface ("levi's", "dolce & gabbana"),
        # its key's words ("levi s") and the key as one word ("levis")
        surfaces = [sf for sf, _ in word_surfaces]
        as_text = _phrase_form_each(surfaces)
        rows: dict[str, set[str]] = {}
        for (_, key), form in zip(word_surfaces, as_text, strict=True):
            if key in info and form:
                rows.setdefault(" ".join(form.split()), set()).add(key)
        for key, (_, _, sig) in info.items():
            for words in (split(key, sig), key):
                rows.setdefault(words, set()).add(key)
        table = []
        for words, keys in rows.items():
            brands = {info[k][0] for k in keys}
            if len(brands) != 1 or not words:
                continue  # a name two brands share identifies neither
            key = min(keys)
            table.append((" " + "  ".join(words.split()) + " ", brands.pop(), key, info[key][1]))
        self.desc_names_ = pl.DataFrame(
            table,
            schema={
                "__dpat": pl.String,
                "brand": pl.String,
                "form": pl.String,
                "ambiguous": pl.Boolean,
            },
            orient="row",
        ).sort("__dpat")
        self.desc_name_probe_ = _single_spaced(self.desc_names_["__dpat"].to_list())
        before = [
            *_phrase_forms(lex.phrases("legitimate", "comparison_before")),
            *_phrase_forms(lex.phrases("legitimate", "accessory_prefix")),
        ]
        after = _phrase_forms(lex.phrases("legitimate", "comparison_after"))
        # on the words before a name (single-spaced, no padding) and after it
        words_before = "|".join(sorted({re.escape(" ".join(p.split())) for p in before}))
        fillers = "|".join(COMPARISON_FILLERS)
        self.compared_before_ = f"(?:^| )(?:{words_before})(?: (?:{fillers}))?$" if before else ""
        words_after = "|".join(sorted({re.escape(" ".join(p.split())) for p in after}))
        # (up to two words between: "Neverfull MM compatible")
        self.compared_after_ = (
            f"^(?:[^ ]+ ){{0,2}}(?:(?:{fillers}) )?(?:{words_after})(?: |$)" if after else ""
        )
        # a description saying the item is compatible with others compares with every name it
        # holds ("Apple, Samsung and Google phones: compatible charger"); not "fits", which
        # descriptions say of the item itself ("strap fits most wrists")
        self.compared_anywhere_ = list(self.compatible_)
        # what a description must hold to be read at all: a word of every phrase searched in
        # it and of every name (the longest word; lower case, Arabic letters folded), found
        # in the raw text by one regular expression (most descriptions hold none)
        phrases = [
            *lex.phrases("counterfeit", "strong"),
            *lex.phrases("counterfeit", "weak"),
            *lex.phrases("legitimate", "secondhand"),
            *lex.phrases("legitimate", "refurbished"),
            *lex.phrases("legitimate", "authorised"),
            # (an ordinary phrase holding its brand word is found by the word: "delivery vans")
            *(
                p
                for w, ps in lex.ordinary.items()
                for p in ps
                if brand_key(script_folded(w)) not in brand_key(fold(p))
            ),
            *(sf for sf, _ in word_surfaces),
            *rows,
            *self.native_surfaces_,
        ]
        probe = {probe_folded(probe_word(p)) for p in phrases}
        probe |= {probe_folded(probe_word(fold(p))) for p in phrases}
        self.desc_probe_ = sorted(w for w in probe if w)
        # words with an ASCII letter at an end need its word boundary: one regex; the others
        # (other scripts) are substrings: one Aho-Corasick search (a regex holding them both
        # was 300 times slower)
        self.desc_probe_regex_ = probe_pattern([w for w in self.desc_probe_ if w.isascii()])
        self.desc_probe_other_ = [w for w in self.desc_probe_ if not w.isascii()]

    def _ordinary_key(self, word: str, phrase_form: str) -> str:
        """The key an ordinary phrase (in phrase form) is about: the brand word's key, or the
        inflected form of it that the phrase holds."""
        key = brand_key(script_folded(word))
        info = self.key_info_.get(key)
        words = set(phrase_form.split())
        for form, _ in inflected_keys(key, None if info is None else info[3]):
            if form in words:
                return form
        return key

    def _common_words(self) -> frozenset[str]:
        """:attr:`common_` as a set, made on first use (not pickled: it is rebuilt)."""
        words: frozenset[str] | None = self.__dict__.get("_common_set")
        if words is None:
            words = self.__dict__["_common_set"] = frozenset(self.common_.to_list())
        return words

    def __getstate__(self) -> dict[str, Any]:
        state = cast(dict[str, Any], super().__getstate__())
        return {k: v for k, v in state.items() if k != "_common_set"}
