"""Robustness of the image filter on real photographs the project does not make.

Run: ``python -m benchmarks.bench_image_robustness`` (every section) or
``python -m benchmarks.bench_image_robustness --sections images``.

Each section is a function that returns a dict; :func:`main` runs the chosen sections, prints
their tables and writes ``benchmarks/results/bench_image_robustness.json`` (a section not run keeps
its last result there).

``images``: real photographs (the sample photos of scikit-image, matplotlib and scikit-learn,
and crops of them; the portraits of scikit-image's LFW subset):

1. **Unrelated distances**: the combined (pHash + dHash) distance of every pair of a crop and a
   reference variant of a crop of another photograph, hashed as the filter hashes (fast mode),
   and of every pair of different portraits (photos of one kind, alike in framing: "similar
   material"). The beta-binomial tail fitted to the first
   (:func:`filters.image.null.fit_null_tail`) is set beside the one the filter ships
   (:data:`filters.image.null.NULL_TAIL`).
2. **False matches per listing** at the shipped thresholds: ``ImageFilter`` (defaults) fitted on
   registries of crops of half of the photographs, scoring crops of the other half (and the
   other way round); and portraits against a registry of the other portraits. The floor: at
   most 1 listing in 10,000 matched.
3. **Copies found**: every photograph and portrait in a registry of them all, after common
   edits, matched at the shipped thresholds to its own reference; the strength of the match.
"""

from __future__ import annotations

import argparse
import functools
import random
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from benchmarks import write_results


def table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """A Markdown table of ``rows`` (floats below 0.01 in scientific notation)."""
    cols = columns or list(rows[0])

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.2e}" if 0 < abs(v) < 0.01 else f"{v:.3f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------- images


def _write_registry(
    root: Path, photos: Sequence[Image.Image | bytes], fake_share: float = 0.5
) -> Path:
    """A registry of ``photos`` (images, saved as JPEG q90, or JPEG files' bytes): the first
    half official photos, the rest known fakes, all of one brand."""
    from seeds.real_photos import jpeg_bytes

    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "brands.csv").write_text(
        "brand,category,reference_price,aliases\nAcme,bags,500,\n", encoding="utf-8"
    )
    cut = int(len(photos) * (1 - fake_share))
    official, fakes = ["image,brand"], ["image,brand"]
    for i, img in enumerate(photos):
        rel = f"refs/{i:05d}.jpg"
        (root / rel).write_bytes(img if isinstance(img, bytes) else jpeg_bytes(img, 90))
        (official if i < cut else fakes).append(f"{rel},Acme")
    (root / "official_images.csv").write_text("\n".join(official) + "\n", encoding="utf-8")
    (root / "known_fakes.csv").write_text("\n".join(fakes) + "\n", encoding="utf-8")
    return root


def _scored(filt: Any, blobs: list[bytes]) -> pl.DataFrame:
    frame = pl.DataFrame({"image": pl.Series(blobs, dtype=pl.Binary)})
    out = filt.score(frame).collect()
    hit = pl.col("image_reasons").list.eval(pl.element().str.starts_with("image matches"))
    return out.with_columns(
        hit.list.any().alias("matched"),
        pl.min_horizontal("image_official_distance", "image_fake_distance").alias("nearest"),
    )


def _unrelated_counts(
    photos: dict[str, Image.Image], faces: list[Image.Image], crops: int, seed: int, tmp: Path
) -> dict[str, np.ndarray]:
    """Distance counts of unrelated pairs: crops of different photographs; different faces."""
    from filters.image import hash_sources, reference_hashes
    from seeds.real_photos import distance_counts, jpeg_bytes, random_crops

    rng = random.Random(seed)
    # each family's images by group (a photograph's crops, or one portrait), made lazily: the
    # crops are written as they come, not held in memory
    def crops_of(photo: Image.Image) -> list[Image.Image]:
        return [c for _, c in random_crops(photo, crops, rng)]

    families: dict[str, list[Callable[[], list[Image.Image]]]] = {
        "different photographs": [functools.partial(crops_of, p) for p in photos.values()],
        "portraits": [functools.partial(list, [f]) for f in faces],
    }
    out: dict[str, np.ndarray] = {}
    for family, groups in families.items():
        rows, group = [], []
        for g, make in enumerate(groups):
            for k, img in enumerate(make()):
                path = tmp / f"{family[:4]}_{g}_{k}.jpg"
                path.write_bytes(jpeg_bytes(img, rng.choice([75, 85, 95])))
                rows.append({"image": str(path), "relpath": path.name, "brand": "x"})
                group.append(g)
        frame = pl.DataFrame(rows)
        refs = reference_hashes(frame, fast=True)
        queries = hash_sources(frame.get_column("image").to_list(), fast=True)
        ok = queries.get_column("phash").is_not_null().to_numpy()
        at = dict(zip(frame.get_column("relpath").to_list(), group, strict=True))
        out[family] = distance_counts(
            (queries["phash"].to_numpy()[ok], queries["dhash"].to_numpy()[ok]),
            (refs["phash"].to_numpy(), refs["dhash"].to_numpy()),
            query_group=np.asarray(group)[ok],
            ref_group=[at[r] for r in refs.get_column("ref").to_list()],
        )
    return out


