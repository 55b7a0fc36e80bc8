"""The scoring chain, shared by the batch runner, the Python API and the Spark runner.

listings -> validate/quarantine -> filters' evidence          (evidence_frame: once per listing)
         -> run statistics over the whole input               (pipelines.statistics)
         -> filters' final columns -> fusion -> decision -> reasons -> output   (final_frame)

:func:`score_frame` runs the whole chain on one frame, with the frame's own statistics.
"""

from __future__ import annotations

import hashlib
import inspect
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from filters import REGISTRY, Filter
from filters.base import spread
from models.features import OPTIONAL_INPUTS
from models.thresholds import Thresholds
from models.zeroshot import ZeroShotFusion
from pipelines.columns import OUTPUT_SCHEMA
from pipelines.config import Settings
from pipelines.errors import FakestopWarning
from pipelines.registry import Registry
from pipelines.schema import PARSE_ERROR, ROW, VALIDATION_NOTE, validated_listings
from pipelines.statistics import RunStatistics, statistics_of
from pipelines.validation import PRICE_RAW

#: filters run in this order: later filters read earlier filters' evidence (price reads text_brand)
FILTER_ORDER = ("text", "image", "price")
MAX_REASONS = 5


class Fusion(Protocol):
    def risk(self, lf: pl.LazyFrame) -> pl.LazyFrame: ...


def build_filters(
    registry: Registry, settings: Settings, *, images_root: str | Path | None = None
) -> list[Filter]:
    """Fit every registered filter on the registry, in :data:`FILTER_ORDER`."""
    options: dict[str, dict[str, Any]] = {
        "price": {
            "rates": settings.rates,
            "condition_factors": settings.condition_factors,
            "standard_volumes": settings.standard_volumes,
        },
        "image": {"images_root": None if images_root is None else str(images_root)},
    }
    names = [n for n in FILTER_ORDER if n in REGISTRY] + [
        n for n in REGISTRY if n not in FILTER_ORDER
    ]
    fitted = []
    for name in names:
        cls = REGISTRY[name]
        accepted = inspect.signature(cls.__init__).parameters
        params = {k: v for k, v in options.get(name, {}).items() if k in accepted}
        fitted.append(cls(**params).fit(registry))
    return fitted


@dataclass
class ScoringPlan:
    """Everything needed to score listings, fitted once and reused for every batch."""

    registry: Registry
    filters: list[Filter]
    fusion: Fusion = field(default_factory=ZeroShotFusion)
    thresholds: Thresholds = field(default_factory=Thresholds)
    settings: Settings = field(default_factory=Settings)
    #: sha256 of the trained model's card (None for the zero-shot fusion)
    model_hash: str | None = None
    #: where ``thresholds`` came from: "configuration FILE", "model card FILE", "defaults"
    #: or "given"
    thresholds_from: str = "defaults"

    @classmethod
    def build(
        cls,
        registry: Registry,
        *,
        settings: Settings | None = None,
        images_root: str | Path | None = None,
        fusion: Fusion | None = None,
        thresholds: Thresholds | None = None,
        model: str | Path | None = None,
    ) -> ScoringPlan:
        """Fit the filters; ``model`` is a file from ``fakestop train``, else the zero-shot
        fusion is used.

        Thresholds: ``thresholds`` if given, else the configuration's ``[decision]`` if it
        has one, else the model's own, else the defaults (:attr:`thresholds_from` says which).
        """
        settings = settings or Settings()
        model_hash = None
        configured = Thresholds(block=settings.block_threshold, review=settings.review_threshold)
        source = "given" if thresholds is not None else "defaults"
        if thresholds is None and settings.decision_from is not None:
            thresholds, source = configured, f"configuration {settings.decision_from}"
        if model is not None:
            from models.persist import card_path, load_model

            learned = load_model(model, registry_fingerprint=registry.fingerprint)
            fusion = learned
            if thresholds is None:
                thresholds, source = learned.thresholds, f"model card {card_path(model)}"
            model_hash = hashlib.sha256(card_path(model).read_bytes()).hexdigest()
        plan = cls(
            registry=registry,
            filters=build_filters(registry, settings, images_root=images_root),
            fusion=fusion or ZeroShotFusion(),
            thresholds=thresholds or configured,
            settings=settings,
            model_hash=model_hash,
            thresholds_from=source,
        )
        gap = plan.photos_not_compared()
        if images_root is not None and gap is not None:
            warnings.warn(gap, FakestopWarning, stacklevel=2)
        return plan

    def photos_not_compared(self) -> str | None:
        """Why listing photos are not compared with anything, or None when they are."""
        image = next((f for f in self.filters if f.name == "image"), None)
        if image is None or getattr(image, "compares_photos", True):
            return None
        return (
            f"the registry {self.registry.root} has no official photos or known fakes: "
            "listing photos are not compared (image_score stays null)"
        )

    def image_summary(self) -> dict[str, Any] | None:
        """What the image filter compares listing photos with (for the run manifest)."""
        image = next((f for f in self.filters if f.name == "image"), None)
        summary = getattr(image, "summary", None)
        return summary() if callable(summary) else None

    def missing_inputs(self, present: Iterable[str]) -> list[str]:
        """The optional inputs the trained model was trained with that ``present`` lacks
        (none for the zero-shot fusion)."""
        missing = getattr(self.fusion, "missing_inputs", None)
        return [] if missing is None else list(missing(present))


