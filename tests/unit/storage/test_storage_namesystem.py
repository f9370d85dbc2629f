"""The NameNode core fed events: liveness, replication, corruption, safe mode, placement."""
import pytest

from mapred.errors import FileNotFound, NoLiveReplica, SafeModeError, StorageError
from mapred.storage.blocks import DatanodeInfo
from mapred.storage.namespace import Namespace
from mapred.storage.namesystem import (
    BlockReportReceived,
    DatanodeRegistered,
    HeartbeatReceived,
    Namesystem,
    ReplicaCorrupt,
    ReplicaSuspected,
    ReplicaReceived,
    Settings,
    Tick,
)
from mapred.storage.placement import choose_targets

GB = 1 << 30


def make(n=3, **kw):
    logged = []
    core = Namesystem(Namespace(), Settings(dead_timeout=10, **kw), log=lambda ops, t: logged.append(ops))
    for i in range(n):
        join(core, f"dn{i}", now=0)
    return core, logged


def join(core, dnid, now, host=None):
    core.handle(DatanodeRegistered(dnid, f"tcp://127.0.0.1:{1000 + len(core.bmap.nodes)}",
                                   host or dnid, "/d", 10 * GB, 0, 10 * GB, now))
    core.handle(BlockReportReceived(dnid, {}, now))


def beat(core, now, nodes=None):
    out = {}
    for d in nodes or [n.dnid for n in core.bmap.live_nodes()]:
        out[d] = core.handle(HeartbeatReceived(d, 10 * GB, 0, 10 * GB, now))
    return out


def write_file(core, path, nblocks=1, now=0.0, block_id=100):
    core.create(path, False, 0, 0, "", now)
    prev = []
    for i in range(nblocks):
        targets = core.add_block(path, prev, [], "", block_id + i, now)
        dnids = [d for d, _ in targets]
        for d in dnids:
            core.handle(ReplicaReceived(d, block_id + i, 10, now))
        prev = [block_id + i, 10, dnids]
    core.complete(path, prev, now)
    return prev


def test_file_invisible_until_complete_and_journaled_before_visible():
    core, logged = make()
    core.create("/f", False, 0, 0, "", 0)
    with pytest.raises(FileNotFound):
        core.status("/f")
    targets = core.add_block("/f", [], [], "", 1, 0)
    assert len(targets) == 3 and not logged
    core.complete("/f", [1, 10, [d for d, _ in targets]], 0)
    assert core.status("/f")["length"] == 10
    assert logged[-1][-1]["op"] == "add_file"
    core.validate()


def test_dead_datanode_triggers_copy_to_new_node_and_fsck_recovers():
    core, _ = make(3)
    write_file(core, "/f")
    assert core.fsck("/")["under_replicated"] == 0
    beat(core, 5, ["dn0", "dn1"])
    core.handle(Tick(12))                                  # dn2 silent for 12s > 10s
    assert core.fsck("/")["under_replicated"] == 1
    join(core, "dn3", now=12)
    core.handle(Tick(12.5))                                # scans run once per scan_period
    assert not any(beat(core, 12.6).values())
    core.handle(Tick(13))
    commands = beat(core, 13)
    copies = [c for cs in commands.values() for c in cs if c["op"] == "replicate"]
    assert len(copies) == 1 and copies[0]["targets"][0][0] == "dn3"
    core.handle(Tick(14))                                  # in flight: not scheduled twice
    assert not any(c["op"] == "replicate" for cs in beat(core, 14.1).values() for c in cs)
    core.handle(ReplicaReceived("dn3", 100, 10, 14.2))
    assert core.fsck("/")["under_replicated"] == 0
    core.validate()


def test_replication_above_live_nodes_is_accepted_and_reported_without_loops():
    core, _ = make(2)
    core.create("/f", False, 5, 0, "", 0)
    targets = core.add_block("/f", [], [], "", 7, 0)
    assert len(targets) == 2
    core.complete("/f", [7, 10, [d for d, _ in targets]], 0)
    core.handle(Tick(1))
    assert not any(beat(core, 1).values())
    report = core.fsck("/")
    assert report["under_replicated"] == 1 and report["healthy"]


