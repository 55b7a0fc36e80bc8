"""Progress on a terminal (rows, rows/s, ETA) and quiet otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """A one-line progress display on stderr; silent when not a terminal or when ``quiet``."""

    def __init__(self, total: int | None, *, quiet: bool = False, stream: TextIO | None = None):
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = not quiet and self.stream.isatty()
        self.done = 0
        self.start = time.perf_counter()

    def update(self, rows: int) -> None:
        self.done += rows
        if not self.enabled:
            return
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = self.done / elapsed
        if self.total:
            eta = (self.total - self.done) / rate if rate > 0 else 0.0
            pct = 100.0 * self.done / self.total
            width = 30
            filled = int(width * self.done / self.total)
            bar = "#" * filled + "-" * (width - filled)
            line = (
                f"[{bar}] {pct:5.1f}% {self.done:,}/{self.total:,} rows "
                f"{rate:,.0f}/s ETA {eta:,.0f}s"
            )
        else:
            line = f"{self.done:,} rows {rate:,.0f}/s"
        self.stream.write("\r" + line)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
