"""One attempt, run inside an executor process: read → map → partition/sort/spill, or fetch → merge → reduce.

Everything here is what a worker's executor does for a task, whoever
scheduled it (the local runner or the distributed master).  The attempt's
files go to temporary paths; the caller commits them on the master's word.
User exceptions are caught here and turned into a failure report that names
the task, the split, the record offset and the traceback.
"""
from __future__ import annotations

import functools
import gc
import os
import shutil
import time
import traceback
from collections import OrderedDict
from typing import Any

import numpy as np

from mapred import taskcontext as ctxmod
from mapred.combiners import fold_of
from mapred.io.arrays import ArrayPairs, concat_chunks, sort_pairs
from mapred.errors import ConfigError, FatalError, FetchError, InputError, RecordError
from mapred.formats import SPLIT_FORMATS, map_source
from mapred.formats.base import BadRecords
from mapred.io.inputs import SplitReader
from mapred.io.outputs import PartOutput
from mapred.shuffle.combine import as_pair
from mapred.shuffle.drive import drive, scaled_sample
from mapred.shuffle.fetch import configure as configure_fetch, open_partition_runs
from mapred.shuffle.merge import Tally, merge_for_reduce, native_order
from mapred.shuffle.partition import resolve
from mapred.shuffle.sort import MapOutputBuffer
from mapred.task.functions import TaskFunctions
from mapred.task.spec import AttemptReport, AttemptResult, MapSpec, ReduceSpec
from mapred.types import Split, cache_key

class SplitCache:
    """Parsed split blocks kept across jobs in this executor, least recently used evicted past a byte cap."""

    def __init__(self, cap_bytes: int) -> None:
        self.cap = cap_bytes
        self.blocks: "OrderedDict[str, Any]" = OrderedDict()
        self.sizes: dict[str, int] = {}

    def get(self, key: str):
        """The cached block for ``key`` (now the most recently used), or ``None``."""
        block = self.blocks.get(key)
        if block is not None:
            self.blocks.move_to_end(key)
        return block

    def put(self, key: str, block) -> None:
        """Cache a parsed block, evicting the least recently used past the byte cap."""
        arrays = block if isinstance(block, tuple) else (block,)
        size = sum(getattr(a, "nbytes", 0) for a in arrays)
        self.blocks[key] = block
        self.sizes[key] = size
        while sum(self.sizes.values()) > self.cap and len(self.blocks) > 1:
            old, _ = self.blocks.popitem(last=False)
            self.sizes.pop(old, None)

    def __contains__(self, key: str) -> bool:
        return key in self.blocks


SPLIT_CACHE = SplitCache(int(os.environ.get("MAPRED_EXECUTOR_CACHE_BYTES", 2 << 30)))


REDUCE_MEMORY_BUDGET = 128 << 20   # bytes of records a reducer sorts in memory before heap-merging
MAX_TRACEBACK = 32 * 1024          # a report's traceback keeps its last this many characters

# errors a retry cannot fix: bad input, a record the engine cannot carry, bad settings, and any
# error user code marks as fatal by deriving from ``mapred.errors.FatalError`` (models' errors do)
FATAL_ERRORS = (InputError, RecordError, ConfigError, FatalError)


class AttemptFailure(Exception):
    """Raised by ``run_attempt`` with the report the master needs."""

    def __init__(self, report: AttemptReport) -> None:
        super().__init__(report.message)
        self.report = report


_progress_sink = None
# Live progress: at most one report a second.  A report crosses the executor pipe and then rides the
# worker's next heartbeat (also about once a second), so sending more often would only queue up.
PROGRESS_INTERVAL = 1.0


def set_progress_sink(fn) -> None:
    """Install ``fn(attempt, fraction, counters)``, called at most once a second while an attempt runs."""
    global _progress_sink
    _progress_sink = fn


