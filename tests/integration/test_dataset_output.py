"""Jobs that write array datasets: parsed on the cluster, never gathered in the driver."""
import numpy as np
import pytest

import mapred
from mapred.errors import InputError, JobFailed

pytestmark = pytest.mark.timeout(120)


def parse_rows(lines):
    rows = np.array([[float(x) for x in line.split(",")] for line in lines if line], dtype=np.float64)
    if len(rows):
        yield None, (rows[:, :-1], rows[:, -1].astype(np.int64))


def by_label(offset, line):
    if line:
        *xs, label = line.split(",")
        yield int(label), np.array([[float(x) for x in xs]])


def stack(label, blocks):
    rows = np.concatenate(list(blocks))
    yield label, (rows, np.full(len(rows), label))


def block_sums(block):
    X, y = block
    yield "sum", (float(X.sum()), int(y.sum()), len(y))


def add3(key, values):
    total = [0.0, 0, 0]
    for s, t, n in values:
        total[0] += s
        total[1] += t
        total[2] += n
    yield key, tuple(total)


def write_csv(path, n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 100, size=(n, 3)).astype(float)
    y = rng.integers(0, 2, size=n)
    path.write_text("".join(",".join(str(v) for v in (*x, t)) + "\n" for x, t in zip(X, y)))
    return X, y


def test_map_only_job_writes_a_dataset_that_feeds_the_next_job(clusters, tmp_path):
    X, y = write_csv(tmp_path / "in.csv", 2000)
    parse = mapred.Job(map_batch=parse_rows, output_format="dataset", split_size=4000, input_format="text")
    result = clusters.get(2).run(parse, [str(tmp_path / "in.csv")], str(tmp_path / "ds"))
    ds = result.dataset()
    assert ds.num_rows == 2000 and len(ds.parts) > 3                  # one part per map task
    Xd, yd = ds.to_numpy()
    assert np.array_equal(Xd, X) and np.array_equal(yd, y)           # rows in input order
    again = mapred.load_dataset(str(tmp_path / "ds"), splits=5)      # splits may cross parts
    total = clusters.get(2).run(mapred.Job(map_batch=block_sums, reducer=add3, output_format="msgpack"),
                                again, str(tmp_path / "sums"))
    assert dict(total)["sum"] == (float(X.sum()), int(y.sum()), 2000)
    with pytest.raises(InputError, match="result.dataset"):
        list(result)


def test_reducers_write_dataset_parts_in_key_order(clusters, tmp_path):
    X, y = write_csv(tmp_path / "in.csv", 300, seed=3)
    job = mapred.Job(mapper=by_label, reducer=stack, num_reducers=1, output_format="dataset", input_format="text")
    ds = clusters.get(2).run(job, [str(tmp_path / "in.csv")], str(tmp_path / "ds")).dataset()
    Xd, yd = ds.to_numpy()
    assert list(yd) == sorted(y)
    assert sorted(map(tuple, Xd)) == sorted(map(tuple, X))


def test_a_value_that_is_not_arrays_is_a_clear_error(clusters, tmp_path):
    write_csv(tmp_path / "in.csv", 10)
    job = mapred.Job(mapper=lambda off, line: [(off, line)], output_format="dataset", input_format="text")
    with pytest.raises(JobFailed, match="dataset output takes numpy arrays"):
        clusters.get(1).run(job, [str(tmp_path / "in.csv")], str(tmp_path / "ds"))
