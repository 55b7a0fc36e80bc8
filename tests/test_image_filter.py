"""Image filter: imagehash bit-exactness, stated distance bounds per transformation, hostile
files, and the filter over a small registry."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import imagehash
import numpy as np
import polars as pl
import pytest
import scipy.fftpack
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageOps

from filters.image import (
    CACHE_SCHEMA,
    DCT_EPS,
    FLAT_REASON,
    ImageFilter,
    ImageRejected,
    best_matches,
    build_image_cache,
    hamming_pairs,
    hash_sources,
    load_image_cache,
    open_image,
    phash_dhash,
    reference_hashes,
)
from filters.image.search import _plan_block
from pipelines.registry import load_registry
from seeds.images import product_photo

#: the match band: combined (pHash + dHash) distance and pHash distance
BAND, PHASH_BAND = 28, 14


# ---------------------------------------------------------------- helpers


def jpeg(img: Image.Image, quality: int = 90, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, **kw)
    return buf.getvalue()


def png(img: Image.Image, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", **kw)
    return buf.getvalue()


def hex64(x: int | np.integer) -> str:
    return format(int(x), "016x")


def dist(a: int, b: int) -> int:
    return int(a ^ b).bit_count()


def hashes_of(img: Image.Image) -> tuple[int, int]:
    ph, dh = phash_dhash([img])
    return int(ph[0]), int(dh[0])


def well_conditioned(img: Image.Image) -> bool:
    """False when some of imagehash's own DCT coefficients sit within float noise of their
    median: then imagehash's bits are decided by scipy's rounding and no other DCT can agree."""
    px = np.asarray(img.convert("L").resize((32, 32), Image.Resampling.LANCZOS))
    dct = scipy.fftpack.dct(scipy.fftpack.dct(px, axis=0), axis=1)[:8, :8]
    return bool(np.abs(dct - np.median(dct)).min() > DCT_EPS)


# ---------------------------------------------------------------- bit-exactness

MODES = st.sampled_from(["L", "RGB", "RGBA", "P", "1", "CMYK"])


@st.composite
def random_images(draw: st.DrawFn) -> Image.Image:
    w = draw(st.integers(1, 96))
    h = draw(st.integers(1, 96))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["noise", "gradient", "blocks"]))
    if kind == "noise":
        arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    elif kind == "gradient":
        yy, xx = np.mgrid[0:h, 0:w]
        a, b, c = rng.uniform(-3, 3, 3)
        base = (a * xx + b * yy + c * xx * yy / max(w, 1)) % 256
        arr = np.repeat(base[..., None], 3, axis=2).astype(np.uint8)
    else:
        small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        arr = np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.NEAREST))
    img = Image.fromarray(arr, "RGB")
    mode = draw(MODES)
    return img.convert(mode) if mode != "P" else img.quantize(16)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_images())
def test_hashes_bit_identical_to_imagehash(img: Image.Image) -> None:
    ph, dh = hashes_of(img)
    assert hex64(dh) == str(imagehash.dhash(img))
    assume(well_conditioned(img))
    assert hex64(ph) == str(imagehash.phash(img))


def test_batched_hashes_match_imagehash_on_drawn_photos_and_exact_mode() -> None:
    photos = [product_photo(s) for s in range(25)]
    ph, dh = phash_dhash(photos)
    for img, p, d in zip(photos, ph, dh, strict=True):
        assert hex64(p) == str(imagehash.phash(img))
        assert hex64(d) == str(imagehash.dhash(img))
    # exact mode over files: identical to imagehash on the decoded file
    blobs = [jpeg(p) for p in photos[:10]] + [png(p) for p in photos[10:15]]
    out = hash_sources(blobs, fast=False, workers=2)
    for blob, p, d in zip(blobs, out["phash"], out["dhash"], strict=True):
        img = Image.open(io.BytesIO(blob))
        assert hex64(p) == str(imagehash.phash(img))
        assert hex64(d) == str(imagehash.dhash(img))


def test_degenerate_images_rarely_differ_and_only_when_ill_conditioned() -> None:
    rng = np.random.default_rng(7)
    mismatches = 0
    for _ in range(300):
        h, w = rng.integers(1, 64, 2)
        img = Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8), "L")
        if hex64(hashes_of(img)[0]) != str(imagehash.phash(img)):
            mismatches += 1
            assert not well_conditioned(img)
    assert mismatches <= 6


# ---------------------------------------------------------------- stated distance bounds


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    return [product_photo(1000 + s) for s in range(20)]


@pytest.fixture(scope="module")
def refs(photos: list[Image.Image], tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    root = tmp_path_factory.mktemp("refs")
    rows = []
    for i, img in enumerate(photos):
        path = root / f"ref_{i}.jpg"
        path.write_bytes(jpeg(img, 95))
        rows.append({"image": str(path), "relpath": f"ref_{i}.jpg", "brand": "Gucci"})
    return reference_hashes(pl.DataFrame(rows), fast=False)


def match_of(ref_frame: pl.DataFrame, img: Image.Image) -> tuple[str | None, str | None, int]:
    """(matched ref, variant, combined distance) of an image against the reference frame."""
    out = hash_sources([jpeg(img, 95)], fast=False)
    bm = best_matches(
        out["phash"].to_numpy(),
        out["dhash"].to_numpy(),
        ref_frame["phash"].to_numpy(),
        ref_frame["dhash"].to_numpy(),
        max_distance=BAND,
    )
    r = int(bm.ref[0])
    if r < 0:
        return None, None, int(bm.min_distance[0])
    return ref_frame["ref"][r], ref_frame["variant"][r], int(bm.distance[0])


def watermark(img: Image.Image) -> Image.Image:
    out = img.copy()
    ImageDraw.Draw(out).text((10, 10), "SALE! shop-xyz.example", fill=(255, 255, 255), font_size=18)
    return out


def crop(img: Image.Image, share: float) -> Image.Image:
    w, h = img.size
    return img.crop((int(w * share), int(h * share), int(w * (1 - share)), int(h * (1 - share))))


def reencode(img: Image.Image, quality: int) -> Image.Image:
    return Image.open(io.BytesIO(jpeg(img, quality))).convert("RGB")


TRANSFORMS = {
    "jpeg q30": lambda im: reencode(im, 30),
    "resize 50%": lambda im: im.resize((im.width // 2, im.height // 2)),
    "watermark": watermark,
    "mirror": ImageOps.mirror,
    "rotate 90°": lambda im: im.transpose(Image.Transpose.ROTATE_90),
    "crop 5%": lambda im: crop(im, 0.05),
    "crop 10%": lambda im: crop(im, 0.10),
    "mirror + crop 10%": lambda im: crop(ImageOps.mirror(im), 0.10),
}


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_transformed_copies_match_their_reference(
    name: str, photos: list[Image.Image], refs: pl.DataFrame
) -> None:
    for i, img in enumerate(photos):
        ref, _, d = match_of(refs, TRANSFORMS[name](img))
        assert ref == f"ref_{i}.jpg", (name, i, d)


def test_small_changes_stay_in_band_without_augmentation(photos: list[Image.Image]) -> None:
    for img in photos:
        p0, d0 = hashes_of(img)
        for changed in (
            reencode(img, 30),
            img.resize((img.width // 2, img.height // 2)),
            watermark(img),
            img.rotate(1, resample=Image.Resampling.BICUBIC, fillcolor=(255, 255, 255)),
        ):
            p1, d1 = hashes_of(changed)
            assert dist(p0, p1) <= PHASH_BAND and dist(p0, p1) + dist(d0, d1) <= BAND


def test_mirror_and_quarter_turn_are_far_without_augmentation(photos: list[Image.Image]) -> None:
    # imagehash's own invariant: a 90° rotation is a different image to pHash
    far = 0
    for img in photos:
        p0, _ = hashes_of(img)
        p1, _ = hashes_of(img.transpose(Image.Transpose.ROTATE_90))
        far += dist(p0, p1) > PHASH_BAND
    assert far >= len(photos) * 0.8


def test_unrelated_photos_never_match(refs: pl.DataFrame) -> None:
    blobs = [jpeg(product_photo(50_000 + s, size=160), 85) for s in range(200)]
    out = hash_sources(blobs, fast=True)
    assert out["reason"].null_count() == 200
    bm = best_matches(
        out["phash"].to_numpy(),
        out["dhash"].to_numpy(),
        refs["phash"].to_numpy(),
        refs["dhash"].to_numpy(),
        max_distance=BAND,
    )
    assert (bm.ref < 0).all(), sorted(bm.min_distance)[:5]
    assert int(bm.min_distance.min()) > BAND


def test_fast_mode_drift_is_small_on_jpegs() -> None:
    blobs = [jpeg(product_photo(s, size=800), 90) for s in range(200, 230)]
    exact = hash_sources(blobs, fast=False)
    fast = hash_sources(blobs, fast=True)
    drift = [dist(a, b) for a, b in zip(exact["phash"], fast["phash"], strict=True)]
    assert max(drift) <= 6 and float(np.mean(drift)) <= 1.5, drift
    # fast mode takes the dHash reduction from the pHash one: a little more drift there
    d_drift = [dist(a, b) for a, b in zip(exact["dhash"], fast["dhash"], strict=True)]
    assert max(d_drift) <= 10 and float(np.mean(d_drift)) <= 2.0, d_drift


def test_hamming_pairs_is_exact_against_a_naive_loop() -> None:
    rng = np.random.default_rng(3)
    q = rng.integers(0, 2**63, 700, dtype=np.uint64)
    r = np.concatenate([q[:100] ^ np.uint64(0b1011), rng.integers(0, 2**63, 900, dtype=np.uint64)])
    d = np.bitwise_count(q[:, None] ^ r[None, :])
    for radius in (0, 3, 10, 24):
        qi, ri = np.nonzero(d <= radius)
        for method in ("brute", "pigeonhole", "auto"):
            got = hamming_pairs(q, r, radius=radius, method=method, tile=128)
            assert np.array_equal(got[0], qi) and np.array_equal(got[1], ri), (radius, method)
            assert np.array_equal(got[2], d[qi, ri])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 2**64 - 1), max_size=40),
    st.lists(st.integers(0, 2**64 - 1), max_size=40),
    st.integers(0, 64),
)
def test_hamming_pairs_property(q: list[int], r: list[int], radius: int) -> None:
    qa, ra = np.array(q, dtype=np.uint64), np.array(r, dtype=np.uint64)
    want = [
        (i, j, (a ^ b).bit_count())
        for i, a in enumerate(q)
        for j, b in enumerate(r)
        if (a ^ b).bit_count() <= radius
    ]
    qi, ri, d = hamming_pairs(qa, ra, radius=radius)
    assert list(zip(qi.tolist(), ri.tolist(), d.tolist(), strict=True)) == want


# ---------------------------------------------------------------- best_matches


def naive_best(
    qp: list[int],
    qd: list[int],
    rp: list[int],
    rd: list[int],
    max_distance: int = BAND,
    max_phash: int = PHASH_BAND,
    min_cap: int | None = None,
) -> list[tuple[int, int, int, int]]:
    """Per query (ref, distance, phash distance, min distance) by a plain double loop: the
    smallest combined distance among eligible refs, the lowest index on ties."""
    cap = max_distance + 1 if min_cap is None else min_cap
    out = []
    for a, b in zip(qp, qd, strict=True):
        best, best_d, best_p, low = -1, -1, -1, None
        for j, (c, e) in enumerate(zip(rp, rd, strict=True)):
            p = (a ^ c).bit_count()
            d = p + (b ^ e).bit_count()
            low = d if low is None else min(low, d)
            if p <= max_phash and d <= max_distance and (best < 0 or d < best_d):
                best, best_d, best_p = j, d, p
        out.append((best, best_d, best_p, -1 if low is None else min(low, cap)))
    return out


def as_rows(bm: object) -> list[tuple[int, int, int, int]]:
    ref, distance, phash, low = (np.asarray(a).tolist() for a in bm)  # type: ignore[attr-defined]
    return list(zip(ref, distance, phash, low, strict=True))


def near_copies(rng: np.random.Generator, centres: np.ndarray, n: int, p: float) -> np.ndarray:
    """``n`` hashes, each a random centre with every bit flipped with probability ``p``."""
    flips = np.packbits(rng.random((n, 64)) < p, axis=1).view(">u8").reshape(-1)
    return centres[rng.integers(0, centres.size, n)] ^ flips.astype(np.uint64)


HASHES = st.integers(0, 2**64 - 1)


@st.composite
def hash_sets(draw: st.DrawFn) -> tuple[list[int], ...]:
    """Query and reference (pHash, dHash) lists: uniform, or clustered near a few centres."""
    nq, nr = draw(st.integers(0, 25)), draw(st.integers(0, 25))
    if draw(st.booleans()):
        return tuple(draw(st.lists(HASHES, min_size=n, max_size=n)) for n in (nq, nq, nr, nr))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    p = draw(st.sampled_from([0.0, 0.02, 0.08, 0.2]))
    centres = rng.integers(0, 2**64, draw(st.integers(1, 4)), dtype=np.uint64)
    return tuple(near_copies(rng, centres, n, p).tolist() for n in (nq, nq, nr, nr))


@settings(max_examples=60, deadline=None)
@given(
    hash_sets(),
    st.integers(0, 40),
    st.integers(0, 20),
    st.one_of(st.none(), st.integers(0, 129)),
    st.sampled_from(["auto", "brute", "pigeonhole"]),
)
def test_best_matches_equals_a_naive_loop(
    sets: tuple[list[int], ...], max_distance: int, max_phash: int, cap: int | None, method: str
) -> None:
    qp, qd, rp, rd = sets
    got = best_matches(
        *(np.array(h, dtype=np.uint64) for h in sets),
        max_distance=max_distance,
        max_phash=max_phash,
        min_cap=cap,
        method=method,
    )
    assert as_rows(got) == naive_best(qp, qd, rp, rd, max_distance, max_phash, cap)


@pytest.mark.parametrize("kind", ["uniform", "near copies", "crowded buckets"])
def test_best_matches_pigeonhole_equals_brute_force_on_thousands(kind: str) -> None:
    rng = np.random.default_rng(11)
    n = 3000
    if kind == "uniform":
        qp, qd, rp, rd = rng.integers(0, 2**64, (4, n), dtype=np.uint64)
        # a tenth of the queries are close copies of references
        pick = rng.integers(0, n, n // 10)
        qp[: n // 10] = near_copies(rng, rp[pick], n // 10, 0.05)
        qd[: n // 10] = near_copies(rng, rd[pick], n // 10, 0.05)
    elif kind == "near copies":
        cp, cd = rng.integers(0, 2**64, (2, 300), dtype=np.uint64)
        qp, rp = near_copies(rng, cp, n, 0.06), near_copies(rng, cp, n, 0.06)
        qd, rd = near_copies(rng, cd, n, 0.06), near_copies(rng, cd, n, 0.06)
    else:
        # a few hashes repeated hundreds of times: buckets too full for the tables
        cp, cd = rng.integers(0, 2**64, (2, 8), dtype=np.uint64)
        qp, rp = near_copies(rng, cp, n, 0.01), near_copies(rng, cp, n, 0.01)
        qd, rd = near_copies(rng, cd, n, 0.01), near_copies(rng, cd, n, 0.01)
        blk = _plan_block(qp, rp, 0, 13, 2)
        assert len(blk.bounds_q) > 2  # crowded buckets reach past the first layer
    fast = best_matches(qp, qd, rp, rd, method="pigeonhole")
    slow = best_matches(qp, qd, rp, rd, method="brute", tile=512)
    assert as_rows(fast) == as_rows(slow)
    assert (fast.ref >= 0).sum() > 0 or kind == "uniform"
    exact = best_matches(qp, qd, rp, rd, min_cap=129)
    assert (exact.min_distance >= 0).all()
    assert np.array_equal(np.minimum(exact.min_distance, BAND + 1), fast.min_distance)


def test_best_matches_edges_ties_and_band_limits() -> None:
    u = np.uint64
    empty = np.zeros(0, np.uint64)
    none = best_matches(empty, empty, np.array([1], u), np.array([1], u))
    assert [a.size for a in none] == [0, 0, 0, 0]
    no_refs = best_matches(np.array([5, 6], u), np.array([5, 6], u), empty, empty)
    assert as_rows(no_refs) == [(-1, -1, -1, -1)] * 2
    # ties on the combined distance: the lowest reference index wins, on every path
    q = np.array([0], u)
    refs_p = np.array([0b11, 0b1, 0b1, 0b111], u)
    refs_d = np.array([0, 0b1, 0b10, 0], u)
    for method in ("auto", "brute", "pigeonhole"):
        bm = best_matches(q, q, refs_p, refs_d, method=method)
        assert as_rows(bm) == [(0, 2, 2, 2)], method
    # the band is inclusive: combined == max_distance and pHash == max_phash still match
    p14, d14, d15 = (1 << 14) - 1, (1 << 14) - 1, (1 << 15) - 1
    for method in ("auto", "brute", "pigeonhole"):
        at_limit = best_matches(q, q, np.array([p14], u), np.array([d14], u), method=method)
        assert as_rows(at_limit) == [(0, 28, 14, 28)], method
        past = best_matches(q, q, np.array([p14], u), np.array([d15], u), method=method)
        assert as_rows(past) == [(-1, -1, -1, 29)], method  # 29 = the cap: "29 or more"
        too_far = best_matches(q, q, np.array([(1 << 15) - 1], u), np.array([0], u), method=method)
        assert as_rows(too_far) == [(-1, -1, -1, 15)], method  # pHash 15 > 14, combined 15


def test_hamming_pairs_pigeonhole_on_clustered_hashes() -> None:
    rng = np.random.default_rng(5)
    centres = rng.integers(0, 2**64, 40, dtype=np.uint64)
    q, r = near_copies(rng, centres, 1500, 0.04), near_copies(rng, centres, 1500, 0.04)
    d = np.bitwise_count(q[:, None] ^ r[None, :])
    for radius in (0, 2, 6, 12):
        qi, ri = np.nonzero(d <= radius)
        got = hamming_pairs(q, r, radius=radius, method="pigeonhole")
        assert np.array_equal(got[0], qi) and np.array_equal(got[1], ri), radius
        assert np.array_equal(got[2], d[qi, ri])


# ---------------------------------------------------------------- hostile and odd files


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares a huge 1-bit image (no pixel data worth decoding)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def exif_rotated_jpeg(img: Image.Image) -> bytes:
    """``img`` stored rotated, with EXIF orientation 6 saying how to turn it upright."""
    stored = img.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    return jpeg(stored, 95, exif=exif.tobytes())


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("hostile")
    root = base / "images"
    root.mkdir()
    outside = base / "secret.jpg"
    outside.write_bytes(jpeg(product_photo(1)))
    good = jpeg(product_photo(2), 90)
    (root / "empty.jpg").write_bytes(b"")
    (root / "garbage.jpg").write_bytes(b"this is not an image at all" * 10)
    (root / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (root / "bomb.png").write_bytes(bomb_png(50_000, 50_000))
    (root / "huge.png").write_bytes(bomb_png(30_000, 30_000))
    (root / "link.jpg").symlink_to(outside)
    (root / "png_named.jpg").write_bytes(png(product_photo(3)))
    return root


REJECTED = {
    "empty.jpg": "empty file",
    "garbage.jpg": "not a recognised image format",
    "truncated.jpg": "truncated",
    "bomb.png": "exceeds",
    "huge.png": "declared size 30000x30000 exceeds 40,000,000 pixels",
    "link.jpg": "path escapes the images directory",
    "../secret.jpg": "path escapes the images directory",
    "missing.jpg": "file not found",
}


@pytest.mark.parametrize("name", list(REJECTED))
def test_open_image_rejects_hostile_files(name: str, hostile_dir: Path) -> None:
    with pytest.raises(ImageRejected, match=REJECTED[name].replace("(", r"\(")):
        open_image(name, root=hostile_dir)


def test_open_image_refuses_absolute_paths_under_a_root(hostile_dir: Path) -> None:
    with pytest.raises(ImageRejected, match="escapes"):
        open_image(str(hostile_dir / "png_named.jpg"), root=hostile_dir)


def test_content_decides_the_format(hostile_dir: Path) -> None:
    img = open_image("png_named.jpg", root=hostile_dir)
    assert hashes_of(img) == hashes_of(product_photo(3))


def test_odd_modes_are_normalised() -> None:
    photo = product_photo(4, size=128)
    upright = hashes_of(photo)
    # EXIF orientation: the hash is the upright image's
    turned = open_image(exif_rotated_jpeg(photo))
    p, d = hashes_of(turned)
    assert dist(p, upright[0]) + dist(d, upright[1]) <= 8
    # CMYK, palette, 16-bit, RGBA on white, animated (first frame)
    cmyk = open_image(jpeg(photo.convert("CMYK"), 95))
    assert cmyk.mode == "RGB" and dist(hashes_of(cmyk)[0], upright[0]) <= 6
    pal = open_image(png(photo.quantize(64)))
    assert pal.mode == "RGB" and dist(hashes_of(pal)[0], upright[0]) <= 10
    gray16 = (np.asarray(photo.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    i16 = open_image(png(Image.fromarray(gray16)))
    assert i16.mode == "L" and hashes_of(i16) == hashes_of(photo.convert("L"))
    rgba = photo.convert("RGBA")
    rgba.putalpha(255)
    assert hashes_of(open_image(png(rgba))) == upright
    clear = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    assert np.asarray(open_image(png(clear))).min() == 255  # transparent -> white, not black
    buf = io.BytesIO()
    frames = [photo, product_photo(5, size=128)]
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    gif = open_image(buf.getvalue())
    assert dist(hashes_of(gif)[0], upright[0]) <= 10


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_imagehash_users_expect(orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    blob = jpeg(product_photo(6, size=96).crop((0, 0, 96, 64)), 95, exif=exif.tobytes())
    want = ImageOps.exif_transpose(Image.open(io.BytesIO(blob))).convert("RGB")
    got = open_image(blob)
    assert got.size == want.size and np.array_equal(np.asarray(got), np.asarray(want))


def test_unreadable_exif_keeps_the_photo_as_stored() -> None:
    blob = jpeg(product_photo(8, size=64), 90)
    # an APP1 "Exif" segment whose TIFF header is garbage
    app1 = b"Exif\x00\x00" + b"XX\x00*garbage"
    bad = blob[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + blob[2:]
    img = open_image(bad)
    assert img.size == (64, 64) and hashes_of(img) == hashes_of(open_image(blob))


def test_hash_sources_keeps_order_and_reports_reasons(hostile_dir: Path) -> None:
    names = [*REJECTED, "png_named.jpg"]
    out = hash_sources(names, root=hostile_dir, fast=True)
    assert out.height == len(names)
    assert out["phash"][-1] is not None and out["reason"][-1] is None
    for name, reason in zip(names[:-1], out["reason"], strict=False):
        assert reason is not None and out.filter(pl.col("reason") == reason).height >= 1, name
    flat = hash_sources([png(Image.new("RGB", (50, 50), (9, 99, 199)))])
    assert flat.row(0) == (None, None, FLAT_REASON)


# ---------------------------------------------------------------- the filter


@pytest.fixture(scope="module")
def registry_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("img_registry")
    (root / "brands.csv").write_text(
        "brand,category,reference_price,aliases\nGucci,bags,2500,GG\nRolex,watches,9500,\n",
        encoding="utf-8",
    )
    for sub in ("gucci", "rolex"):
        (root / sub).mkdir()
    (root / "gucci" / "marmont_1.jpg").write_bytes(jpeg(product_photo(7001), 95))
    (root / "rolex" / "sub_1.jpg").write_bytes(jpeg(product_photo(7002), 95))
    (root / "gucci" / "fake_3.jpg").write_bytes(jpeg(product_photo(7003), 95))
    (root / "official_images.csv").write_text(
        "image,brand\ngucci/marmont_1.jpg,Gucci\nrolex/sub_1.jpg,Rolex\n", encoding="utf-8"
    )
    (root / "known_fakes.csv").write_text("image,brand\ngucci/fake_3.jpg,Gucci\n", "utf-8")
    return root


@pytest.fixture(scope="module")
def listing_images(tmp_path_factory: pytest.TempPathFactory, hostile_dir: Path) -> Path:
    root = hostile_dir  # hostile files live next to the listing photos
    (root / "official_crop.jpg").write_bytes(jpeg(crop(product_photo(7001), 0.1), 80))
    (root / "fake_mirror.jpg").write_bytes(jpeg(ImageOps.mirror(product_photo(7003)), 70))
    (root / "unrelated.jpg").write_bytes(jpeg(product_photo(9999), 80))
    (root / "exif.jpg").write_bytes(exif_rotated_jpeg(product_photo(7002)))
    (root / "cmyk.jpg").write_bytes(jpeg(product_photo(7003).convert("CMYK"), 90))
    return root


def test_filter_scores_matches_and_keeps_rows(registry_dir: Path, listing_images: Path) -> None:
    f = ImageFilter(images_root=str(listing_images)).fit(load_registry(registry_dir))
    images = [
        "fake_mirror.jpg",
        None,
        "official_crop.jpg",
        "unrelated.jpg",
        "exif.jpg",
        "cmyk.jpg",
        "fake_mirror.jpg",
        *REJECTED,
        "",
    ]
    frame = pl.DataFrame(
        {
            "listing_id": [f"L{i}" for i in range(len(images))],
            "title": ["bag"] * len(images),
            "price": [10.0] * len(images),
            "image": images,
        }
    )
    out = f.score(frame.lazy()).collect()
    assert out.height == frame.height
    assert out["listing_id"].to_list() == frame["listing_id"].to_list()
    rows = {r["listing_id"]: r for r in out.to_dicts()}
    fake = rows["L0"]
    assert fake["image_score"] >= 0.77 and fake["image_brand"] == "Gucci"
    reasons = fake["image_reasons"]
    assert any("known fake gucci/fake_3.jpg" in r and "mirrored" in r for r in reasons)
    assert rows["L6"]["image_score"] == fake["image_score"]  # same file hashed once, same answer
    assert rows["L1"]["image_score"] is None and rows["L1"]["image_present"] is False
    official = rows["L2"]
    assert official["image_score"] == pytest.approx(0.35)
    assert any(
        "official photo gucci/marmont_1.jpg" in r and "cropped 10%" in r
        for r in official["image_reasons"]
    )
    assert rows["L3"]["image_score"] == 0.0 and rows["L3"]["image_reasons"] == []
    assert rows["L3"]["image_official_distance"] > BAND
    assert rows["L4"]["image_score"] == pytest.approx(0.35)  # EXIF-upright official photo
    assert rows["L4"]["image_brand"] == "Rolex"
    assert rows["L5"]["image_score"] >= 0.77  # CMYK copy of the fake
    for i, name in enumerate(REJECTED, start=7):
        row = rows[f"L{i}"]
        assert row["image_score"] is None and row["image_present"] is True, name
        assert len(row["image_reasons"]) == 1 and row["image_reasons"][0].startswith(
            "image not usable: "
        ), name
    assert "declared size 30000x30000 exceeds 40,000,000 pixels" in rows["L11"]["image_reasons"][0]
    assert rows[f"L{len(images) - 1}"]["image_present"] is False  # empty string: no image
    assert out.schema["image_score"] == pl.Float64 and out.schema["image_fake_distance"] == pl.Int32


def test_filter_without_image_column_or_references(
    registry_dir: Path, tiny_registry: object
) -> None:
    f = ImageFilter().fit(load_registry(registry_dir))
    out = f.score(pl.DataFrame({"listing_id": ["a", "b"], "title": ["x", "y"]})).collect()
    assert out["image_score"].null_count() == 2 and out["image_present"].to_list() == [False] * 2
    empty = ImageFilter().fit(tiny_registry)  # type: ignore[arg-type]
    assert empty.official_.height == 0 and empty.fakes_.height == 0
    out = empty.score(pl.DataFrame({"listing_id": ["a"], "image": ["nowhere.jpg"]})).collect()
    assert out["image_score"].to_list() == [None] and out["image_reasons"].to_list() == [[]]
    assert out["image_present"].to_list() == [True]


def test_filter_accepts_bytes_column(registry_dir: Path) -> None:
    f = ImageFilter().fit(load_registry(registry_dir))
    blob = jpeg(product_photo(7003), 80)
    frame = pl.DataFrame({"listing_id": ["a", "b"], "image": [blob, b"junk"]})
    out = f.score(frame).collect()
    assert out["image_score"][0] >= 0.77 and out["image_score"][1] is None


def test_image_cache_round_trips_and_ignores_other_versions(registry_dir: Path) -> None:
    registry = load_registry(registry_dir)
    report = build_image_cache(registry, fast=True)
    cached = load_image_cache(report.path)
    assert report.photos == 3 and len(cached) == 3
    assert all(len(v) == 14 for v in cached.values())  # 8 orientations + 6 crops each
    # a cache written before the fast-mode hashes changed (no version column) is not trusted
    frame = pl.read_parquet(report.path)
    frame.drop("version").write_parquet(report.path)
    assert load_image_cache(report.path) == {}
    frame.with_columns(pl.lit(1, pl.Int32).alias("version")).write_parquet(report.path)
    assert set(pl.read_parquet(report.path).schema.items()) == set(CACHE_SCHEMA.items())
    assert load_image_cache(report.path) == {}
    report.path.unlink()