def test_corrupt_replica_is_dropped_then_replaced():
    core, _ = make(4)
    prev = write_file(core, "/f")
    bad = prev[2][0]
    core.handle(ReplicaCorrupt(100, bad))
    assert bad not in core.bmap.live_replicas(100)
    first = beat(core, 1)
    assert not any(c["op"] == "delete" for c in first[bad])    # nothing deleted on belief alone
    checkers = [d for d, cs in first.items() if {"op": "verify", "blocks": [100]} in cs]
    assert sorted(checkers) == sorted(prev[2][1:])
    core.handle(ReplicaReceived(checkers[0], 100, 10, 1))        # one copy re-verified good
    assert {"op": "delete", "blocks": [100]} in beat(core, 1)[bad]
    core.handle(Tick(1))
    copies = [c for cs in beat(core, 1.1).values() for c in cs if c["op"] == "replicate"]
    assert copies and copies[0]["targets"][0][0] not in prev[2]
    core.validate()


def test_over_replication_is_trimmed():
    core, _ = make(4)
    write_file(core, "/f")
    core.set_replication("/f", 2)
    core.handle(Tick(1))
    deletes = [c for cs in beat(core, 1).values() for c in cs if c["op"] == "delete"]
    assert len(deletes) == 1 and len(core.bmap.live_replicas(100)) == 2


def test_safe_mode_until_blocks_reported_and_manual_control():
    core, _ = make(3)
    write_file(core, "/f")
    restarted = Namesystem(core.ns, Settings())
    assert restarted.safemode
    with pytest.raises(SafeModeError):
        restarted.mkdir("/x", False, 0)
    restarted.handle(DatanodeRegistered("dn0", "tcp://h:1", "h", "/d", 1, 0, 1, 0))
    restarted.handle(BlockReportReceived("dn0", {100: 10}, 0))
    assert not restarted.safemode
    restarted.set_safemode("enter")
    assert restarted.safemode
    restarted.set_safemode("leave")
    restarted.mkdir("/x", False, 0)


def test_unknown_heartbeat_asks_to_register_and_orphans_are_deleted():
    core, _ = make(1)
    assert core.handle(HeartbeatReceived("stranger", 1, 0, 1, 0)) == [{"op": "register"}]
    assert core.handle(BlockReportReceived("dn0", {999: 5}, 0)) == [{"op": "delete", "blocks": [999]}]


def test_wrong_length_in_report_is_corrupt():
    core, _ = make(3)
    write_file(core, "/f")
    core.handle(BlockReportReceived("dn0", {100: 3}, 1))
    assert "dn0" in core.bmap.blocks[100].corrupt
    core.validate()


def test_no_datanodes_is_a_clear_error():
    core, _ = make(0)
    core.create("/f", False, 0, 0, "", 0)
    with pytest.raises(NoLiveReplica, match="/f"):
        core.add_block("/f", [], [], "", 1, 0)


def test_abandoned_writer_lease_expires():
    core, _ = make(1, lease_timeout=5)
    core.create("/f", False, 0, 0, "", 0)
    core.add_block("/f", [], [], "", 1, 0)
    core.handle(Tick(6))
    assert "/f" not in core.writing and 1 not in core.bmap.blocks
    with pytest.raises(StorageError, match="not open"):
        core.complete("/f", [], 7)


def test_delete_and_overwrite_queue_block_deletions():
    core, _ = make(3)
    write_file(core, "/f")
    write_file(core, "/g", block_id=200)
    core.create("/g", True, 0, 0, "", 1)
    core.complete("/g", [], 1)
    core.delete("/f", False)
    deletes = sorted(b for cs in beat(core, 2).values() for c in cs if c["op"] == "delete"
                     for b in c["blocks"])
    assert deletes == [100] * 3 + [200] * 3
    core.validate()


