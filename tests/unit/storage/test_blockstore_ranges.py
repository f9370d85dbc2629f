"""Range reads of a block file verify whole chunks but return exactly the bytes asked for."""
import os

from hypothesis import given, settings, strategies as st

from mapred.storage import blockstore as bs


@settings(max_examples=150, deadline=None)
@given(size=st.integers(0, 5000), offset=st.integers(0, 5000), length=st.integers(-1, 5000),
       chunk=st.sampled_from([64, 100, 512, 4096]))
def test_any_range_reads_back_verified(tmp_path_factory, size, offset, length, chunk):
    data = os.urandom(size)
    path = str(tmp_path_factory.mktemp("blk") / "blk_1")
    with open(path, "wb") as f:
        f.write(data)
    with open(path + ".meta", "wb") as f:
        f.write(bs.meta_bytes(bs.chunk_crcs(data, chunk), chunk))
    offset = min(offset, size)
    got, total = bs.read_verified(path, offset, length, expect_length=size)
    assert total == size
    assert got == (data[offset:] if length < 0 else data[offset:offset + length])
