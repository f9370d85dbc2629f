"""Sorted runs on disk: one file, a segment per partition, and a small index beside it.

A segment is a msgpack stream of ``[key, [values...]]`` records in key order
(``codec.order_key``), each key once per run; with ``lz4`` the segment is one
LZ4 frame.  The index (``<file>.index``, msgpack) lists each partition's
``offset, length, records`` so that a reducer reads — or fetches over the
network — exactly its byte range, like Hadoop's ``file.out.index``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterable, Iterator

import lz4.frame
import msgpack

from mapred.io import codec

READ_BLOCK = 1 << 20


@dataclass(frozen=True)
class Segment:
    """Where one partition of one run lives, and how to read it."""

    path: str
    offset: int
    length: int
    records: int
    compression: str = "none"


@dataclass
class RunIndex:
    """The per-partition segments of one run file."""

    path: str
    segments: list  # [Segment] indexed by partition
    compression: str = "none"

    def save(self) -> None:
        """Write the index beside its run file."""
        meta = {"compression": self.compression,
                "parts": [[s.offset, s.length, s.records] for s in self.segments]}
        tmp = self.path + ".index.tmp"
        with open(tmp, "wb") as f:
            f.write(msgpack.packb(meta))
        os.replace(tmp, self.path + ".index")

    @classmethod
    def load(cls, path: str) -> "RunIndex":
        """The index of run file ``path``."""
        with open(path + ".index", "rb") as f:
            meta = msgpack.unpackb(f.read())
        comp = meta["compression"]
        return cls(path, [Segment(path, o, n, r, comp) for o, n, r in meta["parts"]], comp)

    @property
    def total_bytes(self) -> int:
        """The run file's size: the sum of its segments."""
        return sum(s.length for s in self.segments)


class RunWriter:
    """Writes one run: call ``write_partition`` in partition order, then ``close``."""

    def __init__(self, path: str, num_partitions: int, compression: str = "none") -> None:
        self.path = path
        self.f: BinaryIO = open(path, "wb")
        self.compression = compression
        self.segments: list[Segment] = []
        self.num_partitions = num_partitions

    def write_partition(self, records: Iterable[tuple[Any, list]], packed_lists: bool = False) -> Segment:
        """Append the next partition's sorted ``(key, values)`` records.

        ``packed_lists``: ``records`` is a list of ``[key, values]`` lists, packed
        as they are by ``map`` in C (the sort buffer's spills give this form).
        """
        start = self.f.tell()
        comp = lz4.frame.LZ4FrameCompressor() if self.compression == "lz4" else None
        emit = self.f.write if comp is None else (lambda data: self.f.write(comp.compress(data)))
        if comp is not None:
            self.f.write(comp.begin())
        if packed_lists:
            count = self._write_lists(records, emit)
        else:
            packer = codec.make_packer(autoreset=False)       # records accumulate in the packer's buffer
            pack, count = packer.pack, 0
            for key, values in records:
                pack([key, values])
                count += 1
                if not count & 1023 and len(packer.getbuffer()) >= READ_BLOCK:
                    emit(packer.bytes())
                    packer.reset()
            emit(packer.bytes())
        if comp is not None:
            self.f.write(comp.flush())
        seg = Segment(self.path, start, self.f.tell() - start, count, self.compression)
        self.segments.append(seg)
        return seg

    @staticmethod
    def _write_lists(records: list, emit) -> int:
        """A partition given as a list of ``[key, values]`` lists: packed by ``map`` in C, 4,096 at a time."""
        pack = codec.make_packer().pack
        for i in range(0, len(records), 4096):
            emit(b"".join(map(pack, records[i:i + 4096])))
        return len(records)

    def close(self) -> RunIndex:
        """Finish the run file and its index."""
        while len(self.segments) < self.num_partitions:
            self.write_partition(())
        self.f.close()
        index = RunIndex(self.path, self.segments, self.compression)
        index.save()
        return index


def _raw_chunks(f: BinaryIO, offset: int, length: int, block: int = READ_BLOCK) -> Iterator[bytes]:
    f.seek(offset)
    left = length
    while left > 0:
        data = f.read(min(block, left))
        if not data:
            raise OSError(f"segment truncated: {left} bytes missing")
        left -= len(data)
        yield data


def _decoded_chunks(chunks: Iterable[bytes], compression: str) -> Iterator[bytes]:
    if compression != "lz4":
        yield from chunks
        return
    dec = lz4.frame.LZ4FrameDecompressor()
    for data in chunks:
        out = dec.decompress(data)
        if out:
            yield out


def iter_segment_chunks(chunks: Iterable[bytes], compression: str) -> Iterator[tuple[Any, list]]:
    """Records of a segment given as raw byte chunks (from a file or the network)."""
    unpacker = codec.make_unpacker()
    for data in _decoded_chunks(chunks, compression):
        unpacker.feed(data)
        yield from unpacker          # [key, values] lists, iterated in C


def read_segment(seg: Segment, block: int = READ_BLOCK) -> Iterator[tuple[Any, list]]:
    """Stream one segment's ``(key, values)`` records from its file, ``block`` bytes at a time."""
    if seg.length == 0:
        return
    with open(seg.path, "rb") as f:
        yield from iter_segment_chunks(_raw_chunks(f, seg.offset, seg.length, block), seg.compression)


def read_segment_bytes(seg: Segment) -> bytes:
    """One segment's raw (possibly compressed) bytes, as served to a remote reducer."""
    with open(seg.path, "rb") as f:
        return b"".join(_raw_chunks(f, seg.offset, seg.length))
