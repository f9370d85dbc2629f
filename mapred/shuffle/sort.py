"""The map-side sort buffer: collect, combine, sort and spill, bounded in bytes.

Pairs are grouped by key in a dict as they arrive (in-mapper combining: a key
seen a million times costs one dict entry and a list).  When the estimated
size passes the limit the buffer runs the combiner (in place, on the keys with
enough values to pay for a call); if that does not bring it under three
quarters of the limit it partitions, sorts and spills a run to disk — a spill
costs every key a place in the final merge, so it is worth a combine more
often.  At the end the runs are merged into one file with a segment per
partition.
"""
from __future__ import annotations

import functools
import os
import time
from typing import Any, Callable

import numpy as np

from mapred.io.arrays import ArrayPairs, concat_chunks, partition_array, sort_order, sort_pairs
from mapred.io.codec import approx_size, encode_key, make_packer, packb, sort_records
from mapred.combiners import fold_of
from mapred.errors import RecordError
from mapred.shuffle.combine import COMBINE_AT_LEAST, combine_groups, combine_in_place
from mapred.shuffle.merge import merge_and_group
from mapred.shuffle.partition import _xxh64, check_partition, hash_partition
from mapred.shuffle.spill import RunIndex, RunWriter, read_segment

PAIR_OVERHEAD = 160   # a dict slot, a values list and their headers
MERGE_READ_BLOCK = 64 * 1024
RELIEF_KEEP = 0.75    # a relief that combines the buffer below this share of its limit goes on without a spill
MERGE_FACTOR = 16     # runs merged at once; more spills are merged in passes (Hadoop's io.sort.factor)


_NATIVE_TAGS = {frozenset({str}): "str", frozenset({bytes}): "bytes"}


def _tag(types: set) -> str:
    if not types:
        return ""
    if types <= {int, float, bool}:
        return "num"
    return _NATIVE_TAGS.get(frozenset(types), "mixed")


_MISSING = object()     # no value yet for a key (a folded value may itself be None)
_PLAIN = frozenset({str, int, float, bytes, bool, type(None)})   # always encodable: no check needed


def check_encodable(obj: Any, what: str) -> None:
    """Raise ``RecordError`` (a fatal user error) now, while the record that made ``obj`` is current.

    Encoding happens at spill time, records later; checking a new key (and
    an unusual value) as it is collected names the record that yielded it.
    """
    try:
        packb(obj)
    except (TypeError, ValueError, OverflowError) as exc:
        raise RecordError(f"map output {what} {obj!r:.80} of type {type(obj).__name__} cannot be "
                          f"encoded: {exc}") from None


