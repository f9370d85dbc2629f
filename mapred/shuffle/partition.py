"""Partitioners: which reducer a key goes to.

The default hashes the *encoded* key with xxhash, so a key lands in the same
partition in every process and on every host (Python's ``hash()`` of a str is
salted per process).  ``RangePartitioner`` gives a total order across
partitions — partition i holds keys below partition i+1's — for sorting.
"""
from __future__ import annotations

import bisect
from typing import Any, Iterable, Sequence

import xxhash

from mapred.io.codec import encode_key, order_key, sort_keys


_xxh64 = xxhash.xxh64_intdigest


def hash_partition(key: Any, n: int) -> int:
    """The default partition of ``key`` among ``n`` reducers."""
    if n == 1:
        return 0
    return _xxh64(encode_key(key)) % n


class HashPartitioner:
    """The default: a stable hash of the encoded key, modulo the reducer count."""

    def __call__(self, key: Any, n: int) -> int:
        return hash_partition(key, n)


class RangePartitioner:
    """Keys below ``boundaries[0]`` go to partition 0, and so on; ``len(boundaries) + 1`` partitions."""

    def __init__(self, boundaries: Sequence[Any]) -> None:
        self.boundaries = list(boundaries)
        self._order = [order_key(b) for b in self.boundaries]

    def __call__(self, key: Any, n: int) -> int:
        p = bisect.bisect_right(self._order, order_key(key))
        return min(p, n - 1)

    def partition_array(self, keys, n: int):
        """The vectorised form for ``ArrayPairs`` keys (one ``searchsorted`` per batch)."""
        import numpy as np
        if not self.boundaries:
            return np.zeros(len(keys), dtype=np.int64)
        bounds = np.array(self.boundaries, dtype=keys.dtype)
        return np.minimum(np.searchsorted(bounds, keys, side="right"), n - 1)

    @classmethod
    def from_sample(cls, sample: Iterable[Any], n: int) -> "RangePartitioner":
        """Boundaries at the quantiles of a key sample, for ``n`` balanced partitions."""
        keys = sort_keys(sample)
        if n <= 1 or not keys:
            return cls([])
        bounds = [keys[min(len(keys) - 1, (i * len(keys)) // n)] for i in range(1, n)]
        return cls(bounds)

    def __repr__(self) -> str:
        return f"RangePartitioner({len(self.boundaries)} boundaries)"


def resolve(partitioner) -> Any:
    """The callable ``(key, n) -> partition`` for a job's partitioner setting."""
    if partitioner is None:
        return hash_partition
    return partitioner


def check_partition(p: Any, n: int, key: Any) -> int:
    """Validate a partitioner's answer: an int in ``[0, num_partitions)``; ``RecordError`` otherwise."""
    if type(p) is not int or not 0 <= p < n:
        from mapred.errors import RecordError
        raise RecordError(f"partitioner returned {p!r} for key {key!r:.60}; expected an int in [0, {n})")
    return p


class TotalOrderPartitioner(RangePartitioner):
    """A range partitioner whose boundaries come from sampling the job's input before it starts.

    ``key(line_bytes)`` extracts the sort key from a raw input line.  Before
    the job is shipped, ``prepare`` reads up to ``samples`` lines spread over
    the splits (Hadoop's InputSampler) and sets balanced boundaries.
    """

    def __init__(self, key, samples: int = 100_000, max_splits: int = 20) -> None:
        super().__init__([])
        self.key = key
        self.samples = samples
        self.max_splits = max_splits

    def prepare(self, splits, n: int) -> None:
        """Sample the splits' keys and choose the range boundaries before the job starts."""
        from mapred.io.fs import get_fs
        chosen = splits[:: max(1, len(splits) // self.max_splits)][: self.max_splits]
        per_split = max(1, self.samples // max(1, len(chosen)))
        sample = []
        for split in chosen:
            with get_fs(split.path).open_read(split.path) as f:
                f.seek(split.start)
                if split.start:
                    f.readline()
                for _ in range(per_split):
                    line = f.readline()
                    if not line:
                        break
                    sample.append(self.key(line.rstrip(b"\r\n")))
        picked = RangePartitioner.from_sample(sample, n)
        self.boundaries = picked.boundaries
        self._order = picked._order

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["key"] = None          # only needed before the job ships
        return state
