"""DataNode decommission under a streaming reader, and the balancer, on real processes."""
import threading
import time

import pytest
from click.testing import CliRunner

from mapred.cli import main
from mapred.storage.client import Client
from mapred.storage.minicluster import wait_for

from storagekit import BLOCK, payload, sha


class FsckWatch(threading.Thread):
    """Polls fsck until stopped; remembers every report that was not fully replicated."""

    def __init__(self, addr):
        super().__init__(daemon=True)
        self.client, self.bad, self.polls = Client(addr), [], 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            r = self.client.fsck("/")
            self.polls += 1
            if r["under_replicated"] or r["missing"] or r["corrupt"]:
                self.bad.append(r)
            time.sleep(0.05)

    def stop(self):
        self.done.set()
        self.join(10)
        self.client.close()


@pytest.mark.timeout(120)
def test_decommission_while_a_reader_streams_a_file_it_holds(make_cluster):
    cluster = make_cluster(datanodes=4, replication=2)
    data = payload(8 * BLOCK + 123, seed=5)
    c = cluster.client()
    c.write_bytes("/big", data)
    cluster.wait_healthy("/")
    _, blocks = c.locations("/big")
    leaving = blocks[0][3][0][0]                     # holds the first block
    watch = FsckWatch(cluster.namenode_addr)
    watch.start()
    reader_client = Client(cluster.namenode_addr, short_circuit=False)
    try:
        with reader_client.open("/big") as f:
            got = [f.read(BLOCK)]                    # the reader is mid-file ...
            r = CliRunner().invoke(main, ["fs", "--namenode", cluster.namenode_addr,
                                          "decommission", leaving])
            assert r.exit_code == 0 and "DECOMMISSION_INPROGRESS" in r.output, r.output
            state = lambda: {n["dnid"]: n["admin_state"] for n in c.report()}[leaving]  # noqa: E731
            wait_for(lambda: state() == "DECOMMISSIONED", 60, f"{leaving} to be decommissioned")
            while True:                              # ... and finishes after the decommission
                piece = f.read(BLOCK)
                if not piece:
                    break
                got.append(piece)
        assert sha(b"".join(got)) == sha(data)
        report = CliRunner().invoke(main, ["fs", "--namenode", cluster.namenode_addr, "report"]).output
        assert f"{leaving}" in report and "DECOMMISSIONED" in report and "1 decommissioned" in report
        index = [i for i, d in enumerate(cluster.datanode_dirs) if leaving in open(d + "/dnid").read()]
        cluster.kill_datanode(index[0])              # safe to stop now
        wait_for(lambda: len(cluster.live_datanodes()) == 3, 30, "the stopped node to be dead")
        assert c.read_bytes("/big") == data
    finally:
        watch.stop()
        reader_client.close()
    assert watch.polls > 5 and watch.bad == []
    assert c.fsck("/")["healthy"] and c.fsck("/")["under_replicated"] == 0


@pytest.mark.timeout(120)
def test_balance_spreads_blocks_onto_new_datanodes(make_cluster):
    cluster = make_cluster(datanodes=1, replication=1)
    c = cluster.client()
    files = {f"/f{i}": payload(BLOCK, seed=i) for i in range(12)}
    for path, data in files.items():
        c.write_bytes(path, data)
    cluster.start_datanode()
    cluster.start_datanode()
    r = CliRunner().invoke(main, ["fs", "--namenode", cluster.namenode_addr, "balance",
                                  "--threshold", "0.1", "--bandwidth", "4MB", "--timeout", "60"])
    assert r.exit_code == 0 and "balanced" in r.output, r.output
    counts = sorted(n["blocks"] for n in c.report())
    assert counts == [4, 4, 4], counts
    for path, data in files.items():
        assert c.read_bytes(path) == data
    assert c.fsck("/")["under_replicated"] == 0
