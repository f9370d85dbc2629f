"""Events into the master's scheduling core (``scheduler.MasterState``).

Events are facts the loop observed (``<Noun><PastParticiple>``); the core's
answers, the actions, are in ``actions.py``.  Both are plain frozen
dataclasses so a test can build them, feed them and compare whole action
lists.  Time enters only as the ``now`` field of events — the core never
reads a clock.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mapred.types import AttemptId


@dataclass(frozen=True)
class JobSubmitted:
    """A job of ``num_maps`` maps and ``num_reduces`` reduces (0: map-only) was accepted."""

    job_id: str
    num_maps: int
    num_reduces: int                 # 0: a map-only job
    split_hosts: tuple = ()          # per map: hosts holding its data
    split_cache_keys: tuple = ()     # per map: the cache key of its split ("" when not cached)
    max_attempts: int = 4
    now: float = 0.0
    attempt_base: int = 0            # first attempt number of every task (a recovered master's epoch)


@dataclass(frozen=True)
class TaskRecovered:
    """A restarted master's journal says this task's attempt won before the restart.

    A final task's (reduce, or map-only map) output was renamed into place:
    it is SUCCEEDED.  An intermediate map's output lives on ``worker_id``
    and is reused if that worker comes back; if it does not within the dead
    timeout, or a reduce cannot fetch it, the map runs again.
    """

    attempt: AttemptId
    worker_id: str
    output: Any = None
    counters: dict = field(default_factory=dict)
    now: float = 0.0


@dataclass(frozen=True)
class WorkerJoined:
    """A worker registered (again: a re-registration ends its earlier life)."""

    worker_id: str
    host: str
    slots: int
    now: float = 0.0


@dataclass(frozen=True)
class WorkerHeartbeat:
    """A worker is alive; ``running`` (when not ``None``) lists every attempt it runs.

    With ``running`` given, the core reconciles: it kills attempts the worker
    runs unasked and fails attempts it should run but does not list (after a
    grace for assignments still in flight).  The local runner passes ``None``:
    its executors cannot lose an assignment.
    """

    worker_id: str
    now: float
    progress: tuple = ()             # ((attempt, fraction[, live counters]), ...)
    running: tuple | None = None     # AttemptIds the worker runs, or None: not reported


@dataclass(frozen=True)
class WorkerLost:
    """A worker died or restarted; ``outputs_lost`` False when its map outputs stay readable."""

    worker_id: str
    reason: str = "lost"
    outputs_lost: bool = True        # False: its map outputs are still readable (local runner)


@dataclass(frozen=True)
class Tick:
    """Time passed: silent workers, stragglers, locality waits and history age are checked."""

    now: float


@dataclass(frozen=True)
class AttemptSucceeded:
    """An attempt finished its work; its output is still temporary until committed."""

    attempt: AttemptId
    worker_id: str
    output: Any = None               # map: where its output lives; reduce: its files
    counters: dict = field(default_factory=dict)
    cached: tuple = ()               # cache keys this worker now holds
    now: float = 0.0


@dataclass(frozen=True)
class AttemptFailed:
    """An attempt failed; ``fatal`` when retrying cannot help (bad input): the job fails now."""

    attempt: AttemptId
    worker_id: str
    error: dict = field(default_factory=dict)
    fatal: bool = False              # True: retrying cannot help (bad input), fail the job now
    now: float = 0.0


@dataclass(frozen=True)
class AttemptRefused:
    """A worker would not start an attempt (no free slot, the job's code missing): nothing ran.

    Not a failure of the task: it is retried without counting against
    ``max_attempts`` or blacklisting the worker, which gets no new work until
    its next heartbeat says what it really runs.
    """

    attempt: AttemptId
    worker_id: str
    reason: str = ""
    now: float = 0.0


@dataclass(frozen=True)
class FetchFailed:
    """A reduce attempt could not fetch a map's output: the map must run again."""

    attempt: AttemptId
    map_index: int
    reason: str = ""


@dataclass(frozen=True)
class CommitDone:
    """A ``CommitAttempt`` (``attempt`` set) or a ``CommitJob`` (``job_id`` set) was carried out."""

    attempt: AttemptId | None = None
    job_id: str = ""

    @property
    def job(self) -> str:
        """The job this answer is about."""
        return self.attempt.task.job if self.attempt is not None else self.job_id


@dataclass(frozen=True)
class CommitFailed:
    """Carrying out a ``CommitAttempt`` or ``CommitJob`` failed (the output file system refused).

    The output can no longer be complete: the task (for an attempt's commit)
    and the job end FAILED.
    """

    attempt: AttemptId | None = None
    reason: str = ""
    job_id: str = ""

    @property
    def job(self) -> str:
        """The job this answer is about."""
        return self.attempt.task.job if self.attempt is not None else self.job_id


@dataclass(frozen=True)
class WorkerDrainRequested:
    """Take no new tasks on ``worker_id``; retire it once nothing it runs or holds is needed.

    ``timeout`` > 0: retire it then anyway (its running attempts and needed map
    outputs are made again elsewhere)."""

    worker_id: str
    timeout: float = 0.0
    now: float = 0.0


@dataclass(frozen=True)
class JobKillRequested:
    """A client asked to stop the job."""

    job_id: str
    reason: str = "killed by request"


EVENTS = (JobSubmitted, TaskRecovered, WorkerJoined, WorkerHeartbeat, WorkerLost, Tick, AttemptSucceeded,
          AttemptFailed, AttemptRefused, FetchFailed, CommitDone, CommitFailed, JobKillRequested, WorkerDrainRequested)
