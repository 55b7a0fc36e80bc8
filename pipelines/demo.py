"""``fakestop demo``: generate the sample marketplace from seeds/, score it and report quality."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from sklearn.metrics import average_precision_score

from pipelines.registry import default_registry_dir, load_registry
from pipelines.run import run_score
from pipelines.stages import ScoringPlan


def quality_table(scores: pl.DataFrame) -> pl.DataFrame:
    """PR-AUC of each score column and precision/recall of the decisions, on labelled rows."""
    ok = scores.filter((pl.col("status") == "ok") & pl.col("label").is_not_null())
    y = ok.get_column("label").to_numpy()
    rows = []
    for col in ("text_score", "price_score", "image_score", "risk"):
        if col not in ok.columns or ok.get_column(col).null_count() == ok.height:
            continue
        s = ok.get_column(col).fill_null(0.0).to_numpy()
        rows.append({"score": col, "pr_auc": float(average_precision_score(y, s))})
    return pl.DataFrame(rows)


def decision_table(scores: pl.DataFrame) -> pl.DataFrame:
    ok = scores.filter((pl.col("status") == "ok") & pl.col("label").is_not_null())
    out = []
    for name, flagged in (
        ("block", pl.col("decision") == "block"),
        ("review or block", pl.col("decision") != "allow"),
    ):
        tp = ok.filter(flagged & (pl.col("label") == 1)).height
        fp = ok.filter(flagged & (pl.col("label") == 0)).height
        pos = ok.filter(pl.col("label") == 1).height
        out.append(
            {
                "flag": name,
                "flagged": tp + fp,
                "precision": tp / (tp + fp) if tp + fp else float("nan"),
                "recall": tp / pos if pos else float("nan"),
            }
        )
    return pl.DataFrame(out)


#: brands that get official photos and known fakes in the demo registry
DEMO_PHOTO_BRANDS = 60


def run_demo(out: Path, *, n: int = 20_000, seed: int = 0, quiet: bool = False) -> Path:
    """Generate a labelled marketplace with photos, train on 60%, score and bench the rest.

    The marketplace is ``n`` listings of :func:`seeds.marketplace.generate_marketplace` and
    ``n // 10`` that a photo decides (:func:`seeds.marketplace.generate_reseller_photos`:
    resellers showing the official photo, counterfeits showing known fakes), shuffled; the
    registry's known fakes are look-alike photos of the brands' products.

    Writes into ``out``: ``registry/`` (the seed registry plus photos), ``images/``,
    ``train.parquet``, ``listings.parquet`` (the held-out 40%), ``model.skops`` (+ card),
    ``scores.parquet`` and ``report/`` (with ``review.html``, the review page of the flagged
    listings). Returns the scores path.
    """
    from filters.image import build_image_cache
    from pipelines.learn import bench_labelled, train_model
    from seeds.images import attach_images, sample_registry
    from seeds.marketplace import generate_marketplace, generate_reseller_photos

    out.mkdir(parents=True, exist_ok=True)
    base = load_registry(default_registry_dir())
    brands = base.brand_names[:DEMO_PHOTO_BRANDS]
    registry_dir = sample_registry(base, out / "registry", brands, seed=seed, lookalike_fakes=True)
    registry = load_registry(registry_dir)
    build_image_cache(registry)
    images = out / "images"
    market = generate_marketplace(registry, n, seed=seed, true_brand=True)
    market = attach_images(market, registry, images, seed=seed)
    by_photo = generate_reseller_photos(registry, n // 10, seed=seed)
    by_photo = attach_images(by_photo, registry, images, seed=seed + 1, share=1.0)
    market = (
        pl.concat([market, by_photo])
        .sample(fraction=1.0, shuffle=True, seed=seed)
        .drop("true_brand")
    )
    cut = int(market.height * 0.6)
    train_path, listings_path = out / "train.parquet", out / "listings.parquet"
    market.head(cut).write_parquet(train_path)
    market.slice(cut).write_parquet(listings_path)
    model_path = out / "model.skops"
    train_model(train_path, registry=registry_dir, images=images, out=model_path, seed=seed)
    plan = ScoringPlan.build(registry, images_root=images, model=model_path)
    scores_path = out / "scores.parquet"
    summary = run_score(listings_path, plan, scores_path, quiet=quiet)
    if not quiet:
        print(summary.line())
    report = bench_labelled(
        listings_path,
        registry=registry_dir,
        images=images,
        model=model_path,
        report=out / "report",
        seed=seed,
    )
    from pipelines.review import write_review

    review = report["html"].parent / "review.html"
    write_review(scores_path, registry=registry_dir, images=images, out=review)
    scores = pl.read_parquet(scores_path)
    if not quiet:
        with pl.Config(tbl_hide_dataframe_shape=True, float_precision=3):
            print(quality_table(scores))
            print(decision_table(scores))
        print(f"listings: {listings_path}\nscores:   {scores_path}\nmodel:    {model_path}")
        print(f"report:   {report['html']}")
        print(f"review:   {review}")
    return scores_path
