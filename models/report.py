"""Benchmarks of scorers against labelled listings, and a self-contained report of them.

Every number comes from :mod:`sklearn.metrics` (``average_precision_score`` for PR-AUC and
``precision_recall_curve`` for the operating points) so it can be reproduced independently.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
from sklearn.metrics import average_precision_score, confusion_matrix, precision_recall_curve

#: operating points reported for every scorer
RECALL_LEVELS: tuple[float, ...] = (0.8, 0.9, 0.95)
PRECISION_LEVELS: tuple[float, ...] = (0.99,)
#: the filter scores the unsupervised ``mean`` / ``max`` baselines combine
FILTER_SCORES: tuple[str, ...] = ("text_score", "price_score", "image_score")
BASELINES: tuple[str, ...] = ("mean", "max")
#: listings shown in the "most confidently wrong" table
TOP_WRONG = 10
#: without a ``decision`` column, a listing counts as flagged from this risk on
DEFAULT_FLAG_RISK = 0.5


# ---------------------------------------------------------------- metrics


def precision_at_recall(y: npt.ArrayLike, score: npt.ArrayLike, recall: float) -> float:
    """Best precision over the operating points whose recall is at least ``recall``."""
    p, r, _ = precision_recall_curve(y, score)
    ok = r >= recall
    return float(p[ok].max()) if ok.any() else 0.0


def recall_at_precision(y: npt.ArrayLike, score: npt.ArrayLike, precision: float) -> float:
    """Best recall over the operating points whose precision is at least ``precision``."""
    p, r, _ = precision_recall_curve(y, score)
    ok = p >= precision
    return float(r[ok].max()) if ok.any() else 0.0


def pr_metrics(y: npt.ArrayLike, score: npt.ArrayLike) -> dict[str, Any]:
    """PR-AUC (average precision) and the standard operating points of one scorer."""
    yv = np.asarray(y).astype(np.int64)
    sv = np.asarray(score, dtype=np.float64)
    if yv.min(initial=0) == yv.max(initial=0):
        # one class only: the curve is undefined, not zero
        return {
            "pr_auc": None,
            "precision_at_recall": {f"{r:g}": None for r in RECALL_LEVELS},
            "recall_at_precision": {f"{p:g}": None for p in PRECISION_LEVELS},
        }
    return {
        "pr_auc": float(average_precision_score(yv, sv)),
        "precision_at_recall": {f"{r:g}": precision_at_recall(yv, sv, r) for r in RECALL_LEVELS},
        "recall_at_precision": {f"{p:g}": recall_at_precision(yv, sv, p) for p in PRECISION_LEVELS},
    }


# ---------------------------------------------------------------- bench


def labels(frame: pl.DataFrame, label: str) -> npt.NDArray[np.int64]:
    """The label column as 0/1 (booleans and integers accepted; nulls refused)."""
    if label not in frame.columns:
        raise ValueError(f"no label column {label!r}")
    col = frame.get_column(label)
    if col.null_count():
        raise ValueError(f"label column {label!r} has {col.null_count()} nulls")
    y = col.cast(pl.Int64).to_numpy()
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"label column {label!r} must hold 0/1 or booleans")
    return y.astype(np.int64)


def scorer_values(frame: pl.DataFrame, column: str) -> npt.NDArray[np.float64]:
    """One scorer's values; ``mean`` / ``max`` are baselines over the available filter scores.

    A null score (a filter with nothing to say) counts as 0, as in the zero-shot fusion.
    """
    if column in frame.columns:
        expr = pl.col(column).cast(pl.Float64).fill_null(0.0)
    elif column in BASELINES:
        present = [pl.col(c).cast(pl.Float64) for c in FILTER_SCORES if c in frame.columns]
        if not present:
            raise ValueError(f"baseline {column!r} needs at least one of {FILTER_SCORES}")
        combined = pl.mean_horizontal(present) if column == "mean" else pl.max_horizontal(present)
        expr = combined.fill_null(0.0)
    else:
        raise ValueError(f"no score column {column!r}")
    return frame.select(expr.alias("s")).to_series().to_numpy().astype(np.float64)


def _confusion(y: npt.NDArray[np.int64], flagged: npt.NDArray[np.bool_]) -> dict[str, int]:
    tn, fp, fn, tp = confusion_matrix(y, flagged.astype(np.int64), labels=[0, 1]).ravel()
    return {"tp": int(tp), "fp": int(fp), "fn": int(fn), "tn": int(tn)}


def _flags(frame: pl.DataFrame, column: str) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """(blocked, reviewed or blocked) of a decision column (null = allow)."""
    decision = frame.get_column(column).fill_null("allow")
    block = (decision == "block").to_numpy().astype(bool)
    flagged = decision.is_in(["block", "review"]).to_numpy().astype(bool)
    return block, flagged


def _safe_div(a: int, b: int) -> float | None:
    return a / b if b else None


def bench(
    frame: pl.DataFrame,
    *,
    label: str = "label",
    scores: dict[str, str],
    decisions: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Benchmark each scorer (``column -> display name``) against ``label``.

    ``decisions`` names decision columns (``display name -> column``; by default
    ``decision`` as "fusion" when it exists): each gets a confusion matrix at its thresholds
    and, when ``kind`` exists, recall and flag rate per kind. The most confidently wrong
    listings are those of the first decision column (or of ``risk`` >= 0.5 without one).
    """
    y = labels(frame, label)
    out: dict[str, Any] = {
        "n": len(y),
        "positives": int(y.sum()),
        "positive_rate": float(y.mean()) if len(y) else None,
        "scorers": {},
    }
    for column, name in scores.items():
        metrics = pr_metrics(y, scorer_values(frame, column))
        out["scorers"][name] = {"column": column, **metrics}
    if decisions is None:
        decisions = {"fusion": "decision"} if "decision" in frame.columns else {}
    decisions = {n: c for n, c in decisions.items() if c in frame.columns}
    flags = {name: _flags(frame, column) for name, column in decisions.items()}
    if flags:
        out["confusion"] = {}
        for name, (block, flagged) in flags.items():
            b, f = _confusion(y, block), _confusion(y, flagged)
            out["confusion"][name] = {
                "block": b,
                "review_or_block": f,
                "block_precision": _safe_div(b["tp"], b["tp"] + b["fp"]),
                "block_recall": _safe_div(b["tp"], b["tp"] + b["fn"]),
            }
    if "kind" in frame.columns and flags:
        kinds = frame.get_column("kind").cast(pl.String).fill_null("(none)").to_numpy()
        rows = []
        for kind in sorted(set(kinds.tolist())):
            mask = kinds == kind
            pos = mask & (y == 1)
            row: dict[str, Any] = {"kind": kind, "n": int(mask.sum()), "positives": int(pos.sum())}
            for name, (_, flagged) in flags.items():
                row[f"{name}: recall"] = _safe_div(int((flagged & pos).sum()), int(pos.sum()))
                row[f"{name}: flag rate"] = _safe_div(int((flagged & mask).sum()), int(mask.sum()))
            rows.append(row)
        out["by_kind"] = rows
    if "risk" in frame.columns:
        first = next(iter(decisions.values()), None)
        out["most_wrong"] = most_wrong(frame, label=label, decision=first)
    return out


