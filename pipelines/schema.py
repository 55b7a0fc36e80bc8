"""Reading listings and splitting them into valid rows and quarantined rows.

Every input row comes out again: rows that break a rule get ``status = "quarantined"`` and an
``error`` naming every broken rule. Rules are named boolean expressions (true = row is fine).
"""

from __future__ import annotations

import collections
import csv
import functools
import glob
import io
import json
import os
import re
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.config import Settings
from pipelines.errors import SchemaError

ROW = "__row"
PARSE_ERROR = "__parse_error"
PRICE_RAW = "__price_raw"
SEEN_EARLIER = "__seen_earlier"
#: prefix of fakestop's own columns; input columns named so are dropped when a file is read
RESERVED = "__"
_T = TypeVar("_T")

REQUIRED_COLUMNS = ("listing_id", "title", "price")
#: the row rules, in the order an ``error`` lists them (see :func:`row_rules`)
RULE_NAMES = (
    "row_parsed",
    "id_present",
    "id_unique",
    "title_present",
    "price_positive",
    "currency_known",
    "condition_known",
)
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


#: the fallback reader keeps long fields (a 1 MB title) instead of failing at csv's 128 KiB limit
csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
_NEWLINE = re.compile(r"\r\n|\r|\n")


def _unique_names(names: list[str]) -> list[str]:
    """Header names made unique the way polars does (``price``, ``price_duplicated_0``)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        if name in seen:
            out.append(f"{name}_duplicated_{seen[name]}")
            seen[name] += 1
        else:
            out.append(name)
            seen[name] = 0
    return out


def csv_never_closed(tail: str) -> bool:
    """Whether the CSV text ``tail`` (one record to the end of the file) opens a quoted field
    that is never closed."""
    try:
        for _ in csv.reader(io.StringIO(tail, newline=""), strict=True):
            pass
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def _csv_records(text: str) -> list[tuple[int, list[str] | None, str | None]]:
    """``(line, fields, problem)`` per CSV record, header included.

    A quoted field that is never closed would swallow every line after it into one record:
    that record is cut back to its own line (and quarantined) and reading resumes on the next
    line, so the records after it are kept.
    """
    starts = [0] + [m.end() for m in _NEWLINE.finditer(text)]
    records: list[tuple[int, list[str] | None, str | None]] = []
    first = 1  # the physical line the text being read starts on
    while first <= len(starts):
        reader = csv.reader(io.StringIO(text[starts[first - 1] :], newline=""))
        found: list[tuple[int, list[str] | None, str | None]] = []
        while True:
            line = first + reader.line_num
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                found.append((line, None, f"malformed CSV ({exc})"))
                continue
            if values:
                found.append((line, values, None))
        last = found[-1][0] if found else 0
        if not found or found[-1][1] is None or not csv_never_closed(text[starts[last - 1] :]):
            return records + found
        end = starts[last] if last < len(starts) else len(text)
        own = next(csv.reader(io.StringIO(text[starts[last - 1] : end].rstrip("\r\n"))), [])
        records += found[:-1]
        records.append((last, own, "a quoted field is never closed"))
        first = last + 1
    return records


def _header_names(values: list[str]) -> list[str]:
    """Column names from a CSV header record, the same whichever reader read the file: bad
    bytes replaced, byte-order mark and surrounding blanks removed, repeats numbered."""
    return _unique_names(
        [
            h.encode("utf-8", errors="surrogateescape")
            .decode("utf-8", errors="replace")
            .lstrip("\ufeff")
            .strip()
            for h in values
        ]
    )


def _read_csv_fallback(path: Path, data: bytes, line_offset: int = 0) -> pl.DataFrame:
    """Slow, forgiving CSV reader used when the fast reader refuses the file or may misread it.

    Records with the wrong number of fields, undecodable bytes or a quoted field that is never
    closed are kept as rows that carry a parse error, so they are quarantined instead of lost.
    ``line_offset``: added to the line numbers of ``data`` to name lines of the file.
    """
    text = data.decode("utf-8", errors="surrogateescape")
    records = [(line + line_offset, v, p) for line, v, p in _csv_records(text)]
    if not records:
        return pl.DataFrame()
    _, header_values, problem = records[0]
    if header_values is None or problem is not None:
        raise SchemaError(f"{path} line 1: unreadable header ({problem})")
    header = _header_names(header_values)
    width = len(header)
    rows: list[list[str | None]] = []
    errors: list[str | None] = []
    for line, values, problem in records[1:]:
        if values is None:
            rows.append([None] * width)
            errors.append(f"line {line}: {problem}")
            continue
        problems = [f"line {line}: {problem}"] if problem else []
        # short rows are padded with nulls as the fast reader does; extra fields are an error
        if len(values) > width:
            problems.append(f"line {line}: expected {width} fields, got {len(values)}")
        fixed: list[str | None] = []
        bad_bytes = False
        for v in values[:width]:
            clean = v.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")
            bad_bytes |= clean != v
            # an empty field is missing, as the fast reader has it
            fixed.append(clean or None)
        if bad_bytes:
            problems.append(f"line {line}: invalid UTF-8 bytes")
        fixed += [None] * (width - len(fixed))
        rows.append(fixed)
        errors.append("; ".join(problems) or None)
    frame = pl.DataFrame(rows, schema=dict.fromkeys(header, pl.String), orient="row")
    return _user_columns(frame).with_columns(pl.Series(PARSE_ERROR, errors, dtype=pl.String))


#: CSV is read in pieces of about this many bytes, each cut where a record ends
CSV_BLOCK_BYTES = 32 << 20
_NEWLINE_BYTES = re.compile(rb"\r\n|\r|\n")


def _lines_in(data: bytes) -> int:
    return len(_NEWLINE_BYTES.findall(data))


def _last_record_end(buf: bytes) -> int | None:
    """Just after the last newline of ``buf`` that is outside quotes (``buf`` starts at a
    record), or None. Doubled quotes inside a field keep the count even, as RFC 4180 has it."""
    quotes, pos = buf.count(b'"'), len(buf)
    while (nl := buf.rfind(b"\n", 0, pos)) >= 0:
        quotes -= buf.count(b'"', nl + 1, pos)
        if quotes % 2 == 0:
            return nl + 1
        pos = nl
    return None


def _first_record_end(buf: bytes) -> int:
    """Just after the first newline of ``buf`` outside quotes, else the end of ``buf``."""
    quotes, pos = 0, 0
    while (nl := buf.find(b"\n", pos)) >= 0:
        quotes += buf.count(b'"', pos, nl)
        if quotes % 2 == 0:
            return nl + 1
        pos = nl + 1
    return len(buf)


def _csv_pieces(path: Path, block: int) -> Iterator[tuple[bytes, int]]:
    """The file in pieces of about ``block`` bytes, each ending where a record ends, with the
    line each starts on. A quoted field that never closes would make one piece of the rest of
    the file: once four blocks are held the piece is cut at its last newline anyway (at most
    five blocks; the forgiving reader cuts that record back to its own line, as it does for a
    whole file)."""
    line, pending = 1, b""
    with open(path, "rb") as fh:
        while data := fh.read(block):
            buf = pending + data
            cut = _last_record_end(buf)
            if cut is None and len(buf) >= 4 * block:
                cut = buf.rfind(b"\n") + 1 or None
            if cut is None:
                pending = buf
                continue
            yield buf[:cut], line
            line += _lines_in(buf[:cut])
            pending = buf[cut:]
    if pending:
        yield pending, line


def _parse_csv(path: Path, data: bytes, line_offset: int) -> pl.DataFrame:
    """One piece of a CSV file (header included) as text columns."""
    if data.count(b'"') % 2:
        # an odd number of quotes: a quoted field may never close and swallow the records
        # after it, which the fast reader would accept silently
        return _read_csv_fallback(path, data, line_offset)
    try:
        frame = pl.read_csv(data, infer_schema=False, encoding="utf8-lossy")
    except pl.exceptions.NoDataError:
        return pl.DataFrame()
    except (pl.exceptions.ComputeError, pl.exceptions.ShapeError):
        return _read_csv_fallback(path, data, line_offset)
    # the lossy decoder turns bad bytes into U+FFFD; such rows are re-read by the forgiving path
    has_bad = pl.any_horizontal(pl.col(pl.String).str.contains("\ufffd", literal=True))
    if frame.height and frame.select(has_bad.any()).item():
        return _read_csv_fallback(path, data, line_offset)
    # columns named as the forgiving reader names them, so that the pieces of a file agree
    header = data[: _first_record_end(data)].decode("utf-8", errors="surrogateescape")
    values = next(csv.reader(io.StringIO(header, newline="")), [])
    if len(values) != frame.width:
        return _read_csv_fallback(path, data, line_offset)
    return _user_columns(frame.rename(dict(zip(frame.columns, _header_names(values), strict=True))))


def _csv_frames(path: Path) -> Iterator[pl.DataFrame]:
    """A CSV file as frames of whole records, read a piece at a time (memory is bounded by
    :data:`CSV_BLOCK_BYTES`, not the file). Every piece is parsed with the file's header, so
    all name their columns alike (the fast reader's frames lack only the parse-error column)."""
    header: bytes | None = None
    header_lines = 0
    for piece, line in _csv_pieces(path, CSV_BLOCK_BYTES):
        if header is None:
            end = _first_record_end(piece)
            header, piece = piece[:end], piece[end:]
            header_lines = _lines_in(header)
            line += header_lines
        # the piece starts on file line ``line``, and on line header_lines + 1 of what is parsed
        yield _parse_csv(path, header + piece, line - 1 - header_lines)
    if header is None:
        yield pl.DataFrame()


def _read_csv(path: Path) -> pl.DataFrame:
    frames = list(_csv_frames(path))
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")


def _json_text(value: object) -> str:
    """A JSON value as text; lone surrogates (``"\\ud800"``) become U+FFFD."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text.encode("utf-8", errors="replace").decode("utf-8")


def _ndjson_fallback(data: bytes, first_line: int = 1) -> pl.DataFrame:
    """Lines of NDJSON one at a time, every value as text: a line that is not a JSON object
    becomes a row with only its parse error (``line N: ...``, counted from ``first_line``)."""
    records: list[dict[str, object]] = []
    for lineno, raw in enumerate(data.splitlines(), start=first_line):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError) as exc:
            records.append({PARSE_ERROR: f"line {lineno}: invalid JSON ({exc})"})
            continue
        except RecursionError:
            records.append({PARSE_ERROR: f"line {lineno}: invalid JSON (nested too deeply)"})
            continue
        row: dict[str, object] = {}
        try:
            for k, v in obj.items():
                if not k.startswith(RESERVED):
                    row[_json_text(k)] = None if v is None else _json_text(v)
        except RecursionError:
            row = {PARSE_ERROR: f"line {lineno}: invalid JSON (nested too deeply)"}
        records.append(row)
    columns = list(dict.fromkeys(k for r in records for k in r))
    return pl.DataFrame(
        {c: [r.get(c) for r in records] for c in columns},
        schema=dict.fromkeys(columns, pl.String),
    )


def _fast_ndjson(data: bytes) -> pl.DataFrame | None:
    """Whole NDJSON lines read by polars (types inferred from every line), or None if some
    line is not a JSON object it reads (:func:`_ndjson_fallback` then reads them)."""
    try:
        return _user_columns(pl.read_ndjson(io.BytesIO(data), infer_schema_length=None))
    except (pl.exceptions.PolarsError, ValueError):
        return None


def _no_listings() -> pl.DataFrame:
    # no lines, no listings: an empty NDJSON file is a valid empty input
    return pl.DataFrame(schema={c: INPUT_SCHEMA[c] for c in REQUIRED_COLUMNS})


def _read_ndjson_bytes(data: bytes) -> pl.DataFrame:
    """Lines of NDJSON as :func:`_read_ndjson` reads a whole file."""
    frame = _fast_ndjson(data)
    if frame is None:
        frame = _ndjson_fallback(data)
    return frame if frame.width else _no_listings()


def _read_ndjson(path: Path) -> pl.DataFrame:
    return _read_ndjson_bytes(path.read_bytes())


#: NDJSON is streamed in pieces of about this many bytes, each cut after a line (half CSV's:
#: polars' NDJSON reader holds more per piece; 3M lines peaked at 1.03 GB against 1.18 GB)
NDJSON_BLOCK_BYTES = 16 << 20


def _ndjson_pieces(path: Path, block: int) -> Iterator[bytes]:
    """The file in pieces of about ``block`` bytes, each ending after a line (a line longer
    than that makes a piece of its own)."""
    pending = b""
    with open(path, "rb") as fh:
        while data := fh.read(block):
            buf = pending + data if pending else data
            cut = buf.rfind(b"\n") + 1
            if not cut:
                pending = buf
                continue
            yield buf[:cut]
            pending = buf[cut:]
    if pending:
        yield pending


def _numbered(pieces: Iterator[bytes]) -> Iterator[tuple[bytes, int]]:
    """Each piece with the line it starts on, as the forgiving reader counts lines."""
    line = 1
    for data in pieces:
        yield data, line
        line += len(data.splitlines())


def _ndjson_schema(data: bytes) -> pl.Schema | None:
    """The columns and types of ``data`` read by polars (types inferred from every line;
    none for blank lines), or None if it cannot read them. They are read, not only inferred:
    polars may infer types it then cannot read the values as (false in an integer column)."""
    if not data.strip():
        return pl.Schema()
    try:
        return pl.read_ndjson(io.BytesIO(data), infer_schema_length=None).schema
    except (pl.exceptions.PolarsError, ValueError):
        return None


def _read_ndjson_as(data: bytes, schema: pl.Schema) -> pl.DataFrame:
    """Lines of NDJSON read with the columns and types ``schema`` gives (polars' reader)."""
    if not data.strip():
        return pl.DataFrame(schema=schema)
    return pl.read_ndjson(io.BytesIO(data), schema=schema)


def _reads_as(data: bytes, schema: pl.Schema) -> bool:
    try:
        _read_ndjson_as(data, schema)
    except (pl.exceptions.PolarsError, ValueError):
        return False
    return True


def _each_piece(path: Path, block: int, work: Callable[[tuple[int, bytes]], _T]) -> Iterator[_T]:
    """``work`` on every ``(index, piece)`` of the file, in order, a piece per core at a time
    (inferring types is most of the work of reading NDJSON, and runs on one core per piece)."""
    workers = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers, thread_name_prefix="ndjson") as pool:
        window: collections.deque[Future[_T]] = collections.deque()
        for piece in enumerate(_ndjson_pieces(path, block)):
            window.append(pool.submit(work, piece))
            if len(window) >= workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


def _ndjson_frames(path: Path) -> Iterator[pl.DataFrame]:
    """An NDJSON file a piece of whole lines at a time, each piece with the columns and types
    reading the file whole gives (:func:`_read_ndjson`): memory is bounded by the piece.

    A file of one piece is read once. A longer one is read twice: every piece for its
    columns, then piece by piece with their union (each column in a type that holds every
    piece's values: what inferring the types from every line of the file gives). A piece
    whose types the union widened (an integer column that is a float elsewhere) is also read
    once in between, to check that its values read as the wider types, as a whole file's
    must. If some line is not valid JSON, or the pieces' types cannot be combined or read as
    one, every piece is read by the forgiving reader instead, its values as text, as a whole
    file is."""
    block = NDJSON_BLOCK_BYTES
    pieces = _ndjson_pieces(path, block)
    head = [p for p in (next(pieces, None), next(pieces, None)) if p is not None]
    if len(head) < 2:
        yield _read_ndjson_bytes(head[0]) if head else _no_listings()
        return
    union: pl.Schema | None = None
    schemas = list(_each_piece(path, block, lambda piece: _ndjson_schema(piece[1])))
    if all(s is not None for s in schemas):
        try:
            union = pl.concat(
                [pl.DataFrame(schema=s) for s in schemas], how="diagonal_relaxed"
            ).schema
        except pl.exceptions.PolarsError:
            union = None
    if union is not None and not union.len():
        yield _no_listings()  # blank lines only
        return
    if union is not None:
        wide = union
        # a piece whose own types are the union's reads as it did; a widened one is checked
        widened = {
            i for i, s in enumerate(schemas) if s and any(wide[k] != t for k, t in s.items())
        }

        def reads(piece: tuple[int, bytes]) -> bool:
            return piece[0] not in widened or _reads_as(piece[1], wide)

        if not widened or all(_each_piece(path, block, reads)):
            for data in _ndjson_pieces(path, block):
                yield _user_columns(_read_ndjson_as(data, union))
            return
    # the forgiving reader: every value as text, the columns of every piece
    numbered = _numbered(_ndjson_pieces(path, block))
    columns = pl.concat(
        [_ndjson_fallback(data, line).clear() for data, line in numbered], how="diagonal"
    )
    for data, line in _numbered(_ndjson_pieces(path, block)):
        frame = pl.concat([columns, _ndjson_fallback(data, line)], how="diagonal")
        yield frame if frame.width else _no_listings()


def _read_parquet(path: Path) -> pl.DataFrame:
    try:
        return _user_columns(pl.read_parquet(path))
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
    """Stream a Parquet file: memory is bounded by the batch, not the file.

    Each batch is a slice of the file read by polars, which decodes only the pages the slice
    needs (a fourth of the CPU time of reading record batches with pyarrow and converting
    them). Its streaming batch iterator is not used: it reads ahead, 540 MB for a 10M-row
    input before its first batch was taken. The file is held open and read through its
    descriptor, so a file deleted or replaced during the run is still read whole.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise SchemaError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        held = Path(f"/dev/fd/{fd}")
        source = held if held.exists() else path
        try:
            rows = pq.ParquetFile(source).metadata.num_rows
        except (OSError, pa.ArrowException) as exc:
            raise SchemaError(f"{path}: not a readable Parquet file ({exc})") from None
        scan = pl.scan_parquet(source)
        for start in range(0, max(rows, 1), batch_size):
            try:
                frame = scan.slice(start, batch_size).collect()
            except (OSError, pl.exceptions.PolarsError) as exc:
                # a corrupt page, or a file that changed under the run
                raise SchemaError(
                    f"{path}: unreadable Parquet data after row {start:,} ({_first_line(exc)})"
                ) from None
            yield conform(_user_columns(frame), source=str(path))
    finally:
        os.close(fd)


def _first_line(exc: BaseException) -> str:
    """An exception's message for a one-line error (polars adds hints on further lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def iter_listing_batches(source: str | Path, batch_size: int) -> Iterator[pl.DataFrame]:
    """Batches of at most ``batch_size`` rows, with a global ``__row`` index.

    Every format is streamed: Parquet a slice at a time, CSV a piece of whole records
    (:func:`_csv_frames`), NDJSON a piece of whole lines (:func:`_ndjson_frames`). An empty
    file still yields one empty batch, so the output has a schema.
    """
    offset = 0
    files = resolve_sources(source)
    union = _union_schema(files) if len(files) > 1 else None
    for f in files:
        suffix = f.suffix.lower()
        if suffix in PARQUET_SUFFIXES:
            parts: Iterator[pl.DataFrame] = _parquet_batches(f, batch_size)
        else:
            parts = _rebatched(_conformed_pieces(f), batch_size)
        for part in parts:
            if union is not None and part.schema != union:
                part = part.select(
                    (pl.col(c).cast(t) if c in part.columns else pl.lit(None, t)).alias(c)
                    for c, t in union.items()
                )
            yield part.with_row_index(ROW, offset=offset)
            offset += part.height


def _streamed_columns(path: Path) -> pl.DataFrame:
    """No rows, the columns and types a file's batches have (:func:`iter_listing_batches`):
    Parquet from its footer; CSV and NDJSON from their first piece (every piece of a file is
    given the file's columns: a CSV file's as text, an NDJSON file's as its first pass found
    them)."""
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        try:
            schema = pl.read_parquet_schema(path)
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise SchemaError(f"{path}: not a readable Parquet file ({_first_line(exc)})") from None
        return conform(_user_columns(pl.DataFrame(schema=schema)), source=str(path))
    frames = _conformed_pieces(path)
    try:
        return next(frames).clear()
    finally:
        frames.close()


def _union_schema(files: list[Path]) -> pl.Schema:
    """The columns of files read as one input, as :func:`read_listings` combines them: every
    file's columns, each in a type that holds every file's values. The files' batches are
    given these columns, so that the output has one schema."""
    frames = [_streamed_columns(f) for f in files]
    try:
        return pl.concat(frames, how="diagonal_relaxed").schema
    except pl.exceptions.PolarsError as exc:
        raise SchemaError(
            f"{files[0].parent}: its files' columns cannot be combined ({_first_line(exc)})"
        ) from None


def _conformed_pieces(path: Path) -> Generator[pl.DataFrame]:
    """:func:`read_file` of a CSV or NDJSON file, a piece at a time."""
    pieces = _csv_frames if path.suffix.lower() in CSV_SUFFIXES else _ndjson_frames
    try:
        for frame in pieces(path):
            yield conform(frame, source=str(path))
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


def _user_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """Drop input columns in fakestop's own namespace (``__row``, ``__parse_error`` ...): a
    listings file must not collide with, or set, the runner's bookkeeping columns."""
    return frame.drop([c for c in frame.columns if c.startswith(RESERVED)])


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
    from pipelines.stages import OUTPUT_SCHEMA

    names = set(OUTPUT_SCHEMA)
    for f in REGISTRY.values():
        names |= set(f.output_schema())
    return frozenset(names)


def conform(frame: pl.DataFrame, *, source: str) -> pl.DataFrame:
    """Cast contract columns to their dtypes, keep extra columns untouched.

    Values that cannot be used (a list where a title belongs, a boolean or a date where a
    price belongs, bytes that are not UTF-8) become null and the row gets a parse error
    naming the field; the raw price text is kept so that the quarantine reason can show it.
    An ``image`` column of bytes stays bytes (the images themselves). Columns the scoring
    chain computes (:func:`computed_columns`) are dropped: scoring an output again replaces
    its scores.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"{source}: missing required column(s) {', '.join(missing)}; "
            f"found {_shown(frame.columns)}"
        )
    # scores of an earlier run (an output file scored again) are replaced, not mixed in
    frame = frame.drop([c for c in frame.columns if c in computed_columns()])
    columns: list[pl.Series] = []
    problems: list[pl.Expr] = []
    for name, dtype in INPUT_SCHEMA.items():
        if name not in frame.columns:
            continue
        values = frame.get_column(name)
        if name == "image" and values.dtype == pl.Binary():
            continue
        converted, bad, why = _converted(values, dtype)
        if name == "price":
            # the price as written, for the quarantine reason; the type when it is no number
            if bad is None:
                raw = values.cast(pl.String)
            else:
                raw = pl.select(
                    pl.when(values.is_not_null()).then(pl.lit(f"({values.dtype})"))
                ).to_series()
            columns.append(raw.alias(PRICE_RAW))
        columns.append(converted.alias(name))
        if bad is not None and bad.any():
            problems.append(pl.when(bad).then(pl.lit(why)))
    frame = frame.with_columns(columns)
    if PARSE_ERROR not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.String()).alias(PARSE_ERROR))
    if problems:
        merged = pl.concat_str([pl.col(PARSE_ERROR), *problems], separator="; ", ignore_nulls=True)
        frame = frame.with_columns(pl.when(merged != "").then(merged).alias(PARSE_ERROR))
    # last, whichever reader made the frame: pieces of one file read by different readers
    # have their columns in one order
    return frame.select(pl.exclude(PARSE_ERROR), PARSE_ERROR)


# ---------------------------------------------------------------- validation


def _blank(col: str) -> pl.Expr:
    return pl.col(col).is_null() | (pl.col(col).str.strip_chars() == "")


def _opt(frame_cols: set[str], col: str) -> pl.Expr:
    return pl.col(col) if col in frame_cols else pl.lit(None, dtype=pl.String())


def _currency(columns: set[str]) -> pl.Expr:
    return _opt(columns, "currency").str.strip_chars().str.to_uppercase()


def _condition(columns: set[str]) -> pl.Expr:
    return _opt(columns, "condition").str.strip_chars().str.to_lowercase()


def row_rules(
    columns: set[str],
    settings: Settings,
    seen_ids: pl.Series | None = None,
    *,
    currency: pl.Expr | None = None,
    condition: pl.Expr | None = None,
) -> dict[str, tuple[pl.Expr, pl.Expr]]:
    """Named rules: ``name -> (passes, message)``. A rule passes when its expression is true.

    ``seen_ids`` holds ids of earlier batches of the same run, so uniqueness spans batches.
    ``currency`` / ``condition``: the columns stripped and upper / lower cased, if the caller
    has them already.
    """
    first = pl.col("listing_id").is_first_distinct()
    if SEEN_EARLIER in columns:  # set by a runner that sees earlier batches or the whole input
        first = first & ~pl.col(SEEN_EARLIER).fill_null(False)
    if seen_ids is not None and seen_ids.len():
        first = first & ~pl.col("listing_id").is_in(seen_ids.implode())
    currency = _currency(columns) if currency is None else currency
    condition = _condition(columns) if condition is None else condition
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
    cur, cond = "__currency", "__condition"
    rules = row_rules(columns, settings, seen_ids, currency=pl.col(cur), condition=pl.col(cond))
    oks = {name: f"__ok_{name}" for name in rules}
    checked = (
        lf.with_columns(_currency(columns).alias(cur), _condition(columns).alias(cond))
        .with_columns(ok.fill_null(False).alias(oks[n]) for n, (ok, _) in rules.items())
        .collect()
    )
    # messages are formatted only for the rows that break a rule (usually none)
    broken = checked.select(pl.arg_where(~pl.all_horizontal(list(oks.values())))).to_series()
    messages = [pl.when(~pl.col(oks[n])).then(msg) for n, (_, msg) in rules.items()]
    error = pl.concat_str(messages, separator="; ", ignore_nulls=True)
    errors = checked[broken].select(pl.when(error != "").then(error)).to_series()
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
            pl.when(pl.col(cur).is_null() | (pl.col(cur) == ""))
            .then(pl.lit("USD"))
            .otherwise(pl.col(cur))
            .alias("currency"),
            pl.when(pl.col(cond).is_null() | (pl.col(cond) == ""))
            .then(pl.lit("new"))
            .otherwise(pl.col(cond))
            .alias("condition"),
        )
        .drop(cur, cond, *oks.values())
        .lazy()
    )
