"""The batch runner behind ``fakestop score``: streaming, resumable, audited.

Each batch is scored and committed on its own (write to a temporary name, fsync, rename) and a
checkpoint records it; rerunning the same command after a crash continues after the last
committed batch and produces the same rows as an uninterrupted run. A run over different inputs,
registry, model or configuration refuses to reuse a previous run's batches (``restart=True``
starts over). A finished run leaves ``<out>.manifest.json`` (see :mod:`pipelines.manifest`).

SIGTERM (and a first Ctrl-C) asks a run to stop: it finishes and commits the batch in progress,
then raises :class:`RunStopped`; rerunning the same command resumes. A write that fails (disk full,
read-only directory) raises a :class:`FakestopError` naming the file and leaves no partial file.
"""

from __future__ import annotations

import collections
import datetime as dt
import fcntl
import functools
import hashlib
import io
import json
import os
import re
import shutil
import signal
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, Unpack

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.config import Settings
from pipelines.errors import FakestopError, SchemaError
from pipelines.ledger import (
    BLOCKED_BY_FREEZE,
    RING_MATES_SCHEMA,
    Ledger,
    frozen_sellers_blocked,
    ring_mates_reviewed,
)
from pipelines.logs import RunLog
from pipelines.manifest import (
    build_manifest,
    file_digest,
    relative_to_manifest,
    temporary_beside,
    write_json_atomic,
)
from pipelines.outputs import export_parts, output_format, refuse_output_over_inputs
from pipelines.parquet_concat import NotConcatenable, concat_parquet
from pipelines.schema import PARSE_ERROR, iter_listing_batches, resolve_sources
from pipelines.stages import (
    ScoringPlan,
    evidence_frame,
    final_frame,
    inputs_with_values,
    score_frame,
)
from pipelines.statistics import (
    RunStatistics,
    StatisticsBuilder,
    StatisticsError,
    statistics_identity,
)
from pipelines.validation import RULE_NAMES, SEEN_EARLIER

DEFAULT_BATCH_SIZE = 100_000
#: batches scored at once: polars keeps about 1.5 of 2 cores busy on one batch (Python and
#: single-column steps run on one core), a third fills the gaps (fixed, so that memory does not
#: grow with the number of cores)
SCORING_THREADS = 3
CHECKPOINT_VERSION = 2
#: the frozen sellers a run decided at its start (kept in its checkpoint)
FROZEN_SCHEMA = {"seller_id": pl.String, "strikes_365d": pl.Int64}