class _Position:
    """Where the attempt is in its input: for the error report and the live progress reports."""

    __slots__ = ("offset", "phase", "key", "attempt", "next_report")

    def __init__(self, attempt: str = "") -> None:
        self.offset: Any = None
        self.phase = "setup"
        self.key: Any = None
        self.attempt = attempt
        self.next_report = time.monotonic() + PROGRESS_INTERVAL

    def report(self, fraction: float, counters: dict) -> None:
        """Send the attempt's progress and counters so far to the sink, if one is due.

        Also the attempt's garbage collection while the automatic one is paused
        (``_collector_paused``): young objects only, once enough are pending.
        """
        if gc.get_count()[0] > YOUNG_GC_OBJECTS:
            gc.collect(1)
        if _progress_sink is None or time.monotonic() < self.next_report:
            return
        self.next_report = time.monotonic() + PROGRESS_INTERVAL
        _progress_sink(self.attempt, min(0.99, max(0.0, fraction)), counters)


def run_attempt(job, spec: MapSpec | ReduceSpec) -> AttemptResult:
    """Run one map or reduce attempt described by ``spec``; return its result.

    ``job`` is the user's ``Job`` (anything with ``params``, ``functions()``,
    ``map_only``, ``partitioner``, ``output_format``).  A failure of any kind
    raises ``AttemptFailure`` carrying the ``AttemptReport``.
    """
    pos = _Position(spec.attempt)
    fns: TaskFunctions | None = None
    paused = _collector_paused()
    try:
        ctx = ctxmod.TaskContext(spec.job_id, spec.task, spec.attempt, job.params)
        ctxmod.set_current(ctx)
        fns = TaskFunctions.of(job)
        if isinstance(spec, MapSpec):
            result = _run_map(job, spec, fns, ctx, pos)
        else:
            result = _run_reduce(job, spec, fns, ctx, pos)
        _teardown(fns)
        fns = None
        for group, names in ctx.counters.items():
            merged = result.counters.setdefault(group, {})
            for name, n in names.items():
                merged[name] = merged.get(name, 0) + n
        return result
    except BaseException as exc:  # noqa: BLE001 - everything becomes a report
        if fns is not None:
            try:
                _teardown(fns)
            except Exception:
                pass
        raise AttemptFailure(_failure_report(exc, spec, pos)) from None
    finally:
        ctxmod.set_current(None)
        if paused:
            gc.enable()


# The cyclic collector's full passes walk every live container, and a map's buffer holds one list
# per key: with the collector's defaults a per-record job spends a fifth of its time there while
# finding nothing (records are not cyclic).  An attempt pauses it and collects young objects itself
# (in _Position.report, every 1,024 records), so cyclic garbage a user function makes is still freed.
YOUNG_GC_OBJECTS = 200_000


def _collector_paused() -> bool:
    """Pause automatic garbage collection for an attempt; whether it was running (to restore it)."""
    if not gc.isenabled():
        return False
    gc.disable()
    return True


def _teardown(fns: TaskFunctions) -> None:
    if fns.teardown is not None:
        fns.teardown()


def _failure_report(exc: BaseException, spec: MapSpec | ReduceSpec, pos: _Position) -> AttemptReport:
    reduce = isinstance(spec, ReduceSpec)
    return AttemptReport(
        type(exc).__name__, str(exc)[:MAX_TRACEBACK], task=spec.task, attempt=spec.attempt,
        split="" if reduce else spec.split.describe(), phase=pos.phase, offset=_plain_offset(pos.offset),
        traceback=traceback.format_exc()[-MAX_TRACEBACK:], fatal=isinstance(exc, FATAL_ERRORS),
        partition=spec.partition if reduce else None,
        key=repr(pos.key)[:200] if reduce and pos.key is not None else None,
        fetch_failed_map=exc.map_index if isinstance(exc, FetchError) else None)


def _plain_offset(offset):
    """A record offset as the report carries it: an int (numpy ints too), else its short repr."""
    if offset is None or type(offset) is int:
        return offset
    if hasattr(offset, "__index__"):
        return int(offset)
    return repr(offset)[:200]


