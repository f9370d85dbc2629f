"""Folding combiners (``mapred.combiners``) and the per-record map loop, on the embedded cluster.

A fold keeps one value per key in the map's buffer; these runs force spills
with tiny sort buffers so values are folded within a spill, across spills
(the merge) and in the reducer, and compare with plain Python.  The loop's
checks must still name a bad pair, and a user's own TypeError must surface
as itself, not as the engine's error.
"""
import collections
import operator

import pytest

import mapred
import mapred.combiners as combiners
from mapred.errors import ConfigError, JobFailed

TEXT = ["the cat sat on the mat", "the dog ate the cat", "a b c a b a", "", "x y z x"] * 40


def words(offset, line):
    for word in line.split():
        yield word, 1


def lengths(offset, line):
    for word in line.split():
        yield word[0], len(word) * 10 + offset % 7


@pytest.fixture
def text_input(write_files):
    return write_files({"a.txt": "\n".join(TEXT[:100]) + "\n", "b.txt": "\n".join(TEXT[100:]) + "\n"})


def expected_counts():
    return collections.Counter(w for line in TEXT for w in line.split())


def offsets_of(path_lines):
    """(offset, line) per line of each file, as the text reader gives them."""
    out = []
    for lines in path_lines:
        off = 0
        for line in lines:
            out.append((off, line))
            off += len(line.encode()) + 1
    return out


@pytest.mark.timeout(120)
@pytest.mark.parametrize("buffer", [1024, 1 << 20])
def test_sum_folds_within_and_across_spills(clusters, text_input, tmp_path, buffer):
    job = mapred.Job(mapper=words, combiner=combiners.sum, reducer=combiners.sum, num_reducers=2,
                     sort_buffer_bytes=buffer, output_format="msgpack")
    result = clusters.get(2).run(job, text_input, str(tmp_path / "out"))
    assert dict(result) == expected_counts()
    m = result.counters["map"]
    assert m["combine_input_records"] == m["output_records"] == sum(expected_counts().values())
    assert m["combine_output_records"] < m["combine_input_records"]
    if buffer == 1024:
        assert m["spills"] > 0


@pytest.mark.timeout(120)
def test_reduce_fn_form_and_max_min(clusters, text_input, tmp_path):
    records = offsets_of([TEXT[:100], TEXT[100:]])
    want_max, want_min = {}, {}
    for k, v in (pair for off, line in records for pair in lengths(off, line)):
        want_max[k] = max(want_max.get(k, v), v)
        want_min[k] = min(want_min.get(k, v), v)
    for fn, want in ((combiners.max, want_max), (combiners.min, want_min)):
        job = mapred.Job(mapper=lengths, combiner=fn, reducer=fn, sort_buffer_bytes=1024, output_format="msgpack")
        assert dict(clusters.get(2).run(job, text_input, str(tmp_path / fn.name))) == want
    job = mapred.Job(mapper=words, reduce_fn=operator.add, num_reducers=3, output_format="msgpack")
    assert job.combiner == combiners.sum and combiners.fold_of(job.reducer) is operator.add
    assert dict(clusters.get(2).run(job, text_input, str(tmp_path / "add"))) == expected_counts()


@pytest.mark.timeout(120)
def test_growing_fold_values(clusters, text_input, tmp_path):
    """A fold whose value grows (list concatenation) is recounted and spilled like a list of values."""
    def tagged(offset, line):
        for word in line.split():
            yield word, [offset]

    job = mapred.Job(mapper=tagged, combiner=combiners.fold(operator.add), reducer=combiners.fold(operator.add),
                     sort_buffer_bytes=2048, output_format="msgpack")
    got = {k: sorted(v) for k, v in clusters.get(2).run(job, text_input, str(tmp_path / "out"))}
    want = collections.defaultdict(list)
    for off, line in offsets_of([TEXT[:100], TEXT[100:]]):
        for word in line.split():
            want[word].append(off)
    assert got == {k: sorted(v) for k, v in want.items()}


def test_fold_is_an_ordinary_combiner_and_reducer():
    assert list(combiners.sum("k", iter([1, 2, 3]))) == [("k", 6)]
    assert list(combiners.max("k", [3, 9, 2])) == [("k", 9)]
    assert list(combiners.min("k", [3, 9, 2])) == [("k", 2)]
    assert combiners.fold_of(combiners.sum) is operator.add
    assert combiners.fold_of(lambda k, vs: vs) is None
    import cloudpickle
    assert cloudpickle.loads(cloudpickle.dumps(combiners.sum)) is combiners.sum
    with pytest.raises(ConfigError, match="reduce_fn or a reducer"):
        mapred.Job(mapper=words, reduce_fn=operator.add, reducer=combiners.sum)
    with pytest.raises(ConfigError, match="reduce_fn must be callable"):
        mapred.Job(mapper=words, reduce_fn=3)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("combiner", [None, combiners.sum])
def test_bad_pairs_are_named_and_user_errors_stay_the_users(clusters, text_input, tmp_path, combiner):
    def not_pairs(offset, line):
        for word in line.split():
            yield word, 1, 2

    def unhashable(offset, line):
        yield [line], 1

    def returns_int(offset, line):
        return 5

    def own_type_error(offset, line):
        yield "fine", 1
        raise TypeError("the user's own mistake")

    reducer = combiner or (lambda k, vs: [(k, sum(vs))])
    for mapper, message in ((not_pairs, "mapper yielded \\(.the., 1, 2\\) \\(tuple\\); expected a \\(key, value\\) pair"),
                            (unhashable, "hashable"), (returns_int, "mapper returned int, not an iterable"),
                            (own_type_error, "the user's own mistake")):
        job = mapred.Job(mapper=mapper, combiner=combiner, reducer=reducer, max_attempts=1)
        with pytest.raises(JobFailed, match=message) as info:
            clusters.get(1).run(job, text_input, str(tmp_path / mapper.__name__))
        if mapper is own_type_error:
            assert "RecordError" not in str(info.value)


def heavy(offset, line):
    for i in range(20000):
        yield f"k{i % 50}", i


def total(key, values):
    yield key, sum(values)


@pytest.mark.timeout(120)
def test_a_heavy_record_is_spilled_within_itself(clusters, write_files, tmp_path):
    """The list buffer counts between records; a record yielding far more than the buffer holds is
    counted pair by pair (after the first), so the buffer spills inside it and stays bounded."""
    paths = write_files({"h.txt": "a\nb\nc\n"})
    job = mapred.Job(mapper=heavy, reducer=total, sort_buffer_bytes=64 << 10, output_format="msgpack")
    result = clusters.get(1).run(job, paths, str(tmp_path / "out"))
    want = collections.Counter()
    for i in range(20000):
        want[f"k{i % 50}"] += 3 * i
    assert dict(result) == want
    m = result.counters["map"]
    assert m["output_records"] == m["spilled_records"] == 60000
    assert m["spills"] > 2 * 3          # several per record, not one after each


@pytest.mark.timeout(120)
@pytest.mark.parametrize("buffer", [1024, 1 << 20])
def test_list_buffer_counts_every_pair_across_reliefs(clusters, text_input, tmp_path, buffer):
    job = mapred.Job(mapper=words, combiner=total, reducer=total, num_reducers=2, sort_buffer_bytes=buffer,
                     output_format="msgpack")
    result = clusters.get(2).run(job, text_input, str(tmp_path / "out"))
    assert dict(result) == expected_counts()
    m = result.counters["map"]
    assert m["output_records"] == sum(expected_counts().values())
    if buffer == 1024:
        assert m["spills"] > 0