# ---------------------------------------------------------------- stages


def filter_evidence(lf: pl.LazyFrame, filters: list[Filter]) -> pl.LazyFrame:
    """Each filter adds what it computes from a listing alone (see :meth:`Filter.evidence`)."""
    for f in filters:
        lf = f.evidence(lf)
    return lf


def filter_finals(
    lf: pl.LazyFrame, filters: list[Filter], statistics: RunStatistics
) -> pl.LazyFrame:
    """Each filter that reads run statistics adds those columns (see :meth:`Filter.finalised`)."""
    for f in filters:
        lf = f.finalised(lf, statistics.table(f.name))
    return lf


def matched_brands(lf: pl.LazyFrame) -> pl.LazyFrame:
    """The protected brand a listing refers to: named in the title, else declared, else pictured."""
    cols = set(lf.collect_schema().names())
    sources = [c for c in ("text_brand", "price_brand", "image_brand") if c in cols]
    brand = pl.coalesce(sources) if sources else pl.lit(None, dtype=pl.String)
    return lf.with_columns(brand.cast(pl.String).alias("matched_brand"))


def inputs_with_values(frame: pl.DataFrame) -> list[str]:
    """The optional input columns of ``frame`` that hold a value in at least one row."""
    return [
        c
        for c in OPTIONAL_INPUTS
        if c in frame.columns and frame.get_column(c).null_count() < frame.height
    ]


def evidence_floors(lf: pl.LazyFrame, plan: ScoringPlan) -> pl.LazyFrame:
    """A trained model's floor under strong zero-shot evidence (see
    :func:`models.fusion.evidence_floor_exprs`); the zero-shot fusion has none."""
    floor = getattr(plan.fusion, "evidence_floor", None)
    return lf if floor is None else floor(lf, plan.thresholds)


def decisions(lf: pl.LazyFrame, thresholds: Thresholds) -> pl.LazyFrame:
    return lf.with_columns(thresholds.decision_expr().alias("decision"))


