"""Files of every awkward size come back byte-identical, through local and remote reads."""
import pytest
from hypothesis import given, settings, strategies as st

from mapred.errors import FileExists, FileNotFound, StorageError
from mapred.storage import Client

from storagekit import BLOCK, payload, sha

SIZES = [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, int(3.5 * BLOCK)]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("short_circuit", [True, False], ids=["local", "remote"])
def test_sizes_round_trip(shared_cluster, short_circuit):
    c = Client(shared_cluster.namenode_addr, short_circuit=short_circuit)
    for n in SIZES:
        data = payload(n)
        path = f"/rt/{short_circuit}/f{n}"
        c.mkdir(f"/rt/{short_circuit}", parents=True)
        c.write_bytes(path, data)
        assert sha(c.read_bytes(path)) == sha(data), n
        assert c.stat(path)["length"] == n
        assert c.stat(path)["blocks"] == -(-n // BLOCK)
    c.close()


@pytest.mark.timeout(120)
@settings(max_examples=12, deadline=None)
@given(size=st.integers(0, 5 * 65536), block_kib=st.sampled_from([64, 128, 192]),
       rep=st.integers(1, 3))
def test_hypothesis_sizes_and_block_sizes(shared_cluster, size, block_kib, rep):
    c = shared_cluster.client()
    data = payload(size, seed=block_kib)
    path = f"/hyp/{size}-{block_kib}-{rep}"
    c.write_bytes(path, data, overwrite=True, block_size=block_kib * 1024, replication=rep)
    assert c.read_bytes(path) == data
    assert [length for _, length, _ in c.block_locations(path)] == \
        [min(block_kib * 1024, size - o) for o in range(0, size, block_kib * 1024)]


@pytest.mark.timeout(60)
def test_seek_and_partial_reads(shared_cluster):
    c = shared_cluster.client()
    data = payload(3 * BLOCK + 77, seed=3)
    c.write_bytes("/seek", data, overwrite=True)
    with c.open("/seek") as f:
        for pos in [0, 5, BLOCK - 3, BLOCK, 2 * BLOCK + 1, len(data) - 2, len(data)]:
            f.seek(pos)
            assert f.read(10) == data[pos:pos + 10]
        f.seek(BLOCK - 10)
        line_end = f.read(BLOCK + 20)
        assert line_end == data[BLOCK - 10: 2 * BLOCK + 10]


@pytest.mark.timeout(60)
def test_namespace_operations_and_errors(shared_cluster, tmp_path):
    c = shared_cluster.client()
    c.mkdir("/ns/a/b", parents=True)
    c.write_bytes("/ns/a/b/f", b"hello")
    with pytest.raises(FileExists):
        c.write_bytes("/ns/a/b/f", b"again")
    c.write_bytes("/ns/a/b/f", b"again", overwrite=True)
    assert c.read_bytes("/ns/a/b/f") == b"again"
    c.mv("/ns/a/b/f", "/ns/g")
    assert not c.exists("/ns/a/b/f") and c.read_bytes("/ns/g") == b"again"
    with pytest.raises(FileNotFound, match="/ns/missing"):
        c.read_bytes("/ns/missing")
    for bad in ["/ns/../etc", "/ns//x", "relative", "/a\x00b"]:
        with pytest.raises(StorageError):
            c.mkdir(bad)
    with pytest.raises(StorageError, match="non-empty"):
        c.rm("/ns/a")
    c.rm("/ns/a", recursive=True)
    assert [e["path"] for e in c.ls("/ns")] == ["/ns/g"]
    local = tmp_path / "x.bin"
    local.write_bytes(payload(BLOCK * 2 + 5))
    assert c.put(str(local), "/ns/put") == BLOCK * 2 + 5
    c.get("/ns/put", str(tmp_path / "y.bin"))
    assert (tmp_path / "y.bin").read_bytes() == local.read_bytes()


@pytest.mark.timeout(60)
def test_file_invisible_until_writer_closes(shared_cluster):
    c = shared_cluster.client()
    w = c.open("/vis", "wb")
    w.write(payload(BLOCK * 2))          # two blocks already down the pipeline
    assert not c.exists("/vis")
    w.close()
    assert c.stat("/vis")["length"] == BLOCK * 2
    with pytest.raises(RuntimeError):
        with c.open("/vis2", "wb") as w2:
            w2.write(b"x" * 10)
            raise RuntimeError("writer dies")
    assert not c.exists("/vis2")


@pytest.mark.timeout(60)
def test_replication_above_live_datanodes_is_accepted(shared_cluster):
    c = shared_cluster.client()
    c.write_bytes("/rep5", payload(1000), replication=5)
    assert c.read_bytes("/rep5") == payload(1000)
    report = c.fsck("/rep5")
    assert report["healthy"] and report["under_replicated"] == 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize("short_circuit", [True, False], ids=["local", "remote"])
def test_reads_inside_a_block_larger_than_one_fetch(shared_cluster, short_circuit):
    """Fetches that start and end mid-chunk, well inside a block (not at its end)."""
    c = Client(shared_cluster.namenode_addr, short_circuit=short_circuit)
    data = payload(20 * 1024 * 1024 + 3, seed=21)
    c.write_bytes("/big-block", data, overwrite=True, block_size=32 * 1024 * 1024)
    with c.open("/big-block") as f:
        for pos in [1, 65537, 5 * 1024 * 1024 + 17, len(data) - 9]:
            f.seek(pos)
            assert f.read(100) == data[pos:pos + 100]
    assert sha(c.read_bytes("/big-block")) == sha(data)
    c.close()
