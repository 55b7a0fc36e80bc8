"""Reading listings and splitting them into valid rows and quarantined rows.

Every input row comes out again: rows that break a rule get ``status = "quarantined"`` and an
``error`` naming every broken rule. Rules are named boolean expressions (true = row is fine).
"""

from __future__ import annotations

import csv
import glob
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.config import Settings
from pipelines.errors import SchemaError

ROW = "__row"
PARSE_ERROR = "__parse_error"
PRICE_RAW = "__price_raw"
SEEN_EARLIER = "__seen_earlier"

REQUIRED_COLUMNS = ("listing_id", "title", "price")
#: contract input columns and the dtype each is read as
INPUT_SCHEMA: dict[str, pl.DataType] = {
    "listing_id": pl.String(),
    "title": pl.String(),
    "price": pl.Float64(),
    "description": pl.String(),
    "category": pl.String(),
    "brand": pl.String(),
    "seller_id": pl.String(),
    "currency": pl.String(),
    "condition": pl.String(),
    "image": pl.String(),
    "label": pl.Int64(),
}
PARQUET_SUFFIXES = {".parquet", ".pq"}
CSV_SUFFIXES = {".csv"}
NDJSON_SUFFIXES = {".ndjson", ".jsonl"}


# ---------------------------------------------------------------- sources


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


# ---------------------------------------------------------------- readers


