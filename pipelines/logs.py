"""Progress and log lines of a run.

On a terminal: a progress bar with rows/s and ETA. Otherwise one line per batch, as text or as
JSON objects (``--log-format json``) for schedulers. ``quiet`` silences all of it.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO


class RunLog:
    def __init__(
        self,
        total: int | None,
        *,
        quiet: bool = False,
        fmt: str = "text",
        stream: TextIO | None = None,
    ) -> None:
        if fmt not in ("text", "json"):
            raise ValueError(f"log format must be 'text' or 'json', got {fmt!r}")
        self.total = total
        self.quiet = quiet
        self.fmt = fmt
        self.stream = stream or sys.stderr
        self.bar = not quiet and fmt == "text" and self.stream.isatty()
        self.rows = 0
        #: rows done in each pass ("evidence", "score")
        self.phase_rows: dict[str, int] = {}
        self.start = time.perf_counter()

    def _emit(self, event: str, text: str, **fields: Any) -> None:
        if self.quiet:
            return
        if self.fmt == "json":
            record = {"ts": round(time.time(), 3), "event": event, **fields}
            self.stream.write(json.dumps(record) + "\n")
        elif not self.bar:
            self.stream.write(text + "\n")
        self.stream.flush()

    def warning(self, text: str, **fields: Any) -> None:
        """A warning: written even when ``quiet`` (it is no progress), once per call."""
        if self.bar:
            self.stream.write("\n")
        if self.fmt == "json":
            record = {"ts": round(time.time(), 3), "event": "warning", "message": text, **fields}
            self.stream.write(json.dumps(record) + "\n")
        else:
            self.stream.write(f"fakestop: warning: {text}\n")
        self.stream.flush()

    def batch(self, index: int, rows: int, *, skipped: bool = False, phase: str = "score") -> None:
        """One batch done: ``phase`` "evidence" (the first of a run's two passes, see
        :mod:`pipelines.run`) or "score"."""
        self.rows += rows
        done = self.phase_rows[phase] = self.phase_rows.get(phase, 0) + rows
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = self.rows / elapsed
        eta = (self.total - self.rows) / rate if self.total and rate > 0 else None
        if self.bar:
            self._draw(rate, eta)
            return
        what = "already committed" if skipped else "scored"
        if phase == "evidence":
            what = "evidence already committed" if skipped else "evidence computed"
        self._emit(
            "batch",
            f"batch {index}: {rows:,} rows {what} ({done:,} total, {rate:,.0f} rows/s)",
            batch=index,
            phase=phase,
            rows=rows,
            skipped=skipped,
            total_rows=done,
            rows_per_s=round(rate, 1),
            eta_s=None if eta is None else round(eta, 1),
        )

    def _draw(self, rate: float, eta: float | None) -> None:
        if self.total:
            width = 30
            filled = min(width, int(width * self.rows / self.total))
            pct = 100.0 * self.rows / self.total
            line = (
                f"[{'#' * filled}{'-' * (width - filled)}] {pct:5.1f}% "
                f"{self.rows:,}/{self.total:,} rows {rate:,.0f}/s ETA {eta or 0:,.0f}s"
            )
        else:
            line = f"{self.rows:,} rows {rate:,.0f}/s"
        self.stream.write("\r" + line)
        self.stream.flush()

    def close(self) -> None:
        if self.bar:
            self.stream.write("\n")
            self.stream.flush()
            self.bar = False

    def done(self, text: str) -> None:
        """The run's summary: a JSON event; as text it is the command's to print, once, on
        standard output (on standard error too it would show twice off a terminal)."""
        if self.fmt == "json":
            self._emit("done", text, summary=text)
