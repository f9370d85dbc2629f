"""The msgpack record file: ``(key, value)`` pairs in chunks that can be split anywhere.

Layout: ``MAGIC`` (8 bytes), a 16-byte random sync marker, then chunks of
``sync | u32 length | msgpack stream of [key, value] arrays``.  Like Hadoop's
SequenceFile, a split that starts mid-file scans forward to the next sync
marker, and it reads every chunk whose marker starts before its end; so each
chunk, and each record, is read by exactly one split.
"""
from __future__ import annotations

import os
import struct
from typing import BinaryIO, Iterator

from mapred.errors import InputError
from mapred.io import codec
from mapred.io.syncmarker import SYNC_LEN, find_sync

MAGIC = b"MRREC1\n\x00"
HEADER_LEN = len(MAGIC) + SYNC_LEN
_LEN = struct.Struct("<I")


class RecordWriter:
    """Appends pairs; a chunk is flushed every ``chunk_bytes`` of encoded records."""

    def __init__(self, f: BinaryIO, chunk_bytes: int = 1 << 20) -> None:
        self.f = f
        self.sync = os.urandom(SYNC_LEN)
        self.chunk_bytes = chunk_bytes
        self.packer = codec.make_packer()
        self.buf: list[bytes] = []
        self.buffered = 0
        self.records = 0
        self.offset = HEADER_LEN      # bytes written so far: where the next chunk starts
        f.write(MAGIC + self.sync)

    def write(self, key, value) -> None:
        """Buffer one ``(key, value)`` record; a full chunk is written with its sync marker."""
        data = self.packer.pack([key, value])
        self.buf.append(data)
        self.buffered += len(data)
        self.records += 1
        if self.buffered >= self.chunk_bytes:
            self.flush_chunk()

    def flush_chunk(self) -> None:
        """Write the buffered records as one chunk."""
        if self.buf:
            payload = b"".join(self.buf)
            self.f.write(self.sync + _LEN.pack(len(payload)) + payload)
            self.offset += SYNC_LEN + _LEN.size + len(payload)
            self.buf, self.buffered = [], 0

    def close(self) -> None:
        """Write the last chunk."""
        self.flush_chunk()


def read_header(f: BinaryIO, path: str) -> bytes:
    """The file's sync marker, after checking its magic; ``InputError`` naming the path otherwise."""
    head = f.read(HEADER_LEN)
    if len(head) < HEADER_LEN or not head.startswith(MAGIC):
        raise InputError(f"{path} is not a mapred record file (bad magic)")
    return head[len(MAGIC):]


def iter_chunks(f: BinaryIO, path: str, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """Yield ``(offset, payload)`` of every chunk whose marker starts in ``[start, end)``."""
    f.seek(0)
    sync = read_header(f, path)
    pos = find_sync(f, sync, max(start, HEADER_LEN), end)
    while 0 <= pos < end:
        f.seek(pos)
        head = f.read(SYNC_LEN + _LEN.size)
        if len(head) < SYNC_LEN + _LEN.size or head[:SYNC_LEN] != sync:
            raise InputError(f"{path}: corrupt record file at offset {pos}")
        (length,) = _LEN.unpack(head[SYNC_LEN:])
        payload = f.read(length)
        if len(payload) != length:
            raise InputError(f"{path}: truncated record chunk at offset {pos}")
        yield pos, payload
        pos += SYNC_LEN + _LEN.size + length


def decode_chunk(payload: bytes) -> list:
    """Every record of one chunk payload as a ``[key, value]`` list, decoded in one pass."""
    unpacker = codec.make_unpacker()
    unpacker.feed(payload)
    records = list(unpacker)
    try:
        sizes = set(map(len, records))          # one C-level pass: every record a [key, value] pair
    except TypeError:
        sizes = {None}
    if sizes - {2}:
        raise InputError("a record chunk holds an item that is not a [key, value] record")
    return records


def iter_records(payload: bytes) -> Iterator[tuple]:
    """The ``(key, value)`` pairs of one chunk payload."""
    unpacker = codec.make_unpacker()
    unpacker.feed(payload)
    for item in unpacker:
        yield item[0], item[1]
