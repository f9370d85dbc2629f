"""Hypothesis drives the NameNode core with random namespace changes, DataNode joins and deaths.

Invariants after every step: the block map agrees with itself and the
namespace; the journal replays to exactly the live namespace; and once the
cluster is quiet, every block regains min(target, live DataNodes) copies.

Replica corruption (the security issue): the model keeps each DataNode's
disk, with good and corrupt copies.  A copy goes bad at random (the node's
scanner reports it: trusted); anyone may forge a report against any copy
(untrusted: the core only asks the node to re-verify).  No delete the core
orders may ever remove the last good copy of a block that is still in the
namespace, and a block with copies but none good is CORRUPT in fsck.
"""
import shutil
import tempfile

from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mapred.errors import StorageError
from mapred.storage.journal import Journal
from mapred.storage.namesystem import (
    BlockReportReceived,
    DatanodeRegistered,
    HeartbeatReceived,
    Namesystem,
    ReplicaCorrupt,
    ReplicaReceived,
    ReplicaSuspected,
    Settings,
    Tick,
)

NAMES = st.sampled_from(["a", "b", "c"])
PATHS = st.lists(NAMES, min_size=1, max_size=3).map(lambda p: "/" + "/".join(p))


class NamenodeMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.dir = tempfile.mkdtemp()
        self.journal = Journal(self.dir, checkpoint_every=7)
        self.core = Namesystem(self.journal.load(), Settings(dead_timeout=5, max_streams=100),
                               log=self.journal.append)
        self.now = 0.0
        self.next_block = 1
        self.next_dn = 0
        self.alive: set = set()
        self.disk: dict = {}          # dnid -> {block_id: good?}, what each node really holds

    def teardown(self):
        self.journal.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _try(self, fn, *args):
        try:
            fn(*args)
        except StorageError:
            pass

    @rule()
    def add_datanode(self):
        dnid = f"dn{self.next_dn}"
        self.next_dn += 1
        self.core.handle(DatanodeRegistered(dnid, "tcp://127.0.0.1:1", dnid, "/d", 1 << 40, 0,
                                            1 << 40, self.now))
        self.core.handle(BlockReportReceived(dnid, {}, self.now))
        self.alive.add(dnid)
        self.disk[dnid] = {}

    @precondition(lambda self: self.alive)
    @rule(data=st.data())
    def kill_datanode(self, data):
        self.alive.discard(data.draw(st.sampled_from(sorted(self.alive))))

    @rule(path=PATHS, parents=st.booleans())
    def mkdir(self, path, parents):
        self._try(self.core.mkdir, path, parents, self.now)

    @rule(path=PATHS, blocks=st.integers(0, 3), rep=st.integers(1, 4), overwrite=st.booleans())
    def write(self, path, blocks, rep, overwrite):
        try:
            self.core.create(path, overwrite, rep, 10, "", self.now)
            prev = []
            for _ in range(blocks):
                targets = self.core.add_block(path, prev, [], "", self.next_block, self.now)
                prev = [self.next_block, 10, [d for d, _ in targets if d in self.alive]]
                for d in prev[2]:
                    self.disk[d][self.next_block] = True
                self.next_block += 1
            self.core.complete(path, prev, self.now)
        except StorageError:
            self.core.abandon(path)

    @rule(path=PATHS, recursive=st.booleans())
    def delete(self, path, recursive):
        self._try(self.core.delete, path, recursive)

    @rule(src=PATHS, dst=PATHS)
    def rename(self, src, dst):
        self._try(self.core.rename, src, dst, self.now)

    @rule(path=PATHS, rep=st.integers(1, 4))
    def setrep(self, path, rep):
        self._try(self.core.set_replication, path, rep)

    @rule()
    def time_passes(self):
        """Heartbeats from live nodes; commands are carried out at once."""
        self.now += 1.0
        for dnid in sorted(self.alive):
            for cmd in self.core.handle(HeartbeatReceived(dnid, 1 << 40, 0, 1 << 40, self.now)):
                self._carry_out(dnid, cmd)
        self.core.handle(Tick(self.now))

    def _carry_out(self, dnid, cmd):
        if cmd["op"] == "replicate":
            if not self.disk[dnid].get(cmd["block_id"], False):   # the copier verifies first
                self.core.handle(ReplicaCorrupt(cmd["block_id"], dnid))
                return
            for target, _ in cmd["targets"]:
                if target in self.alive:
                    self.disk[target][cmd["block_id"]] = True
                    self.core.handle(ReplicaReceived(target, cmd["block_id"], cmd["length"], self.now))
        elif cmd["op"] == "verify":
            for b in cmd["blocks"]:
                if self.disk[dnid].get(b) is False:
                    self.core.handle(ReplicaCorrupt(b, dnid))
                elif self.disk[dnid].get(b):          # checked good: the node says so
                    self.core.handle(ReplicaReceived(dnid, b, 10, self.now))
        elif cmd["op"] == "delete":
            in_namespace = {b for b, *_ in self.core.ns.all_blocks()}
            for b in cmd["blocks"]:
                if b in in_namespace and self.disk[dnid].get(b):
                    others = [d for d in self.alive if d != dnid and self.disk[d].get(b)]
                    assert others, f"the last good copy of block {b} (on {dnid}) was deleted"
                self.disk[dnid].pop(b, None)
            node = self.core.bmap.nodes[dnid]
            held = {b: 10 for b in node.blocks if b not in cmd["blocks"]}
            self.core.handle(BlockReportReceived(dnid, held, self.now))

    def _held(self, data, good):
        pairs = sorted((d, b) for d in self.alive for b, ok in self.disk[d].items()
                       if good is None or ok == good)
        return data.draw(st.sampled_from(pairs)) if pairs else None

    @rule(data=st.data())
    def replica_goes_bad(self, data):
        """A copy rots on disk; that node's scanner finds it and says so (trusted evidence)."""
        pick = self._held(data, True)
        if pick is not None:
            dnid, b = pick
            self.disk[dnid][b] = False
            self.core.handle(ReplicaCorrupt(b, dnid))

    @rule(data=st.data())
    def forged_report(self, data):
        """Anyone claims a copy is bad: only the node's own re-verification may condemn it."""
        pick = self._held(data, None)
        if pick is not None:
            self.core.handle(ReplicaSuspected(pick[1], pick[0]))

    @invariant()
    def all_bad_copies_show_as_corrupt(self):
        """A block held only as corrupt copies (on live, known nodes) is CORRUPT, never silently gone."""
        for block_id, _, path, _ in self.core.ns.all_blocks():
            info = self.core.bmap.blocks[block_id]
            live = self.core.bmap.live_replicas(block_id)
            if not live and any(self.core.bmap.is_live(d) for d in info.corrupt):
                report = self.core.fsck(path)
                assert report["corrupt"] >= 1 and not report["healthy"], (block_id, report)

    @invariant()
    def block_map_is_consistent(self):
        self.core.validate()

    @invariant()
    def journal_replays_to_the_live_namespace(self):
        replayed = Journal(self.dir).load()
        assert replayed.image() == self.core.ns.image()
        if self.journal.due():
            self.journal.checkpoint(self.core.ns)

    @invariant()
    def quiet_cluster_restores_replicas(self):
        """Run heartbeats/ticks on a copy of time until quiet; then every block is restored."""
        if len(self.alive) == 0 or self.now < 6:
            return
        live = {n.dnid for n in self.core.bmap.live_nodes()}
        if live != self.alive:
            return   # dead nodes not yet declared dead: nothing to check yet
        for _ in range(6):
            self.time_passes()
        for block_id, info in self.core.bmap.blocks.items():
            have = self.core.bmap.live_replicas(block_id)
            bad = {d for d in self.alive if self.disk[d].get(block_id) is False}
            if info.state.value == "COMPLETE" and have:
                assert len(have) >= min(info.replication, len(self.alive) - len(bad)), (block_id, have)


TestNamenodeMachine = NamenodeMachine.TestCase
TestNamenodeMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
