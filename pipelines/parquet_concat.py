"""Concatenate Parquet files of one schema without decoding them.

A run's parts are already encoded as the output should be; decoding and re-encoding them to
make one file cost a tenth of a run's CPU time. A Parquet file is its column chunks followed by
a footer (Thrift compact protocol) that gives every chunk's byte offset. Concatenating is
therefore copying each file's chunks and writing one footer with all their row groups, offsets
moved by where each file's chunks now start.

The footer is read into a generic tree of Thrift fields, so fields this module does not know
are carried through unchanged; only the offsets listed below are touched. Files whose schemas
differ, or that use features with offsets elsewhere (encryption, external column files), are
refused with :class:`NotConcatenable`, for the caller to fall back on re-encoding.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Union

MAGIC = b"PAR1"

# Thrift compact protocol type codes
_TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY = 1, 2, 3, 4, 5, 6, 7, 8
_LIST, _SET, _MAP, _STRUCT = 9, 10, 11, 12

# field ids (parquet.thrift)
_FMD_SCHEMA, _FMD_NUM_ROWS, _FMD_ROW_GROUPS, _FMD_KEY_VALUE = 2, 3, 4, 5
_FMD_COLUMN_ORDERS = 7
_FMD_ENCRYPTION = (8, 9)
_RG_COLUMNS, _RG_FILE_OFFSET, _RG_ORDINAL = 1, 5, 7
_CC_FILE_PATH, _CC_FILE_OFFSET, _CC_META = 1, 2, 3
_CC_OFFSET_INDEX, _CC_COLUMN_INDEX, _CC_CRYPTO = 4, 6, (8, 9)
#: ColumnMetaData: data_page_offset, index_page_offset, dictionary_page_offset,
#: bloom_filter_offset
_CMD_OFFSETS = (9, 10, 11, 14)


class NotConcatenable(ValueError):
    """The files cannot be joined byte for byte (they must be re-encoded)."""


@dataclass
class ThriftList:
    etype: int
    items: list[Value]


@dataclass
class ThriftStruct:
    fields: list[tuple[int, int, Value]]  # (field id, type, value), in file order

    def get(self, fid: int) -> Value | None:
        for f, _, v in self.fields:
            if f == fid:
                return v
        return None

    def set(self, fid: int, value: Value) -> None:
        for i, (f, t, _) in enumerate(self.fields):
            if f == fid:
                self.fields[i] = (f, t, value)
                return
        raise KeyError(fid)

    def has(self, fid: int) -> bool:
        return any(f == fid for f, _, _ in self.fields)


Value = Union[int, bool, float, bytes, ThriftList, ThriftStruct, "ThriftMap"]


@dataclass
class ThriftMap:
    ktype: int
    vtype: int
    items: list[tuple[Value, Value]]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def byte(self) -> int:
        b = self.data[self.pos]
        self.pos += 1
        return b

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def value(self, ttype: int) -> Value:
        if ttype in (_TRUE, _FALSE):  # a bool inside a collection: one byte
            return self.byte() == _TRUE
        if ttype == _BYTE:
            return int(struct.unpack("b", bytes([self.byte()]))[0])
        if ttype in (_I16, _I32, _I64):
            return self.zigzag()
        if ttype == _DOUBLE:
            (d,) = struct.unpack_from("<d", self.data, self.pos)
            self.pos += 8
            return float(d)
        if ttype == _BINARY:
            n = self.varint()
            out = self.data[self.pos : self.pos + n]
            self.pos += n
            return out
        if ttype in (_LIST, _SET):
            head = self.byte()
            size, etype = head >> 4, head & 0x0F
            if size == 15:
                size = self.varint()
            return ThriftList(etype, [self.value(etype) for _ in range(size)])
        if ttype == _MAP:
            size = self.varint()
            if size == 0:
                return ThriftMap(0, 0, [])
            kv = self.byte()
            kt, vt = kv >> 4, kv & 0x0F
            return ThriftMap(kt, vt, [(self.value(kt), self.value(vt)) for _ in range(size)])
        if ttype == _STRUCT:
            return self.struct()
        raise NotConcatenable(f"unknown Thrift type {ttype} at byte {self.pos}")

    def struct(self) -> ThriftStruct:
        fields: list[tuple[int, int, Value]] = []
        last = 0
        while True:
            head = self.byte()
            if head == 0:
                return ThriftStruct(fields)
            delta, ttype = head >> 4, head & 0x0F
            fid = last + delta if delta else self.zigzag()
            if ttype in (_TRUE, _FALSE):
                value: Value = ttype == _TRUE
            else:
                value = self.value(ttype)
            fields.append((fid, ttype, value))
            last = fid


class _Writer:
    def __init__(self) -> None:
        self.out = bytearray()

    def varint(self, n: int) -> None:
        while True:
            if n < 0x80:
                self.out.append(n)
                return
            self.out.append((n & 0x7F) | 0x80)
            n >>= 7

    def zigzag(self, n: int) -> None:
        self.varint((n << 1) ^ (n >> 63))

    def value(self, ttype: int, v: Value) -> None:
        if ttype in (_TRUE, _FALSE):
            self.out.append(_TRUE if v else _FALSE)
        elif ttype == _BYTE:
            self.out += struct.pack("b", v)
        elif ttype in (_I16, _I32, _I64):
            assert isinstance(v, int)
            self.zigzag(v)
        elif ttype == _DOUBLE:
            self.out += struct.pack("<d", v)
        elif ttype == _BINARY:
            assert isinstance(v, bytes)
            self.varint(len(v))
            self.out += v
        elif ttype in (_LIST, _SET):
            assert isinstance(v, ThriftList)
            n = len(v.items)
            if n < 15:
                self.out.append((n << 4) | v.etype)
            else:
                self.out.append(0xF0 | v.etype)
                self.varint(n)
            for item in v.items:
                self.value(v.etype, item)
        elif ttype == _MAP:
            assert isinstance(v, ThriftMap)
            self.varint(len(v.items))
            if v.items:
                self.out.append((v.ktype << 4) | v.vtype)
                for k, val in v.items:
                    self.value(v.ktype, k)
                    self.value(v.vtype, val)
        elif ttype == _STRUCT:
            assert isinstance(v, ThriftStruct)
            self.struct(v)
        else:
            raise NotConcatenable(f"unknown Thrift type {ttype}")

    def struct(self, s: ThriftStruct) -> None:
        last = 0
        for fid, ttype, v in s.fields:
            wire = (_TRUE if v else _FALSE) if ttype in (_TRUE, _FALSE) else ttype
            if 0 < fid - last <= 15:
                self.out.append(((fid - last) << 4) | wire)
            else:
                self.out.append(wire)
                self.zigzag(fid)
            if ttype not in (_TRUE, _FALSE):
                self.value(ttype, v)
            last = fid
        self.out.append(0)


def decode_footer(data: bytes) -> ThriftStruct:
    """A footer (FileMetaData) as a tree of Thrift fields."""
    reader = _Reader(data)
    try:
        meta = reader.struct()
    except (IndexError, struct.error):
        raise NotConcatenable("truncated footer") from None
    if reader.pos != len(data):
        raise NotConcatenable(f"footer has {len(data) - reader.pos} bytes after its end")
    return meta


def encode_footer(meta: ThriftStruct) -> bytes:
    writer = _Writer()
    writer.struct(meta)
    return bytes(writer.out)


@dataclass
class _Part:
    path: Path
    size: int
    body_end: int  # where the footer starts
    meta: ThriftStruct


def _read_part(path: Path, fh: BinaryIO) -> _Part:
    size = fh.seek(0, 2)
    if size < 12:
        raise NotConcatenable(f"{path}: too short for a Parquet file")
    fh.seek(0)
    head = fh.read(4)
    fh.seek(size - 8)
    tail = fh.read(8)
    (footer_len,) = struct.unpack("<I", tail[:4])
    if head != MAGIC or tail[4:] != MAGIC or footer_len > size - 12:
        raise NotConcatenable(f"{path}: not a plain Parquet file")
    body_end = size - 8 - footer_len
    fh.seek(body_end)
    return _Part(path, size, body_end, decode_footer(fh.read(footer_len)))


def _as_struct(v: Value | None) -> ThriftStruct:
    if not isinstance(v, ThriftStruct):
        raise NotConcatenable("unexpected footer layout")
    return v


def _as_list(v: Value | None) -> list[Value]:
    if v is None:
        return []
    if not isinstance(v, ThriftList):
        raise NotConcatenable("unexpected footer layout")
    return v.items


def _shift(s: ThriftStruct, fids: Sequence[int], by: int) -> None:
    for fid in fids:
        v = s.get(fid)
        if isinstance(v, int) and not isinstance(v, bool):
            s.set(fid, v + by)


def _moved_row_groups(meta: ThriftStruct, by: int, ordinal: int) -> list[Value]:
    """The row groups of one file, their offsets moved ``by`` bytes and renumbered."""
    groups = _as_list(meta.get(_FMD_ROW_GROUPS))
    for g in groups:
        group = _as_struct(g)
        _shift(group, [_RG_FILE_OFFSET], by)
        if group.has(_RG_ORDINAL):
            group.set(_RG_ORDINAL, ordinal)
        ordinal += 1
        for c in _as_list(group.get(_RG_COLUMNS)):
            chunk = _as_struct(c)
            if chunk.get(_CC_FILE_PATH) or any(chunk.has(f) for f in _CC_CRYPTO):
                raise NotConcatenable("column chunks in other files or encrypted")
            _shift(chunk, [_CC_FILE_OFFSET, _CC_OFFSET_INDEX, _CC_COLUMN_INDEX], by)
            if chunk.has(_CC_META):
                _shift(_as_struct(chunk.get(_CC_META)), _CMD_OFFSETS, by)
    return groups


def concat_parquet(parts: Sequence[Path], out: BinaryIO) -> int:
    """Write the concatenation of ``parts`` (Parquet files of one schema) to ``out``, byte for
    byte, and return its row count.

    Raises :class:`NotConcatenable` before writing anything if they cannot be joined so, or
    while copying if a part changed since its footer was read (``out`` then holds part of a
    file, for the caller to discard). One part is open at a time: a run may have thousands.
    """
    if not parts:
        raise NotConcatenable("no files")
    read = []
    for p in parts:
        with open(p, "rb") as fh:
            read.append(_read_part(Path(p), fh))
    first = read[0].meta
    if any(first.has(f) for f in _FMD_ENCRYPTION):
        raise NotConcatenable("encrypted footer")
    schema = _schema_fields(first)
    for part in read[1:]:
        if _schema_fields(part.meta) != schema:
            raise NotConcatenable(f"{part.path}: schema differs from {read[0].path}")
    groups: list[Value] = []
    rows = 0
    at = len(MAGIC)
    for part in read:
        groups += _moved_row_groups(part.meta, at - len(MAGIC), len(groups))
        n = part.meta.get(_FMD_NUM_ROWS)
        rows += n if isinstance(n, int) else 0
        at += part.body_end - len(MAGIC)
    merged = ThriftStruct(list(first.fields))
    merged.set(_FMD_NUM_ROWS, rows)
    if merged.has(_FMD_ROW_GROUPS):
        merged.set(_FMD_ROW_GROUPS, ThriftList(_STRUCT, groups))
    elif groups:
        raise NotConcatenable("footer without row groups")
    footer = encode_footer(merged)
    out.write(MAGIC)
    for part in read:
        with open(part.path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size != part.size:
                raise NotConcatenable(f"{part.path}: changed while being joined")
            fh.seek(len(MAGIC))
            left = part.body_end - len(MAGIC)
            while left:
                chunk = fh.read(min(left, 1 << 22))
                if not chunk:
                    raise NotConcatenable(f"{part.path}: changed while being joined")
                out.write(chunk)
                left -= len(chunk)
    out.write(footer)
    out.write(struct.pack("<I", len(footer)))
    out.write(MAGIC)
    return rows


def _schema_fields(meta: ThriftStruct) -> ThriftStruct:
    """The footer fields that must agree for files to be joined: the schema, the key-value
    metadata (the Arrow schema) and the column orders."""
    agree = (_FMD_SCHEMA, _FMD_KEY_VALUE, _FMD_COLUMN_ORDERS)
    return ThriftStruct([f for f in meta.fields if f[0] in agree])
