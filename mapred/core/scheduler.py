"""The master's scheduling core: a state machine of jobs, tasks, attempts and workers.

``MasterState.handle(event) -> [action]`` is all there is: no sockets, no
clock (time arrives in events), no file system.  The local runner and the
distributed master are thin loops around it (both through one interpreter of
actions, ``mapred.runtime.shell``), which is why the local runner is the
cluster in one box and why thousands of schedules can be tested in
milliseconds.

Rules it keeps:
* a job is SUBMITTED until its first attempt starts, then MAPPING, REDUCING,
  COMMITTING and SUCCEEDED | FAILED | KILLED;
* a task's first successful attempt is committed, exactly once; later
  successes are discarded, running siblings killed.  A task whose output is
  final (a reduce, or a map of a map-only job) is COMMITTING until the shell
  answers ``CommitDone``; when every task is committed the core asks for the
  job's commit (``CommitJob``) and only its ``CommitDone`` makes the job
  SUCCEEDED.  A refused commit fails the task and the job — SUCCEEDED is
  never said first;
* every dispatch gets a fresh attempt number; a report about an attempt the
  core no longer tracks is ignored;
* a failed attempt is retried until ``max_attempts``; a fatal failure (bad
  input) fails the job at once; the task whose failures end the job is FAILED;
* map tasks go to a worker caching their split, else holding their data,
  else anywhere; a task whose split is cached on a busy live worker waits up
  to ``locality_wait`` seconds for it (delay scheduling), so iterative jobs
  never re-read a cached split only because its worker was a moment late;
  reduces start when every map is done;
* a heartbeat that lists its worker's attempts is reconciled: attempts the
  core never assigned there are killed (again at every heartbeat that still
  lists them: a lost kill is re-sent) and hold their slots until a heartbeat
  no longer lists them; assigned ones missing from the list for longer than
  ``assignment_grace`` are failed (the assignment was lost);
* a worker's refusal to start an attempt (no free slot, code missing) is no
  failure: the task waits for another placement, and the worker gets no new
  work until its next heartbeat says what it runs;
* a lost worker's running attempts are re-run, and so are its finished map
  outputs while a reduce of that job may still need them;
* a task running far slower than its finished peers gets one backup attempt;
* finished jobs leave the working set (events never scan them again); the
  last ``history_jobs`` of them, no older than ``history_seconds``, stay
  queryable for ``mapred job list/status``.
"""
from __future__ import annotations

import logging
import statistics
from collections import OrderedDict
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from mapred.core import actions as act
from mapred.core import events as ev
from mapred.types import AttemptId, AttemptState, JobState, TaskId, TaskKind, TaskState

log = logging.getLogger(__name__)

# a task with a winning attempt: its output exists (COMMITTING: not yet in place)
_WON = (TaskState.COMMITTING, TaskState.SUCCEEDED)
_ACTIVE = (JobState.SUBMITTED, JobState.MAPPING, JobState.REDUCING)


@dataclass
class Attempt:
    """One run of a task on one worker."""

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
    """One map or reduce of a job, with every attempt made at it."""

    id: TaskId
    hosts: tuple = ()
    cache_key: str = ""
    final: bool = False               # its output is job output (a reduce, or a map-only map): commit it
    state: TaskState = TaskState.PENDING
    attempts: dict = field(default_factory=dict)    # n -> Attempt
    next_attempt: int = 0
    failures: int = 0
    committed: AttemptId | None = None              # the winning attempt (its commit may be pending)
    output: Any = None
    output_worker: str | None = None
    counters: dict = field(default_factory=dict)
    duration: float | None = None
    ready_since: float = 0.0          # when it last became PENDING (for the locality wait)

    def running(self) -> list[Attempt]:
        """The attempts still running."""
        return [a for a in self.attempts.values() if a.state == AttemptState.RUNNING]


