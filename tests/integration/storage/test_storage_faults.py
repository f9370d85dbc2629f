"""Faults with real processes: DataNode death, corrupt replicas, NameNode kill -9, death mid-write."""
import os
import signal
import threading
import time

import pytest

from mapred.errors import MapredError
from mapred.storage import Client, blockstore
from mapred.storage.minicluster import wait_for

from storagekit import BLOCK, payload, sha

RECOVERY_BOUND = 15.0   # seconds after the dead timeout for re-replication to finish


def write_files(c, n=4, size=int(2.5 * BLOCK)):
    files = {f"/d/f{i}": payload(size, seed=i) for i in range(n)}
    for path, data in files.items():
        c.write_bytes(path, data)
    return files


def assert_readable(c, files):
    for path, data in files.items():
        assert sha(c.read_bytes(path)) == sha(data), path


def all_at(c, replicas):
    r = c.fsck("/")
    if r["under_replicated"] or r["over_replicated"] or not r["healthy"]:
        return False
    blocks = [b for e in c.ls("/d") for b in c.locations(e["path"])[1]]
    return all(len(b[3]) == replicas for b in blocks)


@pytest.mark.timeout(90)
def test_kill_datanode_then_add_one_restores_three_replicas(make_cluster):
    cluster = make_cluster(datanodes=3, replication=3)
    c = cluster.client()
    files = write_files(c)
    cluster.kill_datanode(0, signal.SIGKILL)
    assert_readable(Client(cluster.namenode_addr, short_circuit=False, read_timeout=1.0), files)
    assert_readable(c, files)
    cluster.start_datanode(wait=False)
    start = time.monotonic()
    wait_for(lambda: any(n["state"] == "DEAD" for n in c.report()), cluster.dead_timeout + 5,
             "the killed DataNode to be declared dead")
    wait_for(lambda: all_at(c, 3), cluster.dead_timeout + RECOVERY_BOUND, "3 live replicas per block")
    assert time.monotonic() - start < cluster.dead_timeout + RECOVERY_BOUND
    report = c.fsck("/")
    assert report["healthy"] and report["blocks"] == 4 * 3
    assert sum(n["state"] == "DEAD" for n in c.report()) == 1
    assert_readable(c, files)


@pytest.mark.timeout(90)
def test_corrupt_replica_is_detected_reported_and_replaced(make_cluster):
    cluster = make_cluster(datanodes=4, replication=3)
    c = cluster.client()
    data = payload(2 * BLOCK, seed=9)
    c.write_bytes("/d/victim", data)
    block_id, _, _, replicas = c.locations("/d/victim")[1][0][:4]
    dnid, _, _, data_dir = replicas[0]
    path = blockstore.block_path(data_dir, block_id)
    with open(path, "r+b") as f:            # flip one byte behind the DataNode's back
        f.seek(1234)
        byte = f.read(1)
        f.seek(1234)
        f.write(bytes([byte[0] ^ 0xFF]))
    remote = Client(cluster.namenode_addr, short_circuit=False)

    def read_until_reported():
        for client in (c, remote):         # whichever replica is picked, the bytes are right
            assert client.read_bytes("/d/victim") == data
        return dnid not in [r[0] for r in c.locations("/d/victim")[1][0][3]]

    wait_for(read_until_reported, 20, "a reader to report the corrupt replica")

    def replaced():
        reps = c.locations("/d/victim")[1][0][3]
        return len(reps) == 3 and dnid not in [r[0] for r in reps]
    wait_for(replaced, 20, "the corrupt replica to be replaced")
    assert c.read_bytes("/d/victim") == data
    assert c.fsck("/")["healthy"]


@pytest.mark.timeout(90)
def test_scanner_finds_truncated_block(make_cluster):
    cluster = make_cluster(datanodes=3, replication=2, scan_interval=0.5)
    c = cluster.client()
    data = payload(BLOCK, seed=4)
    c.write_bytes("/d/t", data)
    block_id, _, _, replicas = c.locations("/d/t")[1][0][:4]
    with open(blockstore.block_path(replicas[0][3], block_id), "r+b") as f:
        f.truncate(100)
    wait_for(lambda: replicas[0][0] not in [r[0] for r in c.locations("/d/t")[1][0][3]]
             and len(c.locations("/d/t")[1][0][3]) == 2, 20, "the scanner's report and a new copy")
    assert c.read_bytes("/d/t") == data


