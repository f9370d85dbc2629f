"""Finding a sync marker: how a split of a block container finds its first block.

The record file (``io/recordfile``), the sequence file (``formats/seq``) and
Avro (``formats/avro``) all frame their blocks with a 16-byte random marker,
the SequenceFile idea: a split that starts mid-file scans forward to the next
marker, and owns the blocks whose marker *starts* before its end, so every
block is read by exactly one split.
"""
from __future__ import annotations

from typing import BinaryIO

SYNC_LEN = 16
SCAN_CHUNK = 1 << 20


def find_sync(f: BinaryIO, sync: bytes, pos: int, limit: int) -> int:
    """The offset of the first ``sync`` at or after ``pos`` that starts before ``limit``, or -1.

    The scan reads ``SCAN_CHUNK`` bytes at a time and keeps the last
    ``len(sync) - 1`` bytes of each chunk, so a marker straddling two reads is
    found; it goes on while that carried tail still starts before ``limit``
    (a marker starting at ``limit - 1`` may end well past it).
    """
    f.seek(pos)
    keep = len(sync) - 1
    carry, base = b"", pos          # base: the file offset just past what has been read
    while base - len(carry) < limit:
        chunk = f.read(SCAN_CHUNK)
        if not chunk:
            return -1
        data = carry + chunk
        i = data.find(sync)
        if i >= 0:
            found = base - len(carry) + i
            return found if found < limit else -1
        carry = data[-keep:] if keep else b""
        base += len(chunk)
    return -1