class RunStopped(FakestopError):
    """The run was asked to stop (SIGTERM, Ctrl-C) and stopped after committing a batch;
    rerunning the same command resumes."""

    def __init__(self, message: str, *, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


@dataclass
class RunSummary:
    rows_in: int = 0
    rows_out: int = 0
    quarantined: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    output: str = ""
    resumed_batches: int = 0

    def line(self) -> str:
        counts = ", ".join(f"{k} {v:,}" for k, v in sorted(self.decisions.items()))
        rate = self.rows_in / self.seconds if self.seconds > 0 else 0.0
        resumed = f" (resumed after {self.resumed_batches} batches)" if self.resumed_batches else ""
        return (
            f"scored {self.rows_in:,} listings in {self.seconds:.1f}s ({rate:,.0f}/s){resumed}: "
            f"{counts}; quarantined {self.quarantined:,} -> {self.output}"
        )


@dataclass(frozen=True)
class OutputLayout:
    """Where a run writes: its final output, the parts, the checkpoint, the manifest."""

    out: Path
    #: ``parquet``, ``csv``, ``ndjson`` or ``parts`` (see :func:`pipelines.outputs.output_format`)
    fmt: str
    parts_dir: Path
    checkpoint: Path
    manifest: Path
    lock: Path
    #: each batch's evidence between the two passes, and the run statistics computed from it
    evidence_dir: Path
    #: the run statistics a finished run leaves beside its output
    statistics: Path

    @classmethod
    def of(cls, out: str | Path) -> OutputLayout:
        fmt = output_format(out)
        path = Path(str(out))
        parts = path if fmt == "parts" else path.parent / f".{path.name}.parts"
        return cls(
            out=path,
            fmt=fmt,
            parts_dir=parts,
            checkpoint=parts / "_checkpoint.json",
            manifest=path.parent / f"{path.name}.manifest.json",
            lock=path.parent / f".{path.name}.lock",
            evidence_dir=path.parent / f".{path.name}.evidence",
            statistics=path.parent / f"{path.name}.stats",
        )

    @property
    def as_dir(self) -> bool:
        """Whether the output is the directory of parts itself."""
        return self.fmt == "parts"

    def part(self, index: int) -> Path:
        return self.parts_dir / f"part-{index:05d}.parquet"

    def evidence(self, index: int) -> Path:
        return self.evidence_dir / f"evidence-{index:05d}.parquet"

    @property
    def run_statistics(self) -> Path:
        """The statistics computed by the first pass, until the run finishes."""
        return self.evidence_dir / "statistics.parquet"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_reason(exc: BaseException) -> str:
    """Why a write failed, in a few words ("No space left on device")."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    # polars and pyarrow wrap the OS error in their own message
    found = re.search(r"(?:IO error|error): ([^:]+?)(?: \(os error \d+\))?$", str(exc))
    return found.group(1) if found else str(exc)


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Turn a failed write into one clear error naming the file that could not be written."""
    try:
        yield
    except (OSError, pl.exceptions.PolarsError, pa.ArrowException) as exc:
        raise FakestopError(f"{path}: cannot write ({_write_reason(exc)})") from None


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """A committed part that cannot be read back: one clear error naming it."""
    try:
        yield
    except (OSError, pl.exceptions.PolarsError, pa.ArrowException) as exc:
        raise FakestopError(
            f"{path}: cannot read a committed part back ({exc}); rerun with --restart"
        ) from None


def _remove(path: str | Path) -> None:
    """Remove a temporary file, if it is still there."""
    if os.path.exists(path):
        os.unlink(path)


@contextmanager
def _atomic_output(path: Path) -> Iterator[str]:
    """A temporary file beside ``path`` to write; fsynced and renamed over ``path`` when the
    block succeeds, removed either way."""
    with _writing(path):
        fd, tmp = temporary_beside(path)
        os.close(fd)
        try:
            yield tmp
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            _remove(tmp)
        _fsync_dir(path.parent)


def _write_parquet_atomic(frame: pl.DataFrame, path: Path) -> None:
    """A part, encoded as the output is (a single-file output joins them unchanged)."""
    with _atomic_output(path) as tmp:
        frame.write_parquet(tmp, compression="zstd")


def _write_evidence_atomic(frame: pl.DataFrame, path: Path) -> None:
    """A batch's evidence, encoded fast (it is read back once). Encoded in memory, then
    written: a full disk is then an ``OSError`` that says so."""
    with _writing(path):
        buf = io.BytesIO()
        frame.write_parquet(buf, compression="lz4", statistics=False)
    with _atomic_output(path) as tmp, open(tmp, "wb") as fh:
        fh.write(buf.getbuffer())


def _merge_parts(parts: list[Path], out: Path) -> None:
    """Join committed parts into one Parquet file: their pages are copied as encoded (a
    tenth of a run's CPU time to decode and re-encode), unless the parts cannot be joined so
    (their schemas differ, or another writer wrote them), when they are re-encoded, streamed."""
    with _atomic_output(out) as tmp:
        if not parts:
            pl.DataFrame().write_parquet(tmp)
            return
        try:
            with open(tmp, "wb") as fh:
                rows = concat_parquet(parts, fh)
            _check_joined(tmp, rows)
        except NotConcatenable:
            # Parquet inputs are given one schema as they are read; parts of CSV or NDJSON
            # files whose extra columns differ, or of an older run, get the union of the
            # columns, each in a type that holds every part's values
            unified = pl.concat([pl.scan_parquet(p) for p in parts], how="diagonal_relaxed")
            unified.sink_parquet(tmp)


def _check_joined(path: str, rows: int) -> None:
    """Read the joined file's footer and its last column chunk back: a footer whose offsets
    were moved wrongly fails here, not in a reader downstream."""
    try:
        joined = pq.ParquetFile(path)
        meta = joined.metadata
        if meta.num_rows != rows:
            raise NotConcatenable(f"joined file holds {meta.num_rows} rows, expected {rows}")
        if meta.num_row_groups and joined.schema_arrow.names:
            joined.read_row_group(meta.num_row_groups - 1, columns=[joined.schema_arrow.names[-1]])
    except (OSError, pa.ArrowException) as exc:
        raise NotConcatenable(f"joined file does not read back ({exc})") from None


@contextmanager
def _exclusive(lock: Path, out: Path) -> Iterator[None]:
    """Only one run may write an output at a time.

    The lock file is removed while still held, when the run ends. A run that locked a file
    its predecessor removed in the meantime holds a lock nobody else sees: it checks that
    the file it locked is still the one at ``lock`` and otherwise tries again.
    """
    # a directory the run cannot write in fails here, before any work: name the directory
    with _writing(lock.parent):
        lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        with _writing(lock.parent):
            fh = open(lock, "a+")  # noqa: SIM115 - held for the whole run
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise FakestopError(f"{out}: another fakestop run is writing this output") from None
        try:
            current = os.stat(lock).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fh.fileno()).st_ino:
            break
        fh.close()
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        fh.close()


@contextmanager
def _stop_requests() -> Iterator[Callable[[], int | None]]:
    """SIGTERM and a first SIGINT (Ctrl-C) ask the run to stop at the next batch boundary
    instead of killing it; a second SIGINT stops at once (KeyboardInterrupt), which keeps the
    batches committed so far as well.

    Yields a function returning the signal received so far (None: keep going). Signal
    handlers can only be set in the main thread; elsewhere signals keep their usual effect.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return

    def handler(signum: int, frame: object) -> None:
        if signum == signal.SIGINT and signal.SIGINT in received:
            raise KeyboardInterrupt
        received.append(signum)
        if signum == signal.SIGINT:
            os.write(
                2,
                b"\nfakestop: stopping after the batch in progress (Ctrl-C again to stop now; "
                b"either way, rerun the same command to resume)\n",
            )

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield lambda: received[0] if received else None
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def run_identity(
    inputs: list[dict[str, Any]],
    plan: ScoringPlan,
    *,
    batch_size: int,
    run_date: dt.date,
    model_hash: str | None,
    statistics: str | None = None,
) -> str:
    """What makes two runs interchangeable: same inputs, registry, model, settings, batching
    and given statistics (``statistics``: their fingerprint; None: computed over the input)."""
    ident = {
        "version": CHECKPOINT_VERSION,
        "inputs": [(i["path"], i["size"], i["sha256"]) for i in inputs],
        "registry": plan.registry.fingerprint,
        "model": model_hash,
        "settings": plan.settings.as_dict(),
        "thresholds": [plan.thresholds.block, plan.thresholds.review],
        "batch_size": batch_size,
        "run_date": run_date.isoformat(),
        "statistics": statistics,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


def _load_checkpoint(layout: OutputLayout, run_id: str, restart: bool) -> dict[str, Any] | None:
    if not layout.checkpoint.is_file():
        return None
    try:
        state = json.loads(layout.checkpoint.read_text())
    except (OSError, ValueError) as exc:
        raise FakestopError(
            f"{layout.checkpoint}: unreadable checkpoint ({exc}); rerun with --restart"
        ) from None
    if state.get("run_id") != run_id:
        if restart:
            return None
        raise FakestopError(
            f"{layout.out}: an unfinished run with different inputs, registry, model or "
            "configuration wrote here; rerun with --restart to start over"
        )
    if restart:
        return None
    # batches are redone from the first whose part is missing (removed by hand, or a cleanup
    # that was cut short)
    batches = state.get("batches", [])
    for n, entry in enumerate(batches):
        if not layout.part(entry["index"]).is_file():
            del batches[n:]
            break
    evidence = state.get("evidence", [])
    for n, entry in enumerate(evidence):
        if not layout.evidence(entry["index"]).is_file():
            # the statistics and every batch scored with them are computed again
            del evidence[n:]
            state["statistics"] = None
            del batches[:]
            break
    return state


def _clear_parts(layout: OutputLayout) -> None:
    shutil.rmtree(layout.evidence_dir, ignore_errors=True)
    if not layout.parts_dir.exists():
        return
    if layout.as_dir:
        for p in layout.parts_dir.glob("part-*.parquet"):
            p.unlink()
        layout.checkpoint.unlink(missing_ok=True)
    else:
        shutil.rmtree(layout.parts_dir)


#: what one in-order step of a run yields: (batch index, input rows, the work to do)
Task = tuple[int, int, Callable[[], Any]]


@dataclass
class Evidence:
    """One batch's evidence (:func:`pipelines.stages.evidence_frame`), the partial aggregates
    of its run statistics, the batch's columns as read, and the seconds it took."""

    frame: pl.DataFrame
    partials: dict[str, pl.DataFrame]
    columns: list[str]
    seconds: float


