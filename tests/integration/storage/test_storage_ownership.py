"""File ownership in the NameNode, with two users' keys: owners and permission bits are checked on
every path operation, journaled, checkpointed and restored after a restart; admin may do anything.
"""
import signal

import pytest

from mapred.errors import PermissionDenied
from mapred.security.keys import KeyDir
from mapred.storage.client import Client
from mapred.storage.minicluster import StorageCluster

from storagekit import BLOCK, FAST_ENV, payload


@pytest.fixture
def keyed_store(tmp_path, monkeypatch):
    keydir = KeyDir(str(tmp_path / "keys"))
    for name, role in [("root", "admin"), ("alice", "user"), ("bob", "user")]:
        keydir.ensure(name, role)
    monkeypatch.setenv("MAPRED_KEYS", keydir.path)
    monkeypatch.delenv("MAPRED_SECRET", raising=False)
    monkeypatch.setenv("MAPRED_PRINCIPAL", "root")
    clients = {}

    def as_user(name):
        """A client with ``name``'s key (each client's sockets are made while that key is set)."""
        monkeypatch.setenv("MAPRED_PRINCIPAL", name)
        if name not in clients:
            clients[name] = Client(cluster.namenode_addr, short_circuit=False)
        return clients[name]

    cluster = StorageCluster(tmp_path / "c", datanodes=2, replication=2, block_size=BLOCK,
                             env=FAST_ENV, checkpoint_every=6)
    with cluster:
        try:
            yield cluster, as_user, clients
        finally:
            for c in clients.values():
                c.close()


def _denied(fn, *args, **kw):
    with pytest.raises(PermissionDenied):
        fn(*args, **kw)


@pytest.mark.timeout(120)
def test_two_users_own_their_files_and_admin_may_do_anything(keyed_store):
    cluster, as_user, clients = keyed_store
    as_user("root").mkdir("/home", mode=0o777)                 # a shared directory
    alice = as_user("alice")
    data, secret = payload(BLOCK + 7, seed=1), payload(300, seed=2)
    alice.write_bytes("/home/alice/pub", data)                 # default 0644, parent 0755, both hers
    with alice.open("/home/alice/secret", "wb", permission=0o600) as f:
        f.write(secret)
    alice.mkdir("/home/alice/private", mode=0o700)
    alice.write_bytes("/home/alice/private/notes", b"mine")
    st = alice.stat("/home/alice/pub")
    assert (st["owner"], st["mode"]) == ("alice", 0o644)
    assert alice.stat("/home/alice")["owner"] == "alice"
    assert alice.read_bytes("/home/alice/secret") == secret

    def bob_is_kept_out(bob):
        assert bob.read_bytes("/home/alice/pub") == data       # readable by all: 0644
        _denied(bob.read_bytes, "/home/alice/secret")          # 0600
        _denied(bob.ls, "/home/alice/private")                 # 0700: no listing ...
        _denied(bob.read_bytes, "/home/alice/private/notes")   # ... and no way through it
        _denied(bob.write_bytes, "/home/alice/pub", b"x", overwrite=True)
        _denied(bob.write_bytes, "/home/alice/new", b"x")      # not his directory
        _denied(bob.rm, "/home/alice/pub")
        _denied(bob.rm, "/home/alice", recursive=True)         # the shared dir's sticky rule
        _denied(bob.rm, "/home/alice/pub", trash=True)
        _denied(bob.mv, "/home/alice/pub", "/home/stolen")
        _denied(bob.chmod, "/home/alice/secret", 0o644)
        _denied(bob.chmod, "/home/alice/pub", owner="bob")
        bob.write_bytes("/home/bob/mine", b"bob's")            # his own corner of /home
        assert bob.stat("/home/bob/mine")["owner"] == "bob"

    bob_is_kept_out(as_user("bob"))
    assert alice.read_bytes("/home/alice/pub") == data and alice.read_bytes("/home/alice/secret") == secret

    # Journaled and checkpointed: a NameNode killed and restarted keeps every owner and bit.
    for c in clients.values():
        c.close()
    clients.clear()
    cluster.restart_namenode(sig=signal.SIGKILL)
    assc = as_user("alice").stat("/home/alice/secret")
    assert (assc["owner"], assc["mode"]) == ("alice", 0o600)
    bob = as_user("bob")
    _denied(bob.read_bytes, "/home/alice/secret")
    _denied(bob.rm, "/home/alice", recursive=True)

    # An admin may read and delete anyone's files, and give them away.
    root = as_user("root")
    assert root.read_bytes("/home/alice/secret") == secret
    root.chmod("/home/alice/pub", owner="bob")
    assert as_user("bob").stat("/home/alice/pub")["owner"] == "bob"
    as_user("bob").write_bytes("/home/alice/pub", b"his now", overwrite=True)
    _denied(as_user("bob").rm, "/home/alice/pub")             # removing needs w on her directory
    root.rm("/home/alice", recursive=True)
    assert not root.exists("/home/alice")
    refusals = root.refusals()
    assert refusals.get("permission_denied", 0) >= 3           # counted since the restart
    assert as_user("alice").read_bytes("/home/bob/mine") == b"bob's"
