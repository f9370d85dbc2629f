"""The one interpreter of the scheduling core's actions, shared by the local runner and the master.

A runner feeds events to ``Shell.step``; the shell hands them to the core
and carries out every action the core returns through the runner's
``Backend`` (start or kill an attempt, commit, discard, finish).  Commits are
answered here, in one place: a commit that worked becomes ``CommitDone``, a
refused one ``CommitFailed``, and the core's answer to that is carried out in
turn — so no runner ever has to undo a success the core announced too early.
Nothing here knows sockets or processes; the backends do.
"""
from __future__ import annotations

import logging
import traceback
from collections import deque
from typing import Protocol

from mapred.core import actions as act
from mapred.core import events as ev
from mapred.core.scheduler import MasterState

log = logging.getLogger(__name__)


def make_core(config, **overrides) -> MasterState:
    """A scheduling core with the scheduling, liveness and history settings of ``config``."""
    settings = dict(dead_timeout=config.dead_timeout, speculation=config.speculation,
                    speculation_slowdown=config.speculation_slowdown,
                    blacklist_failures=config.blacklist_failures,
                    assignment_grace=3 * config.heartbeat_interval + 1.0,
                    history_jobs=config.job_history, history_seconds=config.job_history_seconds)
    settings.update(overrides)
    return MasterState(**settings)


class Backend(Protocol):
    """What a runner does for each action; methods may return follow-up core events."""

    def assign(self, a: act.AssignAttempt) -> list | None:
        """Start the attempt on its worker."""

    def kill(self, a: act.KillAttempt) -> list | None:
        """Stop the attempt; e.g. the local runner reports its restarted executor as a new worker."""

    def commit_attempt(self, a: act.CommitAttempt) -> None:
        """Rename the attempt's output into place; raise if the output file system refuses."""

    def commit_job(self, a: act.CommitJob) -> None:
        """Mark the job's output complete; raise if the output file system refuses."""

    def discard(self, a: act.DiscardAttempt) -> None:
        """Remove the attempt's temporary output."""

    def finished(self, a: act.JobFinished) -> None:
        """Clean up after a job (on failure: remove its partial output)."""

    def retire(self, a: act.RetireWorker) -> None:
        """Tell a drained worker to leave (it exits DECOMMISSIONED)."""


class Shell:
    """Feeds events to a ``MasterState`` and carries out its actions through a ``Backend``."""

    def __init__(self, core: MasterState, backend: Backend) -> None:
        self.core = core
        self.backend = backend
        self._run = {act.AssignAttempt: backend.assign, act.KillAttempt: backend.kill,
                     act.CommitAttempt: self._commit_attempt, act.CommitJob: self._commit_job,
                     act.DiscardAttempt: backend.discard, act.JobFinished: backend.finished,
                     act.RetireWorker: backend.retire}
        missing = [cls.__name__ for cls in act.ACTIONS if cls not in self._run]
        if missing:
            raise TypeError(f"shell has no way to carry out {missing}")

    def step(self, *events) -> list[act.JobFinished]:
        """Feed ``events`` in order, carry out every resulting action (and theirs); return finished jobs."""
        queue: deque = deque()
        for event in events:
            queue.extend(self.core.handle(event))
        finished = []
        while queue:
            action = queue.popleft()
            for follow in self._carry_out(action):
                queue.extend(self.core.handle(follow))
            if isinstance(action, act.JobFinished):
                finished.append(action)
        return finished

    def _carry_out(self, action) -> list:
        """One action; returns the events it produced (never raises for an I/O failure)."""
        try:
            return list(self._run[type(action)](action) or ())
        except Exception:  # noqa: BLE001 - one failed action must not stop the loop; commits answer below
            log.error("error carrying out %r:\n%s", action, traceback.format_exc())
            return []

    def _commit_attempt(self, a: act.CommitAttempt) -> list:
        try:
            self.backend.commit_attempt(a)
        except Exception as exc:  # noqa: BLE001 - the output file system refused: the task and job fail
            why = f"committing {a.attempt} failed: {type(exc).__name__}: {exc}"
            log.error(why)
            return [ev.CommitFailed(a.attempt, why)]
        return [ev.CommitDone(a.attempt)]

    def _commit_job(self, a: act.CommitJob) -> list:
        try:
            self.backend.commit_job(a)
        except Exception as exc:  # noqa: BLE001 - as above, for the job's _SUCCESS marker
            why = f"committing job {a.job_id} failed: {type(exc).__name__}: {exc}"
            log.error(why)
            return [ev.CommitFailed(None, why, a.job_id)]
        return [ev.CommitDone(job_id=a.job_id)]