def _read_csv_fallback(path: Path) -> pl.DataFrame:
    """Slow, forgiving CSV reader used only when the fast reader refuses the file.

    Records with the wrong number of fields or undecodable bytes are kept as rows that carry a
    parse error, so they are quarantined instead of lost.
    """
    text = path.read_bytes().decode("utf-8", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return pl.DataFrame()
    except csv.Error as exc:
        raise SchemaError(f"{path} line 1: unreadable header ({exc})") from None
    header = [h.lstrip("\ufeff").strip() for h in header]
    width = len(header)
    rows: list[list[str | None]] = []
    errors: list[str | None] = []
    while True:
        line = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            rows.append([None] * width)
            errors.append(f"line {line}: malformed CSV ({exc})")
            continue
        if not values:
            continue
        problems = []
        # short rows are padded with nulls as the fast reader does; extra fields are an error
        if len(values) > width:
            problems.append(f"line {line}: expected {width} fields, got {len(values)}")
        fixed: list[str | None] = []
        bad_bytes = False
        for v in values[:width]:
            clean = v.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")
            bad_bytes |= clean != v
            fixed.append(clean)
        if bad_bytes:
            problems.append(f"line {line}: invalid UTF-8 bytes")
        fixed += [None] * (width - len(fixed))
        rows.append(fixed)
        errors.append("; ".join(problems) or None)
    frame = pl.DataFrame(rows, schema=dict.fromkeys(header, pl.String), orient="row")
    return frame.with_columns(pl.Series(PARSE_ERROR, errors, dtype=pl.String))


def _read_csv(path: Path) -> pl.DataFrame:
    try:
        frame = pl.read_csv(path, infer_schema=False, encoding="utf8-lossy")
    except pl.exceptions.NoDataError:
        return pl.DataFrame()
    except (pl.exceptions.ComputeError, pl.exceptions.ShapeError):
        return _read_csv_fallback(path)
    # the lossy decoder turns bad bytes into U+FFFD; such rows are re-read by the forgiving path
    has_bad = pl.any_horizontal(pl.col(pl.String).str.contains("\ufffd", literal=True))
    if frame.height and frame.select(has_bad.any()).item():
        return _read_csv_fallback(path)
    return frame


def _read_ndjson_fallback(path: Path) -> pl.DataFrame:
    records: list[dict[str, object]] = []
    for lineno, raw in enumerate(path.read_bytes().splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError) as exc:
            records.append({PARSE_ERROR: f"line {lineno}: invalid JSON ({exc})"})
            continue
        row: dict[str, object] = {}
        for k, v in obj.items():
            row[str(k)] = None if v is None else (v if isinstance(v, str) else json.dumps(v))
        records.append(row)
    columns = list(dict.fromkeys(k for r in records for k in r))
    return pl.DataFrame(
        {c: [r.get(c) for r in records] for c in columns},
        schema=dict.fromkeys(columns, pl.String),
    )


def _read_ndjson(path: Path) -> pl.DataFrame:
    try:
        return pl.read_ndjson(path, infer_schema_length=None)
    except (pl.exceptions.ComputeError, pl.exceptions.SchemaError, ValueError):
        return _read_ndjson_fallback(path)


def _read_parquet(path: Path) -> pl.DataFrame:
    try:
        return pl.read_parquet(path)
    except (pl.exceptions.ComputeError, OSError) as exc:
        raise SchemaError(f"{path}: not a readable Parquet file ({exc})") from None


READERS: dict[str, Callable[[Path], pl.DataFrame]] = {
    **dict.fromkeys(PARQUET_SUFFIXES, _read_parquet),
    **dict.fromkeys(CSV_SUFFIXES, _read_csv),
    **dict.fromkeys(NDJSON_SUFFIXES, _read_ndjson),
}


def read_file(path: Path) -> pl.DataFrame:
    """Read one listings file into a frame with contract dtypes (see :func:`conform`)."""
    try:
        frame = READERS[path.suffix.lower()](path)
    except OSError as exc:
        raise SchemaError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return conform(frame, source=str(path))


def read_listings(source: str | Path) -> pl.DataFrame:
    """Read every file behind ``source`` into one frame with a global ``__row`` index.

    Examples
    --------
    >>> import polars as pl, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "l.csv")
    >>> pl.DataFrame({"listing_id": ["a"], "title": ["Gucci bag"], "price": [9.5]}).write_csv(p)
    >>> read_listings(p).get_column("price").to_list()
    [9.5]
    """
    frames = [read_file(f) for f in resolve_sources(source)]
    frame = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    return frame.with_row_index(ROW)


def _parquet_batches(path: Path, batch_size: int) -> Iterator[pl.DataFrame]:
    """Stream a Parquet file: memory is bounded by the batch, not the file."""
    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise SchemaError(f"{path}: not a readable Parquet file ({exc})") from None
    if pf.metadata.num_rows == 0:
        empty = pl.DataFrame(pf.schema_arrow.empty_table())
        yield conform(empty, source=str(path))
        return
    for rb in pf.iter_batches(batch_size=batch_size):
        yield conform(pl.DataFrame(pa.Table.from_batches([rb])), source=str(path))


def iter_listing_batches(source: str | Path, batch_size: int) -> Iterator[pl.DataFrame]:
    """Batches of at most ``batch_size`` rows, with a global ``__row`` index.

    Parquet is streamed; CSV and NDJSON files are read whole (their forgiving readers need the
    whole file) and then sliced. An empty file still yields one empty batch, so the output has
    a schema.
    """
    offset = 0
    for f in resolve_sources(source):
        if f.suffix.lower() in PARQUET_SUFFIXES:
            parts: Iterator[pl.DataFrame] = _parquet_batches(f, batch_size)
        else:
            frame = read_file(f)
            parts = (
                iter([frame])
                if frame.height == 0
                else (frame.slice(i, batch_size) for i in range(0, frame.height, batch_size))
            )
        for part in parts:
            yield part.with_row_index(ROW, offset=offset)
            offset += part.height


def conform(frame: pl.DataFrame, *, source: str) -> pl.DataFrame:
    """Cast contract columns to their dtypes, keep extra columns untouched.

    Values that cannot be cast become null; the raw price text is kept so that the
    quarantine reason can show it.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"{source}: missing required column(s) {', '.join(missing)}; "
            f"found {', '.join(frame.columns) or 'no columns'}"
        )
    casts = []
    for name, dtype in INPUT_SCHEMA.items():
        if name not in frame.columns:
            continue
        col = frame.schema[name]
        if name == "price":
            casts.append(pl.col(name).cast(pl.String).alias(PRICE_RAW))
        if col != dtype:
            if dtype == pl.String() and col.is_nested():
                casts.append(pl.lit(None, dtype=pl.String()).alias(name))
            elif col == pl.String() and dtype.is_numeric():
                casts.append(pl.col(name).str.strip_chars().cast(dtype, strict=False))
            else:
                casts.append(pl.col(name).cast(dtype, strict=False))
    frame = frame.with_columns(casts)
    if PARSE_ERROR not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.String()).alias(PARSE_ERROR))
    return frame


# ---------------------------------------------------------------- validation


def _blank(col: str) -> pl.Expr:
    return pl.col(col).is_null() | (pl.col(col).str.strip_chars() == "")


def _opt(frame_cols: set[str], col: str) -> pl.Expr:
    return pl.col(col) if col in frame_cols else pl.lit(None, dtype=pl.String())


def row_rules(
    columns: set[str], settings: Settings, seen_ids: pl.Series | None = None
) -> dict[str, tuple[pl.Expr, pl.Expr]]:
    """Named rules: ``name -> (passes, message)``. A rule passes when its expression is true.

    ``seen_ids`` holds ids of earlier batches of the same run, so uniqueness spans batches.
    """
    first = pl.col("listing_id").is_first_distinct()
    if SEEN_EARLIER in columns:  # set by a distributed runner that sees the whole input
        first = first & ~pl.col(SEEN_EARLIER).fill_null(False)
    if seen_ids is not None and seen_ids.len():
        first = first & ~pl.col("listing_id").is_in(seen_ids.implode())
    currency = _opt(columns, "currency").str.strip_chars().str.to_uppercase()
    condition = _opt(columns, "condition").str.strip_chars().str.to_lowercase()
    price = pl.col("price")
    known_currencies = sorted(settings.rates)
    known_conditions = sorted(settings.condition_factors)
    return {
        "row_parsed": (
            pl.col(PARSE_ERROR).is_null(),
            pl.format("row_parsed: {}", pl.col(PARSE_ERROR)),
        ),
        "id_present": (
            ~_blank("listing_id"),
            pl.lit("id_present: listing_id is missing or blank"),
        ),
        "id_unique": (
            _blank("listing_id") | first,
            pl.format(
                "id_unique: listing_id {} already seen in an earlier row", pl.col("listing_id")
            ),
        ),
        "title_present": (
            ~_blank("title"),
            pl.lit("title_present: title is missing or blank"),
        ),
        "price_positive": (
            price.is_not_null() & price.is_finite() & (price > 0),
            pl.format(
                "price_positive: price {} is not a finite number > 0",
                pl.col(PRICE_RAW).fill_null("(missing)"),
            ),
        ),
        "currency_known": (
            currency.is_null() | (currency == "") | currency.is_in(known_currencies),
            pl.format(
                "currency_known: currency {} has no configured rate (known: {})",
                currency,
                pl.lit(", ".join(known_currencies)),
            ),
        ),
        "condition_known": (
            condition.is_null() | (condition == "") | condition.is_in(known_conditions),
            pl.format(
                "condition_known: condition {} is not one of {}",
                condition,
                pl.lit(", ".join(known_conditions)),
            ),
        ),
    }


def validated_listings(
    lf: pl.LazyFrame, settings: Settings, *, seen_ids: pl.Series | None = None
) -> pl.LazyFrame:
    """Add ``status`` and ``error`` (every broken rule, ``; ``-separated) and normalise
    ``currency`` (upper case, default USD) and ``condition`` (lower case, default new)."""
    schema = lf.collect_schema()
    columns = set(schema.names())
    # all-null columns (e.g. from a frame built in Python) carry no dtype yet
    lf = lf.with_columns(
        pl.col(c).cast(INPUT_SCHEMA[c])
        for c in columns & INPUT_SCHEMA.keys()
        if schema[c] == pl.Null()
    )
    if PARSE_ERROR not in columns:
        lf = lf.with_columns(pl.lit(None, dtype=pl.String()).alias(PARSE_ERROR))
    if PRICE_RAW not in columns:
        lf = lf.with_columns(pl.col("price").cast(pl.String).alias(PRICE_RAW))
    rules = row_rules(columns, settings, seen_ids)
    messages = [pl.when(~ok.fill_null(False)).then(msg) for ok, msg in rules.values()]
    error = pl.concat_str(messages, separator="; ", ignore_nulls=True)
    currency = _opt(columns, "currency").str.strip_chars().str.to_uppercase()
    condition = _opt(columns, "condition").str.strip_chars().str.to_lowercase()
    return lf.with_columns(
        pl.when(error == "").then(None).otherwise(error).alias("error"),
    ).with_columns(
        pl.when(pl.col("error").is_null())
        .then(pl.lit("ok"))
        .otherwise(pl.lit("quarantined"))
        .alias("status"),
        pl.when(currency.is_null() | (currency == ""))
        .then(pl.lit("USD"))
        .otherwise(currency)
        .alias("currency"),
        pl.when(condition.is_null() | (condition == ""))
        .then(pl.lit("new"))
        .otherwise(condition)
        .alias("condition"),
    )
