"""What every runner does around the scheduling core for one job: plan, spec, commit, finish.

``JobPlan`` turns a ``Job`` and its inputs into splits, a pickled code blob
and the ``JobSubmitted`` event; ``attempt_spec`` turns an ``AssignAttempt``
into the dict an executor runs; ``apply_commit`` / ``apply_discard`` carry out
the core's commit decisions on the output file system.  The local runner and
the distributed master share all of it.
"""
from __future__ import annotations

import itertools
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field

from mapred.io import commit
from mapred.core import actions as act
from mapred.core import events as ev
from mapred.config import Config
from mapred.errors import ConfigError, JobFailed, JobKilled, MapredError
from mapred.io.datasets import finish_parts
from mapred.io.fs import get_fs
from mapred.io.inputs import plan_splits
from mapred.net import wire
from mapred.task.spec import MapSpec, ReduceSpec
from mapred.types import AttemptId, JobState, TaskKind, cache_key

_job_numbers = itertools.count(1)


def new_job_id() -> str:
    """A job id unique in this process and unlikely to repeat across processes."""
    return f"job{next(_job_numbers)}{uuid.uuid4().hex[:6]}"


def pickle_job(job) -> bytes:
    """The job's code as bytes for executors; ``ConfigError`` naming what cannot be pickled."""
    import cloudpickle
    try:
        return cloudpickle.dumps(job)
    except Exception as exc:  # noqa: BLE001 - anything unpicklable in user code
        raise ConfigError(f"job {job.name!r} cannot be shipped to executors: {type(exc).__name__}: {exc}") from None


@wire.record("job_settings")
@dataclass(frozen=True)
class JobSettings:
    """The plain facts about a job that schedulers need — no user code, so a master can hold them.

    It travels in ``mc.submit`` as a wire record, validated field by field.
    """

    name: str
    num_reducers: int
    map_only: bool
    output_format: str
    errors: str = "strict"
    input_mode: str = "lines"
    max_attempts: int = 0
    sort_buffer_bytes: int = 0
    split_size: int = 0

    @classmethod
    def of(cls, job) -> "JobSettings":
        """The settings of a ``Job`` (its code stays behind)."""
        return cls(job.name, job.num_reducers, job.map_only, job.output_format, job.errors, job.input_mode,
                   job.max_attempts or 0, job.sort_buffer_bytes or 0, job.split_size or 0)

    def __post_init__(self) -> None:
        if self.num_reducers < 0 or self.max_attempts < 0 or self.sort_buffer_bytes < 0 or self.split_size < 0:
            raise ValueError(f"job {self.name!r}: negative reducers, attempts or sizes")


