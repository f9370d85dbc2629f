"""The mapred sequence file: key/value pairs in compressed, checksummed blocks with sync markers.

Hadoop's SequenceFile idea, for intermediate data between jobs::

    MAGIC "MRSEQ1\\n\\0" | u32 n | header (msgpack: key codec, value codec, compression, meta) | sync(16)
    block*:  sync(16) | u32 records | u32 raw bytes | u32 stored bytes | u32 crc32c(stored) | stored

The payload of a block is a msgpack stream ``key, value, key, value, ...``
(mapred's codec: any value a job can carry), compressed with ``lz4`` or
``zstd`` (or ``none``).  The key and value codecs (``msgpack``, ``str``,
``bytes``) say what the file holds and are checked on write.  A split owns
the blocks whose sync marker *starts* inside its byte range, so any offset can
start a split and every block is read exactly once.  A block whose checksum
or length is wrong is a bad block (named by offset); skipping it resumes at
the next sync marker.
"""
from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import Any, BinaryIO

import crc32c
import msgpack

from mapred.errors import ConfigError
from mapred.formats.base import FormatError, SchemaError, byte_splits
from mapred.io import codec
from mapred.io.fs import get_fs
from mapred.io.syncmarker import SYNC_LEN, find_sync

NAME = "seq"
EXTENSIONS = (".seq",)
MAGIC = b"MRSEQ1\n\x00"
_U32 = struct.Struct("<I")
_BLOCK = struct.Struct("<IIII")
BLOCK_HEAD = SYNC_LEN + _BLOCK.size
CODECS = ("msgpack", "str", "bytes")
COMPRESSIONS = ("none", "lz4", "zstd")


def _compressor(name: str):
    if name == "lz4":
        import lz4.block
        return lambda b: lz4.block.compress(b, store_size=False), \
            lambda b, n: lz4.block.decompress(b, uncompressed_size=n)
    if name == "zstd":
        import zstandard
        c, d = zstandard.ZstdCompressor(level=3), zstandard.ZstdDecompressor()
        return c.compress, lambda b, n: d.decompress(b, max_output_size=n)
    if name == "none":
        return (lambda b: b), (lambda b, n: b)
    raise ConfigError(f"sequence file compression must be one of {COMPRESSIONS}, got {name!r}")


def read_header(f: BinaryIO, path: str) -> tuple[dict, bytes, int]:
    """``(header, sync, offset of the first block)``."""
    f.seek(0)
    head = f.read(len(MAGIC) + 4)
    if len(head) < len(MAGIC) + 4 or not head.startswith(MAGIC):
        raise FormatError(path, "not a mapred sequence file (bad magic)", offset=0)
    (n,) = _U32.unpack(head[len(MAGIC):])
    raw = f.read(n)
    sync = f.read(SYNC_LEN)
    if len(raw) != n or len(sync) != SYNC_LEN:
        raise FormatError(path, "the sequence file header is cut short", offset=len(MAGIC))
    try:
        header = msgpack.unpackb(raw)
    except Exception as exc:  # noqa: BLE001 - any decode failure is a bad header
        raise FormatError(path, f"the sequence file header does not decode ({exc})", offset=len(MAGIC) + 4) from None
    return header, sync, len(MAGIC) + 4 + n + SYNC_LEN


def plan(path: str, split_size: int, options: dict) -> list:
    fs = get_fs(path)
    with fs.open_read(path) as f:
        read_header(f, path)     # a file that is not ours fails at planning, naming it
    return byte_splits(NAME, path, split_size, {})


