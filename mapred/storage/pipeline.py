"""The write pipeline, both ends: ``write_block`` (the writer) and ``Incoming`` (a DataNode's side).

A block travels as packets of ``PACKET`` bytes, each with the CRC32C of its
64 KiB chunks.  The writer sends to the first DataNode, which checks the
CRCs, forwards the packet to the next, writes it, and acknowledges it when
the next one has acknowledged it as well; the last packet makes every node
fsync-or-flush and publish the block.  At most ``WINDOW`` packets are
unacknowledged at a time.

Failure: a node that does not hear from its downstream neighbour within
``ACK_TIMEOUT`` times the number of nodes below it names that neighbour in its
acks (``failed``); deeper nodes have shorter deadlines, so the first report
names the node that really stopped.  The writer still holds the whole block,
so it restarts the block, from byte 0 with a fresh stream id and a new
generation stamp (``renew``), on the nodes that are left.  Each restart removes at least one node, so this ends.  A
failure reported with the ack of the *last* packet needs no restart: every
node above the failed one has finalized the block, so it is stored there.

Every packet carries the NameNode's write token for the block; each DataNode
checks it (see ``DataNode.check_write``) before it forwards or writes a byte.
"""
from __future__ import annotations

import collections
import logging
import os
import re
import time
import uuid

import zmq

from mapred.net import wire
from mapred.errors import ChecksumError, ProtocolError, StorageError
from mapred.net.transport import make_socket, recv, send
from mapred.storage import blockstore as bs

log = logging.getLogger("mapred.pipeline")

PACKET = 4 * 1024 * 1024
WINDOW = 8
ACK_TIMEOUT = float(os.environ.get("MAPRED_ACK_TIMEOUT", "3.0"))
IDLE_TIMEOUT = 60.0   # a half-written block whose writer is silent this long is discarded
_ADDR = re.compile(r"^tcp://[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")


def ack_deadline(nodes_below: int) -> float:
    """How long a node waits for the node below it, given how many nodes are below."""
    return ACK_TIMEOUT * max(1, nodes_below)


def check_addr(addr: str) -> str:
    """Validate a DataNode address from the network: ``tcp://host:port`` only."""
    if not isinstance(addr, str) or not _ADDR.match(addr):
        raise ProtocolError(f"bad DataNode address {addr!r:.80}")
    return addr


# -- the writer's end -----------------------------------------------------------------------------


def write_block(ctx: zmq.Context, addrs: list[str], block_id: int, data,
                secret: str | None = None, token: str = "",
                crcs: bytes | None = None, renew=None) -> tuple[list[str], list[str]]:
    """Write ``data`` as ``block_id`` to the pipeline ``addrs``; return ``(stored_on, failed)``.

    ``token`` is the NameNode's write token for the block; ``crcs`` the
    block's chunk CRCs when the caller has computed them already.  ``renew()``,
    called before each restart, returns a write token for a new generation
    stamp of the block (HDFS's pipeline recovery): whatever the failed
    pipeline left on a DataNode then carries the old stamp and is known stale.
    """
    nodes, failed = list(addrs), []
    view = memoryview(data)
    crcs = bs.chunk_crcs(view) if crcs is None else crcs
    while nodes:
        bad, finished = _stream(ctx, nodes, block_id, view, crcs, secret, token)
        if finished:   # stored above the failed nodes (if any): no restart needed
            failed.extend(bad)
            return [n for n in nodes if n not in bad], failed
        log.warning("pipeline for block %d lost %s; restarting on the rest", block_id, bad)
        failed.extend(bad)
        nodes = [n for n in nodes if n not in bad]
        if nodes and renew is not None:
            token = renew()
    return [], failed


def _stream(ctx, nodes: list[str], block_id: int, view: memoryview, crcs: bytes, secret,
            token: str) -> tuple[list[str], bool]:
    """One attempt: ``(failed addresses, whether the block is final on the others)``."""
    sock = make_socket(ctx, zmq.DEALER, secret=secret)
    sock.connect(nodes[0])
    stream = uuid.uuid4().hex[:16]
    try:
        return _pump(sock, nodes, block_id, view, crcs, stream, token)
    finally:
        sock.close(0)


def _pump(sock, nodes, block_id, view, crcs, stream, token) -> tuple[list[str], bool]:
    starts = list(range(0, len(view), PACKET)) or [0]
    per_packet = PACKET // bs.CHUNK * 4
    sent_at: collections.deque = collections.deque()
    nxt = 0
    while nxt < len(starts) or sent_at:
        while nxt < len(starts) and len(sent_at) < WINDOW:
            chunk = view[starts[nxt]: starts[nxt] + PACKET]
            msg = wire.WritePacket(block_id=block_id, seq=nxt, offset=starts[nxt],
                                   last=nxt == len(starts) - 1, pipeline=nodes[1:], stream=stream,
                                   token=token)
            send(sock, msg, chunk, crcs[nxt * per_packet:(nxt + 1) * per_packet])
            sent_at.append((nxt, time.monotonic()))
            nxt += 1
        left = sent_at[0][1] + ack_deadline(len(nodes)) + ACK_TIMEOUT - time.monotonic()
        try:
            got = recv(sock, max(0.0, left))
        except ProtocolError as exc:
            log.warning("bad ack from %s: %s", nodes[0], exc)
            continue
        if got is None:
            return [nodes[0]], False
        ack = got[1]
        if not isinstance(ack, wire.PacketAck) or ack.stream != stream:
            continue
        if ack.error:
            log.warning("DataNode %s refused block %d: %s", nodes[0], block_id, ack.error)
            return [nodes[0]], False
        if ack.failed:
            bad = [a for a in ack.failed if a in nodes[1:]]
            return (bad or [nodes[0]]), bool(bad) and ack.seq == len(starts) - 1
        while sent_at and sent_at[0][0] <= ack.seq:
            sent_at.popleft()
    return [], True


