"""A short-circuit read (the replica's block file read by the client itself) checks every chunk once.

Once, not twice: the client's end-to-end check (``check_replica``: the CRC
list against the NameNode's digest, every chunk against the list) is the
only pass over the bytes; ``read_aligned(verify=False)`` skips the copy of it
that used to run first.  And never zero times: a chunk corrupt in every
local copy fails the read of any range touching it (after the fresh looks at
the block's locations), while ranges around it read right.
"""
import pytest

from mapred import errors
from mapred.storage import blockstore as bs
from mapred.storage import client as client_mod
from mapred.storage.client import Client

from storagekit import BLOCK, payload


class CountingCrc:
    """The ``crc32c`` module as blockstore sees it, counting the bytes each CRC covers."""

    def __init__(self, real) -> None:
        self.real, self.bytes = real, 0

    def crc32c(self, data, *args, **kw):
        self.bytes += len(data)
        return self.real.crc32c(data, *args, **kw)


@pytest.fixture
def crc_bytes(monkeypatch):
    counter = CountingCrc(bs.crc32c)
    monkeypatch.setattr(bs, "crc32c", counter)
    return counter


def _covering(offset: int, end: int, block_starts: list[int], chunk: int = bs.CHUNK) -> int:
    """Bytes of the whole chunks covering ``[offset, end)``, block by block (a CRC covers a whole chunk)."""
    total = 0
    for start, stop in zip(block_starts, block_starts[1:]):
        lo, hi = max(offset, start) - start, min(end, stop) - start
        if lo < hi:
            total += min(stop - start, -(-hi // chunk) * chunk) - lo // chunk * chunk
    return total


@pytest.mark.timeout(60)
def test_short_circuit_read_verifies_each_chunk_exactly_once(shared_cluster, crc_bytes):
    writer = shared_cluster.client()
    data = payload(2 * BLOCK + 100_000, seed=21)
    writer.write_bytes("/sc/once", data)
    reader = Client(shared_cluster.namenode_addr, short_circuit=True)
    starts = [0, BLOCK, 2 * BLOCK, len(data)]

    crc_bytes.bytes = 0
    assert reader.read_bytes("/sc/once") == data
    assert crc_bytes.bytes == len(data)                      # every byte once: not twice, not never

    for offset, end, piece in ((70_000, 2 * BLOCK + 3, 2 * bs.CHUNK), (BLOCK - 1, BLOCK + 1, 1 << 20),
                               (5, len(data), BLOCK), (100, 2 * BLOCK - 100, 3 * bs.CHUNK)):
        r = client_mod.BlockReader(reader, "/sc/once")
        r.seek(offset)
        crc_bytes.bytes = 0
        assert b"".join(r.chunks(end=end, piece=piece)) == data[offset:end]
        # pieces are cut at multiples of ``piece`` in a block: no chunk is read by two of them
        assert crc_bytes.bytes == _covering(offset, end, starts), (offset, end, piece)
    reader.close()


@pytest.mark.timeout(90)
def test_a_chunk_corrupt_in_every_local_copy_fails_every_range_touching_it(make_cluster, monkeypatch):
    monkeypatch.setattr(client_mod, "REPLICA_WAITS", (0.0, 0.1))   # two fresh looks, not 7.5 s of them
    cluster = make_cluster(datanodes=2, replication=2)
    c = cluster.client()
    data = payload(3 * BLOCK, seed=22)
    c.write_bytes("/sc/bad", data)
    block_id, _, _, replicas = c.locations("/sc/bad")[1][1][:4]     # the middle block
    bad = BLOCK + 2 * bs.CHUNK + 10                                  # a byte of its third chunk
    for *_, data_dir in replicas:
        with open(bs.block_path(data_dir, block_id), "r+b") as f:    # bytes changed, .meta not
            f.seek(bad - BLOCK)
            f.write(bytes([data[bad] ^ 0x5A]))
    local = Client(cluster.namenode_addr, short_circuit=True)
    # first the ranges around it (before any reader has reported the copies: then none is offered)
    for offset, end in ((0, BLOCK), (BLOCK, BLOCK + 2 * bs.CHUNK), (BLOCK + 3 * bs.CHUNK, 3 * BLOCK)):
        r = client_mod.BlockReader(local, "/sc/bad")
        r.seek(offset)
        assert b"".join(r.chunks(end=end)) == data[offset:end]
    for offset, end in ((bad, bad + 1), (BLOCK, BLOCK + 3 * bs.CHUNK), (0, len(data))):
        r = client_mod.BlockReader(local, "/sc/bad")
        r.seek(offset)
        with pytest.raises(errors.NoLiveReplica, match=f"block {block_id}"):
            b"".join(r.chunks(end=end))
    with pytest.raises(errors.NoLiveReplica):
        local.read_bytes("/sc/bad")
    local.close()
