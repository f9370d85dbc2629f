"""Keep freed multi-MiB read buffers in the process (glibc), so streaming reads reuse their pages.

A streaming read (``BlockReader.chunks`` and ``pieces``: ``mapred fs get``,
the service's WebHDFS OPEN) allocates a 4-8 MiB piece in a read-ahead thread
and frees it in another thread once it is written or sent.  With glibc's
defaults such a buffer goes back to the kernel when freed (it was mmapped, or
its thread's arena is trimmed past 128 KiB), so the next piece faults in and
zeroes every page again: measured on a 2-core VM, that doubles the CPU cost
of reading a block file into memory (about 0.4 against 0.2 s per GiB, page
faults and page clearing showing under the copy in ``perf``).

``keep_read_buffers()`` raises the mmap threshold to 32 MiB (the most glibc
allows; a block buffer of 64 MiB is still mmapped and returned when freed)
and the trim threshold to 64 MiB, so up to that much freed memory stays in
each arena for the next pieces.  It is process-wide, so it is called by the
processes that stream files, not by the library: ``mapred serve`` and
``mapred fs``.  Elsewhere (musl, macOS) it does nothing.
"""
from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger("mapred.storage.malloc")

M_TRIM_THRESHOLD = -1     # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 64 << 20


def keep_read_buffers() -> bool:
    """Tune this process's glibc allocator for streaming reads; ``True`` if it was applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt        # the C library this process already runs on
        gnu = ctypes.CDLL(None).gnu_get_libc_version
    except (OSError, AttributeError):              # not glibc: leave the allocator alone
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    gnu.restype = ctypes.c_char_p
    log.debug("glibc %s: read buffers kept (mmap threshold %d, trim threshold %d): %s",
              gnu().decode(), MMAP_THRESHOLD, TRIM_THRESHOLD, ok)
    return ok
