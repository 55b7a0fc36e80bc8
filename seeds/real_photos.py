"""Real photographs for measuring the image filter on material the project does not make.

The sample photographs shipped by scikit-image (``pip install scikit-image``, a test and
benchmark dependency), matplotlib and scikit-learn, their crops, and the portraits of
scikit-image's subset of Labeled Faces in the Wild (photographs of one kind, alike in framing:
"similar material", as product photos of one category are).
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

#: scikit-image's bundled photographs (``skimage.data`` functions; no download). The drawn and
#: synthetic images (colour wheel, logos, chessboards, phantom, horse silhouette) are left out,
#: and so is the right half of the stereo motorcycle pair (a near copy of the left)
SKIMAGE_PHOTOS = (
    "astronaut",
    "brick",
    "camera",
    "cell",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "microaneurysms",
    "moon",
    "page",
    "retina",
    "rocket",
    "text",
)


def _skimage_data() -> object:
    try:
        import skimage.data
    except ImportError:
        raise RuntimeError(
            "the real-photograph measurements need scikit-image: pip install scikit-image"
        ) from None
    return skimage.data


def sample_photographs() -> dict[str, Image.Image]:
    """Every real photograph the installed libraries ship, by name, as RGB or L images."""
    data = _skimage_data()
    out: dict[str, Image.Image] = {}
    for name in SKIMAGE_PHOTOS:
        out[name] = Image.fromarray(np.asarray(getattr(data, name)()))
    left, _, _ = data.stereo_motorcycle()  # type: ignore[attr-defined]
    out["motorcycle"] = Image.fromarray(np.asarray(left))
    import matplotlib
    import sklearn

    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    out["grace_hopper"] = Image.open(hopper).convert("RGB")
    for name in ("china", "flower"):
        path = Path(sklearn.__file__).parent / "datasets" / "images" / f"{name}.jpg"
        out[name] = Image.open(path).convert("RGB")
    return out


def portraits(n: int = 100, side: int = 100) -> list[Image.Image]:
    """The ``n`` (at most 100) face photographs of scikit-image's LFW subset (25x25 grayscale
    crops of different photographs), enlarged to ``side`` pixels."""
    faces = np.asarray(_skimage_data().lfw_subset())[: min(n, 100)]  # type: ignore[attr-defined]
    return [
        Image.fromarray(np.rint(f * 255).astype(np.uint8), "L").resize(
            (side, side), Image.Resampling.BICUBIC
        )
        for f in faces
    ]


def random_crops(
    photo: Image.Image, n: int, rng: random.Random, *, min_share: float = 0.3
) -> Iterator[tuple[tuple[int, int, int, int], Image.Image]]:
    """``n`` crops of ``photo`` (box, image), one at a time: sides of ``min_share`` to all of
    the photo's, in aspect ratios from 0.7 to 1.4, anywhere in it, shown at 256, 400 or 640
    pixels at most."""
    w, h = photo.size
    for _ in range(n):
        share = rng.uniform(min_share, 1.0)
        aspect = rng.uniform(0.7, 1.4)
        cw = max(24, min(w, int(w * share * aspect**0.5)))
        ch = max(24, min(h, int(h * share / aspect**0.5)))
        x, y = rng.randrange(0, w - cw + 1), rng.randrange(0, h - ch + 1)
        box = (x, y, x + cw, y + ch)
        crop = photo.crop(box)
        crop.thumbnail((rng.choice([256, 400, 640]),) * 2)
        yield box, crop


def jpeg_bytes(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def distance_counts(
    query: tuple[np.ndarray, np.ndarray],
    ref: tuple[np.ndarray, np.ndarray],
    pairs: np.ndarray | None = None,
    *,
    query_group: Sequence[int] | np.ndarray,
    ref_group: Sequence[int] | np.ndarray,
    block: int = 256,
) -> np.ndarray:
    """How many (query, reference) pairs of different groups lie at each combined distance
    0..128: ``query`` and ``ref`` are (pHash, dHash) uint64 arrays; a pair of the same group
    (crops of one photograph) is not counted. ``pairs``: counts to add to."""
    qp, qd = (np.asarray(a, dtype=np.uint64) for a in query)
    rp, rd = (np.asarray(a, dtype=np.uint64) for a in ref)
    qg, rg = np.asarray(query_group), np.asarray(ref_group)
    out = np.zeros(129, np.int64) if pairs is None else pairs
    for q0 in range(0, qp.size, block):
        sl = slice(q0, q0 + block)
        dist = np.bitwise_count(qp[sl, None] ^ rp[None, :]).astype(np.int16)
        dist += np.bitwise_count(qd[sl, None] ^ rd[None, :])
        other = qg[sl, None] != rg[None, :]
        out += np.bincount(dist[other], minlength=129)
    return out


__all__ = [
    "SKIMAGE_PHOTOS",
    "distance_counts",
    "jpeg_bytes",
    "portraits",
    "random_crops",
    "sample_photographs",
]
