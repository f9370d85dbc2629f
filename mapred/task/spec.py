"""What travels to an executor and back: the typed spec of one attempt and its failure report.

``MapSpec`` and ``ReduceSpec`` are built once by the planner
(``runtime.plan.JobPlan.attempt_spec``), completed by a worker with its own
paths (``dataclasses.replace``), and read by ``task.attempt`` as attributes —
one set of defaults, here, taken from ``Config`` where a setting exists.
``AttemptReport`` is what a failed attempt says (type, message, where in its
input), ``AttemptResult`` what a successful one hands back.  All are records
of the wire module: encoded and validated on decode like every message.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import ClassVar

from mapred.config import Config
from mapred.net import wire
from mapred.types import Split

_DEFAULTS = Config()


@wire.record("fetch_settings")
@dataclass(frozen=True)
class FetchSettings:
    """How a reduce on a cluster worker fetches map output over the network."""

    buffer_bytes: int = _DEFAULTS.reduce_buffer_bytes   # fetched bytes held in memory before merging on disk
    retries: int = 3
    timeout: float = 5.0
    short_circuit: bool = True        # read a map output file directly when it is on this host
    secret: str = ""
    job_id: str = ""                  # the job whose outputs are fetched, and its shuffle token
    token: str = ""


@wire.record("map_spec")
@dataclass(frozen=True)
class MapSpec:
    """One map attempt: its split, where its output goes and how it is partitioned and sorted."""

    kind: ClassVar[str] = "map"
    job_id: str
    task: str
    attempt: str
    task_index: int
    output: str
    split: Split
    num_partitions: int
    output_format: str = "text"
    work_dir: str = ""
    sort_buffer_bytes: int = _DEFAULTS.sort_buffer_bytes
    compression: str = _DEFAULTS.spill_compression
    batch_lines: int = _DEFAULTS.batch_lines
    errors: str = "strict"
    input_mode: str = "lines"
    shuffle_addr: str = ""            # the worker's shuffle server, named in the map's output
    job_token: str = ""               # the job's shuffle token: its maps' outputs are served only to it


@wire.record("reduce_spec")
@dataclass(frozen=True)
class ReduceSpec:
    """One reduce attempt: its partition and where every map's output is."""

    kind: ClassVar[str] = "reduce"
    job_id: str
    task: str
    attempt: str
    task_index: int
    output: str
    partition: int
    sources: tuple = ()               # ((map_index, worker_id, map output), ...) from the core
    output_format: str = "text"
    work_dir: str = ""
    shuffle: FetchSettings | None = None   # None: read map outputs from this host's disk (local runner)
    job_token: str = ""               # presented to every map's shuffle server


@wire.record("attempt_report")
@dataclass(frozen=True)
class AttemptReport:
    """Why an attempt failed and where: the error the master keeps and ``mapred job status`` shows."""

    type: str
    message: str
    task: str = ""
    attempt: str = ""
    split: str = ""                   # the split's description
    phase: str = ""                   # setup, map, mapper_final, fetch, reduce ...
    offset: int | str | None = None   # the record offset (or key) being processed
    traceback: str = ""
    fatal: bool = False               # retrying cannot help: the job fails at once
    partition: int | None = None      # reduces
    key: str | None = None            # reduces: the key being reduced (its repr)
    fetch_failed_map: int | None = None   # a reduce could not fetch this map's output

    def as_error(self) -> dict:
        """The report as the plain dict the core keeps (absent reduce-only fields left out)."""
        out = asdict(self)
        for name in ("partition", "key", "fetch_failed_map"):
            if out[name] is None:
                del out[name]
        return out


# report types a worker sends when it would not start an attempt at all: refusals, not failures
SLOT_BUSY = "SlotBusy"
NO_JOB_CODE = "NoJobCode"
REFUSALS = frozenset({SLOT_BUSY, NO_JOB_CODE})


@wire.record("attempt_result")
@dataclass(frozen=True)
class AttemptResult:
    """A successful attempt's output (a map's location, or part files), counters and cached splits."""

    output: dict
    counters: dict = field(default_factory=dict)
    cached: tuple[str, ...] = ()


AttemptSpec = MapSpec | ReduceSpec
