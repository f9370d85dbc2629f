"""The NameNode's brain: namespace + block map + liveness + replication + safe mode.  Pure.

No sockets and no clock: time comes in as ``now`` arguments and ``Tick``
events, block ids come in from the caller, and durability is a ``log``
callable the caller supplies (the journal's append, which fsyncs).  Every
namespace change is logged *before* it is applied, so what the namespace
shows is always what the journal holds.

Client requests are methods that return a value or raise a ``StorageError``.
DataNode traffic is ``handle(event) -> commands``: the commands returned for
a heartbeat are that DataNode's queued work (replicate, delete, verify,
register).

Trust (see docs/security.md): every block carries a generation stamp and the
digest of its writer's chunk CRCs; reads and writes need HMAC block tokens
signed with ``token_key`` (``tokens.block_token``), so a DataNode accepts only
blocks this core allocated.  A replica is condemned only on evidence the
core can trust: its own DataNode's word (``ReplicaCorrupt``).  Anyone else's
report (``ReplicaSuspected``) only asks that DataNode to re-verify its copy,
and a corrupt copy is deleted only while a good copy lives elsewhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from mapred.core.dispatch import handler_table
from mapred.errors import NoLiveReplica, SafeModeError, StorageError
from mapred.security import tokens
from mapred.storage.blocks import AdminState, BlockMap, BlockState, DatanodeInfo, NodeState
from mapred.storage.elastic import DecommissionAndBalance
from mapred.storage import trash
from mapred.storage.namespace import DirNode, Namespace, normalize, split
from mapred.storage.placement import DeleteReplica, ReplicateBlock, choose_targets, replication_work

MAX_REPLICATION = 32


# -- events from DataNodes (and the clock) -----------------------------------------------------

@dataclass(frozen=True)
class DatanodeRegistered:
    """A DataNode introduced itself (first time or after a restart)."""

    dnid: str
    addr: str
    host: str
    data_dir: str
    capacity: int
    used: int
    remaining: int
    now: float


@dataclass(frozen=True)
class HeartbeatReceived:
    """A DataNode is alive, with its space figures."""

    dnid: str
    capacity: int
    used: int
    remaining: int
    now: float


@dataclass(frozen=True)
class BlockReportReceived:
    """A DataNode's full list of the blocks it holds."""

    dnid: str
    blocks: dict          # block_id -> length
    now: float
    gens: dict = field(default_factory=dict)   # block_id -> the copy's generation stamp (if known)


@dataclass(frozen=True)
class ReplicaReceived:
    """A DataNode finished receiving a block (a write or a re-replication)."""

    dnid: str
    block_id: int
    length: int
    now: float
    gen: int = 0          # the copy's generation stamp (0: unknown)


@dataclass(frozen=True)
class ReplicaCorrupt:
    """Trusted evidence: ``dnid`` itself found its copy of ``block_id`` bad."""

    block_id: int
    dnid: str


@dataclass(frozen=True)
class ReplicaSuspected:
    """Untrusted: a reader says ``dnid``'s copy is bad.  Only a re-verification may condemn it."""

    block_id: int
    dnid: str


@dataclass(frozen=True)
class Tick:
    """Time passed: dead DataNodes, stale copies and replication work are checked."""

    now: float


@dataclass
class UnderConstruction:
    """A file being written: invisible until ``complete``; forgotten on abandon or restart."""

    path: str
    replication: int
    block_size: int
    client_host: str
    last_active: float
    blocks: list = field(default_factory=list)      # committed [block_id, length, gen, digest]
    current: int | None = None                      # allocated, not yet committed
    current_gen: int = 0
    owner: str = ""                                 # who the file will belong to ("" = nobody)
    mode: int = 0                                   # its permission bits (0 = the default)


EVENTS = (DatanodeRegistered, HeartbeatReceived, BlockReportReceived, ReplicaReceived,
          ReplicaCorrupt, ReplicaSuspected, Tick)


