"""The job API end to end: forms of mappers, inputs, params, counters, broadcasts, caching, pipelines."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import mapred
from mapred.io.recordfile import RecordWriter

pytestmark = pytest.mark.timeout(120)


class CountWords(mapred.MRJob):
    NUM_REDUCERS = 2

    def setup(self):
        self.seen = 0

    def mapper(self, offset, line):
        self.seen += 1
        for word in line.split():
            yield word, 1

    def mapper_final(self):
        mapred.counter("probe", "lines_seen_by_instance", self.seen)
        return ()

    def combiner(self, word, counts):
        yield word, sum(counts)

    def reducer(self, word, counts):
        yield word, sum(counts)


def test_class_form_runs_with_per_task_setup(clusters, write_files, tmp_path):
    paths = write_files({"a.txt": "x y\nx\n", "b.txt": "y z\n"})
    result = clusters.get(2).run(CountWords.to_job(), paths, str(tmp_path / "out"))
    assert dict(result) == {"x": "2", "y": "2", "z": "1"}
    assert result.counters["probe"]["lines_seen_by_instance"] == 3


def test_closures_lambdas_params_and_user_counters(clusters, write_files, tmp_path):
    paths = write_files({"a.txt": "apple banana\ncherry apple\n"})
    suffix = "!"

    def mapper(offset, line):
        mapred.counter("custom", "lines")
        for word in line.split():
            if word.startswith(mapred.context().params["prefix"]):
                yield word + suffix, 1

    job = mapred.Job(mapper=mapper, reducer=lambda w, c: [(w, sum(c))], params={"prefix": "a"},
                     output_format="msgpack")
    result = clusters.get(2).run(job, paths, str(tmp_path / "out"))
    assert dict(result) == {"apple!": 2}
    assert result.counters["custom"]["lines"] == 2
    assert result.counters["map"]["input_records"] == 2
    assert result.counters["reduce"]["output_records"] == 1


def test_functions_defined_in_main_script_ship_to_executors(tmp_path):
    (tmp_path / "in.txt").write_text("a b a\n")
    script = tmp_path / "myjob.py"
    script.write_text(textwrap.dedent(f"""
        import mapred

        def mapper(offset, line):
            for w in line.split():
                yield w.upper(), 1

        def reducer(w, counts):
            yield w, sum(counts)

        result = mapred.Job(mapper=mapper, reducer=reducer).run([{str(tmp_path / 'in.txt')!r}],
                                                                 output={str(tmp_path / 'out')!r}, workers=2)
        print(sorted(result))
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[('A', '2'), ('B', '1')]"


def test_record_files_split_anywhere_read_each_record_once(clusters, tmp_path):
    path = tmp_path / "data.mpk"
    with open(path, "wb") as f:
        writer = RecordWriter(f, chunk_bytes=64)
        for i in range(500):
            writer.write(("k", i % 7), {"n": i})
        writer.close()
    job = mapred.Job(mapper=lambda k, v: [(k[1], v["n"])], reducer=lambda k, vs: [(k, sorted(vs))],
                     num_reducers=3, split_size=200, output_format="msgpack")
    result = clusters.get(2).run(job, [str(path)], str(tmp_path / "out"))
    got = dict(result)
    assert got == {r: [i for i in range(500) if i % 7 == r] for r in range(7)}
    assert result.counters["job"].get("maps_node_local", 0) > 5      # many splits of one file


def test_array_dataset_batches_broadcast_and_cache(clusters, tmp_path):
    X = np.arange(40, dtype=np.float64).reshape(20, 2)
    y = np.arange(20) % 2
    ds = mapred.from_numpy(X, y, splits=4, path=str(tmp_path / "ds")).cache()
    weights = mapred.broadcast(np.array([1.0, 10.0]))

    def score(block):
        xb, yb = block
        yield int(mapred.context().split.start), float((xb @ weights.value)[yb == 1].sum())

    job = mapred.Job(map_batch=score, reducer=lambda k, vs: [(k, sum(vs))], output_format="msgpack")
    cluster = clusters.get(2)
    first = cluster.run(job, ds, str(tmp_path / "o1"))
    second = cluster.run(job, ds, str(tmp_path / "o2"))
    expected = {s: float((X[s:e] @ [1.0, 10.0])[y[s:e] == 1].sum()) for s, e in ds.ranges}
    assert dict(first) == dict(second) == expected
    assert first.counters["map"]["input_bytes"] > 0
    assert second.counters["map"]["input_bytes"] == 0            # every split came from executor memory
    assert second.counters["map"]["cache_hits"] == 4
    assert second.counters["job"]["maps_cache_local"] == 4


def test_per_record_mapper_over_array_rows(clusters, tmp_path):
    X = np.arange(12, dtype=np.int64).reshape(6, 2)
    ds = mapred.from_numpy(X, splits=3, path=str(tmp_path / "ds"))
    job = mapred.Job(mapper=lambda row_id, row: [(int(row_id), int(row.sum()))], output_format="msgpack")
    assert sorted(clusters.get(2).run(job, ds, str(tmp_path / "o"))) == [(i, 4 * i + 1) for i in range(6)]


def test_pipeline_then_top_n(clusters, write_files, tmp_path):
    import pipeline
    paths = write_files({"a.txt": "b a c a\nb a d\n"})
    job = pipeline.job.jobs[0].then(pipeline.job.jobs[1].with_params(top=2))
    result = job.run(paths, str(tmp_path / "out"), cluster=clusters.get(2))
    assert list(result) == [("a", "3"), ("b", "2")]
    assert not os.path.exists(str(tmp_path / "out") + ".steps")
