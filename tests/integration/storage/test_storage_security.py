"""The store's attacks from the security issue, each against real NameNode/DataNode processes.

Block writes without a token, with a forged token, to a finalized block or
to a block the NameNode never allocated are refused and the file keeps its
bytes; an impostor with a live DataNode's id is refused; a replica whose
bytes *and* checksums were rewritten fails the reader's end-to-end check and
the read fails over; forged bad-replica reports delete nothing; a block
whose every copy is corrupt stays CORRUPT in fsck with its copies on disk;
a 1 GB frame is refused before it is read.
"""
import os
import random
import socket
import struct
import time

import psutil
import pytest
import zmq

from mapred.net import wire
from mapred.net.transport import make_socket, recv, send
from mapred.security import tokens
from mapred.storage import blockstore as bs
from mapred.storage.client import Client
from mapred.storage.minicluster import wait_for

from storagekit import BLOCK, payload


def _dealer(addr):
    sock = make_socket(zmq.Context.instance(), zmq.DEALER, secret="")
    sock.connect(addr)
    return sock


def _ask(addr, msg, *data, timeout=5.0):
    sock = _dealer(addr)
    try:
        send(sock, msg, *data)
        got = recv(sock, timeout)
        return None if got is None else got[1]
    finally:
        sock.close(0)


def _packet(block_id, data, token=""):
    return (wire.WritePacket(block_id=block_id, seq=0, offset=0, last=True, stream="evil",
                             token=token), data, bs.chunk_crcs(data))


def _dnid_of(data_dir) -> str:
    with open(os.path.join(data_dir, "dnid")) as f:
        return f.read().strip()


def _block_key(cluster) -> bytes:
    with open(os.path.join(cluster.dir, "nn", "name", "block.key"), "rb") as f:
        return f.read()


@pytest.mark.timeout(90)
def test_tokenless_forged_finalized_and_unallocated_writes_are_refused(make_cluster):
    cluster = make_cluster(datanodes=3, replication=3)
    c = cluster.client()
    data = payload(BLOCK, seed=1)
    c.write_bytes("/sec/f", data)
    block_id, _, length, replicas = c.locations("/sec/f")[1][0][:4]
    evil = bytes(length)                       # same length, valid CRCs: only a token stops it
    key = _block_key(cluster)
    valid_write = tokens.block_token(key, block_id, 1, tokens.WRITE, time.time() + 60)
    forged = tokens.block_token(b"x" * 32, block_id, 1, tokens.WRITE, time.time() + 60)
    unallocated = random.getrandbits(60) + 1
    attempts = [_packet(block_id, evil), _packet(block_id, evil, forged),
                _packet(block_id, evil, valid_write),            # a real token, but the block is final
                _packet(unallocated, evil), _packet(unallocated, evil, forged)]
    for _, addr, _, _ in replicas:
        for msg, *frames in attempts:
            ack = _ask(addr, msg, *frames)
            assert isinstance(ack, wire.PacketAck) and ack.error, ack
    assert "token" in _ask(replicas[0][1], *_packet(block_id, evil)).error
    assert "finalized" in _ask(replicas[0][1], *_packet(block_id, evil, valid_write)).error
    for d in cluster.datanode_dirs:
        assert not os.path.exists(bs.block_path(d, unallocated))
    assert c.read_bytes("/sec/f") == data
    assert Client(cluster.namenode_addr, short_circuit=False).read_bytes("/sec/f") == data
    assert c.fsck("/")["healthy"]
    # reads need a token too
    reply = _ask(replicas[0][1], wire.ReadBlock(block_id=block_id))
    assert isinstance(reply, wire.Error) and "token" in reply.message

    def counted():   # each DataNode's refusals reach the NameNode's report with its heartbeat
        nodes = {n["addr"]: n.get("refusals", {}) for n in c.report()}
        return all(nodes[a].get("block_finalized", 0) >= 1 and nodes[a].get("bad_token", 0) >= 2
                   for _, a, _, _ in replicas)
    wait_for(counted, 10, "the refusal counters in the NameNode's report")


