"""Joining a run's parts byte for byte: the joined file reads back as the parts concatenated."""

from __future__ import annotations

import datetime as dt
import io
import resource
import struct
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.parquet_concat import (
    NotConcatenable,
    ThriftList,
    ThriftStruct,
    concat_parquet,
    decode_footer,
    encode_footer,
)
from pipelines.run import _merge_parts


def footer(path: Path) -> bytes:
    data = path.read_bytes()
    (n,) = struct.unpack("<I", data[-8:-4])
    return data[-8 - n : -8]


SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "listing_id": pl.String,
    "title": pl.String,
    "price": pl.Float64,
    "label": pl.Int64,
    "flag": pl.Boolean,
    "reasons": pl.List(pl.String),
    "seen": pl.Date,
}


def frame(n: int, seed: int = 0) -> pl.DataFrame:
    """Every kind of column a scored output carries, with nulls."""
    return pl.DataFrame(
        {
            "listing_id": [f"id-{seed}-{i}" for i in range(n)],
            "title": [None if i % 7 == 0 else f"Gucci bag {i % 13}" for i in range(n)],
            "price": [float(i) if i % 5 else None for i in range(n)],
            "label": [i % 2 for i in range(n)],
            "flag": [i % 3 == 0 for i in range(n)],
            "reasons": [[f"r{i}", "x"] if i % 4 else [] for i in range(n)],
            "seen": [dt.date(2026, 1, 1 + i % 28) for i in range(n)],
        },
        schema=SCHEMA,
    )


def write_parts(tmp_path: Path, frames: list[pl.DataFrame]) -> list[Path]:
    paths = []
    for i, f in enumerate(frames):
        p = tmp_path / f"part-{i:05d}.parquet"
        f.write_parquet(p, compression="zstd")
        paths.append(p)
    return paths


def joined(tmp_path: Path, parts: list[Path]) -> Path:
    out = tmp_path / "joined.parquet"
    with open(out, "wb") as fh:
        concat_parquet(parts, fh)
    return out


def test_a_footer_reads_and_writes_back_byte_for_byte(tmp_path: Path) -> None:
    (p,) = write_parts(tmp_path, [frame(500)])
    raw = footer(p)
    assert encode_footer(decode_footer(raw)) == raw


def test_joined_parts_read_back_as_the_parts_concatenated(tmp_path: Path) -> None:
    frames = [frame(300, 0), frame(0, 1), frame(1000, 2), frame(1, 3)]
    out = joined(tmp_path, write_parts(tmp_path, frames))
    expected = pl.concat(frames)
    assert pl.read_parquet(out).equals(expected)
    assert pa.Table.from_batches(pq.ParquetFile(out).iter_batches()).num_rows == 1301
    assert pq.read_table(out).equals(expected.to_arrow())
    # a slice in the third part, read by its row group's offsets alone
    got = pl.scan_parquet(out).slice(700, 5).collect()
    assert got.equals(expected.slice(700, 5))


def test_each_row_group_keeps_its_statistics(tmp_path: Path) -> None:
    frames = [frame(200, 0), frame(200, 1)]
    out = joined(tmp_path, write_parts(tmp_path, frames))
    meta = pq.ParquetFile(out).metadata
    assert meta.num_row_groups == 2
    for g, f in enumerate(frames):
        stats = meta.row_group(g).column(0).statistics
        assert (stats.min, stats.max) == (f["listing_id"].min(), f["listing_id"].max())
    # a filter on the statistics skips the first part and still finds the second's rows
    got = pl.scan_parquet(out).filter(pl.col("listing_id") == "id-1-7").collect()
    assert got.height == 1


def test_dictionary_pages_and_page_indexes_are_moved_too(tmp_path: Path) -> None:
    frames = [frame(400, s) for s in range(3)]
    parts = []
    for i, f in enumerate(frames):
        p = tmp_path / f"pa-{i}.parquet"
        pq.write_table(f.to_arrow(), p, use_dictionary=True, write_page_index=True)
        parts.append(p)
    out = joined(tmp_path, parts)
    meta = pq.ParquetFile(out).metadata
    assert meta.row_group(2).column(1).has_dictionary_page
    assert meta.row_group(2).column(1).has_offset_index
    assert pq.read_table(out).equals(pa.concat_tables([f.to_arrow() for f in frames]))
    # every region a footer points at (pages, dictionaries, page indexes) holds in the joined
    # file the bytes it holds in its part, moved by where that part's pages now start
    whole = out.read_bytes()
    groups = iter(_list(decode_footer(footer(out)).get(4)))
    start = 4
    for p in parts:
        data = p.read_bytes()
        for group in _list(decode_footer(footer(p)).get(4)):
            after = _list(_struct(next(groups)).get(1))
            for a, b in zip(_list(_struct(group).get(1)), after, strict=True):
                for (sa, la), (sb, lb) in zip(
                    regions(_struct(a)), regions(_struct(b)), strict=True
                ):
                    assert (sb - sa, lb) == (start - 4, la)
                    assert whole[sb : sb + lb] == data[sa : sa + la]
        start += len(data) - 8 - len(footer(p)) - 4


