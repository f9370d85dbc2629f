"""The DataNode process: block files on local disk, served and received over ZeroMQ.

One loop polls three kinds of socket: the ROUTER that clients and peers send
reads and write packets to, the DEALER to the NameNode (heartbeats, block
reports, received-block notices; replies carry commands), and one DEALER per
write pipeline to the next DataNode.  Pipelined writes are handled without
blocking: a packet is checked against its CRCs, forwarded downstream,
written locally, and acknowledged upstream once the downstream node has
acknowledged it too.  A downstream node that does not answer within its
deadline is reported back in the acks as ``failed`` and the block finishes
here; the writer then completes it on the nodes that are left.

Two helper threads never touch the loop's sockets: the scanner re-verifies
blocks at rest, and copiers push blocks to other DataNodes when the NameNode
asks for more replicas; both hand results back through queues.

Nothing is served or stored without the NameNode's say-so (docs/security.md):
a read needs a read token and a write a write token for that block, signed
with the key the NameNode hands over at registration; a write to a block
that is already final here is refused.  A copy found bad is reported, never
deleted here: the NameNode deletes it once a good copy lives elsewhere.
Refusals are logged with the reason and counted.
"""
from __future__ import annotations

import hashlib
import logging
import os
import queue
import shutil
import signal
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psutil
import zmq

from mapred.net import wire
from mapred.errors import MapredError, ProtocolError, StorageError
from mapred.net.transport import bind, check_tcp_addr, make_socket, recv, send, stop_authenticator
from mapred.security import tokens
from mapred.security.refusals import Refusals
from mapred.storage import blockstore as bs
from mapred.storage.pipeline import Incoming, write_block

log = logging.getLogger("mapred.datanode")
MAX_READ = 64 * 1024 * 1024


