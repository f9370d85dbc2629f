"""mapred: a MapReduce engine in Python.

The public API: declare a ``Job`` (or an ``MRJob`` subclass), run it on an
embedded ``LocalCluster`` or a real cluster, read its ``Result``.  Inside
tasks, ``context()``, ``counter()`` and broadcasts are available.

Everything here is imported lazily (PEP 562 ``__getattr__``): ``import
mapred`` costs almost nothing, and importing a submodule (``mapred.core``, an
executor's ``mapred.task.child``) loads only what that submodule needs.  This
package face stands above every layer; ``Job.run`` reaches the runtime
through it, so ``job.py`` itself never imports the runtime.
"""
from __future__ import annotations

import importlib

from mapred.version import __version__

# public name -> the module that defines it
_EXPORTS = {
    "ArrayPairs": "mapred.io.arrays",
    "Broadcast": "mapred.taskcontext", "broadcast": "mapred.taskcontext",
    "context": "mapred.taskcontext", "counter": "mapred.taskcontext",
    "ArrayDataset": "mapred.io.datasets", "from_numpy": "mapred.io.datasets", "load_dataset": "mapred.io.datasets",
    "JobFailed": "mapred.errors", "JobKilled": "mapred.errors", "MapredError": "mapred.errors",
    "FatalError": "mapred.errors",
    "RecordInput": "mapred.io.inputs", "records": "mapred.io.inputs",
    "Job": "mapred.job", "MRJob": "mapred.job", "Pipeline": "mapred.job",
    "LocalCluster": "mapred.runtime.local",
    "Result": "mapred.io.outputs",
    "HashPartitioner": "mapred.shuffle.partition", "RangePartitioner": "mapred.shuffle.partition",
    "TotalOrderPartitioner": "mapred.shuffle.partition",
}
_MODULES = {"errors": "mapred.errors", "combiners": "mapred.combiners",
            "wire": "mapred.net.wire"}  # wire: for side services (a parameter holder)


def __getattr__(name: str):
    """Import a public name's module on first use (and remember the name here)."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _MODULES:
        value = importlib.import_module(_MODULES[name])
    else:
        raise AttributeError(f"module 'mapred' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def run(job, inputs, output: str | None = None, **kwargs):
    """Run a ``Job`` or ``Pipeline`` on ``inputs``; the same as ``job.run(inputs, output, **kwargs)``."""
    from mapred.job import Pipeline
    from mapred.runtime.run import run_job, run_pipeline
    if isinstance(job, Pipeline):
        return run_pipeline(job, inputs, output, **kwargs)
    return run_job(job, inputs, output, **kwargs)


def open(path: str, mode: str = "rb"):  # noqa: A001 - mirrors the builtin on purpose
    """A binary file on a local path or ``mrfs://`` URI: ``"rb"`` to read, ``"wb"`` to write (visible on close)."""
    from mapred.errors import ConfigError
    from mapred.io.fs import get_fs
    fs = get_fs(str(path))
    if mode in ("r", "rb"):
        return fs.open_read(str(path))
    if mode in ("w", "wb"):
        return fs.open_write(str(path))
    raise ConfigError(f"mapred.open mode must be 'rb' or 'wb', got {mode!r}")


def filesystem(path: str):
    """The file system holding ``path`` (local or ``mrfs://``): ``exists``, ``listdir``, ``expand``, ``delete`` ..."""
    from mapred.io.fs import get_fs
    return get_fs(str(path))


def connect(address: str, **kwargs):
    """A handle on a running cluster's master (``tcp://host:port``), for ``job.run(..., cluster=c)``."""
    from mapred.runtime.client import connect as _connect
    return _connect(address, **kwargs)


def make_socket(context, kind: int):
    """A ZeroMQ socket of ``kind`` made like mapred's own: CURVE when a cluster secret is set, linger 0.

    For side services a job talks to, such as a parameter holder.
    """
    from mapred.net.transport import make_socket as _make
    return _make(context, kind)


def bind_socket(sock, host: str = "127.0.0.1", port: int = 0) -> int:
    """Bind ``sock`` (from ``make_socket``) on ``host``; refuses a public address without CURVE keys.

    Returns the port (a random free one when ``port`` is 0).
    """
    from mapred.net.transport import bind
    return bind(sock, host, port)


def from_mrjob(job_class, args=()):
    """A ``Job`` or ``Pipeline`` running an unmodified ``mrjob.job.MRJob`` subclass (see docs/mrjob.md)."""
    from mapred.runners.mrjob_compat import from_mrjob as _from_mrjob
    return _from_mrjob(job_class, args)


def convert(inputs, output: str, to: str, **kwargs):
    """Rewrite ``inputs`` (any format mapred reads) as ``to`` under ``output`` with a map-only job.

    See ``mapred.runtime.convert.convert`` for the options (schema, compression, input_format, ...).
    """
    from mapred.runtime.convert import convert as _convert
    return _convert(inputs, output, to, **kwargs)


def split(inputs, output: str, parts: int | None = None, **kwargs) -> dict:
    """Split a data set into parts by a seeded hash of each record's location; returns the index."""
    from mapred.runtime.convert import split as _split
    return _split(inputs, output, parts, **kwargs)


__all__ = ["ArrayDataset", "ArrayPairs", "Broadcast", "FatalError", "HashPartitioner", "Job", "JobFailed",
           "JobKilled", "LocalCluster", "MRJob", "MapredError", "Pipeline", "RangePartitioner", "RecordInput",
           "Result", "TotalOrderPartitioner", "__version__", "bind_socket", "broadcast", "connect", "context", "convert",
           "counter", "errors", "filesystem", "from_mrjob", "from_numpy", "load_dataset", "make_socket", "open", "records",
           "run", "split", "wire"]
