"""The local runner: the cluster in one box.

A ``LocalCluster`` is the scheduling core (``scheduler.MasterState``) plus a
pool of warm executor processes, each registered with the core as a worker of
one slot; the core's actions are carried out by the same interpreter as the
master's (``runtime.shell``), through a backend of pool slots.  A job runs exactly as on a cluster — same tasks, attempts,
retries, speculation, shuffle files and commit protocol — with the network
replaced by direct reads of map output files on this host.  The pool stays
warm across jobs (and keeps cached splits), so iterative jobs pay for process
start and parsing once.
"""
from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import shutil
import tempfile
import threading
import time

from mapred import config as configmod
from mapred.core import actions as act
from mapred.core import events as ev
from mapred.io import commit
from mapred.io.outputs import temp_output
from mapred.runtime.plan import JobPlan, job_error
from mapred.task.pool import ExecutorPool, PoolEvent
from mapred.io.fs import HOSTNAME
from mapred.io.outputs import Result
from mapred.runtime.shell import Shell, make_core
from mapred.types import AttemptId, JobState

log = logging.getLogger(__name__)


class _Running:
    """One job a caller of ``LocalCluster.run`` waits for."""

    def __init__(self, plan: JobPlan, progress) -> None:
        self.plan, self.progress = plan, progress
        self.started = time.monotonic()
        self.done = None          # its JobFinished, once the core says so
        self.snapshot = None      # (progress, counters) for the caller's callback, set by the driver
        self.task_counters: dict = {}
        self.final_progress = None


