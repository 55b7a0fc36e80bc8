"""Mirror copies as seller-ring evidence, from the stored hashes alone: the mirror image's
pHash and dHash derived from a photo's own, checked against real photographs mirrored, and
the linker searching both orientations."""

from __future__ import annotations

import io
import random
from functools import cache

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from filters.image import mirror_distances, mirrored_dhash, mirrored_phash, phash_dhash
from pipelines.network import NetworkSettings, find_rings
from seeds.real_photos import portraits, random_crops, sample_photographs

MIRROR = Image.Transpose.FLIP_LEFT_RIGHT
SETTINGS = NetworkSettings()


@cache
def _photos() -> list[Image.Image]:
    """Every shipped real photograph, 100 portraits and 10 random crops of each photograph."""
    photos = list(sample_photographs().values())
    rng = random.Random(5)
    crops = [c for p in photos for _, c in random_crops(p, 10, rng)]
    return photos + portraits(100) + crops


def _jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf)


def _reused(img: Image.Image, rng: random.Random) -> Image.Image:
    """A seller's copy: a crop of up to 4% a side, another size, JPEG again."""
    w, h = img.size
    c = rng.uniform(0.0, 0.04)
    img = img.crop((int(w * c), int(h * c), int(w * (1 - c)), int(h * (1 - c))))
    return _jpeg(img.resize((rng.choice([200, 300, 400]),) * 2), rng.choice([60, 75, 90]))


@given(st.integers(0, 2**64 - 1))
def test_mirror_derivations_are_their_own_inverse(h: int) -> None:
    a = np.array([h], np.uint64)
    assert mirrored_phash(mirrored_phash(a))[0] == h
    assert mirrored_dhash(mirrored_dhash(a))[0] == h
    # a mirror copy of a photo is as far from the photo as the photo is from the mirror copy
    b = np.array([h ^ 0x0F0F_0000_00FF_1234], np.uint64)
    assert mirror_distances(a, b, b, a) == mirror_distances(b, a, a, b)


def test_dhash_of_a_mirror_is_exact_when_no_pixels_tie() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        # a 9x8 image is its own dHash reduction; every row's pixels differ
        rows = np.stack([rng.permutation(256)[:9] for _ in range(8)]).astype(np.uint8)
        img = Image.fromarray(rows, "L")
        _, d = phash_dhash([img])
        _, dm = phash_dhash([img.transpose(MIRROR)])
        assert mirrored_dhash(d)[0] == dm[0]


def test_flat_background_ties_are_not_counted() -> None:
    rows = np.full((8, 9), 255, np.uint8)
    rows[:, 2] = 10  # one dark column on white: most neighbours tie
    img = Image.fromarray(rows, "L")
    p, d = phash_dhash([img])
    pm, dm = phash_dhash([img.transpose(MIRROR)])
    # the naive derivation pays for every tie, the tie-aware distance for none
    assert np.bitwise_count(mirrored_dhash(d) ^ dm)[0] >= 40
    assert mirror_distances(p, d, pm, dm)[1][0] == 0


def test_mirror_hashes_of_real_photographs_within_stated_bounds() -> None:
    """On 342 real photographs, portraits and crops: the dHash bits the derivation is sure
    of are always right (every difference is a tie), and the derived pHash is within 10 bits
    of the mirrored photo's own (median 4: the median threshold moves)."""
    imgs = _photos()
    p, d = phash_dhash(imgs)
    pm, dm = phash_dhash([i.transpose(MIRROR) for i in imgs])
    dp, dd = mirror_distances(p, d, pm, dm)
    assert len(imgs) == 342
    assert dd.max() == 0
    assert dp.max() <= 10 and np.median(dp) <= 4
    # the naive distance is far off on some (flat or textured areas tie)
    assert np.bitwise_count(mirrored_dhash(d) ^ dm).max() >= 10


