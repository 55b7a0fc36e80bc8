"""CSV text helpers shared by the registry's and the listings' readers."""

from __future__ import annotations

import csv
import io


def csv_never_closed(tail: str, separator: str = ",") -> bool:
    """Whether the CSV text ``tail`` (one record to the end of the file) opens a quoted field
    that is never closed."""
    try:
        for _ in csv.reader(io.StringIO(tail, newline=""), strict=True, delimiter=separator):
            pass
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False