def _in_order(
    tasks: Iterator[Task],
    commit: Callable[[int, int, Future[Any]], None],
    stop_signal: Callable[[], int | None],
) -> None:
    """Run ``tasks`` SCORING_THREADS at a time and ``commit`` each result strictly in order:
    a run stopped or killed at any point leaves a prefix of the batches committed, as a
    sequential run would. One more task waits in the queue, so that every worker stays busy
    while a batch is written. Stops taking tasks once a stop was asked for."""
    pending: collections.deque[tuple[int, int, Future[Any]]] = collections.deque()
    with ThreadPoolExecutor(SCORING_THREADS, thread_name_prefix="score") as pool:
        try:
            while True:
                try:
                    task = next(tasks)
                except StopIteration:
                    break
                except Exception:
                    # input that fails to read (a part deleted mid-run): the batches read
                    # before it are still committed, as a sequential run would
                    while pending:
                        commit(*pending.popleft())
                    raise
                if stop_signal() is not None:
                    break
                index, rows, work = task
                pending.append((index, rows, pool.submit(work)))
                while len(pending) > SCORING_THREADS:
                    commit(*pending.popleft())
            while pending:
                commit(*pending.popleft())
        finally:
            # a failed run commits nothing more; batches being scored are waited for
            for _, _, future in pending:
                future.cancel()


class RunOptions(TypedDict, total=False):
    """The options of a batch run (:func:`run_score`, :class:`BatchRun`)."""

    #: listings per batch (default :data:`DEFAULT_BATCH_SIZE`)
    batch_size: int
    #: no progress lines
    quiet: bool
    #: ignore the checkpoint a stopped run left and start afresh
    restart: bool
    #: the strike ledger: blocks add strikes; frozen sellers and their ring mates are read
    ledger: str | Path | None
    #: the date strikes are recorded on (default today)
    run_date: dt.date | None
    #: progress lines as ``text`` or ``json``
    log_format: str
    #: the fusion model's hash, for the manifest (default the plan's)
    model_hash: str | None
    #: the run statistics to score with (default: computed over the input in a first pass)
    statistics: RunStatistics | None
    #: the file ``statistics`` were read from, for the manifest
    statistics_path: str | Path | None


