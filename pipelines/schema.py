"""Reading listings and splitting them into valid rows and quarantined rows.

Every input row comes out again: rows that break a rule get ``status = "quarantined"`` and an
``error`` naming every broken rule. Rules are named boolean expressions (true = row is fine).
"""

from __future__ import annotations

import codecs
import collections
import csv
import functools
import glob
import io
import json
import os
import re
from collections.abc import Callable, Generator, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from filters.core.csvtext import csv_never_closed
from pipelines.columns import INPUT_SCHEMA, OUTPUT_SCHEMA
from pipelines.conditions import canonical_conditions
from pipelines.config import Settings
from pipelines.errors import SchemaError
from pipelines.prices import parsed_prices, sign_table

ROW = "__row"
PARSE_ERROR = "__parse_error"
#: the price as written (an output column: nothing is lost when a price cannot be read)
PRICE_RAW = "price_raw"
#: the currency mark written in the price (``€``, ``$``, ``eur``), if any
PRICE_SIGN = "__price_sign"
#: a reason validation gives a row it scores anyway (an unknown condition)
VALIDATION_NOTE = "__validation_note"
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
    "currency_agrees",
)
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


@dataclass(frozen=True)
class CsvFormat:
    """How a CSV file is written: its field separator and text encoding (read as UTF-8 after
    a byte-order mark of ``skip`` bytes)."""

    separator: str = ","
    encoding: str = "utf-8"
    skip: int = 0

    @property
    def bad_bytes(self) -> str:
        """What a record whose bytes do not decode is told."""
        if self.encoding == "utf-8":
            return "invalid UTF-8 bytes"
        return f"bytes that are not valid {self.encoding}"


#: byte-order marks, longest first (a UTF-32 LE mark starts like a UTF-16 LE one)
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
#: separators tried when a file's is not given, in order of preference on a tie
SEPARATORS = (",", ";", "\t", "|")
#: bytes of a file's start read to find its encoding and separator
SNIFF_BYTES = 64 << 10


def _family(encoding: str) -> str:
    name = codecs.lookup(encoding).name
    for tail in ("-sig", "-le", "-be"):
        name = name.removesuffix(tail)
    return name


def _looks_like_utf16(head: bytes) -> bool:
    """Whether text without a byte-order mark looks like UTF-16 or UTF-32: NUL bytes make up
    a quarter or more of its start (ASCII text in them is every other or every fourth byte)."""
    sample = head[:4096]
    return len(sample) >= 8 and sample.count(0) * 4 >= len(sample)


def sniff_separator(sample: str) -> str:
    """The separator of CSV text: of :data:`SEPARATORS`, the one that splits the header into
    two or more fields and the most following records into as many (then: the most fields;
    then: the earlier in the list). ``,`` if none splits the header.

    Examples
    --------
    >>> sniff_separator("id;title;price\\n1;Gucci, bag;49,90\\n")
    ';'
    >>> sniff_separator("id,title,price\\n1,Gucci; bag,49.90\\n")
    ','
    """
    lines = sample.splitlines(keepends=True)
    if len(lines) > 1 and not sample.endswith(("\n", "\r")):
        lines = lines[:-1]  # a record cut short by the sample's end
    text = "".join(lines[:201])
    best: tuple[float, int, int] | None = None
    chosen = ","
    for rank, sep in enumerate(SEPARATORS):
        try:
            records = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=sep) if r]
        except csv.Error:
            continue
        if not records or len(records[0]) < 2:
            continue
        width = len(records[0])
        rest = records[1:]
        agree = sum(len(r) == width for r in rest) / len(rest) if rest else 1.0
        key = (agree, width, -rank)
        if best is None or key > best:
            best, chosen = key, sep
    return chosen


