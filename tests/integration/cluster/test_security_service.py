"""The HTTP service on a keyed cluster runs as its own principal (role ``service``), never with a
shared secret or an admin key: the NameNode checks and records the HTTP user it acts for, and a job
it submits for a user belongs to that user (a user's own key cannot claim another submitter).
"""
import os

import httpx
import pytest

import mapred
from mapred.runtime.procs import Cluster
from mapred.security.keys import AuthorizedKeys, KeyDir
from mapred.service.tokens import TokenStore
from mapred.storage.client import Client
from mapred.testing import assert_matches_reference

from clusterkit import FAST, wordcount, write_text

W = "/webhdfs/v1"


def _put(c, path, data):
    r = c.put(W + path, params={"op": "CREATE"})
    if r.status_code == 307:
        r = c.put(r.headers["location"], content=data, headers={"content-type": "application/octet-stream"})
    return r


@pytest.mark.timeout(180)
def test_the_service_acts_for_the_http_user_with_its_own_key(tmp_path, monkeypatch):
    keydir = KeyDir(str(tmp_path / "keys"))
    for name, role in [("admin", "admin"), ("alice", "user"), ("bob", "user")]:
        keydir.ensure(name, role)
    monkeypatch.setenv("MAPRED_KEYS", keydir.path)
    monkeypatch.setenv("MAPRED_PRINCIPAL", "admin")
    monkeypatch.delenv("MAPRED_SECRET", raising=False)
    token_file = str(tmp_path / "tokens.json")
    tok = {u: TokenStore(token_file).create(u, "user")[0] for u in ("alice", "bob")}
    with Cluster(str(tmp_path / "c"), workers=1, slots=1, datanodes=2, service=True, token_file=token_file,
                 block_size=1 << 20, **FAST) as cluster:
        roles = {p.name: p.role.value for _, p in AuthorizedKeys(keydir.authorized).entries()}
        assert roles["service"] == "service"                     # its own key, not the master's
        client = {u: httpx.Client(base_url=cluster.service_url, timeout=30,
                                  headers={"Authorization": f"Bearer {tok[u]}"}) for u in tok}
        admin = Client(cluster.storage.namenode_addr)
        try:
            assert _put(client["alice"], "/user/alice/a.txt", b"hello").status_code == 201
            assert admin.stat("/user/alice/a.txt")["owner"] == "alice"     # recorded as the HTTP user
            assert admin.stat("/user")["owner"] == ""                      # a root for every user's home
            assert _put(client["bob"], "/user/bob/b.txt", b"bob").status_code == 201
            assert _put(client["alice"], "/tmp/alice-secret", b"secret").status_code == 201
            monkeypatch.setenv("MAPRED_PRINCIPAL", "alice")
            with Client(cluster.storage.namenode_addr) as as_alice:
                as_alice.chmod("/tmp/alice-secret", 0o600)
            monkeypatch.setenv("MAPRED_PRINCIPAL", "admin")
            # The service's own rule lets anyone read /tmp; the NameNode's owner check still says no.
            r = client["bob"].get(W + "/tmp/alice-secret", params={"op": "OPEN"})
            assert r.status_code == 403 and "bob" in r.text
            assert client["bob"].delete(W + "/tmp/alice-secret", params={"op": "DELETE"}).status_code == 403
            assert client["alice"].get(W + "/tmp/alice-secret", params={"op": "OPEN"}).content == b"secret"
        finally:
            for c in client.values():
                c.close()
            admin.close()

        # A job the service submits for alice (as its batch prediction does) is alice's job.
        path = write_text(tmp_path / "in.txt", 200)
        job = wordcount()
        for key, user, owner in [("service", "alice", "alice"), ("bob", "alice", "bob")]:
            monkeypatch.setenv("MAPRED_PRINCIPAL", key)
            with mapred.connect(cluster.master_addr, user=user) as c:
                result = job.run(path, str(tmp_path / f"out-{key}"), cluster=c)
                assert_matches_reference(job, [path], result)
                assert c.jobs()[-1]["owner"] == owner            # newest last
