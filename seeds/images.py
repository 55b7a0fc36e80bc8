"""Photos for the sample marketplace: a registry with official photos and known fakes, and
listing photos that reuse them the way counterfeit sellers do (cropped, mirrored, recompressed,
watermarked) next to genuine sellers' own photos.

The photos are procedurally drawn (background, shapes, caption), so every photo is distinct and
the demo needs no downloads.
"""

from __future__ import annotations

import io
import random
import shutil
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from pipelines.registry import Registry

#: listing kinds (seeds.marketplace) and how their photos are chosen:
#: fakes often reuse a removed fake's photo or a stolen official one; authorised and used
#: listings of the brand sometimes show the official photo; everything else has its own photo
FAKE_PHOTO = {"known_fake": 0.35, "official": 0.30}
GENUINE_OFFICIAL = {
    "genuine_authorised": 0.5,
    "genuine_sale": 0.3,
    "genuine_used": 0.15,
    "genuine_refurbished": 0.3,
}


def product_photo(seed: int, size: int = 256) -> Image.Image:
    """A procedurally drawn product photo: background, 3-8 shapes and a caption."""
    rnd = random.Random(seed)

    def colour() -> tuple[int, int, int]:
        return (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256))

    if rnd.random() < 0.5:  # vertical gradient background
        a, b = np.array(colour(), float), np.array(colour(), float)
        t = np.linspace(0.0, 1.0, size)[:, None, None]
        rows = (a * (1 - t) + b * t).astype(np.uint8)
        img = Image.fromarray(np.broadcast_to(rows, (size, size, 3)).copy(), "RGB")
    else:
        img = Image.new("RGB", (size, size), colour())
    draw = ImageDraw.Draw(img)
    for _ in range(rnd.randint(3, 8)):
        x0, y0 = rnd.randrange(size), rnd.randrange(size)
        w, h = rnd.randint(size // 10, size // 2), rnd.randint(size // 10, size // 2)
        box = (x0 - w // 2, y0 - h // 2, x0 + w // 2, y0 + h // 2)
        kind = rnd.randrange(3)
        if kind == 0:
            draw.ellipse(box, fill=colour())
        elif kind == 1:
            draw.rectangle(box, fill=colour())
        else:
            pts = [(rnd.randrange(size), rnd.randrange(size)) for _ in range(rnd.randint(3, 6))]
            draw.polygon(pts, fill=colour())
    draw.text((size // 10, size * 8 // 10), f"ITEM {seed}", fill=colour(), font_size=size // 10)
    return img


def reuse(img: Image.Image, rng: random.Random) -> Image.Image:
    """How a seller reuses someone else's photo: crop, mirror, slight rotation, rescale,
    brightness, a border and/or a watermark (recompression happens when it is saved)."""
    w, h = img.size
    if rng.random() < 0.2:
        img = img.rotate(
            rng.uniform(-2.0, 2.0), resample=Image.Resampling.BILINEAR, fillcolor="white"
        )
    if rng.random() < 0.6:
        c = rng.uniform(0.03, 0.12)
        img = img.crop((int(w * c), int(h * c), int(w * (1 - c)), int(h * (1 - c))))
    if rng.random() < 0.4:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < 0.5:
        side = rng.choice([200, 300, 400])
        img = img.resize((side, side), Image.Resampling.BILINEAR)
    if rng.random() < 0.2:
        img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.85, 1.15))
    if rng.random() < 0.15:
        img = ImageOps.expand(img, border=max(2, img.size[0] // 40), fill="white")
    if rng.random() < 0.3:
        img = img.copy()
        ImageDraw.Draw(img).text((4, 4), "best deal", fill=(255, 255, 255))
    return img


def _jpeg(img: Image.Image, path: Path, quality: int) -> None:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    path.write_bytes(buf.getvalue())


def sample_registry(
    base: Registry,
    out: Path,
    brands: list[str],
    *,
    seed: int = 0,
    official_per_brand: int = 2,
    fakes_per_brand: int = 2,
) -> Path:
    """Copy ``base`` to ``out`` and add official photos and known fakes for ``brands``."""
    out.mkdir(parents=True, exist_ok=True)
    for name in ("brands.csv", "names.csv", "lexicon.toml", "common_words.txt"):
        src = base.root / name
        if src.is_file():
            shutil.copyfile(src, out / name)
    (out / "official").mkdir(exist_ok=True)
    (out / "fakes").mkdir(exist_ok=True)
    official, fakes = ["image,brand"], ["image,brand"]
    for b, brand in enumerate(brands):
        slug = "".join(ch if ch.isalnum() else "_" for ch in brand.lower())
        for i in range(official_per_brand):
            rel = f"official/{slug}_{i}.jpg"
            _jpeg(product_photo(_photo_seed(seed, 1, b, i)), out / rel, 92)
            official.append(f'{rel},"{brand}"')
        for i in range(fakes_per_brand):
            rel = f"fakes/{slug}_{i}.jpg"
            _jpeg(product_photo(_photo_seed(seed, 2, b, i)), out / rel, 80)
            fakes.append(f'{rel},"{brand}"')
    (out / "official_images.csv").write_text("\n".join(official) + "\n", encoding="utf-8")
    (out / "known_fakes.csv").write_text("\n".join(fakes) + "\n", encoding="utf-8")
    return out


def _photo_seed(seed: int, family: int, a: int, b: int) -> int:
    return ((seed * 7 + family) * 1_000_003 + a) * 1_009 + b


def attach_images(
    listings: pl.DataFrame,
    registry: Registry,
    images_dir: Path,
    *,
    seed: int = 0,
    share: float = 0.5,
) -> pl.DataFrame:
    """Give a ``share`` of the listings a photo in ``images_dir`` and add the ``image`` column
    (path relative to ``images_dir``, null without a photo).

    Reused photos come from ``registry``'s official photos and known fakes of the listing's
    brand (``brand`` column, or the brand the generator drew for fakes, ``true_brand``).
    """
    images_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    official = _by_brand(registry.official_images)
    fakes = _by_brand(registry.known_fakes)
    brand_col = "true_brand" if "true_brand" in listings.columns else "brand"
    paths: list[str | None] = []
    for row in listings.select("listing_id", "kind", "label", brand_col).iter_rows():
        listing_id, kind, label, brand = row
        if rng.random() >= share:
            paths.append(None)
            continue
        source = _pick_source(kind, int(label or 0), brand, official, fakes, rng)
        if source is None:
            img = product_photo(_photo_seed(seed, 3, len(paths), 0))
        else:
            with Image.open(source) as opened:
                img = reuse(opened.convert("RGB"), rng)
        rel = f"{_safe(str(listing_id))}.jpg"
        _jpeg(img, images_dir / rel, rng.choice([70, 80, 90]))
        paths.append(rel)
    return listings.with_columns(pl.Series("image", paths, dtype=pl.String))


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)


def _by_brand(images: pl.DataFrame) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for path, brand in images.select("image", "brand").iter_rows():
        out.setdefault(str(brand).casefold(), []).append(path)
    return out


def _pick_source(
    kind: str,
    label: int,
    brand: str | None,
    official: dict[str, list[str]],
    fakes: dict[str, list[str]],
    rng: random.Random,
) -> str | None:
    key = (brand or "").casefold()
    u = rng.random()
    if label == 1:
        if u < FAKE_PHOTO["known_fake"] and fakes.get(key):
            return rng.choice(fakes[key])
        if u < FAKE_PHOTO["known_fake"] + FAKE_PHOTO["official"] and official.get(key):
            return rng.choice(official[key])
        return None
    if u < GENUINE_OFFICIAL.get(kind, 0.0) and official.get(key):
        return rng.choice(official[key])
    return None
