"""Reading listings and splitting them into valid rows and quarantined rows.

Every input row comes out again: rows that break a rule get ``status = "quarantined"`` and an
``error`` naming every broken rule. Rules are named boolean expressions (true = row is fine).

The readers, one per format, live in :mod:`pipelines.io`; this module picks the reader for a
file, conforms what it read to the input schema (:func:`conform`) and validates it
(:func:`validated_listings`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Generator, Iterator, Mapping
from pathlib import Path

import polars as pl

from pipelines.columns import INPUT_SCHEMA, OUTPUT_SCHEMA
from pipelines.conditions import canonical_conditions
from pipelines.config import Settings
from pipelines.errors import SchemaError
from pipelines.io.base import PARSE_ERROR, REQUIRED_COLUMNS, first_line, user_columns
from pipelines.io.csv import csv_frames, read_csv
from pipelines.io.ndjson import ndjson_frames, read_ndjson
from pipelines.io.parquet import parquet_batches, read_parquet
from pipelines.io.sources import CSV_SUFFIXES, NDJSON_SUFFIXES, PARQUET_SUFFIXES, resolve_sources
from pipelines.prices import parsed_prices, sign_table
from pipelines.validation import (
    CURRENCY,
    PRICE_RAW,
    PRICE_SIGN,
    SIGN_CURRENCIES,
    SIGN_DEFAULT,
    batch_fields,
    batch_rules,
)

ROW = "__row"


#: a reason validation gives a row it scores anyway (an unknown condition)
VALIDATION_NOTE = "__validation_note"


def read_file(path: Path, settings: Settings | None = None) -> pl.DataFrame:
    """Read one listings file into a frame with contract dtypes (see :func:`conform`)."""
    suffix = path.suffix.lower()
    try:
        if suffix in CSV_SUFFIXES:
            frame = read_csv(path, settings)
        elif suffix in NDJSON_SUFFIXES:
            frame = read_ndjson(path)
        else:
            frame = read_parquet(path)
    except OSError as exc:
        raise SchemaError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return conform(frame, source=str(path), settings=settings)


def read_listings(source: str | Path, settings: Settings | None = None) -> pl.DataFrame:
    """Read every file behind ``source`` into one frame with a global ``__row`` index.

    ``settings``: how CSV files are written and which headers name the listing columns
    (default: sniffed and matched by name).

    Examples
    --------
    >>> import polars as pl, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "l.csv")
    >>> pl.DataFrame({"listing_id": ["a"], "title": ["Gucci bag"], "price": [9.5]}).write_csv(p)
    >>> read_listings(p).get_column("price").to_list()
    [9.5]
    """
    frames = [read_file(f, settings) for f in resolve_sources(source)]
    frame = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    return frame.with_row_index(ROW)


def iter_listing_batches(
    source: str | Path, batch_size: int, settings: Settings | None = None
) -> Iterator[pl.DataFrame]:
    """Batches of at most ``batch_size`` rows, with a global ``__row`` index.

    Every format is streamed: Parquet a slice at a time, CSV a piece of whole records
    (:func:`csv_frames`), NDJSON a piece of whole lines (:func:`ndjson_frames`). An empty
    file still yields one empty batch, so the output has a schema.
    """
    offset = 0
    files = resolve_sources(source)
    union = _union_schema(files, settings) if len(files) > 1 else None
    for f in files:
        suffix = f.suffix.lower()
        if suffix in PARQUET_SUFFIXES:
            parts: Iterator[pl.DataFrame] = (
                conform(frame, source=str(f), settings=settings)
                for frame in parquet_batches(f, batch_size)
            )
        else:
            parts = _rebatched(_conformed_pieces(f, settings), batch_size)
        for part in parts:
            if union is not None and part.schema != union:
                part = part.select(
                    (pl.col(c).cast(t) if c in part.columns else pl.lit(None, t)).alias(c)
                    for c, t in union.items()
                )
            yield part.with_row_index(ROW, offset=offset)
            offset += part.height


def _streamed_columns(path: Path, settings: Settings | None = None) -> pl.DataFrame:
    """No rows, the columns and types a file's batches have (:func:`iter_listing_batches`):
    Parquet from its footer; CSV and NDJSON from their first piece (every piece of a file is
    given the file's columns: a CSV file's as text, an NDJSON file's as its first pass found
    them)."""
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        try:
            schema = pl.read_parquet_schema(path)
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise SchemaError(f"{path}: not a readable Parquet file ({first_line(exc)})") from None
        return conform(
            user_columns(pl.DataFrame(schema=schema)), source=str(path), settings=settings
        )
    frames = _conformed_pieces(path, settings)
    try:
        return next(frames).clear()
    finally:
        frames.close()


def _union_schema(files: list[Path], settings: Settings | None = None) -> pl.Schema:
    """The columns of files read as one input, as :func:`read_listings` combines them: every
    file's columns, each in a type that holds every file's values. The files' batches are
    given these columns, so that the output has one schema."""
    frames = [_streamed_columns(f, settings) for f in files]
    try:
        return pl.concat(frames, how="diagonal_relaxed").schema
    except pl.exceptions.PolarsError as exc:
        raise SchemaError(
            f"{files[0].parent}: its files' columns cannot be combined ({first_line(exc)})"
        ) from None


def _conformed_pieces(path: Path, settings: Settings | None = None) -> Generator[pl.DataFrame]:
    """:func:`read_file` of a CSV or NDJSON file, a piece at a time."""
    if path.suffix.lower() in CSV_SUFFIXES:
        pieces = csv_frames(path, settings)
    else:
        pieces = ndjson_frames(path)
    try:
        for frame in pieces:
            yield conform(frame, source=str(path), settings=settings)
    except OSError as exc:
        raise SchemaError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _rebatched(frames: Iterator[pl.DataFrame], batch_size: int) -> Iterator[pl.DataFrame]:
    """``frames`` as batches of exactly ``batch_size`` rows (the last one shorter), as slicing
    their concatenation would give; the first frame if all are empty (it has the schema)."""
    held: list[pl.DataFrame] = []
    rows, sent = 0, False
    first: pl.DataFrame | None = None
    for frame in frames:
        first = frame if first is None else first
        if frame.height == 0:
            continue
        held.append(frame)
        rows += frame.height
        while rows >= batch_size:
            joined = pl.concat(held, how="diagonal_relaxed") if len(held) > 1 else held[0]
            yield joined.slice(0, batch_size)
            sent = True
            rest = joined.slice(batch_size)
            held, rows = ([rest] if rest.height else []), rest.height
    if held:
        yield pl.concat(held, how="diagonal_relaxed") if len(held) > 1 else held[0]
    elif not sent and first is not None:
        yield first


def _shown(columns: list[str], limit: int = 12) -> str:
    """Column names for a one-line message: odd characters escaped, long lists cut short."""
    if not columns:
        return "no columns"
    names = [c if c.isprintable() and len(c) <= 60 else repr(c[:60]) for c in columns[:limit]]
    more = f" and {len(columns) - limit:,} more" if len(columns) > limit else ""
    return ", ".join(names) + more


#: what each contract column holds, for "expected ..." messages
EXPECTED = {"price": "a number", "label": "an integer", "image": "a path or bytes"}


def _decoded(values: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Binary values as text (bad bytes become U+FFFD) and whether each was valid UTF-8."""
    texts: list[str | None] = []
    valid: list[bool] = []
    for b in values.to_list():
        if b is None:
            texts.append(None)
            valid.append(True)
            continue
        text = b.decode("utf-8", errors="replace")
        texts.append(text)
        valid.append(text.encode("utf-8") == b)
    return pl.Series(values.name, texts, dtype=pl.String), pl.Series(valid, dtype=pl.Boolean)


