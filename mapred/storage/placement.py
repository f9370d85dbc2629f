"""Where replicas go, and which copies to make or trim.  Pure functions of the block map.

Placement (as HDFS): the writer's own DataNode first when it has one, then
DataNodes on hosts not yet used by this block, emptiest first; never two
copies on one DataNode; never a node without room for a block.  Replication
work: blocks with the fewest live copies first, at most ``max_streams`` copies
in flight, each from a live good replica to new targets.
"""
from __future__ import annotations

from dataclasses import dataclass

from mapred.storage.blocks import BlockMap, BlockState, DatanodeInfo


@dataclass(frozen=True)
class ReplicateBlock:
    """Copy ``block_id`` from DataNode ``source`` to ``targets`` (dnids)."""

    block_id: int
    length: int
    source: str
    targets: tuple


@dataclass(frozen=True)
class DeleteReplica:
    """Remove the copy of ``block_id`` on DataNode ``dnid``."""

    block_id: int
    dnid: str


def choose_targets(nodes: list[DatanodeInfo], count: int, *, writer_host: str = "",
                   exclude: frozenset = frozenset(), existing: tuple = (),
                   block_size: int = 0) -> list[str]:
    """Up to ``count`` dnids for new copies (fewer when not enough nodes qualify)."""
    existing_hosts = {n.host for n in nodes if n.dnid in existing}
    candidates = [n for n in nodes
                  if n.dnid not in exclude and n.dnid not in existing
                  and (n.capacity <= 0 or n.remaining >= block_size)]
    chosen: list[DatanodeInfo] = []
    local = [n for n in candidates if writer_host and n.host == writer_host and not existing]
    if local and count > 0:
        chosen.append(min(local, key=_emptiness))
    used_hosts = existing_hosts | {n.host for n in chosen}
    rest = sorted((n for n in candidates if n not in chosen), key=_emptiness)
    for prefer_new_host in (True, False):
        for node in rest:
            if len(chosen) >= count:
                break
            if node in chosen or (prefer_new_host and node.host in used_hosts):
                continue
            chosen.append(node)
            used_hosts.add(node.host)
    return [n.dnid for n in chosen[:count]]


def _emptiness(node: DatanodeInfo):
    return (node.usage(), len(node.blocks), node.dnid)


def replication_work(bmap: BlockMap, in_flight: dict, max_streams: int) -> list:
    """Replicate/delete actions for under- and over-replicated complete blocks.

    ``in_flight`` maps block_id -> set of target dnids already being copied to;
    those count as copies so that a slow copy is not started twice.
    """
    live = bmap.in_service_nodes()
    actions: list = []
    budget = max_streams - sum(len(t) for t in in_flight.values())
    needy = []
    for block_id, info in bmap.blocks.items():
        if info.state is not BlockState.COMPLETE:
            continue
        have = bmap.in_service_replicas(block_id)
        readable = bmap.live_replicas(block_id)     # with copies on decommissioning nodes
        pending = in_flight.get(block_id, set())
        if len(have) + len(pending) < info.replication and readable:
            needy.append((len(have), block_id, have, pending))
        elif len(have) > info.replication and not pending:
            actions.extend(_trim(bmap, info, have))
    for _, block_id, have, pending in sorted(needy):
        if budget <= 0:
            break
        info = bmap.blocks[block_id]
        need = min(info.replication - len(have) - len(pending), budget)
        readable = bmap.live_replicas(block_id)
        targets = choose_targets(live, need, existing=tuple(readable) + tuple(pending),
                                 exclude=frozenset(info.corrupt), block_size=info.length)
        if targets:
            # a decommissioning node is the best source: it takes no new writes (as HDFS)
            leaving = [d for d in readable if d not in have]
            source = min(leaving or have, key=lambda d: (len(bmap.nodes[d].blocks), d))
            actions.append(ReplicateBlock(block_id, info.length, source, tuple(targets)))
            budget -= len(targets)
    return actions


def _trim(bmap: BlockMap, info, have: list[str]) -> list[DeleteReplica]:
    """Delete surplus copies from the fullest nodes, keeping as many hosts as possible."""
    keep = list(have)
    drops = []
    while len(keep) > info.replication:
        hosts = [bmap.nodes[d].host for d in keep]
        dup = [d for d in keep if hosts.count(bmap.nodes[d].host) > 1]
        pool = dup or keep
        victim = max(pool, key=lambda d: (bmap.nodes[d].usage(), len(bmap.nodes[d].blocks), d))
        keep.remove(victim)
        drops.append(DeleteReplica(info.block_id, victim))
    return drops
