"""Terasort and the array-pairs shuffle: totally ordered output that is a permutation of the input."""
import collections
import importlib.util
import os
import sys

import numpy as np
import pytest

import mapred

pytestmark = pytest.mark.timeout(180)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_terasort():
    spec = importlib.util.spec_from_file_location("terasort_example",
                                                  os.path.join(ROOT, "examples", "terasort.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    import cloudpickle
    cloudpickle.register_pickle_by_value(module)
    return module


@pytest.mark.parametrize("reducers, split_size, buffer", [(1, 1 << 20, 1 << 26), (3, 7001, 2048),
                                                         (5, 30_000, 1 << 26)])
def test_terasort_output_is_totally_ordered_permutation(clusters, tmp_path, reducers, split_size, buffer):
    ts = load_terasort()
    ts.generate(3000, str(tmp_path / "in"), seed=reducers, files=3)
    inputs = sorted(str(p) for p in (tmp_path / "in").iterdir())
    job = mapred.Job(map_batch=ts.map_records, reduce_batch=ts.write_sorted, input_mode="bytes",
                     output_format="raw", partitioner=mapred.TotalOrderPartitioner(ts.record_key, samples=500),
                     num_reducers=reducers, split_size=split_size, sort_buffer_bytes=buffer)
    result = clusters.get(2).run(job, inputs, str(tmp_path / "out"))
    parts = sorted(p for p in os.listdir(result.path) if p.startswith("part-"))
    assert len(parts) == reducers
    out = b"".join(open(os.path.join(result.path, p), "rb").read() for p in parts)
    inp = b"".join(open(p, "rb").read() for p in inputs)
    out_lines, in_lines = out.splitlines(keepends=True), inp.splitlines(keepends=True)
    assert [l[:10] for l in out_lines] == sorted(l[:10] for l in in_lines)      # totally ordered
    assert collections.Counter(out_lines) == collections.Counter(in_lines)     # a permutation
    if buffer == 2048:
        assert result.counters["map"]["spills"] > len(inputs)                  # the array path spilled
    ts.check(str(tmp_path / "in"), result.path)


def per_block_squares(block):
    ids = np.arange(len(block), dtype=np.int64) % 7
    yield mapred.ArrayPairs(ids, block.astype(np.float64) ** 2)


def total(key, values):
    yield key, float(sum(values))


def test_array_pairs_reach_a_plain_reducer_grouped_by_key(clusters, tmp_path):
    data = np.arange(1000, dtype=np.float64)
    ds = mapred.from_numpy(data, splits=4, path=str(tmp_path / "ds"))
    job = mapred.Job(map_batch=per_block_squares, reducer=total, num_reducers=3, output_format="msgpack")
    got = dict(clusters.get(2).run(job, ds, str(tmp_path / "out")))
    expected = collections.defaultdict(float)
    for start, end in ds.ranges:
        for i, x in enumerate(data[start:end]):
            expected[i % 7] += x * x
    assert got.keys() == expected.keys()
    assert all(abs(got[k] - expected[k]) < 1e-6 for k in got)