def csv_format(path: Path, settings: Settings | None = None) -> CsvFormat:
    """The separator and encoding of a CSV file: as configured, else a byte-order mark says
    the encoding (UTF-8 without one) and the file's start says the separator
    (:func:`sniff_separator`). A mark that contradicts the configured encoding, and text that
    looks like UTF-16 without a mark, are refused."""
    settings = settings or Settings()
    try:
        with open(path, "rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError as exc:
        raise SchemaError(f"{path}: cannot read ({exc.strerror or exc})") from None
    bom = next(((mark, enc) for mark, enc in _BOMS if head.startswith(mark)), None)
    given = settings.encoding
    if bom is not None:
        mark, encoding = bom
        if given is not None and _family(given) != _family(encoding):
            raise SchemaError(
                f"{path}: starts with a {encoding.upper()} byte-order mark, but its encoding "
                f"is given as {given}"
            )
        skip = len(mark)
    elif given is not None:
        encoding, skip = given, 0
    elif _looks_like_utf16(head):
        raise SchemaError(
            f"{path}: looks like UTF-16 or UTF-32 text without a byte-order mark; give its "
            "encoding (--encoding utf-16-le, utf-16-be ...)"
        )
    else:
        encoding, skip = "utf-8", 0
    encoding = codecs.lookup(encoding).name
    if encoding == "utf-8-sig":
        encoding = "utf-8"
    separator = settings.csv_separator
    if separator is None:
        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        separator = sniff_separator(decoder.decode(head[skip:]))
    return CsvFormat(separator=separator, encoding=encoding, skip=skip)


def _undecodable(exc: UnicodeError) -> tuple[str, int]:
    """Decoding error handler: each byte that does not decode becomes a lone surrogate, which
    encodes back as a byte that is not valid UTF-8, so that the record is quarantined."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start : exc.end]
    return "".join(chr(0xDC80 | (b & 0x7F)) for b in bad), exc.end


codecs.register_error("fakestop-undecodable", _undecodable)


def _utf8_blocks(path: Path, fmt: CsvFormat, block: int) -> Iterator[bytes]:
    """The file's bytes after its byte-order mark, as UTF-8 (transcoded from its encoding;
    bytes that do not decode stay invalid UTF-8). Newlines are kept, so lines count alike."""
    with open(path, "rb") as fh:
        fh.seek(fmt.skip)
        if fmt.encoding == "utf-8":
            while data := fh.read(block):
                yield data
            return
        decoder = codecs.getincrementaldecoder(fmt.encoding)(errors="fakestop-undecodable")
        while data := fh.read(block):
            if text := decoder.decode(data):
                yield text.encode("utf-8", errors="surrogateescape")
        if text := decoder.decode(b"", final=True):
            yield text.encode("utf-8", errors="surrogateescape")


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


def _blank_record(values: list[str]) -> bool:
    """A blank line, or one of spaces only: skipped, as NDJSON's blank lines are."""
    return not values or (len(values) == 1 and not values[0].strip())


def _csv_records(text: str, separator: str = ",") -> list[tuple[int, list[str] | None, str | None]]:
    """``(line, fields, problem)`` per CSV record, header included (blank lines skipped).

    A quoted field that is never closed would swallow every line after it into one record:
    that record is cut back to its own line (and quarantined) and reading resumes on the next
    line, so the records after it are kept.
    """
    starts = [0] + [m.end() for m in _NEWLINE.finditer(text)]
    records: list[tuple[int, list[str] | None, str | None]] = []
    first = 1  # the physical line the text being read starts on
    while first <= len(starts):
        reader = csv.reader(io.StringIO(text[starts[first - 1] :], newline=""), delimiter=separator)
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
            if not _blank_record(values):
                found.append((line, values, None))
        last = found[-1][0] if found else 0
        if (
            not found
            or found[-1][1] is None
            or not csv_never_closed(text[starts[last - 1] :], separator)
        ):
            return records + found
        end = starts[last] if last < len(starts) else len(text)
        own = next(
            csv.reader(
                io.StringIO(text[starts[last - 1] : end].rstrip("\r\n")), delimiter=separator
            ),
            [],
        )
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


def _read_csv_fallback(
    path: Path, data: bytes, line_offset: int = 0, fmt: CsvFormat = CsvFormat()
) -> pl.DataFrame:
    """Slow, forgiving CSV reader used when the fast reader refuses the file or may misread it.

    Records with the wrong number of fields, undecodable bytes or a quoted field that is never
    closed are kept as rows that carry a parse error, so they are quarantined instead of lost.
    ``line_offset``: added to the line numbers of ``data`` to name lines of the file.
    """
    text = data.decode("utf-8", errors="surrogateescape")
    records = [(line + line_offset, v, p) for line, v, p in _csv_records(text, fmt.separator)]
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
            problems.append(f"line {line}: {fmt.bad_bytes}")
        fixed += [None] * (width - len(fixed))
        rows.append(fixed)
        errors.append("; ".join(problems) or None)
    frame = pl.DataFrame(rows, schema=dict.fromkeys(header, pl.String), orient="row")
    return _user_columns(frame).with_columns(pl.Series(PARSE_ERROR, errors, dtype=pl.String))


