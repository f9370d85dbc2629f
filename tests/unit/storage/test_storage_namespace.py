"""The namespace tree, fed ops directly: no sockets, no clock."""
import pytest

from mapred.errors import FileExists, FileNotFound, PermissionDenied, StorageError
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


def test_owners_and_permission_bits_survive_the_journal_ops_and_the_image():
    from mapred.storage import permissions as perm
    ns = Namespace()
    for op in ns.mkdir_ops("/home", False, 1.0, "root", 0o777):
        ns.apply(op)
    for op in ns.mkdir_ops("/home/alice", False, 1.0, "alice"):
        ns.apply(op)
    for op in ns.add_file_ops("/home/alice/f", 3, 1024, [], 2.0, "alice", 0o600):
        ns.apply(op)
    for op in ns.chmod_ops("/home/alice", 0o700, None):
        ns.apply(op)
    again = Namespace.from_image(ns.image())
    for tree in (ns, again):
        assert (tree.lookup("/home/alice/f").owner, tree.lookup("/home/alice/f").mode) == ("alice", 0o600)
        assert tree.lookup("/home/alice").mode == 0o700 and tree.lookup("/home").mode == 0o777
        bob, alice = perm.Caller("bob"), perm.Caller("alice")
        with pytest.raises(PermissionDenied):
            perm.check(tree, bob, "/home/alice/f", perm.READ, "read")
        perm.check(tree, alice, "/home/alice/f", perm.READ, "read")
        with pytest.raises(PermissionDenied):
            perm.check_remove(tree, bob, "/home/alice", True)
        perm.check_remove(tree, perm.Caller("root", superuser=True), "/home/alice", True)
    old = Namespace.from_image({"txid": 1, "root": {"d": 0.0, "c": {"f": {"f": [3, 1024, 0.0, []]}}}})
    assert old.lookup("/f").owner == "" and perm.allows(old.lookup("/f"), perm.Caller("x"), perm.WRITE)
