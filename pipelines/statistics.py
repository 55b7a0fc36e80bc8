"""Run statistics: what the scoring chain knows about a whole input, as one artifact.

Two filters read statistics of many listings: the price filter's robust statistics of the log
price per brand and reference category, and the seller filter's shares per seller. They are
computed over a whole input, never per batch, so a listing's scores do not depend on the batch
or partition it lands in, nor on the entry point that scores it:

- ``fakestop score`` without ``--stats`` computes them over its whole input (a first pass over
  the listings' evidence) and keeps them beside its output as ``<out>.stats``;
- ``fakestop stats build LISTINGS --out stats.parquet`` computes them alone;
- ``fakestop score --stats FILE``, ``Scorer.from_registry(..., stats=FILE)`` and the Spark
  engine's ``--stats`` score with a given set: a crawler then scores exactly as the batch did.

What the statistics do not know is taken from the listing alone: a seller they have not seen is a
seller with this one listing (its shares are the listing's own flags, its count 1), and a
(brand, category) group they have not seen, or have seen fewer than ``min_group_size`` (20)
times, gives no robust z-score. Statistics of no listing at all (:meth:`RunStatistics.empty`)
are what a listing scored alone sees.

The file is one Parquet table (a ``statistic`` column names the filter each row belongs to)
whose metadata holds the format version, what the statistics depend on (the registry's
fingerprint, the rates, condition factors and standard volumes, the parameters of the filters
that read them) and a fingerprint of the content. Loading refuses a file whose content does not
match its fingerprint, of another format version, or built with another registry or
configuration.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from filters.base import Filter
from pipelines.errors import FakestopError

if TYPE_CHECKING:
    from pipelines.config import Settings
    from pipelines.registry import Registry

FORMAT = "fakestop-statistics"
FORMAT_VERSION = 1
#: Parquet metadata key of the statistics' description
METADATA_KEY = b"fakestop.statistics"
#: the column naming the filter a row of the statistics file belongs to
STATISTIC = "statistic"
#: a builder merges its pending partials once they hold more rows than this (or than its
#: merged partial): merging costs about the rows merged, so each row is merged O(log) times
MERGE_AFTER_ROWS = 500_000


#: filter parameters that come from the run's settings (recorded once, as settings)
SETTINGS_PARAMETERS = ("rates", "condition_factors", "standard_volumes")


class StatisticsError(FakestopError):
    """A statistics file that cannot be used: unreadable, altered, or built for other data."""


def with_statistics(filters: Iterable[Filter]) -> list[Filter]:
    """The filters that read run statistics."""
    return [f for f in filters if f.aggregate() is not None]


def statistics_identity(
    registry: Registry, settings: Settings, filters: Iterable[Filter]
) -> dict[str, Any]:
    """What the statistics' values depend on besides the listings."""
    return {
        "registry_fingerprint": registry.fingerprint,
        "rates": dict(sorted(settings.rates.items())),
        "condition_factors": dict(sorted(settings.condition_factors.items())),
        "standard_volumes": dict(sorted(settings.standard_volumes.items())),
        # the filters' own parameters (the settings above are passed to them too)
        "filters": {
            f.name: json.loads(
                json.dumps(
                    {k: v for k, v in f.get_params().items() if k not in SETTINGS_PARAMETERS},
                    sort_keys=True,
                    default=str,
                )
            )
            for f in with_statistics(filters)
        },
    }


def _column_digest(h: Any, name: str, col: pl.Series) -> None:
    h.update(f"{name}\x00{col.dtype}\x00".encode())
    h.update(col.is_null().to_numpy().tobytes())
    if col.dtype == pl.String:
        h.update("\x00".join(col.fill_null("").to_list()).encode())
    elif col.dtype == pl.Boolean:
        h.update(col.fill_null(False).cast(pl.UInt8).to_numpy().tobytes())
    elif col.dtype.is_integer():
        h.update(col.fill_null(0).cast(pl.Int64).to_numpy().astype("<i8").tobytes())
    else:
        h.update(col.cast(pl.Float64).fill_null(0.0).to_numpy().astype("<f8").tobytes())


def _content_digest(identity: Mapping[str, Any], tables: Mapping[str, pl.DataFrame]) -> str:
    h = hashlib.sha256(json.dumps(identity, sort_keys=True).encode())
    for name in sorted(tables):
        table = tables[name]
        h.update(f"\x01{name}\x00{table.height}\x00".encode())
        ordered = table.sort(table.columns, nulls_last=True) if table.height else table
        for col in ordered.get_columns():
            _column_digest(h, col.name, col)
    return h.hexdigest()


