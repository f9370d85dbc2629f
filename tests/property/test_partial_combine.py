"""A combiner may run any number of times on any of a key's values: the output must not tell.

The map's list buffer runs a plain combiner only on keys holding at least
``COMBINE_AT_LEAST`` values, at a relief and at the end; the others ship as
they are.  So within one run some keys are combined once, some several times
(one relief after another, then the spill merge) and some never.  These
combiners are not idempotent-looking sums: one keeps a key's three largest
values (it yields three values, not one), one turns values into
``[sum, count]`` partials, so a value that skipped the combiner and one that
went through look different — and the reducer must give the reference's
output either way, with spills forced by small buffers.
"""
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import mapred
from mapred.shuffle.combine import COMBINE_AT_LEAST, combine_in_place
from mapred.testing import assert_matches_reference, text_strategy, write_text_files


def letters(offset, line):
    for i, word in enumerate(line.split()):
        yield word[:1], len(word) * 100 + (offset + i) % 97


def top3_combiner(key, values):
    for v in sorted(values, reverse=True)[:3]:
        yield key, v


def top3_reducer(key, values):
    yield key, sorted(values, reverse=True)[:3]


def partial_mean_combiner(key, values):
    total = n = 0
    for v in values:
        if isinstance(v, list):          # a partial from an earlier combine
            total, n = total + v[0], n + v[1]
        else:                            # a raw value that no combiner has seen
            total, n = total + v, n + 1
    yield key, [total, n]


def mean_reducer(key, values):
    total = n = 0
    for v in values:
        if isinstance(v, list):
            total, n = total + v[0], n + v[1]
        else:
            total, n = total + v, n + 1
    yield key, [total, n]


JOBS = {"top 3": (top3_combiner, top3_reducer), "partial means": (partial_mean_combiner, mean_reducer)}


@pytest.mark.timeout(600)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.lists(text_strategy(), min_size=1, max_size=3), split_size=st.integers(8, 300),
       reducers=st.integers(1, 3), workers=st.integers(1, 2), buffer=st.sampled_from([1024, 2048, 1 << 20]),
       form=st.sampled_from(sorted(JOBS)))
def test_partially_combined_keys_equal_the_reference(clusters, tmp_path_factory, files, split_size, reducers,
                                                     workers, buffer, form):
    paths = write_text_files(tmp_path_factory.mktemp("in"), files)
    combiner, reducer = JOBS[form]
    job = mapred.Job(mapper=letters, combiner=combiner, reducer=reducer, num_reducers=reducers,
                     split_size=split_size, sort_buffer_bytes=buffer, output_format="msgpack")
    result = clusters.get(workers).run(job, paths, str(tmp_path_factory.mktemp("out") / "o"))
    assert_matches_reference(job, paths, result)


def test_combine_in_place_runs_only_on_keys_with_enough_values():
    seen = []

    def combiner(key, values):
        values = list(values)
        seen.append(key)
        if key != "gone":
            yield key, sum(values)

    many = list(range(COMBINE_AT_LEAST))
    groups = {"few": [1] * (COMBINE_AT_LEAST - 1), "many": many, "gone": many, "one": [7]}
    counters = {}
    combine_in_place(combiner, groups, counters)
    assert sorted(seen) == ["gone", "many"]
    assert groups == {"few": [1] * (COMBINE_AT_LEAST - 1), "many": [sum(many)], "one": [7]}
    total = 2 * COMBINE_AT_LEAST + COMBINE_AT_LEAST - 1 + 1
    assert counters == {"combine_input_records": total, "combine_output_records": COMBINE_AT_LEAST - 1 + 1 + 1}


def test_combine_in_place_refuses_a_changed_key():
    def renames(key, values):
        yield key + "!", sum(values)

    with pytest.raises(mapred.errors.RecordError, match="combiner changed key 'k' to 'k!'"):
        combine_in_place(renames, {"k": [1] * COMBINE_AT_LEAST}, {})
