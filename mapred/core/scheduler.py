"""The master's scheduling core: a state machine of jobs, tasks, attempts and workers.

``MasterState.handle(event) -> [action]`` is all there is: no sockets, no
clock (time arrives in events), no file system.  The local runner and the
distributed master are thin loops around it, which is why the local runner is
the cluster in one box and why thousands of schedules can be tested in
milliseconds.

Rules it keeps:
* a task's first successful attempt is committed, exactly once; later
  successes are discarded, running siblings killed;
* every dispatch gets a fresh attempt number; a report about an attempt the
  core no longer tracks is ignored;
* a failed attempt is retried until ``max_attempts``; a fatal failure (bad
  input) fails the job at once;
* map tasks go to a worker caching their split, else holding their data,
  else anywhere; a task whose split is cached on a busy live worker waits up
  to ``locality_wait`` seconds for it (delay scheduling), so iterative jobs
  never re-read a cached split only because its worker was a moment late;
  reduces start when every map is done;
* a lost worker's running attempts are re-run, and so are its finished map
  outputs while a reduce of that job may still need them;
* a task running far slower than its finished peers gets one backup attempt.
"""
from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, field
from typing import Any

from mapred.core import events as ev
from mapred.types import AttemptId, AttemptState, JobState, TaskId, TaskKind, TaskState

log = logging.getLogger(__name__)


@dataclass
class Attempt:
    id: AttemptId
    worker_id: str
    started: float
    state: AttemptState = AttemptState.RUNNING
    speculative: bool = False
    progress: float = 0.0
    finished: float | None = None
    error: dict = field(default_factory=dict)
    counters: dict = field(default_factory=dict)   # live counters from heartbeats while it runs


@dataclass
class Task:
    id: TaskId
    hosts: tuple = ()
    cache_key: str = ""
    state: TaskState = TaskState.PENDING
    attempts: dict = field(default_factory=dict)    # n -> Attempt
    next_attempt: int = 0
    failures: int = 0
    committed: AttemptId | None = None
    output: Any = None
    output_worker: str | None = None
    counters: dict = field(default_factory=dict)
    duration: float | None = None
    ready_since: float = 0.0          # when it last became PENDING (for the locality wait)

    def running(self) -> list[Attempt]:
        return [a for a in self.attempts.values() if a.state == AttemptState.RUNNING]


@dataclass
class Job:
    id: str
    maps: list
    reduces: list
    max_attempts: int
    submitted: float
    state: JobState = JobState.MAPPING
    error: dict = field(default_factory=dict)
    counters: dict = field(default_factory=dict)   # job-level: failed/killed attempts, locality
    bad_workers: dict = field(default_factory=dict)  # worker -> failures in this job

    def tasks(self, kind: TaskKind) -> list[Task]:
        return self.maps if kind == TaskKind.MAP else self.reduces


@dataclass
class Worker:
    id: str
    host: str
    slots: int
    last_seen: float
    alive: bool = True
    running: set = field(default_factory=set)       # AttemptIds
    cached: set = field(default_factory=set)        # cache keys held by this worker