class LocalCluster:
    """An embedded cluster: ``workers`` executor processes on this machine, killed by pid on close.

    Several threads may run jobs at once (model selection fits many models
    side by side): the jobs share the executors as a real cluster's jobs share
    its workers.  One scheduling core holds them all, and one caller at a time
    is its driver — it polls the executors and steps the core for every
    running job; when its own job is done it hands the driving to a caller
    still waiting.  A new submission wakes the driver at once.
    """

    def __init__(self, workers: int | None = None, config=None, work_dir: str | None = None) -> None:
        self.config = config or configmod.load()
        self.size = workers or os.cpu_count() or 1
        self._own_dir = work_dir is None
        self.work_dir = work_dir or tempfile.mkdtemp(prefix="mapred-local-")
        self.pool = ExecutorPool(self.size, self.config.executor_memory_cap)
        # executors are watched by the pool, not by heartbeat deadlines
        self.core = make_core(self.config, dead_timeout=float("inf"),
                              speculation=self.config.speculation and self.size > 1)
        self.plans: dict[str, JobPlan] = {}       # every job the core knows and has not finished
        self.shell = Shell(self.core, _PoolBackend(self))
        self._plan_lock = threading.Lock()
        self._cv = threading.Condition()
        self._driving = False
        self._running: dict[str, _Running] = {}
        self._inbox: list = []                    # events for the driver: submissions, kill requests
        self._wake_r, self._wake_w = multiprocessing.Pipe(duplex=False)
        self._closed = False
        for slot in self.pool.slots:
            self.core.handle(ev.WorkerJoined(slot.worker_id, HOSTNAME, 1, time.monotonic()))

    # -------------------------------------------------------------- public
    def run(self, job, inputs, output: str | None = None, *, overwrite: bool = False, progress=None) -> Result:
        """Run one job to the end; raise ``JobFailed`` / ``JobKilled`` if it does not succeed.

        Safe to call from several threads at once: their jobs run side by side.
        """
        if self._closed:
            raise RuntimeError("this LocalCluster is closed")
        if output is None:
            output, overwrite = temp_output(), True
        with self._plan_lock:
            plan = JobPlan.make(job, inputs, output, self.config, self.work_dir, overwrite, slots=self.size)
            commit.claim_output(plan.output)     # a SIGKILLed run's output is then known as debris
        running = _Running(plan, progress)
        with self._cv:
            if self._closed:
                raise RuntimeError("this LocalCluster is closed")
            self.plans[plan.job_id] = plan
            self._running[plan.job_id] = running
            self._post(plan.submitted_event())
        try:
            self._wait(running)
        except BaseException:
            if running.done is None:
                self._kill(plan.job_id)
            raise
        finally:
            with self._cv:
                self._running.pop(plan.job_id, None)
        done = running.done
        if progress is not None:
            progress(running.final_progress, done.counters)
        if done.state != JobState.SUCCEEDED:
            raise job_error(plan.job_id, done)
        result = Result(plan.output, done.counters, plan.job_id, time.monotonic() - running.started)
        result.task_counters = running.task_counters
        return result

    def close(self) -> None:
        """Kill the executors (by pid) and remove the cluster's work directory; idempotent."""
        if not self._closed:
            self._closed = True
            self.pool.close()
            for conn in (self._wake_r, self._wake_w):
                conn.close()
            if self._own_dir:
                shutil.rmtree(self.work_dir, ignore_errors=True)

    def pids(self) -> list[int]:
        """The executor processes' pids."""
        return self.pool.pids()

    def __enter__(self) -> "LocalCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -------------------------------------------------------------- who drives
    def _post(self, event) -> None:
        """Queue an event for the driver and wake it (call holding ``_cv``)."""
        self._inbox.append(event)
        try:
            self._wake_w.send_bytes(b"!")
        except OSError:   # closed: the cluster is going away
            pass

    def _wait(self, running: _Running) -> None:
        """Wait for ``running`` to finish, driving the core whenever no one else does."""
        while True:
            with self._cv:
                while running.done is None and self._driving and running.snapshot is None:
                    self._cv.wait()
                snapshot, running.snapshot = running.snapshot, None
                drive = running.done is None and not self._driving and snapshot is None
                if drive:
                    self._driving = True
            if snapshot is not None and running.progress is not None and running.done is None:
                running.progress(*snapshot)
            if running.done is not None:
                return
            if drive:
                try:
                    self._drive(running)
                finally:
                    with self._cv:
                        self._driving = False
                        self._cv.notify_all()

    def _kill(self, job_id: str) -> None:
        """Ask the core to kill a job whose caller stopped (through the driver, or driving for it)."""
        kill = ev.JobKillRequested(job_id, "the client stopped")
        with self._cv:
            if self._driving:
                self._post(kill)
                return
            self._driving = True
        try:
            self._step_all([kill])
        finally:
            with self._cv:
                self._driving = False
                self._cv.notify_all()

    # -------------------------------------------------------------- the loop
    def _drive(self, mine: _Running) -> None:
        """Poll the executors and step the core for every job until ``mine`` is finished."""
        while mine.done is None:
            with self._cv:
                events, self._inbox = self._inbox, []
            if not events:
                events = [e for pe in self.pool.poll(0.5, self._wake_r) for e in self._events_of(pe)]
                while self._wake_r.poll():
                    self._wake_r.recv_bytes()
                events += self._heartbeats()
            events.append(ev.Tick(time.monotonic()))
            self._step_all(events)
            with self._cv:      # the driver's own caller sees its progress as the waiting ones do
                snapshot, mine.snapshot = mine.snapshot, None
            if snapshot is not None and mine.progress is not None and mine.done is None:
                mine.progress(*snapshot)

    def _step_all(self, events: list) -> None:
        """Step the core (driver only); hand finished jobs and progress to the callers waiting."""
        finished = self.shell.step(*events)
        with self._cv:
            for f in finished:
                self.pool.drop_job(f.job_id)
                running = self._running.get(f.job_id)
                if running is not None and running.done is None:
                    running.task_counters = self._task_counters(f.job_id)
                    running.final_progress = self.core.progress(f.job_id)
                    running.done = f
            for running in self._running.values():
                if running.progress is not None and running.done is None:
                    running.snapshot = (self.core.progress(running.plan.job_id),
                                        self._counters_so_far(running.plan.job_id))
            self._cv.notify_all()

    def _task_counters(self, job_id: str) -> dict:
        """Each committed task's counters (its stage times among them): ``mapred run --profile``."""
        job = self.core.job(job_id)
        if job is None:
            return {}
        return {str(t.id): dict(t.counters) for t in job.all_tasks() if t.committed is not None}

    def _heartbeats(self) -> list:
        """What a worker's heartbeat would carry: each running attempt's progress and live counters."""
        now = time.monotonic()
        return [ev.WorkerHeartbeat(slot.worker_id, now, ((AttemptId.parse(slot.attempt), *slot.progress),))
                for slot in self.pool.slots if slot.attempt is not None and slot.progress is not None]

    def _counters_so_far(self, job_id: str) -> dict:
        """Committed attempts' counters plus the live counters of this job's running attempts."""
        total = self.core.job_counters(job_id)
        for slot in self.pool.slots:
            if slot.attempt is not None and slot.progress is not None and slot.attempt.startswith(job_id + "-"):
                for group, names in slot.progress[1].items():
                    merged = total.setdefault(group, {})
                    for name, value in names.items():
                        merged[name] = merged.get(name, 0) + value
        return total

    def _slot_of(self, worker_id: str):
        for slot in self.pool.slots:
            if slot.worker_id == worker_id:
                return slot
        return None

    @staticmethod
    def _replacement(old: str, new: str) -> list:
        """A restarted executor is a new worker (its cache is gone); its map outputs stay on disk."""
        return [ev.WorkerLost(old, "executor restarted", outputs_lost=False),
                ev.WorkerJoined(new, HOSTNAME, 1, time.monotonic())]

    def _events_of(self, pe: PoolEvent) -> list:
        slot = self.pool.slots[pe.slot]
        attempt = AttemptId.parse(pe.attempt)
        now = time.monotonic()
        if pe.kind == "done":
            result = pe.report
            return [ev.AttemptSucceeded(attempt, slot.worker_id, result.output, result.counters, result.cached, now)]
        report = pe.report
        if pe.kind == "died":
            # the pool already restarted the process, under a new worker id
            old = f"exec-{slot.index}.{slot.incarnation - 1}"
            return [ev.AttemptFailed(attempt, old, report.as_error(), False, now),
                    *self._replacement(old, slot.worker_id)]
        if report.fetch_failed_map is not None:
            return [ev.FetchFailed(attempt, report.fetch_failed_map, report.message),
                    ev.AttemptFailed(attempt, slot.worker_id, report.as_error(), False, now)]
        return [ev.AttemptFailed(attempt, slot.worker_id, report.as_error(), report.fatal, now)]