@pytest.mark.timeout(90)
def test_impostor_with_a_live_datanode_id_is_refused(make_cluster):
    cluster = make_cluster(datanodes=3, replication=3)
    c = cluster.client()
    data = payload(BLOCK, seed=2)
    c.write_bytes("/sec/g", data)
    victim = c.report()[0]
    fake_addr = "tcp://127.0.0.1:1"
    for proof in ("", "0" * 64):
        reply = _ask(cluster.namenode_addr, wire.Register(
            dnid=victim["dnid"], addr=fake_addr, host="evil", data_dir="/tmp", capacity=1,
            used=0, remaining=1, proof=proof))
        assert isinstance(reply, wire.Error) and reply.kind == "PermissionDenied", reply
    reply = _ask(cluster.namenode_addr, wire.Heartbeat(dnid=victim["dnid"], capacity=1, used=0,
                                                       remaining=1, blocks=0))
    assert reply.commands == [wire.RegisterAgain()]          # not taken as the victim's heartbeat
    reply = _ask(cluster.namenode_addr, wire.BlockReport(dnid=victim["dnid"], blocks=[]))
    assert reply.commands == [wire.RegisterAgain()]
    assert {n["dnid"]: n["addr"] for n in c.report()}[victim["dnid"]] == victim["addr"]
    remote = Client(cluster.namenode_addr, short_circuit=False)
    for _ in range(5):
        assert remote.read_bytes("/sec/g") == data
    assert remote.refusals().get("datanode_id_taken", 0) + remote.refusals().get("no_proof", 0) == 2


@pytest.mark.timeout(90)
def test_a_replica_rewritten_with_matching_checksums_fails_the_end_to_end_check(make_cluster):
    """A DataNode's own checks pass (bytes and .meta agree); the reader's digest check does not."""
    cluster = make_cluster(datanodes=3, replication=3)
    c = cluster.client()
    data = payload(BLOCK, seed=3)
    c.write_bytes("/sec/h", data)
    block_id, _, _, replicas = c.locations("/sec/h")[1][0][:4]
    evil = bytes(len(data))
    for _, _, _, data_dir in replicas[:2]:
        path = bs.block_path(data_dir, block_id)
        chunk, _, gen = bs.read_meta_full(path)
        with open(path, "wb") as f:
            f.write(evil)
        with open(path + ".meta", "wb") as f:
            f.write(bs.meta_bytes(bs.chunk_crcs(evil, chunk), chunk, gen))
        assert bs.verify_file(path) == len(evil)             # consistent: the DataNode is fooled
    for short_circuit in (True, False):
        reader = Client(cluster.namenode_addr, short_circuit=short_circuit)
        for _ in range(5):
            assert reader.read_bytes("/sec/h") == data         # failed over to the good copy


@pytest.mark.timeout(90)
def test_forged_bad_replica_reports_delete_nothing(make_cluster):
    cluster = make_cluster(datanodes=3, replication=3)
    c = cluster.client()
    data = payload(2 * BLOCK, seed=4)
    c.write_bytes("/sec/k", data)
    blocks = c.locations("/sec/k")[1]
    for block in blocks:
        for dnid, *_ in block[3]:
            c.call(wire.ReportBadReplica(block_id=block[0], dnid=dnid, reason="forged"))

    def all_rechecked():
        logs = "".join(open(os.path.join(cluster.dir, f"dn{i}.log"), errors="replace").read()
                       for i in range(3))
        return logs.count("re-verified good") >= 3 * len(blocks)
    wait_for(all_rechecked, 30, "every accused DataNode to re-verify its copy")
    for block in c.locations("/sec/k")[1]:
        assert len(block[3]) == 3
        for dnid, _, _, data_dir in block[3]:
            assert os.path.exists(bs.block_path(data_dir, block[0]))
    assert c.read_bytes("/sec/k") == data and c.fsck("/")["healthy"]


@pytest.mark.timeout(90)
def test_a_block_whose_every_copy_is_corrupt_stays_visible_as_corrupt(make_cluster):
    cluster = make_cluster(datanodes=3, replication=3, scan_interval=0.5)
    c = cluster.client()
    c.write_bytes("/sec/all", payload(BLOCK, seed=5))
    block_id, _, _, replicas = c.locations("/sec/all")[1][0][:4]
    paths = [bs.block_path(r[3], block_id) for r in replicas]
    for path in paths:
        with open(path, "r+b") as f:
            f.seek(100)
            f.write(b"\xff" * 8)
    wait_for(lambda: c.fsck("/")["corrupt"] == 1, 30, "fsck to call the block CORRUPT")
    time.sleep(1.0)    # several scans and heartbeats later: still nothing deleted
    report = c.fsck("/")
    assert report["corrupt"] == 1 and not report["healthy"]
    assert report["problems"][0]["state"] == "CORRUPT" and report["problems"][0]["path"] == "/sec/all"
    assert all(os.path.exists(p) for p in paths)
    assert c.exists("/sec/all")


