"""Two "hosts" (network namespaces joined by a veth pair), one keyed cluster spanning both.

Host A runs the NameNode, the master, a DataNode and a worker; host B a
DataNode and a worker; every daemon listens on its namespace's veth address
(non-loopback, so only allowed with keys) and runs as its own principal.
A word count over a file in the store, written back to the store, must equal
the reference.  The test makes the namespaces (as root) and removes them.
"""
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from mapred.runtime.procs import kill_pids
from mapred.security.keys import KeyDir

from clusterkit import write_text

NS = ("mrsec-a", "mrsec-b")
IPS = ("10.231.7.1", "10.231.7.2")
VETH = ("mrsec-va", "mrsec-vb")


def _ip(*args):
    return subprocess.run(["ip", *args], capture_output=True, text=True)


def _teardown_netns():
    for ns in NS:
        _ip("netns", "del", ns)


@pytest.fixture
def two_hosts():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2's `ip netns` to make two network namespaces")
    _teardown_netns()                       # a leftover from an interrupted run
    steps = [("netns", "add", NS[0]), ("netns", "add", NS[1]),
             ("link", "add", VETH[0], "type", "veth", "peer", "name", VETH[1]),
             ("link", "set", VETH[0], "netns", NS[0]), ("link", "set", VETH[1], "netns", NS[1])]
    for i in range(2):
        steps += [("-n", NS[i], "addr", "add", f"{IPS[i]}/24", "dev", VETH[i]),
                  ("-n", NS[i], "link", "set", VETH[i], "up"), ("-n", NS[i], "link", "set", "lo", "up")]
    try:
        for step in steps:
            r = _ip(*step)
            if r.returncode != 0:
                pytest.skip(f"`ip {' '.join(step)}` failed here: {r.stderr.strip()}")
        yield
    finally:
        _teardown_netns()


def _wait_file(path, procs, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path) and open(path).read().strip():
            return open(path).read().strip()
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            raise AssertionError(f"a node exited with {dead[0].returncode}; see logs")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {path}")


DRIVER = textwrap.dedent('''
    import json, sys, time
    import mapred
    from mapred.storage.client import Client
    nn, master, local_input, result_file = sys.argv[1:5]
    store = Client(nn)
    deadline = time.monotonic() + 60
    while len([n for n in store.report() if n["state"] == "LIVE"]) < 2 or store.safemode():
        assert time.monotonic() < deadline, "DataNodes did not register"
        time.sleep(0.2)
    cluster = mapred.connect(master)
    while len(cluster.workers()) < 2:
        assert time.monotonic() < deadline, "workers did not register"
        time.sleep(0.2)
    store.put(local_input, "/in.txt")
    uri = "mrfs://" + nn[len("tcp://"):]
    from mapred.jobfile import configure, load_job
    job = configure(load_job("examples/wordcount.py"), {}, 2, None, None)
    job.run(uri + "/in.txt", uri + "/out", cluster=cluster)
    counts = {}
    for entry in store.ls("/out"):
        if entry["path"].rsplit("/", 1)[-1].startswith("part-"):
            for line in store.read_bytes(entry["path"]).decode().splitlines():
                k, v = line.split("\\t")
                counts[k] = int(v)
    hosts = sorted({w["host"] + " " + w["shuffle_addr"] for w in cluster.workers()})
    nodes = sorted(n["addr"] for n in store.report())
    json.dump({"counts": counts, "workers": hosts, "datanodes": nodes}, open(result_file, "w"))
''')


@pytest.mark.timeout(180)
def test_a_keyed_cluster_across_two_hosts_counts_words_like_the_reference(two_hosts, tmp_path):
    keys = KeyDir(str(tmp_path / "keys"))
    for name, role in [("namenode", "admin"), ("master", "admin"), ("admin", "admin"),
                       ("dn-0", "datanode"), ("dn-1", "datanode"), ("worker-0", "worker"),
                       ("worker-1", "worker")]:
        keys.ensure(name, role)
    base = {**os.environ, "MAPRED_KEYS": keys.path, "MAPRED_DEAD_TIMEOUT": "3",
            "MAPRED_HEARTBEAT_INTERVAL": "0.25"}
    base.pop("MAPRED_SECRET", None)
    procs = []

    def start(host: int, principal: str, *args, log: str):
        out = open(tmp_path / f"{log}.log", "wb")
        p = subprocess.Popen(["ip", "netns", "exec", NS[host], sys.executable, "-m", "mapred", *args],
                             env={**base, "MAPRED_PRINCIPAL": principal}, stdout=out,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        out.close()
        procs.append(p)
        return p

    try:
        start(0, "namenode", "namenode", "--data-dir", str(tmp_path / "nn"), "--host", IPS[0],
              "--replication", "2", "--block-size", "65536", "--ready-file", str(tmp_path / "nn.ready"),
              log="namenode")
        nn = _wait_file(tmp_path / "nn.ready", procs)
        start(0, "master", "master", "--host", IPS[0], "--ready-file", str(tmp_path / "master.ready"),
              log="master")
        master = _wait_file(tmp_path / "master.ready", procs)
        for i in range(2):
            start(i, f"dn-{i}", "datanode", "--namenode", nn, "--data-dir", str(tmp_path / f"dn{i}"),
                  "--host", IPS[i], "--heartbeat", "0.25", log=f"dn{i}")
            start(i, f"worker-{i}", "worker", "--master", master, "--host", IPS[i], "--slots", "1",
                  "--no-short-circuit", "--data-dir", str(tmp_path / f"w{i}"), log=f"worker{i}")
        text = write_text(tmp_path / "in.txt", 3000)
        (tmp_path / "driver.py").write_text(DRIVER)
        result_file = tmp_path / "result.json"
        driver = subprocess.run(["ip", "netns", "exec", NS[0], sys.executable, str(tmp_path / "driver.py"),
                                 nn, master, text, str(result_file)],
                                env={**base, "MAPRED_PRINCIPAL": "admin"}, capture_output=True, text=True,
                                timeout=150, cwd=os.path.dirname(os.path.dirname(os.path.dirname(
                                    os.path.dirname(os.path.abspath(__file__))))))
        assert driver.returncode == 0, driver.stderr[-3000:]
        got = json.loads(result_file.read_text())
        expected = {}
        for line in open(text):
            for w in line.split():
                expected[w] = expected.get(w, 0) + 1
        assert got["counts"] == expected
        assert any(IPS[1] in w for w in got["workers"]) and any(IPS[0] in w for w in got["workers"])
        assert sorted(a.split("//")[1].split(":")[0] for a in got["datanodes"]) == list(IPS)
        for name in ("namenode", "master"):
            assert "runs without keys" not in (tmp_path / f"{name}.log").read_text()
    finally:
        kill_pids([p.pid for p in procs])
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
