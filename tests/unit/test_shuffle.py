"""Map-side buffer, spills and merge: bounded memory, sorted runs, each key once per reducer."""
import collections
import random
import tracemalloc

from hypothesis import given, settings, strategies as st

from mapred.io.codec import approx_size, sort_keys
from mapred.shuffle.merge import merge_and_group
from mapred.shuffle.sort import PAIR_OVERHEAD, MapOutputBuffer
from mapred.shuffle.spill import RunIndex, read_segment


def read_partitions(path, n):
    index = RunIndex.load(path)
    return [[(k, list(vs)) for k, vs in merge_and_group([read_segment(index.segments[p])])] for p in range(n)]


@settings(max_examples=60, deadline=None)
@given(words=st.lists(st.sampled_from(["a", "bb", "c", "dd", "e", "ff", 1, 2, ("t", 1)]), max_size=400),
       n=st.integers(1, 4), limit=st.integers(200, 5000), combine=st.booleans(),
       compression=st.sampled_from(["none", "lz4"]))
def test_runs_are_sorted_partitioned_and_complete(tmp_path_factory, words, n, limit, combine, compression):
    work = str(tmp_path_factory.mktemp("spill"))
    counters = {}
    combiner = (lambda k, vs: [(k, sum(vs))]) if combine else None
    buf = MapOutputBuffer(n, None, combiner, limit, work, counters, compression)
    for w in words:
        buf.collect(w, 1)
    buf.finish(work + "/final.run")
    parts = read_partitions(work + "/final.run", n)
    totals = collections.Counter()
    for records in parts:
        keys = [k for k, _ in records]
        assert keys == sort_keys(keys) and len(set(keys)) == len(keys)
        for k, vs in records:
            totals[k] += sum(vs)
    assert totals == collections.Counter(words)


def test_output_twenty_times_the_buffer_spills_and_finishes_in_bounded_memory(tmp_path):
    limit = 1024 * 1024
    counters = {}
    buf = MapOutputBuffer(3, None, None, limit, str(tmp_path), counters)
    rng = random.Random(7)
    tracemalloc.start()
    written = collected = 0
    while written < 20 * limit:          # 20x the buffer, in the buffer's own accounting
        key = f"k{rng.randrange(10**6):07d}"
        buf.collect(key, "v" * 20)
        collected += 1
        written += approx_size(key) + approx_size("v" * 20) + PAIR_OVERHEAD
    index = buf.finish(str(tmp_path / "final.run"))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert counters["spills"] >= 10
    # the buffer, plus a merge of at most 16 runs read 64 KiB at a time: far below the 20x output
    assert peak < 8 * limit, f"peak {peak} bytes for a {limit}-byte buffer"
    values = sum(len(vs) for p in range(3) for _, vs in read_segment(index.segments[p]))
    assert values == collected


@settings(max_examples=100, deadline=None)
@given(runs=st.lists(st.dictionaries(st.sampled_from(["a", "b", "c", "d", 1, 2, ("t", 1)]),
                                     st.lists(st.integers(0, 9), min_size=1, max_size=3), max_size=6),
                     max_size=5),
       budget=st.sampled_from([0, 100, 300, 1 << 20]))
def test_reduce_merge_groups_every_key_once_in_order_within_any_budget(runs, budget):
    from mapred.io.codec import order_key
    from mapred.shuffle.merge import Tally, merge_for_reduce
    sorted_runs = [sorted(run.items(), key=lambda kv: order_key(kv[0])) for run in runs]
    tally = Tally()
    got = [(k, list(vs)) for k, vs in merge_for_reduce([list(r) for r in sorted_runs], False, budget, tally)]
    expected = collections.defaultdict(list)
    for run in sorted_runs:
        for k, vs in run:
            expected[k].extend(vs)
    assert [k for k, _ in got] == sort_keys(expected)
    assert {k: sorted(vs) for k, vs in got} == {k: sorted(vs) for k, vs in expected.items()}
    assert tally.values == sum(len(vs) for vs in expected.values())