@pytest.mark.timeout(120)
def test_namenode_kill9_during_creates_loses_no_acknowledged_file(make_cluster):
    cluster = make_cluster(datanodes=3, replication=2)
    c = Client(cluster.namenode_addr, timeout=2.0)
    acked = {}
    killer = threading.Timer(0.5, cluster.kill_namenode)
    killer.start()
    i = 0
    try:
        while True:
            data = payload(1000 + i * 997 % BLOCK, seed=i)
            c.write_bytes(f"/s/f{i:05d}", data)
            acked[f"/s/f{i:05d}"] = data
            i += 1
    except MapredError:
        pass
    killer.join()
    attempted = {f"/s/f{j:05d}": payload(1000 + j * 997 % BLOCK, seed=j) for j in range(i + 1)}
    assert len(acked) > 5
    cluster.restart_namenode(sig=signal.SIGKILL)
    c = Client(cluster.namenode_addr)
    for path, data in acked.items():
        assert c.read_bytes(path) == data, path
    for entry in c.ls("/s"):                # nothing half-visible: every listed file is whole
        assert c.read_bytes(entry["path"]) == attempted[entry["path"]]
    assert c.fsck("/")["healthy"]


@pytest.mark.timeout(90)
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP], ids=["kill", "stop"])
def test_datanode_dying_mid_write_write_completes_on_the_others(make_cluster, sig):
    cluster = make_cluster(datanodes=3, replication=3)
    c = cluster.client()
    data = payload(4 * BLOCK, seed=sig)
    w = c.open("/d/mid", "wb")
    w.write(data[:BLOCK])                   # block 0 on all three
    cluster.kill_datanode(1, sig)           # the next block's pipeline has a dead node
    try:
        w.write(data[BLOCK:])
        w.close()
        assert c.read_bytes("/d/mid") == data
        blocks = c.locations("/d/mid")[1]
        assert all(len(b[3]) >= 2 for b in blocks)
    finally:
        if sig == signal.SIGSTOP:
            os.kill(cluster.datanode_pid(1), signal.SIGKILL)
    cluster.start_datanode(wait=False)
    wait_for(lambda: c.fsck("/")["healthy"] and not c.fsck("/")["under_replicated"],
             cluster.dead_timeout + RECOVERY_BOUND, "re-replication after the failed write")


@pytest.mark.timeout(60)
def test_block_file_deleted_behind_datanode_fails_over_and_is_replaced(make_cluster):
    cluster = make_cluster(datanodes=3, replication=2)
    c = cluster.client()
    data = payload(BLOCK + 100, seed=5)
    c.write_bytes("/d/gone", data)
    block_id, _, _, replicas = c.locations("/d/gone")[1][0][:4]
    os.remove(blockstore.block_path(replicas[0][3], block_id))
    remote = Client(cluster.namenode_addr, short_circuit=False)

    def reported():
        assert remote.read_bytes("/d/gone") == data and c.read_bytes("/d/gone") == data
        return replicas[0][0] not in [r[0] for r in c.locations("/d/gone")[1][0][3]]

    wait_for(reported, 20, "the missing replica to be reported")
    wait_for(lambda: len(c.locations("/d/gone")[1][0][3]) == 2, 20, "a replacement copy")
    assert c.read_bytes("/d/gone") == data


