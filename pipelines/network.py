"""Seller networks: the operation behind many shops.

One operation selling under twenty shop names leaves traces that honest shops do not share:
the same photos (re-saved, cropped, watermarked), the same description template with a few
words changed, the same phone number or messenger handle, the same payment account. This module
finds those traces, links the sellers who share them and groups linked sellers into rings.

Evidence, per listing, as ``(kind, key)``:

- ``photo``: near-duplicate listing photos (pHash within ``photo_max_phash`` bits and pHash +
  dHash within ``photo_max_distance``), found by the exact multi-index Hamming search of
  :func:`filters.image.hamming_pairs` and grouped into clusters of the same photo; with
  ``photo_mirrors`` also mirror copies, whose hashes are derived from the stored ones
  (:func:`filters.image.mirror_distances`), so no photo is decoded twice;
- ``known_fake``: the same known-fake photo of the registry (matched like the image filter does);
- ``title`` / ``description``: near-identical text after normalisation (lower case, NFKC, no
  digits, punctuation, contacts, brand names or their product names), as clusters of MinHash
  signatures that agree on at least ``text_min_similarity``, over the word unigrams and bigrams
  that at most ``max_shared_by`` sellers write (common phrases are no evidence); a text with
  ``long_text_shingles`` such rare shingles or more is a fingerprint and weighs
  ``long_text_weight``;
- ``contact``: a phone number, messenger handle, e-mail or URL (see :mod:`pipelines.contacts`);
- ``account``: a value of an optional account column (payment, shipping...), normalised.

What does not link: a photo that matches one of the brand's official photos (authorised
resellers share them), the brand's own names (removed from the text), short texts (fewer than
``min_shingles`` rare shingles), and any key shared by more than ``max_shared_by`` sellers (a
template phrase, a stock photo, the marketplace's own URL). The rest is weighted by rarity, as the
evidence a coincidence would leave: among ``N`` sellers a key shared by ``n`` weighs
``weight[kind] * log(N / max(n, r)) / log(N / r)`` with ``r = rare_up_to`` (full weight for a
handful of sellers, less the more share it: a photo shared by 2 sellers says more than one
shared by 2,000). Each kind's sum is capped at its weight times ``keys_per_kind`` (1 unless
given): many weak traces of one kind do not add up. Photos corroborate and never link alone,
however many two shops share: independent dropshippers of one supplier sell its catalogue with
its product photos, as an operation's shops share theirs. (``keys_per_kind={"photo": 2}``
lets two shared photos link; ``photo_alone_up_to`` lets one photo that at most that many
sellers share link alone; both put such dropshippers in rings.) Two sellers are
linked when their shared keys weigh at least ``link_threshold``; rings are the connected
components of those links
(:func:`scipy.sparse.csgraph.connected_components`).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from pipelines.contacts import contact_keys, nfkc
from pipelines.errors import FakestopError, SchemaError

if TYPE_CHECKING:
    from pipelines.registry import Registry

#: evidence kinds, in the order they are reported
KINDS: tuple[str, ...] = ("photo", "known_fake", "title", "description", "contact", "account")
#: what one key of each kind shared by exactly two sellers weighs; a link needs 1.0 in all.
#: A contact or account is an identity: one is enough (unless very many sellers share it). A
#: near-duplicate photo or description template needs a second piece of another kind (the
#: template, a contact): resellers copy a manufacturer's photo or text too. A known fake
#: circulates among unrelated counterfeiters, and titles are short: they corroborate.
DEFAULT_WEIGHTS: Mapping[str, float] = {
    "photo": 0.6,
    "known_fake": 0.4,
    "title": 0.4,
    "description": 0.6,
    "contact": 1.25,
    "account": 1.25,
}
#: columns read as account evidence when present (also any column ending in ``_account``)
ACCOUNT_COLUMNS: tuple[str, ...] = ("payment_account", "shipping_account", "paypal", "iban")

#: one row per piece of evidence a listing carries; ``base`` overrides the kind's weight
EVIDENCE_SCHEMA: dict[str, pl.DataType] = {
    "row": pl.UInt32(),
    "kind": pl.String(),
    "key": pl.String(),
    "shown": pl.String(),
    "base": pl.Float64(),
}
RINGS_SCHEMA: dict[str, pl.DataType] = {
    "ring_id": pl.Int64(),
    "sellers": pl.List(pl.String()),
    "listings": pl.Int64(),
    "evidence": pl.Struct({k: pl.Int64() for k in KINDS}),
    "top_brands": pl.List(pl.String()),
    "risk": pl.Float64(),
}
LINKS_SCHEMA: dict[str, pl.DataType] = {
    "seller_a": pl.String(),
    "seller_b": pl.String(),
    "ring_id": pl.Int64(),
    "strength": pl.Float64(),
    "strong": pl.Boolean(),
    "evidence_counts": pl.Struct({k: pl.Int64() for k in KINDS}),
    "evidence": pl.List(pl.String()),
}


@dataclass(frozen=True)
class NetworkSettings:
    """How evidence is found and weighed (see the module docstring)."""

    photo_max_phash: int = 12
    photo_max_distance: int = 26
    photo_mirrors: bool = True
    photo_alone_up_to: int = 0
    text_min_similarity: float = 0.7
    min_shingles: int = 6
    max_shared_by: int = 60
    link_threshold: float = 1.0
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    account_columns: tuple[str, ...] = ACCOUNT_COLUMNS
    long_text_shingles: int = 12
    long_text_weight: float = 1.25
    rare_up_to: int = 4
    keys_per_kind: Mapping[str, float] = field(default_factory=dict)
    minhash_perms: int = 32
    minhash_band: int = 4
    workers: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown evidence kinds {sorted(unknown)}; expected {KINDS}")
        if self.minhash_perms % self.minhash_band:
            raise ValueError("minhash_perms must be a multiple of minhash_band")
        if self.max_shared_by < 2:
            raise ValueError("max_shared_by must be >= 2")


class NetworkResult(NamedTuple):
    """``rings`` and ``links`` (the two output tables), ``evidence`` (one row per seller and key
    that could link: ``seller_id``, ``kind``, ``key``, ``shown``, ``shared_by``, ``weight``)
    and counts for the summary."""

    rings: pl.DataFrame
    links: pl.DataFrame
    evidence: pl.DataFrame
    stats: dict[str, Any]

    def summary(self, limit: int = 10) -> str:
        return summary_text(self, limit)


# ---------------------------------------------------------------- evidence: photos


def _hash_column(frame: pl.DataFrame, name: str) -> pl.Series:
    """A hash column as UInt64: integers as they are, hex strings (imagehash's form) parsed."""
    col = frame.get_column(name)
    if col.dtype == pl.String:
        bad = col.is_not_null() & ~col.str.contains(r"^[0-9a-fA-F]{1,16}$")
        if bad.any():
            row = int(bad.arg_true()[0])
            raise SchemaError(
                f"column {name!r}, row {row + 1}: {col[row]!r} is not a 64-bit hex hash"
            )
        return col.str.to_integer(base=16, dtype=pl.UInt64).alias(name)
    if col.dtype.is_integer():
        return col.cast(pl.UInt64).alias(name)
    if col.dtype == pl.Null:
        return col.cast(pl.UInt64)
    raise SchemaError(f"column {name!r} holds {col.dtype}; expected 64-bit hashes (UInt64 or hex)")


def listing_hashes(
    frame: pl.DataFrame, *, images_root: str | Path | None, workers: int = 2
) -> pl.DataFrame:
    """``row``, ``phash``, ``dhash`` of every listing with a usable photo.

    Hashes already in the input (``phash`` and ``dhash`` columns, as a scoring run or a photo
    pipeline stored them) are used as they are; otherwise the ``image`` column is hashed once
    per distinct path, like the image filter does.
    """
    if "phash" in frame.columns and "dhash" in frame.columns:
        out = frame.select(
            "row", _hash_column(frame, "phash"), _hash_column(frame, "dhash")
        ).drop_nulls()
        return out
    if "image" not in frame.columns or frame.schema["image"] not in (pl.String, pl.Binary):
        return pl.DataFrame(schema={"row": pl.UInt32, "phash": pl.UInt64, "dhash": pl.UInt64})
    from filters.image import hash_sources

    images = frame.select("row", "image").filter(
        pl.col("image").is_not_null() & (pl.col("image").cast(pl.String).str.strip_chars() != "")
        if frame.schema["image"] == pl.String
        else pl.col("image").is_not_null()
    )
    distinct = images.get_column("image").unique(maintain_order=True)
    hashed = hash_sources(
        distinct.to_list(), root=None if images_root is None else str(images_root), workers=workers
    )
    table = hashed.with_columns(distinct.alias("image")).drop_nulls("phash")
    return images.join(table.select("image", "phash", "dhash"), on="image").select(
        "row", "phash", "dhash"
    )


def _references(registry: Registry, workers: int) -> pl.DataFrame:
    """The registry's official photos and known fakes in every variant, with ``kind``."""
    from filters.image import CACHE_FILE, load_image_cache, reference_hashes

    cache = load_image_cache(registry.root / CACHE_FILE)
    parts = []
    for kind, table in (
        ("official", registry.official_images),
        ("known_fake", registry.known_fakes),
    ):
        if table.height:
            refs = reference_hashes(table, workers=workers, cache=cache)
            parts.append(
                refs.select("ref", "brand", "phash", "dhash").with_columns(kind=pl.lit(kind))
            )
    if not parts:
        return pl.DataFrame(
            schema={
                "ref": pl.String,
                "brand": pl.String,
                "phash": pl.UInt64,
                "dhash": pl.UInt64,
                "kind": pl.String,
            }
        )
    return pl.concat(parts)


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected component label of each of ``n`` nodes given edges ``a[i] - b[i]``."""
    graph = coo_matrix((np.ones(a.size, np.int8), (a, b)), shape=(n, n)).tocsr()
    return connected_components(graph, directed=False)[1]


def photo_evidence(
    hashes: pl.DataFrame, references: pl.DataFrame, settings: NetworkSettings
) -> pl.DataFrame:
    """``row``, ``kind``, ``key``, ``shown`` for listing photos: known fakes by reference,
    other photos by cluster of near-duplicates; photos matching an official photo give none."""
    from filters.image import best_matches, hamming_pairs, mirror_distances, mirrored_phash

    empty = pl.DataFrame(schema=EVIDENCE_SCHEMA)
    if hashes.height == 0:
        return empty
    distinct = hashes.select("phash", "dhash").unique(maintain_order=True).with_row_index("photo")
    qp = distinct.get_column("phash").to_numpy()
    qd = distinct.get_column("dhash").to_numpy()
    kind = np.full(qp.size, "", object)
    ref_of = np.full(qp.size, -1, np.int64)
    if references.height:
        # the nearest reference explains the photo: an official one means no evidence
        bm = best_matches(
            qp,
            qd,
            references.get_column("phash").to_numpy(),
            references.get_column("dhash").to_numpy(),
            workers=settings.workers,
        )
        ref_kinds = references.get_column("kind").to_numpy()
        found = bm.ref >= 0
        kind[found] = ref_kinds[bm.ref[found]]
        ref_of[found] = bm.ref[found]
    free = np.flatnonzero(kind == "")
    fp, fd = qp[free], qd[free]
    qi, ri, dp = hamming_pairs(fp, fp, radius=settings.photo_max_phash, workers=settings.workers)
    keep = qi < ri
    qi, ri, dp = qi[keep], ri[keep], dp[keep]
    dd = np.bitwise_count(fd[qi] ^ fd[ri])
    close = dp.astype(np.int64) + dd <= settings.photo_max_distance
    edges_a, edges_b = [qi[close]], [ri[close]]
    if settings.photo_mirrors:
        # mirror copies: the mirror image's hashes derived from each photo's own
        mi, mj, _ = hamming_pairs(
            mirrored_phash(fp), fp, radius=settings.photo_max_phash, workers=settings.workers
        )
        keep = mi < mj
        mi, mj = mi[keep], mj[keep]
        mdp, mdd = mirror_distances(fp[mi], fd[mi], fp[mj], fd[mj])
        close = mdp + mdd <= settings.photo_max_distance
        edges_a.append(mi[close])
        edges_b.append(mj[close])
    labels = _components(free.size, np.concatenate(edges_a), np.concatenate(edges_b))
    photo_rows = distinct.with_columns(
        pl.Series("cluster", np.full(qp.size, -1, np.int64)).scatter(free, labels),
        pl.Series("ref_kind", kind.astype(str)),
        pl.Series("ref", ref_of),
    )
    listed = hashes.join(photo_rows, on=["phash", "dhash"])
    ref_names = pl.DataFrame(
        {"ref": np.arange(references.height), "name": references.get_column("ref")}
    )
    fakes = (
        listed.filter(pl.col("ref_kind") == "known_fake")
        .join(ref_names, on="ref")
        .select(
            "row",
            pl.lit("known_fake").alias("kind"),
            pl.col("name").alias("key"),
            pl.format("known fake photo {}", pl.col("name")).alias("shown"),
        )
    )
    # a cluster is named after its first listing
    clusters = listed.filter(pl.col("ref_kind") == "").with_columns(
        pl.col("row").min().over("cluster").alias("first")
    )
    photos = clusters.select(
        "row",
        pl.lit("photo").alias("kind"),
        pl.format("photo{}", pl.col("cluster")).alias("key"),
        pl.format("photo of listing row {}", pl.col("first") + 1).alias("shown"),
    )
    return pl.concat([fakes, photos]).with_columns(pl.lit(None, pl.Float64).alias("base"))


# ---------------------------------------------------------------- evidence: text

_MASK64 = (1 << 64) - 1


def _brand_tokens(registry: Registry | None) -> list[str]:
    """The words of every brand name and alias (product names included), lower case."""
    if registry is None:
        return []
    names = registry.brands.select(
        pl.concat_list(pl.col("brand"), pl.col("aliases")).alias("name")
    ).explode("name")
    words = (
        names.select(
            pl.col("name")
            .str.normalize("NFKC")
            .str.to_lowercase()
            .str.replace_all(r"[^\p{L}\s]+", " ")
            .str.split(" ")
        )
        .explode("name")
        .get_column("name")
    )
    return sorted({w for w in words.drop_nulls().to_list() if len(w) > 1})


def normalised_tokens(texts: pl.Series, drop: Sequence[str]) -> pl.DataFrame:
    """The words of each text, one row per (``doc``, ``token``) in order: NFKC, lower case,
    everything but letters removed (digits, punctuation, emoji; contacts fall apart into
    words), ``drop`` words (brand and product names) left out. ``doc`` indexes ``texts``.

    Examples
    --------
    >>> normalised_tokens(pl.Series(["GUCCI bag, 100% new!!"]), ["gucci"]).rows()
    [(0, 'bag'), (0, 'new')]
    """
    words = (
        nfkc(texts)
        .str.to_lowercase()
        .str.replace_all(r"[^\p{L}]+", " ")
        .str.strip_chars()
        .str.split(" ")
    )
    drop_list = pl.Series(list(drop), dtype=pl.String).implode()
    return (
        pl.DataFrame({"token": words})
        .with_row_index("doc")
        .explode("token")
        .filter((pl.col("token") != "") & ~pl.col("token").is_in(drop_list))
    )


def minhash_signatures(
    doc: np.ndarray, shingle: np.ndarray, n_docs: int, perms: int, seed: int
) -> np.ndarray:
    """MinHash of each document's set of 64-bit shingle hashes: ``(n_docs, perms)`` uint32,
    one multiply-shift permutation per column. ``doc`` must be sorted; documents without
    shingles get all-ones rows. The signature of a union is the elementwise minimum of the
    parts' signatures."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2**63, perms, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 2**63, perms, dtype=np.uint64)
    sig = np.full((n_docs, perms), np.iinfo(np.uint32).max, np.uint32)
    if doc.size == 0:
        return sig
    starts = np.flatnonzero(np.r_[True, doc[1:] != doc[:-1]])
    owners = doc[starts]
    h = np.empty(shingle.size, np.uint64)
    for j in range(perms):
        np.multiply(shingle, a[j], out=h)
        np.add(h, b[j], out=h)
        np.right_shift(h, np.uint64(32), out=h)
        sig[owners, j] = np.minimum.reduceat(h, starts).astype(np.uint32)
    return sig


#: (doc, shingle hash) arrays, doc-sorted
Shingles = tuple[np.ndarray, np.ndarray]


def word_shingles(doc: np.ndarray, token_hash: np.ndarray) -> list[Shingles]:
    """Word unigrams and bigrams of doc-sorted token hashes in text order: two doc-sorted
    blocks (no sort needed: each keeps the tokens' order)."""
    same = doc[1:] == doc[:-1]
    big = (token_hash[:-1] * np.uint64(0x9E3779B97F4A7C15) ^ token_hash[1:])[same]
    return [(doc, token_hash), (doc[:-1][same], big)]


#: sellers whose texts decide which shingles are common (a deterministic sample of them when
#: there are more): a phrase many sellers write shows up in any large enough sample
COMMON_SAMPLE_SELLERS = 5_000


def common_shingles(
    blocks: list[Shingles], writers: pl.DataFrame, n_docs: int, max_shared_by: int
) -> pl.Series:
    """Shingles written by more than ``max_shared_by`` sellers: phrases every shop uses
    ("fast shipping", "brand new with tags") are no evidence, whatever text they sit in.
    ``writers`` holds the distinct (``doc``, ``seller_id``) pairs. Counted exactly up to
    :data:`COMMON_SAMPLE_SELLERS` sellers, in a sample of that many (chosen by a hash of the
    seller id) above, against the threshold scaled alike."""
    sellers = writers.get_column("seller_id").n_unique()
    share = min(1.0, COMMON_SAMPLE_SELLERS / max(1, sellers))
    if share < 1.0:
        bucket = pl.col("seller_id").hash(seed=11) % 1_000_000
        writers = writers.filter(bucket < int(share * 1_000_000))
    sampled = np.zeros(n_docs, bool)
    sampled[writers.get_column("doc").to_numpy()] = True
    parts = []
    for doc, shingle in blocks:
        mask = sampled[doc]
        parts.append(pl.DataFrame({"doc": doc[mask].astype(np.uint32), "shingle": shingle[mask]}))
    pairs = pl.concat(parts).unique()
    return (
        pairs.join(writers.with_columns(pl.col("doc").cast(pl.UInt32)), on="doc")
        .select("shingle", "seller_id")
        .unique()
        .group_by("shingle")
        .len()
        .filter(pl.col("len") > max_shared_by * share)
        .get_column("shingle")
    )


def text_clusters(blocks: list[Shingles], n_docs: int, settings: NetworkSettings) -> np.ndarray:
    """A cluster label per document (-1: fewer than ``min_shingles`` shingles) from its
    shingles: documents whose MinHash signatures agree on at least ``text_min_similarity`` of
    their permutations, found through locality-sensitive band buckets (each member checked
    against its bucket's first document) and joined transitively."""
    lengths = sum(np.bincount(d, minlength=n_docs) for d, _ in blocks)
    usable = np.asarray(lengths) >= settings.min_shingles
    labels = np.full(n_docs, -1, np.int64)
    k = int(usable.sum())
    if k == 0:
        return labels
    renumber = np.cumsum(usable) - 1
    sig = np.full((k, settings.minhash_perms), np.iinfo(np.uint32).max, np.uint32)
    for doc, shingle in blocks:
        keep = usable[doc]
        part = minhash_signatures(
            renumber[doc[keep]], shingle[keep], k, settings.minhash_perms, settings.seed
        )
        np.minimum(sig, part, out=sig)
    need = math.ceil(settings.text_min_similarity * settings.minhash_perms)
    pa, pb = [], []
    r = settings.minhash_band
    wide = sig.astype(np.uint64)
    for start in range(0, settings.minhash_perms, r):
        # the band's values mixed into one 64-bit bucket key (a collision only costs a check)
        key = np.zeros(k, np.uint64)
        for j in range(start, start + r):
            key = (key ^ wide[:, j]) * np.uint64(0x9E3779B97F4A7C15)
        order = np.argsort(key, kind="stable")
        grouped = key[order]
        first = np.r_[True, grouped[1:] != grouped[:-1]]
        rep = order[np.maximum.accumulate(np.where(first, np.arange(order.size), 0))]
        member = ~first
        a, b = order[member], rep[member]
        agree = (sig[a] == sig[b]).sum(axis=1) >= need
        pa.append(a[agree])
        pb.append(b[agree])
    labels[usable] = _components(k, np.concatenate(pa), np.concatenate(pb))
    return labels


def text_evidence(
    frame: pl.DataFrame, column: str, drop: Sequence[str], settings: NetworkSettings
) -> pl.DataFrame:
    """``row``, ``kind`` (= ``column``), ``key``, ``shown`` per listing whose text has a
    near-duplicate elsewhere (the cluster is named by its first text, shortened)."""
    empty = pl.DataFrame(schema=EVIDENCE_SCHEMA)
    if column not in frame.columns or frame.schema[column] != pl.String:
        return empty
    texts = frame.select("row", "seller_id", pl.col(column).alias("text")).drop_nulls("text")
    distinct = texts.select(pl.col("text").unique()).with_row_index("doc")
    tokens = normalised_tokens(distinct.get_column("text"), drop)
    blocks = word_shingles(
        tokens.get_column("doc").to_numpy().astype(np.int64),
        tokens.get_column("token").hash(seed=17).to_numpy(),
    )
    writers = texts.join(distinct, on="text").select("doc", "seller_id").unique()
    common = common_shingles(blocks, writers, distinct.height, settings.max_shared_by)
    if common.len():
        rare = [~pl.Series(h).is_in(common.implode()).to_numpy() for _, h in blocks]
        blocks = [(d[keep], h[keep]) for (d, h), keep in zip(blocks, rare, strict=True)]
    labels = text_clusters(blocks, distinct.height, settings)
    lengths = sum(np.bincount(d, minlength=distinct.height) for d, _ in blocks)
    table = distinct.with_columns(
        pl.Series("cluster", labels), pl.Series("tokens", np.asarray(lengths), pl.Int64)
    ).filter(pl.col("cluster") >= 0)
    per_row = texts.join(table, on="text")
    shown = per_row.group_by("cluster").agg(
        pl.col("text").first().alias("example"), pl.col("tokens").median().alias("size")
    )
    return (
        per_row.join(shown, on="cluster")
        .select(
            "row",
            pl.lit(column).alias("kind"),
            pl.format("{}{}", pl.lit(column), pl.col("cluster")).alias("key"),
            pl.when(pl.col("size") >= settings.long_text_shingles)
            .then(pl.lit(settings.long_text_weight))
            .alias("base"),
            pl.format(
                '{} like "{}"',
                pl.lit(column),
                pl.when(pl.col("example").str.len_chars() > 60)
                .then(pl.col("example").str.slice(0, 57) + "...")
                .otherwise(pl.col("example")),
            ).alias("shown"),
        )
        .cast(empty.schema)
    )


# ---------------------------------------------------------------- evidence: contacts, accounts


def contact_evidence(frame: pl.DataFrame) -> pl.DataFrame:
    parts = []
    for column in ("title", "description"):
        if column in frame.columns and frame.schema[column] == pl.String:
            parts.append(contact_keys(frame, column, row="row"))
    if not parts:
        return pl.DataFrame(schema=EVIDENCE_SCHEMA)
    found = pl.concat(parts).unique(["row", "key"], maintain_order=True)
    return found.select(
        pl.col("row").cast(pl.UInt32),
        pl.lit("contact").alias("kind"),
        "key",
        pl.format("{} ({})", pl.col("key"), pl.col("shown")).alias("shown"),
    )


def account_columns(frame: pl.DataFrame, settings: NetworkSettings) -> list[str]:
    return [
        c
        for c in frame.columns
        if (c in settings.account_columns or c.endswith("_account"))
        and frame.schema[c] in (pl.String, pl.Int64, pl.Int32, pl.UInt64)
    ]


def account_evidence(frame: pl.DataFrame, settings: NetworkSettings) -> pl.DataFrame:
    parts = []
    for column in account_columns(frame, settings):
        value = (
            pl.col(column)
            .cast(pl.String)
            .str.normalize("NFKC")
            .str.to_lowercase()
            .str.replace_all(r"[\s\-_.]+", "")
        )
        parts.append(
            frame.select("row", value.alias("value"), pl.col(column).cast(pl.String).alias("raw"))
            .filter(pl.col("value").is_not_null() & (pl.col("value") != ""))
            .select(
                "row",
                pl.lit("account").alias("kind"),
                pl.format("{}:{}", pl.lit(column), pl.col("value")).alias("key"),
                pl.format("{} {}", pl.lit(column), pl.col("raw")).alias("shown"),
            )
        )
    if not parts:
        return pl.DataFrame(schema=EVIDENCE_SCHEMA)
    return pl.concat(parts)


# ---------------------------------------------------------------- links and rings


def _prepared(listings: pl.DataFrame) -> pl.DataFrame:
    if "seller_id" not in listings.columns:
        raise SchemaError("network: the listings have no seller_id column; rings need sellers")
    if "listing_id" not in listings.columns:
        raise SchemaError("network: the listings have no listing_id column")
    frame = listings.drop("row", strict=False).with_row_index("row")
    return frame.with_columns(
        pl.col("seller_id").cast(pl.String).str.strip_chars().alias("seller_id")
    ).with_columns(pl.when(pl.col("seller_id") != "").then("seller_id").alias("seller_id"))


def seller_evidence(
    frame: pl.DataFrame,
    registry: Registry | None,
    *,
    images_root: str | Path | None = None,
    settings: NetworkSettings,
) -> pl.DataFrame:
    """One row per (seller, kind, key) that could link sellers, with ``shared_by`` and
    ``weight``; keys shared by one seller or by more than ``max_shared_by`` are left out."""
    sellers = frame.filter(pl.col("seller_id").is_not_null())
    parts = []
    hashes = listing_hashes(sellers, images_root=images_root, workers=settings.workers)
    if hashes.height:
        refs = _references(registry, settings.workers) if registry is not None else None
        if refs is None:
            refs = pl.DataFrame(
                schema={
                    "ref": pl.String,
                    "brand": pl.String,
                    "phash": pl.UInt64,
                    "dhash": pl.UInt64,
                    "kind": pl.String,
                }
            )
        parts.append(photo_evidence(hashes, refs, settings))
    drop = _brand_tokens(registry)
    for column in ("title", "description"):
        parts.append(text_evidence(sellers, column, drop, settings))
    parts.append(contact_evidence(sellers))
    parts.append(account_evidence(sellers, settings))
    found = pl.concat(
        [p.with_columns(pl.col("row").cast(pl.UInt32)) for p in parts], how="diagonal_relaxed"
    )
    if "base" not in found.columns:
        found = found.with_columns(pl.lit(None, pl.Float64).alias("base"))
    weights = pl.DataFrame(
        {"kind": list(settings.weights), "kind_base": list(settings.weights.values())},
        schema={"kind": pl.String, "kind_base": pl.Float64},
    )
    per_seller = (
        found.join(sellers.select("row", "seller_id"), on="row")
        .group_by("seller_id", "kind", "key")
        .agg(pl.col("shown").first(), pl.col("base").max(), pl.len().alias("listings"))
    )
    # a handful of sellers all count as rare (and the scale never collapses to log(1))
    n_sellers = max(2 * settings.rare_up_to, sellers.get_column("seller_id").n_unique())
    return (
        per_seller.with_columns(pl.len().over("kind", "key").alias("shared_by"))
        .filter(pl.col("shared_by").is_between(2, settings.max_shared_by))
        .join(weights, on="kind")
        .with_columns(pl.coalesce("base", "kind_base").alias("base"))
        .with_columns(
            pl.when(
                (pl.col("kind") == "photo") & (pl.col("shared_by") <= settings.photo_alone_up_to)
            )
            .then(pl.max_horizontal("base", pl.lit(settings.link_threshold)))
            .otherwise("base")
            .alias("base")
        )
        .with_columns(
            (
                pl.col("base")
                * (n_sellers / pl.col("shared_by").clip(settings.rare_up_to, None)).log()
                / math.log(n_sellers / settings.rare_up_to)
            )
            .clip(0.0, None)
            .alias("weight")
        )
        .drop("kind_base")
        .sort("kind", "key", "seller_id")
    )


def seller_links(evidence: pl.DataFrame, settings: NetworkSettings) -> pl.DataFrame:
    """Seller pairs that share at least one key: ``seller_a`` < ``seller_b``, ``strength``,
    ``strong``, counts of shared keys per kind and the evidence (the five weightiest keys),
    strongest first.

    ``strength`` sums the weights of the shared keys, each kind's sum capped at that kind's
    weight (a long text's, for texts): many weak traces of one kind (two large shops that both
    reuse many circulating known fakes) do not add up to a link; two kinds, or one identity,
    do."""
    keys = (
        evidence.group_by("kind", "key")
        .agg(
            pl.col("shown").first(),
            pl.col("shared_by").first(),
            pl.col("weight").first(),
            pl.col("base").first(),
        )
        .sort("kind", "key")
        .with_row_index("key_id")
    )
    sellers = evidence.select(pl.col("seller_id").unique().sort()).with_row_index("s")
    incidence = (
        evidence.select("kind", "key", "seller_id")
        .join(keys.select("kind", "key", "key_id"), on=["kind", "key"])
        .join(sellers, on="seller_id")
        .select("key_id", "s")
    )
    pairs = (
        incidence.join(incidence, on="key_id", suffix="_b")
        .filter(pl.col("s") < pl.col("s_b"))
        .join(keys.select("key_id", "kind", "weight", "base"), on="key_id")
    )
    caps = pl.DataFrame(
        {"kind": list(settings.keys_per_kind), "keys": list(settings.keys_per_kind.values())},
        schema={"kind": pl.String, "keys": pl.Float64},
    )
    by_kind = (
        pairs.group_by("s", "s_b", "kind")
        .agg(pl.col("weight").sum(), pl.col("base").max().alias("base"), pl.len().alias("n"))
        .join(caps, on="kind", how="left")
        .with_columns((pl.col("base") * pl.col("keys").fill_null(1)).alias("cap"))
        .with_columns(pl.min_horizontal("weight", "cap").alias("weight"))
    )
    counts = [pl.col("n").filter(pl.col("kind") == k).sum().cast(pl.Int64).alias(k) for k in KINDS]
    links = (
        by_kind.group_by("s", "s_b")
        .agg(pl.col("weight").sum().alias("strength"), *counts)
        .with_columns(
            (pl.col("strength") >= settings.link_threshold - 1e-9).alias("strong"),
            pl.struct(*KINDS).alias("evidence_counts"),
        )
    )
    shown = (
        pairs.select("s", "s_b", "key_id", "weight")
        .sort(["weight", "key_id"], descending=[True, False])
        .group_by("s", "s_b", maintain_order=True)
        .head(5)
        .join(keys.select("key_id", "shown", "shared_by"), on="key_id")
        .group_by("s", "s_b", maintain_order=True)
        .agg(
            pl.format("{} (shared by {} sellers)", pl.col("shown"), pl.col("shared_by")).alias(
                "evidence"
            )
        )
    )
    names = sellers.get_column("seller_id")
    return (
        links.join(shown, on=["s", "s_b"])
        .with_columns(
            pl.col("s")
            .map_batches(lambda c: names.gather(c), return_dtype=pl.String)
            .alias("seller_a"),
            pl.col("s_b")
            .map_batches(lambda c: names.gather(c), return_dtype=pl.String)
            .alias("seller_b"),
        )
        .select("seller_a", "seller_b", "strength", "strong", "evidence_counts", "evidence")
        .sort(["strength", "seller_a", "seller_b"], descending=[True, False, False])
    )


def _ring_labels(links: pl.DataFrame) -> pl.DataFrame:
    """``seller_id`` -> ``ring_id`` for every seller in a connected component of strong links,
    rings numbered from 1 by size (largest first), then by their first seller."""
    strong = links.filter("strong")
    names = (
        pl.concat([strong.get_column("seller_a"), strong.get_column("seller_b")])
        .unique(maintain_order=False)
        .sort()
    )
    if names.len() == 0:
        return pl.DataFrame(schema={"seller_id": pl.String, "ring_id": pl.Int64})
    index = pl.DataFrame({"seller_id": names}).with_row_index("i")
    a = strong.join(index, left_on="seller_a", right_on="seller_id").get_column("i").to_numpy()
    b = strong.join(index, left_on="seller_b", right_on="seller_id").get_column("i").to_numpy()
    comp = _components(names.len(), a.astype(np.int64), b.astype(np.int64))
    labelled = index.with_columns(pl.Series("component", comp))
    order = (
        labelled.group_by("component")
        .agg(pl.len().alias("size"), pl.col("seller_id").min().alias("first"))
        .sort(["size", "first"], descending=[True, False])
        .with_row_index("ring_id", offset=1)
    )
    return labelled.join(order, on="component").select(
        "seller_id", pl.col("ring_id").cast(pl.Int64)
    )


def _rings_table(
    frame: pl.DataFrame,
    members: pl.DataFrame,
    links: pl.DataFrame,
    evidence: pl.DataFrame,
    strikes: pl.DataFrame | None,
) -> pl.DataFrame:
    listings = frame.join(members, on="seller_id")
    brand = None
    for col in ("matched_brand", "brand"):
        if col in frame.columns:
            brand = pl.col(col) if brand is None else pl.coalesce(brand, pl.col(col))
    if brand is None:
        brand = pl.lit(None, pl.String)
    has_risk = "risk" in frame.columns
    per_seller = listings.group_by("ring_id", "seller_id").agg(
        pl.len().alias("n"),
        (pl.col("risk").max() if has_risk else pl.lit(None, pl.Float64)).alias("seller_risk"),
    )
    if strikes is not None and strikes.height:
        per_seller = per_seller.join(
            strikes.select("seller_id", pl.col("strikes_365d").cast(pl.Int64)),
            on="seller_id",
            how="left",
        )
    else:
        per_seller = per_seller.with_columns(pl.lit(None, pl.Int64).alias("strikes_365d"))
    # a ring's risk: its sellers' highest listing risk on average, raised by the share of its
    # sellers with strikes (1 - (1 - r)(1 - s))
    rings = per_seller.group_by("ring_id").agg(
        pl.col("seller_id").sort().alias("sellers"),
        pl.col("n").sum().cast(pl.Int64).alias("listings"),
        pl.col("seller_risk").mean().alias("listing_risk"),
        (pl.col("strikes_365d").fill_null(0) > 0).mean().alias("struck"),
        pl.col("strikes_365d").is_not_null().any().alias("has_strikes"),
    )
    brands = (
        listings.select("ring_id", brand.alias("b"))
        .drop_nulls("b")
        .group_by("ring_id", "b")
        .agg(pl.len().alias("n"))
        .sort(["n", "b"], descending=[True, False])
        .group_by("ring_id", maintain_order=True)
        .agg(pl.col("b").head(3).alias("top_brands"))
    )
    inside = evidence.join(members, on="seller_id")
    # keys shared by two or more sellers of the same ring
    shared = (
        inside.group_by("ring_id", "kind", "key")
        .agg(pl.len().alias("m"))
        .filter(pl.col("m") >= 2)
        .group_by("ring_id")
        .agg([(pl.col("kind") == k).sum().cast(pl.Int64).alias(k) for k in KINDS])
    )
    risk = (
        pl.when(pl.col("listing_risk").is_null() & ~pl.col("has_strikes"))
        .then(None)
        .otherwise(
            1 - (1 - pl.col("listing_risk").fill_null(0)) * (1 - pl.col("struck").fill_null(0))
        )
    )
    out = (
        rings.join(brands, on="ring_id", how="left")
        .join(shared, on="ring_id", how="left")
        .with_columns(
            pl.struct([pl.col(k).fill_null(0) for k in KINDS]).alias("evidence"),
            pl.col("top_brands").fill_null(pl.lit([], pl.List(pl.String))),
            risk.alias("risk"),
        )
        .select(list(RINGS_SCHEMA))
        .sort("ring_id")
    )
    return out.cast(RINGS_SCHEMA)  # type: ignore[arg-type]


def find_rings(
    listings: pl.DataFrame,
    registry: Registry | None = None,
    *,
    images_root: str | Path | None = None,
    scores: pl.DataFrame | None = None,
    strikes: pl.DataFrame | None = None,
    settings: NetworkSettings | None = None,
) -> NetworkResult:
    """Find the seller rings in ``listings``.

    Parameters
    ----------
    listings : ``listing_id``, ``seller_id`` and any of ``title``, ``description``, ``image``
        (or ``phash``/``dhash`` already computed), account columns (``payment_account``,
        ``shipping_account``, any ``*_account``), ``risk``/``matched_brand``/``brand``
    registry : official photos (never evidence), known fakes, brand names (removed from text)
    images_root : where relative ``image`` paths are read
    scores : a scoring run's output; its ``risk`` and ``matched_brand`` are joined by
        ``listing_id`` when the listings do not have them
    strikes : ``seller_id``, ``strikes_365d`` (a ledger's sellers) for the rings' risk

    Examples
    --------
    >>> frame = pl.DataFrame({
    ...     "listing_id": ["a", "b", "c"], "seller_id": ["s1", "s2", "s3"],
    ...     "description": ["wechat: lee_shop88", "WeChat ID Lee_Shop88", "hello"]})
    >>> find_rings(frame).rings.select("ring_id", "sellers").to_dicts()
    [{'ring_id': 1, 'sellers': ['s1', 's2']}]
    """
    settings = settings or NetworkSettings()
    frame = _prepared(listings)
    if scores is not None:
        extra = [c for c in ("risk", "matched_brand") if c in scores.columns]
        extra = [c for c in extra if c not in frame.columns]
        if extra:
            if "listing_id" not in scores.columns:
                raise SchemaError("network: the scores have no listing_id column")
            frame = frame.join(
                scores.select("listing_id", *extra).unique("listing_id", keep="first"),
                on="listing_id",
                how="left",
                maintain_order="left",
            )
    evidence = seller_evidence(frame, registry, images_root=images_root, settings=settings)
    links = seller_links(evidence, settings)
    members = _ring_labels(links)
    links = (
        links.join(members.rename({"seller_id": "seller_a"}), on="seller_a", how="left")
        .with_columns(pl.when("strong").then("ring_id").alias("ring_id"))
        .select(list(LINKS_SCHEMA))
        .cast(LINKS_SCHEMA)  # type: ignore[arg-type]
    )
    rings = _rings_table(frame, members, links, evidence, strikes)
    n_sellers = frame.get_column("seller_id").drop_nulls().n_unique()
    stats = {
        "listings": frame.height,
        "sellers": n_sellers,
        "sellers_in_rings": members.height,
        "rings": rings.height,
        "links": links.height,
        "strong_links": int(links.get_column("strong").sum()),
        "keys_by_kind": {
            k: int(v)
            for k, v in evidence.group_by("kind").agg(pl.col("key").n_unique()).iter_rows()
        },
    }
    return NetworkResult(rings, links, evidence.join(members, on="seller_id", how="left"), stats)


# ---------------------------------------------------------------- output


def summary_text(result: NetworkResult, limit: int = 10) -> str:
    """A few lines a person can read: counts, then the largest rings with their evidence."""
    s = result.stats
    lines = [
        f"{s['rings']:,} ring(s) of {s['sellers_in_rings']:,} sellers "
        f"(of {s['sellers']:,} sellers, {s['listings']:,} listings); "
        f"{s['strong_links']:,} strong links of {s['links']:,} seller pairs sharing evidence",
    ]
    for ring in result.rings.head(limit).iter_rows(named=True):
        ev = ", ".join(f"{v} {k}" for k, v in ring["evidence"].items() if v)
        risk = "" if ring["risk"] is None else f", risk {ring['risk']:.2f}"
        brands = ", ".join(ring["top_brands"]) or "no brand"
        sellers = ring["sellers"]
        shown = ", ".join(sellers[:6]) + (
            f" and {len(sellers) - 6} more" if len(sellers) > 6 else ""
        )
        lines.append(
            f"ring {ring['ring_id']}: {len(sellers)} sellers ({shown}), {ring['listings']:,} "
            f"listings, {brands}{risk}; shared keys: {ev or 'none'}"
        )
        best = result.links.filter(pl.col("ring_id") == ring["ring_id"]).head(1)
        for link in best.iter_rows(named=True):
            lines.append(
                f"  e.g. {link['seller_a']} - {link['seller_b']}: " + "; ".join(link["evidence"])
            )
    return "\n".join(lines) + "\n"


def rings_html_section(result: NetworkResult, limit: int = 10) -> str:
    """An HTML ``<section>`` with the largest rings (for a report page)."""
    esc = html.escape
    rows = []
    for ring in result.rings.head(limit).iter_rows(named=True):
        ev = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in ring["evidence"].items() if v)
        links = result.links.filter(pl.col("ring_id") == ring["ring_id"]).head(3)
        why = "<br>".join(
            esc(f"{a} - {b}: " + "; ".join(e))
            for a, b, e in links.select("seller_a", "seller_b", "evidence").iter_rows()
        )
        sellers = ring["sellers"]
        shown = ", ".join(sellers[:8]) + (f" (+{len(sellers) - 8})" if len(sellers) > 8 else "")
        risk = "" if ring["risk"] is None else f"{ring['risk']:.2f}"
        rows.append(
            f"<tr><td>{ring['ring_id']}</td><td>{len(sellers)}: {esc(shown)}</td>"
            f"<td>{ring['listings']:,}</td><td>{esc(', '.join(ring['top_brands']))}</td>"
            f"<td>{esc(risk)}</td><td>{esc(ev)}</td><td>{why}</td></tr>"
        )
    s = result.stats
    return (
        '<section id="seller-rings"><h2>Seller rings</h2>'
        f"<p>{s['rings']:,} ring(s) of {s['sellers_in_rings']:,} sellers among "
        f"{s['sellers']:,} sellers. A ring is a group of sellers joined by strong links: shared "
        "photos, description templates, contacts or accounts that few other sellers share.</p>"
        "<table><tr><th>ring</th><th>sellers</th><th>listings</th><th>top brands</th>"
        "<th>risk</th><th>shared keys</th><th>strongest links</th></tr>"
        + "".join(rows)
        + "</table></section>"
    )


