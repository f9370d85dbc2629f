"""``keep_read_buffers``: read-ahead pieces freed in another thread come back without new page faults.

A streaming read allocates each 4 MiB piece in a pool thread and frees it in
the consumer; with glibc's defaults about 60 % of the pages read were faulted
in (and zeroed) afresh on every pass, with the setting about 10 %.
"""
import os
import resource
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from mapred.storage.malloc import keep_read_buffers

MB = 1 << 20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a glibc setting")
def test_read_ahead_pieces_reuse_their_pages(tmp_path):
    assert keep_read_buffers()
    path = tmp_path / "f"
    path.write_bytes(os.urandom(32 * MB))
    fd = os.open(path, os.O_RDONLY)

    def one_pass():
        with ThreadPoolExecutor(2) as pool:      # as BlockReader.chunks: read in threads, freed here
            for piece in pool.map(lambda off: os.pread(fd, 4 * MB, off), range(0, 32 * MB, 4 * MB)):
                assert len(piece) == 4 * MB
    try:
        one_pass()                               # the first pass faults the pieces' pages in
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(4):
            one_pass()
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    finally:
        os.close(fd)
    pages = 4 * 32 * MB // resource.getpagesize()
    assert faults < pages // 4, f"{faults} page faults for {pages} pages read: freed pieces were not reused"
