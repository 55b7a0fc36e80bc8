"""Image filter: does the listing photo match a known fake or an official product photo?

Perceptual hashes compatible with the ``imagehash`` library (64-bit pHash and dHash, packed into
``uint64`` in the order of imagehash's hex string) are computed for listing photos and compared
with the registry's reference photos by Hamming distance. The reference side is augmented (8
orientations, crops of 5/10/15% per side) so a listing needs one hash while mirrored, rotated and
cropped copies still match.

Score: a match (pHash + dHash distance <= ``max_distance`` and pHash <= 14) to a known fake gives
``0.95 - 0.01 * max(0, d - 10)``; a match to an official photo only gives 0.35 (authorised
resellers use official photos too); no match gives 0; no usable image gives null.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np
import polars as pl
from PIL import Image, ImageOps, UnidentifiedImageError

from filters.base import Filter, check_is_fitted
from filters.textops import strip_chars
from pipelines.manifest import file_digest, write_bytes_atomic

if TYPE_CHECKING:
    from typing import Self

    from pipelines.registry import Registry

#: an image given as a path, raw file bytes or an already opened image
ImageSource = str | os.PathLike[str] | bytes | Image.Image

#: pHash distance above which two photos never match, whatever their dHash distance
MAX_PHASH_DISTANCE = 14
#: standard deviation of the 32x32 grayscale below which an image is too flat to hash
FLAT_STD = 2.0
#: DCT coefficients smaller than this are floating-point noise; zeroing them makes the batched
#: DCT agree bit for bit with scipy's FFT-based one (flat and ramp images otherwise differ)
DCT_EPS = 1e-6
#: side the JPEG decoder is asked to reduce to in fast mode (it picks a scale >= this)
DRAFT_SIDE = 64

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
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageRejected(f"file not found: {os.fspath(source)}") from None
    except IsADirectoryError:
        raise ImageRejected(f"not a file: {os.fspath(source)}") from None
    except OSError as exc:
        raise ImageRejected(f"cannot read {os.fspath(source)}: {exc.strerror or exc}") from None
    return data


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
        img = _decode(data, max_pixels, draft)
    # hostile EXIF must not make an otherwise good photo unusable: then keep it as stored
    with contextlib.suppress(Exception):
        img = ImageOps.exif_transpose(img) or img
    try:
        return _to_rgb_or_l(img)
    except Exception as exc:
        raise ImageRejected(f"cannot convert image mode {img.mode}: {exc}") from None


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


def _small(gray: Image.Image, box: tuple[float, float, float, float] | None = None) -> Any:
    lanczos = Image.Resampling.LANCZOS
    return (
        np.asarray(gray.resize((32, 32), lanczos, box=box)),
        np.asarray(gray.resize((9, 8), lanczos, box=box)),
    )


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
            a, b = _small(gray)
            return _Prepared([a], [b], ["original"], None)
        s32, s98, names = [], [], []
        for name, ops in ORIENTATIONS:
            g = gray
            for op in ops:
                g = g.transpose(op)
            a, b = _small(g)
            s32.append(a)
            s98.append(b)
            names.append(name)
        mirrored = gray.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        w, h = gray.size
        for share in CROPS:
            box = (w * share, h * share, w * (1 - share), h * (1 - share))
            for prefix, g in (("", gray), ("mirrored+", mirrored)):
                a, b = _small(g, box)
                s32.append(a)
                s98.append(b)
                names.append(f"{prefix}cropped {share:.0%}")
        return _Prepared(s32, s98, names, None)
    except ImageRejected as exc:
        return _Prepared([], [], [], str(exc))
    except Exception as exc:  # any decoder failure on hostile input is a rejection, not a crash
        return _Prepared([], [], [], f"cannot decode image: {type(exc).__name__}: {exc}")


def _prepare_star(args: tuple[Any, ...]) -> _Prepared:
    return _prepare(*args)


def _executor(workers: int, processes: bool) -> Executor | None:
    if workers <= 1:
        return None
    if processes:
        import multiprocessing

        # polars runs threads of its own: forking it can deadlock, spawn a clean interpreter
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    return ThreadPoolExecutor(workers)


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
    """Chunks of prepared images, in order; only one chunk of work is in flight at a time."""
    pool = _executor(workers, processes)
    mapper: Callable[..., Iterator[_Prepared]]
    if pool is None:
        mapper = map
    else:
        per = max(1, chunk // (4 * workers)) if processes else 1
        mapper = lambda f, xs: pool.map(f, xs, chunksize=per)  # noqa: E731
    try:
        batch: list[tuple[Any, ...]] = []
        for src in sources:
            batch.append((src, root, fast, max_pixels, augment))
            if len(batch) >= chunk:
                yield list(mapper(_prepare_star, batch))
                batch = []
        if batch:
            yield list(mapper(_prepare_star, batch))
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

    ``fast`` decodes JPEGs at reduced size (pHash drifts by ~0.3 bits on average, at most ~6);
    ``fast=False`` is bit-identical to ``imagehash``. Decoding runs on ``workers`` threads
    (Pillow releases the GIL while decoding and resizing) or processes, ``chunk`` images at a time.
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
CACHE_SCHEMA = {
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
    for sha, fast, max_px, variant, ph, dh in frame.iter_rows():
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


def build_image_cache(
    registry: Registry, *, fast: bool = True, workers: int = 2, max_pixels: int = 40_000_000
) -> CacheReport:
    """Hash the registry's official photos and known fakes once into ``CACHE_FILE``.

    Entries are keyed by file content (sha256), so a changed photo is rehashed and an unchanged
    one is reused; the file is replaced atomically.
    """
    path = registry.root / CACHE_FILE
    old = load_image_cache(path)
    images = pl.concat([registry.official_images, registry.known_fakes]).unique(
        "image", maintain_order=True
    )
    shas = [_digest(p) for p in images.get_column("image").to_list()]
    reused = sum(1 for s in shas if s is not None and (s, fast, max_pixels) in old)
    refs = reference_hashes(
        images, fast=fast, workers=workers, max_pixels=max_pixels, cache=old
    )
    hashed_shas = set(refs.get_column("sha256").to_list())
    rows: list[tuple[Any, ...]] = [
        (sha, fast, max_pixels, variant, ph, dh)
        for variant, sha, ph, dh in refs.select("variant", "sha256", "phash", "dhash").rows()
    ]
    unusable = {s for s in shas if s is not None and s not in hashed_shas}
    rows += [(s, fast, max_pixels, None, None, None) for s in sorted(unusable)]
    # entries for other modes (fast/exact) stay valid: keep them
    current = set(shas)
    for (sha, f, m), hashed in old.items():
        if (f, m) != (fast, max_pixels) and sha in current:
            rows += [(sha, f, m, v, ph, dh) for v, ph, dh in hashed] or [
                (sha, f, m, None, None, None)
            ]
    frame = pl.DataFrame(rows, schema=CACHE_SCHEMA, orient="row").unique(maintain_order=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    frame.write_parquet(buf)
    write_bytes_atomic(path, buf.getvalue())
    return CacheReport(path, len(shas), reused, len(shas) - reused, len(unusable))


# ---------------------------------------------------------------- matching


def _as_u64(a: np.ndarray | Sequence[int]) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.uint64).reshape(-1))


def _query_blocks(nq: int, rows: int, workers: int) -> list[tuple[int, int]]:
    return [(s, min(s + rows, nq)) for s in range(0, nq, rows)]


def _run_blocks(
    fn: Callable[[list[tuple[int, int]]], None], blocks: list[tuple[int, int]], workers: int
) -> None:
    """Run ``fn`` over interleaved shares of ``blocks`` (numpy releases the GIL in ufuncs)."""
    if workers <= 1 or len(blocks) < 2:
        fn(blocks)
        return
    shares = [blocks[w::workers] for w in range(workers)]
    with ThreadPoolExecutor(workers) as pool:
        for fut in [pool.submit(fn, s) for s in shares if s]:
            fut.result()


def _brute_pairs(
    q: np.ndarray, r: np.ndarray, radius: int, tile: int, workers: int
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Tiled XOR + popcount over every pair, buffers preallocated per worker."""
    tile = max(1, min(tile, r.size))
    rows = max(1, (1 << 16) // tile)
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    lock = threading.Lock()

    def work(share: list[tuple[int, int]]) -> None:
        xbuf = np.empty((rows, tile), np.uint64)
        cbuf = np.empty((rows, tile), np.uint8)
        local = []
        for q0, q1 in share:
            for r0 in range(0, r.size, tile):
                r1 = min(r0 + tile, r.size)
                x = xbuf[: q1 - q0, : r1 - r0]
                c = cbuf[: q1 - q0, : r1 - r0]
                np.bitwise_xor(q[q0:q1, None], r[None, r0:r1], out=x)
                np.bitwise_count(x, out=c)
                # nearly every block has no pair: a min() is cheaper than a mask + nonzero
                if c.min() <= radius:
                    qi, ri = np.nonzero(c <= radius)
                    local.append((qi + q0, ri + r0, c[qi, ri]))
        with lock:
            found.extend(local)

    _run_blocks(work, _query_blocks(q.size, rows, workers), workers)
    return found


_CHUNKS = 4  # 16-bit chunks of the 64-bit hash
_CHUNK_MASK = np.uint64(0xFFFF)
_CHUNK_POP = np.bitwise_count(np.arange(1 << 16, dtype=np.uint16))


def _pigeonhole_pairs(
    q: np.ndarray, r: np.ndarray, radius: int, block: int = 8192
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None:
    """Pairs within ``radius`` via the pigeonhole principle (multi-index hashing, vectorised).

    Within distance ``radius`` at least one of the four 16-bit chunks differs by at most
    ``radius // 4`` bits, so only references sharing a chunk up to that many flipped bits are
    candidates; each is then verified exactly. Returns None when candidates would not be much
    fewer than all pairs (then brute force is cheaper).
    """
    rc = radius // _CHUNKS
    flips = np.flatnonzero(np.less_equal(_CHUNK_POP, rc)).astype(np.int64)
    expected = _CHUNKS * flips.size * r.size / 65536.0
    if expected > r.size / 8:
        return None
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for j in range(_CHUNKS):
        shift = np.uint64(16 * j)
        rkey = ((r >> shift) & _CHUNK_MASK).astype(np.int64)
        order = np.argsort(rkey, kind="stable")
        counts = np.bincount(rkey, minlength=1 << 16)
        starts = np.cumsum(counts) - counts
        for q0 in range(0, q.size, block):
            q1 = min(q0 + block, q.size)
            qkey = ((q[q0:q1] >> shift) & _CHUNK_MASK).astype(np.int64)
            keys = (qkey[:, None] ^ flips[None, :]).reshape(-1)
            cnt = counts[keys]
            total = int(cnt.sum())
            if total == 0:
                continue
            first = np.cumsum(cnt) - cnt
            pos = np.arange(total) - np.repeat(first - starts[keys], cnt)
            ri = order[pos]
            qi = np.repeat(np.arange(q0, q1).repeat(flips.size), cnt)
            x = q[qi] ^ r[ri]
            d = np.bitwise_count(x)
            keep = d <= radius
            qi, ri, d, x = qi[keep], ri[keep], d[keep], x[keep]
            # a pair is reported by the first chunk that finds it only
            for i in range(j):
                earlier = _CHUNK_POP[((x >> np.uint64(16 * i)) & _CHUNK_MASK).astype(np.int64)]
                later = earlier > rc
                qi, ri, d, x = qi[later], ri[later], d[later], x[later]
            if qi.size:
                found.append((qi, ri, d))
    return found


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
    few queries, buffers preallocated, ``workers`` threads); ``"pigeonhole"`` only verifies pairs
    that share a 16-bit chunk up to ``radius // 4`` flipped bits (far fewer at small radii);
    ``"auto"`` picks pigeonhole when it is expected to be cheaper.

    Examples
    --------
    >>> q = np.array([0b1011, 0], dtype=np.uint64)
    >>> hamming_pairs(q, np.array([0b0011], dtype=np.uint64), radius=1)
    (array([0]), array([0]), array([1], dtype=uint8))
    """
    if method not in ("auto", "brute", "pigeonhole"):
        raise ValueError(f"unknown method {method!r}; expected auto, brute or pigeonhole")
    q, r = _as_u64(query), _as_u64(ref)
    found = None
    if q.size and r.size and method != "brute":
        found = _pigeonhole_pairs(q, r, radius)
    if found is None:
        found = _brute_pairs(q, r, radius, tile, workers) if q.size and r.size else []
    if not found:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint8)
    qi = np.concatenate([f[0] for f in found]).astype(np.int64)
    ri = np.concatenate([f[1] for f in found]).astype(np.int64)
    dist = np.concatenate([f[2] for f in found]).astype(np.uint8)
    order = np.lexsort((ri, qi))
    return qi[order], ri[order], dist[order]


class BestMatches(NamedTuple):
    """Per query: ``ref`` index of the best eligible reference (-1 if none), its combined
    (pHash + dHash) ``distance`` and ``phash_distance``, and ``min_distance``, the smallest
    combined distance to any reference (eligible or not; -1 when there are no references)."""

    ref: np.ndarray
    distance: np.ndarray
    phash_distance: np.ndarray
    min_distance: np.ndarray


def best_matches(
    query_phash: np.ndarray,
    query_dhash: np.ndarray,
    ref_phash: np.ndarray,
    ref_dhash: np.ndarray,
    *,
    max_distance: int = 28,
    max_phash: int = MAX_PHASH_DISTANCE,
    tile: int = 4096,
    workers: int = 2,
) -> BestMatches:
    """For each query the reference with the smallest combined distance among those with
    combined <= ``max_distance`` and pHash <= ``max_phash`` (first one on ties)."""
    qp, qd, rp, rd = (_as_u64(a) for a in (query_phash, query_dhash, ref_phash, ref_dhash))
    nq, nr = qp.size, rp.size
    best = np.full(nq, -1, np.int64)
    best_d = np.full(nq, -1, np.int32)
    best_p = np.full(nq, -1, np.int32)
    min_d = np.full(nq, -1, np.int32)
    if nq == 0 or nr == 0:
        return BestMatches(best, best_d, best_p, min_d)
    tile = max(1, min(tile, nr))
    rows = max(1, (1 << 17) // tile)
    sentinel = 255

    def work(share: list[tuple[int, int]]) -> None:
        xbuf = np.empty((rows, tile), np.uint64)
        pc = np.empty((rows, tile), np.uint8)
        dc = np.empty((rows, tile), np.uint8)
        bad = np.empty((rows, tile), bool)
        for q0, q1 in share:
            m = q1 - q0
            cur_best = np.full(m, -1, np.int64)
            cur_d = np.full(m, sentinel, np.int32)
            cur_min = np.full(m, sentinel, np.int32)
            for r0 in range(0, nr, tile):
                r1 = min(r0 + tile, nr)
                x, p, d, b = (buf[:m, : r1 - r0] for buf in (xbuf, pc, dc, bad))
                np.bitwise_xor(qp[q0:q1, None], rp[None, r0:r1], out=x)
                np.bitwise_count(x, out=p)
                np.bitwise_xor(qd[q0:q1, None], rd[None, r0:r1], out=x)
                np.bitwise_count(x, out=d)
                np.add(d, p, out=d)
                cur_min = np.minimum(cur_min, d.min(axis=1))
                np.greater(p, max_phash, out=b)
                d[b] = sentinel
                arg = d.argmin(axis=1)
                val = d[np.arange(m), arg].astype(np.int32)
                better = val < cur_d
                cur_d = np.where(better, val, cur_d)
                cur_best = np.where(better, arg + r0, cur_best)
            ok = cur_d <= max_distance
            idx = np.where(ok, cur_best, -1)
            best[q0:q1] = idx
            best_d[q0:q1] = np.where(ok, cur_d, -1)
            pd = np.bitwise_count(qp[q0:q1] ^ rp[np.maximum(idx, 0)]).astype(np.int32)
            best_p[q0:q1] = np.where(ok, pd, -1)
            min_d[q0:q1] = cur_min

    _run_blocks(work, _query_blocks(nq, rows, workers), workers)
    return BestMatches(best, best_d, best_p, min_d)


# ---------------------------------------------------------------- the filter


class ImageFilter(Filter):
    """Listing photos that match a known fake (strong) or an official photo (weak).

    Parameters
    ----------
    images_root : directory that relative image paths are resolved in; paths leaving it are
        refused. ``None``: paths are used as they are.
    fast : decode JPEGs at reduced size (about 4x faster; pHash drifts by ~0.3 bits on average)
    workers : decoding threads
    max_pixels : images declaring more pixels are refused before decoding
    max_distance : largest pHash + dHash distance that counts as a match (pHash must also be
        <= 14)

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
    }

    def __init__(
        self,
        *,
        images_root: str | None = None,
        fast: bool = True,
        workers: int = 2,
        max_pixels: int = 40_000_000,
        max_distance: int = 28,
    ) -> None:
        self.images_root = images_root
        self.fast = fast
        self.workers = workers
        self.max_pixels = max_pixels
        self.max_distance = max_distance

    def fit(self, registry: Registry) -> Self:
        if not 0 <= self.max_distance <= 128:
            raise ValueError("max_distance must be between 0 and 128")
        opts: dict[str, Any] = {
            "fast": self.fast,
            "workers": self.workers,
            "max_pixels": self.max_pixels,
            # hashes from ``fakestop registry build``, checked against each file's content
            "cache": load_image_cache(registry.root / CACHE_FILE),
        }
        self.official_ = reference_hashes(registry.official_images, **opts)
        self.fakes_ = reference_hashes(registry.known_fakes, **opts)
        return self

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
        distinct = (
            listings.select("__image_key").collect().get_column("__image_key").drop_nulls()
        )
        return listings, distinct.unique(maintain_order=True)

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
        found: dict[str, tuple[BestMatches, pl.DataFrame]] = {}
        for kind, refs in (("fake", self.fakes_), ("official", self.official_)):
            if refs.height:
                found[kind] = (
                    best_matches(
                        qp[ok],
                        qd[ok],
                        refs.get_column("phash").to_numpy(),
                        refs.get_column("dhash").to_numpy(),
                        max_distance=self.max_distance,
                        workers=self.workers,
                    ),
                    refs,
                )
        score: list[float | None] = [None] * n
        reasons: list[list[str]] = [[] for _ in range(n)]
        brand: list[str | None] = [None] * n
        dist: dict[str, list[int | None]] = {"fake": [None] * n, "official": [None] * n}
        rejected = hashed.get_column("reason").to_list()
        pos = np.flatnonzero(ok)
        for i, why in enumerate(rejected):
            if why is not None:
                reasons[i].append(f"image not usable: {why}")
        for j, i in enumerate(pos.tolist()):
            score[i] = 0.0
            for kind, (bm, refs) in found.items():
                dist[kind][i] = int(bm.min_distance[j])
                r = int(bm.ref[j])
                if r < 0:
                    continue
                ref, ref_brand, variant = refs.row(r)[:3]
                note = "" if variant == "original" else f", {variant}"
                label = "known fake" if kind == "fake" else "official photo"
                reasons[i].append(
                    f"image matches {label} {ref} (pHash {int(bm.phash_distance[j])} bits{note})"
                )
                d = int(bm.distance[j])
                if kind == "fake":
                    score[i] = max(0.95 - 0.01 * max(0, d - 10), 0.0)
                    brand[i] = ref_brand
                elif brand[i] is None:
                    score[i] = max(score[i] or 0.0, 0.35)
                    brand[i] = ref_brand
        return pl.DataFrame(
            {
                "__image_key": keys,
                "image_score": score,
                "image_reasons": reasons,
                "image_official_distance": dist["official"],
                "image_fake_distance": dist["fake"],
                "image_brand": brand,
            },
            schema={
                "__image_key": keys.dtype,
                "image_score": pl.Float64,
                "image_reasons": pl.List(pl.String),
                "image_official_distance": pl.Int32,
                "image_fake_distance": pl.Int32,
                "image_brand": pl.String,
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
        if keys is None or (self.official_.height == 0 and self.fakes_.height == 0):
            # nothing to compare with: the signal does not apply
            return keyed.with_columns(
                pl.lit(None, pl.Float64).alias("image_score"),
                pl.lit([], pl.List(pl.String)).alias("image_reasons"),
                pl.lit(None, pl.Int32).alias("image_official_distance"),
                pl.lit(None, pl.Int32).alias("image_fake_distance"),
                present.alias("image_present"),
                pl.lit(None, pl.String).alias("image_brand"),
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
            image = str(image) if strip_chars(str(image)) != "" else None
        out: dict[str, Any] = {
            "image_score": None,
            "image_reasons": [],
            "image_official_distance": None,
            "image_fake_distance": None,
            "image_present": image is not None,
            "image_brand": None,
        }
        if image is None or (self.official_.height == 0 and self.fakes_.height == 0):
            return out
        dtype = pl.Binary if isinstance(image, bytes) else pl.String
        found = self.image_matches(pl.Series("__image_key", [image], dtype=dtype))
        out.update(found.drop("__image_key").row(0, named=True))
        out["image_reasons"] = list(out["image_reasons"] or [])
        return out


__all__ = [
    "BestMatches",
    "ImageFilter",
    "ImageRejected",
    "best_matches",
    "build_image_cache",
    "hamming_pairs",
    "hash_sources",
    "load_image_cache",
    "open_image",
    "phash_dhash",
    "reference_hashes",
]
