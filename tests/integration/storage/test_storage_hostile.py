"""Garbage, strangers and bad requests: a clear error or a logged drop; nodes keep running."""

import time

import msgpack
import pytest
import zmq

from mapred.errors import ConfigError, FileNotFound
from mapred.security import tokens
from mapred.storage import Client
from mapred.storage.minicluster import StorageCluster
from mapred.net.transport import bind, make_socket

from storagekit import BLOCK, FAST_ENV, payload

GARBAGE = [
    [b"hello"],
    [b"MRP1"],
    [b"MRP1", b"\xc1\xff\x00"],
    [b"MRP1", msgpack.packb({"t": "nn.mkdir", "path": 12})],
    [b"MRP1", msgpack.packb({"t": "dt.packet", "block_id": 5, "seq": 3, "offset": 0, "last": True})],
    [b"MRP1", msgpack.packb({"t": "dt.packet", "block_id": -5, "seq": 0, "offset": 0, "last": True,
                             "pipeline": ["not-an-address"]}), b"x", b"y"],
    [b"MRP1", msgpack.packb({"t": "dt.read", "block_id": 99, "offset": -4})],
    [b"MRP1", msgpack.packb({"t": "dn.block_report", "dnid": "x", "blocks": [[1, "two"]]})],
    [b"MRP1", msgpack.packb({"t": "nn.add_block", "path": "/x", "previous": [1, "a", 3]})],
    [b"MRP2", msgpack.packb({"t": "nn.mkdir", "path": "/x"})],
    [b"X" * 100000],
]


def blast(addr):
    ctx = zmq.Context.instance()
    sock = make_socket(ctx, zmq.DEALER, secret="")
    sock.connect(addr)
    for frames in GARBAGE:
        sock.send_multipart(frames)
    sock.close(0)


@pytest.mark.timeout(60)
def test_garbage_on_every_socket_is_dropped_and_nodes_keep_serving(shared_cluster):
    c = shared_cluster.client()
    blast(shared_cluster.namenode_addr)
    for node in c.report():
        blast(node["addr"])
    c.write_bytes("/hostile/after", payload(BLOCK + 3), overwrite=True)
    assert c.read_bytes("/hostile/after") == payload(BLOCK + 3)
    assert all(p.poll() is None for p in shared_cluster.datanodes + [shared_cluster.namenode_proc])


@pytest.mark.timeout(60)
def test_bad_reads_give_clear_errors(shared_cluster):
    c = shared_cluster.client()
    with pytest.raises(FileNotFound, match="/no/such"):
        c.open("/no/such")
    node = c.report()[0]
    with open(f"{shared_cluster.dir}/nn/name/block.key", "rb") as f:   # a genuine read token
        token = tokens.block_token(f.read(), 12345, 0, tokens.READ, time.time() + 60)
    with pytest.raises(Exception, match="not on DataNode"):
        c._remote_read(node["addr"], 12345, 0, 10, token)
    with pytest.raises(Exception, match="no token"):
        c._remote_read(node["addr"], 12345, 0, 10, "")


def test_public_bind_without_secret_refuses():
    ctx = zmq.Context.instance()
    sock = make_socket(ctx, zmq.ROUTER, secret="")
    with pytest.raises(ConfigError, match="MAPRED_SECRET"):
        bind(sock, "0.0.0.0", 0)
    sock.close(0)


@pytest.mark.timeout(90)
def test_keyed_cluster_works_and_refuses_strangers(tmp_path):
    env = {**FAST_ENV, "MAPRED_SECRET": "s3cret"}
    with StorageCluster(tmp_path, datanodes=2, replication=2, block_size=BLOCK, env=env,
                        start_timeout=30) as cluster:
        c = cluster.client()
        c.write_bytes("/k", payload(BLOCK * 2))
        assert Client(cluster.namenode_addr, secret="s3cret", short_circuit=False).read_bytes("/k") \
            == payload(BLOCK * 2)
        for secret in ("", "wrong"):
            stranger = Client(cluster.namenode_addr, secret=secret, timeout=1.5)
            with pytest.raises(Exception, match="did not answer"):
                stranger.ls("/")
            stranger.close()
        blast(cluster.namenode_addr)
        assert c.read_bytes("/k") == payload(BLOCK * 2)
