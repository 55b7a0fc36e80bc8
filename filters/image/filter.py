"""The image filter: listing photos that match a known fake (strong) or an official photo
(weak), the nearest reference explaining the photo.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import polars as pl

from filters.base import Filter, check_is_fitted
from filters.core.errors import FakestopWarning
from filters.image.cache import CACHE_FILE, load_image_cache, near_copy_fakes, reference_hashes
from filters.image.hashing import hash_sources
from filters.image.null import CHANCE_BUDGET, MAX_BAND, chance_within, match_band, match_strength
from filters.image.policy import (
    KIND_SCORE,
    MATCH_SCHEMA,
    MAX_PHASH_DISTANCE,
    copied_fake_message,
    once_in,
)
from filters.image.search import BestMatches, best_matches

if TYPE_CHECKING:
    from typing import Self

    from filters.core.registry import Registry


class ImageFilter(Filter):
    """Listing photos that match a known fake (strong) or an official photo (weak), the
    nearest reference explaining the photo.

    Parameters
    ----------
    images_root : directory that relative image paths are resolved in; paths leaving it are
        refused. ``None``: paths are used as they are.
    fast : decode JPEGs at reduced size (about 8x faster; hashes drift by under a bit on
        average, see :func:`hash_sources`)
    workers : decoding threads
    max_pixels : images declaring more pixels are refused before decoding
    max_distance : the widest match band allowed (pHash + dHash distance); the band itself is
        the widest whose chance of matching an unrelated photo stays within ``chance_budget``
        for the registry's number of reference hashes (see :mod:`filters.image.null`)
    chance_budget : the chance of a false match a listing photo may run against the whole
        registry

    Examples
    --------
    >>> from pipelines.registry import load_registry, default_registry_dir
    >>> f = ImageFilter().fit(load_registry(default_registry_dir()))
    >>> f.score(pl.DataFrame({"image": [None]})).collect().get_column("image_present").item()
    False
    """

    name: ClassVar[str] = "image"
    evidence_schema: ClassVar[dict[str, pl.DataType]] = {
        "image_official_distance": pl.Int32(),
        "image_fake_distance": pl.Int32(),
        "image_present": pl.Boolean(),
        "image_brand": pl.String(),
        # the reference photo that explains the listing's photo (the one its reason names)
        **MATCH_SCHEMA,
    }

    def __init__(
        self,
        *,
        images_root: str | None = None,
        fast: bool = True,
        workers: int = 2,
        max_pixels: int = 40_000_000,
        max_distance: int = MAX_BAND,
        chance_budget: float = CHANCE_BUDGET,
    ) -> None:
        self.images_root = images_root
        self.fast = fast
        self.workers = workers
        self.max_pixels = max_pixels
        self.max_distance = max_distance
        self.chance_budget = chance_budget

    def fit(self, registry: Registry) -> Self:
        if not 0 <= self.max_distance <= MAX_BAND:
            raise ValueError(f"max_distance must be between 0 and {MAX_BAND}")
        if not 0 < self.chance_budget < 1:
            raise ValueError("chance_budget must be between 0 and 1")
        opts: dict[str, Any] = {
            "fast": self.fast,
            "workers": self.workers,
            "max_pixels": self.max_pixels,
            # hashes from ``fakestop registry build``, checked against each file's content
            "cache": load_image_cache(registry.root / CACHE_FILE),
        }
        official = reference_hashes(registry.official_images, **opts)
        fakes = reference_hashes(registry.known_fakes, **opts)
        #: every reference hash a listing photo is compared with (the copied fakes' too: the
        #: band is set before they are found, which errs on the safe side)
        self.comparisons_ = official.height + fakes.height
        self.band_ = min(
            self.max_distance, match_band(self.comparisons_, budget=self.chance_budget)
        )
        copied = near_copy_fakes(official, fakes, band=self.band_, workers=self.workers)
        self.copied_fakes_ = copied
        if copied.height:
            shown = [copied_fake_message(*row) for row in copied.head(5).iter_rows()]
            more = f" (and {copied.height - 5} more)" if copied.height > 5 else ""
            warnings.warn(
                f"{registry.root}: " + "; ".join(shown) + more, FakestopWarning, stacklevel=2
            )
        self.official_ = official
        self.fakes_ = fakes.filter(~pl.col("ref").is_in(copied.get_column("fake").implode()))
        return self

    @property
    def compares_photos(self) -> bool:
        """Whether the fitted registry has any reference photo to compare listing photos with."""
        check_is_fitted(self)
        return bool(self.official_.height or self.fakes_.height)

    def summary(self) -> dict[str, Any]:
        """What the fitted filter compares photos with (recorded in a run's manifest)."""
        check_is_fitted(self)
        return {
            "photos_compared": self.compares_photos,
            "official_photos": self.official_.get_column("ref").n_unique(),
            "known_fakes": self.fakes_.get_column("ref").n_unique(),
            "known_fakes_not_used": [
                copied_fake_message(*row) for row in self.copied_fakes_.iter_rows()
            ],
            "reference_hashes": self.comparisons_,
            "match_band": self.band_,
            "chance_budget": self.chance_budget,
        }

    # ---- stages

    def image_keys(self, listings: pl.LazyFrame) -> tuple[pl.LazyFrame, pl.Series | None]:
        """Add ``__image_key`` (the image as a path string or bytes; empty strings count as no
        image) and return the distinct keys to hash (None when there is no image column)."""
        schema = listings.collect_schema()
        if "image" not in schema or schema["image"] == pl.Null:
            return listings.with_columns(pl.lit(None, pl.String).alias("__image_key")), None
        key = pl.col("image")
        if schema["image"] != pl.Binary:
            key = key.cast(pl.String)
            key = pl.when(key.str.strip_chars() != "").then(key)
        listings = listings.with_columns(key.alias("__image_key"))
        distinct = listings.select("__image_key").collect().get_column("__image_key").drop_nulls()
        return listings, distinct.unique(maintain_order=True)

    def _nearest(self, qp: np.ndarray, qd: np.ndarray) -> dict[str, BestMatches]:
        """The best match and the nearest distance of every query, per kind of reference."""
        out: dict[str, BestMatches] = {}
        for kind, refs in (("fake", self.fakes_), ("official", self.official_)):
            if refs.height:
                out[kind] = best_matches(
                    qp,
                    qd,
                    refs.get_column("phash").to_numpy(),
                    refs.get_column("dhash").to_numpy(),
                    max_distance=self.band_,
                    max_phash=min(MAX_PHASH_DISTANCE, self.band_),
                    min_cap=MAX_BAND + 1,
                    workers=self.workers,
                )
        return out

    def _match_reason(self, kind: str, refs: pl.DataFrame, bm: BestMatches, j: int) -> str:
        ref, _, variant = refs.row(int(bm.ref[j]))[:3]
        d, ph = int(bm.distance[j]), int(bm.phash_distance[j])
        note = "" if variant == "original" else f", {variant}"
        label = "known fake" if kind == "fake" else "official photo"
        chance = float(chance_within(d, self.comparisons_))
        return (
            f"image matches {label} {ref} (pHash {ph} + dHash {d - ph} bits{note}; an "
            f"unrelated photo comes this near {once_in(chance)})"
        )

    def image_matches(self, keys: pl.Series) -> pl.DataFrame:
        """Hash the distinct images and match them: one row per key with the output columns."""
        hashed = hash_sources(
            keys.to_list(),
            root=self.images_root,
            fast=self.fast,
            workers=self.workers,
            max_pixels=self.max_pixels,
        )
        n = len(keys)
        ok = hashed.get_column("phash").is_not_null().to_numpy()
        qp = hashed.get_column("phash").fill_null(0).to_numpy()
        qd = hashed.get_column("dhash").fill_null(0).to_numpy()
        found = self._nearest(qp[ok], qd[ok])
        refs = {"fake": self.fakes_, "official": self.official_}
        score: list[float | None] = [None] * n
        reasons: list[list[str]] = [[] for _ in range(n)]
        brand: list[str | None] = [None] * n
        match: dict[str, list[Any]] = {c: [None] * n for c in MATCH_SCHEMA}
        dist: dict[str, list[int | None]] = {"fake": [None] * n, "official": [None] * n}
        rejected = hashed.get_column("reason").to_list()
        for i, why in enumerate(rejected):
            if why is not None:
                # reasons never hold NUL (the merged reasons are joined on it)
                reasons[i].append(f"image not usable: {why}".replace("\x00", "\ufffd"))
        strength = {
            kind: match_strength(bm.distance, self.comparisons_, budget=self.chance_budget)
            for kind, bm in found.items()
        }
        for j, i in enumerate(np.flatnonzero(ok).tolist()):
            score[i] = 0.0
            for kind, bm in found.items():
                dist[kind][i] = int(bm.min_distance[j])
            fake, official = found.get("fake"), found.get("official")
            fake_d = -1 if fake is None else int(fake.distance[j])
            # the nearest reference explains the photo: a known fake counts only when it is
            # nearer than every official photo, matched or not
            nearest_official = MAX_BAND + 1 if official is None else int(official.min_distance[j])
            if fake is not None and fake_d >= 0 and fake_d < nearest_official:
                winner, loser = "fake", "official"
            elif official is not None and int(official.distance[j]) >= 0:
                winner, loser = "official", "fake"
            else:
                continue
            bm = found[winner]
            reason = self._match_reason(winner, refs[winner], bm, j)
            other = found.get(loser)
            if other is not None and int(other.ref[j]) >= 0:
                other_ref = refs[loser].row(int(other.ref[j]))[0]
                label = "official photo" if loser == "official" else "known fake"
                reason += (
                    f"; {label} {other_ref} is farther (distance {int(other.distance[j])} "
                    f"against {int(bm.distance[j])})"
                )
            reasons[i].append(reason)
            score[i] = KIND_SCORE[winner] * float(strength[winner][j])
            ref, brand[i], variant = refs[winner].row(int(bm.ref[j]))[:3]
            for c, v in zip(MATCH_SCHEMA, (ref, winner, variant, int(bm.distance[j])), strict=True):
                match[c][i] = v
        return pl.DataFrame(
            {
                "__image_key": keys,
                "image_score": score,
                "image_reasons": reasons,
                "image_official_distance": dist["official"],
                "image_fake_distance": dist["fake"],
                "image_brand": brand,
                **match,
            },
            schema={
                "__image_key": keys.dtype,
                "image_score": pl.Float64,
                "image_reasons": pl.List(pl.String),
                "image_official_distance": pl.Int32,
                "image_fake_distance": pl.Int32,
                "image_brand": pl.String,
                **MATCH_SCHEMA,
            },
        )

    def _score(
        self, listings: pl.LazyFrame, statistics: pl.DataFrame | None = None
    ) -> pl.LazyFrame:
        check_is_fitted(self)
        outputs = self.output_schema()
        cols = [c for c in listings.collect_schema().names() if c not in outputs]
        keyed, keys = self.image_keys(listings)
        present = pl.col("__image_key").is_not_null()
        if keys is None or not self.compares_photos:
            # nothing to compare with: the signal does not apply
            return keyed.with_columns(
                pl.lit(None, pl.Float64).alias("image_score"),
                pl.lit([], pl.List(pl.String)).alias("image_reasons"),
                pl.lit(None, pl.Int32).alias("image_official_distance"),
                pl.lit(None, pl.Int32).alias("image_fake_distance"),
                present.alias("image_present"),
                pl.lit(None, pl.String).alias("image_brand"),
                *(pl.lit(None, t).alias(c) for c, t in MATCH_SCHEMA.items()),
            ).select([*cols, *outputs])
        matches = self.image_matches(keys)
        return (
            keyed.join(matches.lazy(), on="__image_key", how="left", maintain_order="left")
            .with_columns(
                pl.col("image_reasons").fill_null(pl.lit([], pl.List(pl.String))),
                present.alias("image_present"),
            )
            .select([*cols, *outputs])
        )

    def score_record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """This filter's columns for one listing, equal to :meth:`score` on a one-row frame."""
        check_is_fitted(self)
        image = record.get("image")
        if isinstance(image, bytearray | memoryview):
            image = bytes(image)
        if image is not None and not isinstance(image, bytes):
            from filters.core.textops import strip_chars  # its regex module is slow to import

            image = str(image) if strip_chars(str(image)) != "" else None
        out: dict[str, Any] = {
            "image_score": None,
            "image_reasons": [],
            "image_official_distance": None,
            "image_fake_distance": None,
            "image_present": image is not None,
            "image_brand": None,
            **dict.fromkeys(MATCH_SCHEMA),
        }
        if image is None or not self.compares_photos:
            return out
        dtype = pl.Binary if isinstance(image, bytes) else pl.String
        found = self.image_matches(pl.Series("__image_key", [image], dtype=dtype))
        out.update(found.drop("__image_key").row(0, named=True))
        out["image_reasons"] = list(out["image_reasons"] or [])
        return out
