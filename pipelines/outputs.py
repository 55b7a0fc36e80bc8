"""Where and how a run writes its scores: the format an ``--out`` names, the check that an
output never overwrites or lands among its inputs, and the CSV and NDJSON exports.

A run always commits Parquet parts (they are what a resumed run reuses); a ``.csv``, ``.ndjson``
or ``.jsonl`` output is written from them at the end, streamed, under a temporary name.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

import polars as pl

from pipelines.errors import FakestopError

#: output suffix -> format; a path ending in ``/`` (or an existing directory) is ``parts``
OUTPUT_SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
}
EXPECTED_OUTPUT = "expected OUT.parquet, OUT.csv, OUT.ndjson, OUT.jsonl or a directory OUT_DIR/"


def output_format(out: str | Path) -> str:
    """``parquet``, ``csv``, ``ndjson`` or ``parts`` (a directory of Parquet parts).

    Examples
    --------
    >>> output_format("scores.csv"), output_format("scores/"), output_format("s.JSONL")
    ('csv', 'parts', 'ndjson')
    """
    text = str(out)
    path = Path(text)
    if text.endswith(("/", os.sep)) or path.is_dir():
        return "parts"
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        what = f"unknown output format {suffix}" if suffix else "no file extension"
        raise FakestopError(f"--out {text}: {what}; {EXPECTED_OUTPUT}")
    return OUTPUT_SUFFIXES[suffix]


# ---------------------------------------------------------------- outputs vs inputs


def _real(path: str | Path) -> Path:
    return Path(os.path.realpath(path))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _glob_matches(pattern: str, path: Path) -> bool:
    """Whether :func:`glob.glob` with ``pattern`` would list ``path`` (absolute, resolved):
    segment by segment, ``**`` standing for any number of directories, and names starting
    with a dot matched only by a segment that starts with one."""
    segments = Path(os.path.abspath(pattern)).parts
    magic = next(i for i, s in enumerate(segments) if any(ch in s for ch in "*?["))
    base = _real(Path(*segments[:magic]))
    if not _inside(path, base) or path == base:
        return False
    parts, target = segments[magic:], path.relative_to(base).parts

    def match(i: int, j: int) -> bool:
        if i == len(parts):
            return j == len(target)
        seg = parts[i]
        if seg == "**":
            return any(
                match(i + 1, k)
                for k in range(j, len(target) + 1)
                if not any(t.startswith(".") for t in target[j:k])
            )
        if j == len(target):
            return False
        name = target[j]
        if name.startswith(".") and not seg.startswith("."):
            return False
        return fnmatch.fnmatchcase(name, seg) and match(i + 1, j + 1)

    return match(0, 0)


def refuse_output_over_inputs(
    out: str | Path, as_dir: bool, listings: str | Path, files: list[Path]
) -> None:
    """Refuse an output that is an input file, lies inside an input directory, would be read
    by the input glob, or (a directory of parts) holds an input file: one run must never
    overwrite its input, and the next run must never read the last one's scores as listings.
    """
    target = _real(out)
    # what the run writes besides the output itself: its parts and the temporary files, and
    # the run statistics it leaves beside the output (``OutputLayout.statistics``)
    written = [target / "part-00000.parquet"] if as_dir else [target]
    written.append(target.parent / f"{target.name}.stats")
    text = str(listings)
    for f in files:
        real = _real(f)
        if real == target:
            raise FakestopError(f"--out {out} is the input file {f}: it would be overwritten")
        if as_dir and _inside(real, target):
            raise FakestopError(
                f"--out {out} holds the input file {f}: its parts would be mixed with the input"
            )
    if any(ch in text for ch in "*?["):
        for w in written:
            if _glob_matches(text, w):
                raise FakestopError(
                    f"--out {out} matches the input pattern {text!r}: "
                    "the next run would read these scores as listings"
                )
    elif Path(text).is_dir():
        folder = _real(text)
        if _inside(target, folder):
            raise FakestopError(
                f"--out {out} is inside the input directory {text}: "
                "the next run would read these scores as listings"
            )


# ---------------------------------------------------------------- CSV and NDJSON exports


def _as_text_values(lf: pl.LazyFrame, *, nested: bool) -> pl.LazyFrame:
    """Columns a text format cannot hold as they are: bytes as base64 and, for CSV
    (``nested``), lists and structs as JSON text (``["reason one", "reason two"]``)."""
    schema = lf.collect_schema()
    changes = []
    for name, dtype in schema.items():
        col = pl.col(name)
        if dtype == pl.Binary():
            changes.append(col.bin.encode("base64").alias(name))
        elif nested and dtype.is_nested():
            # {"v":...} with the value's JSON after the five characters of the key
            text = pl.struct(col.alias("v")).struct.json_encode().str.slice(5).str.head(-1)
            changes.append(pl.when(col.is_not_null()).then(text).alias(name))
    return lf.with_columns(changes) if changes else lf


def export_parts(parts: list[Path], tmp: str, fmt: str) -> None:
    """Write the rows of the committed ``parts``, in order, to ``tmp`` as CSV or NDJSON."""
    if parts:
        lf = pl.concat([pl.scan_parquet(p) for p in parts], how="diagonal_relaxed")
    else:
        lf = pl.LazyFrame()
    if fmt == "csv":
        _as_text_values(lf, nested=True).sink_csv(tmp)
    elif fmt == "ndjson":
        _as_text_values(lf, nested=False).sink_ndjson(tmp)
    else:
        raise ValueError(f"not a text output format: {fmt}")


def output_columns(path: Path, fmt: str, columns: list[str]) -> pl.DataFrame:
    """``columns`` of a finished output file, as text (for ``fakestop verify``)."""
    if fmt == "csv":
        return pl.read_csv(path, columns=columns, infer_schema=False)
    if fmt == "ndjson":
        return pl.read_ndjson(path, schema=dict.fromkeys(columns, pl.String))
    return pl.read_parquet(path, columns=columns)


def output_rows(path: Path, fmt: str) -> int:
    """Rows of a finished output file."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    return output_columns(path, fmt, ["status"]).height
