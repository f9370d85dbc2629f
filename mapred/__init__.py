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


def connect(address: str, **kwargs):
    """A handle on a running cluster's master (``tcp://host:port``), for ``job.run(..., cluster=c)``."""
    from .client import connect as _connect
    return _connect(address, **kwargs)


__all__ = ["ArrayPairs", "TotalOrderPartitioner", "ArrayDataset", "Broadcast", "HashPartitioner", "Job", "JobFailed", "JobKilled", "LocalCluster",
           "MRJob", "MapredError", "Pipeline", "RangePartitioner", "RecordInput", "Result", "__version__",
           "broadcast", "connect", "context", "counter", "errors", "from_numpy", "load_dataset", "records"]
