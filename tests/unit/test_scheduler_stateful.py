"""Hypothesis drives the scheduling core with random joins, deaths, slow workers, results and ticks.

Whatever happens: a task is never committed twice (a map may be committed
again only after its output was lost and it went back to PENDING), nothing is
assigned to a worker known dead, ``validate()`` holds after every event, and
every job finishes once the surviving workers keep reporting.  Commits are
answered late or refused; a job finishes exactly once and says SUCCEEDED only
after its own commit was done.  Heartbeats list what their worker runs,
sometimes missing an attempt (a lost assignment) or naming a killed one.
"""
import logging

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mapred.core import actions as act
from mapred.core import events as ev
from mapred.core.scheduler import MasterState
from mapred.types import AttemptState, JobState, TaskKind, TaskState

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
        self.commits: list = []         # commit actions not answered yet
        self.job_committed: set = set() # jobs whose CommitJob was answered CommitDone
        self.finished: dict = {}        # job -> its JobFinished state
        self.hidden: dict = {}          # worker -> attempts its heartbeats leave out (assignment lost)

    # ------------------------------------------------------------------ feeding
    def feed(self, event):
        actions = self.core.handle(event)
        for a in actions:
            if isinstance(a, act.AssignAttempt):
                assert a.worker_id not in self.dead, f"{a.attempt} assigned to dead {a.worker_id}"
                w = self.core.workers[a.worker_id]
                assert w.alive
            elif isinstance(a, act.CommitAttempt):
                tid = a.attempt.task
                assert tid not in self.committed, f"{tid} committed twice"
                self.committed.add(tid)
                self.commits.append(a)
            elif isinstance(a, act.CommitJob):
                self.commits.append(a)
            elif isinstance(a, act.KillAttempt):
                self.ghosts.append((a.attempt, a.worker_id))
            elif isinstance(a, act.JobFinished):
                assert a.job_id not in self.finished, f"{a.job_id} finished twice"
                self.finished[a.job_id] = a.state
                assert a.state != JobState.SUCCEEDED or a.job_id in self.job_committed, \
                    f"{a.job_id} SUCCEEDED before its commit was done"
        self.core.validate()
        assert not set(self.core.jobs) & set(self.finished), "a finished job is still in the working set"
        for tid in list(self.committed):
            job = self.core.job(tid.job)
            if job is not None and job.tasks(tid.kind)[tid.index].state not in (TaskState.SUCCEEDED,
                                                                                  TaskState.COMMITTING):
                self.committed.discard(tid)   # its output was lost; a re-run may commit again
        return actions

    def running(self):
        out = []
        for job in self.core.jobs.values():
            for task in job.all_tasks():
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
                listed = tuple(sorted(set(w.running) - self.hidden.get(w.id, set())))
                self.feed(ev.WorkerHeartbeat(w.id, self.now, (), listed))
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

    @precondition(lambda self: self.running())
    @rule(data=st.data())
    def refuse(self, data):
        """The worker would not start an attempt (slot busy, code missing): the task's failures stay put."""
        a = data.draw(st.sampled_from(self.running()))
        task = self._task(a.id)
        failures = task.failures
        acts = self.feed(ev.AttemptRefused(a.id, a.worker_id, "no free slot", self.now))
        assert task.failures == failures, f"a refusal of {a.id} counted as a failure"
        assert not any(isinstance(x, act.AssignAttempt) and x.worker_id == a.worker_id for x in acts), \
            f"{a.worker_id} refused work and got more before its next heartbeat"

    @precondition(lambda self: any(a.id.task.kind == TaskKind.REDUCE for a in self.running()))
    @rule(data=st.data())
    def fetch_failure(self, data):
        a = data.draw(st.sampled_from([a for a in self.running() if a.id.task.kind == TaskKind.REDUCE]))
        job = self.core.job(a.id.task.job)
        m = data.draw(st.integers(0, max(0, len(job.maps) - 1)))
        self.feed(ev.FetchFailed(a.id, m, "unreachable"))
        self.feed(ev.AttemptFailed(a.id, a.worker_id, {"type": "FetchError"}, False, self.now))

    @precondition(lambda self: self.ghosts)
    @rule(data=st.data())
    def stale_report(self, data):
        """A worker reports an attempt the core already killed or lost."""
        attempt, worker = data.draw(st.sampled_from(self.ghosts))
        self.feed(ev.AttemptSucceeded(attempt, worker, {"path": "stale"}, {}, (), self.now))

    @precondition(lambda self: self.commits)
    @rule(data=st.data(), ok=st.integers(0, 9))
    def answer_commit(self, data, ok):
        """The shell carries out a commit, late and in any order; one in ten is refused."""
        c = data.draw(st.sampled_from(self.commits))
        self.commits.remove(c)
        self._answer(c, ok != 0)

    def _answer(self, c, ok):
        if isinstance(c, act.CommitJob):
            if ok:
                self.job_committed.add(c.job_id)
            self.feed(ev.CommitDone(job_id=c.job_id) if ok else ev.CommitFailed(None, "refused", c.job_id))
        else:
            task = None
            if c.attempt.task.job not in self.finished:
                job = self.core.job(c.attempt.task.job)
                task = job.tasks(c.attempt.task.kind)[c.attempt.task.index]
            # an answer for an attempt the core no longer commits (its worker died and the task was
            # re-queued since) is stale: the core ignores it, so it must fail nothing
            current = task is not None and task.committed == c.attempt
            self.feed(ev.CommitDone(c.attempt) if ok else ev.CommitFailed(c.attempt, "refused"))
            if not ok and current:
                assert self.finished.get(job.id) == JobState.FAILED, "a refused commit did not fail its job"
                assert task.state == TaskState.FAILED, f"{task.id} is {task.state} after its commit failed"

    @precondition(lambda self: self.running())
    @rule(data=st.data())
    def lose_assignment(self, data):
        """The worker never got an assignment: its heartbeats stop listing it."""
        a = data.draw(st.sampled_from(self.running()))
        self.hidden.setdefault(a.worker_id, set()).add(a.id)

    @precondition(lambda self: self.ghosts)
    @rule(data=st.data())
    def stray_in_heartbeat(self, data):
        """A heartbeat names an attempt the core killed: the core asks again to kill it."""
        attempt, worker = data.draw(st.sampled_from(self.ghosts))
        w = self.core.workers.get(worker)
        if w is None or not w.alive or attempt in w.running:
            return
        acts = self.feed(ev.WorkerHeartbeat(worker, self.now, (), tuple(sorted(w.running | {attempt}))))
        assert act.KillAttempt(worker, attempt, "not assigned by the master") in acts

    @invariant()
    def valid(self):
        if hasattr(self, "core"):
            self.core.validate()

    def _task(self, aid):
        return self.core.job(aid.task.job).tasks(aid.task.kind)[aid.task.index]

    # ------------------------------------------------------------------ the end
    def teardown(self):
        """With one healthy worker reporting, every job finishes."""
        if not hasattr(self, "core"):
            return
        self.slow.clear()
        self.hidden.clear()
        if not self.alive():
            self.join(2, "h1")
        for _ in range(400):
            if not self.core.jobs:
                break
            self.tick(1.0)
            for a in self.running():
                if a.state == AttemptState.RUNNING:
                    self.succeed_now(a)
            while self.commits:
                self._answer(self.commits.pop(0), True)
        unfinished = list(self.core.jobs)
        assert not unfinished, f"jobs never finished: {unfinished}"
        assert set(self.finished) == {f"j{n}" for n in range(1, self.n_jobs + 1)}

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
    assigns = [a for a in acts if isinstance(a, act.AssignAttempt)]
    assert [(a.worker_id, a.locality) for a in assigns] == [("a", "cache")]   # b waits
    assert not [a for a in core.handle(ev.Tick(2.0)) if isinstance(a, act.AssignAttempt)]
    late = [a for a in core.handle(ev.Tick(3.5)) if isinstance(a, act.AssignAttempt)]
    assert [(a.worker_id, a.locality) for a in late] == [("b", "any")]
    core.validate()


