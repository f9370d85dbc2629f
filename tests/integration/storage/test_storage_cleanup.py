"""Trash and retention rules on a real NameNode, through `mapred fs` and `mapred cleanup`."""
import json
import os
import time

import pytest
from click.testing import CliRunner

from mapred.cli import main

RULES = """
max_deletions_per_run = 10

[[rule]]
id = "scratch"
path = "/scratch/*"
expire_after = 0
trash = false

[[rule]]
id = "versions"
path = "/models/m/versions/*"
keep_last = 2
"""


@pytest.mark.timeout(120)
def test_trash_rules_and_dry_run_through_the_cli(make_cluster, tmp_path, monkeypatch):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    cluster = make_cluster(datanodes=1, replication=1,
                           namenode_args=("--cleanup-rules", str(rules)))
    monkeypatch.setenv("MAPRED_USER", "alice")
    runner = CliRunner()

    def run(*args):
        r = runner.invoke(main, list(args))
        assert "Traceback" not in r.output, r.output
        return r

    nn = ("--namenode", cluster.namenode_addr)
    c = cluster.client()
    for i in range(4):
        c.write_bytes(f"/models/m/versions/v{i}/model.bin", b"x" * (10 + i))
    c.write_bytes("/scratch/junk", b"j" * 50)
    c.write_bytes("/data/keep.txt", b"k" * 7)
    c.pin("/models/m/versions/v0", "alias champion")

    # rm goes to the trash; mv restores; --skip-trash does not
    r = run("fs", *nn, "rm", "/data/keep.txt")
    assert r.exit_code == 0 and "/user/alice/.Trash/Current/data/keep.txt" in r.output
    assert run("fs", *nn, "mv", "/user/alice/.Trash/Current/data/keep.txt", "/data/keep.txt").exit_code == 0
    assert c.read_bytes("/data/keep.txt") == b"k" * 7

    dry = json.loads(run("cleanup", *nn, "--dry-run", "--json").output)
    text = run("cleanup", *nn, "--dry-run").output
    assert "[scratch] would DeletePath /scratch/junk" in text
    assert "kept /models/m/versions/v0: pinned by /models/m/versions/v0 (pinned: alias champion)" in text
    real = json.loads(run("cleanup", *nn, "--json").output)
    assert real["actions"] == dry["actions"] and not real["failed"]
    assert sorted(a["path"] for a in real["actions"]) == ["/models/m/versions/v1", "/scratch/junk"]
    assert not c.exists("/scratch/junk")
    assert sorted(e["path"].rsplit("/", 1)[1] for e in c.ls("/models/m/versions")) == ["v0", "v2", "v3"]
    assert c.exists("/user/mapred/.Trash/Current/models/m/versions/v1/model.bin")

    status = json.loads(run("cleanup", *nn, "status").output)
    assert status["metrics"]["by_rule"]["scratch"]["bytes_freed"] == 50
    assert status["metrics"]["pins_honoured"] >= 1 and status["metrics"]["runs"] == 1

    # replace the rules through the NameNode (as the REST PUT does); they are saved to the file
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"rule": [{"id": "all-tmp", "path": "/tmp/**", "expire_after": "1d"}]}))
    shown = json.loads(run("cleanup", *nn, "rules", str(other)).output)
    assert [r["id"] for r in shown["rules"]] == ["all-tmp"]
    assert "all-tmp" in rules.read_text()

    r = run("fs", *nn, "rm", "-r", "--skip-trash", "/data")
    assert r.exit_code == 0 and "deleted" in r.output and not c.exists("/data")
    assert not c.exists("/user/alice/.Trash/Current/data/keep.txt")
    run("fs", *nn, "rm", "/models/m/versions/v3/model.bin")
    r = run("fs", *nn, "expunge", "--immediate")
    assert r.exit_code == 0 and "expunged /user/alice/.Trash/Current" in r.output
    assert not c.exists("/user/alice/.Trash/Current")
    r = run("cleanup", *nn, "rules", str(tmp_path / "missing.toml"))
    assert r.exit_code == 2
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nid = "x"\npath = "tmp"\nexpire_after = "7d"\n')
    r = run("cleanup", *nn, "rules", str(bad))
    assert r.exit_code == 1 and "must be absolute" in r.output


