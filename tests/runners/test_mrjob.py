"""Unmodified mrjob scripts on mapred: output equals mrjob's own inline runner's, as sorted lines."""
import os
import subprocess
import sys

import pytest

mrjob = pytest.importorskip("mrjob")

from mrjob.examples.mr_count_lines_by_file import MRCountLinesByFile  # noqa: E402
from mrjob.examples.mr_most_used_word import MRMostUsedWord  # noqa: E402
from mrjob.examples.mr_next_word_stats import MRNextWordStats  # noqa: E402
from mrjob.examples.mr_word_freq_count import MRWordFreqCount  # noqa: E402

from mapred.errors import ConfigError  # noqa: E402
from mapred.runners import from_mrjob  # noqa: E402
from mr_counters import MRLineCounters  # noqa: E402
from mr_grep_passthru import MRGrepPassthru  # noqa: E402
from mr_pickled import MRPickled  # noqa: E402
from mr_sorted_values import MRSortedValues  # noqa: E402

import cloudpickle  # noqa: E402

for _module in ("mr_counters", "mr_grep_passthru", "mr_pickled", "mr_sorted_values"):
    cloudpickle.register_pickle_by_value(sys.modules[_module])   # the cluster's workers cannot import tests/apps

EXAMPLES = os.path.dirname(sys.modules["mrjob.examples.mr_grep"].__file__) if "mrjob.examples.mr_grep" in sys.modules \
    else os.path.dirname(__import__("mrjob.examples.mr_grep", fromlist=["x"]).__file__)


def inline_lines(job_class, args, inputs):
    """What mrjob's own inline runner writes for the same script and input, as sorted lines."""
    job = job_class(args=["-r", "inline", "--no-conf", *args, *inputs])
    with job.make_runner() as runner:
        runner.run()
        lines = b"".join(runner.cat_output()).decode("utf-8").splitlines()
        counters = runner.counters()
    return sorted(lines), counters


def mapred_lines(result):
    lines = []
    for path in result.part_files():
        with open(path, encoding="utf-8") as f:
            lines += f.read().splitlines()
    return sorted(lines)


CASES = [
    ("word frequency", MRWordFreqCount, []),
    ("most used word, stop words from FILES", MRMostUsedWord, []),
    ("most used word, --stop-words-file", MRMostUsedWord, ["--stop-words-file", "STOPWORDS"]),
    ("grep with a passthrough option", MRGrepPassthru, ["-e", r"\bsea\b|ship", "--ignore-case"]),
    ("next-word statistics", MRNextWordStats, []),
    ("counters", MRLineCounters, []),
    ("SORT_VALUES and JOBCONF reducers", MRSortedValues, []),
    ("input file from the job conf", MRCountLinesByFile, []),
]


def _args(args, tmp_path):
    if "STOPWORDS" in args:
        stop = tmp_path / "stop.txt"
        stop.write_text("the\nand\nof\na\nto\nin\ni\n")
        args = [str(stop) if a == "STOPWORDS" else a for a in args]
    return args


@pytest.mark.timeout(120)
@pytest.mark.parametrize("label,job_class,args", CASES, ids=[c[0] for c in CASES])
def test_local_runner_equals_mrjob_inline(label, job_class, args, corpus, tmp_path):
    args = _args(args, tmp_path)
    expected, _ = inline_lines(job_class, args, corpus)
    result = from_mrjob(job_class, args).run(corpus, str(tmp_path / "out"))
    assert expected, "the inline runner wrote nothing: the case tests nothing"
    assert mapred_lines(result) == expected


@pytest.mark.timeout(180)
@pytest.mark.parametrize("label,job_class,args", CASES[:6], ids=[c[0] for c in CASES[:6]])
def test_three_worker_cluster_equals_mrjob_inline(label, job_class, args, corpus, cluster3, tmp_path):
    args = _args(args, tmp_path)
    expected, _ = inline_lines(job_class, args, corpus)
    result = from_mrjob(job_class, args).run(corpus, str(tmp_path / "out"), cluster=cluster3.client())
    assert mapred_lines(result) == expected


@pytest.mark.timeout(120)
def test_counters_and_status_reach_mapred_counters(corpus, tmp_path):
    _, theirs = inline_lines(MRLineCounters, [], corpus)
    result = from_mrjob(MRLineCounters).run(corpus, str(tmp_path / "out"))
    ours = result.counters
    # mrjob reports one dict of groups per step; the one step's user counters must be ours
    assert theirs[0]["lines"] == ours["lines"]
    assert sum(ours["mrjob status"].values()) == len(mapred_lines(result))


@pytest.mark.timeout(120)
def test_mapred_run_takes_an_unmodified_script_with_its_options(corpus, tmp_path):
    script = os.path.join(EXAMPLES, "mr_most_used_word.py")
    stop = tmp_path / "stop.txt"
    stop.write_text("the\nand\nof\n")
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "mapred", "run", script, *corpus, "-o", str(out), "-q",
                           "--stop-words-file", str(stop)], capture_output=True, text=True, timeout=100)
    assert done.returncode == 0, done.stderr
    expected, _ = inline_lines(MRMostUsedWord, ["--stop-words-file", str(stop)], corpus)
    lines = sorted(line for p in sorted(os.listdir(out)) if p.startswith("part-")
                   for line in (out / p).read_text().splitlines())
    assert lines == expected


@pytest.mark.timeout(60)
def test_pickle_protocol_runs_locally_and_is_refused_on_a_cluster(corpus, cluster3, tmp_path):
    expected, _ = inline_lines(MRPickled, [], corpus)
    job = from_mrjob(MRPickled)
    assert mapred_lines(job.run(corpus, str(tmp_path / "local"))) == expected
    with pytest.raises(ConfigError, match="local runner only.*never unpickles"):
        job.run(corpus, str(tmp_path / "remote"), cluster=cluster3.client())
    assert not os.path.exists(tmp_path / "remote")


REFUSED = [
    ("mr_grep.py", ["-e", "x"], r"step 0 uses mapper_cmd \(a Hadoop Streaming shell command\)"),
    ("mr_jar_step_example.py", [], r"step 0 is a JarStep: mapred runs MRStep steps only"),
    ("mr_spark_wordcount.py", [], r"step 0 is a SparkStep: mapred runs MRStep steps only"),
    ("mr_nick_nack_input_format.py", [], r"sets HADOOP_INPUT_FORMAT .* a Hadoop feature mapred cannot honour"),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("script,args,message", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_features_give_the_documented_message(script, args, message, corpus, tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "mapred", "run", os.path.join(EXAMPLES, script), corpus[0],
                           "-o", str(out), *args], capture_output=True, text=True, timeout=50)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    import re
    assert re.search(message, done.stderr), done.stderr
    assert not out.exists()


def test_bad_script_arguments_name_the_job_and_the_parser_message():
    with pytest.raises(ConfigError, match=r"MRGrepPassthru: bad arguments .*required: -e/--expression"):
        from_mrjob(MRGrepPassthru, [])