def _zmtp_flood(port: int, size: int, limit: int) -> int:
    """Speak ZMTP 3.0 (NULL) by hand and send one frame that claims ``size`` bytes; return bytes sent."""
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(5)
    s.sendall(b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" * 32)
    s.recv(64)
    props = b"\x0bSocket-Type" + struct.pack(">I", 6) + b"DEALER"
    body = b"\x05READY" + props
    s.sendall(bytes([0x04, len(body)]) + body)
    s.sendall(bytes([0x03, 4]) + b"MRP1")                   # more, short: the version frame
    s.sendall(bytes([0x02]) + struct.pack(">Q", size))       # last, long: a frame of ``size`` bytes
    sent, piece = 0, b"\x00" * (1 << 20)
    try:
        while sent < limit:
            s.sendall(piece)
            sent += len(piece)
    except OSError:
        pass
    finally:
        s.close()
    return sent


@pytest.mark.timeout(120)
def test_a_1gb_frame_is_refused_before_it_is_read(make_cluster):
    cluster = make_cluster(datanodes=1, replication=1)
    proc = psutil.Process(cluster.namenode_proc.pid)
    before = proc.memory_info().rss
    sent = _zmtp_flood(cluster.port, 1 << 30, 1 << 30)
    assert sent < 1 << 30                                   # the NameNode hung up on us
    assert proc.memory_info().rss - before < 64 * 1024 * 1024
    c = cluster.client()
    c.write_bytes("/sec/after", b"still serving")
    assert c.read_bytes("/sec/after") == b"still serving"


@pytest.mark.timeout(120)
def test_pipeline_recovery_bumps_the_generation_and_a_stale_replica_is_never_served(make_cluster):
    """HDFS's pipeline recovery: a DataNode killed mid-write makes the writer restart the block on
    the others under a new generation stamp; a copy at the old stamp (what the failed pipeline
    left) is recognised from the block report, never located or served, and replaced."""
    cluster = make_cluster(datanodes=3, replication=3, report_interval=1.0)   # the delete is seen soon
    c = cluster.client()
    data = payload(3 * BLOCK, seed=9)
    w = c.open("/sec/recovered", "wb")
    w.write(data[:BLOCK])                     # block 0 is on all three
    # Kill the DataNode the next pipeline starts with: with equal usage, the smallest id.
    wait_for(lambda: len({(n["used"], n["blocks"]) for n in c.report()}) == 1, 10,
             "equal usage on the three DataNodes")
    first = min(n["dnid"] for n in c.report())
    dirs = {_dnid_of(d): i for i, d in enumerate(cluster.datanode_dirs)}
    victim = dirs[first]
    cluster.kill_datanode(victim)
    w.write(data[BLOCK:])
    w.close()
    assert c.read_bytes("/sec/recovered") == data
    blocks = c.locations("/sec/recovered")[1]
    gens = [b[6] for b in blocks]
    assert gens[1] >= gens[0] + 2             # allocated at gens[0] + 1, then bumped by the restart
    block_id, stale_gen = blocks[1][0], gens[0] + 1
    assert first not in [r[0] for r in blocks[1][3]]
    # What the dead DataNode kept of the failed pipeline: the block at the stamp it was allocated with.
    good = next(p for p in (bs.block_path(d, block_id) for d in cluster.datanode_dirs)
                if os.path.exists(p))
    stale = bs.block_path(cluster.datanode_dirs[victim], block_id)
    os.makedirs(os.path.dirname(stale), exist_ok=True)
    with open(good, "rb") as f, open(stale, "wb") as out:
        out.write(f.read())
    with open(stale + ".meta", "wb") as out:
        out.write(bs.meta_bytes(bs.chunk_crcs(data[BLOCK:2 * BLOCK]), gen=stale_gen))
    cluster.restart_datanode(victim)
    dn1 = first
    located = c.locations("/sec/recovered")[1][1]
    if dn1 in [r[0] for r in located[3]]:     # located there only once stored again at the new stamp
        assert bs.read_gen(stale) == gens[1]
    # Asked directly with the current read token, the stale copy is refused (another generation).
    dn1_addr = next(n["addr"] for n in c.report() if n["dnid"] == dn1)
    reply = _ask(dn1_addr, wire.ReadBlock(block_id=block_id, token=located[4]))
    if isinstance(reply, wire.Error):
        assert "generation" in reply.message or "not on DataNode" in reply.message, reply
    else:                                     # already replaced by a copy at the current stamp
        assert isinstance(reply, wire.BlockData) and reply.gen == gens[1]
    # The NameNode drops the stale copy and copies the block back at the current stamp.
    wait_for(lambda: bs.read_gen(stale) == gens[1], cluster.dead_timeout + 20,
             "the stale copy to be replaced at the current generation")
    cluster.wait_healthy("/sec", timeout=30)
    for client in (c, Client(cluster.namenode_addr, short_circuit=False)):
        assert client.read_bytes("/sec/recovered") == data
