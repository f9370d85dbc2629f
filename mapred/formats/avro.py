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
from mapred.formats.avrodecode import compile_decoder
from mapred.formats.base import FormatError, SchemaError, as_record, byte_splits
from mapred.io.fs import get_fs
from mapred.io.syncmarker import SYNC_LEN, find_sync

NAME = "avro"
EXTENSIONS = (".avro",)
MAGIC = b"Obj\x01"


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


class _Tail:
    """A read-only stream of the file's header followed by the file from ``offset`` on.

    This is what lets one fastavro block reader start at a split's first
    block: it parses the (real) header, then frames and decodes blocks as if
    they followed it directly.  Reads are served from a local buffer, since
    fastavro reads a block's varints a byte at a time.  ``file_offset`` maps a
    position of this stream back to the file.
    """

    CHUNK = 1 << 20

    def __init__(self, f, header: bytes, offset: int, meter) -> None:
        self.f, self.header, self.offset, self.meter = f, header, offset, meter
        f.seek(offset)
        self.buf, self.at, self.pos = header, 0, 0      # pos: bytes of this stream handed out

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = 1 << 62
        out = []
        while n > 0:
            if self.at >= len(self.buf):
                self.buf, self.at = self.f.read(max(self.CHUNK, min(n, 64 << 20))), 0
                self.meter.bytes_read += len(self.buf)
                if not self.buf:
                    break
            piece = self.buf[self.at:self.at + n]
            self.at += len(piece)
            n -= len(piece)
            out.append(piece)
        data = out[0] if len(out) == 1 else b"".join(out)
        self.pos += len(data)
        return data

    def tell(self) -> int:
        return self.pos

    def file_offset(self, pos: int) -> int:
        return self.offset + pos - len(self.header)


class Reader:
    """The records of one split: one fastavro block reader from the split's first owned block on.

    A block is owned when the sync marker before it starts inside the split;
    reading stops before the first block that is not (its offset is known
    from the previous block's size, so nothing past it is read).  A block
    whose framing breaks (length, trailing sync marker, codec) is skipped to
    the next sync marker with a fresh reader; a block whose data does not
    decode is skipped with the same reader, since its framing held.
    """

    def __init__(self, split, meter, bad) -> None:
        self.split, self.meter, self.bad = split, meter, bad
        self.notes: dict = {}

    def _broken(self, offset: int, why: str) -> None:
        self.bad.add(FormatError(self.split.path, f"broken Avro block: {why}", split=self.split.index,
                                 offset=offset, record=f"<block at offset {offset}>"))

    def _blocks(self) -> Iterator[tuple[int, list]]:
        """``(file offset, records)`` of every owned block that decodes."""
        import fastavro
        s = self.split
        fs = get_fs(s.path)
        size = fs.size(s.path)
        with fs.open_read(s.path) as f:
            header, sync, meta = read_header(f, s.path)
            decode = compile_decoder(meta.get("avro.schema", b"null").decode("utf-8", errors="replace"))
            pos = find_sync(f, sync, max(s.start, len(header) - SYNC_LEN), s.end)
            while 0 <= pos < s.end and pos + SYNC_LEN < size:
                tail = _Tail(f, header, pos + SYNC_LEN, self.meter)
                try:
                    blocks = iter(fastavro.block_reader(tail))
                except Exception as exc:  # noqa: BLE001 - an unknown codec, a schema fastavro refuses
                    raise FormatError(s.path, f"fastavro cannot read this file: {exc}", offset=0) from None
                nxt = pos + SYNC_LEN          # where the next block starts, in the file
                while nxt - SYNC_LEN < s.end and nxt < size:
                    try:
                        block = next(blocks)
                    except StopIteration:
                        self._broken(nxt, "the file ends inside a block header (cut short?)")
                        break
                    except Exception as exc:  # noqa: BLE001 - a length, sync marker or codec that fails
                        self._broken(nxt, f"the block's length, sync marker or compression is wrong ({exc})")
                        break
                    at, nxt = nxt, tail.file_offset(block.offset + block.size)
                    try:
                        records = _decode(block, decode)
                    except Exception as exc:  # noqa: BLE001 - fastavro raises many kinds for bad data
                        self._broken(at, f"data does not decode ({exc})")
                        continue
                    if len(records) != block.num_records:
                        self._broken(at, f"{len(records)} records decoded, the block says {block.num_records}")
                        continue
                    yield at, records
                else:
                    return
                pos = find_sync(f, sync, nxt, s.end)

    def records(self) -> Iterator[tuple[int, Any]]:
        for offset, records in self._blocks():
            for r in records:
                yield offset, r

    def batches(self, size: int) -> Iterator[tuple[int, list]]:
        """Lists of ``size`` records (the last may be short), each at the offset of its first record's block."""
        pending: list = []
        first = 0
        for offset, records in self._blocks():
            i = 0
            if pending:
                i = size - len(pending)
                pending.extend(records[:i])
                if len(pending) < size:
                    continue
                yield first, pending
                pending = []
            while len(records) - i >= size:
                yield offset, records[i:i + size] if i or len(records) != size else records
                i += size
            if i < len(records):
                pending, first = records[i:], offset
        if pending:
            yield first, pending


