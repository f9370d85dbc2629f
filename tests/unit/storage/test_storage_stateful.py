"""Hypothesis drives the NameNode core with random namespace changes, DataNode joins and deaths.

Invariants after every step: the block map agrees with itself and the
namespace; the journal replays to exactly the live namespace; and once the
cluster is quiet, every block regains min(target, live DataNodes) copies.
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
    ReplicaReceived,
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
            for target, _ in cmd["targets"]:
                if target in self.alive:
                    self.core.handle(ReplicaReceived(target, cmd["block_id"], cmd["length"], self.now))
        elif cmd["op"] == "delete":
            node = self.core.bmap.nodes[dnid]
            held = {b: 10 for b in node.blocks if b not in cmd["blocks"]}
            self.core.handle(BlockReportReceived(dnid, held, self.now))

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
            if info.state.value == "COMPLETE" and have:
                assert len(have) == min(info.replication, len(self.alive)), (block_id, have)


TestNamenodeMachine = NamenodeMachine.TestCase
TestNamenodeMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
