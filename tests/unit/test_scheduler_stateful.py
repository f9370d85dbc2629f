"""Hypothesis drives the scheduling core with random joins, deaths, slow workers, results and ticks.

Whatever happens: a task is never committed twice (a map may be committed
again only after its output was lost and it went back to PENDING), nothing is
assigned to a worker known dead, ``validate()`` holds after every event, and
every job finishes once the surviving workers keep reporting.
"""
import logging

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mapred.core import events as ev
from mapred.core.scheduler import MasterState
from mapred.types import AttemptState, TaskKind, TaskState

HOSTS = ("h1", "h2", "h3")


@pytest.fixture(autouse=True)
def _quiet_scheduler():
    """The core logs every lost worker and re-run; thousands of lines would only slow the run."""
    logger = logging.getLogger("mapred.core.scheduler")
    old = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(old)
KEYS = ("", "", "ds:0:10", "ds:10:20")


class SchedulerMachine(RuleBasedStateMachine):
    @initialize(speculation=st.booleans())
    def setup(self, speculation):
        self.core = MasterState(dead_timeout=5.0, speculation=speculation, speculation_min_seconds=1.0,
                                blacklist_failures=2, locality_wait=2.0)
        self.now = 0.0
        self.n_workers = 0
        self.n_jobs = 0
        self.dead: set = set()
        self.slow: set = set()          # alive but not heartbeating (SIGSTOPped)
        self.committed: set = set()     # task ids whose current output is committed
        self.ghosts: list = []          # (attempt, worker) the core stopped tracking as running

    # ------------------------------------------------------------------ feeding
    def feed(self, event):
        actions = self.core.handle(event)
        for a in actions:
            if isinstance(a, ev.AssignAttempt):
                assert a.worker_id not in self.dead, f"{a.attempt} assigned to dead {a.worker_id}"
                w = self.core.workers[a.worker_id]
                assert w.alive
            elif isinstance(a, ev.CommitAttempt):
                tid = a.attempt.task
                assert tid not in self.committed, f"{tid} committed twice"
                self.committed.add(tid)
            elif isinstance(a, ev.KillAttempt):
                self.ghosts.append((a.attempt, a.worker_id))
        self.core.validate()
        for tid in list(self.committed):
            if self.core.jobs[tid.job].tasks(tid.kind)[tid.index].state != TaskState.SUCCEEDED:
                self.committed.discard(tid)   # its output was lost; a re-run may commit again
        return actions

    def running(self):
        out = []
        for job in self.core.jobs.values():
            for task in job.maps + job.reduces:
                out.extend(task.running())
        return out

    def alive(self):
        return [w for w in self.core.workers.values() if w.alive]

    # ------------------------------------------------------------------ rules
    @rule(slots=st.integers(1, 3), host=st.sampled_from(HOSTS))
    def join(self, slots, host):
        self.n_workers += 1
        self.feed(ev.WorkerJoined(f"w{self.n_workers}", host, slots, self.now))

    @rule(maps=st.integers(0, 5), reduces=st.integers(0, 3), attempts=st.integers(1, 4),
          data=st.data())
    def submit(self, maps, reduces, attempts, data):
        self.n_jobs += 1
        hosts = tuple(tuple(data.draw(st.lists(st.sampled_from(HOSTS), max_size=2))) for _ in range(maps))
        keys = tuple(data.draw(st.sampled_from(KEYS)) for _ in range(maps))
        self.feed(ev.JobSubmitted(f"j{self.n_jobs}", maps, reduces, hosts, keys, attempts, self.now))

    @precondition(lambda self: self.alive())
    @rule(data=st.data())
    def die(self, data):
        w = data.draw(st.sampled_from(self.alive()))
        self.dead.add(w.id)
        self.feed(ev.WorkerLost(w.id, "killed"))

    @precondition(lambda self: self.alive())
    @rule(data=st.data())
    def slow_down(self, data):
        self.slow.add(data.draw(st.sampled_from(self.alive())).id)

    @rule(dt=st.floats(0.1, 4.0))
    def tick(self, dt):
        self.now += dt
        for w in self.alive():
            if w.id not in self.slow:
                self.feed(ev.WorkerHeartbeat(w.id, self.now))
        before = {w.id for w in self.alive()}
        self.feed(ev.Tick(self.now))
        self.dead |= before - {w.id for w in self.alive()}

    @precondition(lambda self: self.running())
    @rule(data=st.data(), cache=st.booleans())
    def succeed(self, data, cache):
        a = data.draw(st.sampled_from(self.running()))
        if a.worker_id in self.slow:
            return
        task = self._task(a.id)
        cached = (task.cache_key,) if cache and task.cache_key else ()
        output = {"path": f"/out/{a.id}", "addr": a.worker_id} if a.id.task.kind == TaskKind.MAP else {"files": []}
        self.feed(ev.AttemptSucceeded(a.id, a.worker_id, output, {"map": {"n": 1}}, cached, self.now))

    @precondition(lambda self: self.running())
    @rule(data=st.data(), fatal=st.booleans())
    def fail(self, data, fatal):
        a = data.draw(st.sampled_from(self.running()))
        self.feed(ev.AttemptFailed(a.id, a.worker_id, {"type": "ValueError", "message": "boom"},
                                   fatal and data.draw(st.integers(0, 9)) == 0, self.now))

    @precondition(lambda self: any(a.id.task.kind == TaskKind.REDUCE for a in self.running()))
    @rule(data=st.data())
    def fetch_failure(self, data):
        a = data.draw(st.sampled_from([a for a in self.running() if a.id.task.kind == TaskKind.REDUCE]))
        job = self.core.jobs[a.id.task.job]
        m = data.draw(st.integers(0, max(0, len(job.maps) - 1)))
        self.feed(ev.FetchFailed(a.id, m, "unreachable"))
        self.feed(ev.AttemptFailed(a.id, a.worker_id, {"type": "FetchError"}, False, self.now))

    @precondition(lambda self: self.ghosts)
    @rule(data=st.data())
    def stale_report(self, data):
        """A worker reports an attempt the core already killed or lost."""
        attempt, worker = data.draw(st.sampled_from(self.ghosts))
        self.feed(ev.AttemptSucceeded(attempt, worker, {"path": "stale"}, {}, (), self.now))

    @invariant()
    def valid(self):
        if hasattr(self, "core"):
            self.core.validate()

    def _task(self, aid):
        return self.core.jobs[aid.task.job].tasks(aid.task.kind)[aid.task.index]

    # ------------------------------------------------------------------ the end
    def teardown(self):
        """With one healthy worker reporting, every job finishes."""
        if not hasattr(self, "core"):
            return
        self.slow.clear()
        if not self.alive():
            self.join(2, "h1")
        for _ in range(400):
            if all(j.state.finished for j in self.core.jobs.values()):
                break
            self.tick(1.0)
            for a in self.running():
                if a.state == AttemptState.RUNNING:
                    self.succeed_now(a)
        unfinished = [j.id for j in self.core.jobs.values() if not j.state.finished]
        assert not unfinished, f"jobs never finished: {unfinished}"

    def succeed_now(self, a):
        output = {"path": f"/out/{a.id}"} if a.id.task.kind == TaskKind.MAP else {"files": []}
        self.feed(ev.AttemptSucceeded(a.id, a.worker_id, output, {}, (), self.now))


SchedulerMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None,
                                              suppress_health_check=[HealthCheck.too_slow])
TestScheduler = SchedulerMachine.TestCase


def test_cached_split_waits_for_its_busy_worker_then_runs_elsewhere():
    """Delay scheduling: a free worker does not steal a split cached on a busy one — for a while."""
    core = MasterState(locality_wait=2.0, speculation=False)
    core.handle(ev.WorkerJoined("a", "h", 1, 0.0))
    core.handle(ev.WorkerJoined("b", "h", 1, 0.0))
    core.workers["a"].cached.update({"ds:0:1", "ds:1:2"})
    acts = core.handle(ev.JobSubmitted("j", 2, 0, (), ("ds:0:1", "ds:1:2"), now=1.0))
    assigns = [a for a in acts if isinstance(a, ev.AssignAttempt)]
    assert [(a.worker_id, a.locality) for a in assigns] == [("a", "cache")]   # b waits
    assert not [a for a in core.handle(ev.Tick(2.0)) if isinstance(a, ev.AssignAttempt)]
    late = [a for a in core.handle(ev.Tick(3.5)) if isinstance(a, ev.AssignAttempt)]
    assert [(a.worker_id, a.locality) for a in late] == [("b", "any")]
    core.validate()


def test_rerun_map_leaves_one_successful_attempt():
    """Regression: a map re-run after its worker died had two SUCCEEDED attempts (validate failed)."""
    core = MasterState(speculation=False)
    core.handle(ev.WorkerJoined("a", "h", 1, 0.0))
    core.handle(ev.WorkerJoined("b", "h", 1, 0.0))
    acts = core.handle(ev.JobSubmitted("j", 1, 1, now=0.0))
    m = [a for a in acts if isinstance(a, ev.AssignAttempt)][0]
    acts = core.handle(ev.AttemptSucceeded(m.attempt, m.worker_id, {"path": "p"}, now=1.0))
    r = [a for a in acts if isinstance(a, ev.AssignAttempt)][0]
    acts = core.handle(ev.FetchFailed(r.attempt, 0, "gone"))
    rerun = [a for a in acts if isinstance(a, ev.AssignAttempt) and a.attempt.task == m.attempt.task][0]
    core.handle(ev.AttemptSucceeded(rerun.attempt, rerun.worker_id, {"path": "p2"}, now=2.0))
    core.validate()


def test_commit_failure_fails_a_job_the_core_thought_succeeded():
    core = MasterState(speculation=False)
    core.handle(ev.WorkerJoined("a", "h", 1, 0.0))
    acts = core.handle(ev.JobSubmitted("j", 1, 0, now=0.0))
    m = [a for a in acts if isinstance(a, ev.AssignAttempt)][0]
    acts = core.handle(ev.AttemptSucceeded(m.attempt, "a", {"files": ["part-00000"]}, now=1.0))
    assert [type(a) for a in acts] == [ev.CommitAttempt, ev.JobFinished]
    acts = core.handle(ev.CommitFailed(m.attempt, "rename refused"))
    assert [type(a) for a in acts] == [ev.JobFinished]
    assert acts[0].state.value == "FAILED" and acts[0].error["message"] == "rename refused"
    assert core.handle(ev.CommitFailed(m.attempt, "again")) == []
    core.validate()