class BatchRun:
    """One ``fakestop score`` run, in named steps: :meth:`prepare_state` (a new checkpoint or
    the one a stopped run left), :meth:`score_batches` (one pass with given statistics, else an
    evidence pass and a final pass), :meth:`assemble_outputs`, :meth:`statistics_entry`,
    :meth:`write_manifest` and :meth:`clean_up`. :func:`run_score` makes and runs one."""

    def __init__(
        self,
        listings: str | Path,
        plan: ScoringPlan,
        out: str | Path,
        **options: Unpack[RunOptions],
    ) -> None:
        batch_size = options.get("batch_size", DEFAULT_BATCH_SIZE)
        statistics = options.get("statistics")
        run_date, model_hash = options.get("run_date"), options.get("model_hash")
        if batch_size <= 0:
            raise FakestopError(f"--batch-size must be > 0, got {batch_size}")
        self.started = time.time()
        self.t_start = time.perf_counter()
        self.listings, self.plan, self.batch_size = listings, plan, batch_size
        self.restart, self.ledger = options.get("restart", False), options.get("ledger")
        self.run_date = run_date or dt.date.today()
        self.model_hash = model_hash or plan.model_hash
        self.given, self.statistics_path = statistics, options.get("statistics_path")
        self.files = resolve_sources(listings)
        self.layout = OutputLayout.of(out)
        refuse_output_over_inputs(self.layout.out, self.layout.as_dir, listings, self.files)
        self.inputs = [_input_entry(f) for f in self.files]
        total_rows = _count_rows(self.files)
        self.identity = statistics_identity(plan.registry, plan.settings, plan.filters)
        self.run_id = run_identity(
            self.inputs,
            plan,
            batch_size=batch_size,
            run_date=self.run_date,
            model_hash=self.model_hash,
            statistics=None if statistics is None else statistics.fingerprint,
        )
        two_passes = statistics is None
        self.log = RunLog(
            None if total_rows is None else total_rows * (2 if two_passes else 1),
            quiet=options.get("quiet", False),
            fmt=options.get("log_format", "text"),
        )
        self.summary = RunSummary(output=str(self.layout.out))
        self.timings = {"read": 0.0, "score": 0.0, "write": 0.0, "ledger": 0.0}
        if two_passes:
            self.timings = {"read": 0.0, "evidence": 0.0, "statistics": 0.0, **self.timings}
        self.strikes: Ledger | None = None
        self.state: dict[str, Any] | None = None
        self.done: list[dict[str, Any]] = []

    def run(self) -> RunSummary:
        """Score every listing into the output, write the manifest and clean up."""
        layout = self.layout
        with _exclusive(layout.lock, layout.out), _stop_requests() as stop_signal:
            self.state = _load_checkpoint(layout, self.run_id, self.restart)
            if self.state is None:
                _clear_parts(layout)
            with _writing(layout.parts_dir):
                layout.parts_dir.mkdir(parents=True, exist_ok=True)
            self.strikes = Ledger(self.ledger) if self.ledger is not None else None
            try:
                state = self.prepare_state()
                stats = self.score_batches(state, stop_signal)
                _stop_if_asked(stop_signal(), layout, self.done, self.summary)
                assert stats is not None
                t0 = time.perf_counter()
                outputs = self.assemble_outputs()
                statistics_entry = self.statistics_entry(stats)
                self.timings["write"] += time.perf_counter() - t0
            except SchemaError:
                self.forget_unresumable()
                raise
            finally:
                if self.strikes is not None:
                    self.strikes.close()
                self.log.close()
            self.summary.seconds = time.perf_counter() - self.t_start
            self.write_manifest(outputs, statistics_entry)
            self.clean_up()
        self.log.done(self.summary.line())
        return self.summary

    def prepare_state(self) -> dict[str, Any]:
        """The checkpoint a stopped run left, else a new one. Who is frozen, and who shares a
        ring with a frozen seller (``fakestop network``), is decided once per run, so a
        resumed run decides the same way."""
        if self.state is None:
            strikes = self.strikes
            frozen = (
                strikes.frozen(as_of=self.run_date)
                if strikes is not None
                else pl.DataFrame(schema=FROZEN_SCHEMA)
            )
            mates = (
                strikes.ring_mates_of_frozen(as_of=self.run_date)
                if strikes is not None
                else pl.DataFrame(schema=RING_MATES_SCHEMA)
            )
            self.state = {
                "run_id": self.run_id,
                "evidence": [],
                "statistics": None,
                "batches": [],
                "frozen": frozen.to_dicts(),
                "ring_mates": mates.to_dicts(),
            }
            self.save_checkpoint()
        self.done = self.state["batches"]
        return self.state

    def save_checkpoint(self) -> None:
        assert self.state is not None
        with _writing(self.layout.checkpoint):
            write_json_atomic(self.layout.checkpoint, self.state)

    def commit_scored(self, index: int, rows_in: int, scored: pl.DataFrame) -> None:
        """Write one scored batch, record its strikes, and name it in the checkpoint."""
        t1 = time.perf_counter()
        _write_parquet_atomic(scored.drop(BLOCKED_BY_FREEZE, strict=False), self.layout.part(index))
        t2 = time.perf_counter()
        if self.strikes is not None:
            try:
                self.strikes.record_blocks(scored, date=self.run_date, run_id=self.run_id)
            except sqlite3.Error as exc:
                # e.g. "database or disk is full": the transaction was rolled back and
                # the checkpoint does not name this batch yet, so a rerun redoes it
                raise FakestopError(f"{self.ledger}: cannot record strikes ({exc})") from None
        t3 = time.perf_counter()
        entry = _batch_entry(index, rows_in, scored)
        if "category" in scored.columns:
            # categories the taxonomy reads as nothing: the manifest lists them
            entry["unmatched_categories"] = self.plan.registry.taxonomy.unmatched_counts(
                scored.get_column("category")
            )
        self.done.append(entry)
        self.save_checkpoint()
        self.timings["write"] += t2 - t1 + time.perf_counter() - t3
        self.timings["ledger"] += t3 - t2
        _tally_entry(self.summary, entry)
        self.log.batch(index, rows_in)

    def score_batches(
        self, state: dict[str, Any], stop_signal: Callable[[], int | None]
    ) -> RunStatistics | None:
        """Score every batch: in one pass with the given run statistics, else an evidence pass
        that computes them over the whole input and a final pass. The statistics used, or
        None if the run was stopped before they were complete."""
        frozen = pl.DataFrame(state["frozen"], schema=FROZEN_SCHEMA)
        ring_mates = pl.DataFrame(state.get("ring_mates", []), schema=RING_MATES_SCHEMA)
        if self.given is not None:
            _score_in_one_pass(
                self.listings, self.plan, self.given, self.layout, state,
                batch_size=self.batch_size, frozen=frozen, ring_mates=ring_mates,
                commit_scored=self.commit_scored, stop_signal=stop_signal, log=self.log,
                summary=self.summary, timings=self.timings,
            )  # fmt: skip
            return self.given
        stats = _evidence_pass(
            self.listings, self.plan, self.layout, state, self.identity,
            batch_size=self.batch_size, save_checkpoint=self.save_checkpoint,
            stop_signal=stop_signal, log=self.log, summary=self.summary, timings=self.timings,
        )  # fmt: skip
        if stats is not None:
            _final_pass(
                self.plan, stats, self.layout, state, frozen=frozen, ring_mates=ring_mates,
                commit_scored=self.commit_scored, stop_signal=stop_signal, log=self.log,
                summary=self.summary, timings=self.timings,
            )  # fmt: skip
        return stats

    def assemble_outputs(self) -> list[dict[str, Any]]:
        """The output from the committed parts (one Parquet file, the parts themselves, or a
        CSV or NDJSON export), as the manifest's entries."""
        layout = self.layout
        parts = [layout.part(e["index"]) for e in self.done]
        if layout.fmt == "parquet":
            _merge_parts(parts, layout.out)
            outputs = [(layout.out, pq.ParquetFile(layout.out).metadata.num_rows)]
        elif layout.as_dir:
            outputs = [(p, pq.ParquetFile(p).metadata.num_rows) for p in parts]
        else:
            with _atomic_output(layout.out) as tmp:
                export_parts(parts, tmp, layout.fmt)
            outputs = [(layout.out, self.summary.rows_out)]
        return [
            {
                "path": relative_to_manifest(p, layout.manifest),
                "size": p.stat().st_size,
                "sha256": file_digest(p),
                "rows": rows,
            }
            for p, rows in outputs
        ]

    def statistics_entry(self, stats: RunStatistics) -> dict[str, Any]:
        """The manifest's account of the run statistics: computed over the input (and left
        beside the output), or given."""
        layout = self.layout
        entry: dict[str, Any]
        if self.given is None:
            with _writing(layout.statistics):
                os.replace(layout.run_statistics, layout.statistics)
                _fsync_dir(layout.statistics.parent)
            entry = {
                "source": "computed over the input",
                "path": relative_to_manifest(layout.statistics, layout.manifest),
                "sha256": file_digest(layout.statistics),
            }
        else:
            entry = {"source": "given"}
            path = self.statistics_path
            if path is not None and Path(path).is_file():
                entry["path"] = relative_to_manifest(Path(path), layout.manifest)
                entry["sha256"] = file_digest(path)
        entry.update(stats.summary())
        return entry

    def forget_unresumable(self) -> None:
        """Input that cannot be read before any batch was committed: there is nothing to
        resume, so nothing is left behind (a rerun with other options starts afresh)."""
        state, layout = self.state, self.layout
        if state is None or not (state["batches"] or state["evidence"]):
            layout.checkpoint.unlink(missing_ok=True)
            shutil.rmtree(layout.evidence_dir, ignore_errors=True)
            if not layout.as_dir:
                shutil.rmtree(layout.parts_dir, ignore_errors=True)

    def write_manifest(
        self, outputs: list[dict[str, Any]], statistics_entry: dict[str, Any]
    ) -> None:
        layout = self.layout
        manifest = build_manifest(
            run_id=self.run_id,
            started=self.started,
            seconds=self.summary.seconds,
            inputs=[
                {**i, "path": relative_to_manifest(Path(i["path"]), layout.manifest)}
                for i in self.inputs
            ],
            output={
                "path": relative_to_manifest(layout.out, layout.manifest),
                "format": layout.fmt,
            },
            outputs=outputs,
            batches=self.done,
            plan=self.plan,
            batch_size=self.batch_size,
            run_date=self.run_date,
            model_hash=self.model_hash,
            timings=self.timings,
            ledger=None if self.ledger is None else str(self.ledger),
        )
        manifest["statistics"] = statistics_entry
        with _writing(layout.manifest):
            write_json_atomic(layout.manifest, manifest)

    def clean_up(self) -> None:
        """The checkpoint goes first: a run killed while the parts are removed must not leave
        a checkpoint naming parts that are gone."""
        layout = self.layout
        layout.checkpoint.unlink(missing_ok=True)
        shutil.rmtree(layout.evidence_dir, ignore_errors=True)
        if not layout.as_dir:
            shutil.rmtree(layout.parts_dir, ignore_errors=True)


