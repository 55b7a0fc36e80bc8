"""Image filter: hashing throughput, exactness, Hamming matching and robustness, in one run.

Run: ``python -m benchmarks.bench_image --n 2000 --size 800 --workers 2``

1. **Throughput** on ``n`` generated ``size`` x ``size`` JPEGs (quality 85): the named baseline
   (a plain ``imagehash.phash(Image.open(p))`` loop), the bare decode floor (``load()``, one
   thread and ``workers`` threads; the floor is the faster), the draft-decode floor (what fast
   mode decodes: ``draft("L", (64, 64))`` then ``load()``) and :func:`hash_sources` exact and
   fast, on threads and processes. Best of ``--reps`` runs each.
2. **Exactness**: exact mode against ``imagehash.phash/dhash``; fast-mode pHash drift.
3. **Hamming matching**: 100k x 100k random 64-bit hashes with :func:`best_matches` (auto and
   brute force) and :func:`hamming_pairs` (brute, pigeonhole) against per-query numpy and
   pure-Python loops; then clustered hashes (near copies of a few random hashes, and hashes of
   generated product photos), checked against brute force on a slice of the queries.
4. **Robustness**: recall per transformation of official photos with the ``ImageFilter`` match
   criterion, and false matches of unrelated photos.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import imagehash
import numpy as np
import polars as pl
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from benchmarks import write_results
from filters.image import (
    MAX_PHASH_DISTANCE,
    best_matches,
    hamming_pairs,
    hash_sources,
    phash_dhash,
)
from filters.image import reference_hashes as build_references
from seeds.images import product_photo

MAX_DISTANCE = 28  # ImageFilter default: pHash + dHash <= 28 and pHash <= 14
CRITERION: dict[str, Any] = {"max_distance": MAX_DISTANCE, "max_phash": MAX_PHASH_DISTANCE}
OFFICIAL_SEED = 1_000_000  # official photos use seeds far from the throughput photos (0..n-1)


# ---------------------------------------------------------------- helpers


def best_of(reps: int, fn: Callable[[], object]) -> float:
    """Smallest wall time of ``reps`` calls."""
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


Table = dict[str, Any]


def table(header: Sequence[str], rows: Sequence[Sequence[object]], align: str = "") -> Table:
    """A table as the results file stores it; ``align`` has one letter per column (l or r,
    default l)."""
    return {
        "header": list(header),
        "align": align.ljust(len(header), "l"),
        "rows": [[str(c) for c in row] for row in rows],
    }


def markdown(t: Table) -> str:
    """``t`` as a Markdown table."""
    sep = ["---:" if a == "r" else "---" for a in t["align"]]
    lines = ["| " + " | ".join(t["header"]) + " |", "|" + "|".join(sep) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in t["rows"]]
    return "\n".join(lines)


def hex_int(h: imagehash.ImageHash) -> int:
    return int(str(h), 16)


def popcount(x: np.ndarray) -> np.ndarray:
    return np.bitwise_count(np.asarray(x, dtype=np.uint64)).astype(np.int64)


def save_jpeg(img: Image.Image, path: Path, quality: int) -> None:
    img.save(path, "JPEG", quality=quality)


# ---------------------------------------------------------------- 1 + 2: throughput, exactness


def decode_loop(paths: Sequence[Path]) -> None:
    for p in paths:
        Image.open(p).load()


def _draft_one(p: Path) -> None:
    im = Image.open(p)
    im.draft("L", (64, 64))
    im.load()


def draft_loop(paths: Sequence[Path]) -> None:
    for p in paths:
        _draft_one(p)


def threaded(fn: Callable[[Path], None], paths: Sequence[Path], workers: int) -> None:
    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(fn, paths):
            pass


def _decode_one(p: Path) -> None:
    Image.open(p).load()


def throughput(
    paths: list[Path], workers: int, reps: int
) -> tuple[Table, list[int], dict[str, pl.DataFrame]]:
    """The throughput table, the baseline's pHashes (as ints) and the ``hash_sources`` output of
    the exact and fast runs on ``workers`` threads (reused by the exactness and false-match
    checks)."""
    n = len(paths)
    baseline_out: list[imagehash.ImageHash] = []
    kept: dict[str, pl.DataFrame] = {}

    def keep(key: str, frame: pl.DataFrame) -> None:
        kept[key] = frame

    def baseline() -> None:
        baseline_out.clear()
        for p in paths:
            baseline_out.append(imagehash.phash(Image.open(p)))

    src: list[str] = [str(p) for p in paths]
    runs: list[tuple[str, Callable[[], object]]] = [
        ("baseline: `imagehash.phash(Image.open(p))` loop", baseline),
        ("decode floor: `Image.open(p).load()`, 1 thread", lambda: decode_loop(paths)),
        (
            f"decode floor: `Image.open(p).load()`, {workers} threads",
            lambda: threaded(_decode_one, paths, workers),
        ),
        (
            "draft-decode floor: `draft('L', (64, 64))` + `load()`, 1 thread",
            lambda: draft_loop(paths),
        ),
        (
            f"draft-decode floor: `draft('L', (64, 64))` + `load()`, {workers} threads",
            lambda: threaded(_draft_one, paths, workers),
        ),
        ("`hash_sources(fast=False, workers=1)`", lambda: hash_sources(src, fast=False, workers=1)),
        (
            f"`hash_sources(fast=False, workers={workers})` threads",
            lambda: keep("exact", hash_sources(src, fast=False, workers=workers)),
        ),
        ("`hash_sources(fast=True, workers=1)`", lambda: hash_sources(src, fast=True, workers=1)),
        (
            f"`hash_sources(fast=True, workers={workers})` threads (filter default)",
            lambda: keep("fast", hash_sources(src, fast=True, workers=workers)),
        ),
        (
            f"`hash_sources(fast=True, workers={workers}, processes=True)`",
            lambda: hash_sources(src, fast=True, workers=workers, processes=True),
        ),
    ]
    times: dict[str, float] = {}
    for name, fn in runs:
        times[name] = best_of(reps, fn)
    base = times[runs[0][0]]
    floor = min(times[runs[1][0]], times[runs[2][0]])
    dfloor = min(times[runs[3][0]], times[runs[4][0]])
    rows = []
    for name, _ in runs:
        t = times[name]
        rows.append(
            [
                name,
                f"{t:.2f}",
                f"{n / t:,.0f}",
                f"{base / t:.2f}x",
                f"{t / floor:.2f}",
                f"{t / dfloor:.2f}",
            ]
        )
    header = [
        f"path ({n:,} JPEGs)",
        "seconds",
        "images/s",
        "speed-up vs baseline",
        "time / decode floor",
        "time / draft floor",
    ]
    seconds = {name: round(t, 3) for name, t in times.items()}
    default = runs[8][0]
    figures = {
        "seconds": seconds,
        "default_speedup": round(base / times[default], 2),
        "default_over_decode_floor": round(times[default] / floor, 2),
        "default_over_draft_floor": round(times[default] / dfloor, 2),
    }
    out = {**table(header, rows, "lrrrrr"), **figures}
    return out, [hex_int(h) for h in baseline_out], kept


def exactness(
    paths: list[Path], ref_phash: list[int], exact: pl.DataFrame, fast: pl.DataFrame
) -> tuple[Table, float]:
    """The exactness table and the seconds of a plain ``imagehash.dhash`` loop."""
    t0 = time.perf_counter()
    ref_dhash = [hex_int(imagehash.dhash(Image.open(p))) for p in paths]
    dhash_s = time.perf_counter() - t0
    rp = np.array(ref_phash, dtype=np.uint64)
    rd = np.array(ref_dhash, dtype=np.uint64)
    n = len(paths)
    rows = []
    for name, frame in (("exact (`fast=False`)", exact), ("fast (`fast=True`)", fast)):
        ok = frame.get_column("phash").is_not_null().to_numpy()
        ph = frame.get_column("phash").fill_null(0).to_numpy().astype(np.uint64)
        dh = frame.get_column("dhash").fill_null(0).to_numpy().astype(np.uint64)
        dp = popcount(ph ^ rp)[ok]
        dd = popcount(dh ^ rd)[ok]
        rows.append(
            [
                name,
                f"{int(ok.sum()):,} / {n:,}",
                f"{(dp == 0).mean():.2%}",
                f"{(dd == 0).mean():.2%}",
                f"{dp.mean():.2f}",
                f"{np.percentile(dp, 99):.0f}",
                f"{dp.max()}",
                f"{dd.mean():.2f}",
                f"{dd.max()}",
            ]
        )
    header = [
        "mode vs imagehash",
        "hashed",
        "pHash equal",
        "dHash equal",
        "pHash drift mean (bits)",
        "p99",
        "max",
        "dHash drift mean",
        "max",
    ]
    return table(header, rows, "lrrrrrrrr"), dhash_s


# ---------------------------------------------------------------- 3: Hamming matching


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def same(a: Any, b: Any) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def near_copies(
    rng: np.random.Generator, centres: np.ndarray, n: int, p: float, fixed: bool = False
) -> np.ndarray:
    """``n`` hashes, each a centre (random ones, or ``centres`` in order with ``fixed``) with
    every bit flipped with probability ``p``."""
    flips = np.packbits(rng.random((n, 64)) < p, axis=1).view(">u8").reshape(-1)
    base = centres if fixed else centres[rng.integers(0, centres.size, n)]
    return base ^ flips.astype(np.uint64)


def photo_hashes(n: int) -> tuple[np.ndarray, ...]:
    """Real hash structure: references are ``n`` generated 128 px product photos, as stored and
    mirrored; queries are ``n // 2`` of them re-saved at JPEG quality 50 with 5% cropped per
    side, and ``n - n // 2`` other photos."""
    refs = [product_photo(OFFICIAL_SEED * 2 + i, 128) for i in range(n)]
    rp, rd = phash_dhash(refs + [im.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for im in refs])
    queries: list[Image.Image] = []
    for im in refs[: n // 2]:
        buf = io.BytesIO()
        _crop(0.05)(im).save(buf, "JPEG", quality=50)
        queries.append(Image.open(buf))
    queries += [product_photo(OFFICIAL_SEED * 3 + i, 128) for i in range(n - n // 2)]
    qp, qd = phash_dhash(queries)
    return qp, qd, rp, rd


def near_copy_sets(
    rng: np.random.Generator, n: int, centres: int, p: float
) -> tuple[np.ndarray, ...]:
    """``n`` queries and ``n`` references, each a (pHash, dHash) pair of ``centres`` random
    ones with every bit flipped with probability ``p``."""
    cp, cd = (rng.integers(0, 2**64, centres, dtype=np.uint64) for _ in range(2))
    out = []
    for _ in range(2):
        pick = rng.integers(0, centres, n)
        out += [
            near_copies(rng, cp[pick], n, p, fixed=True),
            near_copies(rng, cd[pick], n, p, True),
        ]
    return tuple(out)


def clustered_row(name: str, sets: tuple[np.ndarray, ...], check: int) -> list[str]:
    """``best_matches`` (auto) on one clustered set, and brute force on its first ``check``
    queries, for time and exactness."""
    qp, qd, rp, rd = sets
    auto_s, auto = timed(lambda: best_matches(qp, qd, rp, rd, **CRITERION))
    m = min(check, qp.size)
    sub_s, sub = timed(lambda: best_matches(qp[:m], qd[:m], rp, rd, **CRITERION, method="brute"))
    ok = same(sub, tuple(a[:m] for a in auto))
    return [
        name,
        f"{auto_s:.2f}",
        f"{sub_s * qp.size / m:.1f}",
        f"{int((auto.ref >= 0).sum()):,}",
        f"{int((auto.min_distance <= MAX_DISTANCE).sum()):,}",
        f"{m:,}: {'same' if ok else 'DIFFERENT'}",
    ]


def hamming(
    n: int, seed: int, naive_queries: int, python_queries: int, photos: int
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    qp, qd, rp, rd = (rng.integers(0, 2**64, n, dtype=np.uint64) for _ in range(4))
    rows = []

    bm_s, bm = timed(lambda: best_matches(qp, qd, rp, rd, **CRITERION))
    brute_s, brute_bm = timed(lambda: best_matches(qp, qd, rp, rd, **CRITERION, method="brute"))
    n_bm = int((bm.ref >= 0).sum())

    # naive peer: one vectorised numpy pass over all references per query
    k = min(naive_queries, n)
    t0 = time.perf_counter()
    for i in range(k):
        p = np.bitwise_count(qp[i] ^ rp)
        d = np.bitwise_count(qd[i] ^ rd) + p
        d[p > MAX_PHASH_DISTANCE] = 255
        j = int(d.argmin())
        _ = j if d[j] <= MAX_DISTANCE else -1
    naive_bm_s = (time.perf_counter() - t0) * n / k

    kp = min(python_queries, n)
    qpl, qdl = qp[:kp].tolist(), qd[:kp].tolist()
    rpl, rdl = rp.tolist(), rd.tolist()
    t0 = time.perf_counter()
    py_found = 0
    for a, b in zip(qpl, qdl, strict=True):
        best, best_j = 255, -1
        for j, (c, e) in enumerate(zip(rpl, rdl, strict=True)):
            p = (a ^ c).bit_count()
            if p <= MAX_PHASH_DISTANCE:
                d = p + (b ^ e).bit_count()
                if d < best:
                    best, best_j = d, j
        py_found += best <= MAX_DISTANCE and best_j >= 0
    py_bm_s = (time.perf_counter() - t0) * n / kp

    pb_s, brute = timed(lambda: hamming_pairs(qp, rp, radius=10, method="brute"))
    pp_s, pig = timed(lambda: hamming_pairs(qp, rp, radius=10, method="pigeonhole"))

    t0 = time.perf_counter()
    found = 0
    for i in range(k):
        found += int(np.flatnonzero(np.bitwise_count(qp[i] ^ rp) <= 10).size)
    naive_pairs_s = (time.perf_counter() - t0) * n / k

    pairs = f"{n:,} x {n:,}"
    rows = [
        [
            f"`best_matches` (pHash + dHash, {pairs}, auto: pigeonhole)",
            f"{bm_s:.2f}",
            f"{n_bm} matches ({'same as brute' if same(bm, brute_bm) else 'DIFFERENT'})",
            f"{naive_bm_s / bm_s:.1f}x",
            f"{py_bm_s / bm_s:,.0f}x",
        ],
        [
            f'`best_matches(method="brute")` ({pairs})',
            f"{brute_s:.2f}",
            f"{int((brute_bm.ref >= 0).sum())} matches",
            f"{naive_bm_s / brute_s:.1f}x",
            f"{py_bm_s / brute_s:,.0f}x",
        ],
        [
            f"naive: numpy loop per query (best match; {k:,} queries, extrapolated)",
            f"{naive_bm_s:.1f}",
            "",
            "1x",
            "",
        ],
        [
            f"naive: pure-Python loop (best match; {kp} queries, extrapolated)",
            f"{py_bm_s:,.0f}",
            "",
            f"{naive_bm_s / py_bm_s:.2f}x",
            "1x",
        ],
        [
            f'`hamming_pairs(radius=10, method="brute")` ({pairs})',
            f"{pb_s:.2f}",
            f"{brute[0].size} pairs",
            f"{naive_pairs_s / pb_s:.1f}x",
            "",
        ],
        [
            f'`hamming_pairs(radius=10, method="pigeonhole")` ({pairs})',
            f"{pp_s:.2f}",
            f"{pig[0].size} pairs ({'same' if same(brute, pig) else 'DIFFERENT'})",
            f"{naive_pairs_s / pp_s:.1f}x",
            "",
        ],
        [
            f"naive: numpy loop per query (pairs <= 10; {k:,} queries, extrapolated)",
            f"{naive_pairs_s:.1f}",
            "",
            "1x",
            "",
        ],
    ]
    header = ["matching (random uint64 hashes)", "seconds", "result", "vs numpy loop", "vs Python"]
    out: dict[str, Any] = {
        "random": table(header, rows, "lrrrr"),
        "best_matches_s": round(bm_s, 3),
        "hamming_pairs_s": round(pp_s, 3),
    }

    # clustered hashes: more candidates per bucket; exactness checked against brute force on a
    # slice of the queries (brute force over all of them would take as long as above)
    check = min(n, 10_000)
    crows = []
    datasets: list[tuple[str, tuple[np.ndarray, ...]]] = []
    for centres, p in ((n // 10, 0.05), (n // 100, 0.10)):
        datasets.append(
            (
                f"{n:,} x {n:,} near copies of {centres:,} random hashes (each bit flipped with "
                f"p = {p})",
                near_copy_sets(rng, n, centres, p),
            )
        )
    t0 = time.perf_counter()
    datasets.append(
        (
            f"{photos:,} x {2 * photos:,} generated product photos (128 px; refs as stored and "
            "mirrored; half the queries are JPEG q50 copies of refs cropped 5% per side)",
            photo_hashes(photos),
        )
    )
    photo_s = time.perf_counter() - t0
    for name, sets in datasets:
        crows.append(clustered_row(name, sets, check))
    cheader = [
        "`best_matches` on clustered hashes",
        "auto (s)",
        "brute force (s, extrapolated)",
        "queries matched",
        "queries with a reference within 28",
        "checked against brute force",
    ]
    out["clustered"] = table(cheader, crows, "lrrrrr")
    out["photo_hashes_s"] = round(photo_s, 2)
    return out


# ---------------------------------------------------------------- 4: robustness


def _watermark(img: Image.Image) -> Image.Image:
    img = img.copy()
    w, h = img.size
    draw = ImageDraw.Draw(img)
    draw.text((w // 10, h * 4 // 10), "BEST DEAL", fill=(255, 255, 255), font_size=w // 8)
    draw.text((4, 4), "shop.example", fill=(255, 255, 255), font_size=max(10, w // 30))
    return img


def _crop(share: float) -> Callable[[Image.Image], Image.Image]:
    def f(img: Image.Image) -> Image.Image:
        w, h = img.size
        return img.crop(
            (int(w * share), int(h * share), int(w * (1 - share)), int(h * (1 - share)))
        )

    return f


#: (name, transformation, JPEG quality of the saved query)
TRANSFORMS: list[tuple[str, Callable[[Image.Image], Image.Image], int]] = [
    ("none (re-saved, q90)", lambda im: im, 90),
    ("JPEG q30", lambda im: im, 30),
    (
        "resize 50%",
        lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.BILINEAR),
        90,
    ),
    ("watermark text", _watermark, 90),
    ("mirror", lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT), 90),
    ("rotate 90°", lambda im: im.transpose(Image.Transpose.ROTATE_90), 90),
    ("crop 5% per side", _crop(0.05), 90),
    ("crop 10% per side", _crop(0.10), 90),
    ("crop 15% per side", _crop(0.15), 90),
    (
        "rotate 2° (white fill)",
        lambda im: im.rotate(2.0, resample=Image.Resampling.BILINEAR, fillcolor="white"),
        90,
    ),
    ("brightness x1.2", lambda im: ImageEnhance.Brightness(im).enhance(1.2), 90),
    ("white border 2.5%", lambda im: ImageOps.expand(im, border=im.width // 40, fill="white"), 90),
]


def _random_match_rate(n_refs: int) -> float:
    """Expected matches per query if hashes were independent uniform 64-bit strings."""
    p = 0.0
    for a in range(MAX_PHASH_DISTANCE + 1):
        for b in range(MAX_DISTANCE - a + 1):
            p += math.comb(64, a) * math.comb(64, b)
    return n_refs * p / 2.0**128


def robustness(
    tmp: Path, n_photos: int, size: int, unrelated: pl.DataFrame, workers: int
) -> dict[str, Any]:
    """``unrelated``: ``hash_sources(fast=True)`` output for photos that are none of these."""
    off_dir = tmp / "official"
    q_dir = tmp / "queries"
    off_dir.mkdir()
    q_dir.mkdir()
    rels = []
    for i in range(n_photos):
        rel = f"official/{i}.jpg"
        save_jpeg(product_photo(OFFICIAL_SEED + i, size), tmp / rel, 92)
        rels.append(rel)
    registry = pl.DataFrame(
        {
            "image": [str(tmp / r) for r in rels],
            "relpath": rels,
            "brand": [f"brand{i % 20}" for i in range(n_photos)],
        }
    )
    t0 = time.perf_counter()
    refs = build_references(registry, fast=True, workers=workers)
    ref_s = time.perf_counter() - t0
    ref_p = refs.get_column("phash").to_numpy()
    ref_d = refs.get_column("dhash").to_numpy()
    ref_name = np.array(refs.get_column("ref").to_list())
    ref_photo = np.array([int(Path(r).stem) for r in ref_name])

    queries: list[str] = []
    truth: list[int] = []
    kind: list[str] = []
    for i, rel in enumerate(rels):
        with Image.open(tmp / rel) as opened:
            img = opened.convert("RGB")
        for t, (name, fn, quality) in enumerate(TRANSFORMS):
            path = q_dir / f"{i}_{t}.jpg"
            save_jpeg(fn(img), path, quality)
            queries.append(str(path))
            truth.append(i)
            kind.append(name)

    rows = []
    hashed = hash_sources(queries, fast=True, workers=workers)
    ok = hashed.get_column("phash").is_not_null().to_numpy()
    qp = hashed.get_column("phash").fill_null(0).to_numpy()
    qd = hashed.get_column("dhash").fill_null(0).to_numpy()
    bm = best_matches(qp, qd, ref_p, ref_d, max_distance=MAX_DISTANCE, max_phash=MAX_PHASH_DISTANCE)
    truth_a = np.array(truth)
    kind_a = np.array(kind)
    matched = (bm.ref >= 0) & ok
    right = matched & (ref_photo[np.maximum(bm.ref, 0)] == truth_a)
    # combined distance to the nearest variant of the right photo (margin to the threshold)
    comb = popcount(qp[:, None] ^ ref_p[None, :]) + popcount(qd[:, None] ^ ref_d[None, :])
    comb[:, :] = np.where(ref_photo[None, :] == truth_a[:, None], comb, 999)
    own = comb.min(axis=1)
    for name, _, _ in TRANSFORMS:
        m = kind_a == name
        rows.append(
            [
                name,
                f"{int(m.sum())}",
                f"{right[m].mean():.1%}",
                f"{int((matched & ~right)[m].sum())}",
                f"{np.median(own[m]):.0f}",
                f"{np.percentile(own[m], 90):.0f}",
            ]
        )
    rows.append(
        [
            "**all transformations**",
            f"{len(queries):,}",
            f"{right.mean():.1%}",
            f"{int((matched & ~right).sum())}",
            f"{np.median(own):.0f}",
            f"{np.percentile(own, 90):.0f}",
        ]
    )
    header = [
        f"query = official photo ({size}px) after",
        "queries",
        "recall (right photo)",
        "wrong photo",
        "median distance to own photo",
        "p90",
    ]
    out: dict[str, Any] = {
        "official_photos": n_photos,
        "reference_hashes": refs.height,
        "references_s": round(ref_s, 2),
        "max_distance": MAX_DISTANCE,
        "max_phash": MAX_PHASH_DISTANCE,
        "edits": table(header, rows, "lrrrrr"),
    }

    # false matches: unrelated photos against the same references
    un = unrelated
    uok = un.get_column("phash").is_not_null().to_numpy()
    up = un.get_column("phash").fill_null(0).to_numpy()[uok]
    ud = un.get_column("dhash").fill_null(0).to_numpy()[uok]
    ubm = best_matches(
        up, ud, ref_p, ref_d, max_distance=MAX_DISTANCE, max_phash=MAX_PHASH_DISTANCE
    )
    n_q = int(uok.sum())
    n_matched = int((ubm.ref >= 0).sum())
    pd_ = popcount(up[:, None] ^ ref_p[None, :])
    cd = pd_ + popcount(ud[:, None] ^ ref_d[None, :])
    hit = (pd_ <= MAX_PHASH_DISTANCE) & (cd <= MAX_DISTANCE)
    # matches per (query, reference photo): any variant of the photo within the criterion
    photo_hits = 0
    for ph in np.unique(ref_photo):
        photo_hits += int(hit[:, ref_photo == ph].any(axis=1).sum())
    min_d = cd.min(axis=1)
    fm_rows = [
        [
            f"{n_q:,} unrelated photos x {n_photos} references ({refs.height:,} hashes)",
            f"{n_matched} ({n_matched / n_q:.2%})",
            f"{photo_hits / n_q:.4f}",
            f"{photo_hits / (n_q * n_photos):.2e}",
            f"{_random_match_rate(refs.height):.1e}",
            f"{int(min_d.min())} / {np.percentile(min_d, 1):.0f} / {np.median(min_d):.0f}",
        ]
    ]
    fm_header = [
        "false matches",
        "queries matched",
        "expected matches per query",
        "per query-photo pair",
        "if hashes were random",
        "nearest distance min / p1 / median",
    ]
    out["false_matches"] = table(fm_header, fm_rows, "lrrrrr")
    return out


# ---------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000, help="JPEGs for throughput and false matches")
    ap.add_argument("--size", type=int, default=800, help="photo side in pixels")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tmp", default=None, help="parent directory for the generated photos")
    ap.add_argument("--reps", type=int, default=2, help="repetitions (best of) for throughput")
    ap.add_argument("--hashes", type=int, default=100_000, help="queries and refs for matching")
    ap.add_argument("--photos", type=int, default=200, help="official photos for robustness")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    start = time.perf_counter()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(dir=args.tmp, prefix="bench_image_") as tmp_s:
        tmp = Path(tmp_s)
        photos = tmp / "photos"
        photos.mkdir()
        t0 = time.perf_counter()
        paths = []
        for i in range(args.n):
            p = photos / f"{i}.jpg"
            save_jpeg(product_photo(i, args.size), p, 85)
            paths.append(p)
        gen_s = time.perf_counter() - t0
        print(
            f"{args.n:,} {args.size}x{args.size} JPEGs (q85, generated in {gen_s:.1f}s), "
            f"{os.cpu_count()} cores, load average at start "
            f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; best of {args.reps}\n"
        )

        print("### Throughput\n")
        through, baseline_phash, kept = throughput(paths, args.workers, args.reps)
        print(markdown(through), "\n")

        print("### Exactness against imagehash\n")
        exact, dhash_s = exactness(paths, baseline_phash, kept["exact"], kept["fast"])
        print(markdown(exact), f"\n\nplain `imagehash.dhash` loop: {dhash_s:.2f}s\n")

        print("### Hamming matching (single run)\n")
        matching = hamming(
            args.hashes, args.seed, naive_queries=1000, python_queries=5, photos=5000
        )
        print(markdown(matching["random"]), "\n\n", markdown(matching["clustered"]), "\n")

        print("### Robustness\n")
        robust = robustness(tmp, args.photos, args.size, kept["fast"], args.workers)
        print(markdown(robust["edits"]), "\n\n", markdown(robust["false_matches"]), "\n")
    load = os.getloadavg()
    print(
        f"total {time.perf_counter() - start:.0f}s; load average at end "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    write_results(
        "bench_image",
        {
            "jpegs": args.n,
            "size": args.size,
            "quality": 85,
            "workers": args.workers,
            "reps": args.reps,
            "generated_s": round(gen_s, 2),
            "throughput": through,
            "exactness": exact,
            "dhash_loop_s": round(dhash_s, 2),
            "matching": matching,
            "robustness": robust,
        },
    )


if __name__ == "__main__":
    main()
