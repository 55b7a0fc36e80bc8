"""Where listings come from: a file, or a directory of files of the formats fakestop reads."""

from __future__ import annotations

import glob
from pathlib import Path

from pipelines.errors import SchemaError

PARQUET_SUFFIXES = {".parquet", ".pq"}


CSV_SUFFIXES = {".csv"}


NDJSON_SUFFIXES = {".ndjson", ".jsonl"}


def resolve_sources(source: str | Path) -> list[Path]:
    """Files behind a listings argument: one file, a directory of Parquet parts, or a glob."""
    text = str(source)
    if any(ch in text for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        if not files:
            raise SchemaError(f"{text}: no files match")
    else:
        path = Path(text)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in PARQUET_SUFFIXES)
            if not files:
                raise SchemaError(f"{path}: directory holds no .parquet files")
        elif path.is_file():
            files = [path]
        else:
            raise SchemaError(f"{path}: no such file or directory")
    for f in files:
        suffix = f.suffix.lower()
        if suffix not in PARQUET_SUFFIXES | CSV_SUFFIXES | NDJSON_SUFFIXES:
            raise SchemaError(
                f"{f}: unknown format {suffix or '(no extension)'}; "
                "expected .parquet, .csv or .ndjson"
            )
    return files
