"""The runners at mapred's edges, side by side in one run.

    python benchmarks/runners.py [--mb 200] [--workers 2] [--repeat 1]

1. An unmodified mrjob word-frequency script (mrjob's own ``mr_word_freq_count``)
   through mrjob's local runner (``-r local``: subprocesses and files, the way
   mrjob runs without Hadoop), through mapred's local runner, and through
   mapred on a ``--workers``-worker cluster.
2. ``examples/wordcount.py`` on mapred's local runner, on the Spark runner
   (PySpark local mode, ``local[--workers]``), and PySpark's own
   ``textFile().flatMap().map().reduceByKey()`` on the same data.

Every result is checked equal to the first of its group.  Cluster and Spark
start-up are not timed (both are long-lived services); each timing is the
best of ``--repeat`` runs.  Needs ``pip install ".[mrjob,spark]"`` and Java.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _common import load_example, scratch, table, timed  # noqa: E402

import mapred  # noqa: E402


def generate(path: str, mb: int) -> None:
    from wordcount import generate as gen
    gen(path, mb)


def counts_of_mrjob_lines(lines) -> collections.Counter:
    out = collections.Counter()
    for line in lines:
        key, _, value = line.partition("\t")
        out[json.loads(key)] = json.loads(value)
    return out


def read_parts(folder: str) -> list[str]:
    lines = []
    for name in sorted(os.listdir(folder)):
        if name.startswith("part-"):
            with open(os.path.join(folder, name), encoding="utf-8", errors="surrogateescape") as f:
                lines += f.read().splitlines()
    return lines


def mrjob_local(path: str, workers: int, work: str) -> collections.Counter:
    from mrjob.examples.mr_word_freq_count import MRWordFreqCount
    job = MRWordFreqCount(args=["-r", "local", "--no-conf", "--num-cores", str(workers),
                                "--local-tmp-dir", work, path])
    with job.make_runner() as runner:
        runner.run()
        return counts_of_mrjob_lines(b"".join(runner.cat_output()).decode("utf-8").splitlines())


def mapred_mrjob(path: str, out: str, cluster=None) -> collections.Counter:
    from mrjob.examples.mr_word_freq_count import MRWordFreqCount
    result = mapred.from_mrjob(MRWordFreqCount).run([path], out, overwrite=True, cluster=cluster)
    return counts_of_mrjob_lines(read_parts(result.path))


def wordcount_counts(result) -> collections.Counter:
    return collections.Counter({k: int(v) for k, v in result})


def pyspark_reduce_by_key(sc, path: str) -> collections.Counter:
    words = sc.textFile(path).flatMap(str.split).map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b)
    return collections.Counter(dict(words.collect()))


def best(repeat: int, fn, *args):
    results = [timed(fn, *args) for _ in range(repeat)]
    return results[0][0], min(t for _, t in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=200, help="size of the generated text (MB)")
    parser.add_argument("--workers", type=int, default=2, help="processes for every runner")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each, best kept")
    args = parser.parse_args()
    from mapred.runtime.procs import Cluster
    from mapred.runners.spark import spark_context
    wordcount = load_example("wordcount")
    with scratch("mapred-bench-runners-") as d:
        path = os.path.join(d, "input.txt")
        generate(path, args.mb)
        rows = []
        print(f"generated {args.mb} MB; mrjob word frequency ...", file=sys.stderr)
        ref, t_mrjob = best(args.repeat, mrjob_local, path, args.workers, os.path.join(d, "mrjob-tmp"))
        got, t_local = best(args.repeat, mapred_mrjob, path, os.path.join(d, "o1"))
        assert got == ref, "mapred's local runner differs from mrjob's"
        with Cluster(os.path.join(d, "cluster"), workers=args.workers, slots=1) as cluster:
            got, t_cluster = best(args.repeat, mapred_mrjob, path, os.path.join(d, "o2"), cluster.client())
        assert got == ref, "mapred's cluster differs from mrjob's"
        rows += [("mr_word_freq_count.py", "mrjob -r local", f"{t_mrjob:.2f}", "1.00"),
                 ("", "mapred local runner", f"{t_local:.2f}", f"{t_local / t_mrjob:.2f}"),
                 ("", f"mapred cluster ({args.workers} workers)", f"{t_cluster:.2f}", f"{t_cluster / t_mrjob:.2f}")]
        print("examples/wordcount.py: mapred, Spark runner, PySpark ...", file=sys.stderr)
        sc = spark_context(f"local[{args.workers}]")
        sc.setLogLevel("ERROR")
        try:
            job = wordcount.job
            ref, t_wc = best(args.repeat, lambda: wordcount_counts(job.run([path], os.path.join(d, "o3"),
                                                                            overwrite=True, workers=args.workers)))
            got, t_spark = best(args.repeat, lambda: wordcount_counts(job.run([path], os.path.join(d, "o4"),
                                                                               overwrite=True, runner="spark")))
            assert got == ref, "the Spark runner differs from the local runner"
            got, t_rbk = best(args.repeat, pyspark_reduce_by_key, sc, path)
            assert got == ref, "PySpark's reduceByKey differs from mapred"
        finally:
            sc.stop()
        rows += [("examples/wordcount.py", "mapred local runner", f"{t_wc:.2f}", "1.00"),
                 ("", "mapred on Spark (runner='spark')", f"{t_spark:.2f}", f"{t_spark / t_wc:.2f}"),
                 ("", "PySpark textFile/flatMap/reduceByKey", f"{t_rbk:.2f}", f"{t_rbk / t_wc:.2f}")]
    print(table(rows, ("job", "runner", "seconds", "ratio to first")))


if __name__ == "__main__":
    main()