def run_score(
    listings: str | Path, plan: ScoringPlan, out: str | Path, **options: Unpack[RunOptions]
) -> RunSummary:
    """Score every listing behind ``listings`` into ``out`` (see :class:`RunOptions`).

    ``out`` ending in ``/`` (or an existing directory) receives one Parquet part per batch;
    otherwise one Parquet file (assembled from the committed parts at the end).

    Without ``statistics`` the run makes two passes: the first computes every listing's
    evidence (kept on disk beside the output, one file per batch) and the run statistics over
    the whole input, the second scores each batch's evidence with them; the statistics are
    left beside the output as ``<out>.stats``. See :class:`BatchRun`.
    """
    return BatchRun(listings, plan, out, **options).run()


def _input_batches(
    listings: str | Path,
    batch_size: int,
    settings: Settings,
    resumed: int,
    timings: dict[str, float],
    skipped: Callable[[int, pl.DataFrame], None],
    first: Callable[[pl.DataFrame], None],
) -> Iterator[tuple[int, pl.DataFrame]]:
    """The input's batches after the first ``resumed`` (those are read and handed to
    ``skipped``), timing the reads; the first batch is also handed to ``first``."""
    t_read = time.perf_counter()
    for index, batch in enumerate(iter_listing_batches(listings, batch_size, settings)):
        timings["read"] += time.perf_counter() - t_read
        if index == 0:
            first(batch)
        if index < resumed:
            skipped(index, batch)
        else:
            yield index, batch
        t_read = time.perf_counter()


def _score_in_one_pass(
    listings: str | Path,
    plan: ScoringPlan,
    stats: RunStatistics,
    layout: OutputLayout,
    state: dict[str, Any],
    *,
    batch_size: int,
    frozen: pl.DataFrame,
    ring_mates: pl.DataFrame,
    commit_scored: Callable[[int, int, pl.DataFrame], None],
    stop_signal: Callable[[], int | None],
    log: RunLog,
    summary: RunSummary,
    timings: dict[str, float],
) -> None:
    """Given statistics: each batch is scored and committed in one step."""
    done: list[dict[str, Any]] = state["batches"]

    def part_ids(index: int) -> pl.Series:
        part = layout.part(index)
        with _reading(part):
            return pl.read_parquet(part, columns=["listing_id"]).get_column("listing_id")

    seen = SeenIds(batch_ids=part_ids)
    for entry in done:
        seen.add(part_ids(entry["index"]), batch=entry["index"])
        seen.release(entry["index"])
    summary.resumed_batches = len(done)

    def skipped(index: int, batch: pl.DataFrame) -> None:
        log.batch(index, batch.height, skipped=True)
        _tally_entry(summary, done[index])

    def score(batch: pl.DataFrame, earlier: pl.Series) -> tuple[pl.DataFrame, float]:
        t0 = time.perf_counter()
        scored = score_frame(
            batch.with_columns(earlier.alias(SEEN_EARLIER)), plan, statistics=stats
        )
        scored = frozen_sellers_blocked(scored, frozen)
        scored = ring_mates_reviewed(scored, ring_mates)
        return scored, time.perf_counter() - t0

    def tasks() -> Iterator[Task]:
        for index, batch in _input_batches(
            listings,
            batch_size,
            plan.settings,
            len(done),
            timings,
            skipped,
            lambda batch: _warn_missing_inputs(plan, batch, log),
        ):
            # ids are checked in input order, before scoring: an id seen in any earlier batch
            # is quarantined as a repeat
            ids = batch.get_column("listing_id")
            earlier = seen.contains(ids)
            seen.add(ids.filter(~earlier), batch=index)
            yield index, batch.height, functools.partial(score, batch, earlier)

    def commit(index: int, rows_in: int, scoring: Future[tuple[pl.DataFrame, float]]) -> None:
        scored, seconds = scoring.result()
        timings["score"] += seconds
        commit_scored(index, rows_in, scored)
        # the part holds the batch's ids now
        seen.release(index)

    _in_order(tasks(), commit, stop_signal)


