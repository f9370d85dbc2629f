"""The sequential oracle: what a job's output must be, computed the plainest way.

It reads every input file whole (no splits), calls the mapper on each record,
sorts all pairs with ``sorted`` and groups them with ``itertools.groupby``,
and calls the reducer once per key — no partitioning, no spills, nothing from
``mapred/shuffle``.  A distributed run is correct when its output, taken as a
multiset of pairs, equals this one's.  (The combiner is skipped: its result
must not matter.)
"""
from __future__ import annotations

from itertools import groupby
from typing import Any, Iterator

from mapred.io.codec import order_key
from mapred.io.datasets import ArrayDataset
from mapred.io.fs import get_fs
from mapred.job import Job
from mapred.task.functions import TaskFunctions
from mapred.taskcontext import TaskContext, set_current
from mapred.types import Split


def _text_records(path: str) -> Iterator[tuple[int, str]]:
    with get_fs(path).open_read(path) as f:
        data = f.read()
    offset = 0
    for raw in data.split(b"\n"):
        if offset >= len(data):
            break
        line = raw.decode("utf-8")
        yield offset, line[:-1] if line.endswith("\r") else line
        offset += len(raw) + 1


def _pairs(gen) -> list:
    return [(k, v) for k, v in (gen or ())]


def map_outputs(job: Job, paths: list[str]) -> list[tuple[Any, Any]]:
    """Every pair the job's map side emits over ``paths`` (text files), in input order."""
    fns = TaskFunctions.of(job)
    out: list = []
    for path in paths:
        set_current(TaskContext("reference", "reference-m", "reference-m-a0", job.params,
                                split=Split(0, "text", path, 0, 0)))
        try:
            if fns.mapper_init:
                out += _pairs(fns.mapper_init())
            records = list(_text_records(path))
            if fns.map_stream:
                out += _pairs(fns.map_stream(iter(records)))
            elif fns.map_batch and job.input_mode != "lines":
                with get_fs(path).open_read(path) as f:
                    raw = f.read()
                out += _pairs(fns.map_batch(raw if job.input_mode == "bytes" else raw.decode("utf-8")))
            elif fns.map_batch:
                out += _pairs(fns.map_batch([line for _, line in records]))
            else:
                for offset, line in records:
                    out += _pairs(fns.mapper(offset, line))
            if fns.mapper_final:
                out += _pairs(fns.mapper_final())
        finally:
            set_current(None)
    return out


def reduce_all(job: Job, pairs: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Sort, group and reduce: the output pairs in key order."""
    fns = TaskFunctions.of(job)
    out: list = []
    set_current(TaskContext("reference", "reference-r", "reference-r-a0", job.params, partition=0))
    try:
        ordered = sorted(pairs, key=lambda kv: order_key(kv[0]))
        if fns.reducer_init:
            out += _pairs(fns.reducer_init())
        groups = ((key, (v for _, v in group)) for key, group in groupby(ordered, key=lambda kv: kv[0]))
        if fns.reduce_stream:
            out += _pairs(fns.reduce_stream(groups))
        else:
            for key, values in groups:
                out += _pairs(fns.reducer(key, values))
        if fns.reducer_final:
            out += _pairs(fns.reducer_final())
    finally:
        set_current(None)
    return out


def run_reference(job: Job, paths: list[str]) -> list[tuple[Any, Any]]:
    """The output a correct run of ``job`` over the text files ``paths`` produces."""
    pairs = map_outputs(job, paths)
    return pairs if job.map_only else reduce_all(job, pairs)


def as_text(pairs) -> list[tuple[str, Any]]:
    """Pairs as text output would read back (``str`` of each side), sorted, for comparison."""
    return sorted((str(k), None if v is None else str(v)) for k, v in pairs)


__all__ = ["run_reference", "map_outputs", "reduce_all", "as_text", "ArrayDataset"]
