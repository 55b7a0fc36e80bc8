"""Quality of each filter and of the zero-shot fusion on the generated marketplace.

Run: ``python -m benchmarks.bench_quality --n 20000 --seed 1``

Prints PR-AUC, precision at recall 0.8/0.9 and recall at precision 0.99 for text, price and the
fused risk, the decision confusion, text recall per obfuscation family and the share of clean
titles the text filter flags; then side tables of more generated families, and for brands named
in other scripts and brands named only in the description, the recall and block precision
that ``benchmarks/results/bench_quality.json`` records; and listings a photo decides
(resellers showing the official photo beside counterfeits showing known fakes, in a registry
whose known fakes are look-alike photos).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import polars as pl
from sklearn.metrics import average_precision_score

from benchmarks import write_results
from models.report import precision_at_recall, recall_at_precision
from pipelines.registry import Registry, default_registry_dir, load_registry
from pipelines.stages import ScoringPlan, score_frame

OBFUSCATED_KINDS = (
    "fake_typo",
    "fake_confusable",
    "fake_fullwidth",
    "fake_zero_width",
    "fake_leet",
    "fake_spaced",
    "fake_masked",
)


def score_table(scored: pl.DataFrame) -> pl.DataFrame:
    y = scored.get_column("label").to_numpy()
    rows = []
    for col in ("text_score", "price_score", "image_score", "risk"):
        if col not in scored.columns or scored.get_column(col).null_count() == scored.height:
            continue
        s = scored.get_column(col).fill_null(0.0).to_numpy()
        rows.append(
            {
                "score": col,
                "pr_auc": average_precision_score(y, s),
                "p@r0.8": precision_at_recall(y, s, 0.8),
                "p@r0.9": precision_at_recall(y, s, 0.9),
                "r@p0.99": recall_at_precision(y, s, 0.99),
            }
        )
    return pl.DataFrame(rows)


def decision_table(scored: pl.DataFrame) -> pl.DataFrame:
    return (
        scored.group_by("decision")
        .agg(
            (pl.col("label") == 1).sum().alias("fake"),
            (pl.col("label") == 0).sum().alias("genuine"),
        )
        .with_columns((pl.col("fake") / (pl.col("fake") + pl.col("genuine"))).alias("precision"))
        .sort("decision")
    )


def text_recall_table(scored: pl.DataFrame) -> pl.DataFrame:
    """Per obfuscation family: share with the right brand found and share flagged (text >= 0.5)."""
    fam = scored.filter(pl.col("kind").is_in(OBFUSCATED_KINDS))
    per_kind = (
        fam.group_by("kind")
        .agg(
            pl.len().alias("n"),
            pl.col("text_brand").is_not_null().mean().alias("brand_found"),
            (pl.col("text_score") >= 0.5).mean().alias("flagged"),
        )
        .sort("kind")
    )
    total = fam.select(
        pl.lit("ALL obfuscated").alias("kind"),
        pl.len().alias("n"),
        pl.col("text_brand").is_not_null().mean().alias("brand_found"),
        (pl.col("text_score") >= 0.5).mean().alias("flagged"),
    )
    clean = scored.filter(pl.col("label") == 0).select(
        pl.lit("clean titles (genuine)").alias("kind"),
        pl.len().alias("n"),
        pl.col("text_brand").is_not_null().mean().alias("brand_found"),
        (pl.col("text_score") >= 0.5).mean().alias("flagged"),
    )
    return pl.concat([per_kind, total, clean], how="vertical_relaxed")


def kind_table(scored: pl.DataFrame) -> pl.DataFrame:
    return (
        scored.group_by("kind")
        .agg(
            pl.len().alias("n"),
            pl.col("label").first().alias("label"),
            (pl.col("decision") == "block").mean().alias("block"),
            (pl.col("decision") == "review").mean().alias("review"),
            pl.col("risk").mean().alias("mean_risk"),
        )
        .sort("label", "kind")
    )


def floors_table(scored: pl.DataFrame, family: str) -> pl.DataFrame:
    """Recall (share of fakes sent to review or blocked, and blocked alone), block precision
    and the share of genuine listings flagged, over a family of generated listings."""
    fake, genuine = pl.col("label") == 1, pl.col("label") == 0
    flagged, blocked = pl.col("decision") != "allow", pl.col("decision") == "block"
    return scored.select(
        pl.lit(family).alias("family"),
        pl.len().alias("n"),
        fake.sum().alias("fakes"),
        ((fake & flagged).sum() / fake.sum()).alias("recall"),
        ((fake & blocked).sum() / fake.sum()).alias("block_recall"),
        ((fake & blocked).sum() / blocked.sum()).alias("block_precision"),
        ((genuine & flagged).sum() / genuine.sum()).alias("genuine_flagged"),
    )


def photo_family(registry: Registry, n: int, seed: int) -> pl.DataFrame:
    """``n`` listings of :func:`seeds.marketplace.generate_reseller_photos` with their photos,
    scored zero-shot, in a registry of 60 brands with 2 official photos and 2 look-alike known
    fakes each."""
    from seeds.images import attach_images, sample_registry
    from seeds.marketplace import generate_reseller_photos

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        brands = registry.brand_names[:60]
        reg_dir = sample_registry(
            registry, root / "registry", brands, seed=seed, lookalike_fakes=True
        )
        with_photos = load_registry(reg_dir)
        market = generate_reseller_photos(with_photos, n, seed=seed)
        market = attach_images(market, with_photos, root / "images", seed=seed, share=1.0)
        plan = ScoringPlan.build(with_photos, images_root=root / "images")
        return score_frame(market.drop("true_brand"), plan).filter(pl.col("status") == "ok")


def block_precision(scored: pl.DataFrame) -> float:
    blocked = scored.filter(pl.col("decision") == "block")
    return float(blocked.get_column("label").to_numpy().mean()) if blocked.height else float("nan")


def main() -> None:
    from seeds.marketplace import (
        generate_categories,
        generate_descriptions,
        generate_everyday,
        generate_marketplace,
        generate_scripts,
        generate_small_goods,
    )

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    registry = load_registry(default_registry_dir())
    listings = generate_marketplace(registry, args.n, seed=args.seed)
    plan = ScoringPlan.build(registry)
    t0 = time.perf_counter()
    scored = score_frame(listings, plan, keep_evidence=True).filter(pl.col("status") == "ok")
    dt = time.perf_counter() - t0
    print(f"{args.n:,} listings (seed {args.seed}) scored in {dt:.2f}s; {scored.height:,} ok\n")
    with pl.Config(
        tbl_rows=60,
        float_precision=3,
        tbl_hide_dataframe_shape=True,
        tbl_formatting="MARKDOWN",
        tbl_hide_column_data_types=True,
    ):
        tables: dict[str, pl.DataFrame] = {
            "scores": score_table(scored),
            "decisions": decision_table(scored),
            "text_recall": text_recall_table(scored),
            "kinds": kind_table(scored),
        }
        print("Scores\n", tables["scores"], "\n")
        print("Decisions (zero-shot)\n", tables["decisions"], "\n")
        print(
            "Text filter: obfuscated brand mentions and clean titles\n",
            tables["text_recall"],
            "\n",
        )
        print("Per listing kind\n", tables["kinds"], "\n")
        side: dict[str, pl.DataFrame] = {}
        for name, title, generate in (
            (
                "small_goods",
                "A brand's own small goods ({:,} more listings: chargers, socks, key rings...)",
                generate_small_goods,
            ),
            (
                "everyday",
                "Everyday listings ({:,} more: plurals, small perfume bottles, fan kits; model "
                "names...)",
                generate_everyday,
            ),
        ):
            more = generate(registry, args.n // 10, seed=args.seed)
            more_scored = score_frame(more, plan).filter(pl.col("status") == "ok")
            side[name] = kind_table(more_scored)
            print(title.format(more.height) + "\n", side[name], "\n")
        floors = []
        kinds = {}
        for family, title, generate in (
            (
                "scripts",
                "Brands named in other scripts ({:,} more: Japanese, Korean, Russian, Arabic, "
                "Hebrew, Thai, Greek)",
                generate_scripts,
            ),
            (
                "descriptions",
                "Brands named only in the description ({:,} more; 50-300 words)",
                generate_descriptions,
            ),
            (
                "categories",
                "Marketplace categories ({:,} more: paths, synonyms, none; books and posters "
                "about brands)",
                generate_categories,
            ),
        ):
            more = generate(registry, args.n // 4, seed=args.seed)
            more_scored = score_frame(more, plan).filter(pl.col("status") == "ok")
            kinds[family] = kind_table(more_scored)
            print(title.format(more.height) + "\n", kinds[family], "\n")
            floors.append(floors_table(more_scored, family))
        table = pl.concat(floors)
        print("Floors: recall >= 0.95 and block precision >= 0.98\n", table, "\n")
        photos = photo_family(registry, args.n // 10, args.seed)
        print(
            f"Listings a photo decides ({photos.height:,} more: resellers showing the official "
            "photo, counterfeits showing known fakes; look-alike known fakes)\n",
            kind_table(photos),
            f"\nblock precision {block_precision(photos):.3f}\n",
        )
    write_results(
        "bench_quality",
        {
            "listings": args.n,
            "seed": args.seed,
            "scored_s": round(dt, 2),
            **{name: t.to_dicts() for name, t in tables.items()},
            **{name: t.to_dicts() for name, t in side.items()},
            "families": table.to_dicts(),
            "family_kinds": {family: kt.to_dicts() for family, kt in kinds.items()},
            "photos": kind_table(photos).to_dicts(),
            "photos_block_precision": block_precision(photos),
        },
    )


if __name__ == "__main__":
    main()