#: columns shown for each of the most confidently wrong listings, where the frame has them
WRONG_COLUMNS: tuple[str, ...] = (
    "listing_id",
    "title",
    "kind",
    "price",
    "decision",
    "risk",
    "zero_shot_risk",
    "reasons",
    "image",
)


def most_wrong(
    frame: pl.DataFrame,
    *,
    label: str = "label",
    k: int = TOP_WRONG,
    decision: str | None = "decision",
) -> list[dict[str, Any]]:
    """The ``k`` wrongly decided listings whose risk is furthest from their label: genuine
    listings reviewed or blocked, counterfeit ones allowed (by the ``decision`` column; by
    risk 0.5 without one), with their reasons and photo path where the frame has them."""
    y = pl.col(label).cast(pl.Float64)
    risk = pl.col("risk").cast(pl.Float64).fill_null(0.0)
    if decision is not None and decision in frame.columns:
        flagged = pl.col(decision).fill_null("allow") != "allow"
        wrong = (flagged & (y == 0)) | (~flagged & (y == 1))
    else:
        wrong = (y - risk).abs() > 1.0 - DEFAULT_FLAG_RISK
    cols = [c for c in WRONG_COLUMNS if c in frame.columns]
    if decision is not None and decision != "decision" and decision in frame.columns:
        cols = [decision if c == "decision" else c for c in cols]
    rows = (
        frame.filter(wrong)
        .with_columns((y - risk).abs().alias("__w"))
        .sort("__w", descending=True, maintain_order=True)
        .head(k)
        .select([*cols, pl.col(label).cast(pl.Int64).alias("label")])
    )
    return rows.to_dicts()


# ---------------------------------------------------------------- report


def _fmt(v: object) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4f}"
    return str(v)


