"""K-way merge of sorted runs and grouping of equal keys.

Every run is sorted by ``codec.order_key`` and holds each key at most once, so
the merge needs one heap entry per run and grouping needs one comparison per
record.  Values of a key stream lazily from the runs that hold it, so a
reducer can consume a key with more values than fit in memory.
"""
from __future__ import annotations

import heapq
from itertools import chain, groupby
from operator import itemgetter
from typing import Any, Iterable, Iterator

from mapred.io.codec import order_key, sort_keys

_first = itemgetter(0)
_second = itemgetter(1)


def _order_of_record(record) -> tuple:
    return order_key(record[0])


def merge_runs(runs: list[Iterable[tuple[Any, list]]], native: bool = False) -> Iterator[tuple[Any, list]]:
    """Merge sorted ``(key, values)`` streams into one sorted stream (keys may repeat).

    ``native``: every key is of one natively ordered kind (all str, all bytes
    or all numbers), so plain comparisons give ``order_key``'s order faster.
    """
    if len(runs) == 1:
        return iter(runs[0])
    return heapq.merge(*runs, key=_first if native else _order_of_record)


def group_values(records: Iterable[tuple[Any, list]]) -> Iterator[tuple[Any, Iterator]]:
    """``(key, values iterator)`` for each distinct key of a sorted record stream."""
    for key, group in groupby(records, key=_first):
        yield key, chain.from_iterable(map(_second, group))


def merge_and_group(runs: list[Iterable[tuple[Any, list]]], native: bool = False) -> Iterator[tuple[Any, Iterator]]:
    """The reduce-side view: each key once, with all its values from every run."""
    return group_values(merge_runs(runs, native))


def native_order(tags: Iterable[str]) -> bool:
    """Whether runs tagged with these key kinds can be merged with plain comparisons."""
    kinds = {t for t in tags if t}
    return len(kinds) <= 1 and "mixed" not in kinds and all(t is not None for t in tags)


def merge_to_lists(runs: list[Iterable[tuple[Any, list]]]) -> Iterator[tuple[Any, list]]:
    """Like ``merge_and_group`` but with the values of a key gathered into one list."""
    for key, values in merge_and_group(runs):
        yield key, list(values)


class Tally:
    """How many values a reduce-side merge has handed out (counted per record, not per value)."""

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values = 0


def _counted(records: Iterable[tuple[Any, list]], tally: Tally) -> Iterator[tuple[Any, list]]:
    for record in records:
        tally.values += len(record[1])
        yield record


def merge_for_reduce(runs: list[Iterable[tuple[Any, list]]], native: bool, budget: int,
                     tally: Tally) -> Iterator[tuple[Any, Iterator]]:
    """Each key once with all its values: grouped in memory while the data fits ``budget``.

    Records are grouped by key in a dict (one C-level lookup per record) until
    the estimated size passes ``budget``; only the distinct keys are sorted.
    What does not fit stays in the runs, which are heap-merged with the sorted
    in-memory groups as one more run — so memory stays bounded for any input,
    and small partitions never touch the heap merge.
    """
    groups: dict = {}
    size = 0
    leftovers = []
    for run in runs:
        it = iter(run)
        if size <= budget:
            get = groups.get
            for record in it:
                key, values = record[0], record[1]
                have = get(key)
                # `size` is an estimate, not a measurement: ~96 bytes for a new key (its dict slot,
                # its list, a small key object), ~16 per value (a list pointer plus over-allocation).
                # The values themselves are not measured (that would cost more than reducing them),
                # so the budget bounds how many records are held, not their exact bytes
                if have is None:
                    groups[key] = list(values)      # a copy: the caller's records stay as they were
                    size += 96 + 16 * len(values)
                else:
                    have.extend(values)
                    size += 16 * len(values)
                if size > budget:
                    break          # the rest of this run, and every later run, stays on disk
        leftovers.append(it)
    keys = sorted(groups) if native else sort_keys(groups)
    tally.values += sum(map(len, groups.values()))
    gathered = [(k, groups[k]) for k in keys]
    rest = [_counted(it, tally) for it in leftovers] if size > budget else []
    if not rest:
        return ((k, iter(vs)) for k, vs in gathered)
    return group_values(merge_runs([gathered, *rest], native))
