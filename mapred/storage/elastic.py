"""DataNode decommission and the balancer: the part of the NameNode core that moves copies on purpose.

Mixed into ``Namesystem`` (and as pure as it: no clock, no sockets).

Decommission (HDFS's ``DECOMMISSION_INPROGRESS -> DECOMMISSIONED``): the
node takes no new copies and stops counting towards replication, so the
replication monitor copies its blocks to in-service nodes (from the
decommissioning node itself by preference); it keeps serving reads, and its
copies still count for ``fsck`` health, so nothing is under-replicated at any
moment.  Once every block it holds has full replication elsewhere it is
DECOMMISSIONED and may be stopped.

Balance: see ``balancer``; moves share the replication monitor's copy
machinery (``in_flight``) and delete the source's copy only after the
target confirmed its copy.
"""
from __future__ import annotations

from mapred.errors import StorageError
from mapred.storage import balancer
from mapred.storage.blocks import AdminState, BlockState


class DecommissionAndBalance:
    """Needs of the host class: ``bmap``, ``cfg``, ``in_flight``, ``_queue``, ``_next_scan``,
    ``leaving``, ``moving``, ``balancing``, ``balance_log``."""

    def find_datanode(self, name: str) -> str:
        """The dnid of the node called ``name`` (its dnid, address or host:port); one match only."""
        hits = [d for d, n in self.bmap.nodes.items()
                if name in (d, n.addr, n.addr.removeprefix("tcp://"))]
        if len(hits) != 1:
            known = ", ".join(f"{d} ({n.addr})" for d, n in sorted(self.bmap.nodes.items()))
            raise StorageError(f"no single DataNode called {name!r}; known: {known or 'none'}")
        return hits[0]

    def decommission(self, name: str, on: bool = True) -> str:
        """Start (or cancel) decommissioning: copies leave the node, which keeps serving reads."""
        dnid = self.find_datanode(name)
        node = self.bmap.nodes[dnid]
        if on:
            self.leaving.add(dnid)
            if node.admin is AdminState.IN_SERVICE:
                node.admin = AdminState.DECOMMISSION_INPROGRESS
                self._next_scan = float("-inf")
        else:
            self.leaving.discard(dnid)
            node.admin = AdminState.IN_SERVICE
        return dnid

    def _still_needed(self, node) -> list[int]:
        """Blocks on ``node`` without their full replication on in-service nodes."""
        out = []
        for block_id in node.blocks:
            info = self.bmap.blocks.get(block_id)
            if info is None:
                continue
            if (info.state is not BlockState.COMPLETE
                    or len(self.bmap.in_service_replicas(block_id)) < info.replication):
                out.append(block_id)
        return out

    def _check_decommission(self) -> None:
        for node in self.bmap.live_nodes():
            if node.admin is AdminState.DECOMMISSION_INPROGRESS and not self._still_needed(node):
                node.admin = AdminState.DECOMMISSIONED

    def start_balance(self, threshold: float, bandwidth: int) -> dict:
        """Move blocks until every in-service node is within ``threshold`` of its share."""
        if not 0 < threshold < 1:
            raise StorageError(f"balance threshold {threshold} must be between 0 and 1")
        if bandwidth <= 0:
            raise StorageError(f"balance bandwidth {bandwidth} must be positive bytes per second")
        self.balancing = {"threshold": threshold, "bandwidth": bandwidth, "moved": 0,
                          "moved_bytes": 0, "running": True}
        return self.balance_status()

    def balance_status(self) -> dict:
        b = self.balancing
        threshold = b["threshold"] if b else 0.1
        used = balancer.usage(self.bmap, self.moving)
        return {"running": bool(b and b["running"]), "moving": len(self.moving),
                "balanced": balancer.balanced(self.bmap, threshold, self.moving),
                "moved": b["moved"] if b else 0, "moved_bytes": b["moved_bytes"] if b else 0,
                "used": used, "log": self.balance_log[-20:]}

    def _schedule_balance(self, now: float) -> None:
        b = self.balancing
        if b is None or not b["running"]:
            return
        budget = int(b["bandwidth"] * self.cfg.scan_period)
        moves = balancer.balance_work(self.bmap, b["threshold"], self.moving, budget,
                                      self.cfg.max_streams)
        if not moves and not self.moving:     # nothing in flight and no move helps: done
            verdict = ("balanced" if balancer.balanced(self.bmap, b["threshold"])
                       else "as balanced as the blocks allow")
            self.balance_log.append(f"{verdict} after {b['moved']} moves ({b['moved_bytes']} bytes)")
            b["running"] = False
            return
        for m in moves:
            self.moving[m.block_id] = (m.source, m.target, now + self.cfg.copy_timeout)
            self._queue(m.source, {"op": "replicate", "block_id": m.block_id, "length": m.length,
                                   "targets": [[m.target, self.bmap.nodes[m.target].addr]],
                                   "token": self.token(m.block_id, "w", now)[1]})   # the write token
            self.in_flight.setdefault(m.block_id, {})[m.target] = now + self.cfg.copy_timeout

    def _moved(self, block_id: int, dnid: str) -> None:
        """A balancer copy landed: the source's copy goes (the block never lacks a replica)."""
        move = self.moving.get(block_id)
        if move is None or move[1] != dnid:
            return
        del self.moving[block_id]
        source = move[0]
        if source in self.bmap.blocks[block_id].replicas and self.bmap.is_live(source):
            self._queue(source, {"op": "delete", "blocks": [block_id]})
            self.bmap.remove_replica(block_id, source)
        if self.balancing is not None:
            self.balancing["moved"] += 1
            self.balancing["moved_bytes"] += self.bmap.blocks[block_id].length