def test_mirror_copies_fall_within_the_linker_criterion_unrelated_photos_do_not() -> None:
    """Two sellers' copies of a real photograph, one of them mirrored, each cropped, resized
    and re-compressed on its own: the mirror distance puts 95% within the linker's criterion.
    Unrelated photographs are no more often within it mirrored than as they are."""
    rng = random.Random(7)
    imgs = _photos()
    a = [_reused(i.convert("RGB"), rng) for i in imgs]
    b = [_reused(i.convert("RGB"), rng).transpose(MIRROR) for i in imgs]
    pa, da = phash_dhash(a)
    pb, db = phash_dhash(b)

    def within(dp: np.ndarray, dd: np.ndarray) -> np.ndarray:
        return (dp <= SETTINGS.photo_max_phash) & (dp + dd <= SETTINGS.photo_max_distance)

    dp, dd = mirror_distances(pa, da, pb, db)
    assert within(dp, dd).mean() >= 0.95
    # unrelated: the 22 photographs and the 100 portraits against each other
    n = 122
    i, j = np.triu_indices(n, 1)
    mirrored = within(*mirror_distances(pa[i], da[i], pb[j], db[j])).sum()
    plain_dp = np.bitwise_count(pa[i] ^ pa[j]).astype(np.int64)
    plain = within(plain_dp, np.bitwise_count(da[i] ^ da[j]).astype(np.int64)).sum()
    assert mirrored <= max(plain, 1) * 2


def _listing_frame(
    hashes: list[tuple[str, int, int]], descriptions: list[str] | None = None
) -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "listing_id": [f"l{k}" for k in range(len(hashes))],
            "seller_id": [s for s, _, _ in hashes],
            "phash": [p for _, p, _ in hashes],
            "dhash": [d for _, _, d in hashes],
        },
        schema_overrides={"phash": pl.UInt64, "dhash": pl.UInt64},
    )
    if descriptions is not None:
        frame = frame.with_columns(pl.Series("description", descriptions))
    return frame


def test_linker_links_a_shop_that_mirrored_another_shops_photo() -> None:
    """Two shops share a short description (not enough alone) and a photo, one shop's copy
    mirrored: a ring with mirror search, none without. A third shop's unrelated photos and
    their mirror images join nothing."""
    rng = random.Random(3)
    photos = sample_photographs()
    shared, other = photos["astronaut"], photos["rocket"]
    blurb = "hand stitched leather totes from workshop"
    rows, texts = [], []
    for shop, mirror in (("s1", False), ("s2", True)):
        copy = _reused(shared.convert("RGB"), rng)
        copy = copy.transpose(MIRROR) if mirror else copy
        p, d = phash_dhash([copy])
        rows.append((shop, int(p[0]), int(d[0])))
        texts.append(blurb)
    for photo in (other, other.transpose(MIRROR), photos["chelsea"]):
        p, d = phash_dhash([_reused(photo.convert("RGB"), rng)])
        rows.append(("s3", int(p[0]), int(d[0])))
        texts.append("vintage prints and posters")
    frame = _listing_frame(rows, texts)
    found = find_rings(frame)
    assert found.rings.select("sellers").to_series().to_list() == [["s1", "s2"]]
    link = found.links.filter("strong").row(0, named=True)
    assert link["evidence_counts"]["photo"] == 1 and link["evidence_counts"]["description"] == 1
    none = find_rings(frame, settings=NetworkSettings(photo_mirrors=False))
    assert none.rings.height == 0
    # the description alone is there either way
    assert none.links.get_column("evidence_counts").struct.field("description").to_list() == [1]


def test_a_symmetric_photo_is_not_its_own_evidence() -> None:
    """A photo whose mirror image is itself gives no pair with itself: one shop alone is never
    a ring, and two shops sharing it are linked once, as by any photo."""
    rows = np.tile(np.array([0, 40, 90, 200, 250, 200, 90, 40, 0], np.uint8), (8, 1))
    img = Image.fromarray(np.kron(rows, np.ones((8, 8), np.uint8)), "L")
    p, d = phash_dhash([img])
    alone = find_rings(_listing_frame([("s1", int(p[0]), int(d[0]))] * 3))
    assert alone.links.height == 0
    shared = find_rings(
        _listing_frame([("s1", int(p[0]), int(d[0])), ("s2", int(p[0]), int(d[0]))])
    )
    assert shared.links.height == 1
    assert shared.links.row(0, named=True)["evidence_counts"]["photo"] == 1


@pytest.mark.parametrize("mirrors", [True, False])
def test_mirror_search_keeps_random_photos_apart(mirrors: bool) -> None:
    """20,000 unrelated photos (random hashes) by 2,000 shops: no photo evidence either way."""
    rng = np.random.default_rng(1)
    n = 20_000
    frame = pl.DataFrame(
        {
            "listing_id": [f"l{k}" for k in range(n)],
            "seller_id": [f"s{k % 2000}" for k in range(n)],
            "phash": rng.integers(0, 2**64, n, dtype=np.uint64),
            "dhash": rng.integers(0, 2**64, n, dtype=np.uint64),
        }
    )
    found = find_rings(frame, settings=NetworkSettings(photo_mirrors=mirrors))
    assert found.links.height == 0