class DataNode:
    def __init__(self, namenode: str, data_dir: str, host: str = "127.0.0.1", port: int = 0,
                 heartbeat: float = 1.0, report_interval: float = 60.0, scan_interval: float = 300.0,
                 sync: bool = False, secret: str | None = None) -> None:
        check_tcp_addr(namenode, "NameNode address")
        self.data_dir = os.path.abspath(data_dir)
        self.secret, self.sync = secret, sync
        self.heartbeat, self.report_interval, self.scan_interval = heartbeat, report_interval, scan_interval
        self.dnid = _load_dnid(self.data_dir)
        self.proof = _load_proof(self.data_dir)
        self.token_key = b""          # from the NameNode at registration; until then, refuse all
        self.refusals = Refusals(f"DataNode {self.dnid}", log)
        shutil.rmtree(os.path.join(self.data_dir, "tmp"), ignore_errors=True)
        os.makedirs(os.path.join(self.data_dir, "tmp"))
        self.blocks: dict[int, int] = bs.scan_dir(self.data_dir)
        self.ctx = zmq.Context()
        self.data = make_socket(self.ctx, zmq.ROUTER, secret=secret)
        self.port = bind(self.data, host, port)
        self.addr = f"tcp://{_advertised(host)}:{self.port}"
        self.nn = make_socket(self.ctx, zmq.DEALER, secret=secret)
        self.nn.setsockopt(zmq.SNDHWM, 1000)
        self.nn.setsockopt(zmq.IMMEDIATE, 1)   # while the NameNode is down, drop, do not queue
        self._registered_at = -1e9
        self.nn.connect(namenode)
        self.incoming: dict[int, Incoming] = {}
        self.findings: queue.Queue = queue.Queue()   # from scanner/copier threads
        self.copiers = ThreadPoolExecutor(max_workers=2)
        self.running = True
        self._scanner = threading.Thread(target=self._scan_loop, daemon=True)
        log.info("DataNode %s at %s with %d blocks", self.dnid, self.addr, len(self.blocks))

    # -- main loop -------------------------------------------------------------------------------

    def serve(self) -> None:
        self._register()
        self._scanner.start()
        next_beat = next_report = time.monotonic()
        next_report += self.report_interval
        try:
            while self.running:
                now = time.monotonic()
                if now >= next_beat:
                    self._send_heartbeat()
                    next_beat = now + self.heartbeat
                if now >= next_report:
                    self._send_report()
                    next_report = now + self.report_interval
                self._drain_findings()
                self._expire_pipelines(now)
                self._poll(min(next_beat - time.monotonic(), 0.2))
        finally:
            self.close()

    def _poll(self, timeout: float) -> None:
        poller = zmq.Poller()
        poller.register(self.data, zmq.POLLIN)
        poller.register(self.nn, zmq.POLLIN)
        downstream = {inc.down: inc for inc in self.incoming.values() if inc.down is not None}
        for sock in downstream:
            poller.register(sock, zmq.POLLIN)
        for sock, _ in poller.poll(max(0, int(timeout * 1000))):
            try:
                if sock is self.data:
                    self._on_data()
                elif sock is self.nn:
                    self._on_namenode()
                elif sock in downstream:
                    self._on_downstream(downstream[sock])
            except ProtocolError as exc:
                log.warning("dropped a malformed message: %s", exc)
            except Exception:  # a bug in one request must not take the DataNode down
                log.exception("internal error while handling a message; dropped it")

    # -- NameNode side ---------------------------------------------------------------------------

    def _to_nn(self, msg: wire.Message) -> None:
        if not send(self.nn, msg, timeout=0):
            log.debug("NameNode unreachable; dropped %s", msg.TYPE)

    def _stats(self) -> dict:
        try:
            disk = psutil.disk_usage(self.data_dir)
            capacity, remaining = disk.total, disk.free
        except OSError:
            capacity = remaining = 0
        return {"capacity": capacity, "used": sum(self.blocks.values()), "remaining": remaining}

    def _register(self) -> None:
        self._registered_at = time.monotonic()
        self._to_nn(wire.Register(dnid=self.dnid, addr=self.addr, host=socket.gethostname(),
                                  data_dir=self.data_dir, proof=self.proof, **self._stats()))
        self._send_report()

    def _send_heartbeat(self) -> None:
        self._to_nn(wire.Heartbeat(dnid=self.dnid, blocks=len(self.blocks),
                                   active=len(self.incoming), refusals=self.refusals.counts(),
                                   **self._stats()))

    def _send_report(self) -> None:
        self.blocks = {**bs.scan_dir(self.data_dir)}
        self._to_nn(wire.BlockReport(dnid=self.dnid, blocks=[[b, n, self._gen(b)]
                                                             for b, n in self.blocks.items()]))

    def _gen(self, block_id: int) -> int:
        """The generation stamp of our copy (what lets the NameNode tell a stale replica)."""
        return bs.read_gen(bs.block_path(self.data_dir, block_id))

    def _on_namenode(self) -> None:
        got = recv(self.nn, 0)
        if got is None:
            return
        _, msg, _ = got
        if isinstance(msg, wire.Commands):
            for command in msg.commands:
                self._command(command)
        elif isinstance(msg, wire.Error):
            log.warning("NameNode said: %s: %s", msg.kind, msg.message)

    def _command(self, command) -> None:
        """Carry out one NameNode command (a record the wire module validated)."""
        if isinstance(command, wire.RegisterAgain):
            if time.monotonic() - self._registered_at > 2 * self.heartbeat:
                self._register()
        elif isinstance(command, wire.BlockKey):
            self.token_key = bytes.fromhex(command.key)
        elif isinstance(command, wire.DeleteBlocks):
            for block_id in command.blocks:
                self._delete(block_id)
        elif isinstance(command, wire.VerifyBlocks):
            for block_id in command.blocks:
                self._verify(block_id)
        elif isinstance(command, wire.ReplicateBlock):
            self._replicate(command.block_id, list(command.targets), command.token)

    def _delete(self, block_id: int) -> None:
        path = bs.block_path(self.data_dir, block_id)
        self.blocks.pop(block_id, None)
        for name in (path, path + ".meta"):
            try:
                os.remove(name)
            except FileNotFoundError:
                pass

    def _verify(self, block_id: int) -> None:
        """A reader suspects our copy: re-check it; only our own finding condemns it."""
        if block_id not in self.blocks:
            return
        try:
            length = bs.verify_file(bs.block_path(self.data_dir, block_id))
            log.info("block %d re-verified good after a reader's report", block_id)
            self._to_nn(wire.BlockReceived(dnid=self.dnid, block_id=block_id, length=length,
                                           gen=self._gen(block_id)))
        except (bs.BlockMissing, bs.ChecksumError) as exc:
            self._report_bad(block_id, str(exc))

    def _replicate(self, block_id: int, targets: list, token: str) -> None:
        path = bs.block_path(self.data_dir, block_id)
        addrs = [str(t[1]) for t in targets]

        def copy():
            try:
                data, _ = bs.read_verified(path)
                ok, failed = write_block(self.ctx, addrs, block_id, data, secret=self.secret,
                                         token=token)
                log.info("copied block %d to %s (failed: %s)", block_id, ok, failed)
            except (MapredError, OSError) as exc:
                log.warning("copy of block %d failed: %s", block_id, exc)
                if isinstance(exc, (bs.BlockMissing, bs.ChecksumError)):
                    self.findings.put(("bad", block_id, str(exc)))

        self.copiers.submit(copy)

    def _drain_findings(self) -> None:
        while True:
            try:
                kind, block_id, reason = self.findings.get_nowait()
            except queue.Empty:
                return
            if kind == "bad" and block_id in self.blocks:
                self._report_bad(block_id, reason)

    def _report_bad(self, block_id: int, reason: str) -> None:
        """Tell the NameNode; it arranges a replacement and has this copy deleted after.

        The copy stays on disk (a read of it fails its checksums, so it is never
        served): if it is the last copy, part of it may still be recoverable.
        """
        log.warning("block %d is bad here: %s", block_id, reason)
        self._to_nn(wire.ReportBadReplica(block_id=block_id, dnid=self.dnid, reason=reason[:500]))

    def _scan_loop(self) -> None:
        """Re-verify every block at rest once per ``scan_interval``."""
        while self.running:
            start = time.monotonic()
            for block_id in list(self.blocks):
                if not self.running:
                    return
                try:
                    bs.verify_file(bs.block_path(self.data_dir, block_id))
                except (bs.BlockMissing, bs.ChecksumError) as exc:
                    self.findings.put(("bad", block_id, str(exc)))
                except OSError as exc:
                    log.warning("scanner could not read block %d: %s", block_id, exc)
            while self.running and time.monotonic() - start < self.scan_interval:
                time.sleep(min(0.2, self.scan_interval))

    # -- data side -------------------------------------------------------------------------------

    def _on_data(self) -> None:
        route, msg, data = recv(self.data, 0, routed=True) or (None, None, None)
        if msg is None:
            return
        if isinstance(msg, wire.ReadBlock):
            self._serve_read(route, msg)
        elif isinstance(msg, wire.WritePacket):
            self._on_packet(route, msg, data)
        else:
            send(self.data, wire.Error(rid=msg.rid, kind="ProtocolError",
                                       message=f"a DataNode does not serve {msg.TYPE}"), route=route)

    def check_token(self, token: str, block_id: int, mode: str, what: str) -> tokens.BlockGrant:
        """The grant of a valid token, else log, count and raise ``TokenError``."""
        try:
            return tokens.check_block_token(self.token_key, token, block_id, mode, time.time())
        except tokens.TokenError as exc:
            reason = "no_token" if not token else "bad_token"
            self.refusals.refuse(f"a {what} of block {block_id}", reason, str(exc))
            raise

    def check_write(self, msg: wire.WritePacket) -> tokens.BlockGrant:
        """What ``Incoming`` asks before taking a block: a write token, and not final here.

        A finalized copy is never rewritten at its own generation stamp; a token
        for a newer stamp (pipeline recovery, or a fresh copy replacing a stale
        one) may replace it, as HDFS recovers a replica to a newer stamp.
        """
        grant = self.check_token(msg.token, msg.block_id, tokens.WRITE, "write")
        if msg.block_id in self.blocks and not 0 < self._gen(msg.block_id) < grant.gen:
            why = self.refusals.refuse(f"a write of block {msg.block_id}", "block_finalized",
                                       "a finalized block is never rewritten")
            raise tokens.TokenError(why)
        return grant

    def _serve_read(self, route, msg: wire.ReadBlock) -> None:
        length = MAX_READ if msg.length < 0 else min(msg.length, MAX_READ)
        try:
            grant = self.check_token(msg.token, msg.block_id, tokens.READ, "read")
            if msg.block_id not in self.blocks:
                raise bs.BlockMissing(f"block {msg.block_id} is not on DataNode {self.dnid}")
            raw, first, size, chunk, crcs, gen = bs.read_aligned(
                bs.block_path(self.data_dir, msg.block_id), msg.offset, length)
            if gen and grant.gen and gen != grant.gen:
                raise StorageError(f"block {msg.block_id} here is generation {gen}, "
                                   f"not {grant.gen}")
        except (bs.BlockMissing, bs.ChecksumError) as exc:
            if msg.block_id in self.blocks:
                self._report_bad(msg.block_id, str(exc))
            return self._reply_error(route, msg.rid, exc)
        except (MapredError, OSError) as exc:
            return self._reply_error(route, msg.rid, exc)
        send(self.data, wire.BlockData(rid=msg.rid, block_id=msg.block_id, offset=first,
                                       block_length=size, chunk=chunk, gen=gen),
             raw, crcs, route=route)

    def _reply_error(self, route, rid: int, exc: Exception) -> None:
        kind = type(exc).__name__ if isinstance(exc, MapredError) else "StorageError"
        send(self.data, wire.Error(rid=rid, kind=kind, message=str(exc)), route=route)

    def _on_packet(self, route, msg: wire.WritePacket, data: list) -> None:
        inc = self.incoming.get(msg.block_id)
        if msg.seq == 0:
            if inc is not None:
                inc.abort()
            try:
                inc = Incoming.start(self, route, msg)
            except (ProtocolError, tokens.TokenError, OSError) as exc:
                self.incoming.pop(msg.block_id, None)
                return self._nack(route, msg, str(exc))
            self.incoming[msg.block_id] = inc
        if inc is None or inc.stream != msg.stream:
            return self._nack(route, msg, f"block {msg.block_id}: no write in progress for stream")
        try:
            inc.receive(msg, data)
        except (StorageError, OSError) as exc:
            log.warning("write of block %d failed here: %s", msg.block_id, exc)
            inc.abort()
            self.incoming.pop(msg.block_id, None)
            self._nack(route, msg, str(exc))

    def _nack(self, route, msg: wire.WritePacket, error: str) -> None:
        send(self.data, wire.PacketAck(rid=msg.rid, block_id=msg.block_id, seq=msg.seq,
                                       stream=msg.stream, error=error), route=route)

    def finished(self, inc: Incoming, length: int) -> None:
        """Called by ``Incoming`` when a block is final on this disk."""
        self.blocks[inc.block_id] = length
        self._to_nn(wire.BlockReceived(dnid=self.dnid, block_id=inc.block_id, length=length,
                                       gen=inc.gen))

    def forget(self, inc: Incoming) -> None:
        if self.incoming.get(inc.block_id) is inc:
            del self.incoming[inc.block_id]

    def _on_downstream(self, inc: Incoming) -> None:
        got = recv(inc.down, 0)
        if got is not None:
            inc.on_downstream_ack(got[1])

    def _expire_pipelines(self, now: float) -> None:
        for inc in list(self.incoming.values()):
            inc.check_deadline(now)

    def send_up(self, route, msg: wire.Message) -> None:
        send(self.data, msg, route=route)

    # -- shutdown --------------------------------------------------------------------------------

    def stop(self, *_) -> None:
        self.running = False

    def close(self) -> None:
        self.running = False
        self.copiers.shutdown(wait=False, cancel_futures=True)
        for inc in list(self.incoming.values()):
            inc.abort()
        stop_authenticator(self.ctx)
        self.ctx.destroy(linger=0)   # also closes sockets a copier thread may still hold