@dataclass
class RunStatistics:
    """The run statistics of each filter that reads them (filter name -> its table).

    Build with :class:`StatisticsBuilder` (or :func:`statistics_of`), or :meth:`load` a file.
    """

    tables: dict[str, pl.DataFrame]
    #: what the values depend on (:func:`statistics_identity`); empty for statistics made in
    #: memory for one frame
    identity: dict[str, Any] = field(default_factory=dict)
    #: valid listings the statistics were computed over
    listings: int = 0
    _lookups: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def empty(cls, filters: Iterable[Filter]) -> RunStatistics:
        """Statistics of no listing: every seller and group is unseen."""
        return StatisticsBuilder(filters).result()

    def table(self, name: str) -> pl.DataFrame | None:
        return self.tables.get(name)

    def record_lookup(self, f: Filter) -> Any:
        """The filter's table in the form its ``score_record`` reads, built once."""
        if f.name not in self._lookups:
            table = self.tables.get(f.name)
            self._lookups[f.name] = None if table is None else f.record_statistics(table)
        return self._lookups[f.name]

    @property
    def fingerprint(self) -> str:
        """sha256 of the statistics' content and of what they depend on."""
        if "fingerprint" not in self._lookups:
            self._lookups["fingerprint"] = _content_digest(self.identity, self.tables)
        value: str = self._lookups["fingerprint"]
        return value

    def summary(self) -> dict[str, Any]:
        """What a manifest or a model card records of these statistics."""
        out: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "fingerprint": self.fingerprint,
            "listings": self.listings,
        }
        price = self.tables.get("price")
        if price is not None:
            out["price_groups"] = price.height
            if "price_group_exact" in price.columns:
                out["price_groups_sketched"] = int((~price["price_group_exact"]).sum())
        seller = self.tables.get("seller")
        if seller is not None:
            out["sellers"] = seller.height
        return out

    # ---- files

    def save(self, path: str | Path, *, extra: Mapping[str, Any] | None = None) -> Path:
        """Write the statistics to ``path`` (atomically); ``extra``: more to record, such as
        the inputs they were computed from."""
        from pipelines.manifest import temporary_beside

        path = Path(path)
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "fingerprint": self.fingerprint,
            "listings": self.listings,
            "identity": self.identity,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            **(extra or {}),
        }
        frames = [
            t.with_columns(pl.lit(name).alias(STATISTIC)) for name, t in sorted(self.tables.items())
        ]
        table = (
            pl.concat(frames, how="diagonal_relaxed").to_arrow()
            if frames
            else pa.table({STATISTIC: pa.array([], pa.string())})
        )
        table = table.replace_schema_metadata({METADATA_KEY: json.dumps(meta).encode()})
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = temporary_beside(path)
            try:
                with os.fdopen(fd, "wb") as fh:
                    pq.write_table(table, fh, compression="zstd")
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            finally:
                Path(tmp).unlink(missing_ok=True)
        except OSError as exc:
            raise StatisticsError(
                f"{path}: cannot write statistics ({exc.strerror or exc})"
            ) from None
        return path

    @classmethod
    def load(
        cls,
        path: str | Path,
        filters: Sequence[Filter],
        *,
        identity: Mapping[str, Any] | None = None,
    ) -> RunStatistics:
        """Read a statistics file for ``filters``; ``identity``
        (:func:`statistics_identity` of the scoring setup) must match the file's."""
        path = Path(path)
        try:
            table = pq.read_table(path)
        except FileNotFoundError:
            raise StatisticsError(f"{path}: statistics file does not exist") from None
        except (OSError, pa.ArrowException) as exc:
            raise StatisticsError(f"{path}: not a readable statistics file ({exc})") from None
        raw = (table.schema.metadata or {}).get(METADATA_KEY)
        try:
            meta = json.loads(raw) if raw is not None else None
        except ValueError:
            meta = None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise StatisticsError(
                f"{path}: not a fakestop statistics file (build one with `fakestop stats build`)"
            )
        if meta.get("format_version") != FORMAT_VERSION:
            raise StatisticsError(
                f"{path}: statistics format version {meta.get('format_version')!r}, this "
                f"fakestop reads version {FORMAT_VERSION}; rebuild with `fakestop stats build`"
            )
        frame = pl.DataFrame(pl.from_arrow(table))
        tables: dict[str, pl.DataFrame] = {}
        for f in with_statistics(filters):
            expected = f.statistics_from_partial(f.aggregate_or_raise().empty()).schema
            if STATISTIC not in frame.columns or not set(expected) <= set(frame.columns):
                raise StatisticsError(f"{path}: holds no {f.name} statistics")
            rows = frame.filter(pl.col(STATISTIC) == f.name).select(list(expected))
            try:
                tables[f.name] = rows.cast(expected)
            except pl.exceptions.PolarsError as exc:
                raise StatisticsError(
                    f"{path}: {f.name} statistics of the wrong type ({exc})"
                ) from None
        stats = cls(
            tables=tables,
            identity=dict(meta.get("identity") or {}),
            listings=int(meta.get("listings") or 0),
        )
        if stats.fingerprint != meta.get("fingerprint"):
            raise StatisticsError(
                f"{path}: content does not match its fingerprint (altered or truncated); "
                "refusing it"
            )
        if identity is not None:
            _check_identity(path, stats.identity, identity)
        return stats


