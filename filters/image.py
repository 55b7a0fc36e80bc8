"""Image filter: does the listing photo match a known fake or an official product photo?

Perceptual hashes compatible with the ``imagehash`` library (64-bit pHash and dHash, packed into
``uint64`` in the order of imagehash's hex string) are computed for listing photos and compared
with the registry's reference photos by Hamming distance. The reference side is augmented (8
orientations, crops of 5/10/15% per side and their mirror images: 14 variants) so a listing
needs one hash while mirrored, rotated and cropped copies still match.

A match is a reference within the match band of the combined (pHash + dHash) distance. The band
and the strength of a match come from how near unrelated real photographs come, for the number
of reference hashes compared (:mod:`filters.image_null`): with more references, chance matches
are likelier, the band narrower. The nearest reference explains the photo: a known fake counts
only when it is nearer than every official photo, so a reseller showing the brand's own photo is
explained by it. Score: the known fake nearest gives ``0.95 * strength``; an official photo
nearest gives ``0.35 * strength`` (authorised resellers use official photos too, and so do
counterfeiters); no match gives 0; no usable image gives null. Strength falls from 1 (a near
copy) to 0 at the edge of the band. A known fake that is itself a near copy of an official
photo cannot tell the two apart: it is reported when the registry is built or loaded and not
used.

The evidence columns ``image_official_distance`` / ``image_fake_distance`` hold the distance to
the nearest reference of that kind, capped at ``MAX_BAND + 1`` ("that far or farther": an exact
search within that band is what keeps matching 100k x 100k hashes to seconds).
"""

from __future__ import annotations

import functools
import io
import itertools
import math
import os
import stat
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np
import polars as pl
from PIL import Image, UnidentifiedImageError

from filters.base import Filter, check_is_fitted
from filters.core.errors import FakestopWarning
from filters.core.files import file_digest, write_bytes_atomic
from filters.image_null import CHANCE_BUDGET, MAX_BAND, chance_within, match_band, match_strength

if TYPE_CHECKING:
    from typing import Self

    from filters.core.registry import Registry

#: an image given as a path, raw file bytes or an already opened image
ImageSource = str | os.PathLike[str] | bytes | Image.Image

#: pHash distance above which two photos never match, whatever their dHash distance
MAX_PHASH_DISTANCE = 14
#: image score of a full-strength match, by the kind of the nearest reference
KIND_SCORE = {"fake": 0.95, "official": 0.35}
#: standard deviation of the 32x32 grayscale below which an image is too flat to hash
FLAT_STD = 2.0
#: DCT coefficients smaller than this are floating-point noise; zeroing them makes the batched
#: DCT agree bit for bit with scipy's FFT-based one (flat and ramp images otherwise differ)
DCT_EPS = 1e-6
#: the evidence naming the reference photo that explains a listing's photo: its path in the
#: registry, "fake" or "official", the variant it matched in and the combined distance
MATCH_SCHEMA: dict[str, pl.DataType] = {
    "image_match": pl.String(),
    "image_match_kind": pl.String(),
    "image_match_variant": pl.String(),
    "image_match_distance": pl.Int32(),
}
#: side the JPEG decoder is asked to reduce to in fast mode (it picks a scale >= this)
DRAFT_SIDE = 64
#: largest image file read; a product photo is a few MB, and a larger file (or a device such as
#: /dev/zero) must not be read into memory before its header is even checked
MAX_IMAGE_BYTES = 64 * 2**20

FLAT_REASON = "image is flat (no detail to compare)"
ESCAPE_REASON = "path escapes the images directory"

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

# warnings filters are process-global: serialise the (cheap, header-only) open that may warn
_OPEN_LOCK = threading.Lock()


class ImageRejected(ValueError):
    """An image that cannot be used; ``str(exc)`` is a human-readable reason."""


# ---------------------------------------------------------------- opening


def _resolve_path(source: str | os.PathLike[str], root: str | os.PathLike[str] | None) -> Path:
    path = Path(source)
    if root is None:
        return path
    if path.is_absolute():
        raise ImageRejected(ESCAPE_REASON)
    base = Path(root).resolve()
    # resolve() follows symlinks, so a link pointing outside the root is caught here too
    full = (base / path).resolve()
    if not full.is_relative_to(base):
        raise ImageRejected(ESCAPE_REASON)
    return full


