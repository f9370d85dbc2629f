"""The block map: which DataNodes hold which blocks, and what the NameNode knows of each DataNode.

Pure state, rebuilt on every start from the namespace (which blocks exist) and
the DataNodes' block reports (where they are): replica locations are never
journaled, as in HDFS, because the DataNodes are the truth about their disks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class NodeState(str, Enum):
    """A DataNode's liveness as the NameNode sees it."""

    LIVE = "LIVE"
    DEAD = "DEAD"


class AdminState(str, Enum):
    """What the operator wants of a DataNode (HDFS's admin states), apart from its liveness."""

    IN_SERVICE = "IN_SERVICE"
    DECOMMISSION_INPROGRESS = "DECOMMISSION_INPROGRESS"   # copies leave; still serves reads
    DECOMMISSIONED = "DECOMMISSIONED"                     # every block has full copies elsewhere


class BlockState(str, Enum):
    """A block's health: its live replicas against its target."""

    UNDER_CONSTRUCTION = "UNDER_CONSTRUCTION"   # its file is still being written
    COMPLETE = "COMPLETE"


@dataclass
class DatanodeInfo:
    """What the NameNode knows of one DataNode: address, host, space, liveness."""

    dnid: str
    addr: str
    host: str
    data_dir: str
    capacity: int = 0
    used: int = 0
    remaining: int = 0
    last_seen: float = 0.0
    state: NodeState = NodeState.LIVE
    blocks: set = field(default_factory=set)
    admin: AdminState = AdminState.IN_SERVICE

    def usage(self) -> float:
        """Share of capacity used; unknown capacity counts as empty."""
        return self.used / self.capacity if self.capacity > 0 else 0.0

    def describe(self) -> dict:
        """The node as a plain dict, for ``mapred fs report``."""
        return {"dnid": self.dnid, "addr": self.addr, "host": self.host, "state": self.state.value,
                "admin_state": self.admin.value,
                "capacity": self.capacity, "used": self.used, "remaining": self.remaining,
                "blocks": len(self.blocks), "last_seen": self.last_seen}


@dataclass
class BlockInfo:
    """One block: length, target replication, owning path, replicas and corrupt ones."""

    block_id: int
    length: int
    replication: int
    path: str
    state: BlockState = BlockState.COMPLETE
    gen: int = 0                                  # generation stamp (0: from an old journal)
    digest: str = ""                              # hash of the writer's chunk CRCs ("" unknown)
    replicas: set = field(default_factory=set)    # dnids with a good copy
    corrupt: set = field(default_factory=set)     # dnids whose copy is known bad
    confirmed: set = field(default_factory=set)   # dnids whose copy was checked good since


