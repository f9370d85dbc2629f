"""mapred jobs on PySpark (local mode, started here): output equal to mapred's local runner's."""
import importlib.util
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

pytest.importorskip("pyspark")

import cloudpickle  # noqa: E402
import numpy as np  # noqa: E402

import mapred  # noqa: E402
from mapred.errors import JobFailed  # noqa: E402
from mapred.testing import assert_matches_reference, text_strategy, write_text_files  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def spark():
    """A local-mode SparkContext with two cores; its JVM is stopped and killed by pid afterwards."""
    import psutil
    from mapred.runners.spark import spark_context
    sc = spark_context("local[2]")
    sc.setLogLevel("ERROR")
    gateway = sc._gateway
    jvm = psutil.Process(gateway.proc.pid)
    try:
        yield sc
    finally:
        sc.stop()
        gateway.shutdown()
        for proc in [*jvm.children(recursive=True), jvm]:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass


def example(name):
    spec = importlib.util.spec_from_file_location(f"{name}_example", os.path.join(ROOT, "examples", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    cloudpickle.register_pickle_by_value(module)
    return module


def text_inputs(tmp_path, n_files=3):
    words = "the quick brown fox jumps over the lazy dog and the map reduce engine counts every word".split()
    paths = []
    for f in range(n_files):
        lines = [" ".join(words[(f * 7 + i * j) % len(words)] for j in range(1, 9)) for i in range(400)]
        path = tmp_path / f"in{f}.txt"
        path.write_text("\n".join(lines) + "\n")
        paths.append(str(path))
    return paths


def pairs(result):
    return sorted(result)


@pytest.mark.parametrize("name,params", [("wordcount", {}), ("grep", {"pattern": "fox|dog"}),
                                         ("inverted_index", {}), ("pipeline", {"top": 5})])
def test_examples_equal_the_local_runner(spark, tmp_path, name, params):
    job = example(name).job
    job = job.with_params(**params) if isinstance(job, mapred.Job) else mapred.Pipeline(
        [step.with_params(**params) for step in job.jobs])
    inputs = text_inputs(tmp_path)
    on_spark = job.run(inputs, str(tmp_path / "spark"), runner="spark")
    local = job.run(inputs, str(tmp_path / "local"))
    assert pairs(on_spark) == pairs(local) and pairs(local)
    assert os.path.exists(tmp_path / "spark" / "_SUCCESS")
    final = job if isinstance(job, mapred.Job) else job.jobs[-1]
    parts = [p for p in os.listdir(tmp_path / "spark") if p.startswith("part-")]
    assert len(parts) == max(1, final.num_reducers) or final.map_only


def test_terasort_example_equals_the_local_runner(spark, tmp_path):
    ts = example("terasort")
    ts.generate(4000, str(tmp_path / "in"), seed=3, files=3)
    inputs = sorted(str(p) for p in (tmp_path / "in").iterdir())
    job = mapred.Job(map_batch=ts.map_records, reduce_batch=ts.write_sorted, input_mode="bytes",
                     output_format="raw", partitioner=mapred.TotalOrderPartitioner(ts.record_key, samples=300),
                     num_reducers=3, split_size=20_000)
    job.run(inputs, str(tmp_path / "spark"), runner="spark")
    job.run(inputs, str(tmp_path / "local"))

    def joined(folder):
        names = sorted(p for p in os.listdir(folder) if p.startswith("part-"))
        return b"".join(open(os.path.join(folder, n), "rb").read() for n in names)
    got = joined(tmp_path / "spark")
    assert got == joined(tmp_path / "local")
    records = [got[i:i + 100] for i in range(0, len(got), 100)]
    assert records == sorted(records) and len(records) == 4000


def per_record(offset, line):
    for word in line.split():
        yield word, 1


def add(word, counts):
    yield word, sum(counts)


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(files=st.lists(text_strategy(), min_size=1, max_size=3), split_size=st.integers(16, 400),
       reducers=st.integers(1, 4), combine=st.booleans(), buffer=st.sampled_from([256, 1 << 20]))
def test_property_spark_runner_equals_the_reference(spark, tmp_path_factory, files, split_size, reducers,
                                                    combine, buffer):
    folder = tmp_path_factory.mktemp("prop")
    paths = write_text_files(folder, files)
    job = mapred.Job(mapper=per_record, combiner=add if combine else None, reducer=add, num_reducers=reducers,
                     split_size=split_size, sort_buffer_bytes=buffer)
    result = job.run(paths, str(folder / "out"), runner="spark")
    assert_matches_reference(job, paths, result)


def counting(offset, line):
    mapred.counter("lines", "long" if len(line) > 40 else "short")
    yield len(line.split()), 1


def test_counters_come_back_through_accumulators(spark, tmp_path):
    job = mapred.Job(mapper=counting, combiner=add, reducer=add, num_reducers=2)
    inputs = text_inputs(tmp_path)
    on_spark = job.run(inputs, str(tmp_path / "spark"), runner="spark")
    local = job.run(inputs, str(tmp_path / "local"))
    assert on_spark.counters["lines"] == local.counters["lines"]
    assert on_spark.counters["map"]["input_records"] == 1200
    assert on_spark.counters["reduce"]["output_records"] == local.counters["reduce"]["output_records"]


def raises_at_line_7(offset, line):
    if line.startswith("boom"):
        raise ValueError(f"bad line at {offset}")
    yield line, 1


def test_a_failing_mapper_fails_the_job_with_mapreds_report_and_leaves_no_output(spark, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("fine\n" * 6 + "boom\n" + "fine\n")
    job = mapred.Job(mapper=raises_at_line_7, reducer=add)
    with pytest.raises(JobFailed, match=r"failed on Spark: task .*-m-00000.*ValueError: bad line at 30"):
        job.run([str(path)], str(tmp_path / "out"), runner="spark")
    assert not os.path.exists(tmp_path / "out")


def test_mapred_run_with_runner_spark(tmp_path):
    inputs = text_inputs(tmp_path, 2)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "mapred", "run", os.path.join(ROOT, "examples", "wordcount.py"),
                           *inputs, "-o", str(out), "--runner", "spark", "--spark-master", "local[1]", "-q"],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    local = example("wordcount").job.run(inputs, str(tmp_path / "local"))
    lines = sorted(line for p in os.listdir(out) if p.startswith("part-")
                   for line in (out / p).read_text().splitlines())
    assert lines == sorted(f"{k}\t{v}" for k, v in local)


def test_mrfs_input_and_output_go_through_mapreds_client_on_the_executors(spark, tmp_path):
    from mapred.storage.minicluster import StorageCluster
    inputs = text_inputs(tmp_path, 2)
    with StorageCluster(str(tmp_path / "store"), datanodes=2, replication=2, dead_timeout=3.0) as store:
        for path in inputs:
            with open(path, "rb") as src, mapred.open(f"{store.namenode_uri}/in/{os.path.basename(path)}", "wb") as dst:
                dst.write(src.read())
        job = example("wordcount").job
        out = f"{store.namenode_uri}/out"
        on_spark = job.run([f"{store.namenode_uri}/in"], out, runner="spark")
        assert pairs(on_spark) == pairs(job.run(inputs, str(tmp_path / "local")))
        assert store.client().exists("/out/_SUCCESS")


# The model examples drive many jobs each through the models API; with models.engine(runner="spark")
# (what their --runner spark does) every one of those jobs runs on Spark.  Small sizes and capped
# passes keep the Spark side (a few seconds a job on a loaded 2-core box) to a minute or two.
MODEL_EXAMPLES = {
    "logreg": ["--rows", "3000", "--features", "5", "--splits", "2", "--epochs", "2"],
    "kmeans": ["--rows", "2000", "--features", "3", "--k", "3", "--splits", "2", "--n-init", "1",
               "--max-iter", "4"],
    "als": ["--users", "60", "--items", "40", "--density", "0.3", "--iterations", "2"],
    "text_classify": ["--docs", "300", "--epochs", "2"],
}


def model_state(model):
    """The arrays that make a fitted model what it is."""
    names = ("coef_", "intercept_", "cluster_centers_", "user_factors_", "item_factors_",
             "feature_log_prob_", "class_log_prior_")
    return {n: np.asarray(getattr(model, n)) for n in names if hasattr(model, n)}


def fitted_models(name, out):
    if name == "logreg":
        return out[2]
    if name == "text_classify":
        return out[1]
    return out if isinstance(out, dict) else {"model": out}


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", sorted(MODEL_EXAMPLES))
def test_model_examples_on_spark_equal_the_local_runner(spark, name):
    import models
    module = example(name)
    on_spark = fitted_models(name, module.main(MODEL_EXAMPLES[name] + ["--runner", "spark"]))
    local = fitted_models(name, module.main(MODEL_EXAMPLES[name]))
    assert sorted(on_spark) == sorted(local) and local
    for key, model in local.items():
        if key == "async":
            # asynchronous SGD is not deterministic on any runner (pushes interleave as tasks run):
            # both runs reach the same accuracy, not the same bits
            X, y, *_ = models.synthetic.make_logistic(3000, 5, seed=0)
            assert abs(on_spark[key].score(X, y) - model.score(X, y)) <= 0.01
            continue
        mine, theirs = model_state(on_spark[key]), model_state(model)
        assert mine and sorted(mine) == sorted(theirs), key
        for attr in theirs:   # the same jobs, summed in the same order up to float rounding
            np.testing.assert_allclose(mine[attr], theirs[attr], rtol=1e-7, atol=1e-10, err_msg=f"{key}.{attr}")