@dataclass
class Settings:
    """The NameNode's tunables: file defaults, liveness, safe mode, re-replication, leases."""

    replication: int = 3
    block_size: int = 64 * 1024 * 1024
    dead_timeout: float = 10.0
    safemode_threshold: float = 0.999
    max_streams: int = 8            # concurrent re-replication copies
    copy_timeout: float = 30.0      # a copy not confirmed by then is tried again
    lease_timeout: float = 120.0    # a silent writer's file is abandoned after this
    scan_period: float = 1.0        # seconds between replication scans (each is O(blocks))
    trash_interval: float = trash.DEFAULT_INTERVAL   # 0 = `rm` deletes at once
    trash_checkpoint_interval: float = 0.0           # 0 = min(trash_interval, 1 h)
    token_lifetime: float = tokens.DEFAULT_LIFETIME   # seconds a block token is good for


class Namesystem(DecommissionAndBalance):
    """All NameNode state.  ``log(ops, txid)`` must make ops durable before returning."""

    def __init__(self, ns: Namespace, settings: Settings,
                 log: Callable[[list, int], None] = lambda ops, txid: None,
                 token_key: bytes = b"") -> None:
        self.ns, self.cfg, self.log = ns, settings, log
        self.token_key = token_key or tokens.new_key()
        self.bmap = BlockMap()
        self.writing: dict[str, UnderConstruction] = {}
        self.queued: dict[str, list] = {}         # dnid -> commands for its next heartbeat
        self.in_flight: dict[int, dict] = {}      # block_id -> {target dnid: deadline}
        self.safemode_manual = False
        self._next_scan = float("-inf")
        self.leaving: set[str] = set()            # dnids the operator decommissions
        self.moving: dict[int, tuple] = {}        # block_id -> (source, target) of a balancer move
        self.balancing: dict | None = None        # {"threshold", "bandwidth"} while `fs balance` runs
        self.balance_log: list[str] = []
        self.next_gen = 1
        self._handlers = handler_table(self, "_on_", EVENTS)
        for entry, path, replication in ns.all_block_entries():
            gen, digest = _entry_meta(entry)
            self.bmap.add_block(entry[0], entry[1], replication, path, gen=gen, digest=digest)
            self.next_gen = max(self.next_gen, gen + 1)
        self.safemode_auto = bool(self.bmap.blocks)

    # -- helpers ---------------------------------------------------------------------------------

    @property
    def safemode(self) -> bool:
        """Whether writes are refused until enough blocks are reported."""
        return self.safemode_manual or self.safemode_auto

    def _writable(self) -> None:
        if self.safemode:
            raise SafeModeError("the NameNode is in safe mode (read-only); "
                                "wait for block reports or run `mapred fs safemode leave`")

    def _commit(self, ops: list[dict]) -> None:
        """Journal then apply: nothing becomes visible before it is durable."""
        if ops:
            self.log(ops, self.ns.txid + len(ops))
            for op in ops:
                self.ns.apply(op)

    def _queue(self, dnid: str, command: dict) -> None:
        self.queued.setdefault(dnid, []).append(command)

    def _delete_everywhere(self, block_id: int) -> None:
        for dnid in self.bmap.remove_block(block_id):
            self._queue(dnid, {"op": "delete", "blocks": [block_id]})
        self.in_flight.pop(block_id, None)

    # -- namespace requests ----------------------------------------------------------------------

    def mkdir(self, path: str, parents: bool, now: float, owner: str = "", mode: int = 0) -> None:
        """Make a directory (journaled), owned by ``owner`` with permission bits ``mode``."""
        path = normalize(path)
        self._writable()
        self._commit(self.ns.mkdir_ops(path, parents, now, owner, mode))

    def chmod(self, path: str, mode: int | None = None, owner: str | None = None) -> None:
        """Set a path's permission bits and/or owner (journaled)."""
        path = normalize(path)
        self._writable()
        self._commit(self.ns.chmod_ops(path, mode, owner))

    def create(self, path: str, overwrite: bool, replication: int, block_size: int,
               client_host: str, now: float, owner: str = "", mode: int = 0) -> UnderConstruction:
        """Open a new file for writing (replacing one with ``overwrite``); returns its writer state."""
        path = normalize(path)
        self._writable()
        replication = replication or self.cfg.replication
        block_size = block_size or self.cfg.block_size
        if not 1 <= replication <= MAX_REPLICATION:
            raise StorageError(f"replication {replication} for {path} is outside 1..{MAX_REPLICATION}")
        if block_size <= 0:
            raise StorageError(f"block size {block_size} for {path} must be positive")
        self.ns.check_create(path, overwrite)
        old = self.writing.get(path)
        if old is not None and now - old.last_active < self.cfg.lease_timeout and not overwrite:
            raise StorageError(f"{path} is being written by another client")
        if old is not None:
            self.abandon(path)
        uc = self.writing[path] = UnderConstruction(path, replication, block_size, client_host, now,
                                                    owner=owner, mode=mode)
        return uc

    def _writer(self, path: str, now: float) -> UnderConstruction:
        uc = self.writing.get(normalize(path))
        if uc is None:
            raise StorageError(f"{path} is not open for writing (lease lost or NameNode restarted)")
        uc.last_active = now
        return uc

    def _commit_block(self, uc: UnderConstruction, previous: list) -> None:
        """Record the writer's finished block: its length and the DataNodes that acked it."""
        if not previous:
            return
        block_id, length, dnids = int(previous[0]), int(previous[1]), list(previous[2])
        digest = str(previous[3]) if len(previous) > 3 else ""
        if block_id != uc.current:
            raise StorageError(f"block {block_id} is not the block being written to {uc.path}")
        self.bmap.add_block(block_id, length, uc.replication, uc.path, BlockState.UNDER_CONSTRUCTION,
                            gen=uc.current_gen, digest=digest)
        for dnid in dnids:
            self.bmap.add_replica(block_id, dnid)
        uc.blocks.append([block_id, length, uc.current_gen, digest])
        uc.current = None

    def add_block(self, path: str, previous: list, exclude: list, client_host: str,
                  block_id: int, now: float) -> list[tuple[str, str]]:
        """Allocate ``block_id`` for ``path``; return the pipeline ``[(dnid, addr), ...]``."""
        self._writable()
        uc = self._writer(path, now)
        self._commit_block(uc, previous)
        if uc.current is not None:   # the writer gave up on its block: retry elsewhere
            self._delete_everywhere(uc.current)
            uc.current = None
        targets = choose_targets(self.bmap.in_service_nodes(), uc.replication,
                                 writer_host=client_host or uc.client_host,
                                 exclude=frozenset(exclude), block_size=uc.block_size)
        if not targets:
            raise NoLiveReplica(f"no live DataNode with room can take a block of {uc.path}")
        uc.current_gen, self.next_gen = self.next_gen, self.next_gen + 1
        self.bmap.add_block(block_id, 0, uc.replication, uc.path, BlockState.UNDER_CONSTRUCTION,
                            gen=uc.current_gen)
        uc.current = block_id
        return [(d, self.bmap.nodes[d].addr) for d in targets]

    def bump_gen(self, path: str, block_id: int, now: float) -> tuple[int, str]:
        """Pipeline recovery: a new generation stamp for the block being written; ``(gen, token)``.

        The writer asks before it restarts a block on the DataNodes left in its
        pipeline (HDFS's ``updateBlockForPipeline``).  Copies recorded so far
        come from the failed pipeline: they become stale (counted corrupt, never
        served) until their DataNode stores the block again at the new stamp.
        """
        uc = self._writer(path, now)
        if block_id != uc.current:
            raise StorageError(f"block {block_id} is not the block being written to {uc.path}")
        uc.current_gen, self.next_gen = self.next_gen, self.next_gen + 1
        info = self.bmap.blocks[block_id]
        info.gen = uc.current_gen
        for dnid in sorted(info.replicas):
            self.bmap.mark_corrupt(block_id, dnid)
        return self.token(block_id, tokens.WRITE, now)

    def _stale(self, block_id: int, gen: int) -> bool:
        """Whether a copy at stamp ``gen`` is from an older generation than the block's."""
        info = self.bmap.blocks.get(block_id)
        return info is not None and bool(gen) and bool(info.gen) and gen != info.gen

    def token(self, block_id: int, mode: str, now: float) -> tuple[int, str]:
        """``(generation stamp, token)`` allowing ``mode`` on a block this core allocated."""
        info = self.bmap.blocks.get(block_id)
        if info is None:
            raise StorageError(f"block {block_id} was not allocated by this NameNode")
        return info.gen, tokens.block_token(self.token_key, block_id, info.gen, mode,
                                            now + self.cfg.token_lifetime)

    def complete(self, path: str, last: list, now: float) -> None:
        """Close the file: journal it with all its blocks; it is visible from now on."""
        self._writable()
        uc = self._writer(path, now)
        self._commit_block(uc, last)
        if uc.current is not None:
            self._delete_everywhere(uc.current)
        replaced = self.ns.lookup(uc.path)
        old_blocks = [b[0] for b in getattr(replaced, "blocks", [])]
        self.ns.check_create(uc.path, overwrite=True)
        ops = ([{"op": "delete", "path": uc.path}] if replaced is not None else [])
        self._commit(ops + self.ns.add_file_ops(uc.path, uc.replication, uc.block_size,
                                                uc.blocks, now, uc.owner, uc.mode))
        del self.writing[uc.path]
        for block_id in old_blocks:
            self._delete_everywhere(block_id)
        for block_id, *_ in uc.blocks:
            self.bmap.blocks[block_id].state = BlockState.COMPLETE

    def abandon(self, path: str) -> None:
        """Give up a file being written: it and its blocks are forgotten."""
        uc = self.writing.pop(normalize(path), None)
        if uc is not None:
            for block_id in [b[0] for b in uc.blocks] + ([uc.current] if uc.current else []):
                self._delete_everywhere(block_id)

    def delete(self, path: str, recursive: bool) -> None:
        """Delete a path (journaled); its blocks are deleted on their DataNodes."""
        path = normalize(path)
        self._writable()
        ops = self.ns.delete_ops(path, recursive)
        doomed = [b[0] for _, node in self.ns.walk_files(path) for b in node.blocks]
        self._commit(ops)
        for block_id in doomed:
            self._delete_everywhere(block_id)

    def remove(self, path: str, recursive: bool, user: str, use_trash: bool, now: float,
               owner: str = "") -> str:
        """``rm``: into ``user``'s trash (returning where it went) or, without trash, gone ("")."""
        path = normalize(path)
        if not use_trash or self.cfg.trash_interval <= 0 or trash.in_trash(path):
            self.delete(path, recursive)
            return ""
        self._writable()
        node = self.ns.get(path)
        if trash.holds_trash(path):
            raise StorageError(f"{path} holds users' trash; delete it with --skip-trash")
        if isinstance(node, DirNode) and node.children and not recursive:
            raise StorageError(f"{path} is a non-empty directory (use -r)")
        exists = lambda p: self.ns.lookup(p) is not None   # noqa: E731
        dst = trash.target(path, trash.check_user(user), exists, now)
        try:            # the trash directories belong to whoever deleted (``owner``)
            ops = self.ns.mkdir_ops(split(dst)[0], True, now, owner)
        except StorageError:    # a file of an earlier deletion sits where a parent would go
            dst = f"{trash.current(user)}/{int(now * 1000)}{path}"
            ops = self.ns.mkdir_ops(split(dst)[0], True, now, owner)
        self._commit(ops + [{"op": "rename", "src": path, "dst": dst, "mtime": now}])
        self._retarget(dst)
        return dst

    def rename(self, src: str, dst: str, now: float) -> None:
        """Move a path (journaled)."""
        src, dst = normalize(src), normalize(dst)
        self._writable()
        ops = self.ns.rename_ops(src, dst, now)
        self._commit(ops)
        self._retarget(ops[0]["dst"])

    def _retarget(self, new_root: str) -> None:
        """Blocks of files that moved to ``new_root`` learn their new path."""
        for path, node in self.ns.walk_files(new_root):
            for block_id, *_ in node.blocks:
                self.bmap.blocks[block_id].path = path

    def pin(self, path: str, tag: str, on: bool = True) -> None:
        """Mark ``path`` pinned by ``tag`` (journaled): no cleanup rule touches it while pinned."""
        path = normalize(path)
        self._writable()
        self._commit(self.ns.pin_ops(path, tag, on))

    def concat(self, target: str, sources: list[str], now: float) -> None:
        """Append the blocks of closed files ``sources`` to ``target`` (which keeps its replication)."""
        target, sources = normalize(target), [normalize(s) for s in sources]
        self._writable()
        ops = self.ns.concat_ops(target, sources, now)
        self._commit(ops)
        node = self.ns.get_file(target)
        for block_id, *_ in node.blocks:
            info = self.bmap.blocks[block_id]
            info.path, info.replication = target, node.replication

    def set_replication(self, path: str, replication: int) -> int:
        """Set the target factor of every file at or under ``path``; return the file count."""
        path = normalize(path)
        self._writable()
        if not 1 <= replication <= MAX_REPLICATION:
            raise StorageError(f"replication {replication} is outside 1..{MAX_REPLICATION}")
        ops = self.ns.setrep_ops(path, replication)
        self._commit(ops)
        for p, node in self.ns.walk_files(path):
            for block_id, *_ in node.blocks:
                self.bmap.blocks[block_id].replication = replication
        return len(ops)

    # -- queries ---------------------------------------------------------------------------------

    def listing(self, path: str) -> list[dict]:
        """The status entries of a directory."""
        return self.ns.listing(normalize(path))

    def status(self, path: str) -> dict:
        """The status entry of one path."""
        return self.ns.status(normalize(path))

    def locations(self, path: str, now: float = 0.0) -> tuple[int, list]:
        """``(length, [[block_id, offset, length, [[dnid, addr, host, data_dir], ...], token,
        digest], ...])`` -- ``token`` a read token good until ``now`` + the token lifetime."""
        node = self.ns.get_file(normalize(path))
        out, offset = [], 0
        for entry in node.blocks:
            block_id, length = entry[0], entry[1]
            replicas = [[d, self.bmap.nodes[d].addr, self.bmap.nodes[d].host,
                         self.bmap.nodes[d].data_dir] for d in self.bmap.live_replicas(block_id)]
            gen, token = self.token(block_id, tokens.READ, now)
            out.append([block_id, offset, length, replicas, token, _entry_meta(entry)[1], gen])
            offset += length
        return offset, out

    def fsck(self, path: str) -> dict:
        """Files, blocks and their health under ``path``; ``healthy`` is False if any block is lost."""
        files = blocks = missing = corrupt = under = over = 0
        problems = []
        for fpath, node in self.ns.walk_files(normalize(path)):
            files += 1
            for block_id, *_ in node.blocks:
                blocks += 1
                info = self.bmap.blocks[block_id]
                live = len(self.bmap.live_replicas(block_id))
                serving = len(self.bmap.in_service_replicas(block_id))
                state = self._block_health(live, serving, info, node.replication)
                missing += state == "MISSING"
                corrupt += state == "CORRUPT"
                under += state == "UNDER_REPLICATED"
                over += state == "OVER_REPLICATED"
                if state != "HEALTHY" and len(problems) < 1000:
                    problems.append({"path": fpath, "block_id": block_id, "state": state,
                                     "live": live, "target": node.replication})
        return {"path": normalize(path), "files": files, "blocks": blocks, "missing": missing,
                "corrupt": corrupt, "under_replicated": under, "over_replicated": over,
                "problems": problems, "healthy": missing == 0 and corrupt == 0,
                "safemode": self.safemode, "live_datanodes": len(self.bmap.live_nodes())}

    @staticmethod
    def _block_health(live: int, serving: int, info, target: int) -> str:
        """Copies on a node being decommissioned still count: they serve reads until it is done."""
        if live == 0:
            return "CORRUPT" if info.corrupt else "MISSING"
        if live < target:
            return "UNDER_REPLICATED"
        return "OVER_REPLICATED" if serving > target else "HEALTHY"

    def datanode_report(self) -> list[dict]:
        """Every DataNode as a plain dict; a decommissioning one also says how many blocks still wait for copies."""
        out = []
        for dnid, node in sorted(self.bmap.nodes.items()):
            entry = node.describe()
            if node.admin is AdminState.DECOMMISSION_INPROGRESS:
                entry["decommission_pending"] = len(self._still_needed(node))
            out.append(entry)
        return out

    def set_safemode(self, action: str) -> bool:
        """``get``, ``enter`` or ``leave`` safe mode; returns whether it is on."""
        if action == "enter":
            self.safemode_manual = True
        elif action == "leave":
            self.safemode_manual = self.safemode_auto = False
        elif action != "get":
            raise StorageError(f"unknown safemode action {action!r} (get, enter, leave)")
        return self.safemode

    def report_bad(self, block_id: int, dnid: str) -> None:
        """``dnid`` found its own copy bad: stop counting it; delete it once a good copy lives.

        The node stays in the block's corrupt set (so no new copy is placed there
        while the delete is on its way) until its next full block report.  A copy
        that is the last one is kept (and the block shows CORRUPT in ``fsck``):
        a bad copy may still be partly readable, a deleted one is gone.  The
        other holders are asked to re-verify; only once one of them (or a new
        copy) is confirmed good does ``_drop_corrupt_copies`` delete bad ones --
        the copies the core merely believes good may have rotted as well.
        """
        if not self.bmap.mark_corrupt(block_id, dnid):
            return
        info = self.bmap.blocks[block_id]
        info.confirmed.clear()       # one copy rotted: the others are believed, not known, good
        for other in self.bmap.live_replicas(block_id):
            self._queue(other, {"op": "verify", "blocks": [block_id]})

    def _drop_corrupt_copies(self, block_id: int) -> None:
        """A copy was just confirmed good: delete the copies known bad that are still held."""
        info = self.bmap.blocks.get(block_id)
        if info is None or not any(self.bmap.is_live(d) for d in info.confirmed & info.replicas):
            return
        for dnid in sorted(info.corrupt):
            if self.bmap.is_live(dnid):
                self._queue(dnid, {"op": "delete", "blocks": [block_id]})

    # -- DataNode events -------------------------------------------------------------------------

    def handle(self, event) -> list[dict]:
        """Step the core; return commands for the DataNode the event came from (if any)."""
        return self._handlers[type(event)](event) or []

    def _on_DatanodeRegistered(self, ev: DatanodeRegistered):
        self.bmap.register(DatanodeInfo(ev.dnid, ev.addr, ev.host, ev.data_dir, ev.capacity,
                                        ev.used, ev.remaining, ev.now))
        node = self.bmap.nodes[ev.dnid]
        if ev.dnid in self.leaving and node.admin is AdminState.IN_SERVICE:
            node.admin = AdminState.DECOMMISSION_INPROGRESS
        return []

    def _on_HeartbeatReceived(self, ev: HeartbeatReceived):
        node = self.bmap.nodes.get(ev.dnid)
        if node is None or node.state is NodeState.DEAD:
            return [{"op": "register"}]
        node.capacity, node.used, node.remaining, node.last_seen = (
            ev.capacity, ev.used, ev.remaining, ev.now)
        return self.queued.pop(ev.dnid, [])

    def _on_BlockReportReceived(self, ev: BlockReportReceived):
        if not self.bmap.is_live(ev.dnid):
            return [{"op": "register"}]
        self.bmap.nodes[ev.dnid].last_seen = ev.now
        stale = {b for b, gen in ev.gens.items() if self._stale(b, gen)}
        orphans = [b for b in self.bmap.apply_report(ev.dnid, ev.blocks, stale)
                   if not self.safemode_manual]
        for block_id in sorted(stale):
            self._drop_corrupt_copies(block_id)
        self._check_safemode()
        return [{"op": "delete", "blocks": orphans}] if orphans else []

    def _on_ReplicaReceived(self, ev: ReplicaReceived):
        if not self.bmap.is_live(ev.dnid):
            return [{"op": "register"}]
        flights = self.in_flight.get(ev.block_id)
        if flights is not None:
            flights.pop(ev.dnid, None)
            if not flights:
                del self.in_flight[ev.block_id]
        info = self.bmap.blocks.get(ev.block_id)
        if info is None:
            return []   # a write in progress reports before commit, or a stale block: ignore
        if self._stale(ev.block_id, ev.gen) or (
                info.state is BlockState.COMPLETE and ev.length != info.length):
            self.bmap.nodes[ev.dnid].blocks.add(ev.block_id)   # stale or short: never served
            self.bmap.mark_corrupt(ev.block_id, ev.dnid)
            self._drop_corrupt_copies(ev.block_id)
            return []
        if ev.gen and ev.gen == info.gen:   # a copy at the current stamp replaces a stale one
            info.corrupt.discard(ev.dnid)
        self.bmap.add_replica(ev.block_id, ev.dnid)
        self._moved(ev.block_id, ev.dnid)
        if ev.dnid in info.replicas:      # a fresh or re-verified copy: known good, not believed
            info.confirmed.add(ev.dnid)
            self._drop_corrupt_copies(ev.block_id)
        return []

    def _on_ReplicaCorrupt(self, ev: ReplicaCorrupt):
        self.report_bad(ev.block_id, ev.dnid)
        return []

    def _on_ReplicaSuspected(self, ev: ReplicaSuspected):
        """Ask the accused DataNode to re-verify; it reports ``ReplicaCorrupt`` if the copy is bad."""
        node = self.bmap.nodes.get(ev.dnid)
        if node is not None and ev.block_id in node.blocks:
            self._queue(ev.dnid, {"op": "verify", "blocks": [ev.block_id]})
        return []

    def _on_Tick(self, ev: Tick):
        for node in self.bmap.live_nodes():
            if ev.now - node.last_seen > self.cfg.dead_timeout:
                self.bmap.node_dead(node.dnid)
        for path, uc in list(self.writing.items()):
            if ev.now - uc.last_active > self.cfg.lease_timeout:
                self.abandon(path)
        self._expire_copies(ev.now)
        self._check_safemode()
        if not self.safemode and ev.now >= self._next_scan:
            self._next_scan = ev.now + self.cfg.scan_period
            self._schedule_replication(ev.now)
            self._check_decommission()
            self._schedule_balance(ev.now)
        return []

    def _expire_copies(self, now: float) -> None:
        for block_id, flights in list(self.in_flight.items()):
            for dnid, deadline in list(flights.items()):
                if now > deadline or not self.bmap.is_live(dnid):
                    del flights[dnid]
            if not flights:
                del self.in_flight[block_id]
        for block_id, (source, target, deadline) in list(self.moving.items()):
            if now > deadline or not self.bmap.is_live(target) or block_id not in self.bmap.blocks:
                del self.moving[block_id]

    def _schedule_replication(self, now: float) -> None:
        pending = {b: set(f) for b, f in self.in_flight.items()}
        for action in replication_work(self.bmap, pending, self.cfg.max_streams):
            if isinstance(action, ReplicateBlock):
                targets = [[d, self.bmap.nodes[d].addr] for d in action.targets]
                _, token = self.token(action.block_id, tokens.WRITE, now)
                self._queue(action.source, {"op": "replicate", "block_id": action.block_id,
                                            "length": action.length, "targets": targets,
                                            "token": token})
                flights = self.in_flight.setdefault(action.block_id, {})
                for dnid in action.targets:
                    flights[dnid] = now + self.cfg.copy_timeout
            elif isinstance(action, DeleteReplica):
                self._queue(action.dnid, {"op": "delete", "blocks": [action.block_id]})
                self.bmap.remove_replica(action.block_id, action.dnid)

    def _check_safemode(self) -> None:
        """Leave automatic safe mode once enough complete blocks have a live copy."""
        if not self.safemode_auto:
            return
        complete = [b for b, i in self.bmap.blocks.items() if i.state is BlockState.COMPLETE]
        if not complete:
            self.safemode_auto = False
            return
        reported = sum(1 for b in complete if self.bmap.live_replicas(b))
        if reported / len(complete) >= self.cfg.safemode_threshold:
            self.safemode_auto = False

    def validate(self) -> None:
        """Invariants for tests: the block map agrees with the namespace and itself."""
        self.bmap.validate()
        for block_id, _, path, _ in self.ns.all_blocks():
            assert block_id in self.bmap.blocks, (block_id, path)
            assert self.bmap.blocks[block_id].path == path, (block_id, path)


def _entry_meta(entry) -> tuple[int, str]:
    """``(generation stamp, digest)`` of a stored block entry (0 and "" for old journals)."""
    return (int(entry[2]) if len(entry) > 2 else 0), (str(entry[3]) if len(entry) > 3 else "")
