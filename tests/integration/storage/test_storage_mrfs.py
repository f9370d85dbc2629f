"""MrFS: the engine's FileSystem protocol on mrfs:// URIs, against a real cluster."""
import pytest

from mapred.errors import InputError, StorageError
from mapred.io.fs import get_fs
from mapred.storage.fs import MrFS, split_uri

from storagekit import BLOCK, payload


def test_split_uri():
    assert split_uri("mrfs://h:1/a/b/") == ("h:1", "/a/b")
    assert split_uri("mrfs://h:1") == ("h:1", "/")
    with pytest.raises(StorageError):
        split_uri("mrfs:///a")


@pytest.mark.timeout(60)
def test_protocol_methods(shared_cluster):
    root = shared_cluster.namenode_uri
    fs = get_fs(root + "/x")
    assert isinstance(fs, MrFS) and fs is MrFS.for_uri(root + "/y")
    d = fs.join(root, "mrfs-test", "in")
    fs.makedirs(d)
    fs.makedirs(d)
    for name in ["b.txt", "a.txt", "_SUCCESS", ".hidden"]:
        with fs.open_write(fs.join(d, name)) as f:
            f.write(payload(BLOCK + 10) if name == "a.txt" else b"x\n")
    assert fs.isdir(d) and not fs.isdir(fs.join(d, "a.txt"))
    assert fs.listdir(d) == [".hidden", "_SUCCESS", "a.txt", "b.txt"]
    assert fs.expand(d) == [fs.join(d, "a.txt"), fs.join(d, "b.txt")]
    assert fs.expand(root + "/mrfs-test/*/a.*") == [fs.join(d, "a.txt")]
    with pytest.raises(InputError):
        fs.expand(root + "/mrfs-test/nothing")
    assert fs.size(fs.join(d, "a.txt")) == BLOCK + 10
    blocks = fs.block_locations(fs.join(d, "a.txt"), 1 << 40)
    assert [(o, n) for o, n, _ in blocks] == [(0, BLOCK), (BLOCK, 10)]
    assert all(hosts for _, _, hosts in blocks)
    assert len(fs.block_locations(fs.join(d, "a.txt"), BLOCK // 2)) == 3
    with fs.open_read(fs.join(d, "a.txt")) as f:
        f.seek(BLOCK - 2)
        assert f.read(4) == payload(BLOCK + 10)[BLOCK - 2:BLOCK + 2]
    fs.rename(fs.join(d, "b.txt"), fs.join(d, "c.txt"))
    assert fs.exists(fs.join(d, "c.txt")) and not fs.exists(fs.join(d, "b.txt"))
    with fs.open_write(fs.join(d, "c.txt")) as f:       # open_write replaces
        f.write(b"new")
    with fs.open_read(fs.join(d, "c.txt")) as f:
        assert f.read() == b"new"
    fs.delete(fs.join(d, "missing"))                      # not an error, as LocalFS
    fs.delete(root + "/mrfs-test", recursive=True)
    assert not fs.exists(root + "/mrfs-test")


@pytest.mark.timeout(60)
def test_text_lines_across_blocks(shared_cluster):
    """Readline through the buffered reader spans block boundaries."""
    fs = get_fs(shared_cluster.namenode_uri)
    path = shared_cluster.namenode_uri + "/lines.txt"
    lines = [f"line {i} {'x' * (i % 50)}\n".encode() for i in range(20000)]
    with fs.open_write(path) as f:
        f.write(b"".join(lines))
    with fs.open_read(path) as f:
        assert f.readlines() == lines