def _crop(share: float) -> Callable[[Image.Image], Image.Image]:
    def f(img: Image.Image) -> Image.Image:
        w, h = img.size
        return img.crop(
            (int(w * share), int(h * share), int(w * (1 - share)), int(h * (1 - share)))
        )

    return f


def _watermark(img: Image.Image) -> Image.Image:
    out = img.convert("RGB")
    size = max(10, img.width // 20)
    ImageDraw.Draw(out).text((8, 8), "SALE shop.example", fill=(255, 255, 255), font_size=size)
    return out


def _recompressed(img: Image.Image, quality: int) -> Image.Image:
    import io

    from seeds.real_photos import jpeg_bytes

    return Image.open(io.BytesIO(jpeg_bytes(img.convert("RGB"), quality)))


#: common edits of a reused photo (each is then saved as JPEG q90)
EDITS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "none (re-saved)": lambda im: im,
    "JPEG q30": lambda im: _recompressed(im, 30),
    "resize 50%": lambda im: im.resize((max(1, im.width // 2), max(1, im.height // 2))),
    "crop 5% per side": _crop(0.05),
    "crop 10% per side": _crop(0.10),
    "mirror": ImageOps.mirror,
    "rotate 90°": lambda im: im.transpose(Image.Transpose.ROTATE_90),
    "brightness x1.2": lambda im: ImageEnhance.Brightness(im.convert("RGB")).enhance(1.2),
    "watermark text": _watermark,
    "rotate 2°": lambda im: im.convert("RGB").rotate(
        2, resample=Image.Resampling.BICUBIC, fillcolor="white"
    ),
    "white border 2.5%": lambda im: ImageOps.expand(
        im.convert("RGB"), border=max(1, im.width // 40), fill="white"
    ),
}


def image_section(
    *,
    crops: int = 150,
    listings: int = 30_000,
    registry_sizes: tuple[int, ...] = (100, 1000),
    seed: int = 0,
) -> dict[str, Any]:
    """Unrelated distances, false matches per listing and copies found, on real photographs."""
    from filters.image import KIND_SCORE, ImageFilter
    from filters.image.null import CHANCE_BUDGET, NULL_TAIL, chance_within, fit_null_tail
    from filters.image.null import pair_chance as model
    from pipelines.errors import FakestopWarning
    from pipelines.registry import load_registry
    from seeds.real_photos import jpeg_bytes, portraits, random_crops, sample_photographs

    t0 = time.perf_counter()
    photos = sample_photographs()
    faces = portraits()
    result: dict[str, Any] = {
        "photographs": sorted(photos),
        "portraits": len(faces),
        "shipped_tail": list(NULL_TAIL),
        "chance_budget": CHANCE_BUDGET,
    }
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        # 1. unrelated distances
        counts = _unrelated_counts(photos, faces, crops, seed, tmp)
        null_tail = fit_null_tail(counts["different photographs"])
        result["refit_tail"] = list(null_tail)
        result["unrelated_pairs"] = {f: int(c.sum()) for f, c in counts.items()}
        tail = []
        for d in range(12, 34, 2):
            row: dict[str, Any] = {"distance": d}
            for family, c in counts.items():
                row[f"{family}: pairs within"] = int(c[: d + 1].sum())
                row[f"{family}: share"] = float(c[: d + 1].sum() / c.sum())
            row["shipped model"] = float(model(d))
            row["refit model"] = float(model(d, null_tail))
            tail.append(row)
        result["unrelated_tail"] = tail

        # 2. false matches per listing at the shipped thresholds
        names = sorted(photos)
        halves = (names[0::2], names[1::2])
        rng = random.Random(seed + 1)
        per_photo = -(-listings // len(names))

        def listing_chunks(of: list[str], size: int = 2_000) -> Iterator[list[bytes]]:
            """The listing photos of the photographs ``of`` (the same at every call), a chunk
            at a time."""
            chunk: list[bytes] = []
            for n in of:
                crop_rng = random.Random(f"{seed}:{n}")
                for _, c in random_crops(photos[n], per_photo, crop_rng):
                    chunk.append(jpeg_bytes(c, crop_rng.choice([75, 85, 95])))
                    if len(chunk) >= size:
                        yield chunk
                        chunk = []
            if chunk:
                yield chunk

        false_rows: list[dict[str, Any]] = []
        for size in registry_sizes:
            # the shipped thresholds; for the largest registry also the single band of 28 (pHash
            # at most 14) that every registry had before
            setups = {"shipped": ImageFilter()}
            if size == max(registry_sizes):
                setups["band 28 (before)"] = ImageFilter(chance_budget=1 - 1e-12)
            rows: dict[str, dict[str, Any]] = {
                name: {
                    "registry": f"{size:,} crops of other photographs",
                    "thresholds": name,
                    "listings": 0,
                    "matched": 0,
                    "match_distances": [],
                }
                for name in setups
            }
            for side in (0, 1):
                mine, theirs = halves[side], halves[1 - side]
                per = -(-size // len(mine))
                blobs = [
                    jpeg_bytes(c, 90) for n in mine for _, c in random_crops(photos[n], per, rng)
                ]
                rng.shuffle(blobs)
                reg = load_registry(_write_registry(tmp / f"reg_{size}_{side}", blobs[:size]))
                with warnings.catch_warnings():
                    # overlapping crops of one photograph are near copies of each other: those
                    # known fakes are set aside, as they should be
                    warnings.simplefilter("ignore", FakestopWarning)
                    fitted = {name: f.fit(reg) for name, f in setups.items()}
                for chunk in listing_chunks(theirs):
                    for name, filt in fitted.items():
                        scored = _scored(filt, chunk)
                        row = rows[name]
                        row["listings"] += scored.height
                        row["matched"] += int(scored.get_column("matched").sum())
                        row["match_distances"] += scored.filter("matched")["nearest"].to_list()
            for name, filt in fitted.items():
                row = rows[name]
                row.update(
                    reference_hashes=filt.comparisons_,
                    band=filt.band_,
                    rate=row["matched"] / row["listings"],
                    model_rate=float(chance_within(filt.band_, filt.comparisons_)),
                )
                row["match_distances"] = sorted(row["match_distances"])
                false_rows.append(row)
        row = {
            "registry": f"{len(faces) // 2} portraits",
            "thresholds": "shipped",
            "listings": 0,
            "matched": 0,
        }
        for side in (0, 1):
            reg = load_registry(_write_registry(tmp / f"faces_{side}", faces[side::2]))
            filt = ImageFilter().fit(reg)
            scored = _scored(filt, [jpeg_bytes(f, 90) for f in faces[1 - side :: 2]])
            row["listings"] += scored.height
            row["matched"] += int(scored.get_column("matched").sum())
        row.update(
            reference_hashes=filt.comparisons_,
            band=filt.band_,
            rate=row["matched"] / row["listings"],
            model_rate=float(chance_within(filt.band_, filt.comparisons_)),
            match_distances=[],
        )
        false_rows.append(row)
        result["false_matches"] = false_rows

        # 3. copies found: every photograph and portrait after common edits
        pool = [photos[n] for n in names] + faces
        filt = ImageFilter().fit(load_registry(_write_registry(tmp / "everything", pool)))
        own = list(range(len(pool)))
        copies = []
        for name, edit in EDITS.items():
            blobs = [jpeg_bytes(edit(pool[i]).convert("RGB"), 90) for i in own]
            scored = _scored(filt, blobs)
            reasons = scored.get_column("image_reasons").to_list()
            right = [
                bool(r) and f"refs/{i:05d}.jpg " in r[0] for i, r in zip(own, reasons, strict=True)
            ]
            kind = [
                "fake" if r and r[0].startswith("image matches known fake") else "official"
                for r in reasons
            ]
            strength = [
                (s or 0.0) / KIND_SCORE[k]
                for s, k in zip(scored.get_column("image_score").to_list(), kind, strict=True)
            ]
            copies.append(
                {
                    "edit": name,
                    "copies": len(own),
                    "found": float(np.mean(right)),
                    "wrong photo": int(
                        sum(m and not r for m, r in zip(scored["matched"], right, strict=True))
                    ),
                    "median distance": float(np.median(scored.get_column("nearest").to_numpy())),
                    "mean strength": float(np.mean(strength)),
                }
            )
        result["copies"] = {
            "photos": len(pool),
            "reference_hashes": filt.comparisons_,
            "band": filt.band_,
            "rows": copies,
        }
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result


def print_images(result: dict[str, Any]) -> None:
    print(
        f"{len(result['photographs'])} photographs, {result['portraits']} portraits; "
        f"unrelated pairs: {result['unrelated_pairs']}; shipped tail {result['shipped_tail']}, "
        f"refit {result['refit_tail']} ({result['seconds']} s)\n"
    )
    print(table(result["unrelated_tail"]), "\n")
    cols = ["registry", "thresholds", "reference_hashes", "band", "listings", "matched", "rate"]
    cols.append("model_rate")
    print(table(result["false_matches"], cols), "\n")
    copies = result["copies"]
    print(
        f"{copies['photos']} photos among {copies['reference_hashes']:,} reference hashes, "
        f"band {copies['band']}"
    )
    print(table(copies["rows"]), "\n")


SECTIONS: dict[str, tuple[Callable[[], dict[str, Any]], Callable[[dict[str, Any]], None]]] = {
    "images": (image_section, print_images),
}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--sections", nargs="+", choices=sorted(SECTIONS), default=sorted(SECTIONS))
    args = ap.parse_args(argv)
    results: dict[str, Any] = {}
    for name in args.sections:
        run, show = SECTIONS[name]
        results[name] = run()
        show(results[name])
    print(f"-> {write_results('bench_image_robustness', results, sections=True)}")


if __name__ == "__main__":
    main()
