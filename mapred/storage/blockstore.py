"""Block files on a DataNode's disk, with CRC32C checksums over 64 KiB chunks.

Layout under a DataNode data directory::

    dnid                   this DataNode's persistent id
    current/<xx>/blk_<id>        the block's bytes (xx = low byte of the id, hex)
    current/<xx>/blk_<id>.meta   b"MRC2" | u32 chunk size | u64 generation stamp | u32 LE CRC32C
                                 per chunk  (older files: b"MRCK" | u32 chunk size | CRCs)
    tmp/                   blocks being received (wiped at start: never acknowledged)

Paths are built from integer block ids only, so nothing from the network can
steer a file operation outside the data directory.  Every read verifies the
chunks it touches; the same code serves remote reads, short-circuit local
reads by a client on the same host, and the background scanner.  (A
short-circuit reader asks ``read_aligned(..., verify=False)`` because it runs
the end-to-end check below over the same bytes anyway: one pass, not two.)

End to end: the writer's chunk CRCs, hashed (``crc_digest``), are recorded by
the NameNode with the block.  A reader checks the CRC list a replica sends
against that digest and then every chunk against the list (``check_replica``),
so a replica cannot pass off bytes the writer did not write, whatever the
DataNode serving it claims.
"""
from __future__ import annotations

import hashlib
import os
import struct

import crc32c

from mapred.errors import ChecksumError, StorageError

CHUNK = 64 * 1024
MAGIC = b"MRCK"
MAGIC2 = b"MRC2"
_META_HEAD = struct.Struct("<4sI")
_META2_HEAD = struct.Struct("<4sIQ")


class BlockMissing(StorageError):
    """The block file or its checksum file is not on this disk."""


def block_path(data_dir: str, block_id: int) -> str:
    """The file of block ``block_id`` under a DataNode's data directory (fanned out in subdirectories)."""
    block_id = int(block_id)
    if block_id <= 0:
        raise StorageError(f"bad block id {block_id}")
    return os.path.join(data_dir, "current", f"{block_id & 0xFF:02x}", f"blk_{block_id}")


def chunk_crcs(data, chunk: int = CHUNK) -> bytes:
    """CRC32C of each ``chunk``-sized piece of ``data``, packed as u32 LE."""
    view = memoryview(data)
    crcs = [crc32c.crc32c(view[i:i + chunk]) for i in range(0, len(view), chunk)]
    return struct.pack(f"<{len(crcs)}I", *crcs)


def crc_digest(crcs) -> str:
    """The hash of a block's packed chunk CRCs: what the NameNode keeps to check replicas by."""
    return hashlib.blake2b(bytes(crcs), digest_size=16).hexdigest()


def meta_bytes(crcs: bytes, chunk: int = CHUNK, gen: int = 0) -> bytes:
    """A checksum file's bytes; with a generation stamp in the newer format."""
    if gen:
        return _META2_HEAD.pack(MAGIC2, chunk, gen) + crcs
    return _META_HEAD.pack(MAGIC, chunk) + crcs


