"""Photos for the sample marketplace: a registry with official photos and known fakes, and
listing photos that reuse them the way counterfeit sellers do (cropped, mirrored, recompressed,
watermarked) next to genuine sellers' own photos.

The photos are procedurally drawn (background, shapes, caption), so every photo is distinct and
the demo needs no downloads. :func:`product_shot` draws one product in several shots (placed,
scaled and turned differently, on other backgrounds): a registry's known fakes can then be
photos of look-alike counterfeits, unrelated photos that resemble the brand's official ones
without copying them.
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
#: kinds of :func:`seeds.marketplace.generate_reseller_photos` whose photo is always one kind of
#: reference photo of their brand, reused
ALWAYS = {
    "genuine_reseller_photo": "official",
    "fake_official_photo": "official",
    "fake_known_photo": "known_fake",
}
#: a known fake drawn as a look-alike shot is never this near (pHash + dHash, best variant) to
#: an official photo of its brand: it is a photo of a counterfeit, not a copy of the brand's
#: photo (the image filter's widest match band)
LOOKALIKE_MIN_DISTANCE = 29


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


def product_shot(product: int, shot: int, size: int = 256) -> Image.Image:
    """Shot ``shot`` of product ``product``: the product's shapes and colours (drawn from
    ``product``) placed, scaled and turned a little differently in each shot (by up to 6% of the
    side, 80-105% of the size, 4 degrees) on a background of the shot's own. Shot 0 is the
    product as it is, centred."""
    rnd = random.Random(product)

    def colour(r: random.Random) -> tuple[int, int, int]:
        return (r.randrange(256), r.randrange(256), r.randrange(256))

    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for _ in range(rnd.randint(3, 8)):
        x0, y0 = rnd.randrange(size // 5, size * 4 // 5), rnd.randrange(size // 5, size * 4 // 5)
        w, h = rnd.randint(size // 10, size // 2), rnd.randint(size // 10, size // 2)
        box = (x0 - w // 2, y0 - h // 2, x0 + w // 2, y0 + h // 2)
        kind, fill = rnd.randrange(3), (*colour(rnd), 255)
        if kind == 0:
            draw.ellipse(box, fill=fill)
        elif kind == 1:
            draw.rectangle(box, fill=fill)
        else:
            corners = rnd.randint(3, 6)
            pts = [
                (x0 + rnd.randint(-w, w) // 2, y0 + rnd.randint(-h, h) // 2) for _ in range(corners)
            ]
            draw.polygon(pts, fill=fill)
    srnd = random.Random((product * 1_000_003 + shot) * 31)
    side, dx, dy = size, 0, 0
    if shot:
        layer = layer.rotate(srnd.uniform(-4.0, 4.0), resample=Image.Resampling.BICUBIC)
        side = int(size * srnd.uniform(0.8, 1.05))
        layer = layer.resize((side, side), Image.Resampling.BICUBIC)
        dx, dy = (int(srnd.uniform(-0.06, 0.06) * size) for _ in range(2))
    if srnd.random() < 0.5:  # vertical gradient background
        a, b = np.array(colour(srnd), float), np.array(colour(srnd), float)
        t = np.linspace(0.0, 1.0, size)[:, None, None]
        rows = (a * (1 - t) + b * t).astype(np.uint8)
        img = Image.fromarray(np.broadcast_to(rows, (size, size, 3)).copy(), "RGB")
    else:
        img = Image.new("RGB", (size, size), colour(srnd))
    img.paste(layer, ((size - side) // 2 + dx, (size - side) // 2 + dy), layer)
    return img


def _variant_hashes(img: Image.Image) -> pl.DataFrame:
    from filters.image import reference_hashes

    buf = io.BytesIO()
    img.save(buf, "PNG")
    frame = pl.DataFrame({"image": [buf.getvalue()], "relpath": ["photo"], "brand": ["any"]})
    return reference_hashes(frame, workers=1)


def _nearest(query: pl.DataFrame, refs: pl.DataFrame) -> int:
    """The smallest combined distance from ``query``'s own photo to any variant in ``refs``."""
    own = query.filter(pl.col("variant") == "original")
    qp, qd = own.get_column("phash").to_numpy(), own.get_column("dhash").to_numpy()
    rp, rd = refs.get_column("phash").to_numpy(), refs.get_column("dhash").to_numpy()
    near = np.bitwise_count(qp[:, None] ^ rp[None, :]).astype(np.int64)
    near += np.bitwise_count(qd[:, None] ^ rd[None, :])
    return int(near.min(initial=128))


def _lookalike(product: int, official: Image.Image, start: int) -> Image.Image:
    """The first shot of ``product`` from ``start`` on that is no near copy of ``official``
    either way (neither is within :data:`LOOKALIKE_MIN_DISTANCE` of a variant of the other:
    a zoomed-out shot whose crop is the official photo is a copy too)."""
    official_hashes = _variant_hashes(official)
    for shot in range(start, start + 50):
        img = product_shot(product, shot)
        shot_hashes = _variant_hashes(img)
        if (
            min(_nearest(shot_hashes, official_hashes), _nearest(official_hashes, shot_hashes))
            >= LOOKALIKE_MIN_DISTANCE
        ):
            return img
    raise RuntimeError(f"product {product}: no shot far enough from the official photo")


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
    lookalike_fakes: bool = False,
) -> Path:
    """Copy ``base`` to ``out`` and add official photos and known fakes for ``brands``.

    ``lookalike_fakes``: the official photos are products drawn by :func:`product_shot` and
    each known fake is another shot of one of them (a counterfeit that looks like the brand's
    product, photographed by its seller), never a near copy of an official photo; otherwise
    every photo is drawn on its own."""
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
        drawn = []
        for i in range(official_per_brand):
            rel = f"official/{slug}_{i}.jpg"
            product = _photo_seed(seed, 1, b, i)
            drawn.append((product, product_shot(product, 0) if lookalike_fakes else None))
            _jpeg(drawn[-1][1] or product_photo(product), out / rel, 92)
            official.append(f'{rel},"{brand}"')
        for i in range(fakes_per_brand):
            rel = f"fakes/{slug}_{i}.jpg"
            if lookalike_fakes and drawn:
                product, shown = drawn[i % len(drawn)]
                assert shown is not None
                img = _lookalike(product, shown, start=1 + i)
            else:
                img = product_photo(_photo_seed(seed, 2, b, i))
            _jpeg(img, out / rel, 80)
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
    always = ALWAYS.get(kind)
    if always is not None:
        pool = official if always == "official" else fakes
        return rng.choice(pool[key]) if pool.get(key) else None
    if label == 1:
        if u < FAKE_PHOTO["known_fake"] and fakes.get(key):
            return rng.choice(fakes[key])
        if u < FAKE_PHOTO["known_fake"] + FAKE_PHOTO["official"] and official.get(key):
            return rng.choice(official[key])
        return None
    if u < GENUINE_OFFICIAL.get(kind, 0.0) and official.get(key):
        return rng.choice(official[key])
    return None
