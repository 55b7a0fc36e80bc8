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


def run_demo(out: Path, *, n: int = 20_000, seed: int = 0, quiet: bool = False) -> Path:
    from seeds.marketplace import generate_marketplace

    registry = load_registry(default_registry_dir())
    out.mkdir(parents=True, exist_ok=True)
    listings_path = out / "listings.parquet"
    generate_marketplace(registry, n, seed=seed).write_parquet(listings_path)
    plan = ScoringPlan.build(registry)
    scores_path = out / "scores.parquet"
    summary = run_score(listings_path, plan, scores_path, quiet=quiet)
    scores = pl.read_parquet(scores_path)
    if not quiet:
        print(summary.line())
        with pl.Config(tbl_hide_dataframe_shape=True, float_precision=3):
            print(quality_table(scores))
            print(decision_table(scores))
        print(f"listings: {listings_path}\nscores:   {scores_path}")
    return scores_path