# ---------------------------------------------------------------------------- map
def _map_input(split: Split, reader: SplitReader, fns: TaskFunctions, batch_lines: int, counters: dict,
               input_mode: str = "lines"):
    """``(offset, batch_or_record_iterable)``: what the map loop iterates, for every input format."""
    if split.fmt in SPLIT_FORMATS:
        source, batched, reader.format_reader = map_source(split, reader, reader.bad, fns.map_batch is not None,
                                                           batch_lines, input_mode, reader.errors)
        return source, batched
    if split.fmt == "text":
        if fns.map_batch and input_mode == "bytes":
            return reader.text_byte_blocks(), True
        if fns.map_batch and input_mode == "text":
            return reader.text_string_blocks(), True
        if fns.map_batch:
            return reader.text_batches(batch_lines), True
        return reader.text_records(), False
    if split.fmt == "records":
        if fns.map_batch:
            return reader.record_batches(batch_lines), True
        return reader.record_records(), False
    key = cache_key(split)
    block = SPLIT_CACHE.get(key) if key else None
    if block is None:
        block = reader.array_block()
        if key:
            SPLIT_CACHE.put(key, block)
    else:
        counters["cache_hits"] = counters.get("cache_hits", 0) + 1
    if fns.map_batch:
        return iter([(split.start, block)]), True
    rows = zip(*block) if isinstance(block, tuple) else iter(block)
    return ((split.start + i, row) for i, row in enumerate(rows)), False


def _run_map(job, spec: MapSpec, fns: TaskFunctions, ctx, pos: _Position) -> AttemptResult:
    split = spec.split
    ctx.split = split
    counters: dict = {}
    reader = SplitReader(split, spec.errors)
    reader.bad = bad = BadRecords(getattr(job, "bad_records", "fail"), spec.output, spec.attempt,
                                  f"m-{spec.task_index:05d}")
    reader.format_reader = None
    times: dict = {}         # stage -> seconds: the profile (see stage_counters)
    started = time.perf_counter()
    if job.map_only:
        sink, collect = _open_map_only_sink(job, spec, bad)
        buffer = None
    else:
        os.makedirs(spec.work_dir, exist_ok=True)
        sink = buffer = MapOutputBuffer(spec.num_partitions, resolve(job.partitioner), fns.combiner,
                                        spec.sort_buffer_bytes, spec.work_dir, counters, spec.compression,
                                        times)
        collect = sink.collect
    pos.phase = "map"
    n_in, n_out = _map_loop(split, reader, fns, spec.batch_lines, counters, collect, pos,
                            spec.input_mode, getattr(sink, "collect_arrays", None),
                            getattr(sink, "collect_many", None), buffer, times)
    loop_done = time.perf_counter()
    in_loop = dict(times)        # stages timed inside the loop (a spill); finish adds its own after
    counters.update(input_records=n_in, output_records=n_out, input_bytes=reader.bytes_owned)
    if job.map_only:
        files, counters["output_bytes"] = sink()
        result: dict = {"files": files, "output": spec.output}
    else:
        index = sink.finish(os.path.join(spec.work_dir, "file.out"))
        counters["output_bytes"] = index.total_bytes
        result = {"path": index.path, "addr": spec.shuffle_addr, "kind": sink.kind,
                  "keytypes": sink.key_type_tags()}
    _note_formats(ctx, reader.format_reader, bad, result)
    done = time.perf_counter()
    counters["millis"] = int((done - started) * 1000)
    # the loop's time less what was measured inside it is the engine's per-record work: collect
    inside = reader.read_seconds + in_loop.get("map", 0.0) + sum(
        in_loop.get(k, 0.0) for k in ("combine", "sort", "spill", "merge"))
    times["read"] = reader.read_seconds
    # a sampled estimate of the mapper can overshoot on a short split: it never exceeds the loop
    outside_map = inside - in_loop.get("map", 0.0)
    if "map" in times:
        times["map"] = min(times["map"], max(0.0, (loop_done - started) - outside_map))
    times["collect"] = max(0.0, (loop_done - started) - outside_map - times.get("map", 0.0))
    if job.map_only:
        times["write"] = done - loop_done
    key = cache_key(split)
    return AttemptResult(result, {"map": counters, STAGE_GROUP: stage_counters(times, done - started)},
                         (key,) if key else ())


STAGE_GROUP = "time_ms"     # the counter group of the per-stage profile (milliseconds)


