"""The in-process API a crawler embeds.

>>> from pipelines import Scorer
>>> scorer = Scorer.from_registry("seeds/registry")            # doctest: +SKIP
>>> scorer.score_one({"listing_id": "x1", "title": "R0lex Submariner", "price": 49.0}).decision
'block'                                                        # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import threading
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl
from PIL import Image

from pipelines.config import Settings, load_settings
from pipelines.errors import FakestopWarning, MissingInputWarning, ValidationError
from pipelines.record import coerce_record, score_record, supports_records
from pipelines.registry import load_registry
from pipelines.schema import INPUT_SCHEMA, PARSE_ERROR, conform
from pipelines.stages import OUTPUT_SCHEMA, ScoringPlan, inputs_with_values, score_frame
from pipelines.statistics import RunStatistics, load_statistics
from pipelines.validation import PRICE_RAW, PRICE_SIGN, RULE_NAMES

OnError = Literal["raise", "quarantine"]


@dataclass(frozen=True)
class ScoreResult:
    """One scored listing: the same fields as an output row of ``fakestop score``."""

    listing_id: str | None
    risk: float | None
    decision: str | None
    text_score: float | None
    price_score: float | None
    image_score: float | None
    matched_brand: str | None
    reasons: tuple[str, ...]
    status: str
    error: str | None
    #: the price as written
    price_raw: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ScoreResult:
        return cls(
            listing_id=row.get("listing_id"),
            risk=row.get("risk"),
            decision=row.get("decision"),
            text_score=row.get("text_score"),
            price_score=row.get("price_score"),
            image_score=row.get("image_score"),
            matched_brand=row.get("matched_brand"),
            reasons=tuple(row.get("reasons") or ()),
            status=row["status"],
            error=row.get("error"),
            price_raw=row.get("price_raw"),
        )


def _as_mapping(listing: object) -> dict[str, Any]:
    """Accept a dict, a dataclass, a pydantic-style model or any object with attributes."""
    if isinstance(listing, Mapping):
        return dict(listing)
    if dataclasses.is_dataclass(listing) and not isinstance(listing, type):
        return dataclasses.asdict(listing)
    dump = getattr(listing, "model_dump", None) or getattr(listing, "dict", None)
    if callable(dump):
        data = dump()
        if isinstance(data, Mapping):
            return dict(data)
    fields = [*INPUT_SCHEMA, *getattr(listing, "__annotations__", {})]
    out = {f: getattr(listing, f) for f in dict.fromkeys(fields) if hasattr(listing, f)}
    if not out:
        raise ValidationError(
            f"cannot read a listing from {type(listing).__name__}: expected a mapping, "
            "a dataclass or an object with listing_id, title and price"
        )
    return out


class Scorer:
    """Score listings in-process with the same chain as ``fakestop score``.

    Build it once (``from_registry``) and share it: scoring keeps no mutable state, so
    concurrent ``score_one`` calls from several threads are safe.

    With a trained model, listings that lack an optional input the model was trained with
    (``seller_id``, ``image``...) raise a :class:`~pipelines.errors.MissingInputWarning`, once
    per scorer and input.

    ``statistics``: the run statistics every listing is scored with (``stats=FILE`` of
    :meth:`from_registry`: a file from ``fakestop stats build`` or the ``<out>.stats``
    of a ``fakestop score`` run, which then gives the same results as that run). Without them,
    ``score_one``, ``score_batch`` and ``score_many`` score with statistics of no listing, so a
    listing's result never depends on what it is scored with; ``score(frame)`` computes them
    over the frame, as ``fakestop score`` does over its input.
    """

    def __init__(
        self,
        plan: ScoringPlan,
        *,
        on_error: OnError = "raise",
        statistics: RunStatistics | None = None,
    ) -> None:
        if on_error not in ("raise", "quarantine"):
            raise ValueError("on_error must be 'raise' or 'quarantine'")
        self.plan = plan
        self.on_error = on_error
        self.statistics = statistics
        #: what single listings are scored with
        self._listing_statistics = statistics or RunStatistics.empty(plan.filters)
        #: whether score_one takes the one-listing path (every stage has a record twin)
        self.records = supports_records(plan)
        self._warned: set[str] = set()
        self._warn_lock = threading.Lock()
        # said once: listing photos are given but the registry has none to compare them with
        self._photos_warned = False

    @classmethod
    def from_registry(
        cls,
        registry: str | Path,
        *,
        model: str | Path | None = None,
        images: str | Path | None = None,
        config: str | Path | None = None,
        on_error: OnError = "raise",
        stats: str | Path | None = None,
    ) -> Scorer:
        settings: Settings = load_settings(config)
        reg = load_registry(registry)
        plan = ScoringPlan.build(reg, settings=settings, images_root=images, model=model)
        statistics = None if stats is None else load_statistics(stats, plan)
        scorer = cls(plan, on_error=on_error, statistics=statistics)
        # building the plan with an images directory has said it already
        scorer._photos_warned = images is not None
        return scorer

    def _photos_given(self, given: bool) -> None:
        """Warn, once, that listing photos are not compared with anything."""
        if given and not self._photos_warned:
            gap = self.plan.photos_not_compared()
            if gap is not None:
                self._photos_warned = True
                warnings.warn(gap, FakestopWarning, stacklevel=3)

    # ---- frames

    def score(self, listings: pl.DataFrame, *, keep_evidence: bool = False) -> pl.DataFrame:
        """Score a polars DataFrame of listings; one output row per input row, in order."""
        frame = conform(listings, source="listings frame", settings=self.plan.settings)
        self._check_inputs(inputs_with_values(frame))
        if "image" in frame.columns:
            self._photos_given(frame.get_column("image").drop_nulls().len() > 0)
        return score_frame(
            frame, self.plan, keep_evidence=keep_evidence, statistics=self.statistics
        )

    def _check_inputs(self, present: Iterable[str]) -> None:
        """Warn once per input the model was trained with that listings lack."""
        missing = self.plan.missing_inputs(present)
        if not missing or self._warned.issuperset(missing):
            return
        with self._warn_lock:
            new = [c for c in missing if c not in self._warned]
            self._warned.update(new)
        if new:
            from models.fusion import missing_inputs_message

            warnings.warn(missing_inputs_message(new), MissingInputWarning, stacklevel=3)

    # ---- single listings

    def _frame_of(self, records: list[dict[str, Any]]) -> pl.DataFrame:
        """Coerced records (see :func:`pipelines.record.coerce_record`) as a typed frame."""
        columns = list(dict.fromkeys(k for r in records for k in r))
        for required in ("listing_id", "title", "price"):
            if required not in columns:
                columns.append(required)
        series = []
        for c in columns:
            values = [r.get(c) for r in records]
            if c in INPUT_SCHEMA or c in (PRICE_RAW, PARSE_ERROR, PRICE_SIGN):
                dtype = INPUT_SCHEMA.get(c, pl.String())
                if c == "image" and any(isinstance(v, bytes) for v in values):
                    dtype = pl.Binary()
                series.append(pl.Series(c, values, dtype=dtype, strict=True))
            else:
                # extra fields are carried as text, like extra CSV columns
                series.append(pl.Series(c, [None if v is None else str(v) for v in values]))
        return pl.DataFrame(series)

    def score_one(self, listing: object) -> ScoreResult:
        """Score one listing (a dict, dataclass or model with the contract's fields).

        Raises :class:`ValidationError` naming the broken field, unless the scorer was built
        with ``on_error="quarantine"``, in which case a quarantined result is returned.
        """
        record = _with_image_bytes(_as_mapping(listing))
        self._check_inputs(k for k, v in record.items() if v is not None)
        self._photos_given(record.get("image") not in (None, ""))
        if self.records:
            result = ScoreResult.from_row(score_record(record, self.plan, self._listing_statistics))
        else:
            (result,) = self._score_frame_records([record])
        if self.on_error == "raise" and result.status != "ok":
            raise _validation_error(result)
        return result

    def score_batch(self, listings: Iterable[object]) -> list[ScoreResult]:
        """Score listings together through the batch path: each result equals
        :meth:`score_one`'s (the same statistics, whatever the batch holds)."""
        records = [_with_image_bytes(_as_mapping(item)) for item in listings]
        self._check_inputs({k for r in records for k, v in r.items() if v is not None})
        self._photos_given(any(r.get("image") not in (None, "") for r in records))
        results = self._score_frame_records(records)
        if self.on_error == "raise":
            for r in results:
                if r.status != "ok":
                    raise _validation_error(r)
        return results

    def _score_frame_records(self, records: list[dict[str, Any]]) -> list[ScoreResult]:
        coerced = [coerce_record(r, self.plan.settings) for r in records]
        # a column holds paths or raw bytes, not both: score the two kinds separately
        groups: dict[bool, list[int]] = {}
        for i, rec in enumerate(coerced):
            groups.setdefault(isinstance(rec.get("image"), bytes), []).append(i)
        results: list[ScoreResult] = [None] * len(records)  # type: ignore[list-item]
        for idx in groups.values():
            out = score_frame(
                self._frame_of([coerced[i] for i in idx]),
                self.plan,
                statistics=self._listing_statistics,
            )
            rows = out.select(["listing_id", *OUTPUT_SCHEMA]).iter_rows(named=True)
            for i, row in zip(idx, rows, strict=True):
                results[i] = ScoreResult.from_row(row)
        return results

    async def ascore_one(self, listing: object) -> ScoreResult:
        """``score_one`` for asyncio code: scoring runs in a worker thread, the loop stays free."""
        return await asyncio.to_thread(self.score_one, listing)

    async def ascore_batch(self, listings: Iterable[object]) -> list[ScoreResult]:
        items = list(listings)
        return await asyncio.to_thread(self.score_batch, items)

    def score_many(
        self, listings: Iterable[object], *, batch_size: int = 512
    ) -> Iterator[ScoreResult]:
        """Score an iterable lazily, ``batch_size`` listings at a time."""
        batch: list[object] = []
        for item in listings:
            batch.append(item)
            if len(batch) >= batch_size:
                yield from self.score_batch(batch)
                batch = []
        if batch:
            yield from self.score_batch(batch)


def _with_image_bytes(record: dict[str, Any]) -> dict[str, Any]:
    """A Pillow image becomes lossless PNG bytes, bytearray/memoryview become bytes."""
    image = record.get("image")
    if isinstance(image, bytearray | memoryview):
        return {**record, "image": bytes(image)}
    if isinstance(image, Image.Image):
        buf = io.BytesIO()
        image.save(buf, "PNG")
        return {**record, "image": buf.getvalue()}
    return record


def _validation_error(result: ScoreResult) -> ValidationError:
    error = result.error or "invalid listing"
    # a row_parsed message holds "; "-separated parts of its own ("price: expected ...")
    named = (part.split(":", 1)[0].strip() for part in error.split("; "))
    rules = tuple(r for r in named if r in RULE_NAMES)
    field_by_rule = {
        "id_present": "listing_id",
        "id_unique": "listing_id",
        "title_present": "title",
        "price_positive": "price",
        "currency_known": "currency",
        "currency_agrees": "currency",
    }
    field = next((field_by_rule[r] for r in rules if r in field_by_rule), None)
    return ValidationError(f"listing {result.listing_id!r}: {error}", field=field, rules=rules)
