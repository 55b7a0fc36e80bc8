"""The CSV reader: encodings and separators sniffed, byte-order marks, blank lines and broken
records handled, the file read in blocks with its header (a row that cannot be parsed is kept
with its error, never dropped).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from filters.core.csvtext import csv_never_closed
from pipelines.config import Settings
from pipelines.errors import SchemaError
from pipelines.io.base import PARSE_ERROR, user_columns

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
    return user_columns(frame).with_columns(pl.Series(PARSE_ERROR, errors, dtype=pl.String))


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
    return user_columns(frame.rename(dict(zip(frame.columns, _header_names(values), strict=True))))


_LEADING_BLANK_LINES = re.compile(rb"(?:[ \t]*(?:\r\n|\r|\n))+")


def csv_frames(path: Path, settings: Settings | None = None) -> Iterator[pl.DataFrame]:
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


def read_csv(path: Path, settings: Settings | None = None) -> pl.DataFrame:
    frames = list(csv_frames(path, settings))
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")