def stage_counters(times: dict, total: float) -> dict:
    """Seconds per stage as the ``time_ms`` counters: whole milliseconds, ``total`` beside them.

    ``map`` and ``reduce`` are the user's functions (per-record ones sampled,
    one call in 1,024 under the clock); ``collect`` is the map loop's own
    work (driving the mapper, buffering, combining in place); ``sort`` is
    partitioning and sorting a spill's keys, ``spill`` encoding and writing
    it, ``merge`` merging spills (map side) or grouping fetched runs (reduce
    side); ``write`` the reducer's output.
    """
    out = {name: int(round(seconds * 1000)) for name, seconds in times.items() if seconds > 0}
    out["total"] = int(round(total * 1000))
    return out


def _add_time(times: dict | None, stage: str, seconds: float) -> None:
    if times is not None:
        times[stage] = times.get(stage, 0.0) + seconds


def _plain_pairs(out) -> bool:
    """Whether a map_batch result is a mapping view of pairs (``Counter.items()``): no ArrayPairs inside."""
    return type(out).__name__ in ("dict_items", "odict_items") or type(out) is zip


def _map_loop(split, reader, fns: TaskFunctions, batch_lines: int, counters: dict, collect, pos,
              input_mode: str, collect_arrays, collect_many=None, buffer=None, times=None) -> tuple:
    n_in = n_out = 0
    source, batched = _map_input(split, reader, fns, batch_lines, counters, input_mode)
    if fns.mapper_init is not None:
        pos.phase = "mapper_init"
        _emit_all(fns.mapper_init(), collect, "mapper_init")
        pos.phase = "map"
    length = max(1, split.end - split.start)

    def live() -> dict:
        return {"map": {"input_records": n_in, "output_records": n_out, "input_bytes": reader.bytes_owned},
                **mapred_user_counters()}

    if fns.map_stream is not None:
        n_in, n_out = _map_stream(source, fns.map_stream, collect, pos)
    elif batched:
        clock, user = time.perf_counter, 0.0
        for offset, batch in source:
            pos.offset = offset
            n_in += _records_in(batch)
            t0 = clock()
            out = fns.map_batch(batch)
            user += clock() - t0
            if collect_many is not None and _plain_pairs(out):
                n_out += collect_many(out)
            else:
                n_out += _emit_all(out, collect, "map_batch", collect_arrays)
            pos.report(reader.bytes_owned / length, live())
        _add_time(times, "map", user)
    elif buffer is not None:
        def report(records: int, pairs: int) -> None:
            nonlocal n_in, n_out
            n_in, n_out = records, pairs
            pos.report(reader.bytes_owned / length, live())

        n_in, n_out, user = drive(buffer, source, fns.mapper, pos, report)
        _add_time(times, "map", user)
    else:
        mapper = fns.mapper
        for key, value in source:
            pos.offset = key
            n_in += 1
            if not n_in & 0x3FF:    # every 1,024 records: reading the clock per record would cost more
                pos.report(reader.bytes_owned / length, live())
            out = mapper(key, value)
            if out is None:
                continue
            for pair in out:
                if type(pair) is not tuple or len(pair) != 2:
                    pair = as_pair(pair, "mapper")
                collect(pair[0], pair[1])
                n_out += 1
    if fns.mapper_final is not None:
        pos.phase = "mapper_final"
        out = fns.mapper_final()
        if collect_many is not None and _plain_pairs(out):
            n_out += collect_many(out)
        else:
            n_out += _emit_all(out, collect, "mapper_final", collect_arrays)
    return n_in, n_out


def _map_stream(source, map_stream, collect, pos) -> tuple[int, int]:
    """Hand the whole split to ``map_stream`` as one iterator; count and place records as it pulls them."""
    n_in = 0

    def records():
        nonlocal n_in
        for key, value in source:
            pos.offset = key
            n_in += 1
            yield key, value

    n_out = _emit_all(map_stream(records()), collect, "map_stream")
    return n_in, n_out


def mapred_user_counters() -> dict:
    """The running task's user counters (a copy, safe to send)."""
    ctx = ctxmod._current
    return {g: dict(names) for g, names in ctx.counters.items()} if ctx is not None else {}


def _records_in(batch) -> int:
    """Lines in a text or bytes block; items in a list; rows in an array block."""
    if type(batch) is bytes or type(batch) is str:
        return batch.count(b"\n" if type(batch) is bytes else "\n")
    return len(batch)


