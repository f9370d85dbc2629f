"""The block store's client: namespace calls to the NameNode, bytes to and from DataNodes.

``Client("tcp://H:P")`` is the whole API (``MrFS`` and ``mapred fs`` sit on
it).  Reads pick the nearest replica (a DataNode on this host is read
straight from its block file), and fail over to the next one on a checksum
mismatch, a missing block or a silent DataNode, reporting bad copies to the
NameNode (which has the DataNode re-verify before anything is condemned).
Every read is verified here, end to end: the replica's CRC list must hash to
the digest the NameNode recorded from the writer, and every chunk must match
it (``blockstore.check_replica``), whoever served the bytes.  Writes buffer one block, ask the
NameNode for a block and its pipeline, and stream it (see ``pipeline``).
A file becomes visible when its writer is closed.
"""
from __future__ import annotations

import collections
import contextlib
import copy
import dataclasses
import functools
import io
import logging
import mmap
import os
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import zmq

from mapred import errors
from mapred.net import wire
from mapred.errors import ClusterError, MapredError, NoLiveReplica, ProtocolError, StorageError
from mapred.net.transport import RpcClient, check_tcp_addr, make_socket, recv, send
from mapred.storage import blockstore as bs
from mapred.storage.namespace import InvalidPath
from mapred.storage.pipeline import write_block

log = logging.getLogger("mapred.runtime.client")
READ_SIZE = 8 * 1024 * 1024
# seconds before each fresh look at a block none of whose known replicas could be read: a NameNode
# just restarted knows its blocks but not yet their DataNodes (they report within a heartbeat or two)
REPLICA_WAITS = (0.0, 0.5, 1.0, 2.0, 4.0)
HOSTNAME = socket.gethostname()


def current_user() -> str:
    """Who this client acts for: ``MAPRED_USER``, else the login name."""
    import getpass
    try:
        return os.environ.get("MAPRED_USER") or getpass.getuser()
    except Exception:   # no login name in some containers
        return "mapred"


def _raise(reply: wire.Error):
    """Turn an ``Error`` reply back into the typed exception it names."""
    cls = InvalidPath if reply.kind == "InvalidPath" else getattr(errors, reply.kind, None)
    if not (isinstance(cls, type) and issubclass(cls, MapredError)):
        cls = StorageError
    raise cls(reply.message)


