"""THE property: a run on the embedded cluster equals the sequential reference.

For random text inputs, split sizes, reducer counts, worker counts, buffer
sizes that force spills, and the combiner on or off (a user generator or a
fold of ``mapred.combiners``), word count and the inverted index produce
exactly the reference's output.
"""
import operator

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import mapred
import mapred.combiners
from mapred.testing import assert_matches_reference, text_strategy, write_text_files

import inverted_index
import wordcount


def per_record_mapper(offset, line):
    for word in line.split():
        yield word, 1


def add(word, counts):
    yield word, sum(counts)


FORMS = {
    "per record": {"mapper": per_record_mapper},
    "batch of lines": {"map_batch": wordcount.count_batch},
    "the example (text blocks, in-mapper Counter)": {
        "mapper_init": wordcount.start_counting, "map_batch": wordcount.count_into_state,
        "input_mode": "text", "mapper_final": wordcount.emit_counts},
}


# the reducer and combiner forms: the user's generator, or a fold the engine runs in place
REDUCERS = {"generator": add, "combiners.sum": mapred.combiners.sum,
            "reduce_fn=operator.add": mapred.combiners.fold(operator.add)}


def wordcount_job(combine: bool, form: str, reducers: int, split_size: int, buffer: int,
                  reducer: str = "generator") -> mapred.Job:
    fn = REDUCERS[reducer]
    return mapred.Job(**FORMS[form], combiner=fn if combine else None, reducer=fn, num_reducers=reducers,
                      split_size=split_size, sort_buffer_bytes=buffer)


cases = dict(files=st.lists(text_strategy(), min_size=1, max_size=3), split_size=st.integers(8, 300),
             reducers=st.integers(1, 4), workers=st.integers(1, 3), buffer=st.sampled_from([1024, 4096, 1 << 20]),
             combine=st.booleans())


@pytest.mark.timeout(600)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(form=st.sampled_from(sorted(FORMS)), reducer=st.sampled_from(sorted(REDUCERS)), **cases)
def test_wordcount_equals_reference(clusters, tmp_path_factory, files, split_size, reducers, workers, buffer,
                                    combine, form, reducer):
    paths = _write(tmp_path_factory, files)
    job = wordcount_job(combine, form, reducers, split_size, buffer, reducer)
    out = str(tmp_path_factory.mktemp("out") / "wc")
    result = clusters.get(workers).run(job, paths, out)
    assert_matches_reference(job, paths, result)


@pytest.mark.timeout(600)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(**cases)
def test_inverted_index_equals_reference(clusters, tmp_path_factory, files, split_size, reducers, workers,
                                         buffer, combine):
    paths = _write(tmp_path_factory, files)
    base = inverted_index.job
    job = mapred.Job(mapper=base.mapper, combiner=base.combiner if combine else None, reducer=base.reducer,
                     num_reducers=reducers, split_size=split_size, sort_buffer_bytes=buffer)
    out = str(tmp_path_factory.mktemp("out") / "ii")
    result = clusters.get(workers).run(job, paths, out)
    assert_matches_reference(job, paths, result)


def _write(tmp_path_factory, files):
    return write_text_files(tmp_path_factory.mktemp("in"), files)
