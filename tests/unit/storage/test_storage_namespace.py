"""The namespace tree, fed ops directly: no sockets, no clock."""
import pytest

from mapred.errors import FileExists, FileNotFound, StorageError
from mapred.storage.namespace import InvalidPath, Namespace, normalize


def commit(ns, ops):
    for op in ops:
        ns.apply(op)


@pytest.mark.parametrize("bad", ["", "a/b", "/a/../b", "/a//b", "/a/./b", "/a\x00b", 5, "/" + "x" * 300])
def test_bad_paths_are_refused_by_name(bad):
    with pytest.raises(InvalidPath):
        normalize(bad)


def test_normalize_strips_trailing_slash():
    assert normalize("/a/b/") == "/a/b" and normalize("/") == "/"


def test_mkdir_create_list_rename_delete():
    ns = Namespace()
    with pytest.raises(FileNotFound):
        ns.mkdir_ops("/a/b", False, 1.0)
    commit(ns, ns.mkdir_ops("/a/b", True, 1.0))
    commit(ns, ns.add_file_ops("/a/b/f", 3, 100, [[1, 100], [2, 5]], 2.0))
    assert ns.status("/a/b/f")["length"] == 105
    assert [e["path"] for e in ns.listing("/a")] == ["/a/b"]
    with pytest.raises(FileExists):
        ns.check_create("/a/b/f", overwrite=False)
    with pytest.raises(FileExists):
        ns.check_create("/a/b/f/g", overwrite=False)
    commit(ns, ns.mkdir_ops("/c", False, 3.0))
    commit(ns, ns.rename_ops("/a/b", "/c", 4.0))          # into a directory
    assert ns.status("/c/b/f")["blocks"] == 2
    with pytest.raises(StorageError, match="into itself"):
        ns.rename_ops("/c", "/c/b/x", 5.0)
    with pytest.raises(StorageError, match="non-empty"):
        ns.delete_ops("/c", False)
    commit(ns, ns.delete_ops("/c", True))
    assert ns.lookup("/c") is None
    assert ns.txid == 6


def test_image_round_trip():
    ns = Namespace()
    commit(ns, ns.add_file_ops("/x/y", 2, 10, [[9, 10]], 1.0))
    again = Namespace.from_image(ns.image())
    assert again.image() == ns.image()
    assert list(again.all_blocks()) == [(9, 10, "/x/y", 2)]