@pytest.mark.timeout(180)
def test_the_namenode_keeps_answering_during_a_large_rule_run(make_cluster, tmp_path):
    """60,000 files: the run walks, plans and deletes in slices while a client's requests are answered."""
    from mapred.storage.journal import Journal
    from mapred.storage.namespace import Namespace

    name_dir = tmp_path / "c0" / "nn" / "name"
    journal = Journal(str(name_dir))
    ns: Namespace = journal.load()
    old = time.time() - 30 * 86400
    for i in range(300):
        for j in range(200):
            for op in ns.add_file_ops(f"/big/d{i:03d}/f{j:03d}", 1, 1 << 20, [], old):
                ns.apply(op)
    for op in ns.add_file_ops("/keep/file", 1, 1 << 20, [], time.time()):
        ns.apply(op)
    journal.checkpoint(ns)
    journal.close()
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"max_deletions_per_run": 100000,
                                 "rule": [{"id": "big", "path": "/big/*", "expire_after": "1d",
                                           "trash": False}]}))
    cluster = make_cluster(datanodes=0, replication=1, namenode_args=("--cleanup-rules", str(rules)))
    c = cluster.client()
    dry = c.cleanup_run(dry_run=True)
    assert len(dry["actions"]) == 300 and dry["walked"] >= 60300
    run = c.cleanup_run_start()["run"]
    answered_mid_run, states = 0, set()
    while True:
        before = c.cleanup_run_status(run)["state"]
        assert c.stat("/keep/file")["type"] == "file"          # an ordinary request, mid-run
        after = c.cleanup_run_status(run)
        if after["state"] in ("done", "failed"):
            break
        if before not in ("done", "failed"):
            answered_mid_run += 1
            states |= {before, after["state"]}
    report = after["report"]
    same = lambda actions: [{k: v for k, v in a.items() if k != "reason"} for a in actions]
    assert after["state"] == "done" and same(report["actions"]) == same(dry["actions"])   # ages moved on
    assert not report["failed"] and not report["skipped"]
    assert c.ls("/big") == [] and c.exists("/keep/file")
    # the NameNode answered while the run walked, planned and applied (it walks 2,000 nodes a
    # step and deletes at most 4,096 files a step, answering waiting requests in between)
    assert answered_mid_run >= 10, (answered_mid_run, states)
    assert "applying" in states
    status = c.cleanup_status()["metrics"]
    assert status["by_rule"]["big"]["files_freed"] == 60000 and status["runs"] == 1


@pytest.mark.timeout(120)
def test_the_trash_owner_is_the_key_not_the_name_a_request_claims(make_cluster, tmp_path, monkeypatch):
    """With keys, a user key's rm goes to its own trash whatever user it names; an admin key (the
    service acting for the user it authenticated) names the user; cleanup needs an admin key."""
    from mapred.errors import MapredError
    from mapred.security.keys import KeyDir
    from mapred.storage.client import Client
    from storagekit import FAST_ENV

    keydir = KeyDir(str(tmp_path / "keys"))
    keydir.ensure("root", "admin")
    keydir.ensure("alice", "user")
    monkeypatch.setenv("MAPRED_KEYS", keydir.path)
    monkeypatch.delenv("MAPRED_SECRET", raising=False)
    monkeypatch.setenv("MAPRED_PRINCIPAL", "root")
    cluster = make_cluster(datanodes=1, replication=1, env={**FAST_ENV, "MAPRED_KEYS": keydir.path})
    admin = Client(cluster.namenode_addr)
    monkeypatch.setenv("MAPRED_PRINCIPAL", "alice")
    alice = Client(cluster.namenode_addr)
    try:
        alice.write_bytes("/data/a.txt", b"a")
        alice.write_bytes("/data/b.txt", b"b")
        assert alice.rm("/data/a.txt", trash=True, user="bob") == "/user/alice/.Trash/Current/data/a.txt"
        assert not alice.exists("/user/bob")
        assert admin.rm("/data/b.txt", trash=True, user="carol") == "/user/carol/.Trash/Current/data/b.txt"
        with pytest.raises(MapredError, match="not_admin"):
            alice.cleanup_run()
        with pytest.raises(MapredError, match="not_admin"):
            alice.cleanup_rules({"rule": []})
        assert admin.cleanup_run(dry_run=True)["actions"] == []
        _service_deletes_into_the_token_users_trash(cluster, admin, tmp_path)
    finally:
        admin.close()
        alice.close()


def _service_deletes_into_the_token_users_trash(cluster, admin, tmp_path):
    """End to end with keys: the service (an admin key) deletes for the user its token names."""
    import subprocess
    import sys

    import httpx

    from mapred.runtime.procs import kill_pids, wait_for
    from mapred.service.tokens import TokenStore

    tokens = str(tmp_path / "tokens.json")
    tess, _ = TokenStore(tokens).create("tess", "user")
    ready = str(tmp_path / "service.url")
    env = {**os.environ, "MAPRED_PRINCIPAL": "root"}
    with open(tmp_path / "service.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "mapred", "serve", "--namenode", cluster.namenode_addr,
                                 "--port", "0", "--any-port", "--token-file", tokens, "--ready-file", ready],
                                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        url = wait_for(lambda: os.path.exists(ready) and open(ready).read().strip(), 30, "the service")
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tess}"}, timeout=30) as http:
            r = http.put("/webhdfs/v1/user/tess/x.txt", params={"op": "CREATE"})
            assert http.put(r.headers["location"], content=b"tess's").status_code == 201
            r = http.delete("/webhdfs/v1/user/tess/x.txt", params={"op": "DELETE", "user.name": "root"})
            assert r.json() == {"boolean": True}
        assert admin.read_bytes("/user/tess/.Trash/Current/user/tess/x.txt") == b"tess's"
        assert not admin.exists("/user/root/.Trash")
    finally:
        kill_pids([proc.pid])
        proc.wait(10)