class Reader:
    def __init__(self, split, meter, bad) -> None:
        self.split, self.meter, self.bad = split, meter, bad
        self.notes: dict = {}

    def _payloads(self) -> Iterator[tuple[int, bytes]]:
        s = self.split
        with get_fs(s.path).open_read(s.path) as f:
            header, sync, first = read_header(f, s.path)
            _, decompress = _compressor(header.get("compression", "none"))
            pos = find_sync(f, sync, max(s.start, first), s.end)
            while 0 <= pos < s.end:
                f.seek(pos)
                head = f.read(BLOCK_HEAD)
                self.meter.bytes_read += len(head)
                problem, payload, nxt = None, None, pos + 1
                if len(head) < BLOCK_HEAD or head[:SYNC_LEN] != sync:
                    problem = "no sync marker where a block should start" if len(head) else "file cut short"
                else:
                    _, raw_len, stored_len, crc = _BLOCK.unpack(head[SYNC_LEN:])
                    stored = f.read(stored_len)
                    self.meter.bytes_read += len(stored)
                    if len(stored) != stored_len:
                        problem = f"block cut short ({len(stored)} of {stored_len} bytes)"
                    elif crc32c.crc32c(stored) != crc:
                        problem = "block checksum mismatch"
                    else:
                        try:
                            payload = decompress(stored, raw_len)
                            nxt = pos + BLOCK_HEAD + stored_len
                        except Exception as exc:  # noqa: BLE001 - a codec error is a broken block
                            problem = f"block does not decompress ({exc})"
                if problem is None:
                    yield pos, payload
                    pos = nxt
                    continue
                self.bad.add(FormatError(s.path, f"broken sequence file block: {problem}", split=s.index,
                                         offset=pos, record=f"<block at offset {pos}>"))
                pos = find_sync(f, sync, pos + 1, s.end)

    def records(self) -> Iterator[tuple[Any, Any]]:
        for _, payload in self._payloads():
            yield from _pairs(payload)

    def batches(self, size: int) -> Iterator[tuple[int, list]]:
        for pos, payload in self._payloads():
            pairs = list(_pairs(payload))
            for i in range(0, len(pairs), size):
                yield pos, pairs[i:i + size]


def _pairs(payload: bytes) -> Iterator[tuple]:
    unpacker = codec.make_unpacker()
    unpacker.feed(payload)
    it = iter(unpacker)
    for key in it:
        yield key, next(it)


class Writer:
    """Writes pairs in blocks of about ``block_bytes`` raw bytes (1 MiB by default)."""

    def __init__(self, f: BinaryIO, options: dict, bad=None, part: str = "") -> None:
        self.f, self.bad, self.part = f, bad, part
        self.key_codec = options.get("key_codec", "msgpack")
        self.value_codec = options.get("value_codec", "msgpack")
        for c in (self.key_codec, self.value_codec):
            if c not in CODECS:
                raise ConfigError(f"sequence file codecs must be one of {CODECS}, got {c!r}")
        self.compression = options.get("compression") or "lz4"
        self.compress, _ = _compressor(self.compression)
        self.block_bytes = int(options.get("block_bytes", 1 << 20))
        self.sync = os.urandom(SYNC_LEN)
        header = msgpack.packb({"key": self.key_codec, "value": self.value_codec,
                                "compression": self.compression, "meta": dict(options.get("meta") or {})})
        f.write(MAGIC + _U32.pack(len(header)) + header + self.sync)
        self.packer = codec.make_packer()
        self.buf: list[bytes] = []
        self.buffered = 0
        self.count = 0
        self.records = 0

    def _fits(self, value, c: str) -> bool:
        return c == "msgpack" or (c == "str" and isinstance(value, str)) or \
            (c == "bytes" and isinstance(value, (bytes, bytearray)))

    def write(self, key, value) -> None:
        if not (self._fits(key, self.key_codec) and self._fits(value, self.value_codec)):
            self.bad.add(SchemaError(f"the file's codecs are key={self.key_codec}, value={self.value_codec}",
                                     (key, value), self.part))
            return
        try:
            data = self.packer.pack(key) + self.packer.pack(value)
        except (TypeError, ValueError, OverflowError) as exc:
            self.bad.add(SchemaError(f"cannot be encoded ({exc})", (key, value), self.part))
            return
        self.buf.append(data)
        self.buffered += len(data)
        self.count += 1
        self.records += 1
        if self.buffered >= self.block_bytes:
            self.flush_block()

    def write_arrays(self, pairs) -> None:
        for k, v in zip(pairs.keys.tolist(), pairs.values):
            self.write(k, v)

    def flush_block(self) -> None:
        if not self.buf:
            return
        raw = b"".join(self.buf)
        self.buf, self.buffered = [], 0
        stored = self.compress(raw)
        self.f.write(self.sync + _BLOCK.pack(self.count, len(raw), len(stored), crc32c.crc32c(stored)) + stored)
        self.count = 0

    def close(self) -> None:
        self.flush_block()


def write_file(path: str, pairs, **options) -> int:
    """Write ``pairs`` to one sequence file at ``path`` (local or ``mrfs://``); returns the record count."""
    fs = get_fs(path)
    from mapred.formats.base import BadRecords
    with fs.open_write(path) as f:
        w = Writer(f, options, BadRecords("fail"))
        for k, v in pairs:
            w.write(k, v)
        w.close()
    return w.records
