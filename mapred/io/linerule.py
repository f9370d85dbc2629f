"""Where a split's first line starts: the first half of Hadoop's line rule.

A text split that does not begin a line leaves the line it starts inside to
the previous split, which reads past its own end to finish it. Only the byte
before ``start`` tells: a newline there means ``start`` begins a line of its
own. The plain text reader (``io/inputs``) and the record formats' line
blocks (``formats/base``) both start here, so they can never disagree about
which split owns a line.
"""
from __future__ import annotations

from typing import BinaryIO

SCAN_CHUNK = 1 << 20     # read size while looking for the end of a partial line


def first_line_start(f: BinaryIO, start: int, chunk: int = SCAN_CHUNK) -> tuple[int, int]:
    """``(offset, bytes_read)``: where the first line owned by a split at ``start`` begins.

    The offset is ``start`` itself when it begins a line, otherwise just past
    the first newline at or after ``start`` (the end of the file if none);
    ``bytes_read`` is what finding it cost, for the reader's counters.
    """
    if start <= 0:
        return 0, 0
    f.seek(start - 1)
    if f.read(1) == b"\n":
        return start, 1
    read, pos = 1, start
    while True:
        data = f.read(chunk)
        read += len(data)
        if not data:
            return pos, read
        i = data.find(b"\n")
        if i >= 0:
            return pos + i + 1, read
        pos += len(data)