#: CSV is read in pieces of about this many bytes, each cut where a record ends
CSV_BLOCK_BYTES = 32 << 20
_NEWLINE_BYTES = re.compile(rb"\r\n|\r|\n")
#: a newline followed by a line that is empty or holds spaces and tabs only (found at the
#: speed of a plain search: a file without blank lines costs one pass over its bytes)
_BEFORE_BLANK_LINE = re.compile(rb"\n(?=[ \t]*(?:\r\n|\n|\r(?!\n)))")
_BLANK_LINE = re.compile(rb"[ \t]*(?:\r\n|\n|\r(?!\n))")


def _lines_in(data: bytes) -> int:
    return len(_NEWLINE_BYTES.findall(data))


def _without_blank_lines(data: bytes) -> bytes:
    """``data`` without its blank lines, except inside a quoted field (where a blank line is
    part of the value): the fast reader would read each as a row of nulls. ``data`` starts
    with its header, which is not blank."""
    last = data.rfind(b"\n") + 1
    tail_blank = last < len(data) and not data[last:].strip(b" \t")
    first = _BEFORE_BLANK_LINE.search(data)
    if first is None and not tail_blank:
        return data
    kept, pos, counted, quotes = [], 0, 0, 0
    for m in _BEFORE_BLANK_LINE.finditer(data, first.start() if first else len(data)):
        start = m.end()
        end = _BLANK_LINE.match(data, start)
        if end is None:  # pragma: no cover - the lookahead found one
            continue
        quotes += data.count(b'"', counted, start)
        counted = start
        if quotes % 2 == 0 and start >= pos:
            kept.append(data[pos:start])
            pos = end.end()
    if tail_blank and pos <= last and (quotes + data.count(b'"', counted, last)) % 2 == 0:
        # a last line of spaces without a newline
        kept.append(data[pos:last])
        pos = len(data)
    kept.append(data[pos:])
    return b"".join(kept)


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


def _csv_pieces(
    path: Path, block: int, fmt: CsvFormat = CsvFormat()
) -> Iterator[tuple[bytes, int]]:
    """The file (as UTF-8) in pieces of about ``block`` bytes, each ending where a record
    ends, with the line each starts on. A quoted field that never closes would make one piece
    of the rest of the file: once four blocks are held the piece is cut at its last newline
    anyway (at most five blocks; the forgiving reader cuts that record back to its own line,
    as it does for a whole file)."""
    line, pending = 1, b""
    for data in _utf8_blocks(path, fmt, block):
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


def _parse_csv(path: Path, data: bytes, line_offset: int, fmt: CsvFormat) -> pl.DataFrame:
    """One piece of a CSV file (header included) as text columns."""
    if data.count(b'"') % 2:
        # an odd number of quotes: a quoted field may never close and swallow the records
        # after it, which the fast reader would accept silently
        return _read_csv_fallback(path, data, line_offset, fmt)
    try:
        frame = pl.read_csv(
            _without_blank_lines(data),
            infer_schema=False,
            encoding="utf8-lossy",
            separator=fmt.separator,
        )
    except pl.exceptions.NoDataError:
        return pl.DataFrame()
    except (pl.exceptions.ComputeError, pl.exceptions.ShapeError):
        return _read_csv_fallback(path, data, line_offset, fmt)
    # the lossy decoder turns bad bytes into U+FFFD; such rows are re-read by the forgiving path
    has_bad = pl.any_horizontal(pl.col(pl.String).str.contains("\ufffd", literal=True))
    if frame.height and frame.select(has_bad.any()).item():
        return _read_csv_fallback(path, data, line_offset, fmt)
    # columns named as the forgiving reader names them, so that the pieces of a file agree
    header = data[: _first_record_end(data)].decode("utf-8", errors="surrogateescape")
    values = next(csv.reader(io.StringIO(header, newline=""), delimiter=fmt.separator), [])
    if len(values) != frame.width:
        return _read_csv_fallback(path, data, line_offset, fmt)
    return _user_columns(frame.rename(dict(zip(frame.columns, _header_names(values), strict=True))))


