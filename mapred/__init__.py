"""mapred: a MapReduce engine in Python.

The public API: declare a ``Job`` (or an ``MRJob`` subclass), run it on an
embedded ``LocalCluster`` or a real cluster, read its ``Result``.  Inside
tasks, ``context()``, ``counter()`` and broadcasts are available.
"""
from mapred import errors
from mapred.io.arrays import ArrayPairs
from mapred.taskcontext import Broadcast, broadcast, context, counter
from mapred.io.datasets import ArrayDataset, from_numpy, load_dataset
from mapred.errors import JobFailed, JobKilled, MapredError
from mapred.io.inputs import RecordInput, records
from mapred.job import Job, MRJob, Pipeline
from mapred.runtime.local import LocalCluster
from mapred.io.outputs import Result
from mapred.shuffle.partition import HashPartitioner, RangePartitioner, TotalOrderPartitioner
from mapred.version import __version__


def open(path: str, mode: str = "rb"):  # noqa: A001 - mirrors the builtin on purpose
    """A binary file on a local path or ``mrfs://`` URI: ``"rb"`` to read, ``"wb"`` to write (visible on close)."""
    from mapred.io.fs import get_fs
    fs = get_fs(str(path))
    if mode in ("r", "rb"):
        return fs.open_read(str(path))
    if mode in ("w", "wb"):
        return fs.open_write(str(path))
    raise errors.ConfigError(f"mapred.open mode must be 'rb' or 'wb', got {mode!r}")


def connect(address: str, **kwargs):
    """A handle on a running cluster's master (``tcp://host:port``), for ``job.run(..., cluster=c)``."""
    from mapred.runtime.client import connect as _connect
    return _connect(address, **kwargs)


def from_mrjob(job_class, args=()):
    """A ``Job`` or ``Pipeline`` running an unmodified ``mrjob.job.MRJob`` subclass (see docs/mrjob.md)."""
    from mapred.runners.mrjob_compat import from_mrjob as _from_mrjob
    return _from_mrjob(job_class, args)


__all__ = ["ArrayPairs", "TotalOrderPartitioner", "ArrayDataset", "Broadcast", "HashPartitioner", "Job", "JobFailed", "JobKilled", "LocalCluster",
           "MRJob", "MapredError", "Pipeline", "RangePartitioner", "RecordInput", "Result", "__version__",
           "broadcast", "connect", "context", "from_mrjob", "open", "counter", "errors", "from_numpy", "load_dataset", "records"]