def node(dnid, host, used=0):
    return DatanodeInfo(dnid, "tcp://x:1", host, "/d", capacity=100, used=used, remaining=100 - used)


def test_placement_writer_first_then_distinct_hosts_then_emptiest():
    nodes = [node("a", "h1", 50), node("b", "h1", 10), node("c", "h2", 90), node("d", "h3", 20)]
    assert choose_targets(nodes, 3, writer_host="h1") == ["b", "d", "c"]
    assert choose_targets(nodes, 2) == ["b", "d"]
    assert choose_targets(nodes, 9) == ["b", "d", "c", "a"]
    assert choose_targets(nodes, 2, exclude=frozenset({"b"}), existing=("d",)) == ["a", "c"]
    full = [node("z", "h9", 100)]
    assert choose_targets(full, 1, block_size=10) == []


def test_repeated_registration_keeps_replicas_and_queued_work():
    core, _ = make(4)
    write_file(core, "/f")
    core.handle(ReplicaCorrupt(100, "dn0"))
    core.handle(ReplicaReceived("dn2", 100, 10, 1))              # dn2's copy re-verified good
    core.handle(DatanodeRegistered("dn1", "tcp://127.0.0.1:9", "dn1", "/d", 10 * GB, 0, 10 * GB, 1))
    assert "dn1" in core.bmap.live_replicas(100) and core.bmap.nodes["dn1"].addr.endswith(":9")
    assert {"op": "delete", "blocks": [100]} in beat(core, 1)["dn0"]
    core.validate()


def test_a_readers_report_only_asks_for_a_recheck_and_the_last_copies_are_kept():
    """The security issue's replica safety: untrusted reports delete nothing; all-bad is CORRUPT."""
    core, _ = make(3)
    prev = write_file(core, "/f")
    for d in prev[2]:
        core.handle(ReplicaSuspected(100, d))
    commands = beat(core, 1)
    assert all(cs == [{"op": "verify", "blocks": [100]}] for cs in commands.values())
    assert len(core.bmap.live_replicas(100)) == 3
    for d in prev[2]:                                            # every copy really is bad
        core.handle(ReplicaCorrupt(100, d))
    assert not any(c["op"] == "delete" for cs in beat(core, 2).values() for c in cs)
    report = core.fsck("/")
    assert report["corrupt"] == 1 and report["problems"][0]["state"] == "CORRUPT"
    core.validate()


def test_pipeline_recovery_bumps_the_stamp_and_stale_copies_are_never_located():
    core, _ = make(n=4)
    core.create("/f", False, 3, 0, "", 0)
    targets = [d for d, _ in core.add_block("/f", [], [], "", 7, 0)]
    old = core.bmap.blocks[7].gen
    first, *rest = targets
    core.handle(ReplicaReceived(first, 7, 10, 0, old))        # final on one node, then the pipeline broke
    gen, token = core.bump_gen("/f", 7, 0)
    assert gen > old and token
    assert first in core.bmap.blocks[7].corrupt                 # what the failed pipeline left is stale
    for d in rest:                                               # the restarted pipeline, at the new stamp
        core.handle(ReplicaReceived(d, 7, 10, 0, gen))
    core.handle(ReplicaReceived(first, 7, 10, 0, old))          # a late report of the old stamp
    core.complete("/f", [7, 10, rest], 0)
    located = core.locations("/f")[1][0]
    assert sorted(r[0] for r in located[3]) == sorted(rest) and located[6] == gen
    assert {"op": "delete", "blocks": [7]} in core.queued.get(first, [])   # a good copy lives: drop it
    core.handle(BlockReportReceived(first, {7: 10}, 1, {7: old}))         # a report of it: still stale
    assert first not in core.bmap.blocks[7].replicas
    core.handle(ReplicaReceived(first, 7, 10, 1, gen))          # stored again at the current stamp
    assert first in core.bmap.blocks[7].replicas and first not in core.bmap.blocks[7].corrupt
    with pytest.raises(StorageError):
        core.bump_gen("/f", 7, 1)                                # only the block being written
    core.validate()