def _md_table(header: list[str], rows: list[list[object]]) -> str:
    def esc(v: object) -> str:
        return _cell(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def setup_lines(metrics: dict[str, Any]) -> list[str]:
    """What was measured, in sentences: the scorer, the thresholds and where they came from,
    the split, and any warnings (from ``metrics["setup"]``)."""
    setup = metrics.get("setup") or {}
    lines = []
    if setup.get("scorer"):
        lines.append(f"Scorer: {setup['scorer']}.")
    for name, th in (setup.get("thresholds") or {}).items():
        lines.append(
            f"{name}: block at risk >= {_fmt(th.get('block'))}, review at risk >= "
            f"{_fmt(th.get('review'))} (thresholds from {th.get('from', 'unknown')})."
        )
    if setup.get("split"):
        lines.append(f"Split: {setup['split']}.")
    lines += [f"Warning: {w}" for w in setup.get("warnings") or []]
    return lines


def _cell(v: object) -> str:
    if isinstance(v, list | tuple):
        return "; ".join(str(x) for x in v)
    return _fmt(v)


def _tables(metrics: dict[str, Any]) -> list[tuple[str, list[str], list[list[object]]]]:
    """(title, header, rows) of every table the summary and the HTML page show."""
    tables = []
    header = ["scorer", "PR-AUC"]
    header += [f"P@R{r:g}" for r in RECALL_LEVELS] + [f"R@P{p:g}" for p in PRECISION_LEVELS]
    rows: list[list[object]] = []
    for name, m in metrics.get("scorers", {}).items():
        rows.append(
            [name, m["pr_auc"]]
            + [m["precision_at_recall"][f"{r:g}"] for r in RECALL_LEVELS]
            + [m["recall_at_precision"][f"{p:g}"] for p in PRECISION_LEVELS]
        )
    tables.append(("Scorers", header, rows))
    if "confusion" in metrics:
        crow: list[list[object]] = []
        for name, c in metrics["confusion"].items():
            for flag in ("block", "review_or_block"):
                m = c[flag]
                crow.append([name, flag, m["tp"], m["fp"], m["fn"], m["tn"]])
        header = ["scorer", "flag", "TP", "FP", "FN", "TN"]
        tables.append(("Confusion at the decision thresholds", header, crow))
    if metrics.get("by_kind"):
        kcols = list(metrics["by_kind"][0])
        krow = [[r[c] for c in kcols] for r in metrics["by_kind"]]
        tables.append(("Recall and flag rate (review or block) by kind", kcols, krow))
    return tables


def _wrong_table(metrics: dict[str, Any]) -> tuple[list[str], list[list[object]]] | None:
    wrong = metrics.get("most_wrong")
    if not wrong:
        return None
    cols = [c for c in wrong[0] if c != "image"]
    return cols, [[r[c] for c in cols] for r in wrong]


def summary_markdown(metrics: dict[str, Any]) -> str:
    """The metrics as Markdown: what was measured, then the tables."""
    parts = [
        "# fakestop benchmark",
        "",
        f"{metrics.get('n')} listings, {metrics.get('positives')} counterfeit.",
    ]
    setup = setup_lines(metrics)
    if setup:
        parts += ["", *[f"- {line}" for line in setup]]
    for title, header, rows in _tables(metrics):
        parts += ["", f"## {title}", "", _md_table(header, rows)]
    wrong = _wrong_table(metrics)
    if wrong is not None:
        header, rows = wrong
        parts += ["", "## Most confidently wrong", "", _md_table(header, rows)]
    return "\n".join(parts) + "\n"


#: longest side of a photo thumbnail in the report, in pixels
THUMBNAIL = 96


def thumbnail(path: object, images: str | Path | None) -> str | None:
    """A small JPEG of a listing photo as base64, or None when there is none or it cannot be
    read (the same safe decoding as the image filter: a path leaving ``images`` is refused)."""
    if path is None or images is None:
        return None
    from filters.image import ImageRejected, open_image

    try:
        img = open_image(str(path), root=images, draft=THUMBNAIL * 2)
    except (ImageRejected, OSError, ValueError):
        return None
    img.thumbnail((THUMBNAIL, THUMBNAIL))
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=80)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figures(metrics: dict[str, Any], frame: pl.DataFrame, label: str) -> list[tuple[str, str]]:
    """(caption, base64 PNG) of the PR curves and each scorer's score histogram."""
    # imported here: matplotlib is only needed to draw reports, and Agg needs no display
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y = labels(frame, label)
    scorers = metrics.get("scorers", {})
    out: list[tuple[str, str]] = []
    fig, ax = plt.subplots(figsize=(6, 4.5))
    try:
        for name, m in scorers.items():
            s = scorer_values(frame, m["column"])
            if y.min(initial=0) == y.max(initial=0):
                continue
            p, r, _ = precision_recall_curve(y, s)
            auc = m["pr_auc"]
            ax.plot(r, p, drawstyle="steps-post", label=f"{name} (AP {auc:.3f})")
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_title("Precision-recall")
        if scorers:
            ax.legend(loc="lower left", fontsize="small")
        out.append(("Precision-recall curves", _png(fig)))
    finally:
        plt.close(fig)
    bins = np.linspace(0.0, 1.0, 41)
    for name, m in scorers.items():
        s = scorer_values(frame, m["column"])
        fig, ax = plt.subplots(figsize=(6, 3))
        try:
            lo, hi = float(np.min(s, initial=0.0)), float(np.max(s, initial=1.0))
            edges: list[float] | int = bins.tolist() if lo >= 0.0 and hi <= 1.0 else 40
            ax.hist(s[y == 0], bins=edges, alpha=0.6, label="genuine", color="tab:blue")
            ax.hist(s[y == 1], bins=edges, alpha=0.6, label="counterfeit", color="tab:red")
            ax.set_yscale("symlog")
            ax.set_xlabel(m["column"])
            ax.set_ylabel("listings")
            ax.set_title(f"{name}: score by label")
            ax.legend(fontsize="small")
            out.append((f"{name} score histogram", _png(fig)))
        finally:
            plt.close(fig)
    return out


