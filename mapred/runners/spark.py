"""mapred jobs on Spark: the same ``Job``, ``MRJob`` or ``Pipeline``, with PySpark moving the bytes.

Spark schedules and shuffles; mapred keeps its semantics because mapred's
own task code runs inside every Spark task:

- the splits are mapred's (``JobPlan``): one Spark partition per split;
- a map task is ``run_attempt`` on a map spec, exactly as on a worker: the
  mapper with its hooks, the map buffer, mapred's partitioner, the combiner
  (so it is the map-side combine), sorted and spilled runs;
- each non-empty partition segment of the map output travels through
  Spark's shuffle as raw bytes, keyed by its reduce partition;
- a reduce task writes the segments it received as local run files and is
  ``run_attempt`` on a reduce spec: the same merge, grouping rule (each key
  once with all its values, keys sorted within a partition) and output writer;
- counters come back through a Spark accumulator; the driver commits the
  parts and writes ``_SUCCESS`` with mapred's own commit code.

PySpark is an optional extra (``pip install "mapred[spark]"``; the JVM is the
user's).  Output must live on a file system every Spark executor and the
driver share: a local path in local mode, ``mrfs://`` anywhere.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time

from mapred import config as configmod
from mapred.core import actions as act
from mapred.errors import ConfigError, JobFailed
from mapred.io.outputs import Result
from mapred.runtime.plan import JobPlan
from mapred.types import AttemptId, JobState, TaskId, TaskKind

SPARK_APP_NAME = "mapred"


def _pyspark():
    try:
        import pyspark
    except ImportError:
        raise ConfigError("runner='spark' needs PySpark: pip install 'mapred[spark]' (and a Java runtime)") from None
    return pyspark


def spark_context(master: str | None = None):
    """The active SparkContext, or a new one on ``master`` (default ``local[*]``)."""
    pyspark = _pyspark()
    active = pyspark.SparkContext._active_spark_context
    if active is not None:
        if master and active.master != master:
            raise ConfigError(f"a SparkContext on {active.master!r} is already running; cannot use {master!r}")
        return active
    conf = (pyspark.SparkConf().setAppName(SPARK_APP_NAME).setMaster(master or "local[*]")
            .set("spark.ui.showConsoleProgress", "false"))
    return pyspark.SparkContext.getOrCreate(conf)


def run_on_spark(job, inputs, output: str, *, overwrite: bool = False, spark_master: str | None = None,
                 config=None, sc=None) -> Result:
    """Run one mapred ``Job`` on Spark and commit its output in mapred's format (``_SUCCESS`` last)."""
    pyspark = _pyspark()
    sc = sc or spark_context(spark_master)
    cfg = config or configmod.load()
    started = time.time()
    plan = JobPlan.make(job, inputs, output, cfg, tempfile.gettempdir(), overwrite,
                        slots=sc.defaultParallelism)
    counters = sc.accumulator({}, _CountersParam())
    try:
        reports = _run_stages(sc, pyspark, job, plan, counters)
    except Exception as exc:  # noqa: BLE001 - Spark wraps the task's error; name it and clean up
        plan.finish(act.JobFinished(plan.job_id, JobState.FAILED))
        raise JobFailed(f"job {plan.job_id} ({job.name}) failed on Spark: {_task_error(exc)}",
                        job_id=plan.job_id, cause={"message": _task_error(exc)}) from None
    for attempt, report in reports:
        plan.apply_commit(act.CommitAttempt(attempt, "spark", report.output))
    totals = dict(counters.value)
    totals["job"] = {**totals.get("job", {}), "spark_maps": len(plan.splits),
                     "spark_reduces": 0 if job.map_only else len(reports)}
    plan.commit_job(act.CommitJob(plan.job_id, totals))
    plan.finish(act.JobFinished(plan.job_id, JobState.SUCCEEDED, {}, totals))
    return Result(output, totals, plan.job_id, time.time() - started)


def _run_stages(sc, pyspark, job, plan: JobPlan, counters) -> list:
    """The Spark stages: maps (and, with reducers, a shuffle of segments and the reduces).

    The closures carry the plan (whose ``blob`` is the job's code) and the
    driver's ``sys.path``, never the job object: a job from a script the
    executors cannot import must travel by value, as it does to mapred workers.
    """
    code = _JobCode(plan.job_id, plan.blob, [p for p in sys.path if p])
    maps = sc.parallelize(range(len(plan.splits)), max(1, len(plan.splits)))
    if job.map_only:
        return maps.map(lambda i: _map_only_task(code, plan, i, counters)).collect()
    reducers = plan.job.num_reducers
    segments = maps.flatMap(lambda i: _map_task(code, plan, i, counters))
    grouped = segments.partitionBy(reducers, lambda partition: partition)
    return grouped.mapPartitionsWithIndex(
        lambda p, items: [_reduce_task(code, plan, p, [v for _, v in items], counters)]).collect()