def test_rerun_map_leaves_one_successful_attempt():
    """Regression: a map re-run after its worker died had two SUCCEEDED attempts (validate failed)."""
    core = MasterState(speculation=False)
    core.handle(ev.WorkerJoined("a", "h", 1, 0.0))
    core.handle(ev.WorkerJoined("b", "h", 1, 0.0))
    acts = core.handle(ev.JobSubmitted("j", 1, 1, now=0.0))
    m = [a for a in acts if isinstance(a, act.AssignAttempt)][0]
    acts = core.handle(ev.AttemptSucceeded(m.attempt, m.worker_id, {"path": "p"}, now=1.0))
    r = [a for a in acts if isinstance(a, act.AssignAttempt)][0]
    acts = core.handle(ev.FetchFailed(r.attempt, 0, "gone"))
    rerun = [a for a in acts if isinstance(a, act.AssignAttempt) and a.attempt.task == m.attempt.task][0]
    core.handle(ev.AttemptSucceeded(rerun.attempt, rerun.worker_id, {"path": "p2"}, now=2.0))
    core.validate()


def test_commit_failure_fails_a_job_the_core_thought_succeeded():
    core = MasterState(speculation=False)
    core.handle(ev.WorkerJoined("a", "h", 1, 0.0))
    acts = core.handle(ev.JobSubmitted("j", 1, 0, now=0.0))
    m = [a for a in acts if isinstance(a, act.AssignAttempt)][0]
    acts = core.handle(ev.AttemptSucceeded(m.attempt, "a", {"files": ["part-00000"]}, now=1.0))
    assert [type(a) for a in acts] == [act.CommitAttempt]      # the job waits for the commit's answer
    acts = core.handle(ev.CommitFailed(m.attempt, "rename refused"))
    assert [type(a) for a in acts] == [act.JobFinished]
    assert acts[0].state.value == "FAILED" and acts[0].error["message"] == "rename refused"
    assert core.handle(ev.CommitFailed(m.attempt, "again")) == []
    core.validate()