def _emit_all(out, collect, who: str, collect_arrays=None) -> int:
    """Send every pair (or ``ArrayPairs`` batch) a user function yields to ``collect``."""
    if out is None:
        return 0
    n = 0
    for pair in out:
        if type(pair) is not tuple or len(pair) != 2:
            if isinstance(pair, ArrayPairs):
                if collect_arrays is None:
                    raise RecordError(f"{who} yielded ArrayPairs where only single pairs can go")
                collect_arrays(pair)
                n += len(pair)
                continue
            pair = as_pair(pair, who)
        collect(pair[0], pair[1])
        n += 1
    return n


def _note_formats(ctx, format_reader, bad: BadRecords, result: dict) -> None:
    """The format's notes (unsplittable input, pruned row groups) and the bad records, as counters."""
    for name, n in (getattr(format_reader, "notes", None) or {}).items():
        ctx.counter("formats", name, n)
    if bad.count:
        ctx.counter("formats", "bad_records", bad.count)
    names = bad.close()
    if names:
        result["bad"] = names


def _count_written(part: PartOutput) -> None:
    """Records a record-format part holds (a map_batch may hand its writer whole tables)."""
    if part.name.endswith(RECORD_SUFFIXES):
        ctxmod.counter("formats", "records_written", part.writer.records)


RECORD_SUFFIXES = (".csv", ".jsonl", ".parquet", ".avro", ".seq", ".gz", ".bz2", ".zst")


def _open_map_only_sink(job, spec: MapSpec, bad: BadRecords):
    """A writer for a map-only task's part; returns (finish() -> (files, bytes written), collect)."""
    part = PartOutput(spec.output, spec.attempt, spec.task_index, job.output_format,
                      getattr(job, "output_options", None), bad)

    def finish() -> tuple[list[str], int]:
        written = part.close()
        _count_written(part)
        return [part.name], written

    finish.collect_arrays = part.write_arrays
    return finish, part.write


# ---------------------------------------------------------------------------- reduce
def _run_reduce(job, spec: ReduceSpec, fns: TaskFunctions, ctx, pos: _Position) -> AttemptResult:
    partition = spec.partition
    ctx.partition = partition
    started = time.perf_counter()
    pos.phase = "fetch"
    configure_fetch(spec.shuffle)
    runs = open_partition_runs(spec.sources, partition, spec.work_dir)
    times = {"fetch": time.perf_counter() - started}
    bad = BadRecords(getattr(job, "bad_records", "fail"), spec.output, spec.attempt, f"r-{partition:05d}")
    writer = PartOutput(spec.output, spec.attempt, partition, job.output_format,
                        getattr(job, "output_options", None), bad, indexed=True)
    try:
        n_out = 0
        if fns.reducer_init is not None:
            pos.phase = "reducer_init"
            n_out += _emit_all(fns.reducer_init(), writer.write, "reducer_init", writer.write_arrays)
        pos.phase = "reduce"
        if any(out and out.get("kind") == "arrays" for _, _, out in spec.sources):
            if fns.reduce_stream is not None:
                raise RecordError("reduce_stream takes single pairs; this job's maps emitted ArrayPairs")
            n_groups, n_in, n = _reduce_arrays(runs, fns, writer, pos)
        elif fns.reduce_batch is not None:
            raise RecordError("reduce_batch needs map output as ArrayPairs; this job's maps emitted single pairs")
        else:
            n_groups, n_in, n = _reduce_records(runs, spec, fns, writer, pos, times)
        n_out += n
        if fns.reducer_final is not None:
            pos.phase = "reducer_final"
            n_out += _emit_all(fns.reducer_final(), writer.write, "reducer_final", writer.write_arrays)
    finally:
        loop_done = time.perf_counter()
        out_bytes = writer.close()
        # fetched segments spilled by the shuffle are this attempt's alone: gone with it
        shutil.rmtree(spec.work_dir, ignore_errors=True)
        _count_written(writer)
    done = time.perf_counter()
    counters = {"input_groups": n_groups, "input_records": n_in, "output_records": n_out,
                "output_bytes": out_bytes, "millis": int((done - started) * 1000)}
    # the reduce loop less the sampled reducer is the engine's: writing (and grouping lazily)
    times["write"] = max(0.0, done - started - sum(times.values()))
    output = writer.report()
    _note_formats(ctx, None, bad, output)
    return AttemptResult(output, {"reduce": counters, STAGE_GROUP: stage_counters(times, done - started)})


