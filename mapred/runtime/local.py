"""The local runner: the cluster in one box.

A ``LocalCluster`` is the scheduling core (``scheduler.MasterState``) plus a
pool of warm executor processes, each registered with the core as a worker of
one slot.  A job runs exactly as on a cluster — same tasks, attempts,
retries, speculation, shuffle files and commit protocol — with the network
replaced by direct reads of map output files on this host.  The pool stays
warm across jobs (and keeps cached splits), so iterative jobs pay for process
start and parsing once.
"""
from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import threading
import time

from mapred import config as configmod
from mapred.core import events as ev
from mapred.runtime.plan import JobPlan, job_error
from mapred.task.pool import ExecutorPool, PoolEvent
from mapred.io.fs import HOSTNAME
from mapred.io.outputs import Result
from mapred.core.scheduler import MasterState
from mapred.types import AttemptId, JobState

log = logging.getLogger(__name__)


class LocalCluster:
    """An embedded cluster: ``workers`` executor processes on this machine, killed by pid on close."""

    def __init__(self, workers: int | None = None, config=None, work_dir: str | None = None) -> None:
        self.config = config or configmod.load()
        self.size = workers or os.cpu_count() or 1
        self._own_dir = work_dir is None
        self.work_dir = work_dir or tempfile.mkdtemp(prefix="mapred-local-")
        self.pool = ExecutorPool(self.size, self.config.executor_memory_cap)
        self.core = MasterState(dead_timeout=float("inf"), speculation=self.config.speculation and self.size > 1,
                                speculation_slowdown=self.config.speculation_slowdown,
                                blacklist_failures=self.config.blacklist_failures)
        self._lock = threading.Lock()
        self._closed = False
        for slot in self.pool.slots:
            self.core.handle(ev.WorkerJoined(slot.worker_id, HOSTNAME, 1, time.monotonic()))

    # -------------------------------------------------------------- public
    def run(self, job, inputs, output: str | None = None, *, overwrite: bool = False, progress=None) -> Result:
        """Run one job to the end; raise ``JobFailed`` / ``JobKilled`` if it does not succeed."""
        with self._lock:
            if self._closed:
                raise RuntimeError("this LocalCluster is closed")
            if output is None:
                output = tempfile.mkdtemp(prefix="mapred-out-")
                overwrite = True
            plan = JobPlan.make(job, inputs, output, self.config, self.work_dir, overwrite, slots=self.size)
            return self._drive(plan, progress)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.pool.close()
            if self._own_dir:
                shutil.rmtree(self.work_dir, ignore_errors=True)

    def pids(self) -> list[int]:
        return self.pool.pids()

    def __enter__(self) -> "LocalCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -------------------------------------------------------------- the loop
    def _drive(self, plan: JobPlan, progress) -> Result:
        started = time.monotonic()
        done = None
        queue: list = []
        try:
            queue += self.core.handle(plan.submitted_event())
            while done is None:
                while queue and done is None:
                    done = self._apply(plan, queue.pop(0), queue)
                if done is not None:
                    break
                for pe in self.pool.poll(0.5):
                    for event in self._events_of(pe):
                        queue += self.core.handle(event)
                for beat in self._heartbeats():
                    queue += self.core.handle(beat)
                queue += self.core.handle(ev.Tick(time.monotonic()))
                if progress is not None:
                    progress(self.core.progress(plan.job_id), self._counters_so_far(plan.job_id))
        except BaseException:
            if done is None:
                for action in self.core.handle(ev.JobKillRequested(plan.job_id, "the client stopped")):
                    self._apply(plan, action, [])
            raise
        finally:
            self.pool.drop_job(plan.job_id)
        if progress is not None:
            progress(self.core.progress(plan.job_id), done.counters)
        if done.state != JobState.SUCCEEDED:
            raise job_error(plan.job_id, done)
        return Result(plan.output, done.counters, plan.job_id, time.monotonic() - started)

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

    def _apply(self, plan: JobPlan, action, queue: list):
        """Carry out one core action (appending follow-up actions); returns a ``JobFinished``."""
        if isinstance(action, ev.AssignAttempt):
            slot = self._slot_of(action.worker_id)
            if slot is None:  # the executor was replaced; the core re-runs the attempt elsewhere
                log.info("assignment to replaced executor %s dropped", action.worker_id)
            else:
                self.pool.start_attempt(slot, plan.job_id, plan.blob, plan.attempt_spec(action))
        elif isinstance(action, ev.KillAttempt):
            slot = self._slot_of(action.worker_id)
            if slot is not None and slot.attempt == str(action.attempt):
                old = slot.worker_id
                self.pool.kill_attempt(slot)
                for event in self._replacement(old, slot.worker_id):
                    queue += self.core.handle(event)
        elif isinstance(action, ev.CommitAttempt):
            try:
                plan.apply_commit(action)
            except Exception as exc:  # noqa: BLE001 - the output file system refused: the job fails
                why = f"committing {action.attempt} failed: {type(exc).__name__}: {exc}"
                log.error(why)
                queue[:] = [a for a in queue if not (isinstance(a, ev.JobFinished) and a.job_id == plan.job_id)]
                queue += self.core.handle(ev.CommitFailed(action.attempt, why))
        elif isinstance(action, ev.DiscardAttempt):
            plan.apply_discard(action)
        elif isinstance(action, ev.JobFinished) and action.job_id == plan.job_id:
            plan.finish(action)
            return action
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
            return [ev.AttemptSucceeded(attempt, slot.worker_id, pe.report["output"], pe.report["counters"],
                                        tuple(pe.report.get("cached", ())), now)]
        if pe.kind == "died":
            # the pool already restarted the process, under a new worker id
            old = f"exec-{slot.index}.{slot.incarnation - 1}"
            return [ev.AttemptFailed(attempt, old, pe.report, False, now), *self._replacement(old, slot.worker_id)]
        report = pe.report
        if report.get("fetch_failed_map") is not None:
            return [ev.FetchFailed(attempt, int(report["fetch_failed_map"]), report.get("message", "")),
                    ev.AttemptFailed(attempt, slot.worker_id, report, False, now)]
        return [ev.AttemptFailed(attempt, slot.worker_id, report, bool(report.get("fatal")), now)]


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
    global _default
    with _default_lock:
        if _default is not None:
            _default.close()
            _default = None