def _check_identity(path: Path, have: Mapping[str, Any], want: Mapping[str, Any]) -> None:
    if have.get("registry_fingerprint") != want.get("registry_fingerprint"):
        raise StatisticsError(
            f"{path}: built with another registry (fingerprint "
            f"{str(have.get('registry_fingerprint'))[:12]}, scoring with "
            f"{str(want.get('registry_fingerprint'))[:12]}); rebuild with `fakestop stats build`"
        )
    differ = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
    if differ:
        raise StatisticsError(
            f"{path}: built with another configuration (differs in {', '.join(differ)}); "
            "rebuild with `fakestop stats build` and the same --config"
        )


class StatisticsBuilder:
    """Accumulates run statistics batch by batch (or from partials made elsewhere, such as
    Spark tasks); the result does not depend on how the listings were cut or ordered."""

    def __init__(self, filters: Iterable[Filter], *, identity: Mapping[str, Any] | None = None):
        self.filters = with_statistics(filters)
        self.identity = dict(identity or {})
        self.listings = 0
        self._merged: dict[str, pl.DataFrame] = {
            f.name: f.aggregate_or_raise().empty() for f in self.filters
        }
        self._pending: dict[str, list[pl.DataFrame]] = {f.name: [] for f in self.filters}

    def partials(self, evidence: pl.DataFrame) -> dict[str, pl.DataFrame]:
        """Each filter's partial aggregate of one frame of evidence (its valid rows)."""
        if "status" in evidence.columns:
            evidence = evidence.filter(pl.col("status") == "ok")
        out = {}
        for f in self.filters:
            values = f.statistic_values(evidence.lazy())
            assert values is not None
            out[f.name] = f.aggregate_or_raise().partial(values.collect())
        return out

    def add(self, evidence: pl.DataFrame) -> None:
        """Add one frame of evidence (:func:`pipelines.stages.evidence_frame`)."""
        valid = (
            int((evidence.get_column("status") == "ok").sum())
            if "status" in evidence.columns
            else evidence.height
        )
        self.add_partials(self.partials(evidence), listings=valid)

    def add_partials(self, partials: Mapping[str, pl.DataFrame], *, listings: int) -> None:
        """Add partial aggregates (see :meth:`partials`) of ``listings`` valid listings."""
        self.listings += listings
        for f in self.filters:
            part = partials.get(f.name)
            if part is None or part.height == 0:
                continue
            pending = self._pending[f.name]
            pending.append(part)
            rows = sum(p.height for p in pending)
            if rows > max(MERGE_AFTER_ROWS, self._merged[f.name].height):
                self._merge(f)

    def merged_partials(self) -> dict[str, pl.DataFrame]:
        """Each filter's partial of everything added so far (to merge elsewhere)."""
        for f in self.filters:
            self._merge(f)
        return dict(self._merged)

    def _merge(self, f: Filter) -> None:
        agg = f.aggregate_or_raise()
        self._merged[f.name] = agg.merge([self._merged[f.name], *self._pending[f.name]])
        self._pending[f.name] = []

    def result(self) -> RunStatistics:
        tables = {}
        for f in self.filters:
            self._merge(f)
            tables[f.name] = f.statistics_from_partial(self._merged[f.name])
        return RunStatistics(tables=tables, identity=dict(self.identity), listings=self.listings)


def statistics_of(
    evidence: Iterable[pl.DataFrame],
    filters: Iterable[Filter],
    *,
    identity: Mapping[str, Any] | None = None,
) -> RunStatistics:
    """The run statistics of frames of evidence (:func:`pipelines.stages.evidence_frame`)."""
    builder = StatisticsBuilder(filters, identity=identity)
    for frame in evidence:
        builder.add(frame)
    return builder.result()


def load_statistics(path: str | Path, plan: Any) -> RunStatistics:
    """:meth:`RunStatistics.load` for a :class:`pipelines.stages.ScoringPlan`: the file must
    have been built with the plan's registry and configuration."""
    return RunStatistics.load(
        path,
        plan.filters,
        identity=statistics_identity(plan.registry, plan.settings, plan.filters),
    )