class MasterState:
    """Jobs, tasks, attempts and workers, advanced only by ``handle``."""

    def __init__(self, *, dead_timeout: float = 10.0, speculation: bool = True,
                 speculation_slowdown: float = 3.0, speculation_min_seconds: float = 1.0,
                 blacklist_failures: int = 3, locality_wait: float = 3.0) -> None:
        self.dead_timeout = dead_timeout
        self.speculation = speculation
        self.slowdown = speculation_slowdown
        self.spec_min = speculation_min_seconds
        self.blacklist_failures = blacklist_failures
        self.locality_wait = locality_wait
        self.jobs: dict[str, Job] = {}
        self.workers: dict[str, Worker] = {}
        self.now = 0.0

    # ------------------------------------------------------------------ entry
    def handle(self, event) -> list:
        """Apply one event; return the actions the loop must carry out, in order."""
        now = getattr(event, "now", None)
        if now:
            self.now = max(self.now, now)
        handler = getattr(self, "_on_" + type(event).__name__, None)
        if handler is None:
            log.warning("scheduler: unknown event %r dropped", event)
            return []
        actions = handler(event)
        return actions + self._schedule()

    # ------------------------------------------------------------------ workers
    def _on_WorkerJoined(self, e: ev.WorkerJoined) -> list:
        old = self.workers.get(e.worker_id)
        actions = self._lose_worker(old, "re-registered") if old and old.alive else []
        self.workers[e.worker_id] = Worker(e.worker_id, e.host, max(0, e.slots), e.now or self.now)
        return actions

    def _on_WorkerHeartbeat(self, e: ev.WorkerHeartbeat) -> list:
        w = self.workers.get(e.worker_id)
        if w is None or not w.alive:
            return []
        w.last_seen = max(w.last_seen, e.now)
        for entry in e.progress:
            a = self._attempt(entry[0])
            if a is not None and a.state == AttemptState.RUNNING:
                a.progress = float(entry[1])
                if len(entry) > 2 and entry[2]:
                    a.counters = dict(entry[2])
        return []

    def _on_WorkerLost(self, e: ev.WorkerLost) -> list:
        w = self.workers.get(e.worker_id)
        return self._lose_worker(w, e.reason, e.outputs_lost) if w and w.alive else []

    def _on_Tick(self, e: ev.Tick) -> list:
        actions: list = []
        for w in list(self.workers.values()):
            if w.alive and self.now - w.last_seen > self.dead_timeout:
                actions += self._lose_worker(w, f"no heartbeat for {self.now - w.last_seen:.1f}s")
        return actions

    def _lose_worker(self, w: Worker, reason: str, outputs_lost: bool = True) -> list:
        """Re-run what the worker was running and the map outputs it held that are still needed."""
        (log.warning if outputs_lost else log.info)("worker %s lost: %s", w.id, reason)
        w.alive = False
        actions: list = []
        for aid in list(w.running):
            task = self._task(aid.task)
            a = task.attempts[aid.n]
            self._end_attempt(w, a, AttemptState.LOST)
            self._count(self.jobs[aid.task.job], "lost_attempts")
            if task.state == TaskState.RUNNING and not task.running():
                self._make_pending(task)
        for job in self.jobs.values() if outputs_lost else ():
            if job.state in (JobState.MAPPING, JobState.REDUCING) and job.reduces:
                for task in job.maps:
                    if task.state == TaskState.SUCCEEDED and task.output_worker == w.id:
                        actions += self._rerun_map(job, task, f"its output was on lost worker {w.id}")
        return actions

    # ------------------------------------------------------------------ jobs
    def _on_JobSubmitted(self, e: ev.JobSubmitted) -> list:
        if e.job_id in self.jobs:
            log.warning("job %s submitted twice; ignored", e.job_id)
            return []
        hosts = list(e.split_hosts) + [()] * (e.num_maps - len(e.split_hosts))
        keys = list(e.split_cache_keys) + [""] * (e.num_maps - len(e.split_cache_keys))
        maps = [Task(TaskId(e.job_id, TaskKind.MAP, i), tuple(hosts[i]), keys[i], ready_since=self.now)
                for i in range(e.num_maps)]
        reduces = [Task(TaskId(e.job_id, TaskKind.REDUCE, i)) for i in range(e.num_reduces)]
        job = Job(e.job_id, maps, reduces, max(1, e.max_attempts), e.now or self.now)
        self.jobs[e.job_id] = job
        if not maps:
            job.state = JobState.REDUCING if reduces else JobState.COMMITTING
        return self._advance_job(job)

    def _on_JobKillRequested(self, e: ev.JobKillRequested) -> list:
        job = self.jobs.get(e.job_id)
        if job is None or job.state.finished:
            return []
        return self._finish_job(job, JobState.KILLED, {"message": e.reason})

    def _on_CommitFailed(self, e: ev.CommitFailed) -> list:
        """The output cannot be complete, even if the core already called the job SUCCEEDED."""
        job = self.jobs.get(e.attempt.task.job)
        if job is None or job.state in (JobState.FAILED, JobState.KILLED):
            return []
        error = {"task": str(e.attempt.task), "attempt": str(e.attempt), "reason": "a failed commit",
                 "type": "CommitError", "message": e.reason}
        return self._finish_job(job, JobState.FAILED, error)

    def _finish_job(self, job: Job, state: JobState, error: dict) -> list:
        job.state = state
        job.error = error
        actions: list = []
        for task in job.maps + job.reduces:
            for a in task.running():
                w = self.workers.get(a.worker_id)
                self._end_attempt(w, a, AttemptState.KILLED)
                actions.append(ev.KillAttempt(a.worker_id, a.id, f"job {state.value.lower()}"))
            if task.state in (TaskState.PENDING, TaskState.RUNNING):
                task.state = TaskState.KILLED
        actions.append(ev.JobFinished(job.id, state, error, self.job_counters(job.id)))
        return actions

    def _advance_job(self, job: Job) -> list:
        """Move MAPPING → REDUCING → COMMITTING → SUCCEEDED as tasks complete."""
        if job.state == JobState.MAPPING and all(t.state == TaskState.SUCCEEDED for t in job.maps):
            job.state = JobState.REDUCING if job.reduces else JobState.COMMITTING
        if job.state == JobState.REDUCING and all(t.state == TaskState.SUCCEEDED for t in job.reduces):
            job.state = JobState.COMMITTING
        if job.state == JobState.COMMITTING:
            job.state = JobState.SUCCEEDED
            return [ev.JobFinished(job.id, JobState.SUCCEEDED, {}, self.job_counters(job.id))]
        return []

    # ------------------------------------------------------------------ attempts
    def _on_AttemptSucceeded(self, e: ev.AttemptSucceeded) -> list:
        a, task, job, w = self._lookup(e.attempt, e.worker_id)
        if a is None:
            return []
        if w is not None:
            w.cached.update(e.cached)
        if a.state != AttemptState.RUNNING or job.state.finished or task.state == TaskState.SUCCEEDED:
            if a.state == AttemptState.RUNNING:
                self._end_attempt(w, a, AttemptState.KILLED)
            return [ev.DiscardAttempt(e.attempt, e.worker_id)]
        self._end_attempt(w, a, AttemptState.SUCCEEDED)
        task.state = TaskState.SUCCEEDED
        task.committed = a.id
        task.output = e.output
        task.output_worker = e.worker_id
        task.counters = e.counters or {}
        task.duration = self.now - a.started
        actions: list = [ev.CommitAttempt(a.id, e.worker_id, e.output)]
        for other in task.running():
            self._end_attempt(self.workers.get(other.worker_id), other, AttemptState.KILLED)
            self._count(job, "killed_attempts")
            actions.append(ev.KillAttempt(other.worker_id, other.id, f"{a.id} finished first"))
        return actions + self._advance_job(job)

    def _on_AttemptFailed(self, e: ev.AttemptFailed) -> list:
        a, task, job, w = self._lookup(e.attempt, e.worker_id)
        if a is None or a.state != AttemptState.RUNNING:
            return []
        self._end_attempt(w, a, AttemptState.FAILED)
        a.error = dict(e.error)
        self._count(job, "failed_attempts")
        actions: list = [ev.DiscardAttempt(e.attempt, e.worker_id)]
        if job.state.finished or task.state == TaskState.SUCCEEDED:
            return actions
        task.failures += 1
        job.bad_workers[e.worker_id] = job.bad_workers.get(e.worker_id, 0) + 1
        if e.fatal or task.failures >= job.max_attempts:
            why = "a fatal error" if e.fatal else f"{task.failures} failed attempts"
            error = {"task": str(task.id), "attempt": str(a.id), "worker": e.worker_id,
                     "reason": why, **e.error}
            return actions + self._finish_job(job, JobState.FAILED, error)
        if not task.running():
            self._make_pending(task)
        return actions

    def _on_FetchFailed(self, e: ev.FetchFailed) -> list:
        a, task, job, w = self._lookup(e.attempt, None)
        if a is None or job.state.finished or not 0 <= e.map_index < len(job.maps):
            return []
        actions: list = []
        mtask = job.maps[e.map_index]
        if mtask.state == TaskState.SUCCEEDED:
            actions += self._rerun_map(job, mtask, f"reducer {e.attempt} could not fetch it: {e.reason}")
        return actions

    def _rerun_map(self, job: Job, task: Task, why: str) -> list:
        """Forget a finished map's output; stop reduces that need it; go back to MAPPING."""
        log.warning("re-running %s: %s", task.id, why)
        old = task.attempts.get(task.committed.n) if task.committed is not None else None
        if old is not None and old.state == AttemptState.SUCCEEDED:
            old.state = AttemptState.LOST   # its output is gone; the re-run's success is the only one
        self._make_pending(task)
        task.committed = None
        task.output = None
        task.output_worker = None
        self._count(job, "rerun_maps")
        actions: list = []
        if job.state == JobState.REDUCING:
            job.state = JobState.MAPPING
        for rtask in job.reduces:
            for ra in rtask.running():
                self._end_attempt(self.workers.get(ra.worker_id), ra, AttemptState.KILLED)
                actions.append(ev.KillAttempt(ra.worker_id, ra.id, f"map {task.id} is re-running"))
            if rtask.state == TaskState.RUNNING:
                self._make_pending(rtask)
        return actions

    # ------------------------------------------------------------------ scheduling
    def _schedule(self) -> list:
        """Fill free slots: pending tasks first (fair across jobs), then speculative backups."""
        actions: list = []
        while True:
            assigned = self._assign_one()
            if assigned is None:
                break
            actions.append(assigned)
        if self.speculation:
            actions += self._speculate()
        return actions

    def _free_workers(self) -> list[Worker]:
        return [w for w in self.workers.values() if w.alive and len(w.running) < w.slots]

    def _active_jobs(self) -> list[Job]:
        jobs = [j for j in self.jobs.values() if j.state in (JobState.MAPPING, JobState.REDUCING)]
        return sorted(jobs, key=lambda j: (self._running_count(j), j.submitted, j.id))

    def _running_count(self, job: Job) -> int:
        return sum(len(t.running()) for t in job.maps + job.reduces)

    def _assign_one(self):
        free = self._free_workers()
        if not free:
            return None
        for job in self._active_jobs():
            kind = TaskKind.MAP if job.state == JobState.MAPPING else TaskKind.REDUCE
            pending = [t for t in job.tasks(kind) if t.state == TaskState.PENDING]
            if not pending:
                continue
            usable = [w for w in free if job.bad_workers.get(w.id, 0) < self.blacklist_failures] or free
            choice = self._best_placement(pending, usable, kind)
            if choice is not None:
                task, worker, locality = choice
                return self._start_attempt(job, task, worker, locality, speculative=False)
        return None

    def _best_placement(self, pending: list[Task], workers: list[Worker], kind: TaskKind):
        """The (task, worker, locality) to start: cache-local, then node-local, then any."""
        if kind == TaskKind.MAP:
            for task in pending:
                if task.cache_key:
                    for w in workers:
                        if task.cache_key in w.cached:
                            return task, w, "cache"
            pending = [t for t in pending if not self._waiting_for_cache(t)]
            for task in pending:
                if task.hosts:
                    for w in workers:
                        if w.host in task.hosts:
                            return task, w, "node"
        if not pending:
            return None
        worker = min(workers, key=lambda w: (len(w.running) / max(w.slots, 1), w.id))
        return pending[0], worker, "any"

    def _waiting_for_cache(self, task: Task) -> bool:
        """A task whose split is cached on a busy live worker waits for it, up to ``locality_wait``."""
        return self._cached_elsewhere(task) and self.now - task.ready_since < self.locality_wait

    def _cached_elsewhere(self, task: Task) -> bool:
        return bool(task.cache_key) and any(task.cache_key in w.cached and w.alive for w in self.workers.values())

    def _make_pending(self, task: Task) -> None:
        task.state = TaskState.PENDING
        task.ready_since = self.now

    def _start_attempt(self, job: Job, task: Task, worker: Worker, locality: str,
                       speculative: bool) -> ev.AssignAttempt:
        aid = AttemptId(task.id, task.next_attempt)
        task.next_attempt += 1
        task.attempts[aid.n] = Attempt(aid, worker.id, self.now, speculative=speculative)
        task.state = TaskState.RUNNING
        worker.running.add(aid)
        if task.id.kind == TaskKind.MAP and not speculative:
            self._count(job, f"maps_{locality}_local" if locality != "any" else "maps_non_local")
        outputs = ()
        if task.id.kind == TaskKind.REDUCE:
            outputs = tuple((m.id.index, m.output_worker, m.output) for m in job.maps)
        return ev.AssignAttempt(worker.id, aid, locality, outputs, speculative)

    def _speculate(self) -> list:
        actions = []
        for job in self._active_jobs():
            kind = TaskKind.MAP if job.state == JobState.MAPPING else TaskKind.REDUCE
            tasks = job.tasks(kind)
            if any(t.state == TaskState.PENDING for t in tasks):
                continue
            done = [t.duration for t in tasks if t.state == TaskState.SUCCEEDED and t.duration is not None]
            if not done:
                continue
            typical = max(statistics.median(done), self.spec_min / self.slowdown)
            for task in tasks:
                running = task.running()
                if len(running) != 1 or task.state != TaskState.RUNNING:
                    continue
                a = running[0]
                if self.now - a.started <= self.slowdown * typical:
                    continue
                others = [w for w in self._free_workers() if w.id != a.worker_id]
                if others:
                    w = min(others, key=lambda w: (len(w.running), w.id))
                    self._count(job, "speculative_attempts")
                    actions.append(self._start_attempt(job, task, w, "any", speculative=True))
        return actions

    # ------------------------------------------------------------------ helpers
    def _end_attempt(self, w: Worker | None, a: Attempt, state: AttemptState) -> None:
        a.state = state
        a.finished = self.now
        if w is not None:
            w.running.discard(a.id)

    def _task(self, tid: TaskId) -> Task:
        return self.jobs[tid.job].tasks(tid.kind)[tid.index]

    def _attempt(self, aid: AttemptId) -> Attempt | None:
        job = self.jobs.get(aid.task.job)
        if job is None or not 0 <= aid.task.index < len(job.tasks(aid.task.kind)):
            return None
        return job.tasks(aid.task.kind)[aid.task.index].attempts.get(aid.n)

    def _lookup(self, aid: AttemptId, worker_id: str | None):
        a = self._attempt(aid)
        if a is None or (worker_id is not None and a.worker_id != worker_id):
            log.info("report about unknown or superseded attempt %s from %s ignored", aid, worker_id)
            return None, None, None, None
        job = self.jobs[aid.task.job]
        return a, job.tasks(aid.task.kind)[aid.task.index], job, self.workers.get(a.worker_id)

    @staticmethod
    def _count(job: Job, name: str, n: int = 1) -> None:
        job.counters[name] = job.counters.get(name, 0) + n

    # ------------------------------------------------------------------ queries
    def job_counters(self, job_id: str) -> dict:
        """Counters summed over committed attempts, plus the job's own scheduling counters."""
        job = self.jobs[job_id]
        total: dict = {}
        for task in job.maps + job.reduces:
            if task.committed is not None:
                _merge_counters(total, task.counters)
        total["job"] = {**total.get("job", {}), **job.counters}
        return total

    def progress(self, job_id: str) -> dict:
        job = self.jobs[job_id]
        return {"state": job.state.value,
                "maps_done": sum(t.state == TaskState.SUCCEEDED for t in job.maps),
                "maps": len(job.maps),
                "reduces_done": sum(t.state == TaskState.SUCCEEDED for t in job.reduces),
                "reduces": len(job.reduces)}

    def validate(self) -> None:
        """Check the invariants; raises ``AssertionError`` naming the broken one."""
        for job in self.jobs.values():
            for task in job.maps + job.reduces:
                ok = [a for a in task.attempts.values() if a.state == AttemptState.SUCCEEDED]
                if task.committed is not None:
                    assert task.state == TaskState.SUCCEEDED, f"{task.id} committed but {task.state}"
                    assert task.committed in [a.id for a in ok], f"{task.id} committed a non-success"
                assert len(ok) <= 1, f"{task.id} has {len(ok)} successful attempts"
                for a in task.running():
                    w = self.workers.get(a.worker_id)
                    assert w is not None and w.alive, f"{a.id} runs on dead worker {a.worker_id}"
                    assert a.id in w.running, f"{a.id} not in {w.id}.running"
            if job.state == JobState.SUCCEEDED:
                assert all(t.state == TaskState.SUCCEEDED for t in job.maps + job.reduces)
        for w in self.workers.values():
            assert len(w.running) <= w.slots, f"{w.id} runs {len(w.running)} > {w.slots} slots"
            if not w.alive:
                assert not w.running, f"dead {w.id} still runs {w.running}"


def _merge_counters(total: dict, add: dict) -> None:
    for group, names in (add or {}).items():
        g = total.setdefault(group, {})
        for name, value in names.items():
            g[name] = g.get(name, 0) + value