@dataclass
class Job:
    """A job's tasks and state as the core sees them."""

    id: str
    maps: list
    reduces: list
    max_attempts: int
    submitted: float
    state: JobState = JobState.SUBMITTED
    error: dict = field(default_factory=dict)
    counters: dict = field(default_factory=dict)   # job-level: failed/killed attempts, locality
    bad_workers: dict = field(default_factory=dict)  # worker -> failures in this job
    commit_requested: bool = False
    finished_at: float | None = None
    recovered_at: float | None = None   # when recovered map outputs began waiting for their workers

    def tasks(self, kind: TaskKind) -> list[Task]:
        """The job's maps or its reduces."""
        return self.maps if kind == TaskKind.MAP else self.reduces

    def all_tasks(self) -> list[Task]:
        """Maps, then reduces."""
        return self.maps + self.reduces


@dataclass
class Worker:
    """A worker as the core sees it: its slots, what runs there, what it caches."""

    id: str
    host: str
    slots: int
    last_seen: float
    alive: bool = True
    running: set = field(default_factory=set)       # AttemptIds
    strays: set = field(default_factory=set)        # attempts it runs unasked (being killed): slots taken
    refused: bool = False                           # refused an attempt: no work until its next heartbeat
    cached: set = field(default_factory=set)        # cache keys held by this worker
    draining: bool = False                          # takes no new tasks; retires when not needed
    drain_deadline: float | None = None
    retired: bool = False                           # left after a drain: DECOMMISSIONED

    @property
    def state(self) -> str:
        if self.retired:
            return "DECOMMISSIONED"
        if not self.alive:
            return "LOST"
        return "DECOMMISSIONING" if self.draining else "ALIVE"