_LEADING_BLANK_LINES = re.compile(rb"(?:[ \t]*(?:\r\n|\r|\n))+")


def _csv_frames(path: Path, settings: Settings | None = None) -> Iterator[pl.DataFrame]:
    """A CSV file as frames of whole records, read a piece at a time (memory is bounded by
    :data:`CSV_BLOCK_BYTES`, not the file). Every piece is parsed with the file's header, so
    all name their columns alike (the fast reader's frames lack only the parse-error column)."""
    fmt = csv_format(path, settings)
    header: bytes | None = None
    header_lines = 0
    for piece, line in _csv_pieces(path, CSV_BLOCK_BYTES, fmt):
        if header is None:
            # blank lines before the header are skipped, as blank lines anywhere are
            if blank := _LEADING_BLANK_LINES.match(piece):
                line += _lines_in(blank.group())
                piece = piece[blank.end() :]
            end = _first_record_end(piece)
            header, piece = piece[:end], piece[end:]
            header_lines = _lines_in(header)
            line += header_lines
        # the piece starts on file line ``line``, and on line header_lines + 1 of what is parsed
        yield _parse_csv(path, header + piece, line - 1 - header_lines, fmt)
    if header is None:
        yield pl.DataFrame()


def _read_csv(path: Path, settings: Settings | None = None) -> pl.DataFrame:
    frames = list(_csv_frames(path, settings))
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


def read_file(path: Path, settings: Settings | None = None) -> pl.DataFrame:
    """Read one listings file into a frame with contract dtypes (see :func:`conform`)."""
    suffix = path.suffix.lower()
    try:
        if suffix in CSV_SUFFIXES:
            frame = _read_csv(path, settings)
        elif suffix in NDJSON_SUFFIXES:
            frame = _read_ndjson(path)
        else:
            frame = _read_parquet(path)
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


def _parquet_batches(
    path: Path, batch_size: int, settings: Settings | None = None
) -> Iterator[pl.DataFrame]:
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
            yield conform(_user_columns(frame), source=str(path), settings=settings)
    finally:
        os.close(fd)