class _PoolBackend:
    """How the local runner carries out core actions: executor pool slots and each job's plan."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster

    def _plan(self, attempt: AttemptId) -> JobPlan:
        return self.cluster.plans[attempt.task.job]

    def assign(self, a: act.AssignAttempt) -> None:
        slot = self.cluster._slot_of(a.worker_id)
        if slot is None:  # the executor was replaced; the core re-runs the attempt elsewhere
            log.info("assignment to replaced executor %s dropped", a.worker_id)
            return
        plan = self._plan(a.attempt)
        self.cluster.pool.start_attempt(slot, plan.job_id, plan.blob, plan.attempt_spec(a))

    def kill(self, a: act.KillAttempt) -> list:
        slot = self.cluster._slot_of(a.worker_id)
        if slot is None or slot.attempt != str(a.attempt):
            return []
        old = slot.worker_id
        self.cluster.pool.kill_attempt(slot)      # kills the process: a new executor, a new worker id
        return LocalCluster._replacement(old, slot.worker_id)

    def commit_attempt(self, a: act.CommitAttempt) -> None:
        self._plan(a.attempt).apply_commit(a)

    def commit_job(self, a: act.CommitJob) -> None:
        self.cluster.plans[a.job_id].commit_job(a)

    def discard(self, a: act.DiscardAttempt) -> None:
        self._plan(a.attempt).apply_discard(a)

    def retire(self, a: act.RetireWorker) -> None:
        """Nothing drains the embedded cluster's executors; the core never asks."""
        log.warning("retire of %s ignored: the local runner does not drain", a.worker_id)

    def finished(self, a: act.JobFinished) -> None:
        plan = self.cluster.plans.pop(a.job_id, None)
        if plan is not None:
            plan.finish(a)


_default: LocalCluster | None = None
_default_lock = threading.Lock()


def default_cluster(workers: int | None = None) -> LocalCluster:
    """The process-wide embedded cluster (created on first use, closed at exit)."""
    global _default
    with _default_lock:
        want = workers or os.cpu_count() or 1
        if _default is not None and (_default._closed or _default.size != want):
            _default.close()
            _default = None
        if _default is None:
            _default = LocalCluster(want)
            atexit.register(_default.close)
        return _default


def shutdown_default() -> None:
    """Close the process-wide embedded cluster, if one was made."""
    global _default
    with _default_lock:
        if _default is not None:
            _default.close()
            _default = None