def _converted(
    values: pl.Series, target: pl.DataType
) -> tuple[pl.Series, pl.Series | None, str | None]:
    """``values`` as ``target``: (converted, rows that went wrong or None, what went wrong).

    Text, numbers, booleans and dates become text; numbers and numeric text become numbers.
    Anything else (lists, structs, bytes where a number is expected ...) becomes null and is
    reported, never guessed at.
    """
    col = values.dtype
    name = str(values.name)
    wrong = f"{name}: expected {EXPECTED.get(name, 'text')}, got {col}"
    present = values.is_not_null()
    if isinstance(col, pl.Categorical | pl.Enum):
        values, col = values.cast(pl.String), pl.String()
    if col == target or col == pl.Null():
        return values.cast(target), None, None
    if col == pl.Binary() and target == pl.String():
        text, valid = _decoded(values)
        return text, ~valid, f"{name}: not valid UTF-8"
    usable = col.is_numeric() or (
        target == pl.String() and (col == pl.Boolean() or col.is_temporal())
    )
    if target == pl.Int64() and col == pl.Boolean():
        usable = True
    if col == pl.String():
        return values.str.strip_chars().cast(target, strict=False), None, None
    if usable and not col.is_nested():
        try:
            return values.cast(target, strict=False), None, None
        except pl.exceptions.PolarsError:
            pass
    return pl.Series(name, [None] * len(values), dtype=target), present, wrong


@functools.cache
def computed_columns() -> frozenset[str]:
    """Columns the scoring chain computes: the output columns and every filter's evidence."""
    from filters import REGISTRY

    names = set(OUTPUT_SCHEMA)
    for f in REGISTRY.values():
        names |= set(f.output_schema())
    return frozenset(names)


