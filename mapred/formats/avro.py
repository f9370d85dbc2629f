"""Avro object container files (fastavro): split on sync markers, schema from the file.

A container is a header (magic, metadata with the writer's schema and codec,
a 16-byte sync marker) and blocks, each ``count | size | data | sync``.  A
split owns the blocks whose *preceding* sync marker starts inside its byte
range — the header's marker precedes the first block — so any byte range can
start a split and every block is read once.  The owned blocks are decoded by
fastavro, fed the file's own header bytes followed by the blocks, so every
codec fastavro knows works.  A block whose length or trailing sync marker is
wrong, or whose data does not decode, is a broken block named by its byte
offset; skipping it resumes at the next sync marker.

The writer infers an Avro schema from the first records (every field a union
with null) or takes one given, validates each record strictly (an unknown
field or a wrong type is a bad record, not a silent drop), and writes a
standard container that any Avro reader opens.
"""
from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any, BinaryIO

from mapred.errors import ConfigError
from mapred.formats import schema as schemamod
from mapred.formats.base import FormatError, SchemaError, as_record, byte_splits
from mapred.formats.seq import find_sync
from mapred.io.fs import get_fs

NAME = "avro"
EXTENSIONS = (".avro",)
MAGIC = b"Obj\x01"
SYNC_LEN = 16


def _long(buf: bytes, i: int) -> tuple[int, int]:
    """One zig-zag varint at ``buf[i]``: ``(value, next index)``; ``IndexError`` if cut short."""
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")
    return (result >> 1) ^ -(result & 1), i


def read_header(f: BinaryIO, path: str) -> tuple[bytes, bytes, dict]:
    """``(header bytes, sync marker, metadata)`` of a container file."""
    f.seek(0)
    data = f.read(64 << 10)
    if not data.startswith(MAGIC):
        raise FormatError(path, "not an Avro container file (bad magic)", offset=0)
    while True:
        try:
            meta, i = {}, len(MAGIC)
            while True:
                count, i = _long(data, i)
                if count == 0:
                    break
                if count < 0:
                    count = -count
                    _, i = _long(data, i)
                for _ in range(count):
                    klen, i = _long(data, i)
                    key = data[i:i + klen].decode()
                    i += klen
                    vlen, i = _long(data, i)
                    meta[key] = data[i:i + vlen]
                    i += vlen
            if i + SYNC_LEN > len(data):
                raise IndexError
            return data[:i + SYNC_LEN], data[i:i + SYNC_LEN], meta
        except IndexError:
            more = f.read(len(data))
            if not more:
                raise FormatError(path, "the Avro header is cut short", offset=len(data)) from None
            data += more


def plan(path: str, split_size: int, options: dict) -> list:
    with get_fs(path).open_read(path) as f:
        read_header(f, path)
    return byte_splits(NAME, path, split_size, {})


class Reader:
    def __init__(self, split, meter, bad) -> None:
        self.split, self.meter, self.bad = split, meter, bad
        self.notes: dict = {}

    def _runs(self) -> Iterator[tuple[int, bytes]]:
        """``(offset, raw bytes)`` of owned blocks, each checked for its length and trailing sync marker."""
        s = self.split
        fs = get_fs(s.path)
        size = fs.size(s.path)
        with fs.open_read(s.path) as f:
            header, sync, _ = read_header(f, s.path)
            self.header = header
            pos = find_sync(f, sync, max(s.start, len(header) - SYNC_LEN), s.end)
            while 0 <= pos < s.end:
                block = pos + SYNC_LEN
                if block >= size:
                    return
                f.seek(block)
                head = f.read(20)
                problem = None
                try:
                    count, i = _long(head, 0)
                    length, i = _long(head, i)
                    if count < 0 or length < 0 or block + i + length + SYNC_LEN > size:
                        problem = f"block of {length} bytes runs past the end of the file (cut short?)"
                except (IndexError, ValueError):
                    problem = "block header does not decode"
                if problem is None:
                    f.seek(block)
                    raw = f.read(i + length + SYNC_LEN)
                    self.meter.bytes_read += len(raw)
                    if raw[-SYNC_LEN:] != sync:
                        problem = "the block's trailing sync marker is wrong"
                if problem is None:
                    yield block, raw
                    pos = block + i + length
                    continue
                self.bad.add(FormatError(s.path, f"broken Avro block: {problem}", split=s.index, offset=block,
                                         record=f"<block at offset {block}>"))
                pos = find_sync(f, sync, block, s.end)

    def _decoded(self) -> Iterator[tuple[int, list]]:
        import fastavro
        for offset, raw in self._runs():
            try:
                records = list(fastavro.reader(io.BytesIO(self.header + raw)))
            except Exception as exc:  # noqa: BLE001 - fastavro raises many kinds for bad data
                self.bad.add(FormatError(self.split.path, f"broken Avro block: data does not decode ({exc})",
                                         split=self.split.index, offset=offset, record=f"<block at offset {offset}>"))
                continue
            yield offset, records

    def records(self) -> Iterator[tuple[int, Any]]:
        for offset, records in self._decoded():
            for r in records:
                yield offset, r

    def batches(self, size: int) -> Iterator[tuple[int, list]]:
        pending, first = [], None
        for offset, records in self._decoded():
            first = offset if first is None else first
            pending.extend(records)
            if len(pending) >= size:
                yield first, pending
                pending, first = [], None
        if pending:
            yield first, pending


