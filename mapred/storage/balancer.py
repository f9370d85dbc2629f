"""Block moves that even out DataNode usage, HDFS-balancer style.  Pure functions of the block map.

A node's fair share of the stored bytes is proportional to its capacity
(equal shares when capacities are unknown).  A node holding more than
``(1 + threshold)`` times its share is a source, one holding less than
``(1 - threshold)`` times it a target.  A move copies one block from a source
to a target that has no copy of it; once the target confirms the copy, the
NameNode deletes the source's copy — the block is never short of a replica.
Bytes are the block map's (always current), not the heartbeats'.
"""
from __future__ import annotations

from dataclasses import dataclass

from mapred.storage.blocks import BlockMap, BlockState


@dataclass(frozen=True)
class MoveBlock:
    block_id: int
    length: int
    source: str
    target: str


def usage(bmap: BlockMap, moving: dict) -> dict[str, int]:
    """Bytes per in-service node, counting moves in flight as done."""
    used = {n.dnid: sum(bmap.blocks[b].length for b in n.blocks if b in bmap.blocks)
            for n in bmap.in_service_nodes()}
    for block_id, move in moving.items():      # (source, target[, deadline])
        source, target = move[0], move[1]
        length = bmap.blocks[block_id].length if block_id in bmap.blocks else 0
        if source in used:
            used[source] -= length
        if target in used:
            used[target] += length
    return used


def shares(bmap: BlockMap, used: dict) -> dict[str, float]:
    nodes = {n.dnid: n for n in bmap.in_service_nodes()}
    caps = {d: nodes[d].capacity for d in used}
    total_cap = sum(caps.values())
    total = sum(used.values())
    if total_cap <= 0 or any(c <= 0 for c in caps.values()):
        return {d: total / len(used) for d in used} if used else {}
    return {d: total * caps[d] / total_cap for d in used}


def balanced(bmap: BlockMap, threshold: float, moving: dict | None = None) -> bool:
    used = usage(bmap, moving or {})
    share = shares(bmap, used)
    return all(abs(used[d] - share[d]) <= threshold * share[d] + _slack(bmap) for d in used)


def _slack(bmap: BlockMap) -> int:
    """One block of tolerance in the verdict: a node cannot hold part of a block."""
    return max((i.length for i in bmap.blocks.values()), default=0)


def balance_work(bmap: BlockMap, threshold: float, moving: dict, budget_bytes: int,
                 max_moves: int) -> list[MoveBlock]:
    """Moves from the fullest sources to the emptiest targets, within the byte and count budgets."""
    used = usage(bmap, moving)
    share = shares(bmap, used)
    sources = sorted((d for d in used if used[d] > share[d] * (1 + threshold)),
                     key=lambda d: share[d] - used[d])
    moves: list[MoveBlock] = []
    in_flight = len(moving)
    for source in sources:
        for block_id in sorted(bmap.nodes[source].blocks):
            if in_flight + len(moves) >= max_moves or budget_bytes <= 0:
                return moves
            info = bmap.blocks.get(block_id)
            if (info is None or info.state is not BlockState.COMPLETE or block_id in moving
                    or source not in info.replicas or used[source] <= share[source] * (1 + threshold)):
                continue
            target = _target(bmap, info, used, share, threshold)
            if target is None:
                continue
            moves.append(MoveBlock(block_id, info.length, source, target))
            moving = {**moving, block_id: (source, target)}
            used[source] -= info.length
            used[target] += info.length
            budget_bytes -= info.length
    return moves


def _target(bmap, info, used, share, threshold):
    holders = info.replicas | info.corrupt
    room = [d for d in used if d not in holders
            and used[d] + info.length <= share[d] * (1 + threshold)
            and (bmap.nodes[d].capacity <= 0 or bmap.nodes[d].remaining >= info.length)]
    return min(room, key=lambda d: (used[d] - share[d], d)) if room else None