def column_key(name: str) -> str:
    """A column name as headers are matched: case and separators ignored
    (``Listing_ID``, ``Listing ID`` and ``listing-id`` are ``listingid``)."""
    return re.sub(r"[\W_]+", "", name.casefold())


def input_renames(
    names: list[str], mapping: Mapping[str, str] | None = None, *, source: str
) -> dict[str, str]:
    """``{header: listing column}`` for the headers of an export that name listing columns
    otherwise than the contract does: first ``mapping`` (``--columns``, listing column ->
    header, the header matched exactly, else ignoring case and separators), then each listing
    column still missing matched by a header that differs only in case and separators.

    Examples
    --------
    >>> input_renames(["Listing_ID", "Title", "Price (EUR)"], {"price": "price (eur)"}, source="x")
    {'Price (EUR)': 'price', 'Listing_ID': 'listing_id', 'Title': 'title'}
    """
    renames: dict[str, str] = {}
    present = set(names)
    for column, header in (mapping or {}).items():
        if header in present:
            found = header
        elif column in present:
            continue  # named already (a frame this mapping was applied to)
        else:
            near = [n for n in names if column_key(n) == column_key(header)]
            if len(near) != 1:
                what = f"no column {header!r}" if not near else f"several columns match {header!r}"
                raise SchemaError(
                    f"{source}: --columns {column}={header}: {what}; found {_shown(names)}"
                )
            found = near[0]
        if found != column and column in present:
            raise SchemaError(
                f"{source}: --columns maps {found!r} to {column}, but there is a {column} "
                "column too"
            )
        renames[found] = column
    for column in INPUT_SCHEMA:
        if column in present or column in renames.values():
            continue
        near = [n for n in names if n not in renames and column_key(n) == column_key(column)]
        if len(near) > 1:
            raise SchemaError(
                f"{source}: columns {', '.join(map(repr, near))} all read as {column}; "
                f"say which with --columns {column}=HEADER"
            )
        if near:
            renames[near[0]] = column
    return {k: v for k, v in renames.items() if k != v}


def conform(frame: pl.DataFrame, *, source: str, settings: Settings | None = None) -> pl.DataFrame:
    """Name listing columns (:func:`input_renames`), cast them to their dtypes, keep extra
    columns untouched.

    Values that cannot be used (a list where a title belongs, a boolean or a date where a
    price belongs, bytes that are not UTF-8) become null and the row gets a parse error
    naming the field. A price written as text is read by :func:`pipelines.prices.parse_price`
    (thousands separators, decimal commas, currency marks); the price as written is kept in
    ``price_raw`` and the currency mark in ``__price_sign``. An ``image`` column of bytes stays
    bytes (the images themselves). Columns the scoring chain computes
    (:func:`computed_columns`) are dropped: scoring an output again replaces its scores.
    """
    settings = settings or Settings()
    renames = input_renames(frame.columns, settings.columns, source=source)
    if renames:
        frame = frame.rename(renames)
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"{source}: missing required column(s) {', '.join(missing)}; "
            f"found {_shown(frame.columns)}"
        )
    # scores of an earlier run (an output file scored again) are replaced, not mixed in
    frame = frame.drop([c for c in frame.columns if c in computed_columns()])
    columns: dict[str, pl.Series] = {}
    problems: list[pl.Expr] = []
    for name, dtype in INPUT_SCHEMA.items():
        if name not in frame.columns:
            continue
        values = frame.get_column(name)
        if name == "image" and values.dtype == pl.Binary():
            continue
        if name == "price" and (
            values.dtype == pl.String() or isinstance(values.dtype, pl.Categorical | pl.Enum)
        ):
            continue  # read after the currency, which an ambiguous price may depend on
        converted, bad, why = _converted(values, dtype)
        if name == "price":
            # the price as written; the type when it is no number
            if bad is None:
                raw = values.cast(pl.String)
            else:
                raw = pl.select(
                    pl.when(values.is_not_null()).then(pl.lit(f"({values.dtype})"))
                ).to_series()
            columns[PRICE_RAW] = raw.alias(PRICE_RAW)
        columns[name] = converted.alias(name)
        if bad is not None and bad.any():
            problems.append(pl.when(bad).then(pl.lit(why)))
    sign = pl.repeat(None, frame.height, dtype=pl.String, eager=True)
    if "price" in frame.columns and "price" not in columns:
        text = frame.get_column("price").cast(pl.String)
        value, sign = parsed_prices(text, columns.get("currency"), settings.price_locale)
        columns[PRICE_RAW] = text.alias(PRICE_RAW)
        columns["price"] = value.alias("price")
    columns[PRICE_SIGN] = sign.alias(PRICE_SIGN)
    frame = frame.with_columns(columns.values())
    if PARSE_ERROR not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.String()).alias(PARSE_ERROR))
    if problems:
        merged = pl.concat_str([pl.col(PARSE_ERROR), *problems], separator="; ", ignore_nulls=True)
        frame = frame.with_columns(pl.when(merged != "").then(merged).alias(PARSE_ERROR))
    # last, whichever reader made the frame: pieces of one file read by different readers
    # have their columns in one order
    return frame.select(pl.exclude(PARSE_ERROR), PARSE_ERROR)


