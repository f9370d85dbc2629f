"""DataNode decommission and the balancer on a bare NameNode core, DataNodes simulated by events.

``settle`` plays the DataNodes: each heartbeat's replicate commands become
``ReplicaReceived`` events from the targets, deletes drop the copy; fsck is
checked after every step, so "never under-replicated" is checked at every
moment the core can be observed.
"""
import pytest

from mapred.errors import StorageError
from mapred.storage import balancer
from mapred.storage.blocks import AdminState
from mapred.storage.namesystem import BlockReportReceived, HeartbeatReceived, ReplicaReceived, Tick

from test_storage_namesystem import GB, join, make, write_file


def settle(core, start, steps=60, watch=None):
    """Tick, heartbeat and carry out commands; return the time reached."""
    now = start
    for _ in range(steps):
        now += 1.0
        core.handle(Tick(now))
        for node in list(core.bmap.live_nodes()):
            for cmd in core.handle(HeartbeatReceived(node.dnid, 10 * GB, 0, 10 * GB, now)):
                if cmd["op"] == "replicate":
                    for dnid, _ in cmd["targets"]:
                        core.handle(ReplicaReceived(dnid, cmd["block_id"], cmd["length"], now))
        if watch:
            watch(core)
        core.validate()
    return now


def never_under(core):
    report = core.fsck("/")
    assert report["under_replicated"] == 0 and report["missing"] == 0, report["problems"]


def test_decommission_copies_first_serves_reads_then_is_decommissioned():
    core, _ = make(4, replication=3)
    for i in range(6):
        write_file(core, f"/f{i}", nblocks=2, block_id=100 + 10 * i)
    holder = "dn0"
    held = set(core.bmap.nodes[holder].blocks)
    assert held
    core.decommission(holder)
    assert core.bmap.nodes[holder].admin is AdminState.DECOMMISSION_INPROGRESS
    # still readable from the leaving node, and never a target of a new block
    length, blocks = core.locations("/f0")
    assert any(holder in [r[0] for r in b[3]] for b in blocks)
    core.create("/new", False, 0, 0, "", 0.5)
    assert holder not in [d for d, _ in core.add_block("/new", [], [], "", 999, 0.5)]
    core.abandon("/new")
    settle(core, 1.0, watch=never_under)
    assert core.bmap.nodes[holder].admin is AdminState.DECOMMISSIONED
    for block_id in held:
        assert len(core.bmap.in_service_replicas(block_id)) == 3
    report = [n for n in core.datanode_report() if n["dnid"] == holder][0]
    assert report["admin_state"] == "DECOMMISSIONED"
    core.bmap.node_dead(holder)         # stopped: nothing is under-replicated
    never_under(core)


def test_decommission_waits_when_there_is_nowhere_to_copy_and_can_be_cancelled():
    core, _ = make(3, replication=3)
    write_file(core, "/f")
    core.decommission("dn1")
    settle(core, 1.0, steps=10, watch=never_under)
    assert core.bmap.nodes["dn1"].admin is AdminState.DECOMMISSION_INPROGRESS
    assert [n for n in core.datanode_report() if n["dnid"] == "dn1"][0]["decommission_pending"] == 1
    core.decommission(core.bmap.nodes["dn1"].addr, on=False)
    assert core.bmap.nodes["dn1"].admin is AdminState.IN_SERVICE
    with pytest.raises(StorageError, match="no single DataNode"):
        core.decommission("dn9")


def test_decommission_survives_the_node_restarting():
    core, _ = make(4, replication=2)
    write_file(core, "/f")
    core.decommission("dn0")
    core.bmap.node_dead("dn0")
    join(core, "dn0", now=2)
    assert core.bmap.nodes["dn0"].admin is AdminState.DECOMMISSION_INPROGRESS


def test_balance_moves_blocks_to_new_nodes_until_within_threshold():
    core, _ = make(2, replication=1)
    for i in range(20):
        write_file(core, f"/f{i}", block_id=100 + i)
    join(core, "dn2", now=0)
    join(core, "dn3", now=0)
    assert not balancer.balanced(core.bmap, 0.1)
    core.start_balance(0.1, bandwidth=10**9)

    def watch(core):
        never_under(core)
        core.balance_status()          # asked while moves are in flight, as `fs balance` polls

    settle(core, 1.0, steps=40, watch=watch)
    status = core.balance_status()
    assert not status["running"] and status["balanced"] and status["moved"] > 0
    assert all(4 <= len(core.bmap.nodes[d].blocks) <= 6 for d in ("dn0", "dn1", "dn2", "dn3"))
    assert core.fsck("/")["over_replicated"] == 0


def test_balance_is_throttled_by_bandwidth():
    core, _ = make(1, replication=1)
    for i in range(10):
        write_file(core, f"/f{i}", block_id=100 + i)
    join(core, "dn1", now=0)
    core.start_balance(0.1, bandwidth=10)      # 10 B/s, blocks of 10 B: one move per scan
    core.handle(Tick(1.0))
    assert len(core.moving) == 1
    status = core.balance_status()               # asked while a move is in flight, as `fs balance` polls
    assert status["running"] and status["moving"] == 1
    with pytest.raises(StorageError):
        core.start_balance(2.0, 10)


def test_a_block_report_after_a_move_does_not_resurrect_the_source_copy():
    core, _ = make(1, replication=1)
    write_file(core, "/f", block_id=7)
    write_file(core, "/g", block_id=8)
    join(core, "dn1", now=0)
    core.start_balance(0.1, bandwidth=10**9)
    settle(core, 1.0, steps=5)
    moved = [b for b in (7, 8) if "dn1" in core.bmap.blocks[b].replicas]
    assert len(moved) == 1
    # the source deleted the file: its next full report no longer lists it
    core.handle(BlockReportReceived("dn0", {b: 10 for b in (7, 8) if b not in moved}, 10.0))
    assert core.bmap.blocks[moved[0]].replicas == {"dn1"}
