"""Reading a reduce partition's inputs: every map's segment for that partition.

A map output is ``{"path": run file, "addr": shuffle server}``.  When the run
file is on this host the segment is read straight from disk (short-circuit);
otherwise it is fetched from the map worker's shuffle server
(``mapred.shuffle.serve``) by the fetcher the process installs with
``set_remote_fetcher``.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Iterable

from mapred.errors import FetchError
from mapred.shuffle.spill import RunIndex, read_segment


_remote_fetcher: Callable | None = None
_short_circuit = True


def set_remote_fetcher(fn: Callable | None) -> None:
    """Install ``fn(sources, partition, work_dir) -> {map_index: iterable}`` for non-local outputs."""
    global _remote_fetcher
    _remote_fetcher = fn


def configure(settings) -> None:
    """Install the network fetcher an attempt's spec asks for (``ReduceSpec.shuffle``).

    ``settings`` (a ``task.spec.FetchSettings``): ``buffer_bytes`` (reduce
    buffer before spilling fetched data), ``retries``, ``timeout``, and
    ``short_circuit`` (False makes every read go through the map worker's
    shuffle server, as it would across hosts).  ``None`` leaves the process as
    it was (the local runner).
    """
    global _short_circuit
    if settings is None:
        return
    from mapred.shuffle.netfetch import NetFetcher  # ZeroMQ is imported only by executors that fetch remotely
    _short_circuit = settings.short_circuit
    set_remote_fetcher(NetFetcher(settings.buffer_bytes, settings.retries, settings.timeout,
                                  secret=settings.secret or None, job_id=settings.job_id, token=settings.token))


def _local_run(output: dict, partition: int, map_index: int) -> Iterable:
    path = output["path"]
    try:
        index = RunIndex.load(path)
        seg = index.segments[partition]
    except (OSError, KeyError, IndexError, ValueError) as exc:
        raise FetchError(f"map output {path} of map {map_index} is unreadable: {exc}", map_index) from None
    return read_segment(seg)


def open_partition_runs(sources: Iterable, partition: int, work_dir: str) -> list[Iterable]:
    """One sorted run per map for ``partition``: local reads where possible, remote fetches otherwise."""
    runs: dict[int, Any] = {}
    remote = []
    for map_index, worker_id, output in sources:
        if output is None:
            raise FetchError(f"map {map_index} has no output to fetch", map_index)
        if _short_circuit and os.path.exists(output["path"] + ".index"):
            runs[map_index] = _local_run(output, partition, map_index)
        else:
            remote.append((map_index, worker_id, output))
    if remote:
        if _remote_fetcher is None:
            m = remote[0][0]
            raise FetchError(f"map {m} output {remote[0][2].get('path')} is not on this host "
                             f"and no shuffle fetcher is configured", m)
        runs.update(_remote_fetcher(remote, partition, work_dir))
    return [runs[k] for k in sorted(runs)]