@pytest.mark.timeout(90)
def test_restart_after_checkpoints_and_returning_datanode_is_trimmed(make_cluster):
    cluster = make_cluster(datanodes=3, replication=2, checkpoint_every=5)
    c = cluster.client()
    files = {f"/cp/f{i}": payload(500 + i, seed=i) for i in range(12)}
    for path, data in files.items():
        c.write_bytes(path, data)
    c.rm("/cp/f0")
    c.mv("/cp/f1", "/cp/g1")
    files["/cp/g1"] = files.pop("/cp/f1")
    del files["/cp/f0"]
    wait_for(lambda: os.path.exists(os.path.join(cluster.dir, "nn", "name", "image")), 5,
             "a checkpoint image")
    cluster.restart_namenode()
    c = cluster.client()
    assert_readable(c, files)
    assert sorted(e["path"] for e in c.ls("/cp")) == sorted(files)
    # a DataNode goes away, its blocks are copied elsewhere, then it comes back: surplus trimmed
    cluster.kill_datanode(0)
    wait_for(lambda: any(n["state"] == "DEAD" for n in c.report()), cluster.dead_timeout + 5,
             "the killed DataNode to be declared dead")
    wait_for(lambda: all(len(b[3]) == 2 for p in files for b in c.locations(p)[1]),
             RECOVERY_BOUND, "re-replication")
    cluster.restart_datanode(0)
    wait_for(lambda: c.fsck("/")["over_replicated"] == 0 and c.fsck("/")["under_replicated"] == 0
             and all(len(b[3]) == 2 for p in files for b in c.locations(p)[1]),
             RECOVERY_BOUND, "surplus copies trimmed to 2")
    assert_readable(c, files)


@pytest.mark.timeout(90)
def test_datanode_with_full_disk_is_dropped_from_pipelines(make_cluster):
    import subprocess
    cluster = make_cluster(datanodes=2, replication=3)
    small = os.path.join(cluster.dir, "dn2")
    os.makedirs(small)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", small],
                      capture_output=True).returncode != 0:
        pytest.skip("needs permission to mount a small tmpfs")
    try:
        cluster.start_datanode()
        c = cluster.client()
        data = payload(6 * BLOCK, seed=11)
        c.write_bytes("/full/f", data)           # the small node fills up part-way
        assert c.read_bytes("/full/f") == data
        assert all(len(b[3]) >= 2 for b in c.locations("/full/f")[1])
        c.write_bytes("/full/g", data[:BLOCK])   # and is then left out of placement
        assert cluster.datanodes[2].poll() is None
        assert c.fsck("/")["healthy"]
    finally:
        cluster.stop()
        subprocess.run(["umount", "-l", small], capture_output=True)


@pytest.mark.timeout(90)
def test_a_read_right_after_a_namenode_restart_waits_for_the_datanodes_to_report(make_cluster):
    """A restarted NameNode knows its blocks but not yet their DataNodes: a reader that asks in that
    moment waits for the reports (before: ``NoLiveReplica`` at once, which failed map attempts of a
    job four times over while the NameNode came back)."""
    cluster = make_cluster(datanodes=2, replication=2, heartbeat=1.0)
    data = payload(2 * BLOCK, seed=9)
    cluster.client().write_bytes("/r", data)
    cluster.kill_namenode(signal.SIGKILL)
    cluster.namenode_proc.wait(10)
    cluster._client = None
    cluster._start_namenode()            # ready, but no DataNode has reported to it yet
    c = Client(cluster.namenode_addr)
    try:
        assert sha(c.read_bytes("/r")) == sha(data)
    finally:
        c.close()


def test_block_checksums_are_the_writers_whichever_replica_answers(make_cluster):
    """``Client.block_checksums`` (what GETFILECHECKSUM is made of): a local checksum file or a
    zero-length remote read give the writer's CRCs; a replica whose checksum file was forged is
    passed over, because its list does not hash to the digest the NameNode recorded."""
    cluster = make_cluster(datanodes=3, replication=2)
    c = cluster.client()
    data = payload(int(2.5 * BLOCK), seed=5)
    c.write_bytes("/d/ck", data)
    blocks = c.locations("/d/ck")[1]
    want = [(b[2], blockstore.CHUNK, blockstore.chunk_crcs(data[b[1]:b[1] + b[2]])) for b in blocks]
    remote = Client(cluster.namenode_addr, short_circuit=False)
    assert c.block_checksums("/d/ck") == want
    assert remote.block_checksums("/d/ck") == want
    for block in blocks:                        # forge the first replica's checksum file of every block
        meta = blockstore.block_path(block[3][0][3], block[0]) + ".meta"
        with open(meta, "r+b") as f:
            f.seek(-4, os.SEEK_END)
            crc = f.read(4)
            f.seek(-4, os.SEEK_END)
            f.write(bytes(x ^ 0xFF for x in crc))
    assert c.block_checksums("/d/ck") == want
    assert remote.block_checksums("/d/ck") == want
    remote.close()
