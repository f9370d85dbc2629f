"""Secure by default: `mapred cluster up` makes keys and runs keyed; the README's commands need no setting.

The quick start as a user types it (up, fs put, run --master from the store to the store, fs cat,
fsck, down), on a cluster that `cluster up` keyed by itself: a key directory with one key pair per
node and one for the user, every daemon serving with its own pair.  A key the cluster never
admitted, and a client with no key at all, get no answer and run nothing.
"""
import json
import os
import shutil
import subprocess
import sys

import cloudpickle
import psutil
import pytest
import zmq

from mapred.errors import ClusterError
from mapred.net import wire
from mapred.net.transport import RpcClient, make_socket, recv, send
from mapred.runtime.plan import JobSettings
from mapred.runtime.procs import kill_pids
from mapred.security.keys import AuthorizedKeys, KeyDir, read_key

from clusterkit import write_text

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def mapred_cmd(*args, env=None, timeout=90):
    clean = {k: v for k, v in os.environ.items()
             if k not in ("MAPRED_KEYS", "MAPRED_PRINCIPAL", "MAPRED_SECRET")}
    return subprocess.run([sys.executable, "-m", "mapred", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**clean, **(env or {})})


def _unkeyed_answer(addr, msg) -> bool:
    ctx = zmq.Context()
    sock = make_socket(ctx, zmq.DEALER, secret="")      # explicitly no credentials
    try:
        sock.connect(addr)
        send(sock, msg)
        return recv(sock, 1.5) is not None
    finally:
        sock.close(0)
        ctx.term()


@pytest.mark.timeout(180)
def test_cluster_up_is_keyed_by_default_and_the_quick_start_needs_no_setting(tmp_path, monkeypatch):
    for name in ("MAPRED_KEYS", "MAPRED_PRINCIPAL", "MAPRED_SECRET"):
        monkeypatch.delenv(name, raising=False)
    d = str(tmp_path / "mr")
    up = mapred_cmd("cluster", "up", "--workers", "2", "--slots", "1", "--datanodes", "2", "--dir", d,
                    "--dead-timeout", "3", "--block-size", "65536", "--no-service")
    state_path = os.path.join(d, "cluster.json")
    pids = []
    try:
        assert up.returncode == 0, up.stderr
        state = json.load(open(state_path))
        pids = [p for p, _ in state["pids"]]
        master, nn = state["master"], state["namenode"].replace("mrfs://", "tcp://")
        keydir = KeyDir(os.path.join(d, "keys"))
        assert f"keys      {keydir.path}" in up.stdout
        admitted = {p.name: p.role.value for _, p in AuthorizedKeys(keydir.authorized).entries()}
        assert {"master": "admin", "namenode": "admin", "worker-0": "worker", "worker-1": "worker",
                "dn-0": "datanode", "dn-1": "datanode"}.items() <= admitted.items()
        assert "admin" in admitted.values() and len(admitted) == 7           # the six nodes and you
        assert not os.path.exists(os.path.join(keydir.path, "server.key"))   # no shared server pair
        served = {line.split()[2]: line.split()[1] for line in open(keydir.daemons)
                  if not line.startswith("#")}
        for node in ("master", "namenode", "worker-0", "worker-1", "dn-0", "dn-1"):
            assert served[node] == read_key(keydir.file(node)).public    # each serves with its own pair
        assert len(set(served.values())) == len(served)

        # The quick start of the README, word for word but for the printed ports.
        uri = state["namenode"]
        path = write_text(tmp_path / "big.txt", 3000)
        put = mapred_cmd("fs", "--namenode", nn, "put", path, "/data/big.txt")
        assert put.returncode == 0, put.stderr
        run = mapred_cmd("run", "examples/wordcount.py", f"{uri}/data", "-o", f"{uri}/out", "--master", master)
        assert run.returncode == 0, run.stderr
        ls = mapred_cmd("fs", "--namenode", nn, "ls", "/out")
        assert ls.returncode == 0, ls.stderr
        parts = [w for w in ls.stdout.split() if w.startswith("/out/part-")]
        got = {}
        for part in parts:
            cat = mapred_cmd("fs", "--namenode", nn, "cat", part)
            assert cat.returncode == 0, cat.stderr
            got.update((k, int(v)) for k, v in (line.split("\t") for line in cat.stdout.splitlines()))
        expected = {}
        for line in open(path):
            for w in line.split():
                expected[w] = expected.get(w, 0) + 1
        assert got == expected
        fsck = mapred_cmd("fs", "--namenode", nn, "fsck", "/")
        assert fsck.returncode == 0 and "HEALTHY" in fsck.stdout, fsck.stdout + fsck.stderr
        listing = mapred_cmd("job", "--master", master, "list")
        assert listing.returncode == 0 and "SUCCEEDED" in listing.stdout

        # A key the cluster never admitted (with the daemons' public keys, which are public).
        outsider = KeyDir(str(tmp_path / "mallory-keys"))
        outsider.ensure("mallory", "admin")
        shutil.copy(keydir.daemons, outsider.daemons)
        monkeypatch.setenv("MAPRED_KEYS", outsider.path)
        monkeypatch.setenv("MAPRED_PRINCIPAL", "mallory")
        marker = str(tmp_path / "pwned")
        blob = cloudpickle.dumps(lambda: open(marker, "w").write("ran"))
        submit = wire.SubmitJob(job_id="evil", settings=JobSettings(name="x", num_reducers=0, map_only=True,
                                                                   output_format="text"),
                                splits=[], output=str(tmp_path / "o"))
        for addr, msg, data in [(master, submit, [blob]), (nn, wire.GetListing(path="/"), [])]:
            rpc = RpcClient(zmq.Context.instance(), addr, 1.5)
            with pytest.raises(ClusterError):
                rpc.call(msg, *data)
            rpc.close()
        monkeypatch.delenv("MAPRED_KEYS")
        monkeypatch.delenv("MAPRED_PRINCIPAL")
        foreign = mapred_cmd("fs", "--namenode", nn, "ls", "/",
                             env={"MAPRED_KEYS": outsider.path, "MAPRED_PRINCIPAL": "mallory"}, timeout=60)
        assert foreign.returncode != 0
        # No key at all: nothing answers either.
        assert not _unkeyed_answer(master, wire.ListJobs())
        assert not _unkeyed_answer(nn, wire.GetListing(path="/"))
        assert not os.path.exists(marker)
        again = mapred_cmd("job", "--master", master, "list")
        assert again.returncode == 0 and "evil" not in again.stdout
    finally:
        down = mapred_cmd("cluster", "down", "--dir", d)
        kill_pids(pids)
    assert down.returncode == 0, down.stderr
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)


@pytest.mark.timeout(120)
def test_insecure_cluster_up_says_what_it_trusts(tmp_path):
    d = str(tmp_path / "mr")
    up = mapred_cmd("cluster", "up", "--workers", "1", "--slots", "1", "--dir", d, "--insecure", "--no-service")
    pids = []
    try:
        assert up.returncode == 0, up.stderr
        pids = [p for p, _ in json.load(open(os.path.join(d, "cluster.json")))["pids"]]
        assert "any local user can register a DataNode or a worker" in up.stderr
        assert not os.path.exists(os.path.join(d, "keys"))
        log = open(os.path.join(d, "master.log")).read()
        assert "WITHOUT KEYS" in log and "register a DataNode or a worker" in log
    finally:
        mapred_cmd("cluster", "down", "--dir", d)
        kill_pids(pids)