def _decode(block, decode) -> list:
    """A block's records: by the compiled decoder from its (decompressed) bytes, else by fastavro."""
    raw = getattr(block, "bytes_", None)      # not public in fastavro: without it, fastavro decodes
    if isinstance(raw, io.BytesIO):
        raw = raw.getvalue()
    if decode is not None and isinstance(raw, bytes):
        return decode(raw, block.num_records)
    return list(block)


def file_schema(path: str) -> dict:
    """The writer's schema stored in an Avro file's header."""
    import json
    with get_fs(path).open_read(path) as f:
        _, _, meta = read_header(f, path)
    return json.loads(meta["avro.schema"])


def _zig(n: int) -> bytes:
    """A zig-zag varint, as Avro writes a long."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _read_long(fo) -> int:
    shift = result = 0
    while True:
        byte = fo.read(1)
        if not byte:
            raise EOFError("the file ends inside a block length")
        b = byte[0]
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return (result >> 1) ^ -(result & 1)
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def zstd_read_block(fo) -> io.BytesIO:
    """One ``zstandard`` block for fastavro: its length, then zstd frames.

    Frames are read across and without a content size in their header (Java's
    Avro writes them through a stream), which ``ZstdDecompressor.decompress``
    alone refuses.
    """
    import zstandard
    length = _read_long(fo)
    data = fo.read(length)
    if length < 0 or len(data) != length:
        raise EOFError(f"a zstandard block of {length} bytes is cut short ({len(data)} read)")
    with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True) as r:
        return io.BytesIO(r.read())


def zstd_write_block(fo, block_bytes: bytes, compression_level) -> None:
    """One ``zstandard`` block for fastavro's writer (level 3, zstd's default, unless given)."""
    import zstandard
    data = zstandard.ZstdCompressor(level=3 if compression_level is None else compression_level).compress(block_bytes)
    fo.write(_zig(len(data)) + data)


def register_zstd() -> bool:
    """Give fastavro the ``zstandard`` codec through the zstandard package mapred depends on.

    fastavro (1.10+) implements it with ``backports.zstd`` before Python 3.14
    and otherwise leaves a stub that raises; only such a stub is replaced, so
    a fastavro that has its own codec keeps it.  Whether one was registered.
    """
    import fastavro.read
    import fastavro.write
    done = False
    for table, fn in ((fastavro.read.BLOCK_READERS, zstd_read_block),
                      (fastavro.write._write.BLOCK_WRITERS, zstd_write_block)):
        current = table.get("zstandard")
        if current is None or "missing" in getattr(current, "__qualname__", ""):
            table["zstandard"] = fn
            done = True
    return done


register_zstd()

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
