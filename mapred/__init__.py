"""mapred: a MapReduce engine in Python.

The public API: declare a ``Job`` (or an ``MRJob`` subclass), run it on an
embedded ``LocalCluster`` or a real cluster, read its ``Result``.  Inside
tasks, ``context()``, ``counter()`` and broadcasts are available.
"""
from . import errors
from .arrays import ArrayPairs
from .taskcontext import Broadcast, broadcast, context, counter
from .datasets import ArrayDataset, from_numpy, load_dataset
from .errors import JobFailed, JobKilled, MapredError
from .inputs import RecordInput, records
from .job import Job, MRJob, Pipeline
from .local import LocalCluster
from .outputs import Result
from .shuffle.partition import HashPartitioner, RangePartitioner, TotalOrderPartitioner
from .version import __version__


def open(path: str, mode: str = "rb"):  # noqa: A001 - mirrors the builtin on purpose
    """A binary file on a local path or ``mrfs://`` URI: ``"rb"`` to read, ``"wb"`` to write (visible on close)."""
    from .fs import get_fs
    fs = get_fs(str(path))
    if mode in ("r", "rb"):
        return fs.open_read(str(path))
    if mode in ("w", "wb"):
        return fs.open_write(str(path))
    raise errors.ConfigError(f"mapred.open mode must be 'rb' or 'wb', got {mode!r}")


def connect(address: str, **kwargs):
    """A handle on a running cluster's master (``tcp://host:port``), for ``job.run(..., cluster=c)``."""
    from .client import connect as _connect
    return _connect(address, **kwargs)


__all__ = ["ArrayPairs", "TotalOrderPartitioner", "ArrayDataset", "Broadcast", "HashPartitioner", "Job", "JobFailed", "JobKilled", "LocalCluster",
           "MRJob", "MapredError", "Pipeline", "RangePartitioner", "RecordInput", "Result", "__version__",
           "broadcast", "connect", "context", "open", "counter", "errors", "from_numpy", "load_dataset", "records"]
