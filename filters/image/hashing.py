"""Perceptual hashes compatible with ``imagehash`` (64-bit pHash and dHash packed into ``uint64``
in the order of imagehash's hex string), the hashes of a mirror image derived from a hash, and
hashing many photos on worker threads.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import polars as pl
from PIL import Image

from filters.image.decode import DRAFT_SIDE, ImageRejected, ImageSource, open_image
from filters.image.policy import FLAT_REASON

if TYPE_CHECKING:
    pass
#: standard deviation of the 32x32 grayscale below which an image is too flat to hash
FLAT_STD = 2.0


#: DCT coefficients smaller than this are floating-point noise; zeroing them makes the batched
#: DCT agree bit for bit with scipy's FFT-based one (flat and ramp images otherwise differ)
DCT_EPS = 1e-6


ORIENTATIONS: tuple[tuple[str, tuple[Image.Transpose, ...]], ...] = (
    ("original", ()),
    ("mirrored", (Image.Transpose.FLIP_LEFT_RIGHT,)),
    ("rotated 90°", (Image.Transpose.ROTATE_90,)),
    ("rotated 180°", (Image.Transpose.ROTATE_180,)),
    ("rotated 270°", (Image.Transpose.ROTATE_270,)),
    ("mirrored+rotated 90°", (Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.ROTATE_90)),
    ("mirrored+rotated 180°", (Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.ROTATE_180)),
    ("mirrored+rotated 270°", (Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.ROTATE_270)),
)


#: share cut from each side for the cropped reference variants
CROPS = (0.05, 0.10, 0.15)


#: hashes per reference photo: every orientation, and each crop as it is and mirrored
VARIANTS = len(ORIENTATIONS) + 2 * len(CROPS)


_N = np.arange(32)


#: unnormalised DCT-II basis (scipy.fftpack.dct type 2, norm=None), first 8 frequencies only
_DCT8 = 2.0 * np.cos(np.pi * np.arange(8)[:, None] * (2 * _N[None, :] + 1) / 64.0)


def _pack(bits: np.ndarray) -> np.ndarray:
    """(N, 64) booleans -> (N,) uint64, first bit most significant (imagehash's hex order)."""
    packed = np.packbits(bits.astype(np.uint8), axis=1)
    return packed.view(">u8").reshape(-1).astype(np.uint64)


def _hash_arrays(
    small32: np.ndarray, small98: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pHash, dHash and pixel std of stacks of 32x32 and 8x9 (rows x cols) grayscale arrays."""
    n = small32.shape[0]
    if n == 0:
        empty = np.zeros(0, dtype=np.uint64)
        return empty, empty.copy(), np.zeros(0)
    x = small32.astype(np.float64)
    coef = (_DCT8 @ x @ _DCT8.T).reshape(n, 64)
    coef[np.abs(coef) < DCT_EPS] = 0.0
    med = np.median(coef, axis=1, keepdims=True)
    ph = _pack(coef > med)
    dh = _pack((small98[:, :, 1:] > small98[:, :, :-1]).reshape(n, 64))
    return ph, dh, x.reshape(n, -1).std(axis=1)


#: pHash bits of odd horizontal frequency (columns 1, 3, 5, 7 of each row of the 8x8 block)
_ODD_COLUMNS = np.uint64(0x5555555555555555)


#: each byte (one dHash row) with its bits in reverse order
_REVERSED_BYTE = np.array([int(f"{b:08b}"[::-1], 2) for b in range(256)], np.uint8)


def mirrored_phash(phash: np.ndarray) -> np.ndarray:
    """The pHash of the horizontally mirrored photo, from the hash alone (approximately).

    Mirroring changes the sign of the DCT coefficients of odd horizontal frequency and leaves
    the others, so those bits flip; the median the bits are thresholded at moves a little, so
    a few bits near it can differ from the mirrored photo's own pHash (measured on real
    photographs in the tests). Its own inverse.

    Examples
    --------
    >>> format(int(mirrored_phash(np.array([0x8000800080008000], np.uint64))[0]), "016x")
    'd555d555d555d555'
    """
    return np.asarray(phash, np.uint64) ^ _ODD_COLUMNS


def _reversed_rows(dhash: np.ndarray) -> np.ndarray:
    h = np.ascontiguousarray(np.asarray(dhash, np.uint64))
    return _REVERSED_BYTE[h.view(np.uint8)].view(np.uint64).reshape(h.shape)


def mirrored_dhash(dhash: np.ndarray) -> np.ndarray:
    """The dHash of the horizontally mirrored photo, from the hash alone: each row's bits
    reversed and inverted (bit ``c`` says pixel ``c + 1`` is brighter than pixel ``c``; in the
    mirror image that comparison runs the other way). Exact except where two neighbouring
    pixels are equal (a flat background): there both hashes hold 0, the derived one 1. Its own
    inverse.

    Examples
    --------
    >>> format(int(mirrored_dhash(np.array([0x0100000000000000], np.uint64))[0]), "016x")
    '7fffffffffffffff'
    """
    return ~_reversed_rows(dhash)


def mirror_distances(
    phash_a: np.ndarray, dhash_a: np.ndarray, phash_b: np.ndarray, dhash_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Hamming distances between the mirror image of photo ``a`` and photo ``b`` from their
    hashes: pHash bits apart (via :func:`mirrored_phash`) and a dHash distance that does not
    count ties. A bit the mirror derivation gives as 0 is certain (the pixels differed) and
    counts twice where ``b`` has 1; a derived 1 may be a tie (``b`` then has 0 too) and counts
    nothing. Unrelated photos stay as far apart as under the plain distance (about 32 bits),
    mirror copies on flat backgrounds no longer pay for every equal pair of pixels.
    Symmetric in ``a`` and ``b``."""
    dp = np.bitwise_count(mirrored_phash(phash_a) ^ np.asarray(phash_b, np.uint64))
    dd = 2 * np.bitwise_count(_reversed_rows(dhash_a) & np.asarray(dhash_b, np.uint64))
    return dp.astype(np.int64), dd.astype(np.int64)


def _pixels(img: Image.Image) -> np.ndarray:
    return np.frombuffer(img.tobytes(), np.uint8).reshape(img.height, img.width)


def _small(
    gray: Image.Image, box: tuple[float, float, float, float] | None = None, *, shared: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The 32x32 (pHash) and 8x9 (dHash, rows x cols) LANCZOS reductions of ``gray``.

    ``shared`` (fast mode) takes the 8x9 from the 32x32, one reduction from the decoded size
    instead of two; imagehash takes both from the full image (``shared=False``)."""
    lanczos = Image.Resampling.LANCZOS
    s32 = gray.resize((32, 32), lanczos, box=box)
    s98 = s32.resize((9, 8), lanczos) if shared else gray.resize((9, 8), lanczos, box=box)
    return _pixels(s32), _pixels(s98)


def _gray(img: Image.Image, fast: bool) -> Image.Image:
    if fast and min(img.size) >= 4 * DRAFT_SIDE:
        # non-JPEG (or undrafted) large images: a box reduction first makes LANCZOS cheap
        img = img.reduce(min(img.size) // (2 * DRAFT_SIDE))
    return img if img.mode == "L" else img.convert("L")


def phash_dhash(images: Sequence[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
    """pHash and dHash (uint64 arrays) of images, bit-identical to ``imagehash.phash/dhash``.

    Examples
    --------
    >>> ph, dh = phash_dhash([Image.linear_gradient("L")])
    >>> format(ph[0], "016x"), format(dh[0], "016x")
    ('8000800080008000', '0000000000000000')
    """
    pairs = [_small(img.convert("L")) for img in images]
    s32 = np.stack([p[0] for p in pairs]) if pairs else np.zeros((0, 32, 32), np.uint8)
    s98 = np.stack([p[1] for p in pairs]) if pairs else np.zeros((0, 8, 9), np.uint8)
    ph, dh, _ = _hash_arrays(s32, s98)
    return ph, dh


class _Prepared(NamedTuple):
    small32: list[np.ndarray]
    small98: list[np.ndarray]
    variants: list[str]
    reason: str | None


def _prepare(
    source: ImageSource,
    root: str | os.PathLike[str] | None,
    fast: bool,
    max_pixels: int,
    augment: bool,
) -> _Prepared:
    """Decode one image to its small grayscale arrays (runs in a worker thread or process)."""
    try:
        img = open_image(
            source, root=root, max_pixels=max_pixels, draft=DRAFT_SIDE if fast else None
        )
        gray = _gray(img, fast)
        if not augment:
            a, b = _small(gray, shared=fast)
            return _Prepared([a], [b], ["original"], None)
        s32, s98, names = [], [], []
        for name, ops in ORIENTATIONS:
            g = gray
            for op in ops:
                g = g.transpose(op)
            a, b = _small(g, shared=fast)
            s32.append(a)
            s98.append(b)
            names.append(name)
        mirrored = gray.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        w, h = gray.size
        for share in CROPS:
            box = (w * share, h * share, w * (1 - share), h * (1 - share))
            for prefix, g in (("", gray), ("mirrored+", mirrored)):
                a, b = _small(g, box, shared=fast)
                s32.append(a)
                s98.append(b)
                names.append(f"{prefix}cropped {share:.0%}")
        return _Prepared(s32, s98, names, None)
    except ImageRejected as exc:
        return _Prepared([], [], [], str(exc))
    except Exception as exc:  # any decoder failure on hostile input is a rejection, not a crash
        return _Prepared([], [], [], f"cannot decode image: {type(exc).__name__}: {exc}")


def _executor(workers: int, processes: bool) -> Executor | None:
    if workers <= 1:
        return None
    if processes:
        import multiprocessing

        # polars runs threads of its own: forking it can deadlock, spawn a clean interpreter
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    return ThreadPoolExecutor(workers)


def _prepare_many(items: list[tuple[Any, ...]]) -> list[_Prepared]:
    return [_prepare(*item) for item in items]


def _prepared_stream(
    sources: Iterable[ImageSource],
    *,
    root: str | os.PathLike[str] | None,
    fast: bool,
    workers: int,
    chunk: int,
    max_pixels: int,
    augment: bool,
    processes: bool,
) -> Iterator[list[_Prepared]]:
    """Chunks of prepared images, in order. With a pool, the next chunk is decoding while the
    current one is used (two chunks in flight at most), in a few slices per worker: one task per
    image costs more in scheduling than a small drafted JPEG takes to decode."""
    pool = _executor(workers, processes)

    def start(batch: list[tuple[Any, ...]]) -> Callable[[], list[_Prepared]]:
        if pool is None:
            return lambda: _prepare_many(batch)
        step = max(1, -(-len(batch) // (4 * workers)))
        futures = [
            pool.submit(_prepare_many, batch[i : i + step]) for i in range(0, len(batch), step)
        ]
        return lambda: [p for f in futures for p in f.result()]

    try:
        pending: Callable[[], list[_Prepared]] | None = None
        batch: list[tuple[Any, ...]] = []
        for src in sources:
            batch.append((src, root, fast, max_pixels, augment))
            if len(batch) >= chunk:
                started, batch = start(batch), []
                if pending is not None:
                    yield pending()
                pending = started
        if batch:
            started = start(batch)
            if pending is not None:
                yield pending()
            pending = started
        if pending is not None:
            yield pending()
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def hash_sources(
    sources: Iterable[ImageSource],
    *,
    root: str | os.PathLike[str] | None = None,
    fast: bool = True,
    workers: int = 2,
    chunk: int = 256,
    max_pixels: int = 40_000_000,
    processes: bool = False,
) -> pl.DataFrame:
    """Hash many images: one row per source, in order, with ``phash``, ``dhash`` (UInt64, null
    when unusable or flat) and ``reason`` (String, null when hashed).

    ``fast`` decodes JPEGs at reduced size and takes the dHash reduction from the pHash one
    (against ``imagehash``: pHash drifts by ~0.2 bits on average, at most ~6; dHash by ~0.8,
    at most ~8); ``fast=False`` is bit-identical to ``imagehash``. Decoding runs on ``workers``
    threads (Pillow releases the GIL while decoding and resizing) or processes, ``chunk`` images
    at a time.
    """
    ph_parts: list[np.ndarray] = []
    dh_parts: list[np.ndarray] = []
    reasons: list[str | None] = []
    ok_parts: list[np.ndarray] = []
    for prepared in _prepared_stream(
        sources,
        root=root,
        fast=fast,
        workers=workers,
        chunk=chunk,
        max_pixels=max_pixels,
        augment=False,
        processes=processes,
    ):
        good = [p for p in prepared if p.reason is None]
        s32 = np.stack([p.small32[0] for p in good]) if good else np.zeros((0, 32, 32), np.uint8)
        s98 = np.stack([p.small98[0] for p in good]) if good else np.zeros((0, 8, 9), np.uint8)
        ph, dh, std = _hash_arrays(s32, s98)
        flat = std < FLAT_STD
        full_ph = np.zeros(len(prepared), np.uint64)
        full_dh = np.zeros(len(prepared), np.uint64)
        ok = np.zeros(len(prepared), bool)
        j = 0
        for i, p in enumerate(prepared):
            if p.reason is not None:
                reasons.append(p.reason)
                continue
            full_ph[i], full_dh[i] = ph[j], dh[j]
            ok[i] = not flat[j]
            reasons.append(None if ok[i] else FLAT_REASON)
            j += 1
        ph_parts.append(full_ph)
        dh_parts.append(full_dh)
        ok_parts.append(ok)
    ok_all = np.concatenate(ok_parts) if ok_parts else np.zeros(0, bool)
    frame = pl.DataFrame(
        {
            "phash": np.concatenate(ph_parts) if ph_parts else np.zeros(0, np.uint64),
            "dhash": np.concatenate(dh_parts) if dh_parts else np.zeros(0, np.uint64),
            "ok": ok_all,
            "reason": pl.Series(reasons, dtype=pl.String),
        },
        schema={"phash": pl.UInt64, "dhash": pl.UInt64, "ok": pl.Boolean, "reason": pl.String},
    )
    return frame.select(
        pl.when("ok").then("phash").alias("phash"),
        pl.when("ok").then("dhash").alias("dhash"),
        "reason",
    )
