"""Events into, and actions out of, the master's scheduling core (``scheduler.MasterState``).

Events are facts the loop observed (``<Noun><PastParticiple>``); actions are
what the core decides (imperatives).  Both are plain frozen dataclasses so a
test can build them, feed them and compare whole action lists.  Time enters
only as the ``now`` field of events — the core never reads a clock.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mapred.types import AttemptId, JobState


# ---- events -----------------------------------------------------------------
@dataclass(frozen=True)
class JobSubmitted:
    job_id: str
    num_maps: int
    num_reduces: int                 # 0: a map-only job
    split_hosts: tuple = ()          # per map: hosts holding its data
    split_cache_keys: tuple = ()     # per map: the cache key of its split ("" when not cached)
    max_attempts: int = 4
    now: float = 0.0


@dataclass(frozen=True)
class WorkerJoined:
    worker_id: str
    host: str
    slots: int
    now: float = 0.0


@dataclass(frozen=True)
class WorkerHeartbeat:
    worker_id: str
    now: float
    progress: tuple = ()             # ((attempt, fraction[, live counters]), ...)


@dataclass(frozen=True)
class WorkerLost:
    worker_id: str
    reason: str = "lost"
    outputs_lost: bool = True        # False: its map outputs are still readable (local runner)


@dataclass(frozen=True)
class Tick:
    now: float


@dataclass(frozen=True)
class AttemptSucceeded:
    attempt: AttemptId
    worker_id: str
    output: Any = None               # map: where its output lives; reduce: its files
    counters: dict = field(default_factory=dict)
    cached: tuple = ()               # cache keys this worker now holds
    now: float = 0.0


@dataclass(frozen=True)
class AttemptFailed:
    attempt: AttemptId
    worker_id: str
    error: dict = field(default_factory=dict)
    fatal: bool = False              # True: retrying cannot help (bad input), fail the job now
    now: float = 0.0


@dataclass(frozen=True)
class FetchFailed:
    """A reduce attempt could not fetch a map's output: the map must run again."""

    attempt: AttemptId
    map_index: int
    reason: str = ""


@dataclass(frozen=True)
class CommitFailed:
    """Carrying out a ``CommitAttempt`` failed (the output file system refused): the job fails."""

    attempt: AttemptId
    reason: str = ""


@dataclass(frozen=True)
class JobKillRequested:
    job_id: str
    reason: str = "killed by request"


# ---- actions ----------------------------------------------------------------
@dataclass(frozen=True)
class AssignAttempt:
    worker_id: str
    attempt: AttemptId
    locality: str = "any"            # "cache", "node" or "any" for maps
    map_outputs: tuple = ()          # reduces: ((map_index, worker_id, output), ...)
    speculative: bool = False


@dataclass(frozen=True)
class KillAttempt:
    worker_id: str
    attempt: AttemptId
    reason: str


@dataclass(frozen=True)
class CommitAttempt:
    """Make this attempt's temporary output the task's output (rename); the first success only."""

    attempt: AttemptId
    worker_id: str
    output: Any = None


@dataclass(frozen=True)
class DiscardAttempt:
    """Remove a losing or failed attempt's temporary output."""

    attempt: AttemptId
    worker_id: str


@dataclass(frozen=True)
class JobFinished:
    job_id: str
    state: JobState
    error: dict = field(default_factory=dict)
    counters: dict = field(default_factory=dict)