def _evidence_pass(
    listings: str | Path,
    plan: ScoringPlan,
    layout: OutputLayout,
    state: dict[str, Any],
    identity: dict[str, Any],
    *,
    batch_size: int,
    save_checkpoint: Callable[[], None],
    stop_signal: Callable[[], int | None],
    log: RunLog,
    summary: RunSummary,
    timings: dict[str, float],
) -> RunStatistics | None:
    """The first pass: every batch's evidence, committed beside the output as it is computed,
    and the run statistics of all of it. None if the run was asked to stop."""
    entries: list[dict[str, Any]] = state["evidence"]
    with _writing(layout.evidence_dir):
        layout.evidence_dir.mkdir(parents=True, exist_ok=True)
    if state.get("statistics") is not None:
        stats = _committed_statistics(layout, state, plan, identity)
        if stats is not None:
            for entry in entries:
                log.batch(entry["index"], entry["rows_in"], skipped=True, phase="evidence")
            return stats

    def evidence_ids(index: int) -> pl.Series:
        part = layout.evidence(index)
        with _reading(part):
            return pl.read_parquet(part, columns=["listing_id"]).get_column("listing_id")

    builder = StatisticsBuilder(plan.filters, identity=identity)
    seen = SeenIds(batch_ids=evidence_ids)
    for entry in entries:
        part = layout.evidence(entry["index"])
        with _reading(part):
            builder.add(pl.read_parquet(part))
        seen.add(evidence_ids(entry["index"]), batch=entry["index"])
        seen.release(entry["index"])
    resumed = len(entries)

    def skipped(index: int, batch: pl.DataFrame) -> None:
        log.batch(index, batch.height, skipped=True, phase="evidence")

    def evidence(batch: pl.DataFrame, earlier: pl.Series) -> Evidence:
        t0 = time.perf_counter()
        found = evidence_frame(batch.with_columns(earlier.alias(SEEN_EARLIER)), plan)
        partials = builder.partials(found)
        return Evidence(found, partials, batch.columns, time.perf_counter() - t0)

    def tasks() -> Iterator[Task]:
        for index, batch in _input_batches(
            listings,
            batch_size,
            plan.settings,
            resumed,
            timings,
            skipped,
            lambda batch: _warn_missing_inputs(plan, batch, log),
        ):
            ids = batch.get_column("listing_id")
            earlier = seen.contains(ids)
            seen.add(ids.filter(~earlier), batch=index)
            yield index, batch.height, functools.partial(evidence, batch, earlier)

    def commit(index: int, rows_in: int, work: Future[Evidence]) -> None:
        found = work.result()
        timings["evidence"] += found.seconds
        t0 = time.perf_counter()
        # the validation's own working columns are not needed past it
        _write_evidence_atomic(found.frame.drop(PARSE_ERROR, strict=False), layout.evidence(index))
        valid = int((found.frame.get_column("status") == "ok").sum())
        builder.add_partials(found.partials, listings=valid)
        entries.append({"index": index, "rows_in": rows_in, "columns": found.columns})
        save_checkpoint()
        # the evidence part holds the batch's ids now
        seen.release(index)
        timings["write"] += time.perf_counter() - t0
        log.batch(index, rows_in, phase="evidence")

    _in_order(tasks(), commit, stop_signal)
    if stop_signal() is not None:
        return None
    t0 = time.perf_counter()
    stats = builder.result()
    with _writing(layout.run_statistics):
        stats.save(layout.run_statistics)
    state["statistics"] = stats.fingerprint
    save_checkpoint()
    timings["statistics"] += time.perf_counter() - t0
    return stats


def _committed_statistics(
    layout: OutputLayout, state: dict[str, Any], plan: ScoringPlan, identity: dict[str, Any]
) -> RunStatistics | None:
    """The statistics a resumed run's first pass left, if they are still there and whole."""
    try:
        stats = RunStatistics.load(layout.run_statistics, plan.filters, identity=identity)
    except StatisticsError:
        stats = None
    if stats is None or stats.fingerprint != state["statistics"]:
        # computed again from the committed evidence; batches scored with other statistics
        # are scored again
        state["statistics"] = None
        del state["batches"][:]
        return None
    return stats


def _final_pass(
    plan: ScoringPlan,
    stats: RunStatistics,
    layout: OutputLayout,
    state: dict[str, Any],
    *,
    frozen: pl.DataFrame,
    ring_mates: pl.DataFrame,
    commit_scored: Callable[[int, int, pl.DataFrame], None],
    stop_signal: Callable[[], int | None],
    log: RunLog,
    summary: RunSummary,
    timings: dict[str, float],
) -> None:
    """The second pass: each batch's evidence scored with the run statistics (the filters'
    final columns, fusion, decision, reasons) and committed."""
    done: list[dict[str, Any]] = state["batches"]
    resumed = summary.resumed_batches = len(done)

    def score(entry: dict[str, Any]) -> tuple[pl.DataFrame, float]:
        part = layout.evidence(entry["index"])
        t0 = time.perf_counter()
        with _reading(part):
            found = pl.read_parquet(part)
        scored = final_frame(found, plan, stats, entry["columns"])
        scored = frozen_sellers_blocked(scored, frozen)
        scored = ring_mates_reviewed(scored, ring_mates)
        return scored, time.perf_counter() - t0

    def tasks() -> Iterator[Task]:
        for n, entry in enumerate(state["evidence"]):
            if n < resumed:
                log.batch(entry["index"], entry["rows_in"], skipped=True)
                _tally_entry(summary, done[n])
                continue
            yield entry["index"], entry["rows_in"], functools.partial(score, entry)

    def commit(index: int, rows_in: int, scoring: Future[tuple[pl.DataFrame, float]]) -> None:
        scored, seconds = scoring.result()
        timings["score"] += seconds
        commit_scored(index, rows_in, scored)

    _in_order(tasks(), commit, stop_signal)