def network_report_html(result: NetworkResult, limit: int = 20) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8"><title>fakestop seller rings</title>'
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}"
        "</style></head><body><h1>fakestop seller rings</h1>\n"
        + rings_html_section(result, limit)
        + "\n</body></html>\n"
    )


def write_network(result: NetworkResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``rings.parquet``, ``links.parquet``, ``summary.txt``, ``report.html`` and
    ``network.json`` (the counts) into ``out_dir``."""
    from pipelines.manifest import write_bytes_atomic

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FakestopError(f"{out}: --out must be a directory")
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "rings": out / "rings.parquet",
        "links": out / "links.parquet",
        "summary": out / "summary.txt",
        "html": out / "report.html",
        "stats": out / "network.json",
    }
    for name in ("rings", "links"):
        import io

        buf = io.BytesIO()
        getattr(result, name).write_parquet(buf)
        write_bytes_atomic(paths[name], buf.getvalue())
    write_bytes_atomic(paths["summary"], result.summary().encode("utf-8"))
    write_bytes_atomic(paths["html"], network_report_html(result).encode("utf-8"))
    write_bytes_atomic(
        paths["stats"], (json.dumps(result.stats, indent=2, sort_keys=True) + "\n").encode()
    )
    return paths


def ring_memberships(result: NetworkResult) -> pl.DataFrame:
    """``seller_id``, ``ring_id``, ``evidence`` (the seller's strongest link in its ring, as
    one line) for every seller in a ring: what a ledger keeps between runs."""
    strong = result.links.filter("strong")
    both = pl.concat(
        [
            strong.select(
                pl.col("seller_a").alias("seller_id"),
                pl.col("seller_b").alias("partner"),
                "ring_id",
                "strength",
                "evidence",
            ),
            strong.select(
                pl.col("seller_b").alias("seller_id"),
                pl.col("seller_a").alias("partner"),
                "ring_id",
                "strength",
                "evidence",
            ),
        ]
    )
    return (
        both.sort(["strength", "partner"], descending=[True, False])
        .group_by("seller_id", maintain_order=True)
        .agg(
            pl.col("ring_id").first(),
            pl.format("shares {} with {}", pl.col("evidence").list.join("; "), pl.col("partner"))
            .first()
            .alias("evidence"),
        )
        .sort("seller_id")
    )


def read_scores(path: str | Path) -> pl.DataFrame:
    """A scoring run's output (a Parquet file or directory of parts, CSV or NDJSON), only the
    columns the rings use."""
    p = Path(path)
    wanted = ("listing_id", "risk", "matched_brand")
    try:
        if p.is_dir():
            parts = sorted(p.rglob("*.parquet"))
            if not parts:
                raise FakestopError(f"--scores {path}: no Parquet parts in the directory")
            frame = pl.concat([pl.read_parquet(f) for f in parts], how="diagonal_relaxed")
        elif p.suffix.lower() == ".csv":
            frame = pl.read_csv(p, infer_schema_length=0)
        elif p.suffix.lower() in (".ndjson", ".jsonl"):
            frame = pl.read_ndjson(p)
        else:
            frame = pl.read_parquet(p)
    except FileNotFoundError:
        raise FakestopError(f"--scores {path}: no such file or directory") from None
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise FakestopError(f"--scores {path}: cannot read ({str(exc).splitlines()[0]})") from None
    if "listing_id" not in frame.columns:
        raise SchemaError(f"--scores {path}: no listing_id column")
    frame = frame.select([c for c in wanted if c in frame.columns])
    if "risk" in frame.columns:
        risk = frame.get_column("risk")
        if risk.dtype == pl.String:
            risk = risk.cast(pl.Float64, strict=False)
        frame = frame.with_columns(risk.cast(pl.Float64).alias("risk"))
    return frame


def run_network(
    listings: str | Path,
    registry: str | Path,
    out: str | Path,
    *,
    images: str | Path | None = None,
    scores: str | Path | None = None,
    ledger: str | Path | None = None,
    run_date: dt.date | None = None,
    settings: NetworkSettings | None = None,
    input_settings: Any = None,
) -> tuple[NetworkResult, dict[str, Path]]:
    """What ``fakestop network`` does: read, find the rings, write them into ``out``; with
    ``ledger``, read its strikes (for the rings' risk) and store the rings in it, so that the
    next scoring run sends the ring mates of frozen sellers to review."""
    from pipelines.ledger import Ledger
    from pipelines.outputs import refuse_output_over_inputs
    from pipelines.registry import load_registry
    from pipelines.schema import read_listings, resolve_sources

    files = resolve_sources(listings)
    refuse_output_over_inputs(out, True, listings, files)
    reg = load_registry(registry)
    frame = read_listings(listings, input_settings)
    score_frame = read_scores(scores) if scores is not None else None
    day = run_date or dt.date.today()
    strikes = None
    if ledger is not None:
        with Ledger(ledger) as book:
            strikes = book.sellers(as_of=day)
    result = find_rings(
        frame, reg, images_root=images, scores=score_frame, strikes=strikes, settings=settings
    )
    paths = write_network(result, out)
    if ledger is not None:
        with Ledger(ledger) as book:
            book.record_rings(ring_memberships(result), date=day)
    return result, paths