class Client:
    """A connection to one NameNode (``tcp://host:port``).  Safe to share between threads."""

    def __init__(self, namenode: str, timeout: float = 15.0, secret: str | None = None,
                 short_circuit: bool = True, read_timeout: float = 5.0) -> None:
        check_tcp_addr(namenode, "NameNode address")
        self.namenode, self.secret = namenode, secret
        self.short_circuit, self.read_timeout = short_circuit, read_timeout
        self.ctx = zmq.Context.instance()
        self._rpc = RpcClient(self.ctx, namenode, timeout, secret)
        self._lock = threading.Lock()
        self._socks: dict[str, list] = {}     # DataNode address -> idle DEALERs
        self._sock_lock = threading.Lock()
        self._acting = threading.local()       # the service's ``acting_as`` user, per thread
        self._as_user = ""                     # set on a view made by ``as_user``

    def as_user(self, user: str) -> "Client":
        """A view of this client whose requests act for ``user`` (honoured only from a ``service``
        key): it shares the connections; close the client, never the view."""
        view = copy.copy(self)
        view._as_user = user
        return view

    @contextlib.contextmanager
    def acting_as(self, user: str):
        """Requests from this thread act for ``user`` (honoured only from a ``service`` key).

        The HTTP service shares one client between requests and wraps each in
        this, so the NameNode checks the HTTP user's rights, not the service's.
        """
        before = getattr(self._acting, "user", "")
        self._acting.user = user
        try:
            yield self
        finally:
            self._acting.user = before

    # -- plumbing --------------------------------------------------------------------------------

    def call(self, msg: wire.Message, retry: bool = False) -> wire.Message:
        """One NameNode request; an ``Error`` reply is raised as its typed exception."""
        user = self._as_user or getattr(self._acting, "user", "")
        if user and hasattr(msg, "as_user") and not msg.as_user:
            msg = dataclasses.replace(msg, as_user=user)
        with self._lock:
            reply, _ = self._rpc.call(msg, retry=retry)
        if isinstance(reply, wire.Error):
            _raise(reply)
        return reply

    def close(self) -> None:
        """Close the NameNode connection and every cached DataNode socket."""
        with self._lock:
            self._rpc.close()
        with self._sock_lock:
            pools, self._socks = list(self._socks.values()), {}
        for pool in pools:
            for sock in pool:
                sock.close(0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- namespace -------------------------------------------------------------------------------

    def mkdir(self, path: str, parents: bool = False, mode: int = 0) -> None:
        """Create a directory (``parents``: with missing ancestors, like ``mkdir -p``; ``mode``: its
        permission bits, 0 = the default 0755)."""
        self.call(wire.Mkdir(path=path, parents=parents, mode=mode))

    def chmod(self, path: str, mode: int = -1, owner: str = "") -> None:
        """Set ``path``'s permission bits (e.g. ``0o600``: private) and/or, as an admin, its owner."""
        self.call(wire.SetPermission(path=path, mode=mode, owner=owner))

    def ls(self, path: str = "/") -> list[dict]:
        """Entries of a directory (or the file itself): path, type, length, mtime, replication."""
        return self.call(wire.GetListing(path=path), retry=True).entries

    def stat(self, path: str) -> dict:
        """The status entry of ``path``; raises ``FileNotFound`` if absent."""
        return self.call(wire.GetStatus(path=path), retry=True).entry

    def exists(self, path: str) -> bool:
        """Whether ``path`` names a file or directory."""
        try:
            self.stat(path)
            return True
        except errors.FileNotFound:
            return False

    def rm(self, path: str, recursive: bool = False, *, trash: bool = False, user: str = "") -> str:
        """Delete ``path`` (at once, as HDFS's ``FileSystem.delete``); with ``trash`` move it to
        ``user``'s trash (default: ``current_user()``) and return where it went ("" if deleted
        because the NameNode keeps no trash or the path was already in one)."""
        reply = self.call(wire.Delete(path=path, recursive=recursive, trash=trash,
                                      user=(user or current_user()) if trash else ""))
        return reply.info.get("trash", "")

    def expunge(self, user: str = "", immediate: bool = False) -> dict:
        """Checkpoint the trash and drop old checkpoints (``immediate``: empty it now)."""
        return self.call(wire.Expunge(user=user, immediate=immediate)).info

    def pin(self, path: str, tag: str = "pinned", on: bool = True) -> None:
        """Keep cleanup rules off ``path`` (and everything under and above it) while pinned."""
        self.call(wire.PinPath(path=path, tag=tag, on=on))

    def pins(self, path: str = "/") -> dict:
        """``{path: [tag, ...]}`` of the pins at or under ``path``."""
        return self.call(wire.ListPins(path=path), retry=True).info["pins"]

    def hold(self, holder: str, paths: list, ttl: float = 60.0) -> None:
        """A running job's inputs and output: no rule touches them for ``ttl`` seconds."""
        self.call(wire.HoldPaths(holder=holder, paths=list(paths), ttl=ttl), retry=True)

    def release(self, holder: str) -> None:
        """Drop every hold that ``holder`` (a job) has on paths."""
        self.call(wire.HoldPaths(holder=holder, paths=[]), retry=True)

    def cleanup_run(self, dry_run: bool = False, timeout: float = 600.0) -> dict:
        """Run the retention rules now and wait for the report (each action with its rule).

        The NameNode does the run in slices between other requests; this polls
        it until the run ends (``StorageError`` past ``timeout`` seconds)."""
        run = self.cleanup_run_start(dry_run)["run"]
        deadline = time.monotonic() + timeout
        pause = 0.01
        while True:
            st = self.cleanup_run_status(run)
            if st["state"] == "done":
                return st["report"]
            if st["state"] == "failed":
                raise StorageError(f"cleanup run {run} failed: {st.get('error', '')}")
            if time.monotonic() > deadline:
                raise StorageError(f"cleanup run {run} still {st['state']} after {timeout:g}s")
            time.sleep(pause)
            pause = min(0.25, pause * 2)

    def cleanup_run_start(self, dry_run: bool = False) -> dict:
        """Queue a run; ``{"run": id, "state": ...}`` (see ``cleanup_run_status``)."""
        return self.call(wire.CleanupRun(dry_run=dry_run)).info

    def cleanup_run_status(self, run: int) -> dict:
        """A run's ``state`` and, once ``done``, its ``report``."""
        return self.call(wire.CleanupRunStatus(run=run), retry=True).info

    def cleanup_rules(self, rules: dict | None = None) -> dict:
        """The NameNode's rules; with ``rules`` (the rules document) replace them first."""
        msg = wire.CleanupRules(rules=rules or {}, replace=rules is not None)
        return self.call(msg, retry=rules is None).info

    def decommission(self, datanode: str, on: bool = True) -> dict:
        """Start decommissioning ``datanode`` (dnid or address), or with ``on=False`` cancel it."""
        return self.call(wire.DecommissionDatanode(datanode=datanode, on=on)).info

    def balance(self, action: str = "status", threshold: float = 0.1,
                bandwidth: int = 10 * 1024 * 1024) -> dict:
        """Start, stop or query the balancer (``action``: start, stop, status)."""
        return self.call(wire.Balance(action=action, threshold=threshold, bandwidth=bandwidth),
                         retry=action == "status").info

    def cleanup_status(self) -> dict:
        """The cleanup rules, the last run and its counters."""
        return self.call(wire.CleanupStatus(), retry=True).info

    def mv(self, src: str, dst: str) -> None:
        """Rename ``src`` to ``dst`` (atomic in the namespace)."""
        self.call(wire.Rename(src=src, dst=dst))

    def concat(self, target: str, sources: list[str]) -> None:
        """Move the blocks of closed files ``sources`` onto the end of ``target``; the sources vanish.

        One journaled NameNode step, so readers see the old or the new file,
        never a half.  Blocks may be shorter than the block size (the file's
        block list carries each one's length); this is how appends are made.
        """
        self.call(wire.Concat(target=target, sources=list(sources)))

    def setrep(self, path: str, replication: int) -> int:
        """Set the replication of every file under ``path``; returns how many files."""
        return self.call(wire.SetReplication(path=path, replication=replication)).info["files"]

    def locations(self, path: str) -> tuple[int, list]:
        """``(length, [[block_id, offset, length, [[dnid, addr, host, data_dir], ...]], ...])``."""
        reply = self.call(wire.GetLocations(path=path), retry=True)
        return reply.length, reply.blocks

    def block_locations(self, path: str) -> list[tuple[int, int, tuple]]:
        """``[(offset, length, (host, ...)), ...]`` per block, for locality-aware scheduling."""
        _, blocks = self.locations(path)
        return [(b[1], b[2], tuple(sorted({r[2] for r in b[3]}))) for b in blocks]

    def fsck(self, path: str = "/") -> dict:
        """The health report of every block under ``path``."""
        return self.call(wire.Fsck(path=path), retry=True).report

    def report(self) -> list[dict]:
        """Every DataNode's state and usage."""
        return self.call(wire.DatanodeReport(), retry=True).nodes

    def refusals(self) -> dict:
        """The NameNode's refusal counters ``{reason: count}`` (for metrics)."""
        return dict(self.call(wire.DatanodeReport(), retry=True).refusals)

    def safemode(self, action: str = "get") -> bool:
        """Get, enter or leave safe mode; returns whether it is on."""
        return self.call(wire.SafeMode(action=action), retry=action == "get").info["safemode"]

    def report_bad(self, block_id: int, dnid: str, reason: str) -> None:
        """Tell the NameNode a replica failed its checksum (best effort)."""
        try:
            self.call(wire.ReportBadReplica(block_id=block_id, dnid=dnid, reason=reason[:500]))
        except MapredError as exc:
            log.warning("could not report bad block %d on %s: %s", block_id, dnid, exc)

    # -- data ------------------------------------------------------------------------------------

    def open(self, path: str, mode: str = "rb", *, overwrite: bool = False, replication: int = 0,
             block_size: int = 0, buffer_size: int = 1024 * 1024, permission: int = 0):
        """A buffered, seekable reader (``"rb"``) or a writer (``"wb"``) of ``path``.

        ``permission``: a new file's bits (0 = the default 0644; ``0o600`` keeps it private).
        """
        if mode in ("rb", "r"):
            return io.BufferedReader(BlockReader(self, path), buffer_size)
        if mode in ("wb", "w"):
            return BlockWriter(self, path, overwrite, replication, block_size, permission)
        raise errors.ConfigError(f"open mode {mode!r} is not 'rb' or 'wb'")

    def put(self, local: str, path: str, *, overwrite: bool = False, replication: int = 0,
            block_size: int = 0) -> int:
        """Copy a local file into the store; return the bytes written.

        The file is memory-mapped, so whole blocks go from the page cache to the
        socket without a copy through a Python buffer.
        """
        try:
            src = open(local, "rb")
        except OSError as exc:
            raise StorageError(f"cannot read local file {local}: {exc.strerror}") from None
        with src, self.open(path, "wb", overwrite=overwrite, replication=replication,
                            block_size=block_size) as out:
            if os.fstat(src.fileno()).st_size == 0:
                return 0
            # not closed explicitly: ZeroMQ may still hold zero-copy slices for a moment;
            # the mapping goes away with the last reference.
            out.write(memoryview(mmap.mmap(src.fileno(), 0, access=mmap.ACCESS_READ)))
            return out.written

    def get(self, path: str, local: str) -> int:
        """Copy a stored file to a local path; return the bytes read."""
        total = 0
        reader = BlockReader(self, path)
        with open(local, "wb") as out:
            for piece in reader.chunks():
                out.write(piece)
                total += len(piece)
        return total

    def read_bytes(self, path: str) -> bytes:
        """The whole file at ``path``, checksums verified."""
        return b"".join(BlockReader(self, path).chunks())

    def write_bytes(self, path: str, data: bytes, **kw) -> None:
        """Write ``data`` as a new file at ``path`` (options as ``open``)."""
        with self.open(path, "wb", **kw) as f:
            f.write(data)

    # -- replica access (used by BlockReader) ----------------------------------------------------

    def read_replica(self, replica: list, block_id: int, offset: int, length: int,
                     block_length: int, token: str = "", digest: str = "", gen: int = 0) -> bytes:
        """Bytes of one block range from one replica, verified end to end; raises on any failure.

        ``gen`` is the block's generation stamp: a local copy at another stamp
        is stale (left by a failed pipeline) and is never read.
        """
        dnid, addr, host, data_dir = replica
        what = f"block {block_id} on {dnid}"
        if self.short_circuit and host == HOSTNAME and data_dir:
            path = bs.block_path(data_dir, block_id)
            if os.path.exists(path):
                # not verified here: ``_checked`` verifies every chunk against the writer's CRCs
                raw, first, size, chunk, crcs, here = bs.read_aligned(path, offset, length, verify=False)
                if gen and here and here != gen:
                    raise errors.ChecksumError(f"{what} is generation {here}, not {gen} (stale)")
                return _checked(what, raw, first, chunk, crcs, size, block_length, digest,
                                offset, length)
        reply, raw, crcs = self._remote_read(addr, block_id, offset, length, token)
        return _checked(what, raw, reply.offset, reply.chunk, crcs, reply.block_length,
                        block_length, digest, offset, length)

    def block_checksums(self, path: str) -> list[tuple[int, int, bytes]]:
        """``[(block_length, chunk, crcs), ...]`` per block of ``path``: the chunk CRC32Cs its replicas store.

        What a file checksum is made from (WebHDFS's GETFILECHECKSUM) without
        reading the data: a local replica's checksum file, or a zero-length read
        of a remote one (the DataNode sends the block's whole CRC list with any
        read).  Each list must hash to the digest the NameNode recorded from the
        writer, so a replica cannot pass off CRCs the writer did not write; one
        that fails is reported and the next replica is asked.
        """
        _, blocks = self.locations(path)
        return [self._stored_crcs(path, block) for block in blocks]

    def _stored_crcs(self, path: str, block: list) -> tuple[int, int, bytes]:
        block_id, _, block_length, replicas = block[:4]
        token, digest = (block[4], block[5]) if len(block) > 5 else ("", "")
        local = sorted(replicas, key=lambda r: r[2] != HOSTNAME)
        for dnid, addr, host, data_dir in local:
            what = f"block {block_id} on {dnid}"
            try:
                if self.short_circuit and host == HOSTNAME and data_dir and \
                        os.path.exists(bs.block_path(data_dir, block_id)):
                    chunk, crcs, _ = bs.read_meta_full(bs.block_path(data_dir, block_id))
                else:
                    reply, _, crcs = self._remote_read(addr, block_id, 0, 0, token)
                    chunk = reply.chunk
                    if reply.block_length != block_length:
                        raise errors.ChecksumError(f"{what} has {reply.block_length} bytes; "
                                                   f"the NameNode says {block_length}")
                bs.check_replica(what, b"", 0, chunk, crcs, block_length, digest)
                return block_length, chunk, bytes(crcs)
            except (errors.ChecksumError, bs.BlockMissing) as exc:
                self.report_bad(block_id, dnid, str(exc))
            except (MapredError, OSError) as exc:
                log.warning("replica %s of block %d failed: %s", addr, block_id, exc)
        raise NoLiveReplica(f"{path}: no replica of block {block_id} gave its checksums")

    def _borrow(self, addr: str) -> zmq.Socket:
        """A DEALER to DataNode ``addr`` from the pool (sockets are never shared between threads)."""
        with self._sock_lock:
            free = self._socks.get(addr)
            if free:
                return free.pop()
        sock = make_socket(self.ctx, zmq.DEALER, secret=self.secret)
        sock.connect(addr)
        return sock

    def _give_back(self, addr: str, sock: zmq.Socket) -> None:
        with self._sock_lock:
            self._socks.setdefault(addr, []).append(sock)

    def _remote_read(self, addr: str, block_id: int, offset: int, length: int, token: str):
        """``(BlockData reply, bytes from reply.offset, the block's CRC list)`` from ``addr``."""
        sock = self._borrow(addr)
        healthy = False
        try:
            rid = random.getrandbits(31)
            send(sock, wire.ReadBlock(rid=rid, block_id=block_id, offset=offset, length=length,
                                      token=token))
            reply, data = self._await(sock, rid, addr, block_id)
            healthy = True
        finally:
            if healthy:
                self._give_back(addr, sock)
            else:   # a late reply must never reach the next request: drop the socket
                sock.close(0)
        if isinstance(reply, wire.Error):
            _raise(reply)
        if not isinstance(reply, wire.BlockData) or len(data) != 2:
            raise ProtocolError(f"DataNode {addr} sent {reply.TYPE} for a read")
        return reply, data[0], data[1]

    def _await(self, sock, rid: int, addr: str, block_id: int):
        while True:
            got = recv(sock, self.read_timeout)
            if got is None:
                raise ClusterError(f"DataNode {addr} did not answer a read of block {block_id}")
            if got[1].rid == rid:
                return got[1], got[2]


def _checked(what: str, raw, first: int, chunk: int, crcs, size: int, block_length: int,
             digest: str, offset: int, length: int):
    """The asked range of ``raw`` (bytes from ``first``) once it passed the end-to-end check."""
    if size != block_length:
        raise errors.ChecksumError(f"{what} has {size} bytes; the NameNode says {block_length}")
    bs.check_replica(what, raw, first, chunk, crcs, block_length, digest)
    end = block_length if length < 0 else min(block_length, offset + length)
    if offset < first or first + len(raw) < end:
        raise errors.ChecksumError(f"{what}: the replica sent bytes {first}..{first + len(raw)}, "
                                   f"not {offset}..{end}")
    if offset == first and end - first == len(raw):
        return raw
    return memoryview(raw)[offset - first:end - first]


class BlockReader(io.RawIOBase):
    """Raw, seekable reader of a stored file; wrap in ``io.BufferedReader`` (``Client.open``)."""

    def __init__(self, client: Client, path: str) -> None:
        super().__init__()
        self.client, self.path = client, path
        self.length, self.blocks = client.locations(path)
        self.pos = 0
        self._buf, self._buf_start = b"", 0
        self._bad: set = set()   # (block_id, dnid) pairs that failed for this reader

    def readable(self) -> bool:
        """Always true: this is a read stream."""
        return True

    def seekable(self) -> bool:
        """Always true: a seek moves to another block without reading between."""
        return True

    def tell(self) -> int:
        """The current offset in the file."""
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move to ``offset`` relative to ``whence`` (0 start, 1 here, 2 end)."""
        base = {0: 0, 1: self.pos, 2: self.length}[whence]
        if base + offset < 0:
            raise StorageError(f"seek to {base + offset} before the start of {self.path}")
        self.pos = base + offset
        return self.pos

    def readinto(self, b) -> int:
        """Fill ``b`` from the buffered block, fetching the next range when empty."""
        if self.pos >= self.length:
            return 0
        rel = self.pos - self._buf_start
        if not 0 <= rel < len(self._buf):
            self._fill()
            rel = 0
        n = min(len(b), len(self._buf) - rel)
        b[:n] = self._buf[rel:rel + n]
        self.pos += n
        return n

    def chunks(self, lookahead: int = 2, end: int | None = None, piece: int = READ_SIZE):
        """Yield the file from ``pos`` to ``end`` (default: its end) in pieces of up to ``piece`` bytes.

        The fast path for whole-file copies and ranged downloads: no copy into a
        caller's buffer, and the next pieces are read and checksum-verified in
        threads while this one is used.
        """
        with ThreadPoolExecutor(max_workers=lookahead) as pool:
            for future in self.pieces(pool, lookahead, end, piece):
                yield self.advance(future.result())

    def pieces(self, pool, lookahead: int = 2, end: int | None = None, piece: int = READ_SIZE):
        """Futures of the pieces ``chunks`` yields, in order, each read and verified in ``pool``.

        At most ``lookahead + 1`` pieces are asked for ahead of the one the
        caller waits on.  For a caller that must not block on a read (the HTTP
        service awaits each future on its event loop); it hands every piece's
        bytes to ``advance`` in order, as ``chunks`` does.  Closing the
        generator early cancels the reads not yet started.
        """
        end = self.length if end is None else min(end, self.length)
        ranges = []
        for block in self.blocks:
            block_id, start, length = block[:3]
            off, hi = max(self.pos, start) - start, min(end, start + length) - start
            while off < hi:
                # cut at multiples of ``piece`` within the block: with a piece a multiple of the
                # chunk, no chunk straddles two pieces, so none is read and verified twice
                cut = min(hi, (off // piece + 1) * piece)
                ranges.append((block, off, cut - off))
                off = cut
        pending = collections.deque()
        try:
            for item in ranges:
                pending.append(pool.submit(self._from_replicas, *item))
                if len(pending) > lookahead:
                    yield pending.popleft()
            while pending:
                yield pending.popleft()
        finally:
            for future in pending:
                future.cancel()

    def advance(self, piece) -> bytes:
        """Count ``piece`` (the next one from ``pieces``) as read: ``pos`` moves past it."""
        self.pos += len(piece)
        return piece

    def _fill(self) -> None:
        """Fetch up to ``READ_SIZE`` bytes at ``pos`` from within one block."""
        block = next(blk for blk in self.blocks if blk[1] <= self.pos < blk[1] + blk[2])
        block_id, start, length = block[:3]
        off = self.pos - start
        want = min(READ_SIZE, length - off)
        self._buf = self._from_replicas(block, off, want)
        self._buf_start = self.pos
        if len(self._buf) != want:
            raise StorageError(f"{self.path}: block {block_id} gave {len(self._buf)} of {want} bytes")

    def _from_replicas(self, block: list, off: int, want: int) -> bytes:
        """The bytes from the first replica that reads right; ``NoLiveReplica`` after about 7.5 s of
        fresh looks (``REPLICA_WAITS``, as HDFS's client waits for a block's locations)."""
        for attempt in range(1 + len(REPLICA_WAITS)):
            if attempt:
                time.sleep(REPLICA_WAITS[attempt - 1])
                self._refresh()
                block = next((b for b in self.blocks if b[0] == block[0]), block)
            token, digest = (block[4], block[5]) if len(block) > 5 else ("", "")
            gen = block[6] if len(block) > 6 else 0
            for replica in self._ordered(block[3], block[0]):
                try:
                    return self.client.read_replica(replica, block[0], off, want, block[2],
                                                    token, digest, gen)
                except (errors.ChecksumError, bs.BlockMissing) as exc:
                    self._bad.add((block[0], replica[0]))
                    self.client.report_bad(block[0], replica[0], str(exc))
                except (MapredError, OSError) as exc:
                    log.warning("replica %s of block %d failed: %s", replica[1], block[0], exc)
                    self._bad.add((block[0], replica[0]))
        raise NoLiveReplica(f"{self.path}: no live replica of block {block[0]} "
                            f"(bytes {block[1]}..{block[1] + block[2]}) could be read")

    def _ordered(self, replicas: list, block_id: int) -> list:
        """Replicas on this host first, the rest shuffled; ones that failed here skipped."""
        good = [r for r in replicas if (block_id, r[0]) not in self._bad]
        random.shuffle(good)
        return sorted(good, key=lambda r: r[2] != HOSTNAME)

    def _refresh(self) -> None:
        try:
            _, self.blocks = self.client.locations(self.path)
        except MapredError as exc:
            log.warning("could not refresh locations of %s: %s", self.path, exc)


class BlockWriter(io.RawIOBase):
    """Buffers one block, then writes it down a pipeline; ``close()`` makes the file visible."""

    def __init__(self, client: Client, path: str, overwrite: bool, replication: int,
                 block_size: int, permission: int = 0) -> None:
        super().__init__()
        self.client, self.path = client, path
        reply = client.call(wire.Create(path=path, overwrite=overwrite, replication=replication,
                                        block_size=block_size, client_host=HOSTNAME,
                                        mode=permission))
        self.block_size = int(reply.info["block_size"])
        self.buf = bytearray()
        self.previous: list = []
        self.written = 0

    def writable(self) -> bool:
        """Always true: this is a write stream."""
        return True

    def write(self, data) -> int:
        """Buffer ``data``; every full block goes down the replication pipeline."""
        if self.closed:
            raise ValueError(f"write to closed writer of {self.path}")
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            if not self.buf and len(view) - done >= self.block_size:   # whole block: no copy
                self._send_block(view[done:done + self.block_size])
                done += self.block_size
                continue
            take = min(len(view) - done, self.block_size - len(self.buf))
            self.buf += view[done:done + take]
            done += take
            if len(self.buf) >= self.block_size:
                self._send_block(self.buf)
                self.buf = bytearray()
        self.written += done
        return done

    def _send_block(self, data) -> None:
        exclude: list = []
        crcs = None
        for _ in range(4):
            reply = self.client.call(wire.AddBlock(path=self.path, client_host=HOSTNAME,
                                                   previous=self.previous, exclude=exclude))
            self.previous = []
            addrs = {addr: dnid for dnid, addr in reply.targets}
            crcs = crcs if crcs is not None else bs.chunk_crcs(data)
            stored, failed = write_block(self.client.ctx, list(addrs), reply.block_id, data,
                                         secret=self.client.secret, token=reply.token, crcs=crcs,
                                         renew=functools.partial(self._renew, reply.block_id))
            if stored:
                self.previous = [reply.block_id, len(data), [addrs[a] for a in stored],
                                 bs.crc_digest(crcs)]
                return
            exclude += [addrs[a] for a in failed]
        raise NoLiveReplica(f"{self.path}: no DataNode pipeline accepted a block after 4 tries")

    def _renew(self, block_id: int) -> str:
        """A write token for a new generation stamp of ``block_id`` (before a pipeline restart)."""
        return self.client.call(wire.BumpGeneration(path=self.path, block_id=block_id)).token

    def close(self) -> None:
        """Flush the last block and complete the file at the NameNode."""
        if self.closed:
            return
        try:
            if self.buf:
                self._send_block(self.buf)
                self.buf = bytearray()
            self.client.call(wire.Complete(path=self.path, last=self.previous))
        finally:
            super().close()

    def abort(self) -> None:
        """Give up: the file never becomes visible."""
        if not self.closed:
            super().close()
            try:
                self.client.call(wire.Abandon(path=self.path))
            except MapredError as exc:
                log.warning("abandon of %s failed: %s", self.path, exc)

    def __exit__(self, exc_type, *rest):
        if exc_type is not None:
            self.abort()
        else:
            self.close()
