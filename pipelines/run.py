"""The batch runner behind ``fakestop score``: read, score in batches, write atomically."""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from pipelines.progress import Progress
from pipelines.schema import iter_listing_batches, resolve_sources
from pipelines.stages import ScoringPlan, score_frame

DEFAULT_BATCH_SIZE = 500_000


@dataclass
class RunSummary:
    rows_in: int = 0
    rows_out: int = 0
    quarantined: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    output: str = ""

    def line(self) -> str:
        counts = ", ".join(f"{k} {v:,}" for k, v in sorted(self.decisions.items()))
        rate = self.rows_in / self.seconds if self.seconds > 0 else 0.0
        return (
            f"scored {self.rows_in:,} listings in {self.seconds:.1f}s ({rate:,.0f}/s): {counts}; "
            f"quarantined {self.quarantined:,} -> {self.output}"
        )


def _count_rows(files: list[Path]) -> int | None:
    total = 0
    for f in files:
        if f.suffix.lower() not in {".parquet", ".pq"}:
            return None
        total += pq.ParquetFile(f).metadata.num_rows
    return total


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tally(summary: RunSummary, out: pl.DataFrame, rows_in: int) -> None:
    summary.rows_in += rows_in
    summary.rows_out += out.height
    summary.quarantined += int((out.get_column("status") == "quarantined").sum())
    for d, n in out.get_column("decision").drop_nulls().value_counts().iter_rows():
        summary.decisions[str(d)] += int(n)


def run_score(
    listings: str | Path,
    plan: ScoringPlan,
    out: str | Path,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    quiet: bool = False,
) -> RunSummary:
    """Score every listing behind ``listings`` into ``out``.

    ``out`` ending in ``/`` (or an existing directory) receives one Parquet part per batch;
    otherwise one Parquet file. Output appears atomically: written to a temporary name, synced,
    then renamed, so a reader never sees a half-written file.
    """
    if batch_size <= 0:
        raise ValueError("batch_size must be > 0")
    files = resolve_sources(listings)
    out_text = str(out)
    out_path = Path(out_text)
    as_dir = out_text.endswith(("/", os.sep)) or out_path.is_dir()
    target_dir = out_path if as_dir else out_path.parent
    target_dir.mkdir(parents=True, exist_ok=True)
    progress = Progress(_count_rows(files), quiet=quiet)
    summary = RunSummary(output=str(out_path))
    start = time.perf_counter()
    writer: pq.ParquetWriter | None = None
    tmp_name = None
    try:
        if not as_dir:
            fd, tmp_name = tempfile.mkstemp(
                prefix=f".{out_path.name}.", suffix=".tmp", dir=target_dir
            )
            os.close(fd)
        seen = pl.Series("listing_id", [], dtype=pl.String)
        for index, batch in enumerate(iter_listing_batches(listings, batch_size)):
            scored = score_frame(batch, plan, seen_ids=seen)
            ids = batch.get_column("listing_id").drop_nulls().unique()
            seen = pl.concat([seen, ids.cast(pl.String)]).unique()
            _tally(summary, scored, batch.height)
            table = scored.to_arrow()
            if as_dir:
                part = target_dir / f"part-{index:05d}.parquet"
                fd, part_tmp = tempfile.mkstemp(
                    prefix=f".{part.name}.", suffix=".tmp", dir=target_dir
                )
                os.close(fd)
                pq.write_table(table, part_tmp)
                with open(part_tmp, "rb+") as fh:
                    os.fsync(fh.fileno())
                os.replace(part_tmp, part)
            else:
                if writer is None:
                    writer = pq.ParquetWriter(tmp_name, table.schema)
                writer.write_table(table)
            progress.update(batch.height)
        if not as_dir:
            if writer is not None:
                writer.close()
                writer = None
            with open(tmp_name, "rb+") as fh:  # type: ignore[arg-type]
                os.fsync(fh.fileno())
            os.replace(tmp_name, out_path)  # type: ignore[arg-type]
            tmp_name = None
        _fsync_dir(target_dir)
    finally:
        progress.close()
        if writer is not None:
            writer.close()
        if tmp_name is not None and os.path.exists(tmp_name):
            os.unlink(tmp_name)
    summary.seconds = time.perf_counter() - start
    return summary
