"""Reference hashes (each registry photo in :data:`VARIANTS` variants) and the on-disk cache of
them, keyed by the photo's content digest.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import polars as pl

from filters.core.files import file_digest, write_bytes_atomic
from filters.image.hashing import FLAT_STD, _hash_arrays, _prepared_stream
from filters.image.null import match_band
from filters.image.policy import MAX_PHASH_DISTANCE, copied_fake_message
from filters.image.search import hamming_pairs

if TYPE_CHECKING:
    from filters.core.registry import Registry
REFERENCE_SCHEMA = {
    "ref": pl.String,
    "brand": pl.String,
    "variant": pl.String,
    "phash": pl.UInt64,
    "dhash": pl.UInt64,
}


#: where ``fakestop registry build`` stores the reference hashes, inside the registry directory
CACHE_FILE = Path(".fakestop") / "image_hashes.parquet"


#: the hashing behind cached entries; bumped when a mode's hashes change (2: fast mode takes
#: the dHash reduction from the pHash one), so older caches are recomputed, never mixed in
CACHE_VERSION = 2


CACHE_SCHEMA = {
    "version": pl.Int32,
    "sha256": pl.String,
    "fast": pl.Boolean,
    "max_pixels": pl.Int64,
    "variant": pl.String,
    "phash": pl.UInt64,
    "dhash": pl.UInt64,
}


_Hashed = list[tuple[str, int, int]]


# (content sha256, fast, max_pixels) -> variant hashes; refitting reuses decoded references
_REFERENCE_CACHE: dict[tuple[str, bool, int], _Hashed] = {}


_REFERENCE_CACHE_MAX = 100_000


def _digest(path: str) -> str | None:
    try:
        return file_digest(path)
    except OSError:
        return None


def load_image_cache(path: str | os.PathLike[str]) -> dict[tuple[str, bool, int], _Hashed]:
    """Read a reference-hash cache written by :func:`build_image_cache` (empty if absent).

    A cache that cannot be read is ignored: hashes are recomputed, never trusted blindly.
    """
    p = Path(path)
    if not p.is_file():
        return {}
    try:
        frame = pl.read_parquet(p)
    except (OSError, pl.exceptions.PolarsError):
        return {}
    if dict(frame.schema) != CACHE_SCHEMA:
        return {}
    out: dict[tuple[str, bool, int], _Hashed] = {}
    for version, sha, fast, max_px, variant, ph, dh in frame.iter_rows():
        if version != CACHE_VERSION:
            continue
        hashed = out.setdefault((sha, fast, max_px), [])
        if variant is not None:  # a null variant marks a photo with no usable hash
            hashed.append((variant, ph, dh))
    return out


def reference_hashes(
    registry_images: pl.DataFrame,
    *,
    fast: bool = True,
    workers: int = 2,
    max_pixels: int = 40_000_000,
    cache: dict[tuple[str, bool, int], _Hashed] | None = None,
) -> pl.DataFrame:
    """Hash the registry's reference photos in every variant a listing may show them in.

    ``registry_images`` has ``image`` (absolute path), ``relpath`` and ``brand``. Returns one row
    per (photo, variant): ``ref`` (relpath), ``brand``, ``variant`` ("original", "mirrored",
    "rotated 90°", ..., "cropped 10%", "mirrored+cropped 10%"), ``sha256``, ``phash``,
    ``dhash``. Unusable and flat photos or variants are left out. Photos whose content hash is
    in ``cache`` (or hashed earlier in this process) are not decoded again.
    """
    rows = registry_images.select("image", "relpath", "brand").rows()
    shas = [_digest(str(path)) for path, _, _ in rows]
    keys = [None if s is None else (s, fast, max_pixels) for s in shas]
    known = {**_REFERENCE_CACHE, **(cache or {})}
    done: dict[int, _Hashed] = {i: known[k] for i, k in enumerate(keys) if k in known}
    todo = [i for i in range(len(rows)) if i not in done]
    chunk = 64
    stream = _prepared_stream(
        (rows[i][0] for i in todo),
        root=None,
        fast=fast,
        workers=workers,
        chunk=chunk,
        max_pixels=max_pixels,
        augment=True,
        processes=False,
    )
    for c, prepared in enumerate(stream):
        for off, p in enumerate(prepared):
            i = todo[c * chunk + off]
            hashed: _Hashed = []
            if p.reason is None:
                ph, dh, std = _hash_arrays(np.stack(p.small32), np.stack(p.small98))
                hashed = [
                    (v, int(a), int(b))
                    for v, a, b, s in zip(p.variants, ph, dh, std, strict=True)
                    if s >= FLAT_STD
                ]
            done[i] = hashed
            key = keys[i]
            if key is not None and len(_REFERENCE_CACHE) < _REFERENCE_CACHE_MAX:
                _REFERENCE_CACHE[key] = hashed
    out = [
        (rel, brand, variant, ph, dh, shas[i])
        for i, (_, rel, brand) in enumerate(rows)
        for variant, ph, dh in done[i]
    ]
    return pl.DataFrame(out, schema={**REFERENCE_SCHEMA, "sha256": pl.String}, orient="row")


def near_copy_fakes(
    official: pl.DataFrame, fakes: pl.DataFrame, *, band: int, workers: int = 2
) -> pl.DataFrame:
    """Known fakes that are near copies of an official photo: one row per such fake with
    ``fake``, ``official`` (the nearest official photo, by ``ref``) and ``distance``.

    ``official`` and ``fakes`` are :func:`reference_hashes` frames. A fake's photo is compared
    with every variant of every official photo, and every official photo with every variant
    of the fake (so a fake cropped from an official photo, and one the official photo was
    cropped from, are both found); a pair within ``band`` is a near copy. Such a fake cannot
    tell a counterfeiter's photo from the brand's own, so it is no evidence.
    """
    schema = {"fake": pl.String, "official": pl.String, "distance": pl.Int32}
    if band < 0 or official.height == 0 or fakes.height == 0:
        return pl.DataFrame(schema=schema)
    found: dict[str, tuple[int, str]] = {}
    for query, refs, query_is_fake in ((fakes, official, True), (official, fakes, False)):
        originals = query.filter(pl.col("variant") == "original")
        if originals.height == 0:
            continue
        qp, qd = originals.get_column("phash").to_numpy(), originals.get_column("dhash").to_numpy()
        rp, rd = refs.get_column("phash").to_numpy(), refs.get_column("dhash").to_numpy()
        # every pair, not only each photo's nearest: two fakes may copy one official photo
        qi, ri, ph = hamming_pairs(qp, rp, radius=min(MAX_PHASH_DISTANCE, band), workers=workers)
        combined = ph.astype(np.int64) + np.bitwise_count(qd[qi] ^ rd[ri])
        names = originals.get_column("ref").to_list()
        ref_names = refs.get_column("ref").to_list()
        for j, r, d in zip(qi.tolist(), ri.tolist(), combined.tolist(), strict=True):
            if d > band:
                continue
            fake, off = (names[j], ref_names[r]) if query_is_fake else (ref_names[r], names[j])
            if fake not in found or (d, off) < found[fake]:
                found[fake] = (d, off)
    rows = [(fake, off, d) for fake, (d, off) in sorted(found.items())]
    return pl.DataFrame(rows, schema=schema, orient="row")


class CacheReport(NamedTuple):
    path: Path
    photos: int
    reused: int
    hashed: int
    unusable: int
    #: the known fakes that are near copies of an official photo, reported and not used
    copied: tuple[str, ...] = ()


def build_image_cache(
    registry: Registry, *, fast: bool = True, workers: int = 2, max_pixels: int = 40_000_000
) -> CacheReport:
    """Hash the registry's official photos and known fakes once into ``CACHE_FILE``.

    Entries are keyed by file content (sha256), so a changed photo is rehashed and an unchanged
    one is reused; the file is replaced atomically. The report names the known fakes that are
    near copies of an official photo (see :func:`near_copy_fakes`), at the match band of
    :class:`ImageFilter`'s defaults.
    """
    path = registry.root / CACHE_FILE
    old = load_image_cache(path)
    images = pl.concat([registry.official_images, registry.known_fakes]).unique(
        "image", maintain_order=True
    )
    shas = [_digest(p) for p in images.get_column("image").to_list()]
    reused = sum(1 for s in shas if s is not None and (s, fast, max_pixels) in old)
    refs = reference_hashes(images, fast=fast, workers=workers, max_pixels=max_pixels, cache=old)
    hashed_shas = set(refs.get_column("sha256").to_list())
    v = CACHE_VERSION
    rows: list[tuple[Any, ...]] = [
        (v, sha, fast, max_pixels, variant, ph, dh)
        for variant, sha, ph, dh in refs.select("variant", "sha256", "phash", "dhash").rows()
    ]
    unusable = {s for s in shas if s is not None and s not in hashed_shas}
    rows += [(v, s, fast, max_pixels, None, None, None) for s in sorted(unusable)]
    # entries for other modes (fast/exact) stay valid: keep them
    current = set(shas)
    for (sha, f, m), hashed in old.items():
        if (f, m) != (fast, max_pixels) and sha in current:
            rows += [(v, sha, f, m, var, ph, dh) for var, ph, dh in hashed] or [
                (v, sha, f, m, None, None, None)
            ]
    frame = pl.DataFrame(rows, schema=CACHE_SCHEMA, orient="row").unique(maintain_order=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    frame.write_parquet(buf)
    write_bytes_atomic(path, buf.getvalue())
    # both sides come from the hashes just written
    opts: dict[str, Any] = {
        "fast": fast,
        "workers": workers,
        "max_pixels": max_pixels,
        "cache": load_image_cache(path),
    }
    official = reference_hashes(registry.official_images, **opts)
    fakes = reference_hashes(registry.known_fakes, **opts)
    band = match_band(official.height + fakes.height)
    copied = near_copy_fakes(official, fakes, band=band, workers=workers)
    return CacheReport(
        path,
        len(shas),
        reused,
        len(shas) - reused,
        len(unusable),
        tuple(copied_fake_message(*row) for row in copied.iter_rows()),
    )
