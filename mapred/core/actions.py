"""Actions out of the master's scheduling core: what the core decided, for a shell to carry out.

Actions are imperatives (``AssignAttempt``, ``CommitAttempt``); the events the
core takes in are in ``events.py``.  A shell (``mapred.runtime.shell``) is the
one place that turns each action into I/O; the commit actions are answered by
a ``CommitDone`` or ``CommitFailed`` event, so the core knows that output is
in place before it calls a job SUCCEEDED.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mapred.types import AttemptId, JobState


@dataclass(frozen=True)
class AssignAttempt:
    """Start ``attempt`` on ``worker_id``."""

    worker_id: str
    attempt: AttemptId
    locality: str = "any"            # "cache", "node" or "any" for maps
    map_outputs: tuple = ()          # reduces: ((map_index, worker_id, output), ...)
    speculative: bool = False


@dataclass(frozen=True)
class KillAttempt:
    """Stop ``attempt`` on ``worker_id`` (a sibling won, the job ended, or nobody asked for it)."""

    worker_id: str
    attempt: AttemptId
    reason: str


@dataclass(frozen=True)
class CommitAttempt:
    """Make this attempt's temporary output the task's output (rename); the first success only.

    Answered by ``CommitDone(attempt)`` or ``CommitFailed(attempt, why)``.  For
    a map whose output feeds reduces there is nothing to rename (its output
    stays on its worker); the shell answers at once.
    """

    attempt: AttemptId
    worker_id: str
    output: Any = None


@dataclass(frozen=True)
class CommitJob:
    """Every task's output is in place: mark the job's output complete (``_SUCCESS``, dataset index).

    Answered by ``CommitDone(job_id=...)`` or ``CommitFailed(job_id=..., reason=...)``.
    """

    job_id: str
    counters: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DiscardAttempt:
    """Remove a losing or failed attempt's temporary output; ``reason`` is for the job's log."""

    attempt: AttemptId
    worker_id: str
    reason: str = ""


@dataclass(frozen=True)
class JobFinished:
    """The job reached a final state; nothing of it runs any more."""

    job_id: str
    state: JobState
    error: dict = field(default_factory=dict)
    counters: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RetireWorker:
    """A drained worker may leave now: tell it to exit DECOMMISSIONED."""

    worker_id: str
    reason: str


ACTIONS = (AssignAttempt, KillAttempt, CommitAttempt, CommitJob, DiscardAttempt, JobFinished,
           RetireWorker)


def job_of(action) -> str:
    """The id of the job an action belongs to."""
    if isinstance(action, (CommitJob, JobFinished)):
        return action.job_id
    return action.attempt.task.job