def file_schema(path: str) -> dict:
    """The writer's schema stored in an Avro file's header."""
    import json
    with get_fs(path).open_read(path) as f:
        _, _, meta = read_header(f, path)
    return json.loads(meta["avro.schema"])


CODECS = ("null", "deflate", "zstandard", "snappy", "bzip2", "xz", "lz4")
_ALIASES = {"none": "null", "zstd": "zstandard", "gzip": "deflate"}


class Writer:
    def __init__(self, f, options: dict, bad, part: str = "") -> None:
        self.f, self.bad, self.part = f, bad, part
        given = options.get("schema")
        self.avro_schema = given if isinstance(given, dict) and given.get("type") == "record" else None
        self.schema = schemamod.parse(given) if given is not None else None
        if self.schema is not None and self.avro_schema is None:
            self.avro_schema = schemamod.to_avro(self.schema)
        codec = options.get("compression") or "deflate"
        self.codec = _ALIASES.get(codec, codec)
        if self.codec not in CODECS:
            raise ConfigError(f"Avro compression must be one of {CODECS}, got {codec!r}")
        self.infer_rows = int(options.get("infer_rows", 1000))
        self.sync_interval = int(options.get("sync_interval", 256 << 10))   # bytes per block
        self.pending: list = []
        self.writer = None
        self.records = 0

    def write(self, key, value) -> None:
        if isinstance(value, (tuple, list)) and self.schema and len(value) == len(self.schema.fields):
            value = dict(zip(self.schema.names, value))
        record = as_record(key, value)
        if self.writer is None:
            self.pending.append(record)
            if len(self.pending) >= self.infer_rows:
                self._start()
            return
        self._write(record)

    def _start(self) -> None:
        import fastavro
        from fastavro.write import Writer as AvroWriter
        if self.avro_schema is None:
            try:
                self.schema = schemamod.infer(r for r in self.pending if isinstance(r, dict))
            except ConfigError as exc:
                raise SchemaError(f"no schema fits the first records ({exc}); give one",
                                  self.pending[0] if self.pending else None, self.part) from None
            self.avro_schema = schemamod.to_avro(self.schema)
        self.parsed = fastavro.parse_schema(self.avro_schema)
        self.names = {f["name"] for f in self.avro_schema["fields"]}   # fastavro ignores unknown fields
        self.writer = AvroWriter(self.f, self.parsed, codec=self.codec, sync_interval=self.sync_interval)
        pending, self.pending = self.pending, []
        for r in pending:
            self._write(r)

    def _write(self, record) -> None:
        from fastavro.validation import validate
        try:
            ok = isinstance(record, dict) and record.keys() <= self.names and \
                validate(record, self.parsed, raise_errors=False, strict=True)
        except Exception:  # noqa: BLE001 - validation of a strange value
            ok = False
        if not ok:
            why = schemamod.misfit(record, self.schema) if self.schema else None
            if why is None and isinstance(record, dict):
                extra = sorted(set(record) - self.names)
                why = f"field {extra[0]!r} is not in the schema" if extra else None
            self.bad.add(SchemaError(why or "does not fit the Avro schema", record, self.part))
            return
        self.writer.write(record)
        self.records += 1

    def write_arrays(self, pairs) -> None:
        for k, v in zip(pairs.keys.tolist(), pairs.values.tolist()):
            self.write(k, v)

    def close(self) -> None:
        if self.writer is None:
            if self.avro_schema is None and not self.pending:
                self.avro_schema = {"type": "record", "name": "Record", "fields": []}
            self._start()
        self.writer.flush()