class BlockMap:
    """Blocks and DataNodes, with the replica relation kept in both directions."""

    def __init__(self) -> None:
        self.blocks: dict[int, BlockInfo] = {}
        self.nodes: dict[str, DatanodeInfo] = {}

    # -- blocks ----------------------------------------------------------------------------------

    def add_block(self, block_id: int, length: int, replication: int, path: str,
                  state: BlockState = BlockState.COMPLETE, gen: int = 0,
                  digest: str = "") -> BlockInfo:
        """Record a new block of a file (no replicas yet), its generation stamp and CRC digest."""
        info = self.blocks.get(block_id)
        if info is None:
            info = self.blocks[block_id] = BlockInfo(block_id, length, replication, path, state,
                                                     gen, digest)
        else:
            info.length, info.replication, info.path, info.state = length, replication, path, state
            info.gen, info.digest = gen or info.gen, digest or info.digest
        return info

    def remove_block(self, block_id: int) -> set:
        """Forget a block; return the dnids that hold a copy (good or corrupt) to delete it."""
        info = self.blocks.pop(block_id, None)
        if info is None:
            return set()
        holders = info.replicas | info.corrupt
        for dnid in holders:
            node = self.nodes.get(dnid)
            if node is not None:
                node.blocks.discard(block_id)
        return holders

    def add_replica(self, block_id: int, dnid: str) -> bool:
        """Record a good copy; False when the block is unknown (an orphan to delete)."""
        info = self.blocks.get(block_id)
        node = self.nodes.get(dnid)
        if info is None or node is None:
            return False
        if dnid not in info.corrupt:
            info.replicas.add(dnid)
        node.blocks.add(block_id)
        return True

    def remove_replica(self, block_id: int, dnid: str) -> None:
        """Forget that ``dnid`` holds the block."""
        info = self.blocks.get(block_id)
        if info is not None:
            info.replicas.discard(dnid)
            info.corrupt.discard(dnid)
            info.confirmed.discard(dnid)
        node = self.nodes.get(dnid)
        if node is not None:
            node.blocks.discard(block_id)

    def mark_corrupt(self, block_id: int, dnid: str) -> bool:
        """The copy on ``dnid`` is bad; True if this was news."""
        info = self.blocks.get(block_id)
        node = self.nodes.get(dnid)
        if info is None or node is None or block_id not in node.blocks or dnid in info.corrupt:
            return False
        info.replicas.discard(dnid)
        info.corrupt.add(dnid)
        return True

    def live_replicas(self, block_id: int) -> list[str]:
        """Dnids of good copies on LIVE DataNodes, in a stable order."""
        info = self.blocks.get(block_id)
        if info is None:
            return []
        return sorted(d for d in info.replicas if self.is_live(d))

    def in_service_replicas(self, block_id: int) -> list[str]:
        """Live good copies that count towards replication (not on a node being decommissioned)."""
        return [d for d in self.live_replicas(block_id) if self.in_service(d)]

    def in_service(self, dnid: str) -> bool:
        node = self.nodes.get(dnid)
        return node is not None and node.state is NodeState.LIVE and node.admin is AdminState.IN_SERVICE

    def in_service_nodes(self) -> list[DatanodeInfo]:
        """Live nodes that may take new copies."""
        return [n for n in self.live_nodes() if n.admin is AdminState.IN_SERVICE]

    # -- datanodes ---------------------------------------------------------------------------------

    def is_live(self, dnid: str) -> bool:
        """Whether the DataNode is registered and alive."""
        node = self.nodes.get(dnid)
        return node is not None and node.state is NodeState.LIVE

    def live_nodes(self) -> list[DatanodeInfo]:
        """Every live DataNode."""
        return [n for _, n in sorted(self.nodes.items()) if n.state is NodeState.LIVE]

    def register(self, info: DatanodeInfo) -> None:
        """A (re)registering DataNode.  Known replicas stay until its full block report says
        otherwise, so a repeated registration does not make its blocks look lost for a moment."""
        old = self.nodes.get(info.dnid)
        if old is None:
            self.nodes[info.dnid] = info
            return
        for name in ("addr", "host", "data_dir", "capacity", "used", "remaining", "last_seen"):
            setattr(old, name, getattr(info, name))
        old.state = NodeState.LIVE

    def node_dead(self, dnid: str) -> None:
        """A silent DataNode: its copies stop counting until it registers again."""
        node = self.nodes.get(dnid)
        if node is None:
            return
        node.state = NodeState.DEAD
        for block_id in list(node.blocks):
            self.remove_replica(block_id, dnid)

    def apply_report(self, dnid: str, reported: dict, stale: set = frozenset()) -> list[int]:
        """Replace ``dnid``'s replicas by a full report ``{block_id: length}``; return orphans.

        A reported copy whose length differs from a complete block's is corrupt,
        and so is one in ``stale`` (its generation stamp is not the block's).
        """
        node = self.nodes[dnid]
        for block_id in list(node.blocks - set(reported)):
            self.remove_replica(block_id, dnid)
        orphans = []
        for block_id, length in reported.items():
            info = self.blocks.get(block_id)
            if info is None:
                orphans.append(block_id)
            elif block_id in stale or (info.state is BlockState.COMPLETE and length != info.length):
                node.blocks.add(block_id)
                self.mark_corrupt(block_id, dnid)
            else:
                self.add_replica(block_id, dnid)
        return orphans

    def validate(self) -> None:
        """Invariants: the two directions of the replica relation agree."""
        for block_id, info in self.blocks.items():
            assert not (info.replicas & info.corrupt), block_id
            for dnid in info.replicas | info.corrupt:
                assert block_id in self.nodes[dnid].blocks, (block_id, dnid)
        for dnid, node in self.nodes.items():
            for block_id in node.blocks:
                info = self.blocks.get(block_id)
                assert info is not None and dnid in info.replicas | info.corrupt, (dnid, block_id)