# -- a DataNode's end -----------------------------------------------------------------------------


class Incoming:
    """One block being received by a DataNode (``dn``), possibly forwarding downstream."""

    _counter = 0

    def __init__(self, dn, route, msg: wire.WritePacket) -> None:
        self.dn, self.route = dn, route
        self.block_id, self.stream, self.token = msg.block_id, msg.stream, msg.token
        self.gen = dn.check_write(msg).gen
        self.pipeline = [check_addr(a) for a in msg.pipeline]
        Incoming._counter += 1
        self.tmp = os.path.join(dn.data_dir, "tmp", f"blk_{int(msg.block_id)}.{Incoming._counter}")
        self.file = open(self.tmp, "wb")
        self.crcs = bytearray()
        self.next_seq = self.written = 0
        self.done = False
        self.last_packet = time.monotonic()
        self.pending: collections.deque = collections.deque()   # (seq, sent time)
        self.failed: list[str] = []
        self.down = None
        if self.pipeline:
            self.down = make_socket(dn.ctx, zmq.DEALER, secret=dn.secret)
            self.down.connect(self.pipeline[0])

    @classmethod
    def start(cls, dn, route, msg: wire.WritePacket) -> "Incoming":
        if msg.block_id <= 0 or len(msg.pipeline) > 32 or len(msg.stream) > 64:
            raise ProtocolError(f"bad write request for block {msg.block_id}")
        return cls(dn, route, msg)

    def receive(self, msg: wire.WritePacket, data: list) -> None:
        """Check, forward, write, and acknowledge (now or when downstream does)."""
        if msg.token != self.token:
            raise StorageError(f"block {self.block_id}: packet {msg.seq} carries another token")
        if msg.seq != self.next_seq or msg.offset != self.written or len(data) != 2 or self.done:
            raise StorageError(f"block {self.block_id}: packet {msg.seq} at {msg.offset} is out of "
                               f"order (expected {self.next_seq} at {self.written})")
        self.last_packet = time.monotonic()
        payload, crcs = data
        if bytes(crcs) != bs.chunk_crcs(payload):
            raise ChecksumError(f"block {self.block_id}: packet {msg.seq} arrived corrupt")
        self.file.write(payload)   # before forwarding: a packet this node cannot take goes no further
        if self.down is not None:
            fwd = wire.WritePacket(block_id=self.block_id, seq=msg.seq, offset=msg.offset,
                                   last=msg.last, pipeline=self.pipeline[1:], stream=self.stream,
                                   token=self.token)
            send(self.down, fwd, payload, crcs)
            self.pending.append((msg.seq, time.monotonic()))
        self.crcs += crcs
        self.written += len(payload)
        self.next_seq += 1
        if msg.last:
            self._finalize()
        if self.down is None:
            self._ack(msg.seq)

    def _finalize(self) -> None:
        """Publish the block: data file first, checksums last (a block counts once both exist)."""
        self.file.flush()
        if self.dn.sync:
            os.fsync(self.file.fileno())
        self.file.close()
        final = bs.block_path(self.dn.data_dir, self.block_id)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        with open(self.tmp + ".meta", "wb") as f:
            f.write(bs.meta_bytes(bytes(self.crcs), gen=self.gen))
        os.replace(self.tmp, final)
        os.replace(self.tmp + ".meta", final + ".meta")
        self.done = True
        self.dn.finished(self, self.written)

    def _ack(self, seq: int) -> None:
        self.dn.send_up(self.route, wire.PacketAck(block_id=self.block_id, seq=seq,
                                                   stream=self.stream, failed=list(self.failed)))
        if self.done and seq == self.next_seq - 1:
            self._close_down()
            self.dn.forget(self)

    def on_downstream_ack(self, ack) -> None:
        if not isinstance(ack, wire.PacketAck) or ack.stream != self.stream:
            return
        if ack.error:
            return self._downstream_failed(f"refused: {ack.error}")
        self.failed = sorted(set(self.failed) | set(ack.failed))
        while self.pending and self.pending[0][0] <= ack.seq:
            self.pending.popleft()
        self._ack(ack.seq)

    def check_deadline(self, now: float) -> None:
        """Drop a silent downstream node; forget a write whose writer went away."""
        if self.pending and now - self.pending[0][1] > ack_deadline(len(self.pipeline)):
            self._downstream_failed("no ack in time")
        elif not self.done and now - self.last_packet > IDLE_TIMEOUT:
            log.warning("block %d: the writer went silent; discarding the partial block",
                        self.block_id)
            self.abort()

    def _downstream_failed(self, why: str) -> None:
        """Drop the next node: report it upstream and go on alone."""
        log.warning("block %d: downstream %s failed (%s)", self.block_id, self.pipeline[0], why)
        self.failed = sorted(set(self.failed) | {self.pipeline[0]})
        self._close_down()
        last = self.pending[-1][0] if self.pending else self.next_seq - 1
        self.pending.clear()
        if last >= 0:
            self._ack(last)

    def _close_down(self) -> None:
        if self.down is not None:
            self.down.close(0)
            self.down = None

    def abort(self) -> None:
        """Forget a write that will not finish (restarted, failed, or shutting down)."""
        self._close_down()
        if not self.file.closed:
            self.file.close()
        for name in (self.tmp, self.tmp + ".meta"):
            try:
                os.remove(name)
            except FileNotFoundError:
                pass
        self.dn.forget(self)