class MapOutputBuffer:
    """Collects one map attempt's output and produces its final partitioned run."""

    def __init__(self, num_partitions: int, partitioner: Callable | None, combiner: Callable | None,
                 limit_bytes: int, work_dir: str, counters: dict, compression: str = "none",
                 times: dict | None = None) -> None:
        self.n = num_partitions
        self.partitioner = partitioner or hash_partition
        self.combiner = combiner
        self.limit = max(int(limit_bytes), 1024)
        self.work_dir = work_dir
        self.counters = counters
        self.compression = compression
        self.groups: dict[Any, list] = {}    # one dict for the buffer's life: emptied and combined in place
        self.first_bytes = self.first_n = 0  # the keys' first values' sizes: repeated values are sized at their mean
        self.multi = False                   # some key has two or more values (worth combining)
        self.chunks: list[tuple] = []        # ArrayPairs mode: (keys, values) chunks
        self.mode = ""                       # "records" or "arrays", fixed by the first output
        self.bytes = 0
        self.spills: list[RunIndex] = []
        self.key_types: list[set] = [set() for _ in range(num_partitions)]
        # a combiner marked associative (mapred.combiners): one folded value per key instead of a list
        self.fold = fold_of(combiner)
        self.folded = 0                      # pairs collected into the fold since the last spill
        self.growing = False                 # some folded value is not a number: its size may grow
        self.times = times if times is not None else {}   # stage -> seconds (combine, sort, spill, merge)

    def key_type_tags(self) -> list[str]:
        """Per partition: ``str``, ``bytes`` or ``num`` when every key is of that native kind.

        Reducers merge runs with plain comparisons when every run's tag agrees
        (the same order as ``codec.order_key``), and with ``order_key`` otherwise.
        """
        return [_tag(types) for types in self.key_types]

    @property
    def kind(self) -> str:
        """``"pairs"`` or ``"arrays"``: what this map emitted, so reducers merge the right way."""
        return self.mode or "records"

    def _set_mode(self, mode: str) -> None:
        if self.mode != mode:
            if self.mode:
                raise RecordError("a map task emitted both ArrayPairs and single pairs; use one form per job")
            self.mode = mode

    def collect_arrays(self, pairs: ArrayPairs) -> None:
        """Buffer a batch of array pairs; spill when the buffer is full (no per-record Python)."""
        if self.mode != "arrays":
            self._set_mode("arrays")
        if len(pairs):
            self.chunks.append((pairs.keys, pairs.values))
            self.bytes += pairs.keys.nbytes + pairs.values.nbytes
        if self.bytes > self.limit:
            self._spill()

    def collect_many(self, pairs) -> int:
        """``collect`` for every ``(key, value)`` of an iterable, without a call per pair."""
        if self.mode != "records":
            self._set_mode("records")
        if self.fold is not None:
            n = 0
            for key, value in pairs:
                self.collect(key, value)
                n += 1
            return n
        groups, size, limit = self.groups, approx_size, self.limit
        n = 0
        used = self.bytes
        try:
            for key, value in pairs:
                n += 1
                values = groups.get(key)
                vt = type(value)
                vsize = 28 if vt is int or vt is float else size(value)
                if vt not in _PLAIN:
                    check_encodable(value, "value")
                if values is None:
                    if type(key) not in _PLAIN:
                        check_encodable(key, "key")
                    groups[key] = [value]
                    used += (len(key) + 49 if type(key) is str else size(key)) + vsize + PAIR_OVERHEAD
                else:
                    values.append(value)
                    used += vsize + 8
                    self.multi = True
                if used > limit:
                    self.bytes = used
                    self._relieve()
                    groups, used = self.groups, self.bytes
        except TypeError:
            raise RecordError("map output key is not hashable, or an item is not a (key, value) pair") from None
        except ValueError:
            raise RecordError("map output item is not a (key, value) pair") from None
        finally:
            self.bytes = used
        return n

    def collect(self, key: Any, value: Any) -> None:
        """Add one pair to the in-memory buffer (combining repeated keys); spill when over budget."""
        if self.mode != "records":
            self._set_mode("records")
        if self.fold is not None:
            self._fold_one(key, value)
            return
        groups = self.groups
        try:
            values = groups.get(key)
        except TypeError:
            raise RecordError(f"map output key {key!r:.60} of type {type(key).__name__} is not hashable") from None
        if type(value) not in _PLAIN:
            check_encodable(value, "value")
        if values is None:
            if type(key) not in _PLAIN:
                check_encodable(key, "key")
            groups[key] = [value]
            self.bytes += approx_size(key) + approx_size(value) + PAIR_OVERHEAD
        else:
            values.append(value)
            self.bytes += approx_size(value) + 8
            self.multi = True
        if self.bytes > self.limit:
            self._relieve()

    def _fold_one(self, key: Any, value: Any) -> None:
        """``collect`` for a folding combiner: one value per key, the new one folded in."""
        groups = self.groups
        try:
            old = groups.get(key, _MISSING)
        except TypeError:
            raise RecordError(f"map output key {key!r:.60} of type {type(key).__name__} is not hashable") from None
        self.folded += 1
        if old is _MISSING:
            self.new_key(key, value)
            groups[key] = value
            if self.bytes > self.limit:
                self._spill()
            return
        groups[key] = self.fold(old, value)
        if self.growing:
            self.bytes += approx_size(value)
            if self.bytes > self.limit:
                self._spill()

    def new_key(self, key: Any, value: Any) -> int:
        """Check a key first seen (and its value) and count its bytes; returns the buffer's bytes.

        The drivers of ``shuffle.drive`` call this once per distinct key and
        keep only a count per repeated value, so a repeated key costs a dict
        lookup and an append (or a fold), nothing more.
        """
        kt, vt = type(key), type(value)
        if kt not in _PLAIN:
            check_encodable(key, "key")
        if vt is int:
            # CPython shares the small ints: a list slot (counted per value) is all a 1 costs
            vsize = 0 if -5 <= value <= 256 else 28
        elif vt is float:
            vsize = 24
        elif value is None or vt is bool:
            vsize = 0
        else:
            if vt not in _PLAIN:
                check_encodable(value, "value")
            vsize = approx_size(value)
            if self.fold is not None and vt is not bool and value is not None:
                self.growing = True      # a folded str, list or tuple may grow with each value
        self.first_bytes += vsize
        self.first_n += 1
        self.bytes += (len(key) + 49 if kt is str else approx_size(key)) + vsize + PAIR_OVERHEAD
        return self.bytes

    def _relieve(self) -> None:
        if self.fold is not None:
            self._spill()
            return
        if self.combiner is not None and self.mode == "records":
            self._combine_in_memory()
            if self.bytes <= self.limit * RELIEF_KEEP:
                return
        self._spill()

    def _combine_in_memory(self, recount: bool = True) -> None:
        started = time.perf_counter()
        groups = self.groups
        took, out_bytes = combine_in_place(self.combiner, groups, self.counters)
        if recount:      # the new size decides whether to spill, and whether combining again can pay
            self.multi = max(map(len, groups.values()), default=0) >= COMBINE_AT_LEAST
            if self.first_n:     # filled by shuffle.drive: repeated values were counted at the mean first value
                self.bytes = max(0, self.bytes - took * (self.first_bytes // self.first_n + 8) + out_bytes)
            else:                # filled by collect: sized value by value, so recounted so
                self.bytes = sum(approx_size(k) + sum(map(approx_size, vs)) + PAIR_OVERHEAD
                                 for k, vs in groups.items())
        self._took("combine", started)

    def recount_folded(self) -> None:
        """The buffer's size recounted from the folded values themselves (they may have grown)."""
        self.bytes = sum(approx_size(k) + approx_size(v) + PAIR_OVERHEAD for k, v in self.groups.items())

    def _took(self, stage: str, started: float) -> float:
        """Add the time since ``started`` to ``stage``; return now."""
        now = time.perf_counter()
        self.times[stage] = self.times.get(stage, 0.0) + now - started
        return now

    def _partitioned(self) -> list[list]:
        """The buffer's ``[key, values]`` records by partition, made in the dict's own order.

        Walking the dict is sequential in memory; looking each key up again
        in sorted order (as building them after the sort would) costs a cache
        miss per key, which on a large buffer is more than the packing.
        """
        n, fold = self.n, self.fold is not None
        items = self.groups.items()
        part_of = self.partitioner
        if n == 1:
            return [[[k, [v]] for k, v in items] if fold else list(map(list, items))]
        parts: list[list] = [[] for _ in range(n)]
        appends = [p.append for p in parts]
        if part_of is hash_partition:         # ours, inlined: always in range, no call per key
            pack = make_packer().pack
            try:
                if fold:
                    for k, v in items:
                        appends[_xxh64(pack(k)) % n]([k, [v]])
                else:
                    for k, vs in items:
                        appends[_xxh64(pack(k)) % n]([k, vs])
            except (TypeError, ValueError, OverflowError):
                for key in self.groups:
                    encode_key(key)             # raises the RecordError naming the key
                raise
        else:
            for k, vs in items:
                appends[check_partition(part_of(k, n), n, k)]([k, [vs] if fold else vs])
        return parts

    def _write_run(self, path: str) -> RunIndex:
        writer = RunWriter(path, self.n, self.compression)
        if self.mode == "arrays":
            for chunk in self._partitioned_arrays():
                writer.write_partition([chunk] if chunk is not None else ())
            return writer.close()
        started = time.perf_counter()
        parts = self._partitioned()
        for p, records in enumerate(parts):
            self.key_types[p].update(sort_records(records))
        started = self._took("sort", started)
        for records in parts:
            # [key, values] lists: the writer packs a list of them without a Python step per record
            writer.write_partition(records, packed_lists=True)
        index = writer.close()
        self._took("spill", started)
        return index

    def _partitioned_arrays(self) -> list:
        """The buffered array pairs split by partition, each sorted by key (None for an empty one)."""
        merged = concat_chunks(self.chunks)
        if merged is None:
            return [None] * self.n
        keys, values = merged
        parts = partition_array(self.partitioner if self.partitioner is not hash_partition else None,
                                keys, self.n)
        order = sort_order(keys, major=parts)          # by partition, then key: one gather
        keys, values, parts = keys[order], values[order], parts[order]
        bounds = np.searchsorted(parts, np.arange(self.n + 1))
        return [(keys[bounds[p]:bounds[p + 1]], values[bounds[p]:bounds[p + 1]])
                if bounds[p + 1] > bounds[p] else None for p in range(self.n)]

    def _spill(self) -> None:
        path = os.path.join(self.work_dir, f"spill{len(self.spills)}.run")
        self.spills.append(self._write_run(path))
        self.counters["spills"] = self.counters.get("spills", 0) + 1
        if self.mode == "arrays":
            spilled = sum(len(c[0]) for c in self.chunks)
        elif self.fold is not None:
            spilled = len(self.groups)
            self._count_folded()
        else:
            spilled = sum(len(v) for v in self.groups.values())
        self.counters["spilled_records"] = self.counters.get("spilled_records", 0) + spilled
        self.groups.clear()
        self.chunks = []
        self.bytes = 0
        self.multi = False

    def _count_folded(self) -> None:
        """The fold's pairs in and keys out since the last spill, as Hadoop's combine counters."""
        c = self.counters
        c["combine_input_records"] = c.get("combine_input_records", 0) + self.folded
        c["combine_output_records"] = c.get("combine_output_records", 0) + len(self.groups)
        self.folded = 0

    def finish(self, final_path: str) -> RunIndex:
        """Write the final run at ``final_path`` (merging spills) and return its index."""
        if not self.spills:
            if self.fold is not None:
                self._count_folded()
            elif self.combiner is not None and self.multi:
                self._combine_in_memory(recount=False)
            index = self._write_run(final_path)
            self.groups = {}
            self.chunks = []
            return index
        if self.groups or self.chunks:
            self._spill()
        started = time.perf_counter()
        index = self._merge_spills(final_path)
        self._took("merge", started)
        return index

    def _merge_spills(self, final_path: str) -> RunIndex:
        """Merge the spills into ``final_path``, at most ``MERGE_FACTOR`` runs at a time."""
        runs = list(self.spills)
        passes = 0
        while len(runs) > MERGE_FACTOR:
            path = os.path.join(self.work_dir, f"merge{passes}.run")
            runs = [self._merge_runs(runs[:MERGE_FACTOR], path)] + runs[MERGE_FACTOR:]
            passes += 1
        self.counters["merge_passes"] = self.counters.get("merge_passes", 0) + passes + 1
        return self._merge_runs(runs, final_path)

    def _merge_runs(self, runs: list[RunIndex], path: str) -> RunIndex:
        writer = RunWriter(path, self.n, self.compression)
        for p in range(self.n):
            if self.mode == "arrays":
                merged = concat_chunks([c for run in runs for c in read_segment(run.segments[p])])
                writer.write_partition([sort_pairs(*merged)] if merged is not None else ())
                continue
            grouped = merge_and_group([read_segment(run.segments[p], MERGE_READ_BLOCK) for run in runs])
            if self.fold is not None:
                fold = self.fold
                writer.write_partition((k, [functools.reduce(fold, vs)]) for k, vs in grouped)
            elif self.combiner is not None:
                writer.write_partition(combine_groups(self.combiner, grouped, self.counters))
            else:
                writer.write_partition((k, list(vs)) for k, vs in grouped)
        index = writer.close()
        for run in runs:
            os.remove(run.path)
            os.remove(run.path + ".index")
        return index