def read_meta_full(path: str) -> tuple[int, bytes, int]:
    """``(chunk_size, packed crcs, generation stamp or 0)`` of a block's checksum file."""
    try:
        with open(path + ".meta", "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise BlockMissing(f"checksum file {path}.meta is missing") from None
    if len(raw) < _META_HEAD.size:
        raise ChecksumError(f"checksum file {path}.meta is truncated")
    magic, chunk = _META_HEAD.unpack_from(raw)
    head, gen = _META_HEAD.size, 0
    if magic == MAGIC2 and len(raw) >= _META2_HEAD.size:
        _, chunk, gen = _META2_HEAD.unpack_from(raw)
        head = _META2_HEAD.size
    elif magic != MAGIC:
        chunk = 0
    if chunk <= 0 or (len(raw) - head) % 4:
        raise ChecksumError(f"checksum file {path}.meta is damaged")
    return chunk, raw[head:], gen


def read_gen(path: str) -> int:
    """The generation stamp in a block's checksum file (0 for the older format or no file)."""
    try:
        with open(path + ".meta", "rb") as f:
            head = f.read(_META2_HEAD.size)
    except FileNotFoundError:
        return 0
    if len(head) == _META2_HEAD.size and head[:4] == MAGIC2:
        return _META2_HEAD.unpack(head)[2]
    return 0


def read_meta(path: str) -> tuple[int, bytes]:
    """``(chunk_size, packed crcs)`` of a block's checksum file."""
    chunk, crcs, _ = read_meta_full(path)
    return chunk, crcs


def read_aligned(path: str, offset: int = 0, length: int = -1, verify: bool = True) -> tuple:
    """What a DataNode sends for a read: whole verified chunks covering the range.

    ``(raw, first, size, chunk, crcs, gen)``: ``raw`` starts at byte ``first``
    (a chunk boundary), so the reader can check every chunk itself.
    ``verify=False`` only for a caller that runs ``check_replica`` on the
    result before using a byte of it (the short-circuit reader): the chunks
    are then checked once, there, instead of twice.
    """
    chunk, crcs, gen = read_meta_full(path)
    raw, first, size, _ = _read_chunks(path, chunk, crcs, offset, length, None, verify)
    return raw, first, size, chunk, crcs, gen


def check_replica(what: str, raw, first: int, chunk: int, crcs, block_length: int,
                  digest: str) -> None:
    """A reader's end-to-end check of bytes a replica sent; ``ChecksumError`` naming ``what``.

    The CRC list must hash to the NameNode's ``digest`` (when the block has
    one) and cover exactly ``block_length`` bytes; every chunk of ``raw``
    (starting at byte ``first``) must match its CRC.
    """
    crcs = bytes(crcs)
    if digest and crc_digest(crcs) != digest:
        raise ChecksumError(f"{what}: the replica's checksums are not the ones the writer wrote")
    if chunk <= 0 or len(crcs) % 4 or len(crcs) // 4 != -(-block_length // chunk) \
            or first % chunk or first + len(raw) > block_length:
        raise ChecksumError(f"{what}: the replica's checksums do not fit a block of "
                            f"{block_length} bytes")
    _verify(what, raw, first, chunk, crcs)


def read_verified(path: str, offset: int = 0, length: int = -1,
                  expect_length: int | None = None) -> tuple[bytes, int]:
    """``(bytes, block_length)`` of ``[offset, offset+length)``, every touched chunk verified.

    Raises ``BlockMissing`` or ``ChecksumError`` naming the file and chunk.
    """
    chunk, crcs = read_meta(path)
    raw, first, size, end = _read_chunks(path, chunk, crcs, offset, length, expect_length)
    return raw[offset - first:end - first], size

def _read_chunks(path: str, chunk: int, crcs: bytes, offset: int, length: int,
                 expect_length: int | None, verify: bool = True) -> tuple[bytes, int, int, int]:
    """``(raw, first, size, end)``: the verified whole chunks of ``path`` covering ``[offset, end)``.

    Whole chunks because a CRC covers a whole chunk; ``raw`` starts at ``first``.
    """
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            _check_size(path, size, chunk, crcs, expect_length)
            if offset < 0 or offset > size:
                raise StorageError(f"offset {offset} is outside block {path} of {size} bytes")
            end = size if length < 0 else min(size, offset + length)
            first = offset - offset % chunk
            last = min(size, -(-end // chunk) * chunk)
            f.seek(first)
            raw = f.read(last - first)
    except FileNotFoundError:
        raise BlockMissing(f"block file {path} is missing") from None
    if verify:
        _verify(path, raw, first, chunk, crcs)
    return raw, first, size, end



def _check_size(path: str, size: int, chunk: int, crcs: bytes, expect: int | None) -> None:
    if -(-size // chunk) != len(crcs) // 4 or (expect is not None and size != expect):
        raise ChecksumError(f"block file {path} has {size} bytes, which its checksums "
                            f"(or the NameNode) do not expect")


def _verify(path: str, raw, start: int, chunk: int, crcs: bytes) -> None:
    view = memoryview(raw)
    first_index = start // chunk
    for i in range(0, len(view), chunk):
        idx = first_index + i // chunk
        want = struct.unpack_from("<I", crcs, idx * 4)[0]
        if crc32c.crc32c(view[i:i + chunk]) != want:
            raise ChecksumError(f"block file {path}: chunk {idx} (byte {start + i}) "
                                "fails its CRC32C checksum")


def verify_file(path: str) -> int:
    """Verify a whole block file; return its length."""
    chunk, crcs = read_meta(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            _check_size(path, size, chunk, crcs, None)
            pos = 0
            while True:
                raw = f.read(chunk * 64)
                if not raw:
                    return size
                _verify(path, raw, pos, chunk, crcs)
                pos += len(raw)
    except FileNotFoundError:
        raise BlockMissing(f"block file {path} is missing") from None


def scan_dir(data_dir: str) -> dict[int, int]:
    """``{block_id: length}`` of finalized blocks on disk (files with a checksum file)."""
    found = {}
    root = os.path.join(data_dir, "current")
    for sub in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        for name in os.listdir(os.path.join(root, sub)):
            if name.startswith("blk_") and not name.endswith(".meta") and name[4:].isdigit():
                path = os.path.join(root, sub, name)
                if os.path.exists(path + ".meta"):
                    found[int(name[4:])] = os.path.getsize(path)
    return found