def _list(v: object) -> list[object]:
    assert isinstance(v, ThriftList)
    return list(v.items)


def _struct(v: object) -> ThriftStruct:
    assert isinstance(v, ThriftStruct)
    return v


def regions(chunk: ThriftStruct) -> list[tuple[int, int]]:
    """(offset, length) of a column chunk's pages and of its page indexes."""
    meta = _struct(chunk.get(3))
    first = meta.get(11) or meta.get(9)  # the dictionary page, else the first data page
    spans = [(first, meta.get(7))]
    spans += [(chunk.get(o), chunk.get(n)) for o, n in ((4, 5), (6, 7)) if chunk.has(o)]
    out = []
    for offset, length in spans:
        assert isinstance(offset, int) and isinstance(length, int)
        out.append((offset, length))
    return out


def test_parts_of_different_schemas_are_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    a = frame(10)
    b = frame(10).with_columns(pl.col("label").cast(pl.Float64))
    parts = write_parts(tmp_path, [a, b])
    out = tmp_path / "joined.parquet"
    with open(out, "wb") as fh, pytest.raises(NotConcatenable, match="schema differs"):
        concat_parquet(parts, fh)
    assert out.stat().st_size == 0


def test_a_file_that_is_not_parquet_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1" + b"\x00" * 40 + b"PAR2")
    with open(tmp_path / "o", "wb") as fh, pytest.raises(NotConcatenable):
        concat_parquet([bad], fh)


def test_the_run_falls_back_to_re_encoding_parts_it_cannot_join(tmp_path: Path) -> None:
    a, b = frame(20, 0), frame(30, 1)
    parts = write_parts(tmp_path, [a, b])
    # the second part from another writer: no Arrow schema in its footer
    pq.write_table(b.to_arrow(), parts[1], store_schema=False)
    out = tmp_path / "out.parquet"
    _merge_parts(parts, out)
    assert pl.read_parquet(out).equals(pl.concat([a, b]))
    # re-encoded (one row group for 50 rows), not joined (one per part)
    assert pq.ParquetFile(out).metadata.num_row_groups == 1


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(0, 300), min_size=1, max_size=6), seed=st.integers(0, 99))
def test_any_split_joins_back_to_the_whole(
    tmp_path_factory: pytest.TempPathFactory, sizes: list[int], seed: int
) -> None:
    tmp = tmp_path_factory.mktemp("split")
    whole = frame(sum(sizes), seed)
    frames, at = [], 0
    for n in sizes:
        frames.append(whole.slice(at, n))
        at += n
    out = joined(tmp, write_parts(tmp, frames))
    assert pl.read_parquet(out).equals(whole)


def test_more_parts_than_open_files_allowed_join(tmp_path: Path) -> None:
    # a long run has thousands of parts: they are opened one at a time
    frames = [frame(3, s) for s in range(120)]
    parts = write_parts(tmp_path, frames)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
    try:
        out = joined(tmp_path, parts)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert pl.read_parquet(out).equals(pl.concat(frames))


def test_the_run_joins_its_parts_and_checks_them(tmp_path: Path) -> None:
    # the last column (read back as the check) a list, as an output's reasons can be
    frames = [frame(100, s).select(pl.exclude("reasons"), "reasons") for s in range(3)]
    parts = write_parts(tmp_path, frames)
    out = tmp_path / "out.parquet"
    _merge_parts(parts, out)
    assert pl.read_parquet(out).equals(pl.concat(frames))
    assert pq.ParquetFile(out).metadata.num_row_groups == 3  # joined, not re-encoded


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(1, 400))
def test_a_truncated_footer_is_refused_not_misread(cut: int) -> None:
    raw = FOOTER
    with pytest.raises(NotConcatenable):
        decode_footer(raw[: max(len(raw) - cut, 0)])


def _footer_of_a_frame() -> bytes:
    buf = io.BytesIO()
    frame(50).write_parquet(buf, compression="zstd")
    data = buf.getvalue()
    (n,) = struct.unpack("<I", data[-8:-4])
    return data[-8 - n : -8]


FOOTER = _footer_of_a_frame()
