"""``concat``: the blocks of closed files move onto the end of another (what WebHDFS APPEND is built on)."""
import pytest

from mapred.errors import FileNotFound, StorageError
from mapred.storage.journal import Journal
from mapred.storage.namespace import Namespace

from test_storage_namesystem import make, write_file


def test_concat_moves_blocks_in_order_and_removes_sources():
    core, logged = make()
    write_file(core, "/t", 2, block_id=100)
    write_file(core, "/a", 1, block_id=200)
    write_file(core, "/b", 2, block_id=300)
    core.concat("/t", ["/a", "/b"], 5.0)
    assert [b[0] for b in core.ns.get_file("/t").blocks] == [100, 101, 200, 300, 301]
    length, blocks = core.locations("/t")
    assert length == 50 and [b[1] for b in blocks] == [0, 10, 20, 30, 40]   # (block, offset, length, ...)
    for gone in ("/a", "/b"):
        with pytest.raises(FileNotFound):
            core.status(gone)
    assert core.bmap.blocks[300].path == "/t"
    assert logged[-1] == [{"op": "concat", "target": "/t", "sources": ["/a", "/b"], "mtime": 5.0}]
    core.validate()


@pytest.mark.parametrize("target,sources,err", [
    ("/t", ["/t"], StorageError), ("/t", [], StorageError), ("/t", ["/a", "/a"], StorageError),
    ("/nope", ["/a"], FileNotFound), ("/t", ["/nope"], FileNotFound), ("/d", ["/a"], StorageError)])
def test_bad_concat_changes_nothing(target, sources, err):
    core, logged = make()
    write_file(core, "/t", 1, block_id=100)
    write_file(core, "/a", 1, block_id=200)
    core.mkdir("/d", False, 0.0)
    before = core.ns.image()
    with pytest.raises(err):
        core.concat(target, sources, 1.0)
    assert core.ns.image() == before


def test_concat_replays_from_the_journal(tmp_path):
    j = Journal(str(tmp_path))
    ns = j.load()
    for i, path in enumerate(["/t", "/s"]):
        ops = ns.add_file_ops(path, 3, 10, [[i + 1, 10]], 0.0)
        j.append(ops, ns.txid + len(ops))
        for op in ops:
            ns.apply(op)
    ops = ns.concat_ops("/t", ["/s"], 1.0)
    j.append(ops, ns.txid + len(ops))
    ns.apply(ops[0])
    j.close()
    again = Journal(str(tmp_path)).load()
    assert again.image() == ns.image() and again.get_file("/t").blocks == [[1, 10], [2, 10]]
    assert isinstance(Namespace.from_image(ns.image()).lookup("/s"), type(None))