class _JobCode:
    """A job's pickled code and the paths it imports from, loaded once per Spark worker process."""

    _loaded: dict = {}

    def __init__(self, job_id: str, blob: bytes, paths: list) -> None:
        self.job_id, self.blob, self.paths = job_id, blob, paths

    def job(self):
        if self.job_id not in self._loaded:
            sys.path.extend(p for p in self.paths if p not in sys.path)
            from mapred.task.child import load_job_code
            self._loaded.clear()                 # one job's code at a time per process
            self._loaded[self.job_id] = load_job_code(self.blob)
        return self._loaded[self.job_id]


def _attempt(plan: JobPlan, kind: TaskKind, index: int) -> AttemptId:
    return AttemptId(TaskId(plan.job_id, kind, index), 0)


def _run(code: _JobCode, spec):
    """One mapred attempt inside a Spark task; a failure carries mapred's own report as its message."""
    from mapred.task.attempt import AttemptFailure, run_attempt
    try:
        return run_attempt(code.job(), spec)
    except AttemptFailure as failure:
        r = failure.report
        where = f"task {r.task}" + (f", split {r.split}" if r.split else "")
        raise RuntimeError(f"{where}: {r.type}: {r.message}\n{r.traceback}") from None


def _map_only_task(code: _JobCode, plan: JobPlan, index: int, counters):
    attempt = _attempt(plan, TaskKind.MAP, index)
    work = tempfile.mkdtemp(prefix="mapred-spark-map-")
    try:
        report = _run(code, plan.attempt_spec(act.AssignAttempt("spark", attempt), work_root=work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    counters.add(report.counters)
    return attempt, report


def _map_task(code: _JobCode, plan: JobPlan, index: int, counters):
    """Run map ``index``; yield ``(partition, segment)`` for every partition its output has data for."""
    from mapred.shuffle.spill import RunIndex, read_segment_bytes
    attempt = _attempt(plan, TaskKind.MAP, index)
    work = tempfile.mkdtemp(prefix="mapred-spark-map-")
    try:
        report = _run(code, plan.attempt_spec(act.AssignAttempt("spark", attempt), work_root=work))
        out = report.output
        run = RunIndex.load(out["path"])
        segments = [(p, (index, out["kind"], out["keytypes"], run.compression, read_segment_bytes(seg)))
                    for p, seg in enumerate(run.segments) if seg.length]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    counters.add(report.counters)
    return segments


def _reduce_task(code: _JobCode, plan: JobPlan, partition: int, segments: list, counters):
    """Write the partition's segments as local runs, then run mapred's reduce attempt over them."""
    from mapred.shuffle.spill import RunIndex, Segment
    attempt = _attempt(plan, TaskKind.REDUCE, partition)
    work = tempfile.mkdtemp(prefix="mapred-spark-reduce-")
    try:
        sources = []
        for map_index, kind, keytypes, compression, data in sorted(segments, key=lambda s: s[0]):
            path = os.path.join(work, f"map-{map_index:05d}.out")
            with open(path, "wb") as f:
                f.write(data)
            parts = [Segment(path, 0, len(data) if p == partition else 0, 0, compression)
                     for p in range(plan.job.num_reducers)]
            RunIndex(path, parts, compression).save()
            sources.append((map_index, "spark", {"path": path, "addr": "", "kind": kind, "keytypes": keytypes}))
        spec = plan.attempt_spec(act.AssignAttempt("spark", attempt, map_outputs=tuple(sources)),
                                 work_root=work)
        report = _run(code, spec)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    counters.add(report.counters)
    return attempt, report


def _task_error(exc: Exception) -> str:
    """The mapred part of a Spark failure (Spark wraps it in a Java stack trace)."""
    text = str(exc)
    marker = "RuntimeError: "
    if marker in text:
        text = text[text.rindex(marker) + len(marker):]
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _merge_counters(into: dict, more: dict) -> dict:
    for group, names in more.items():
        merged = into.setdefault(group, {})
        for name, n in names.items():
            merged[name] = merged.get(name, 0) + n
    return into


class _CountersParam:
    """A Spark accumulator of mapred counter dicts (``{group: {name: n}}``), summed."""

    def zero(self, value):
        return {}

    def addInPlace(self, a, b):  # noqa: N802 - Spark's name
        return _merge_counters(a, b)
