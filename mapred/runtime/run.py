"""The one seam where parallelism enters: a job runs on the embedded local cluster or a real one.

Everything else — planning, specs, the executor, the shuffle, commit — is
shared, so a job behaves the same wherever it runs.
"""
from __future__ import annotations

import copy
import os

from mapred import config as configmod
from mapred.errors import ConfigError


def _target(workers, cluster, config):
    if cluster is not None:
        return cluster
    if config is not None:
        from mapred.runtime.local import LocalCluster
        return _Owned(LocalCluster(workers, config=config))
    from mapred.runtime.local import default_cluster
    return default_cluster(workers)


class _Owned:
    """A cluster made for one call, closed after it."""

    def __init__(self, cluster) -> None:
        self.cluster = cluster

    def run(self, *args, **kwargs):
        try:
            return self.cluster.run(*args, **kwargs)
        finally:
            self.cluster.close()


RUNNERS = ("local", "spark")


def run_job(job, inputs, output, *, overwrite=False, workers=None, cluster=None, progress=None, config=None,
            runner="local", spark_master=None):
    """Run one job on ``cluster``, a cluster made from ``config``, the process-wide embedded one, or Spark."""
    if runner not in RUNNERS:
        raise ConfigError(f"runner must be one of {RUNNERS}, got {runner!r}")
    if output is not None:
        output = os.path.abspath(os.fspath(output)) if not str(output).startswith("mrfs://") else str(output)
    if (cluster is not None or runner != "local") and getattr(job, "local_only", None):
        raise ConfigError(f"job {job.name!r} runs on the local runner only: {job.local_only}")
    if isinstance(config, dict):
        config = configmod.load(**config)
    if runner == "spark":
        return _run_on_spark(job, inputs, output, overwrite, cluster, spark_master, config)
    target = _target(workers, cluster, config)
    return target.run(job, inputs, output, overwrite=overwrite, progress=progress)


def _run_on_spark(job, inputs, output, overwrite, cluster, spark_master, config):
    if cluster is not None:
        raise ConfigError("give either cluster= (a mapred cluster) or runner='spark', not both")
    if output is None:
        import tempfile
        output, overwrite = tempfile.mkdtemp(prefix="mapred-out-"), True
    from mapred.runners.spark import run_on_spark
    return run_on_spark(job, inputs, output, overwrite=overwrite, spark_master=spark_master, config=config)


def run_pipeline(pipeline, inputs, output, *, overwrite=False, workers=None, cluster=None,
                 progress=None, config=None, runner="local", spark_master=None):
    """Run each step on the previous step's output; intermediate steps write msgpack records."""
    from mapred.io.fs import get_fs
    from mapred.runtime.local import LocalCluster
    if output is None:
        from mapred.io.outputs import temp_output
        output, overwrite = temp_output(), True
    fs = get_fs(output)
    if fs.exists(output) and not overwrite:
        from mapred.errors import OutputExistsError
        raise OutputExistsError(f"output path {output!r} already exists (pass --overwrite to replace it)")
    if isinstance(config, dict):
        config = configmod.load(**config)
    owned = None
    if cluster is None and config is not None:
        cluster = owned = LocalCluster(workers, config=config)
    steps = _flatten(pipeline.jobs)
    scratch = output.rstrip("/") + ".steps"
    try:
        current = inputs
        result = None
        for i, job in enumerate(steps):
            last = i == len(steps) - 1
            if not last and job.output_format != "msgpack":
                job = copy.copy(job)
                job.output_format = "msgpack"
            target = output if last else fs.join(scratch, f"step-{i}")
            result = run_job(job, current, target, overwrite=True if not last else overwrite,
                             workers=workers, cluster=cluster, progress=progress, runner=runner,
                             spark_master=spark_master)
            current = target
        return result
    finally:
        if fs.exists(scratch):
            fs.delete(scratch, recursive=True)
        if owned is not None:
            owned.close()


def _flatten(jobs) -> list:
    out = []
    for j in jobs:
        if hasattr(j, "jobs"):
            out.extend(_flatten(j.jobs))
        else:
            out.append(j)
    if not out:
        raise ConfigError("empty pipeline")
    return out