def _ranked_reasons(frame: pl.DataFrame, names: list[str]) -> pl.Series:
    """The reasons of the filters ``names`` in each row of ``frame``, strongest filter first."""
    # Each filter's reasons joined on NUL (reasons never contain NUL: see Filter). The joined
    # strings order the filters by (score, reasons) descending with plain column comparisons
    # (a prefix sorts first, as for lists), and are concatenated in that order and split once:
    # sorting structs or concatenating lists per row costs as much as all the filters together.
    score = {n: pl.col(f"{n}_score").fill_null(-1.0) for n in names}
    key = {n: pl.col(f"{n}_reasons").fill_null([]).list.join("\x00") for n in names}

    def before(a: str, b: str, ia: int, ib: int) -> pl.Expr:
        same = (score[a] == score[b]) & (key[a] == key[b])
        later = (score[a] > score[b]) | ((score[a] == score[b]) & (key[a] > key[b]))
        return later | (same & pl.lit(ia < ib))

    rank = {
        n: pl.sum_horizontal(
            [before(m, n, j, i).cast(pl.Int32) for j, m in enumerate(names) if m != n]
            or [pl.lit(0, pl.Int32)]
        )
        for i, n in enumerate(names)
    }
    # each reason led by NUL, so that an empty reason survives the split
    led = {
        n: pl.when(pl.col(f"{n}_reasons").list.len() > 0).then(
            pl.concat_str(pl.lit("\x00"), key[n])
        )
        for n in names
    }
    in_place = [
        pl.coalesce([pl.when(pl.col(f"__rank_{n}") == p).then(pl.col(f"__key_{n}")) for n in names])
        for p in range(len(names))
    ]
    joined = pl.concat_str(in_place, separator="", ignore_nulls=True)
    # ranks and keys as columns first (lazy, so each join above is computed once), then merged
    return (
        frame.lazy()
        .select(
            *(r.alias(f"__rank_{n}") for n, r in rank.items()),
            *(k.alias(f"__key_{n}") for n, k in led.items()),
        )
        .select(
            pl.when(joined != "")
            .then(joined.str.slice(1))
            .otherwise(None)
            .str.split("\x00")
            .fill_null(pl.lit([], dtype=pl.List(pl.String)))
        )
        .collect()
        .to_series()
    )


def explained(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Merge the filters' reasons, strongest filter first, at most :data:`MAX_REASONS`;
    the fusion's own reasons (``fusion_reasons``, under a trained model) lead.

    A flagged row always gets at least one reason. Validation's note (an unknown condition)
    comes last, always kept.
    """
    frame = lf.collect()
    present = [n for n in FILTER_ORDER if f"{n}_reasons" in frame.columns]
    has = {
        n: frame.select(pl.col(f"{n}_reasons").list.len().fill_null(0) > 0).to_series()
        for n in present
    }
    # a filter without reasons anywhere in the batch adds nothing to any row's merge
    names = [n for n in present if has[n].any()]
    empty = pl.lit([], dtype=pl.List(pl.String))
    merged: pl.Expr = empty
    if names:
        # most rows have reasons from one filter at most: those are that filter's reasons as
        # they are; the ranking runs only on rows with reasons from several filters
        merged = pl.coalesce(
            [pl.when(has[n]).then(pl.col(f"{n}_reasons")) for n in names] + [empty]
        )
        several = frame.select(
            pl.sum_horizontal([has[n].cast(pl.Int8) for n in names]) >= 2
        ).to_series()
        if several.any():
            # only the columns ranked: filtering the whole batch copies every column
            used = [c for n in names for c in (f"{n}_score", f"{n}_reasons")]
            aligned = spread(_ranked_reasons(frame.select(used).filter(several), names), several)
            merged = pl.when(several).then(pl.lit(aligned)).otherwise(merged)
    if "fusion_reasons" in frame.columns:
        fused = pl.col("fusion_reasons").fill_null(pl.lit([], dtype=pl.List(pl.String)))
        merged = pl.concat_list(fused, merged)
    fallback = pl.format("risk {} from several weak signals", pl.col("risk").round(2))
    reasons_out = (
        pl.when((pl.col("decision") != "allow") & (merged.list.len() == 0))
        .then(pl.concat_list(fallback))
        .otherwise(merged)
    )
    reasons_out = reasons_out.list.head(MAX_REASONS)
    if VALIDATION_NOTE in frame.columns and frame.get_column(VALIDATION_NOTE).is_not_null().any():
        note = pl.col(VALIDATION_NOTE)
        reasons_out = (
            pl.when(note.is_null())
            .then(reasons_out)
            .otherwise(pl.concat_list(reasons_out.list.head(MAX_REASONS - 1), note))
        )
    return frame.lazy().with_columns(reasons_out.alias("reasons"))


def final_listings(
    evidence: pl.LazyFrame, plan: ScoringPlan, statistics: RunStatistics | None = None
) -> pl.LazyFrame:
    """The steps that read run statistics, on valid rows with every filter's evidence: the
    filters' final columns, fusion, decision and reasons. ``statistics`` None: those of
    ``evidence`` itself."""
    frame = evidence.collect()
    if statistics is None:
        statistics = statistics_of([frame], plan.filters)
    return (
        filter_finals(frame.lazy(), plan.filters, statistics)
        .pipe(matched_brands)
        .pipe(plan.fusion.risk)
        .pipe(evidence_floors, plan)
        .pipe(decisions, plan.thresholds)
        .pipe(explained)
    )


def output_rows(
    lf: pl.LazyFrame, input_columns: list[str], *, keep_evidence: bool = False
) -> pl.LazyFrame:
    """Input columns (untouched) followed by the contract's output columns."""
    have = set(lf.collect_schema().names())
    carried = [c for c in input_columns if not c.startswith("__") and c not in OUTPUT_SCHEMA]
    out = [
        (pl.col(c) if c in have else pl.lit(None)).cast(t).alias(c)
        for c, t in OUTPUT_SCHEMA.items()
    ]
    evidence: list[str] = []
    if keep_evidence:
        evidence = [
            c
            for c in lf.collect_schema().names()
            if c not in carried and c not in OUTPUT_SCHEMA and not c.startswith("__")
        ]
    return lf.select([*carried, *out, *evidence])


def _prepared(frame: pl.DataFrame) -> pl.DataFrame:
    if ROW not in frame.columns:
        frame = frame.with_row_index(ROW)
    if PARSE_ERROR not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(PARSE_ERROR))
    if PRICE_RAW not in frame.columns and "price" in frame.columns:
        frame = frame.with_columns(pl.col("price").cast(pl.String).alias(PRICE_RAW))
    return frame