def _advertised(host: str) -> str:
    """The address peers should dial: a wildcard bind is advertised as this host's address."""
    if host in ("0.0.0.0", "*", "::", ""):
        try:
            return socket.gethostbyname(socket.gethostname())
        except OSError:
            return "127.0.0.1"
    return host


def _load_dnid(data_dir: str) -> str:
    """This DataNode's id, created once and kept in the data directory."""
    os.makedirs(os.path.join(data_dir, "current"), exist_ok=True)
    path = os.path.join(data_dir, "dnid")
    if os.path.exists(path):
        with open(path) as f:
            return f.read().strip()
    dnid = "dn-" + uuid.uuid4().hex[:12]
    with open(path, "w") as f:
        f.write(dnid)
    return dnid


def _load_proof(data_dir: str) -> str:
    """The hash of this DataNode's own secret (made once, mode 0600): what binds its id.

    The secret never leaves the data directory; the NameNode keeps the hash
    from the first registration and refuses the id to anyone who cannot show it.
    """
    path = os.path.join(data_dir, "dnsecret")
    if not os.path.exists(path):
        fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(os.urandom(32).hex())
        os.replace(path + ".tmp", path)
    with open(path) as f:
        return hashlib.sha256(f.read().strip().encode()).hexdigest()


def run(namenode: str, data_dir: str, host: str, port: int, ready_file: str = "", **kw) -> None:
    """Start a DataNode and serve until SIGTERM/SIGINT."""
    node = DataNode(namenode, data_dir, host, port, **kw)
    signal.signal(signal.SIGTERM, node.stop)
    signal.signal(signal.SIGINT, node.stop)
    if ready_file:
        from mapred.storage.namenode import _write_ready
        _write_ready(ready_file, node.addr)
    node.serve()