def build_statistics(
    listings: str | Path,
    plan: ScoringPlan,
    out: str | Path,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    quiet: bool = False,
    log_format: str = "text",
) -> RunStatistics:
    """``fakestop stats build``: the run statistics of every listing behind ``listings``,
    written to ``out``. The same statistics as ``fakestop score`` computes over the same input
    (a later repeat of a listing id is left out, as scoring quarantines it); streamed, so
    memory depends on the batch and the statistics, not on the input."""
    if batch_size <= 0:
        raise FakestopError(f"--batch-size must be > 0, got {batch_size}")
    out = Path(out)
    files = resolve_sources(listings)
    inputs = [_input_entry(f) for f in files]
    identity = statistics_identity(plan.registry, plan.settings, plan.filters)
    builder = StatisticsBuilder(plan.filters, identity=identity)
    log = RunLog(_count_rows(files), quiet=quiet, fmt=log_format)
    timings = {"read": 0.0}
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=".fakestop-ids-", dir=_writable_dir(out)) as tmp:

        def ids_path(index: int) -> Path:
            return Path(tmp) / f"ids-{index:05d}.parquet"

        def batch_ids(index: int) -> pl.Series:
            return pl.read_parquet(ids_path(index)).get_column("listing_id")

        seen = SeenIds(batch_ids=batch_ids)

        def partials(
            batch: pl.DataFrame, earlier: pl.Series
        ) -> tuple[dict[str, pl.DataFrame], int]:
            found = evidence_frame(batch.with_columns(earlier.alias(SEEN_EARLIER)), plan)
            return builder.partials(found), int((found.get_column("status") == "ok").sum())

        def tasks() -> Iterator[Task]:
            for index, batch in _input_batches(
                listings,
                batch_size,
                plan.settings,
                0,
                timings,
                lambda i, b: None,
                lambda b: None,
            ):
                ids = batch.get_column("listing_id")
                earlier = seen.contains(ids)
                fresh = ids.filter(~earlier)
                seen.add(fresh, batch=index)
                with _writing(ids_path(index)):
                    fresh.drop_nulls().unique().to_frame("listing_id").write_parquet(
                        ids_path(index)
                    )
                seen.release(index)
                yield index, batch.height, functools.partial(partials, batch, earlier)

        def commit(
            index: int, rows: int, work: Future[tuple[dict[str, pl.DataFrame], int]]
        ) -> None:
            found, valid = work.result()
            builder.add_partials(found, listings=valid)
            log.batch(index, rows, phase="evidence")

        with _stop_requests() as stop_signal:
            _in_order(tasks(), commit, stop_signal)
            signum = stop_signal()
            if signum is not None:
                raise RunStopped(
                    f"{out}: stopped by {signal.Signals(signum).name}; nothing written",
                    signum=signum,
                )
    stats = builder.result()
    with _writing(out):
        stats.save(out, extra={"inputs": inputs})
    log.close()
    seconds = time.perf_counter() - t_start
    summary = stats.summary()
    log.done(
        f"statistics of {stats.listings:,} listings in {seconds:.1f}s: "
        f"{summary.get('price_groups', 0):,} brand/category groups, "
        f"{summary.get('sellers', 0):,} sellers -> {out}"
    )
    return stats


def _writable_dir(out: Path) -> Path:
    """The directory ``out`` goes to, created if needed (temporary files go there too)."""
    with _writing(out.parent):
        out.parent.mkdir(parents=True, exist_ok=True)
    return out.parent


