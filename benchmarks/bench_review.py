"""The review page at 1,000 flagged listings: its size, the time to write it, and how soon it is
interactive in headless Chromium.

Run: ``python -m benchmarks.bench_review --flagged 1000``

- a generated marketplace with photos (60 brands with official photos and known fakes) is
  scored with the zero-shot fusion; ``fakestop review`` writes the page of its ``--flagged``
  riskiest flagged listings;
- size: the page's bytes, and its bound: every listing shown with a photo of its own and every
  photo at the per-photo budget (``PHOTO_BYTES``; busy real photographs reach it);
- interactive: the page's own clock (``performance.now()`` since navigation) when its script
  has built the list, selected the first listing and bound the keys; the named baseline is the
  same page with no listing, loaded in the same browser; then the time a ``j`` key press takes
  to show the next listing (with its photos);
- the floor: at most 5 MB and interactive within 2 s.

Writes ``benchmarks/results/bench_review.json``. Needs Playwright and Debian's chromium.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

from benchmarks import write_results
from filters.image import build_image_cache
from pipelines.registry import default_registry_dir, load_registry
from pipelines.review import PHOTO_BYTES, ReviewData, render_page, write_review
from pipelines.run import run_score
from pipelines.stages import ScoringPlan
from seeds.images import attach_images, sample_registry
from seeds.marketplace import generate_marketplace

MAX_BYTES = 5_000_000
MAX_READY_MS = 2_000.0


def load_times(browser: Any, page_path: Path, repeats: int) -> dict[str, Any]:
    """Milliseconds from navigation to the page's ready mark, and per ``j`` key press."""
    ready: list[float] = []
    wall: list[float] = []
    key: list[float] = []
    for _ in range(repeats):
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
        t = time.perf_counter()
        page.goto(page_path.resolve().as_uri())
        page.wait_for_selector("body[data-ready]")
        wall.append((time.perf_counter() - t) * 1000.0)
        ready.append(float(page.get_attribute("body", "data-ready") or "nan"))
        if page.locator("#list li").count() > 1:
            page.locator("#list").focus()
            for _ in range(5):
                ms = page.evaluate(
                    """() => { const t = performance.now();
                    document.dispatchEvent(new KeyboardEvent('keydown', {key: 'j'}));
                    document.querySelector('#detail').getBoundingClientRect();
                    return performance.now() - t; }"""
                )
                key.append(float(ms))
        if errors:
            raise RuntimeError(f"{page_path}: page errors {errors}")
        context.close()
    return {
        "ready_ms_median": statistics.median(ready),
        "ready_ms_max": max(ready),
        "goto_to_ready_ms_median": statistics.median(wall),
        "key_ms_median": statistics.median(key) if key else None,
        "key_ms_max": max(key) if key else None,
        "repeats": repeats,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--flagged", type=int, default=1000)
    ap.add_argument("--listings", type=int, default=4000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--chromium", default=os.environ.get("FAKESTOP_CHROMIUM", "/usr/bin/chromium"))
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        base = load_registry(default_registry_dir())
        reg_dir = sample_registry(base, tmp / "registry", base.brand_names[:60], seed=args.seed)
        registry = load_registry(reg_dir)
        build_image_cache(registry)
        market = generate_marketplace(registry, args.listings, seed=args.seed, true_brand=True)
        market = attach_images(market, registry, tmp / "images", seed=args.seed)
        market.drop("true_brand").write_parquet(tmp / "listings.parquet")
        plan = ScoringPlan.build(registry, images_root=tmp / "images")
        run_score(tmp / "listings.parquet", plan, tmp / "scores.parquet", quiet=True)
        scores = pl.read_parquet(tmp / "scores.parquet")
        flagged = scores.filter(pl.col("decision") != "allow").height
        if flagged < args.flagged:
            raise SystemExit(f"only {flagged} flagged listings: raise --listings")

        t = time.perf_counter()
        done = write_review(
            tmp / "scores.parquet",
            registry=reg_dir,
            images=tmp / "images",
            out=tmp / "review.html",
            limit=args.flagged,
        )
        write_s = time.perf_counter() - t
        page_bytes = done["bytes"]
        text = (tmp / "review.html").read_text(encoding="utf-8")
        data = json.loads(text.split('id="review-data">', 1)[1].split("</script>", 1)[0])
        photo_chars = [len(u) for u in data["photos"].values()]
        listing_photos = {item["photo"] for item in data["listings"] if item["photo"]}
        with_photo = sum(1 for item in data["listings"] if item["photo"])
        references = done["photos"] - len(listing_photos)
        # the bound: every listing with a photo of its own, every photo at the budget
        cap = len("data:image/webp;base64,") + 4 * (PHOTO_BYTES + 2) // 3
        bound = page_bytes - sum(photo_chars) + (done["listings"] + references) * cap

        empty = tmp / "empty.html"
        empty.write_text(
            render_page(ReviewData([], {}, {}, [], "empty", "empty", "")), encoding="utf-8"
        )
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=args.chromium, headless=True, args=["--no-sandbox"]
            )
            baseline = load_times(browser, empty, args.repeats)
            full = load_times(browser, tmp / "review.html", args.repeats)
            browser.close()

    result = {
        "listings_scored": args.listings,
        "flagged_listings": flagged,
        "listings_shown": done["listings"],
        "listings_with_a_photo": with_photo,
        "photos_embedded": done["photos"],
        "mean_photo_chars": round(statistics.mean(photo_chars)) if photo_chars else 0,
        "page_bytes": page_bytes,
        "page_bytes_bound_every_listing_own_photo_at_budget": bound,
        "write_seconds": round(write_s, 2),
        "baseline_empty_page": baseline,
        "page": full,
        "ready_ms_over_baseline": round(full["ready_ms_median"] - baseline["ready_ms_median"], 1),
        "floor_bytes_met": bound <= MAX_BYTES,
        "floor_ready_met": full["ready_ms_max"] <= MAX_READY_MS,
    }
    write_results("bench_review", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
