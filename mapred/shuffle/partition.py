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

from ..codec import encode_key, order_key, sort_keys


def hash_partition(key: Any, n: int) -> int:
    """The default partition of ``key`` among ``n`` reducers."""
    if n == 1:
        return 0
    return xxhash.xxh64_intdigest(encode_key(key)) % n


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
    if type(p) is not int or not 0 <= p < n:
        from ..errors import RecordError
        raise RecordError(f"partitioner returned {p!r} for key {key!r:.60}; expected an int in [0, {n})")
    return p