def _first_line(exc: BaseException) -> str:
    """An exception's message for a one-line error (polars adds hints on further lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def iter_listing_batches(
    source: str | Path, batch_size: int, settings: Settings | None = None
) -> Iterator[pl.DataFrame]:
    """Batches of at most ``batch_size`` rows, with a global ``__row`` index.

    Every format is streamed: Parquet a slice at a time, CSV a piece of whole records
    (:func:`_csv_frames`), NDJSON a piece of whole lines (:func:`_ndjson_frames`). An empty
    file still yields one empty batch, so the output has a schema.
    """
    offset = 0
    files = resolve_sources(source)
    union = _union_schema(files, settings) if len(files) > 1 else None
    for f in files:
        suffix = f.suffix.lower()
        if suffix in PARQUET_SUFFIXES:
            parts: Iterator[pl.DataFrame] = _parquet_batches(f, batch_size, settings)
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
            raise SchemaError(f"{path}: not a readable Parquet file ({_first_line(exc)})") from None
        return conform(
            _user_columns(pl.DataFrame(schema=schema)), source=str(path), settings=settings
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
            f"{files[0].parent}: its files' columns cannot be combined ({_first_line(exc)})"
        ) from None


def _conformed_pieces(path: Path, settings: Settings | None = None) -> Generator[pl.DataFrame]:
    """:func:`read_file` of a CSV or NDJSON file, a piece at a time."""
    if path.suffix.lower() in CSV_SUFFIXES:
        pieces = _csv_frames(path, settings)
    else:
        pieces = _ndjson_frames(path)
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


# ---------------------------------------------------------------- validation


def _blank(col: str) -> pl.Expr:
    return pl.col(col).is_null() | (pl.col(col).str.strip_chars() == "")


def _opt(frame_cols: set[str], col: str) -> pl.Expr:
    return pl.col(col) if col in frame_cols else pl.lit(None, dtype=pl.String())


def _currency(columns: set[str]) -> pl.Expr:
    return _opt(columns, "currency").str.strip_chars().str.to_uppercase()


#: working columns of validation
_CURRENCY, _SIGN_CURRENCIES, _SIGN_DEFAULT = "__currency", "__sign_currencies", "__sign_default"


def row_rules(
    columns: set[str],
    settings: Settings,
    seen_ids: pl.Series | None = None,
) -> dict[str, tuple[pl.Expr, pl.Expr]]:
    """Named rules: ``name -> (passes, message)``. A rule passes when its expression is true.

    ``seen_ids`` holds ids of earlier batches of the same run, so uniqueness spans batches.
    The frame holds the working columns :func:`validated_listings` adds: the currency column
    stripped and upper cased, and the currencies the price's currency mark may stand for
    (``/``-joined) and the one it means without a currency column.
    """
    first = pl.col("listing_id").is_first_distinct()
    if SEEN_EARLIER in columns:  # set by a runner that sees earlier batches or the whole input
        first = first & ~pl.col(SEEN_EARLIER).fill_null(False)
    if seen_ids is not None and seen_ids.len():
        first = first & ~pl.col("listing_id").is_in(seen_ids.implode())
    currency = pl.col(_CURRENCY)
    given = currency.is_not_null() & (currency != "")
    marks = pl.col(_SIGN_CURRENCIES)
    effective = pl.when(given).then(currency).otherwise(pl.col(_SIGN_DEFAULT))
    price = pl.col("price")
    known_currencies = sorted(settings.rates)
    shown_marks = marks.str.replace_all("/", ", ", literal=True)
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
            effective.is_null() | effective.is_in(known_currencies),
            pl.format(
                "currency_known: currency {} has no configured rate (known: {})",
                effective,
                pl.lit(", ".join(known_currencies)),
            ),
        ),
        "currency_agrees": (
            marks.is_null()
            | (
                given
                & pl.concat_str(pl.lit("/"), marks, pl.lit("/")).str.contains(
                    pl.concat_str(pl.lit("/"), currency, pl.lit("/")), literal=True
                )
            )
            | (~given & pl.col(_SIGN_DEFAULT).is_not_null()),
            pl.when(given)
            .then(
                pl.format(
                    "currency_agrees: price {} is in {}, but currency is {}",
                    pl.col(PRICE_RAW),
                    shown_marks,
                    currency,
                )
            )
            .otherwise(
                pl.format(
                    "currency_agrees: price {} may be in {}; the currency column must say which",
                    pl.col(PRICE_RAW),
                    shown_marks,
                )
            ),
        ),
    }


def _sign_columns(signs: pl.Series) -> list[pl.Series]:
    """The currencies each price's mark may stand for and the one it means by default."""
    table = sign_table(signs.unique().to_list())
    keys = list(table)
    return [
        signs.replace_strict(
            keys, [c for c, _ in table.values()], default=None, return_dtype=pl.String
        ).alias(_SIGN_CURRENCIES),
        signs.replace_strict(
            keys, [d for _, d in table.values()], default=None, return_dtype=pl.String
        ).alias(_SIGN_DEFAULT),
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
        _currency(columns).alias(_CURRENCY),
        *_sign_columns(signs),
        condition.alias("__condition"),
        note.alias(VALIDATION_NOTE),
    )
    rules = row_rules(columns | {PRICE_RAW}, settings, seen_ids)
    oks = {name: f"__ok_{name}" for name in rules}
    checked = frame.with_columns(ok.fill_null(False).alias(oks[n]) for n, (ok, _) in rules.items())
    # messages are formatted only for the rows that break a rule (usually none)
    broken = checked.select(pl.arg_where(~pl.all_horizontal(list(oks.values())))).to_series()
    messages = [pl.when(~pl.col(oks[n])).then(msg) for n, (_, msg) in rules.items()]
    error = pl.concat_str(messages, separator="; ", ignore_nulls=True)
    errors = checked[broken].select(pl.when(error != "").then(error)).to_series()
    currency = pl.col(_CURRENCY)
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
            .otherwise(pl.coalesce(pl.col(_SIGN_DEFAULT), pl.lit("USD")))
            .alias("currency"),
            pl.col("__condition").alias("condition"),
        )
        .drop(_CURRENCY, _SIGN_CURRENCIES, _SIGN_DEFAULT, "__condition", *oks.values())
        .lazy()
    )