def _read_bytes(source: str | os.PathLike[str], root: str | os.PathLike[str] | None) -> bytes:
    path = _resolve_path(source, root)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; only regular files are read
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ImageRejected(f"file not found: {os.fspath(source)}") from None
    except OSError as exc:
        raise ImageRejected(f"cannot read {os.fspath(source)}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ImageRejected(f"not a file: {os.fspath(source)}")
        if info.st_size > MAX_IMAGE_BYTES:
            raise ImageRejected(
                f"file of {info.st_size:,} bytes exceeds {MAX_IMAGE_BYTES:,} bytes: "
                f"{os.fspath(source)}"
            )
        with os.fdopen(os.dup(fd), "rb") as fh:
            return fh.read(MAX_IMAGE_BYTES + 1)
    except OSError as exc:
        raise ImageRejected(f"cannot read {os.fspath(source)}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _check_size(size: tuple[int, int], max_pixels: int) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise ImageRejected(f"declared size {w}x{h} is empty")
    if w * h > max_pixels:
        raise ImageRejected(f"declared size {w}x{h} exceeds {max_pixels:,} pixels")


def _to_rgb_or_l(img: Image.Image) -> Image.Image:
    """Normalise any mode to "L" or "RGB" (alpha composited on white, 16-bit scaled)."""
    mode = img.mode
    if mode in ("L", "RGB") and "transparency" not in img.info:
        return img
    if mode == "1":
        return img.convert("L")
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(img)
        if mode == "F":
            out = np.clip(arr, 0, 255)
        elif mode.startswith("I;16") or int(arr.max(initial=0)) > 255:
            # 16-bit data: keep the high byte, as an 8-bit export would
            out = np.clip(arr, 0, 65535) / 257.0
        else:
            out = np.clip(arr, 0, 255)
        return Image.fromarray(np.rint(out).astype(np.uint8), mode="L")
    has_alpha = mode in ("RGBA", "LA", "La", "RGBa", "PA") or "transparency" in img.info
    if has_alpha:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def open_image(
    source: ImageSource,
    *,
    root: str | os.PathLike[str] | None = None,
    max_pixels: int = 40_000_000,
    draft: int | None = None,
) -> Image.Image:
    """Open, validate and normalise an image to mode "L" or "RGB", upright.

    ``source`` is a path (relative to ``root`` when given: absolute paths, ``..`` and symlinks
    leaving ``root`` are refused), raw file bytes or a PIL image. The declared size is checked
    before any pixel is decoded. ``draft``: let the JPEG decoder reduce to about this side
    (grayscale), much faster and only slightly different. Raises :class:`ImageRejected`.

    Examples
    --------
    >>> open_image(Image.new("RGBA", (4, 4))).mode
    'RGB'
    """
    if isinstance(source, Image.Image):
        _check_size(source.size, max_pixels)
        img = source
    else:
        data = source if isinstance(source, bytes) else _read_bytes(source, root)
        if not data:
            raise ImageRejected("empty file")
        if len(data) > MAX_IMAGE_BYTES:
            raise ImageRejected(f"{len(data):,} bytes exceeds {MAX_IMAGE_BYTES:,} bytes")
        img = _decode(data, max_pixels, draft)
    img = _upright(img)
    try:
        return _to_rgb_or_l(img)
    except Exception as exc:
        raise ImageRejected(f"cannot convert image mode {img.mode}: {exc}") from None


#: EXIF orientation -> the transposition that makes the image upright (``ImageOps.exif_transpose``)
_EXIF_TURNS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _upright(img: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says, like ``ImageOps.exif_transpose`` but
    without the full-size copy that it makes when there is nothing to turn."""
    try:
        turn = _EXIF_TURNS.get(img.getexif().get(0x0112, 1))
        return img if turn is None else img.transpose(turn)
    except Exception:
        # hostile EXIF must not make an otherwise good photo unusable: keep it as stored
        return img


def _declared_size(data: bytes) -> tuple[int, int] | None:
    """Size from the header alone, bypassing Pillow's bomb check (which hides the size)."""
    Image.init()
    for fmt in Image.ID:
        factory, accept = Image.OPEN[fmt]
        if accept is not None and not accept(data[:16]):
            continue
        try:
            w, h = factory(io.BytesIO(data), "").size
            return int(w), int(h)
        except Exception:
            continue
    return None


def _decode(data: bytes, max_pixels: int, draft: int | None) -> Image.Image:
    try:
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        size = _declared_size(data)
        if size is None:
            raise ImageRejected(f"decompression bomb: {exc}") from None
        limit = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
        raise ImageRejected(f"declared size {size[0]}x{size[1]} exceeds {limit:,} pixels") from None
    except UnidentifiedImageError:
        raise ImageRejected("not a recognised image format") from None
    except Exception as exc:
        raise ImageRejected(f"cannot read image header: {exc}") from None
    _check_size(img.size, max_pixels)
    try:
        if draft is not None and img.format == "JPEG":
            img.draft("L", (draft, draft))
        # an animated image stays on its first frame
        img.load()
    except Exception as exc:
        raise ImageRejected(f"cannot decode image: {exc}") from None
    return img


# ---------------------------------------------------------------- hashing

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


# ---------------------------------------------------------------- references

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


# ---------------------------------------------------------------- matching
#
# Exact Hamming search by the pigeonhole principle (multi-index hashing). The 64 bits are cut
# into key blocks, each with a bit budget ``tau``, such that the budgets plus one sum to more
# than the radius: two hashes within the radius then differ in at most ``tau`` bits of some
# block. Both sides are bucketed by each block's key, and a bucket is compared only with the
# buckets whose keys lie within ``tau`` flipped bits. The work runs "key-major": each side sits
# in padded (depth x keys) tables and, for one flip mask at a time, a single XOR + popcount
# compares every query bucket with its partner bucket. Buckets are cut into layers of growing
# depth (ranks 0..d-1 in the first layer, d..2d-1 in the second, then 2d..4d-1, ...), and a
# layer keeps only the keys whose buckets reach it, so the crowded buckets of clustered photo
# hashes (near copies of a few photos) are compared densely without padding every other key to
# their depth. A pair is reported by the first block that holds it only, so a near copy found
# by every block is handed on once. Every candidate is verified exactly; a cost model picks the
# layer depths, and brute force when that is cheaper.

#: relative costs, measured with numpy: one compared table slot (XOR + popcount), one table
#: entry gathered, the fixed work of one step over two layers, one brute-force pair of
#: :func:`best_matches` (two hashes) and of :func:`hamming_pairs` (one hash)
_SLOT_COST = 1.0
_CALL_COST = 40_000.0
_GATHER_COST = 1.0
_BRUTE_COST = 1.0
_BRUTE_PAIR_COST = 0.5
#: below this brute-force cost, planning a pigeonhole search costs more than it can save
_PLAN_MIN = float(1 << 27)
#: depths tried for the first layer of a table (later layers double)
_FIRST_DEPTHS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
#: most slots compared in one step, and most table entries gathered for one step of masks
#: (they bound the scratch memory per thread)
_SLAB = 1 << 18
_GATHER = 1 << 20
#: about the most slots one task compares (a task is what a thread takes at a time)
_TASK_SLOTS = 1 << 23
#: table padding: a query pad and a reference pad are 64 bits apart, so pads never pair up
_PAD_Q = np.uint64(0x5555_5555_5555_5555)
_PAD_R = ~_PAD_Q

#: receives (query ids, ref ids) of pairs found in range; called from worker threads
_Sink = Callable[[np.ndarray, np.ndarray], None]


def _as_u64(a: np.ndarray | Sequence[int]) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.uint64).reshape(-1))


def _run_tasks(tasks: Sequence[Callable[[], None]], workers: int) -> None:
    """Run independent tasks on ``workers`` threads (numpy releases the GIL in its loops)."""
    if workers <= 1 or len(tasks) < 2:
        for task in tasks:
            task()
        return
    with ThreadPoolExecutor(workers) as pool:
        for fut in [pool.submit(task) for task in tasks]:
            fut.result()


@functools.lru_cache(maxsize=64)
def _flip_masks(width: int, tau: int) -> np.ndarray:
    """Every ``width``-bit mask with at most ``tau`` bits set (read-only)."""
    masks = [0]
    for k in range(1, min(tau, width) + 1):
        masks += [sum(1 << i for i in bits) for bits in itertools.combinations(range(width), k)]
    out = np.array(masks, np.intp)
    out.flags.writeable = False
    return out


def _block_plans(radius: int, large: bool) -> list[list[tuple[int, int, int]]]:
    """Candidate layouts ``[(shift, width, tau), ...]`` for finding every pair within
    ``radius``: the taus plus one sum to more than the radius."""
    if radius < 4:
        # radius + 1 blocks, one of which matches exactly
        return [[(16 * j, 16, 0) for j in range(radius + 1)]]
    layouts: list[tuple[int, ...]] = [(13, 13, 13, 13, 12)]
    if large:
        # at this size 16-bit buckets are full enough for the tables
        layouts.append((16, 16, 16, 16))
    plans = []
    for widths in layouts:
        k = len(widths)
        budget = radius - k + 1
        # the wider (more selective) blocks take the larger budgets
        taus = [min(w, budget // k + (j < budget % k)) for j, w in enumerate(widths)]
        shifts = np.cumsum((0, *widths[:-1])).tolist()
        plans.append(list(zip(shifts, widths, taus, strict=True)))
    return plans


class _Buckets(NamedTuple):
    """One side's items bucketed by one block's key."""

    keys: np.ndarray  # (n,) key of each item
    counts: np.ndarray  # (2**width,) items per key
    rank: np.ndarray  # (n,) position of each item within its bucket (by id)


def _buckets(h: np.ndarray, shift: int, width: int) -> _Buckets:
    keys = ((h >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.intp)
    counts = np.bincount(keys, minlength=1 << width)
    starts = np.zeros(counts.size, np.intp)
    np.cumsum(counts[:-1], out=starts[1:])
    # a stable sort of 16-bit keys is a radix sort
    order = np.argsort(keys.astype(np.uint16), kind="stable")
    rank = np.empty(h.size, np.intp)
    rank[order] = np.arange(h.size) - starts[keys[order]]
    return _Buckets(keys, counts, rank)


def _layer_bounds(first: int, top: int) -> tuple[int, ...]:
    """Rank bounds of the layers: 0, first, 2 first, 4 first, ... up to ``top`` ranks."""
    bounds = [0, first]
    while bounds[-1] < top:
        bounds.append(2 * bounds[-1])
    return tuple(bounds)


def _fwht(a: np.ndarray) -> np.ndarray:
    """Walsh-Hadamard transform of each row (length a power of two), unnormalised."""
    a = a.copy()
    m, n = a.shape
    h = 1
    while h < n:
        v = a.reshape(m, n // (2 * h), 2, h)
        x, y = v[:, :, 0, :].copy(), v[:, :, 1, :]
        v[:, :, 0, :] += y
        np.subtract(x, y, out=v[:, :, 1, :])
        h *= 2
    return a


class _Block(NamedTuple):
    shift: int
    width: int
    tau: int
    q: _Buckets
    r: _Buckets
    bounds_q: tuple[int, ...]
    bounds_r: tuple[int, ...]
    cost: float


def _plan_block(q: np.ndarray, r: np.ndarray, shift: int, width: int, tau: int) -> _Block:
    """Bucket both sides by one block and pick the layer depths with the least expected work.

    For every pair of layers the work is the number of (mask, key) pairs where the query layer
    holds the key and the reference layer its partner ``key ^ mask``, times the slots of the
    two depths. Those counts are exact for all layer pairs at once: summed over the masks, an
    XOR-correlation of the two layers' key sets, which the Walsh-Hadamard transform turns into
    a product."""
    flips = _flip_masks(width, tau)
    bq, br = _buckets(q, shift, width), _buckets(r, shift, width)
    layerings = [
        sorted({_layer_bounds(d, int(b.counts.max())) for d in _FIRST_DEPTHS}) for b in (bq, br)
    ]
    # every lower bound of a layer, per side, and the key sets above them
    lows = [sorted({lo for bounds in lay for lo in bounds[:-1]}) for lay in layerings]
    # (single precision: these are estimates, and it halves the transforms' time)
    spectra = [
        _fwht((b.counts[None, :] > np.asarray(lo)[:, None]).astype(np.float32))
        for b, lo in zip((bq, br), lows, strict=True)
    ]
    masks = np.zeros((1, 1 << width), np.float32)
    masks[0, flips] = 1.0
    weight = _fwht(masks)[0]
    # meet[i, j]: (mask, key) pairs with the key in query layer i and its partner in ref layer j
    meet = np.maximum((spectra[0] * weight) @ spectra[1].T / (1 << width), 0).astype(np.float64)
    # every layering pair at once: (layering, layer) grids of meet indices and depths, padded
    # with empty layers (depth 0, no call)
    grids = []
    for side, lay in zip(lows, layerings, strict=True):
        at = {lo: i for i, lo in enumerate(side)}
        top = max(len(b) - 1 for b in lay)
        idx = np.zeros((len(lay), top), np.intp)
        depth = np.zeros((len(lay), top))
        for k, bounds in enumerate(lay):
            idx[k, : len(bounds) - 1] = [at[lo] for lo in bounds[:-1]]
            depth[k, : len(bounds) - 1] = np.diff(bounds)
        grids.append((idx, depth))
    (iq, dq), (ir, dr) = grids
    # axes: query layering, query layer, ref layering, ref layer
    both = meet[iq[:, :, None, None], ir[None, None, :, :]]
    dq4, dr4 = dq[:, :, None, None], dr[None, None, :, :]
    real = (dq4 > 0) & (dr4 > 0)
    slots = both * (_SLOT_COST * dq4 * dr4 + _GATHER_COST * (dq4 + dr4))
    calls = (np.ceil(both * dq4 * dr4 / _SLAB) + 1) * real
    cost = (slots * real + _CALL_COST * calls).sum(axis=(1, 3))
    i, j = np.unravel_index(int(cost.argmin()), cost.shape)
    return _Block(shift, width, tau, bq, br, layerings[0][i], layerings[1][j], float(cost[i, j]))


def _plan_search(
    q: np.ndarray, r: np.ndarray, radius: int, limit: float = math.inf
) -> tuple[list[_Block], float]:
    """The cheapest block layout for finding every pair within ``radius`` and its cost, or
    ``([], inf)`` when none costs less than ``limit``."""
    if radius < 0 or q.size == 0 or r.size == 0:
        return [], 0.0
    best: tuple[list[_Block], float] = ([], limit)
    for plan in _block_plans(radius, large=min(q.size, r.size) >= 1 << 17):
        # what uniformly spread hashes would cost: skips hopeless layouts before bucketing
        share = sum(sum(math.comb(w, i) for i in range(t + 1)) / 2**w for _, w, t in plan)
        if _SLOT_COST * share * q.size * r.size >= best[1]:
            continue
        blocks: list[_Block] = []
        cost = 0.0
        for shift, width, tau in plan:
            blocks.append(_plan_block(q, r, shift, width, tau))
            cost += blocks[-1].cost
            if cost >= best[1]:
                break
        if cost < best[1]:
            best = (blocks, cost)
    return best if best[0] else ([], math.inf)


class _Layer(NamedTuple):
    """The items of one side with bucket ranks in one range, as a (depth, columns + 1) table:
    one column per key whose bucket reaches the layer, and a last column of pads."""

    vals: np.ndarray  # (depth, columns + 1) hashes, pads where a bucket runs out
    ids: np.ndarray  # (depth, columns + 1) item ids, -1 for pads
    keys: np.ndarray  # (columns,) key of each column
    col: np.ndarray  # (2**width,) column of each key; the pad column for absent keys


def _layers(h: np.ndarray, b: _Buckets, bounds: tuple[int, ...], pad: np.uint64) -> list[_Layer]:
    out = []
    for lo, hi in itertools.pairwise(bounds):
        keys = np.flatnonzero(b.counts > lo)
        if keys.size == 0:
            break
        col = np.full(b.counts.size, keys.size, np.intp)
        col[keys] = np.arange(keys.size)
        vals = np.full((hi - lo, keys.size + 1), pad, np.uint64)
        ids = np.full((hi - lo, keys.size + 1), -1, np.intp)
        inside = np.flatnonzero((b.rank >= lo) & (b.rank < hi))
        at = (b.rank[inside] - lo, col[b.keys[inside]])
        vals[at] = h[inside]
        ids[at] = inside
        out.append(_Layer(vals, ids, keys, col))
    return out


def _key_major(
    a: _Layer,
    b: _Layer,
    flips: np.ndarray,
    radius: int,
    earlier: tuple[tuple[np.uint64, int], ...],
    sink: _Sink,
) -> None:
    """Pairs in range between every query bucket of layer ``a`` and the reference bucket of
    layer ``b`` at ``key ^ f``, except pairs that an ``earlier`` block (mask, tau) holds."""
    swap = a.keys.size > b.keys.size
    # walk the layer with fewer keys and look the partners up in the other
    it, other = (b, a) if swap else (a, b)
    di, do = it.vals.shape[0], other.vals.shape[0]
    n, absent = it.keys.size, other.keys.size
    it_ids, other_ids = it.ids.reshape(-1), other.ids.reshape(-1)
    wi, wo = it.ids.shape[1], other.ids.shape[1]
    rows = max(1, min(di, _SLAB // do))
    xbuf, cbuf = np.empty(_SLAB, np.uint64), np.empty(_SLAB, np.uint8)
    within = np.empty(_SLAB, bool)
    # several masks at a time: the columns are (mask, key) pairs
    per = max(1, min(_SLAB // (n * di * do), _GATHER // (n * max(di, do))))
    for f0 in range(0, flips.size, per):
        partner = other.col[it.keys[None, :] ^ flips[f0 : f0 + per, None]].reshape(-1)
        at = np.flatnonzero(partner != absent)
        if at.size == 0:
            continue
        icols, pcols = at % n, partner[at]
        # one mask meeting every key: the table itself, ungathered
        iv = it.vals if at.size == n == partner.size else np.take(it.vals, icols, axis=1)
        ov = np.take(other.vals, pcols, axis=1)
        ncols = at.size
        slab = max(1, min(ncols, _SLAB // (rows * do)))
        for r0 in range(0, di, rows):
            r1 = min(r0 + rows, di)
            for k0 in range(0, ncols, slab):
                k1 = min(k0 + slab, ncols)
                width = k1 - k0
                shape = (r1 - r0, do, width)
                x = xbuf[: math.prod(shape)].reshape(shape)
                c = cbuf[: x.size].reshape(shape)
                np.bitwise_xor(iv[r0:r1, None, k0:k1], ov[None, :, k0:k1], out=x)
                np.bitwise_count(x, out=c)
                # uniform hashes: nearly every column has no pair in range, so find the few
                # that do first; clustered ones: many do, so look at them all at once
                # (flat indices: numpy's nonzero on a 3-d array is many times slower)
                near = np.flatnonzero(c.reshape(-1, width).min(axis=0) <= radius)
                if near.size == 0:
                    continue
                if 4 * near.size > width:
                    hit = np.less_equal(c.reshape(-1), radius, out=within[: c.size])
                    flat = np.flatnonzero(hit)
                else:
                    sub = np.flatnonzero(c[:, :, near] <= radius)
                    flat = sub // near.size * width + near[sub % near.size]
                if earlier:
                    xs = xbuf[flat]
                    keep = np.bitwise_count(xs & earlier[0][0]) > earlier[0][1]
                    for mask, tau in earlier[1:]:
                        keep &= np.bitwise_count(xs & mask) > tau
                    flat = flat[keep]
                rest, kk = np.divmod(flat, width)
                ii, io = np.divmod(rest, do)
                kk += k0
                ia = it_ids[(ii + r0) * wi + icols[kk]]
                ib = other_ids[io * wo + pcols[kk]]
                ok = (ia >= 0) & (ib >= 0)
                if swap:
                    sink(ib[ok], ia[ok])
                else:
                    sink(ia[ok], ib[ok])


def _search_tasks(
    q: np.ndarray, r: np.ndarray, blocks: list[_Block], radius: int, workers: int, sink: _Sink
) -> list[Callable[[], None]]:
    """A planned search as independent tasks that hand every (query, ref) pair within
    ``radius`` to ``sink`` once."""
    tasks: list[Callable[[], None]] = []
    earlier: list[tuple[np.uint64, int]] = []
    for blk in blocks:
        lq = _layers(q, blk.q, blk.bounds_q, _PAD_Q)
        lr = _layers(r, blk.r, blk.bounds_r, _PAD_R)
        flips = _flip_masks(blk.width, blk.tau)
        prior = tuple(earlier)
        small: list[Callable[[], None]] = []
        for a in lq:
            for b in lr:
                slots = flips.size * min(a.keys.size, b.keys.size) * a.vals.size * b.vals.size
                slots //= (a.keys.size + 1) * (b.keys.size + 1)
                parts = max(1, min(4 * workers, slots // _TASK_SLOTS))
                if parts == 1:
                    # small layer pairs of a block run together (a task costs a thread hand-off)
                    small.append(functools.partial(_key_major, a, b, flips, radius, prior, sink))
                    continue
                share = -(-flips.size // parts)
                for f0 in range(0, flips.size, share):
                    part = flips[f0 : f0 + share]
                    tasks.append(functools.partial(_key_major, a, b, part, radius, prior, sink))
        if small:
            tasks.append(functools.partial(_run_tasks, small, 1))
        earlier.append((np.uint64(((1 << blk.width) - 1) << blk.shift), blk.tau))
    return tasks


def _brute_pairs(
    q: np.ndarray, r: np.ndarray, radius: int, tile: int, sink: _Sink
) -> list[Callable[[], None]]:
    """Tiled XOR + popcount over every pair, as tasks over blocks of queries."""
    tile = max(1, min(tile, r.size))
    rows = max(1, (1 << 16) // tile)

    def work(q0: int, q1: int) -> None:
        x = np.empty((q1 - q0, tile), np.uint64)
        c = np.empty((q1 - q0, tile), np.uint8)
        for r0 in range(0, r.size, tile):
            r1 = min(r0 + tile, r.size)
            xs, cs = x[:, : r1 - r0], c[:, : r1 - r0]
            np.bitwise_xor(q[q0:q1, None], r[None, r0:r1], out=xs)
            np.bitwise_count(xs, out=cs)
            # nearly every block has no pair: a min() is cheaper than a mask + nonzero
            if cs.min() <= radius:
                qi, ri = np.nonzero(cs <= radius)
                sink(qi + q0, ri + r0)

    return [functools.partial(work, s, min(s + rows, q.size)) for s in range(0, q.size, rows)]


def hamming_pairs(
    query: np.ndarray,
    ref: np.ndarray,
    *,
    radius: int,
    tile: int = 4096,
    workers: int = 2,
    method: str = "auto",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs (query index, ref index, distance) with Hamming distance <= ``radius``, sorted
    by query then ref. Exact.

    ``method``: ``"brute"`` tiles XOR + ``np.bitwise_count`` over every pair (``tile`` refs by a
    few queries); ``"pigeonhole"`` compares only hashes that agree on some 12- to 16-bit block up
    to a few flipped bits (multi-index hashing: far fewer pairs at small radii); ``"auto"``
    picks the one expected to be cheaper. Both run on ``workers`` threads.

    Examples
    --------
    >>> q = np.array([0b1011, 0], dtype=np.uint64)
    >>> hamming_pairs(q, np.array([0b0011], dtype=np.uint64), radius=1)
    (array([0]), array([0]), array([1], dtype=uint8))
    """
    if method not in ("auto", "brute", "pigeonhole"):
        raise ValueError(f"unknown method {method!r}; expected auto, brute or pigeonhole")
    q, r = _as_u64(query), _as_u64(ref)
    if q.size == 0 or r.size == 0 or radius < 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint8)
    found: list[np.ndarray] = []
    lock = threading.Lock()

    def sink(qi: np.ndarray, ri: np.ndarray) -> None:
        pair = qi.astype(np.int64) * r.size + ri
        with lock:
            found.append(pair)

    tasks = None
    brute = _BRUTE_PAIR_COST * q.size * r.size
    if method == "pigeonhole" or (method == "auto" and radius < 64 and brute > _PLAN_MIN):
        blocks, cost = _plan_search(q, r, radius, math.inf if method == "pigeonhole" else brute)
        if cost < math.inf:
            tasks = _search_tasks(q, r, blocks, radius, workers, sink)
    _run_tasks(tasks if tasks is not None else _brute_pairs(q, r, radius, tile, sink), workers)
    # the pigeonhole search may report a pair once per block it shares
    pair = np.unique(np.concatenate([np.zeros(0, np.int64), *found]))
    qi, ri = pair // r.size, pair % r.size
    return qi, ri, np.bitwise_count(q[qi] ^ r[ri])


class BestMatches(NamedTuple):
    """Per query: ``ref`` index of the best eligible reference (-1 if none), its combined
    (pHash + dHash) ``distance`` and ``phash_distance`` (-1 if none), and ``min_distance``, the
    smallest combined distance to any reference, eligible or not, capped at the ``min_cap`` of
    :func:`best_matches` (the cap itself means "this far or farther"; -1 when there are no
    references)."""

    ref: np.ndarray
    distance: np.ndarray
    phash_distance: np.ndarray
    min_distance: np.ndarray


class _Nearest:
    """Per query, the running minimum of the combined distance (capped) and of (combined
    distance, ref) over eligible pairs, fed pairs from worker threads."""

    def __init__(
        self, hashes: tuple[np.ndarray, ...], max_distance: int, max_phash: int, cap: int
    ) -> None:
        self.qp, self.qd, self.rp, self.rd = hashes
        self.max_distance, self.max_phash, self.cap = max_distance, max_phash, cap
        self.min_d = np.full(self.qp.size, cap, np.int64)
        # combined distance in the high bits, ref index in the low: the minimum is the best
        self.best = np.full(self.qp.size, np.iinfo(np.int64).max, np.int64)
        self.lock = threading.Lock()

    def add(self, qi: np.ndarray, ri: np.ndarray, found_below: int = -1) -> None:
        """Take the pairs ``(qi, ri)``, except those with pHash <= ``found_below`` (another
        search hands those on)."""
        ph = np.bitwise_count(self.qp[qi] ^ self.rp[ri]).astype(np.int64)
        if found_below >= 0:
            new = ph > found_below
            qi, ri, ph = qi[new], ri[new], ph[new]
        comb = ph + np.bitwise_count(self.qd[qi] ^ self.rd[ri])
        ok = (comb <= self.max_distance) & (ph <= self.max_phash)
        # the eligible ones count towards the nearest distance through ``best``
        low = (comb < self.cap) & ~ok
        key = (comb[ok] << 32) | ri[ok]
        with self.lock:
            np.minimum.at(self.min_d, qi[low], comb[low])
            np.minimum.at(self.best, qi[ok], key)

    def result(self, qp: np.ndarray, rp: np.ndarray) -> BestMatches:
        found = self.best < np.iinfo(np.int64).max
        ref = np.where(found, self.best & 0xFFFF_FFFF, -1)
        dist = np.where(found, self.best >> 32, -1).astype(np.int32)
        ph = np.full(qp.size, -1, np.int32)
        ph[found] = np.bitwise_count(qp[found] ^ rp[ref[found]])
        low = np.where(found, np.minimum(self.min_d, dist), self.min_d)
        return BestMatches(ref, dist, ph, low.astype(np.int32))


def _brute_best(nearest: _Nearest, tile: int) -> list[Callable[[], None]]:
    """Every pair compared: tasks over blocks of queries that feed ``nearest`` directly."""
    qp, qd, rp, rd = nearest.qp, nearest.qd, nearest.rp, nearest.rd
    nq, nr = qp.size, rp.size
    tile = max(1, min(tile, nr))
    rows = max(1, (1 << 17) // tile)

    def work(q0: int, q1: int) -> None:
        m = q1 - q0
        x = np.empty((m, tile), np.uint64)
        p = np.empty((m, tile), np.uint8)
        d = np.empty((m, tile), np.uint8)
        low = np.full(m, 255, np.uint8)
        best = np.full(m, np.iinfo(np.int64).max, np.int64)
        for r0 in range(0, nr, tile):
            r1 = min(r0 + tile, nr)
            xs, ps, ds = x[:, : r1 - r0], p[:, : r1 - r0], d[:, : r1 - r0]
            np.bitwise_xor(qp[q0:q1, None], rp[None, r0:r1], out=xs)
            np.bitwise_count(xs, out=ps)
            np.bitwise_xor(qd[q0:q1, None], rd[None, r0:r1], out=xs)
            np.bitwise_count(xs, out=ds)
            np.add(ds, ps, out=ds)
            tile_low = ds.min(axis=1)
            np.minimum(low, tile_low, out=low)
            # pairs in the band are rare: look only at the rows that have one
            rows_in = np.flatnonzero(tile_low <= nearest.max_distance)
            if rows_in.size:
                e = np.where(ps[rows_in] <= nearest.max_phash, ds[rows_in], 255)
                j = e.argmin(axis=1)  # the first on ties
                v = e[np.arange(rows_in.size), j].astype(np.int64)
                ok = v <= nearest.max_distance
                key = (v[ok] << 32) | (r0 + j[ok])
                best[rows_in[ok]] = np.minimum(best[rows_in[ok]], key)
        # each task owns its rows of the result
        nearest.min_d[q0:q1] = np.minimum(low, nearest.cap)
        nearest.best[q0:q1] = best

    return [functools.partial(work, s, min(s + rows, nq)) for s in range(0, nq, rows)]


def best_matches(
    query_phash: np.ndarray,
    query_dhash: np.ndarray,
    ref_phash: np.ndarray,
    ref_dhash: np.ndarray,
    *,
    max_distance: int = 28,
    max_phash: int = MAX_PHASH_DISTANCE,
    min_cap: int | None = None,
    tile: int = 4096,
    workers: int = 2,
    method: str = "auto",
) -> BestMatches:
    """For each query the reference with the smallest combined (pHash + dHash) distance among
    those with combined <= ``max_distance`` and pHash <= ``max_phash`` (the lowest index on
    ties). Exact.

    ``min_distance`` is the nearest combined distance capped at ``min_cap`` (default
    ``max_distance + 1``: "no reference within the match band"); ``min_cap=129`` gives it
    uncapped, which needs every pair compared. ``method``: ``"pigeonhole"`` finds by
    multi-index hashing every pair with pHash <= ``max_phash`` or dHash <=
    ``min_cap - max_phash - 2``, which holds every match and every pair below the cap;
    ``"brute"`` compares every pair; ``"auto"`` picks the one expected to be cheaper.

    Examples
    --------
    >>> q = np.array([0b1111], dtype=np.uint64)
    >>> bm = best_matches(q, q, np.array([0, 0b111], np.uint64), np.array([0, 0b1], np.uint64))
    >>> bm.ref.tolist(), bm.distance.tolist(), bm.phash_distance.tolist(), bm.min_distance.tolist()
    ([1], [4], [1], [4])
    """
    if method not in ("auto", "brute", "pigeonhole"):
        raise ValueError(f"unknown method {method!r}; expected auto, brute or pigeonhole")
    cap = max_distance + 1 if min_cap is None else min_cap
    qp, qd, rp, rd = (_as_u64(a) for a in (query_phash, query_dhash, ref_phash, ref_dhash))
    nq, nr = qp.size, rp.size
    if nq == 0 or nr == 0:
        none = np.full(nq, -1, np.int32)
        return BestMatches(np.full(nq, -1, np.int64), none, none.copy(), none.copy())
    if method == "brute":
        nearest = _Nearest((qp, qd, rp, rd), max_distance, max_phash, cap)
        _run_tasks(_brute_best(nearest, tile), workers)
        return nearest.result(qp, rp)
    # identical photos (a marketplace reuses them a lot) are searched once: queries by their
    # distinct (pHash, dHash), references by the first of each (the lowest index wins ties)
    q_first, q_of = _distinct(qp, qd)
    r_first, _ = _distinct(rp, rd)
    uqp, uqd, urp, urd = qp[q_first], qd[q_first], rp[r_first], rd[r_first]
    nearest = _Nearest((uqp, uqd, urp, urd), max_distance, max_phash, cap)
    # a pair found by neither search has pHash > a and dHash > b, so combined >= a + b + 2 =
    # cap; pHash <= a also holds every eligible pair
    a = max(-1, min(max_phash, max_distance, 64))
    b = min(cap - a - 2, 64)
    tasks = None
    limit = math.inf if method == "pigeonhole" else _BRUTE_COST * uqp.size * urp.size
    if a < 64 and b < 64 and (method == "pigeonhole" or limit > _PLAN_MIN):
        p_blocks, p_cost = _plan_search(uqp, urp, a, limit)
        d_blocks, d_cost = _plan_search(uqd, urd, b, limit - p_cost)
        if p_cost + d_cost < limit:
            tasks = _search_tasks(uqp, urp, p_blocks, a, workers, nearest.add)
            # the pHash search hands on every pair with pHash <= a
            only_new = functools.partial(nearest.add, found_below=a if p_blocks else -1)
            tasks += _search_tasks(uqd, urd, d_blocks, b, workers, only_new)
    _run_tasks(tasks if tasks is not None else _brute_best(nearest, tile), workers)
    found = nearest.result(uqp, urp)
    ref = np.where(found.ref >= 0, r_first[found.ref], -1)[q_of]
    return BestMatches(ref, *(col[q_of] for col in found[1:]))


def _distinct(p: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first index of each distinct ``(p, d)`` pair, ascending, and the position of every
    item's pair among them."""
    order = np.lexsort((d, p))
    ps, ds = p[order], d[order]
    new = np.ones(p.size, bool)
    new[1:] = (ps[1:] != ps[:-1]) | (ds[1:] != ds[:-1])
    # the stable sort puts the lowest index of each group first
    first = order[new]
    rank = np.argsort(first)
    group = np.empty(p.size, np.intp)
    group[order] = np.cumsum(new) - 1
    where = np.empty(first.size, np.intp)
    where[rank] = np.arange(first.size)
    return first[rank], where[group]


# ---------------------------------------------------------------- the filter


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


def copied_fake_message(fake: str, official: str, distance: int) -> str:
    """How a known fake that copies an official photo is reported."""
    return (
        f"known fake {fake} is a near copy of official photo {official} (distance {distance}): "
        "it cannot tell a counterfeit from the brand's own photo and is not used as evidence"
    )


def _one_in(chance: float) -> str:
    """How often ``chance`` comes: "once in 2,400", "once in 3.1 million", "less than once
    in a trillion"."""
    if not chance > 0:
        return "never"
    odds = 1.0 / chance
    if odds >= 1e12:
        return "less than once in a trillion"
    for size, word in ((1e9, "billion"), (1e6, "million")):
        if odds >= size:
            x = odds / size
            return f"once in {x:.1f} {word}" if x < 10 else f"once in {x:,.0f} {word}"
    return f"once in {odds:,.0f}"


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
        for the registry's number of reference hashes (see :mod:`filters.image_null`)
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
            f"unrelated photo comes this near {_one_in(chance)})"
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
            for c, v in zip(
                MATCH_SCHEMA, (ref, winner, variant, int(bm.distance[j])), strict=True
            ):
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
            from filters.textops import strip_chars  # its regex module is slow to import

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


__all__ = [
    "KIND_SCORE",
    "VARIANTS",
    "BestMatches",
    "ImageFilter",
    "ImageRejected",
    "best_matches",
    "build_image_cache",
    "copied_fake_message",
    "hamming_pairs",
    "hash_sources",
    "load_image_cache",
    "mirror_distances",
    "mirrored_dhash",
    "mirrored_phash",
    "near_copy_fakes",
    "open_image",
    "phash_dhash",
    "reference_hashes",
]
