"""The NDJSON reader: one JSON object a line, read in blocks; a line that cannot be parsed is
kept with its error, never dropped.
"""

from __future__ import annotations

import collections
import io
import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import polars as pl

from pipelines.columns import INPUT_SCHEMA
from pipelines.io.base import PARSE_ERROR, REQUIRED_COLUMNS, RESERVED, user_columns

_T = TypeVar("_T")


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
        return user_columns(pl.read_ndjson(io.BytesIO(data), infer_schema_length=None))
    except (pl.exceptions.PolarsError, ValueError):
        return None


def _no_listings() -> pl.DataFrame:
    # no lines, no listings: an empty NDJSON file is a valid empty input
    return pl.DataFrame(schema={c: INPUT_SCHEMA[c] for c in REQUIRED_COLUMNS})


def _read_ndjson_bytes(data: bytes) -> pl.DataFrame:
    """Lines of NDJSON as :func:`read_ndjson` reads a whole file."""
    frame = _fast_ndjson(data)
    if frame is None:
        frame = _ndjson_fallback(data)
    return frame if frame.width else _no_listings()


def read_ndjson(path: Path) -> pl.DataFrame:
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


def ndjson_frames(path: Path) -> Iterator[pl.DataFrame]:
    """An NDJSON file a piece of whole lines at a time, each piece with the columns and types
    reading the file whole gives (:func:`read_ndjson`): memory is bounded by the piece.

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
                yield user_columns(_read_ndjson_as(data, union))
            return
    # the forgiving reader: every value as text, the columns of every piece
    numbered = _numbered(_ndjson_pieces(path, block))
    columns = pl.concat(
        [_ndjson_fallback(data, line).clear() for data, line in numbered], how="diagonal"
    )
    for data, line in _numbered(_ndjson_pieces(path, block)):
        frame = pl.concat([columns, _ndjson_fallback(data, line)], how="diagonal")
        yield frame if frame.width else _no_listings()
