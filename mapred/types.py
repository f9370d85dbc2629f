"""Frozen ids and records shared by the scheduler, executors and the wire.

States are ``str`` enums so that msgpack carries them as plain strings and a
log line reads as English.  Ids render to short strings (``job-1-m-00003-a2``)
that double as directory names for attempt output.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class TaskKind(str, Enum):
    """A map (``m``) or a reduce (``r``); the letter appears in task ids."""

    MAP = "m"
    REDUCE = "r"


class TaskState(str, Enum):
    """PENDING → RUNNING → (COMMITTING →) SUCCEEDED, or FAILED / KILLED."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMMITTING = "COMMITTING"       # a winning attempt's final output awaits its commit
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    KILLED = "KILLED"


class AttemptState(str, Enum):
    """RUNNING → SUCCEEDED, FAILED, KILLED (a sibling won, the job ended) or LOST (its worker died)."""

    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    LOST = "LOST"


class JobState(str, Enum):
    """SUBMITTED → MAPPING → REDUCING → COMMITTING → SUCCEEDED, or FAILED / KILLED."""

    SUBMITTED = "SUBMITTED"
    MAPPING = "MAPPING"
    REDUCING = "REDUCING"
    COMMITTING = "COMMITTING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def finished(self) -> bool:
        """Whether the state is final."""
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.KILLED)


@dataclass(frozen=True, order=True)
class TaskId:
    """One task of a job: the ``index``-th map or reduce."""

    job: str
    kind: TaskKind
    index: int

    def __str__(self) -> str:
        return f"{self.job}-{self.kind.value}-{self.index:05d}"

    @classmethod
    def parse(cls, text: str) -> "TaskId":
        """The id a ``str(task_id)`` names; ``ValueError`` if the text is not one."""
        job, kind, index = text.rsplit("-", 2)
        return cls(job, TaskKind(kind), int(index))


@dataclass(frozen=True, order=True)
class AttemptId:
    """The ``n``-th run of a task; ``n`` only grows, so a stale report is recognisable."""

    task: TaskId
    n: int

    def __str__(self) -> str:
        return f"{self.task}-a{self.n}"

    @classmethod
    def parse(cls, text: str) -> "AttemptId":
        """The id a ``str(attempt_id)`` names; ``ValueError`` if the text is not one."""
        task, n = text.rsplit("-a", 1)
        return cls(TaskId.parse(task), int(n))


@dataclass(frozen=True)
class Split:
    """A slice of job input that one map task reads.

    ``fmt`` is ``text`` (byte range of a file, Hadoop line rule), ``records``
    (a msgpack record file, split on frame boundaries recorded at planning) or
    ``array`` (rows ``start:end`` of a row-aligned numpy dataset).  ``hosts``
    are the hosts holding the data, for locality.  ``dataset`` names a cached
    dataset (empty when not cached).
    """

    index: int
    fmt: str
    path: str
    start: int
    end: int
    hosts: tuple = ()
    dataset: str = ""
    extra: tuple = field(default=(), compare=False)

    def describe(self) -> str:
        """The split as a short phrase for error messages: path and range."""
        unit = "rows" if self.fmt == "array" else "bytes"
        return f"{self.path} [{unit} {self.start}:{self.end}]"


def cache_key(split: Split) -> str:
    """The key a split's parsed block is cached under in an executor ("" when its input is not cached)."""
    return f"{split.dataset}:{split.start}:{split.end}" if split.dataset else ""