def evidence_frame(
    frame: pl.DataFrame, plan: ScoringPlan, *, seen_ids: pl.Series | None = None
) -> pl.DataFrame:
    """Validation and every filter's evidence for one batch: everything that does not read run
    statistics, computed once per listing. Every input row comes out once, in input order
    (quarantined rows with ``status`` and ``error`` and no evidence).

    ``frame`` is what :func:`pipelines.schema.read_listings` returns (contract dtypes and a
    ``__row`` index); a frame without ``__row`` is numbered here. ``seen_ids``: listing ids
    scored by earlier batches of the same run (later duplicates are quarantined).
    """
    frame = _prepared(frame)
    checked = validated_listings(frame.lazy(), plan.settings, seen_ids=seen_ids).collect()
    good = checked.filter(pl.col("status") == "ok")
    bad = checked.filter(pl.col("status") != "ok")
    evidence = filter_evidence(good.lazy(), plan.filters).collect()
    if bad.height == 0:
        return evidence
    return pl.concat([evidence, bad], how="diagonal_relaxed").sort(ROW)


def final_frame(
    evidence: pl.DataFrame,
    plan: ScoringPlan,
    statistics: RunStatistics,
    input_columns: list[str],
    *,
    keep_evidence: bool = False,
) -> pl.DataFrame:
    """The output rows of :func:`evidence_frame`'s rows with ``statistics``: the cheap last
    step. ``input_columns``: the columns of the batch as read (carried through untouched)."""
    ok = pl.col("status") == "ok"
    good = evidence.filter(ok)
    bad = evidence.filter(~ok)
    scored = final_listings(good.lazy(), plan, statistics)
    both = scored if bad.height == 0 else pl.concat([scored, bad.lazy()], how="diagonal_relaxed")
    if bad.height:
        both = both.sort(ROW)
    return output_rows(both, input_columns, keep_evidence=keep_evidence).collect()


def score_frame(
    frame: pl.DataFrame,
    plan: ScoringPlan,
    *,
    keep_evidence: bool = False,
    seen_ids: pl.Series | None = None,
    statistics: RunStatistics | None = None,
) -> pl.DataFrame:
    """Score one frame of listings: every input row comes out once, in input order.

    :func:`evidence_frame` then :func:`final_frame`. ``statistics``: the run statistics to
    score with (see :mod:`pipelines.statistics`); by default those of ``frame`` itself, as
    ``fakestop score`` computes them over its whole input.
    """
    frame = _prepared(frame)
    evidence = evidence_frame(frame, plan, seen_ids=seen_ids)
    if statistics is None:
        statistics = statistics_of([evidence], plan.filters)
    return final_frame(evidence, plan, statistics, frame.columns, keep_evidence=keep_evidence)