class MasterState:
    """Jobs, tasks, attempts and workers, advanced only by ``handle``."""

    def __init__(self, *, dead_timeout: float = 10.0, speculation: bool = True,
                 speculation_slowdown: float = 3.0, speculation_min_seconds: float = 1.0,
                 blacklist_failures: int = 3, locality_wait: float = 3.0, assignment_grace: float = 4.0,
                 history_jobs: int = 100, history_seconds: float = 24 * 3600.0) -> None:
        self.dead_timeout = dead_timeout
        self.speculation = speculation
        self.slowdown = speculation_slowdown
        self.spec_min = speculation_min_seconds
        self.blacklist_failures = blacklist_failures
        self.locality_wait = locality_wait
        self.assignment_grace = assignment_grace
        self.history_jobs = max(0, history_jobs)
        self.history_seconds = history_seconds
        self._jobs: dict[str, Job] = {}                    # the working set: unfinished jobs only
        self._history: OrderedDict[str, Job] = OrderedDict()  # finished jobs, oldest first
        self._workers: dict[str, Worker] = {}
        self.now = 0.0
        self._handlers = self._dispatch_table()

    def _dispatch_table(self) -> dict:
        """Event type -> handler, checked here so a renamed event fails at once, not silently later."""
        table = {ev.JobSubmitted: self._on_job_submitted, ev.JobKillRequested: self._on_job_kill_requested,
                 ev.WorkerJoined: self._on_worker_joined, ev.WorkerHeartbeat: self._on_worker_heartbeat,
                 ev.WorkerLost: self._on_worker_lost, ev.Tick: self._on_tick,
                 ev.AttemptSucceeded: self._on_attempt_succeeded, ev.AttemptFailed: self._on_attempt_failed,
                 ev.AttemptRefused: self._on_attempt_refused,
                 ev.FetchFailed: self._on_fetch_failed, ev.CommitDone: self._on_commit_done,
                 ev.CommitFailed: self._on_commit_failed, ev.TaskRecovered: self._on_task_recovered,
                 ev.WorkerDrainRequested: self._on_worker_drain_requested}
        missing = [cls.__name__ for cls in ev.EVENTS if cls not in table]
        extra = [cls.__name__ for cls in table if cls not in ev.EVENTS]
        if missing or extra:
            raise TypeError(f"scheduler dispatch table out of step with events: missing {missing}, extra {extra}")
        return table

    # ------------------------------------------------------------------ entry
    def handle(self, event) -> list:
        """Apply one event; return the actions the loop must carry out, in order."""
        handler = self._handlers.get(type(event))
        if handler is None:
            log.warning("scheduler: unknown event %r dropped", event)
            return []
        now = getattr(event, "now", None)
        if now:
            self.now = max(self.now, now)
        actions = handler(event)
        return actions + self._retire_drained() + self._schedule()

    # ------------------------------------------------------------------ workers
    def _on_worker_joined(self, e: ev.WorkerJoined) -> list:
        old = self._workers.get(e.worker_id)
        actions = self._lose_worker(old, "re-registered") if old and old.alive else []
        self._workers[e.worker_id] = Worker(e.worker_id, e.host, max(0, e.slots), e.now or self.now)
        return actions

    def _on_worker_heartbeat(self, e: ev.WorkerHeartbeat) -> list:
        w = self._workers.get(e.worker_id)
        if w is None or not w.alive:
            return []
        w.last_seen = max(w.last_seen, e.now)
        for entry in e.progress:
            a = self._attempt(entry[0])
            if a is not None and a.state == AttemptState.RUNNING:
                a.progress = float(entry[1])
                if len(entry) > 2 and entry[2]:
                    a.counters = dict(entry[2])
        return self._reconcile(w, set(e.running)) if e.running is not None else []

    def _reconcile(self, w: Worker, listed: set) -> list:
        """Kill attempts the worker runs unasked; fail attempts it should run but does not list.

        Messages on one connection arrive in order, so a heartbeat sent after
        an attempt's report never lists it; an assignment may still be on its
        way, hence the grace before a missing attempt counts as lost.
        """
        w.strays = listed - w.running      # a kill that was lost, or an earlier life's: they hold slots
        w.refused = False
        actions: list = [act.KillAttempt(w.id, aid, "not assigned by the master") for aid in sorted(w.strays)]
        for aid in sorted(w.running - listed):
            a = self._attempt(aid)
            if a is None or self.now - a.started <= self.assignment_grace:
                continue
            job = self._jobs[aid.task.job]
            error = {"type": "AssignmentLost", "message": f"{w.id} does not run {aid}", "traceback": ""}
            actions += self._fail_attempt(a, self._task(aid.task), job, w, error, False,
                                          f"{aid} is not running on {w.id} (assignment lost)")
        return actions

    def _on_worker_lost(self, e: ev.WorkerLost) -> list:
        w = self._workers.get(e.worker_id)
        return self._lose_worker(w, e.reason, e.outputs_lost) if w and w.alive else []

    def _on_worker_drain_requested(self, e: ev.WorkerDrainRequested) -> list:
        w = self._workers.get(e.worker_id)
        if w is None or not w.alive:
            return []
        w.draining = True
        if e.timeout > 0:
            w.drain_deadline = self.now + e.timeout
        log.info("draining worker %s%s", w.id, f" (timeout {e.timeout:g}s)" if e.timeout > 0 else "")
        return []

    def _retire_drained(self) -> list:
        """Drained workers that run nothing and hold no map output a running job needs may go."""
        actions: list = []
        for w in self._workers.values():
            if not (w.alive and w.draining):
                continue
            if not w.running and not self.needed_outputs(w.id):
                w.alive, w.retired = False, True
                actions.append(act.RetireWorker(w.id, "drained: nothing running, no map output needed"))
            elif w.drain_deadline is not None and self.now >= w.drain_deadline:
                actions += self._lose_worker(w, "drain timed out")
                w.retired = True
                actions.append(act.RetireWorker(w.id, "drain timed out; its work is made again elsewhere"))
        return actions

    def waiting_tasks(self) -> int:
        """Tasks that could start now if a slot were free (what an autoscaler grows for)."""
        return sum(1 for job in self._jobs.values() if job.state in _ACTIVE
                   for t in job.tasks(self._phase(job)) if t.state == TaskState.PENDING)

    def needed_outputs(self, worker_id: str) -> list[TaskId]:
        """Finished maps whose output lives on ``worker_id`` and a running job's reduce still needs."""
        out = []
        for job in self._jobs.values():
            if job.state not in _ACTIVE or not job.reduces:
                continue
            if all(r.state == TaskState.SUCCEEDED for r in job.reduces):
                continue
            out += [t.id for t in job.maps
                    if t.state == TaskState.SUCCEEDED and t.output_worker == worker_id]
        return out

    def _on_tick(self, e: ev.Tick) -> list:
        actions: list = []
        for w in list(self._workers.values()):
            if w.alive and self.now - w.last_seen > self.dead_timeout:
                actions += self._lose_worker(w, f"no heartbeat for {self.now - w.last_seen:.1f}s")
        self._prune_history()
        return actions + self._absent_outputs()

    def _lose_worker(self, w: Worker, reason: str, outputs_lost: bool = True) -> list:
        """Re-run what the worker was running and the map outputs it held that are still needed."""
        (log.warning if outputs_lost else log.info)("worker %s lost: %s", w.id, reason)
        w.alive = False
        actions: list = []
        for aid in sorted(w.running):
            task = self._task(aid.task)
            a = task.attempts[aid.n]
            self._end_attempt(w, a, AttemptState.LOST)
            self._count(self._jobs[aid.task.job], "lost_attempts")
            if task.state == TaskState.RUNNING and not task.running():
                self._make_pending(task)
        for job in list(self._jobs.values()) if outputs_lost else ():
            if job.state in (JobState.MAPPING, JobState.REDUCING) and job.reduces:
                for task in job.maps:
                    if task.state == TaskState.SUCCEEDED and task.output_worker == w.id:
                        actions += self._rerun_map(job, task, f"its output was on lost worker {w.id}")
        return actions

    # ------------------------------------------------------------------ jobs
    def _on_job_submitted(self, e: ev.JobSubmitted) -> list:
        if e.job_id in self._jobs or e.job_id in self._history:
            log.warning("job %s submitted twice; ignored", e.job_id)
            return []
        hosts = list(e.split_hosts) + [()] * (e.num_maps - len(e.split_hosts))
        keys = list(e.split_cache_keys) + [""] * (e.num_maps - len(e.split_cache_keys))
        map_only = e.num_reduces == 0
        base = max(0, e.attempt_base)
        maps = [Task(TaskId(e.job_id, TaskKind.MAP, i), tuple(hosts[i]), keys[i], final=map_only,
                     next_attempt=base, ready_since=self.now) for i in range(e.num_maps)]
        reduces = [Task(TaskId(e.job_id, TaskKind.REDUCE, i), final=True, next_attempt=base)
                   for i in range(e.num_reduces)]
        job = Job(e.job_id, maps, reduces, max(1, e.max_attempts), e.now or self.now)
        self._jobs[e.job_id] = job
        return self._advance_job(job)

    def _on_task_recovered(self, e: ev.TaskRecovered) -> list:
        """A task won before a master restart: take its winning attempt as it was (see the event)."""
        job = self._jobs.get(e.attempt.task.job)
        task = self._task_in(job, e.attempt.task) if job is not None else None
        if task is None or task.state in _WON or job.state not in _ACTIVE:
            return []
        a = Attempt(e.attempt, e.worker_id, self.now, AttemptState.SUCCEEDED, finished=self.now)
        task.attempts[e.attempt.n] = a
        task.next_attempt = max(task.next_attempt, e.attempt.n + 1)
        task.state = TaskState.SUCCEEDED
        task.committed = a.id
        task.output, task.output_worker, task.counters = e.output, e.worker_id, dict(e.counters or {})
        task.duration = None
        if not task.final:
            job.recovered_at = self.now     # its worker has until the dead timeout to come back
        if job.state == JobState.SUBMITTED:
            job.state = JobState.MAPPING
        self._count(job, "recovered_tasks")
        return self._advance_job(job)

    def _absent_outputs(self) -> list:
        """Recovered map outputs whose worker did not come back within the dead timeout: run them again."""
        actions: list = []
        for job in list(self._jobs.values()):
            if job.recovered_at is None or self.now - job.recovered_at <= self.dead_timeout:
                continue
            job.recovered_at = None
            if job.state not in (JobState.MAPPING, JobState.REDUCING) or not job.reduces:
                continue
            for task in job.maps:
                w = self._workers.get(task.output_worker or "")
                if task.state == TaskState.SUCCEEDED and (w is None or not w.alive):
                    actions += self._rerun_map(job, task, f"its worker {task.output_worker} did not "
                                                          "come back after the master restarted")
        return actions

    def _on_job_kill_requested(self, e: ev.JobKillRequested) -> list:
        job = self._jobs.get(e.job_id)
        if job is None:
            return []
        return self._finish_job(job, JobState.KILLED, {"message": e.reason})

    def _on_commit_done(self, e: ev.CommitDone) -> list:
        job = self._jobs.get(e.job)
        if job is None:
            return []
        if e.attempt is None:                       # the job's own commit: now, and only now, it succeeded
            if job.state != JobState.COMMITTING or not job.commit_requested:
                log.warning("job commit of %s reported while %s; ignored", job.id, job.state.value)
                return []
            return self._finish_job(job, JobState.SUCCEEDED, {})
        task = self._task_in(job, e.attempt.task)
        if task is None or task.state != TaskState.COMMITTING or task.committed != e.attempt:
            return []    # an intermediate map (nothing to wait for) or a stale answer
        task.state = TaskState.SUCCEEDED
        return self._advance_job(job)

    def _on_commit_failed(self, e: ev.CommitFailed) -> list:
        """The output cannot be complete: the task (if it was a task's commit) and the job fail."""
        job = self._jobs.get(e.job)
        if job is None:
            return []
        failed = None
        if e.attempt is not None:
            failed = self._task_in(job, e.attempt.task)
            if failed is None or failed.committed != e.attempt:
                return []    # not the attempt the core asked to commit
            error = {"task": str(e.attempt.task), "attempt": str(e.attempt), "reason": "a failed commit",
                     "type": "CommitError", "message": e.reason}
        else:
            error = {"task": "", "reason": "a failed job commit", "type": "CommitError", "message": e.reason}
        return self._finish_job(job, JobState.FAILED, error, failed)

    def _finish_job(self, job: Job, state: JobState, error: dict, failed: Task | None = None) -> list:
        """End the job: kill what runs, settle every task's state, move it to the history."""
        job.state = state
        job.error = error
        job.finished_at = self.now
        actions: list = []
        for task in job.all_tasks():
            for a in task.running():
                self._end_attempt(self._workers.get(a.worker_id), a, AttemptState.KILLED)
                actions.append(act.KillAttempt(a.worker_id, a.id, f"job {state.value.lower()}"))
            if task is failed:
                task.state = TaskState.FAILED
            elif task.state in (TaskState.PENDING, TaskState.RUNNING, TaskState.COMMITTING):
                task.state = TaskState.KILLED
        actions.append(act.JobFinished(job.id, state, error, self.job_counters(job.id)))
        del self._jobs[job.id]
        self._history[job.id] = job
        self._prune_history()
        return actions

    def _prune_history(self) -> None:
        """Keep the last ``history_jobs`` finished jobs, none older than ``history_seconds``."""
        while len(self._history) > self.history_jobs:
            self._history.popitem(last=False)
        while self._history:
            oldest = next(iter(self._history.values()))
            if self.now - (oldest.finished_at or 0.0) <= self.history_seconds:
                break
            self._history.popitem(last=False)

    def _advance_job(self, job: Job) -> list:
        """Move MAPPING → REDUCING → COMMITTING as tasks win; ask for the job commit once all are in place."""
        if job.state == JobState.MAPPING and all(t.state in _WON for t in job.maps):
            job.state = JobState.REDUCING if job.reduces else JobState.COMMITTING
        if job.state == JobState.REDUCING and all(t.state in _WON for t in job.reduces):
            job.state = JobState.COMMITTING
        if job.state == JobState.SUBMITTED and not job.maps and not job.reduces:
            job.state = JobState.COMMITTING        # nothing to run: straight to the (empty) output's commit
        if (job.state == JobState.COMMITTING and not job.commit_requested
                and all(t.state == TaskState.SUCCEEDED for t in job.all_tasks())):
            job.commit_requested = True
            return [act.CommitJob(job.id, self.job_counters(job.id))]
        return []

    # ------------------------------------------------------------------ attempts
    def _on_attempt_succeeded(self, e: ev.AttemptSucceeded) -> list:
        a, task, job, w = self._lookup(e.attempt, e.worker_id)
        if a is None:
            return self._late_success(e)
        if w is not None:
            w.cached.update(e.cached)
        if a.state == AttemptState.SUCCEEDED and task.committed == a.id:
            return []        # the same report twice (a duplicated message): its output is the task's
        if a.state != AttemptState.RUNNING or task.state in _WON or job.state not in _ACTIVE:
            if a.state == AttemptState.RUNNING:
                self._end_attempt(w, a, AttemptState.KILLED)
            return [act.DiscardAttempt(e.attempt, e.worker_id)]
        self._end_attempt(w, a, AttemptState.SUCCEEDED)
        # a final output waits for its commit; a map's output for reduces is usable as it is
        task.state = TaskState.COMMITTING if task.final else TaskState.SUCCEEDED
        task.committed = a.id
        task.output = e.output
        task.output_worker = e.worker_id
        task.counters = e.counters or {}
        task.duration = self.now - a.started
        actions: list = [act.CommitAttempt(a.id, e.worker_id, e.output)]
        for other in task.running():
            self._end_attempt(self._workers.get(other.worker_id), other, AttemptState.KILLED)
            self._count(job, "killed_attempts")
            actions.append(act.KillAttempt(other.worker_id, other.id, f"{a.id} finished first"))
        return actions + self._advance_job(job)

    def _late_success(self, e: ev.AttemptSucceeded) -> list:
        """A success reported for a job already finished: its temporary output must still go."""
        job = self._history.get(e.attempt.task.job)
        task = self._task_in(job, e.attempt.task) if job is not None else None
        a = task.attempts.get(e.attempt.n) if task is not None else None
        if a is None or a.worker_id != e.worker_id:
            log.info("report about unknown or superseded attempt %s from %s ignored", e.attempt, e.worker_id)
            return []
        return [act.DiscardAttempt(e.attempt, e.worker_id)]

    def _on_attempt_failed(self, e: ev.AttemptFailed) -> list:
        a, task, job, w = self._lookup(e.attempt, e.worker_id)
        if a is None or a.state != AttemptState.RUNNING:
            return []
        return self._fail_attempt(a, task, job, w, e.error, e.fatal)

    def _on_attempt_refused(self, e: ev.AttemptRefused) -> list:
        a, task, job, w = self._lookup(e.attempt, e.worker_id)
        if a is None or a.state != AttemptState.RUNNING:
            return []
        self._end_attempt(w, a, AttemptState.KILLED)
        a.error = {"type": "AttemptRefused", "message": e.reason, "traceback": ""}
        self._count(job, "refused_attempts")
        if w is not None:
            w.refused = True           # its slots are not what the core thought: wait for its word
        if task.state not in _WON and not task.running():
            self._make_pending(task)
        return []

    def _fail_attempt(self, a: Attempt, task: Task, job: Job, w: Worker | None, error: dict, fatal: bool,
                      note: str = "") -> list:
        """End a running attempt as FAILED; retry its task, or fail the job (and the task) when that is done."""
        self._end_attempt(w, a, AttemptState.FAILED)
        a.error = dict(error)
        self._count(job, "failed_attempts")
        actions: list = [act.DiscardAttempt(a.id, a.worker_id, note)]
        if task.state in _WON:
            return actions
        task.failures += 1
        job.bad_workers[a.worker_id] = job.bad_workers.get(a.worker_id, 0) + 1
        if fatal or task.failures >= job.max_attempts:
            why = "a fatal error" if fatal else f"{task.failures} failed attempts"
            detail = {"task": str(task.id), "attempt": str(a.id), "worker": a.worker_id, "reason": why, **error}
            return actions + self._finish_job(job, JobState.FAILED, detail, task)
        if not task.running():
            self._make_pending(task)
        return actions

    def _on_fetch_failed(self, e: ev.FetchFailed) -> list:
        a, task, job, w = self._lookup(e.attempt, None)
        if a is None or job.state not in (JobState.MAPPING, JobState.REDUCING):
            return []
        if not 0 <= e.map_index < len(job.maps):
            return []
        mtask = job.maps[e.map_index]
        if mtask.state == TaskState.SUCCEEDED:
            return self._rerun_map(job, mtask, f"reducer {e.attempt} could not fetch it: {e.reason}")
        return []

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
                self._end_attempt(self._workers.get(ra.worker_id), ra, AttemptState.KILLED)
                actions.append(act.KillAttempt(ra.worker_id, ra.id, f"map {task.id} is re-running"))
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
        return [w for w in self._workers.values()
                if w.alive and not w.draining and not w.refused and len(w.running) + len(w.strays) < w.slots]

    def _active_jobs(self) -> list[Job]:
        jobs = [j for j in self._jobs.values() if j.state in _ACTIVE]
        return sorted(jobs, key=lambda j: (self._running_count(j), j.submitted, j.id))

    @staticmethod
    def _phase(job: Job) -> TaskKind:
        """The kind of task the job runs now (a job without maps starts with its reduces)."""
        if job.state == JobState.REDUCING or (job.state == JobState.SUBMITTED and not job.maps):
            return TaskKind.REDUCE
        return TaskKind.MAP

    def _running_count(self, job: Job) -> int:
        return sum(len(t.running()) for t in job.all_tasks())

    def _assign_one(self):
        free = self._free_workers()
        if not free:
            return None
        for job in self._active_jobs():
            kind = self._phase(job)
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
        return bool(task.cache_key) and any(task.cache_key in w.cached and w.alive for w in self._workers.values())

    def _make_pending(self, task: Task) -> None:
        task.state = TaskState.PENDING
        task.ready_since = self.now

    def _start_attempt(self, job: Job, task: Task, worker: Worker, locality: str,
                       speculative: bool) -> act.AssignAttempt:
        aid = AttemptId(task.id, task.next_attempt)
        task.next_attempt += 1
        task.attempts[aid.n] = Attempt(aid, worker.id, self.now, speculative=speculative)
        task.state = TaskState.RUNNING
        worker.running.add(aid)
        if job.state == JobState.SUBMITTED:          # its first attempt: the job is under way
            job.state = JobState.MAPPING if task.id.kind == TaskKind.MAP else JobState.REDUCING
        if task.id.kind == TaskKind.MAP and not speculative:
            self._count(job, f"maps_{locality}_local" if locality != "any" else "maps_non_local")
        outputs = ()
        if task.id.kind == TaskKind.REDUCE:
            outputs = tuple((m.id.index, m.output_worker, m.output) for m in job.maps)
        return act.AssignAttempt(worker.id, aid, locality, outputs, speculative)

    def _speculate(self) -> list:
        actions = []
        for job in self._active_jobs():
            tasks = job.tasks(self._phase(job))
            if any(t.state == TaskState.PENDING for t in tasks):
                continue
            done = [t.duration for t in tasks if t.state in _WON and t.duration is not None]
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
        return self._jobs[tid.job].tasks(tid.kind)[tid.index]

    @staticmethod
    def _task_in(job: Job, tid: TaskId) -> Task | None:
        tasks = job.tasks(tid.kind)
        return tasks[tid.index] if 0 <= tid.index < len(tasks) else None

    def _attempt(self, aid: AttemptId) -> Attempt | None:
        job = self._jobs.get(aid.task.job)
        task = self._task_in(job, aid.task) if job is not None else None
        return task.attempts.get(aid.n) if task is not None else None

    def _lookup(self, aid: AttemptId, worker_id: str | None):
        a = self._attempt(aid)
        if a is None or (worker_id is not None and a.worker_id != worker_id):
            if aid.task.job not in self._history:
                log.info("report about unknown or superseded attempt %s from %s ignored", aid, worker_id)
            return None, None, None, None
        job = self._jobs[aid.task.job]
        return a, job.tasks(aid.task.kind)[aid.task.index], job, self._workers.get(a.worker_id)

    @staticmethod
    def _count(job: Job, name: str, n: int = 1) -> None:
        job.counters[name] = job.counters.get(name, 0) + n

    # ------------------------------------------------------------------ queries
    @property
    def jobs(self) -> Mapping[str, Job]:
        """The working set: unfinished jobs by id (read-only)."""
        return MappingProxyType(self._jobs)

    @property
    def history(self) -> Mapping[str, Job]:
        """Finished jobs still remembered, oldest first (read-only)."""
        return MappingProxyType(self._history)

    @property
    def workers(self) -> Mapping[str, Worker]:
        """Every worker the core has seen, by id (read-only)."""
        return MappingProxyType(self._workers)

    def job(self, job_id: str) -> Job | None:
        """A job of the working set or the history; ``None`` when forgotten or never seen."""
        return self._jobs.get(job_id) or self._history.get(job_id)

    def held_jobs(self) -> dict:
        """How many jobs the core holds: ``{"active": ..., "history": ...}``."""
        return {"active": len(self._jobs), "history": len(self._history)}

    def worker_alive(self, worker_id: str) -> bool:
        """Whether the core counts this worker as alive."""
        w = self._workers.get(worker_id)
        return w is not None and w.alive

    def running_on(self, worker_id: str) -> int:
        """How many attempts run on this worker."""
        w = self._workers.get(worker_id)
        return len(w.running) if w is not None else 0

    def job_counters(self, job_id: str) -> dict:
        """Counters summed over committed attempts, plus the job's own scheduling counters."""
        job = self.job(job_id)
        total: dict = {}
        for task in job.all_tasks():
            if task.committed is not None:
                _merge_counters(total, task.counters)
        total["job"] = {**total.get("job", {}), **job.counters}
        return total

    def progress(self, job_id: str) -> dict:
        """The job's state and how many of its maps and reduces are done."""
        job = self.job(job_id)
        return {"state": job.state.value,
                "maps_done": sum(t.state == TaskState.SUCCEEDED for t in job.maps),
                "maps": len(job.maps),
                "reduces_done": sum(t.state == TaskState.SUCCEEDED for t in job.reduces),
                "reduces": len(job.reduces)}

    def validate(self) -> None:
        """Check the invariants; raises ``AssertionError`` naming the broken one."""
        for job in self._jobs.values():
            assert not job.state.finished, f"finished {job.id} is still in the working set"
            for task in job.all_tasks():
                ok = [a for a in task.attempts.values() if a.state == AttemptState.SUCCEEDED]
                if task.committed is not None:
                    assert task.state in _WON, f"{task.id} committed but {task.state}"
                    assert task.committed in [a.id for a in ok], f"{task.id} committed a non-success"
                assert len(ok) <= 1, f"{task.id} has {len(ok)} successful attempts"
                assert task.state != TaskState.COMMITTING or task.final, f"{task.id} commits an intermediate map"
                for a in task.running():
                    w = self._workers.get(a.worker_id)
                    assert w is not None and w.alive, f"{a.id} runs on dead worker {a.worker_id}"
                    assert a.id in w.running, f"{a.id} not in {w.id}.running"
            if job.state == JobState.COMMITTING:
                assert all(t.state in _WON for t in job.all_tasks()), f"{job.id} commits unfinished tasks"
        assert len(self._history) <= self.history_jobs, "history over its bound"
        for job in self._history.values():
            assert job.state.finished, f"unfinished {job.id} in the history"
            assert not any(t.running() for t in job.all_tasks()), f"finished {job.id} still runs attempts"
            if job.state == JobState.SUCCEEDED:
                assert all(t.state == TaskState.SUCCEEDED for t in job.all_tasks()), f"{job.id} succeeded early"
        for w in self._workers.values():
            assert len(w.running) <= w.slots, f"{w.id} runs {len(w.running)} > {w.slots} slots"
            assert not (w.running & w.strays), f"{w.id} has assigned attempts among its strays"
            if not w.alive:
                assert not w.running, f"dead {w.id} still runs {w.running}"


def _merge_counters(total: dict, add: dict) -> None:
    for group, names in (add or {}).items():
        g = total.setdefault(group, {})
        for name, value in names.items():
            g[name] = g.get(name, 0) + value