def _html_table(header: list[str], rows: list[list[object]]) -> list[str]:
    parts = ["<table><tr>", *[f"<th>{html.escape(h)}</th>" for h in header], "</tr>"]
    for row in rows:
        cells = "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row)
        parts.append(f"<tr>{cells}</tr>")
    parts.append("</table>")
    return parts


def _wrong_html(metrics: dict[str, Any], images: str | Path | None) -> list[str]:
    """The most confidently wrong listings, each with its reasons as a list and its photo."""
    wrong = metrics.get("most_wrong") or []
    if not wrong:
        return []
    cols = [c for c in wrong[0] if c not in ("image", "reasons")]
    parts = ["<h2>Most confidently wrong</h2><table><tr><th>photo</th>"]
    parts += [f"<th>{html.escape(c)}</th>" for c in cols] + ["<th>reasons</th></tr>"]
    for r in wrong:
        thumb = thumbnail(r.get("image"), images)
        photo = (
            f'<img alt="listing photo" src="data:image/jpeg;base64,{thumb}">'
            if thumb is not None
            else "–"
        )
        reasons = "".join(f"<li>{html.escape(str(x))}</li>" for x in r.get("reasons") or [])
        cells = "".join(f"<td>{html.escape(_cell(r[c]))}</td>" for c in cols)
        parts.append(f"<tr><td>{photo}</td>{cells}<td><ul>{reasons}</ul></td></tr>")
    parts.append("</table>")
    return parts


def report_html(
    metrics: dict[str, Any],
    frame: pl.DataFrame,
    *,
    label: str = "label",
    images: str | Path | None = None,
) -> str:
    """A self-contained HTML page: what was measured, the tables, the most confidently wrong
    listings with their reasons and photo thumbnails (``images``: the directory listing
    photos are relative to) and embedded PNG charts. All listing text is escaped."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>fakestop benchmark</title>',
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;"
        "margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;"
        "vertical-align:top}ul{margin:0;padding-left:1.2em}</style></head><body>",
        "<h1>fakestop benchmark</h1>",
        f"<p>{html.escape(str(metrics.get('n')))} listings, "
        f"{html.escape(str(metrics.get('positives')))} counterfeit.</p>",
    ]
    setup = setup_lines(metrics)
    if setup:
        parts.append("<ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in setup) + "</ul>")
    for title, header, rows in _tables(metrics):
        parts.append(f"<h2>{html.escape(title)}</h2>")
        parts += _html_table(header, rows)
    parts += _wrong_html(metrics, images)
    parts.append("<h2>Charts</h2>")
    for caption, png in _figures(metrics, frame, label):
        alt = html.escape(caption, quote=True)
        parts.append(
            f'<figure><img alt="{alt}" src="data:image/png;base64,{png}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(
    metrics: dict[str, Any],
    frame: pl.DataFrame,
    out_dir: str | Path,
    *,
    label: str = "label",
    images: str | Path | None = None,
) -> dict[str, Path]:
    """Write ``metrics.json``, ``summary.md`` and ``report.html`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "metrics": out / "metrics.json",
        "summary": out / "summary.md",
        "html": out / "report.html",
    }
    paths["metrics"].write_text(
        json.dumps(metrics, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8"
    )
    paths["summary"].write_text(summary_markdown(metrics), encoding="utf-8")
    paths["html"].write_text(
        report_html(metrics, frame, label=label, images=images), encoding="utf-8"
    )
    return paths