@dataclass
class JobPlan:
    """Everything needed to run one job, decided before the first task starts."""

    job: JobSettings
    job_id: str
    splits: list
    output: str
    blob: bytes
    config: Config
    work_dir: str
    started: float = field(default_factory=time.time)
    part_index: dict = field(default_factory=dict)   # part name -> key index of committed parts

    @classmethod
    def make(cls, job, inputs, output: str, config: Config, work_root: str, overwrite: bool,
             slots: int = 1) -> "JobPlan":
        """Plan a job: splits (balanced over ``slots`` for local files), partitioner sampling, code, output dir."""
        split_size = job.split_size or config.split_size
        fmt, options = getattr(job, "input_format", None), getattr(job, "input_options", None)
        bad = getattr(job, "bad_records", "fail")    # under "skip" an unreadable file is quarantined, not fatal
        splits = plan_splits(inputs, split_size, fmt, options, bad)
        if not job.split_size:
            splits = _balanced(inputs, splits, split_size, slots, fmt, options, bad)
        if hasattr(job.partitioner, "prepare"):
            job.partitioner.prepare(splits, job.num_reducers)   # e.g. sample range boundaries
        blob = pickle_job(job)
        commit.prepare_output(output, overwrite)
        job_id = new_job_id()
        return cls(JobSettings.of(job), job_id, splits, output, blob, config, os.path.join(work_root, job_id))

    def submitted_event(self) -> ev.JobSubmitted:
        """The core event that submits this job: task counts, split hosts and cache keys, attempts."""
        return ev.JobSubmitted(self.job_id, len(self.splits), self.job.num_reducers,
                               tuple(tuple(s.hosts) for s in self.splits),
                               tuple(cache_key(s) for s in self.splits),
                               self.job.max_attempts or self.config.max_attempts, time.monotonic())

    def attempt_spec(self, a: act.AssignAttempt, shuffle_addr: str = "",
                     work_root: str | None = None) -> MapSpec | ReduceSpec:
        """The spec an executor runs for this assignment (a worker may still fill in its own paths)."""
        aid = a.attempt
        common = dict(job_id=self.job_id, task=str(aid.task), attempt=str(aid), task_index=aid.task.index,
                      output=self.output, output_format=self.job.output_format,
                      work_dir=os.path.join(work_root or self.work_dir, str(aid)))
        if aid.task.kind == TaskKind.MAP:
            return MapSpec(**common, split=self.splits[aid.task.index], num_partitions=self.job.num_reducers,
                           sort_buffer_bytes=self.job.sort_buffer_bytes or self.config.sort_buffer_bytes,
                           compression=self.config.spill_compression, batch_lines=self.config.batch_lines,
                           errors=self.job.errors, input_mode=self.job.input_mode, shuffle_addr=shuffle_addr)
        return ReduceSpec(**common, partition=aid.task.index, sources=tuple(tuple(s) for s in a.map_outputs))

    def apply_commit(self, c: act.CommitAttempt) -> None:
        """Rename a reduce's (or a map-only map's) part files into the output, and any task's bad records.

        A map whose output feeds reduces has no part to rename (its output stays
        on its worker until the job ends), but its bad records are committed.
        """
        if c.output.get("bad"):
            from mapred.formats.base import commit_bad
            commit_bad(self.output, str(c.attempt), list(c.output["bad"]))
        if c.attempt.task.kind == TaskKind.REDUCE or self.job.map_only:
            commit.commit_task(self.output, str(c.attempt), list(c.output["files"]))
            self.part_index.update(c.output.get("index") or {})   # goes into _SUCCESS (io.keyindex)

    def apply_discard(self, d: act.DiscardAttempt) -> None:
        """Remove a losing or failed attempt's temporary output (and a map's local output)."""
        commit.discard_task(self.output, str(d.attempt))
        if d.attempt.task.kind == TaskKind.MAP:
            shutil.rmtree(os.path.join(self.work_dir, str(d.attempt)), ignore_errors=True)

    def commit_job(self, c: act.CommitJob) -> None:
        """Every part is in place: index a dataset's parts and write ``_SUCCESS`` with the counters."""
        if self.job.output_format == "dataset":
            fs = get_fs(self.output)
            finish_parts(self.output, [n for n in fs.listdir(self.output) if n.startswith("part-")])
        commit.commit_job(self.output, {"job_id": self.job_id, "job": self.job.name, "counters": c.counters,
                                        "index": self.part_index})   # the parts' key indexes (io.keyindex)

    def finish(self, done: act.JobFinished) -> None:
        """Drop map outputs; remove the output of a job that did not succeed."""
        shutil.rmtree(self.work_dir, ignore_errors=True)
        if done.state != JobState.SUCCEEDED:
            commit.abort_job(self.output)


MIN_SPLIT = 1 << 20
MAX_LOCAL_SPLIT = 256 << 20
SPLITS_PER_SLOT = 2     # enough to balance equal executors; few partial outputs to shuffle


BALANCED_FORMATS = ("text", "records", "csv", "jsonl", "seq", "avro")   # byte-range splits


def _balanced(inputs, splits: list, split_size: int, slots: int, fmt=None, options=None,
              bad_records: str = "fail") -> list:
    """Splits of local files sized so each slot gets ``SPLITS_PER_SLOT``: no idle tail, few partial outputs.

    Block-store inputs keep their block-sized splits (those carry locality),
    and so does a job that sets ``split_size`` itself.
    """
    files = [s for s in splits if s.fmt in BALANCED_FORMATS]
    if not files or any(s.path.startswith("mrfs://") for s in files) or len(files) != len(splits):
        return splits
    total = sum(s.end - s.start for s in files)
    want = min(MAX_LOCAL_SPLIT, max(MIN_SPLIT, -(-total // (SPLITS_PER_SLOT * max(1, slots)))))
    return plan_splits(inputs, want, fmt, options, bad_records) if want != split_size else splits


def job_error(plan_id: str, done: act.JobFinished) -> MapredError:
    """The exception a client raises for a job that did not succeed."""
    if done.state == JobState.KILLED:
        return JobKilled(f"job {plan_id} was killed: {done.error.get('message', '')}")
    return JobFailed(describe_failure(plan_id, done.error), job_id=plan_id, cause=done.error)


def describe_failure(job_id: str, e: dict) -> str:
    """A failed job's message: where (task, split, offset, key), what, and the traceback for user errors."""
    where = [f"task {e.get('task', '?')}"]
    if e.get("split"):
        where.append(f"split {e['split']}")
    if e.get("offset") is not None:
        where.append(f"record offset {e['offset']}")
    if e.get("key") is not None:
        where.append(f"key {e['key']}")
    head = (f"job {job_id} failed after {e.get('reason', 'an error')}: {', '.join(where)}: "
            f"{e.get('type', 'Error')}: {e.get('message', '')}")
    tb = e.get("traceback") or ""
    return head + ("\n" + tb.rstrip() if tb.strip() and e.get("type") not in ("InputError", "RecordError") else "")


def attempt_from_str(text: str) -> AttemptId:
    """The ``AttemptId`` a string names."""
    return AttemptId.parse(text)
