"""Reading listing photos safely: paths kept inside the images directory, a size bound before
decoding, EXIF orientation, and reduced-size JPEG decoding.
"""

from __future__ import annotations

import io
import os
import stat
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, UnidentifiedImageError

from filters.image.policy import ESCAPE_REASON

if TYPE_CHECKING:
    pass
#: an image given as a path, raw file bytes or an already opened image
ImageSource = str | os.PathLike[str] | bytes | Image.Image


#: side the JPEG decoder is asked to reduce to in fast mode (it picks a scale >= this)
DRAFT_SIDE = 64


#: largest image file read; a product photo is a few MB, and a larger file (or a device such as
#: /dev/zero) must not be read into memory before its header is even checked
MAX_IMAGE_BYTES = 64 * 2**20


# warnings filters are process-global: serialise the (cheap, header-only) open that may warn
_OPEN_LOCK = threading.Lock()


class ImageRejected(ValueError):
    """An image that cannot be used; ``str(exc)`` is a human-readable reason."""


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