def _opt(frame_cols: set[str], col: str) -> pl.Expr:
    return pl.col(col) if col in frame_cols else pl.lit(None, dtype=pl.String())


def _currency(columns: set[str]) -> pl.Expr:
    return _opt(columns, "currency").str.strip_chars().str.to_uppercase()


def _sign_columns(signs: pl.Series) -> list[pl.Series]:
    """The currencies each price's mark may stand for and the one it means by default."""
    table = sign_table(signs.unique().to_list())
    keys = list(table)
    return [
        signs.replace_strict(
            keys, [c for c, _ in table.values()], default=None, return_dtype=pl.String
        ).alias(SIGN_CURRENCIES),
        signs.replace_strict(
            keys, [d for _, d in table.values()], default=None, return_dtype=pl.String
        ).alias(SIGN_DEFAULT),
    ]


def validated_listings(
    lf: pl.LazyFrame, settings: Settings, *, seen_ids: pl.Series | None = None
) -> pl.LazyFrame:
    """Add ``status`` and ``error`` (every broken rule, ``; ``-separated), set ``currency``
    (upper case; else the one the price's mark means; else USD) and ``condition`` (what the
    written condition is priced as: :mod:`pipelines.conditions`), and a note for a condition
    that was not recognised (``__validation_note``)."""
    frame = lf.collect()
    schema = frame.schema
    columns = set(schema.names())
    # all-null columns (e.g. from a frame built in Python) carry no dtype yet
    frame = frame.with_columns(
        pl.col(c).cast(INPUT_SCHEMA[c])
        for c in columns & INPUT_SCHEMA.keys()
        if schema[c] == pl.Null()
    )
    if PARSE_ERROR not in columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.String()).alias(PARSE_ERROR))
    if PRICE_RAW not in columns:
        frame = frame.with_columns(pl.col("price").cast(pl.String).alias(PRICE_RAW))
    signs = (
        frame.get_column(PRICE_SIGN).cast(pl.String)
        if PRICE_SIGN in columns
        else pl.repeat(None, frame.height, dtype=pl.String, eager=True)
    )
    written = (
        frame.get_column("condition").cast(pl.String)
        if "condition" in columns
        else pl.repeat(None, frame.height, dtype=pl.String, eager=True)
    )
    condition, note = canonical_conditions(
        written, settings.conditions, settings.condition_synonyms
    )
    frame = frame.with_columns(
        _currency(columns).alias(CURRENCY),
        *_sign_columns(signs),
        condition.alias("__condition"),
        note.alias(VALIDATION_NOTE),
    )
    rules = batch_rules(batch_fields(columns | {PRICE_RAW}, settings, seen_ids))
    oks = {name: f"__ok_{name}" for name in rules}
    checked = frame.with_columns(ok.fill_null(False).alias(oks[n]) for n, (ok, _) in rules.items())
    # messages are formatted only for the rows that break a rule (usually none)
    broken = checked.select(pl.arg_where(~pl.all_horizontal(list(oks.values())))).to_series()
    messages = [pl.when(~pl.col(oks[n])).then(msg) for n, (_, msg) in rules.items()]
    error = pl.concat_str(messages, separator="; ", ignore_nulls=True)
    errors = checked[broken].select(pl.when(error != "").then(error)).to_series()
    currency = pl.col(CURRENCY)
    return (
        checked.with_columns(
            pl.repeat(None, checked.height, dtype=pl.String, eager=True)
            .scatter(broken, errors)
            .alias("error")
        )
        .with_columns(
            pl.when(pl.col("error").is_null())
            .then(pl.lit("ok"))
            .otherwise(pl.lit("quarantined"))
            .alias("status"),
            pl.when(currency.is_not_null() & (currency != ""))
            .then(currency)
            .otherwise(pl.coalesce(pl.col(SIGN_DEFAULT), pl.lit("USD")))
            .alias("currency"),
            pl.col("__condition").alias("condition"),
        )
        .drop(CURRENCY, SIGN_CURRENCIES, SIGN_DEFAULT, "__condition", *oks.values())
        .lazy()
    )
