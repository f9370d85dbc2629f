"""Encoding round trips, the total sort order and the stable partition hash."""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

from mapred.io import codec
from mapred.errors import RecordError
from mapred.shuffle.partition import RangePartitioner, hash_partition

keys = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.text() | st.binary()
                    | st.floats(allow_nan=False), lambda inner: st.tuples(inner, inner), max_leaves=4)


@given(keys)
def test_round_trip_keeps_values_and_tuples(key):
    assert codec.unpackb(codec.packb(key)) == key
    assert type(codec.unpackb(codec.packb(key))) is type(key) or isinstance(key, bool)


def test_numpy_values_round_trip():
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    back = codec.unpackb(codec.packb({"w": arr, "n": np.int64(3)}))
    assert back["n"] == 3 and back["w"].dtype == np.float32 and (back["w"] == arr).all()


@given(st.lists(keys, max_size=30))
def test_sort_keys_is_a_total_order_matching_order_key(items):
    assert codec.sort_keys(items) == sorted(items, key=codec.order_key)


def test_unencodable_key_names_its_type():
    with pytest.raises(RecordError, match="object"):
        codec.encode_key(object())


def test_partition_is_the_same_under_different_hash_seeds():
    script = ("from mapred.shuffle.partition import hash_partition;"
              "print([hash_partition(k, 7) for k in ['apple', 'pear', ('a', 1), 42, b'x', 'ü']])")
    outs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        outs.add(subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                                text=True, check=True).stdout)
    assert len(outs) == 1
    assert outs.pop().strip() == str([hash_partition(k, 7) for k in ['apple', 'pear', ('a', 1), 42, b'x', 'ü']])


@given(st.lists(st.text(max_size=5), min_size=1, max_size=50), st.integers(1, 6))
def test_range_partitioner_is_monotone(sample, n):
    part = RangePartitioner.from_sample(sample, n)
    ordered = codec.sort_keys(sample)
    parts = [part(k, n) for k in ordered]
    assert parts == sorted(parts)
    assert all(0 <= p < n for p in parts)
