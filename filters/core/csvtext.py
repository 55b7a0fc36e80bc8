"""CSV text helpers shared by the registry's and the listings' readers."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from pathlib import Path

from filters.core.errors import RegistryError


def csv_never_closed(tail: str, separator: str = ",") -> bool:
    """Whether the CSV text ``tail`` (one record to the end of the file) opens a quoted field
    that is never closed."""
    try:
        for _ in csv.reader(io.StringIO(tail, newline=""), strict=True, delimiter=separator):
            pass
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def checked_header(reader: Iterator[list[str]], path: Path, expected: Sequence[str]) -> list[str]:
    """The header a registry CSV ``reader`` starts with, each name stripped, holding every
    ``expected`` column; else a :class:`RegistryError` naming the file, the line and the
    header expected."""
    wanted = ",".join(expected)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise RegistryError(f"{path}: empty file, expected header {wanted}") from None
    missing = [c for c in expected if c not in header]
    if missing:
        raise RegistryError(
            f"{path} line 1: missing column(s) {', '.join(missing)}; expected header {wanted}"
        )
    return header