class SeenIds:
    """The listing ids of a run's earlier batches, for uniqueness across batches.

    Held as 64-bit hashes, each with the batch it came from: 12 bytes an id (as text they took
    about 30, and 10M ids 300-450 MB of peak memory). A hash found is confirmed against that
    batch's ids, so a hash collision never makes a new id a repeat: the ids of a batch are kept
    until :meth:`release`, then read back through ``batch_ids`` (the run reads its part).

    Hashes are sorted runs merged like a binary counter (a run is merged into the one before it
    once that is at most twice its size): adding a batch costs about its size times the log of
    the batches so far, and a lookup is a binary search per run. Checking each batch against
    one growing hash set instead rebuilds the set every batch: quadratic in the input.
    """

    #: batches whose ids were read back, kept for the next lookups
    CACHED_BATCHES = 8

    def __init__(self, batch_ids: Callable[[int], pl.Series] | None = None) -> None:
        self.runs: list[pl.DataFrame] = []
        self._batch_ids = batch_ids
        self._held: dict[int, pl.Series] = {}
        self._cache: collections.OrderedDict[int, pl.Series] = collections.OrderedDict()

    @staticmethod
    def _hash(ids: pl.Series) -> pl.Series:
        return ids.hash(seed=0)

    def add(self, ids: pl.Series, *, batch: int) -> None:
        """Add the ids of batch ``batch`` (held exactly until :meth:`release`)."""
        fresh = ids.drop_nulls().unique()
        if fresh.len() == 0:
            return
        self._held[batch] = fresh
        run = pl.DataFrame(
            {
                "h": self._hash(fresh),
                "b": pl.repeat(batch, fresh.len(), dtype=pl.UInt32, eager=True),
            }
        ).sort("h")
        self.runs.append(run)
        while len(self.runs) > 1 and self.runs[-2].height <= 2 * self.runs[-1].height:
            last = self.runs.pop()
            # one chunk: lookups read the hashes as one numpy array without a copy
            self.runs[-1] = self.runs[-1].merge_sorted(last, key="h").rechunk()

    def release(self, batch: int) -> None:
        """Forget the exact ids of ``batch``: from now on they are read back when needed."""
        if self._batch_ids is not None:
            self._held.pop(batch, None)

    def _ids_of(self, batch: int) -> pl.Series:
        if batch in self._held:
            return self._held[batch]
        if batch not in self._cache:
            if self._batch_ids is None:
                raise KeyError(f"no ids for batch {batch}")
            self._cache[batch] = self._batch_ids(batch)
            while len(self._cache) > self.CACHED_BATCHES:
                self._cache.popitem(last=False)
        self._cache.move_to_end(batch)
        return self._cache[batch]

    def contains(self, ids: pl.Series) -> pl.Series:
        """Per id: whether it is in the set (False for a null id)."""
        found = np.zeros(ids.len(), dtype=bool)
        if not self.runs or ids.len() == 0:
            return pl.Series(ids.name, found)
        # queries in hash order: binary searches that walk a large run in order are several
        # times faster than ones that jump about it
        hashes = self._hash(ids).to_numpy()
        order = np.argsort(hashes)
        ordered = hashes[order]
        present = ids.is_not_null().to_numpy()[order]
        queries, batches = [], []
        for run in self.runs:
            values = run.get_column("h").to_numpy()
            lo = np.searchsorted(values, ordered, side="left")
            equal = values[np.minimum(lo, len(values) - 1)] == ordered
            hit = np.flatnonzero(equal & (lo < len(values)) & present)
            if hit.size == 0:
                continue
            # every entry with an equal hash (one, unless hashes collide)
            counts = np.searchsorted(values, ordered[hit], side="right") - lo[hit]
            starts = np.repeat(lo[hit], counts)
            step = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            queries.append(order[np.repeat(hit, counts)])
            batches.append(run.get_column("b").to_numpy()[starts + step])
        if queries:
            query, batch = np.concatenate(queries), np.concatenate(batches)
            for b in np.unique(batch):
                at = np.unique(query[batch == b])
                exact = ids.gather(at).is_in(self._ids_of(int(b)).implode()).to_numpy()
                found[at[exact]] = True
        return pl.Series(ids.name, found)


def _stop_if_asked(
    signum: int | None, layout: OutputLayout, done: list[dict[str, Any]], summary: RunSummary
) -> None:
    """Stop between batches once a stop was asked for: everything so far is committed."""
    if signum is not None:
        raise RunStopped(
            f"{layout.out}: stopped by {signal.Signals(signum).name} with {len(done)} "
            f"batch(es), {summary.rows_in:,} rows committed; rerun the same command to resume",
            signum=signum,
        )


def _input_entry(path: Path) -> dict[str, Any]:
    try:
        return {"path": str(path), "size": path.stat().st_size, "sha256": file_digest(path)}
    except OSError as exc:
        raise SchemaError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _count_rows(files: list[Path]) -> int | None:
    total = 0
    for f in files:
        if f.suffix.lower() not in {".parquet", ".pq"}:
            return None
        try:
            total += pq.ParquetFile(f).metadata.num_rows
        except (OSError, pa.ArrowException) as exc:
            raise SchemaError(f"{f}: not a readable Parquet file ({exc})") from None
    return total


def _warn_missing_inputs(plan: ScoringPlan, batch: pl.DataFrame, log: RunLog) -> None:
    """Say once, on the first batch, which inputs the model was trained with are missing."""
    missing = plan.missing_inputs(inputs_with_values(batch))
    if missing:
        from models.fusion import missing_inputs_message

        log.warning(missing_inputs_message(missing), missing_inputs=missing)


def _batch_entry(index: int, rows_in: int, scored: pl.DataFrame) -> dict[str, Any]:
    """Counts of one committed batch, kept in the checkpoint and summed into the manifest."""
    status = scored.get_column("status")
    quarantined = scored.filter(status == "quarantined")
    rules = (
        quarantined.select(
            pl.col("error").str.split("; ").explode().str.extract(r"^(\w+):", 1).alias("rule")
        )
        # a row_parsed message may hold "; "-separated parts of its own ("price: expected ...")
        .filter(pl.col("rule").is_in(RULE_NAMES))
        .get_column("rule")
        .value_counts()
        .iter_rows()
    )
    entry: dict[str, Any] = {
        "index": index,
        "rows_in": rows_in,
        "rows_out": scored.height,
        "quarantined": quarantined.height,
        "quarantined_by_rule": {str(r): int(n) for r, n in rules if r is not None},
        "decisions": {
            str(d): int(n)
            for d, n in scored.get_column("decision").drop_nulls().value_counts().iter_rows()
        },
        "inputs": inputs_with_values(scored),
    }
    if "label" in scored.columns:
        ok = scored.filter((status == "ok") & pl.col("label").is_not_null())
        lab = ok.get_column("label") == 1
        dec = ok.get_column("decision")
        entry["labels"] = {
            "positives": int(lab.sum()),
            "tp_block": int(((dec == "block") & lab).sum()),
            "fp_block": int(((dec == "block") & ~lab).sum()),
            "tp_flag": int(((dec != "allow") & lab).sum()),
            "fp_flag": int(((dec != "allow") & ~lab).sum()),
        }
    return entry


def _tally_entry(summary: RunSummary, entry: dict[str, Any]) -> None:
    summary.rows_in += entry["rows_in"]
    summary.rows_out += entry["rows_out"]
    summary.quarantined += entry["quarantined"]
    for d, n in entry["decisions"].items():
        summary.decisions[d] = summary.decisions.get(d, 0) + n