def _reduce_records(runs, spec: ReduceSpec, fns: TaskFunctions, writer, pos, times: dict) -> tuple[int, int, int]:
    """Merge a partition's runs and call the reducer once per key, keys in order."""
    partition = spec.partition
    native = native_order([(out or {}).get("keytypes", [None] * (partition + 1))[partition]
                           for _, _, out in spec.sources])
    # the in-memory sort budget: the cluster's reduce buffer, or this default when run locally
    budget = spec.shuffle.buffer_bytes if spec.shuffle is not None else REDUCE_MEMORY_BUDGET
    tally = Tally()
    reducer, write = fns.reducer, writer.write
    n_groups = n_out = 0
    started = time.perf_counter()
    groups = merge_for_reduce(runs, native, budget, tally)
    clock = time.perf_counter
    now = clock()
    times["merge"] = now - started
    if fns.reduce_stream is not None:
        return _reduce_stream(groups, fns.reduce_stream, write, pos, tally)
    fold = fold_of(reducer)
    if fold is not None:
        return _reduce_folded(groups, fold, write, pos, tally)
    samples: list = []
    for key, values in groups:
        pos.key = key
        n_groups += 1
        if n_groups & 0x3FF == 1:    # every 1,024 keys (the first too), as in the map loop
            pos.report(0.0, {"reduce": {"input_groups": n_groups, "input_records": tally.values,
                                        "output_records": n_out}, **mapred_user_counters()})
            t0 = clock()
            out = reducer(key, values)
            out = list(out) if out is not None else None
            samples.append(clock() - t0)
        else:
            out = reducer(key, values)
        if out is not None:
            for pair in out:
                if type(pair) is not tuple or len(pair) != 2:
                    pair = as_pair(pair, "reducer")
                write(pair[0], pair[1])
                n_out += 1
    pos.key = None
    times["reduce"] = scaled_sample(samples, n_groups)
    return n_groups, tally.values, n_out


def _reduce_folded(groups, fold, write, pos, tally) -> tuple[int, int, int]:
    """A reducer marked associative (``mapred.combiners``): each key's values folded, one pair out."""
    n_groups = 0
    for key, values in groups:
        pos.key = key
        n_groups += 1
        write(key, functools.reduce(fold, values))
    pos.key = None
    return n_groups, tally.values, n_groups


def _reduce_stream(groups, reduce_stream, write, pos, tally) -> tuple[int, int, int]:
    """Hand the partition's ``(key, values)`` groups, in key order, to ``reduce_stream`` as one iterator."""
    n_groups = 0

    def placed():
        nonlocal n_groups
        for key, values in groups:
            pos.key = key
            n_groups += 1
            yield key, values

    n_out = _emit_all(reduce_stream(placed()), write, "reduce_stream")
    pos.key = None
    return n_groups, tally.values, n_out


def _reduce_arrays(runs, fns: TaskFunctions, writer, pos) -> tuple[int, int, int]:
    """A partition of array pairs: concatenated, sorted by key, then reduced as a batch or key by key."""
    merged = concat_chunks([chunk for run in runs for chunk in run])
    if merged is None:
        return 0, 0, 0
    keys, values = sort_pairs(*merged)
    if fns.reduce_batch is not None:
        n_out = _emit_all(fns.reduce_batch(keys, values), writer.write, "reduce_batch", writer.write_arrays)
        groups = int(np.count_nonzero(keys[1:] != keys[:-1])) + 1 if len(keys) else 0
        return groups, len(keys), n_out
    n_groups = n_out = 0
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.array([], dtype=int)
    bounds = np.r_[starts, len(keys)]
    for i in range(len(starts)):
        key = keys[bounds[i]].item()
        pos.key = key
        n_groups += 1
        n_out += _emit_all(fns.reducer(key, iter(values[bounds[i]:bounds[i + 1]])), writer.write, "reducer")
    return n_groups, len(keys), n_out
