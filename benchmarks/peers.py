"""mapred beside what a user would pick instead, on the same generated data, in one run.

    python benchmarks/peers.py [--mb 20] [--workers 2] [--repeat 2] [--jobs wc-record,grep,...]
                               [--systems mapred,pool,...] [--plot] [--tiny]

For every job, each system that is installed runs it (alternating: system A,
B, C, then A, B, C again, so a machine's slow minute hurts all of them) and
every result is checked equal to the first system's; the table gives wall
time (best of ``--repeat``), CPU seconds of the whole process tree, peak
resident memory of the tree, MB/s and the ratio to the job's reference peer
(the hand-written pool).  Start-up of long-lived services (mapred's embedded
cluster, a Spark session) is not timed; pools are started per run, as a
script would.

Jobs: ``wc-record`` (the README's per-record mapper), ``wc-tuned``
(``examples/wordcount.py``), ``grep``, ``index`` (inverted index), ``join``
(reduce-side, tagged values), ``terasort`` (``examples/terasort.py`` and a
per-record identity map), ``records`` (per-record word count over msgpack
record files), ``logreg`` and ``kmeans`` (``models`` against scikit-learn and
PySpark MLlib; the fitted models are compared by training accuracy and
inertia within a tolerance, the rest exactly).  Systems: ``mapred``, ``pool``
(hand-written ``multiprocessing.Pool``), ``spark-rdd``, ``spark-df``,
``spark-mllib``, ``dask``, ``mrjob``, ``gnu`` (coreutils), ``sklearn``;
``pip install ".[bench]"`` installs the Python ones, and a system that is
not installed is skipped with a line saying so.

``--plot`` writes PNGs into ``docs/img/`` (``--plot-dir``): throughput by
system and job, scaling with workers, and — after the MapReduce paper's
Figure 3 — a cluster job's input, shuffle and output rates over time for a
normal run, a straggler with speculation off, and a run with a worker killed,
sampled from the live counters the master keeps (``benchmarks/peers_plots.py``).
``--tiny`` runs a few hundred KB through every job (the test suite's mode).
"""
from __future__ import annotations

import argparse
import collections
import importlib.util
import itertools
import json
import multiprocessing
import operator
import os
import re
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import psutil  # noqa: E402

import mapred  # noqa: E402
import mapred.combiners  # noqa: E402
from _common import load_example, scratch, table  # noqa: E402

GREP_PATTERN = r"\bqz[a-z]*\b|^ab"


# ------------------------------------------------------------------ measuring
class Measured:
    """Wall seconds, CPU seconds of this process and every descendant, peak RSS of the tree."""

    def __init__(self, with_jvm: bool = False) -> None:
        self.me = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self.with_jvm = with_jvm       # a warm Spark JVM is a child of this process: counted for Spark only

    def _tree(self) -> list:
        try:
            tree = [self.me, *self.me.children(recursive=True)]
        except psutil.Error:
            return [self.me]
        if self.with_jvm:
            return tree
        out = []
        for p in tree:
            try:
                if p.name() != "java" and "pyspark" not in " ".join(p.cmdline()[:3]):
                    out.append(p)
            except psutil.Error:
                pass
        return out

    def _cpu_of_live(self) -> dict:
        out = {}
        for p in self._tree()[1:]:
            try:
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
            except psutil.Error:
                pass
        return out

    def _sample(self) -> None:
        while True:
            rss = 0
            for p in self._tree():
                try:
                    rss += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, rss)
            if self._stop.wait(0.05):
                return

    def run(self, fn):
        t0, live0 = os.times(), self._cpu_of_live()
        sampler = threading.Thread(target=self._sample, daemon=True)
        sampler.start()
        start = time.perf_counter()
        try:
            out = fn()
        finally:
            wall = time.perf_counter() - start
            self._stop.set()
            sampler.join()
        t1, live1 = os.times(), self._cpu_of_live()
        own = (t1.user + t1.system - t0.user - t0.system)
        reaped = (t1.children_user + t1.children_system - t0.children_user - t0.children_system)
        live = sum(c - live0.get(pid, 0.0) for pid, c in live1.items())
        gone = sum(c for pid, c in live0.items() if pid not in live1)   # counted again once reaped
        return out, wall, max(0.0, own + reaped + live - gone), self.peak


# ------------------------------------------------------------------ data
DATA_OF = {"index": {"small_text"}, "records": {"records"}, "join": {"join"}, "terasort": {"tera"},
           "logreg": set(), "kmeans": set()}
"""The generated inputs a job reads, besides the text (what ``make_data`` makes for ``--jobs``)."""


def make_data(d: str, mb: float, tiny: bool, jobs=None) -> dict:
    """The inputs of ``jobs`` (every job when None) under ``d``, generated once, seeded.

    Only what the chosen jobs read is made: at 1 GB the record file, the
    terasort rows and the join tables take minutes that a ``--jobs wc-record``
    run has no use for.
    """
    generate = _bench_module("wordcount").generate
    wanted = set().union(*(DATA_OF.get(j, {"text"}) for j in jobs)) if jobs is not None else {
        "text", "small_text", "records", "tera", "join"}
    paths = {}
    paths["text"] = os.path.join(d, "zipf.txt")
    if wanted - {"tera", "join"} and not os.path.exists(paths["text"]):
        _generate_text(generate, paths["text"], mb)
    paths["small_text"] = os.path.join(d, "zipf-small.txt")      # the index and join run on a quarter
    if wanted & {"small_text", "records"} and not os.path.exists(paths["small_text"]):
        _head(paths["text"], paths["small_text"], os.path.getsize(paths["text"]) // 4)
    paths["records"] = os.path.join(d, "lines.mpk")
    if "records" in wanted and not os.path.exists(paths["records"]):
        _records_file(paths["small_text"], paths["records"])
    paths["tera"] = os.path.join(d, "tera")
    if "tera" in wanted and not os.path.isdir(paths["tera"]):
        load_example("terasort").generate(max(2000, int(mb * 1e6 / 100 / 4)), paths["tera"], files=2)
    paths["users"], paths["events"] = os.path.join(d, "users.txt"), os.path.join(d, "events.txt")
    if "join" in wanted and not os.path.exists(paths["events"]):
        _join_tables(paths["users"], paths["events"], max(2000, int(mb * 1e6 / 40 / 4)))
    return paths


def _generate_text(generate, path: str, mb: float) -> None:
    if mb >= 1:
        generate(path, int(mb))
        return
    tmp = path + ".full"
    generate(tmp, 1)
    _head(tmp, path, int(mb * 1e6))
    os.remove(tmp)


def _head(src: str, dst: str, size: int) -> None:
    """The first ``size`` bytes of ``src``, cut back to the last whole line."""
    with open(src, "rb") as f:
        data = f.read(size)
    with open(dst, "wb") as f:
        f.write(data[:data.rfind(b"\n") + 1])


def _records_file(text: str, path: str) -> None:
    from mapred.io.recordfile import RecordWriter
    with open(text, encoding="utf-8") as f, open(path, "wb") as out:
        writer = RecordWriter(out, chunk_bytes=256 << 10)
        for i, line in enumerate(f):
            writer.write(i, line.rstrip("\n"))
        writer.close()


def _join_tables(users: str, events: str, n_events: int, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    n_users = max(100, n_events // 20)
    with open(users, "w") as f:
        for u in range(n_users):
            f.write(f"U\t{u}\tuser{u % 977}\n")
    ids = rng.integers(0, n_users + n_users // 10, size=n_events)      # some events have no user
    amounts = rng.integers(1, 1000, size=n_events)
    with open(events, "w") as f:
        for u, a in zip(ids.tolist(), amounts.tolist()):
            f.write(f"E\t{u}\t{a}\n")


# ------------------------------------------------------------------ shared kernels
def words_of(offset, line):
    """The README's per-record mapper."""
    for word in line.split():
        yield word, 1


def add_counts(word, counts):
    yield word, sum(counts)


def _line_ranges(paths, workers: int, per_worker: int = 4) -> list:
    """Line-aligned byte ranges of the files, ``per_worker`` per worker (the pools' work units)."""
    out = []
    for path in paths:
        size = os.path.getsize(path)
        chunk = max(1, -(-size // (workers * per_worker)))
        out += [(path, s, min(size, s + chunk)) for s in range(0, size, chunk)]
    return out


def _lines_of_range(path: str, start: int, end: int):
    """``(offset, line)`` of the lines starting in ``[start, end)`` (Hadoop's line rule)."""
    with open(path, "rb") as f:
        if start:
            f.seek(start - 1)
            if f.read(1) != b"\n":
                f.readline()
        off = f.tell()
        while off < end:
            line = f.readline()
            if not line:
                return
            yield off, line.decode("utf-8").rstrip("\n")
            off += len(line)


def _pool_map(fn, units, workers: int) -> list:
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return pool.map(fn, units, chunksize=1)


# wc-record ----------------------------------------------------------------------
def _wc_record_unit(unit) -> dict:
    counts: dict = {}
    get = counts.get
    for off, line in _lines_of_range(*unit):
        for w, n in words_of(off, line):          # the same generator mapper, driven by hand
            counts[w] = get(w, 0) + n
    return counts


def merge_counts(parts) -> dict:
    total: dict = {}
    for part in parts:
        for k, v in part.items():
            total[k] = total.get(k, 0) + v
    return total


def pool_wc_record(ctx) -> dict:
    return merge_counts(_pool_map(_wc_record_unit, _line_ranges([ctx.paths["text"]], ctx.workers), ctx.workers))


def mapred_wc_record(ctx, combiner=add_counts, reducer=add_counts) -> dict:
    job = mapred.Job(mapper=words_of, combiner=combiner, reducer=reducer, num_reducers=ctx.workers,
                     output_format="msgpack")
    return dict(ctx.run(job, [ctx.paths["text"]]))


def mapred_wc_fold(ctx) -> dict:
    return mapred_wc_record(ctx, mapred.combiners.sum, mapred.combiners.sum)


def spark_rdd_wc(ctx) -> dict:
    rdd = ctx.spark().sparkContext.textFile(ctx.paths["text"], ctx.workers * 4)
    return dict(rdd.flatMap(str.split).map(lambda w: (w, 1)).reduceByKey(operator.add).collect())


def spark_df_wc(ctx) -> dict:
    from pyspark.sql import functions as F
    df = ctx.spark().read.text(ctx.paths["text"])
    words = df.select(F.explode(F.split(F.col("value"), " ")).alias("w")).where(F.col("w") != "")
    return {r["w"]: r["count"] for r in words.groupBy("w").count().collect()}


def dask_wc(ctx) -> dict:
    import dask.bag as db
    bag = db.read_text(ctx.paths["text"], blocksize=max(1 << 20, os.path.getsize(ctx.paths["text"]) // (ctx.workers * 4)))
    return dict(bag.str.split().flatten().frequencies().compute(scheduler="processes", num_workers=ctx.workers))


def mrjob_wc(ctx) -> dict:
    from mrjob.examples.mr_word_freq_count import MRWordFreqCount      # [\w']+ lower-cased: the same here
    work = os.path.join(ctx.dir, "mrjob-tmp")
    job = MRWordFreqCount(args=["-r", "local", "--no-conf", "--num-cores", str(ctx.workers),
                                "--local-tmp-dir", work, ctx.paths["text"]])
    out = {}
    with job.make_runner() as runner:
        runner.run()
        for line in b"".join(runner.cat_output()).decode().splitlines():
            k, _, v = line.partition("\t")
            out[json.loads(k)] = json.loads(v)
    shutil.rmtree(work, ignore_errors=True)
    return out


def gnu_wc(ctx) -> dict:
    cmd = (f"tr -s ' ' '\\n' < {ctx.paths['text']} | LC_ALL=C sort -S 25% --parallel={ctx.workers} "
           f"| LC_ALL=C uniq -c")
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, check=True).stdout.decode()
    counts = {}
    for line in out.splitlines():
        n, _, w = line.strip().partition(" ")
        if w:
            counts[w] = int(n)
    return counts


# wc-tuned -----------------------------------------------------------------------
def mapred_wc_tuned(ctx) -> dict:
    job = load_example("wordcount").job.with_params()
    job.num_reducers, job.output_format = ctx.workers, "msgpack"
    return dict(ctx.run(job, [ctx.paths["text"]]))


def pool_wc_tuned(ctx) -> dict:
    return dict(_bench_module("wordcount").pool_wordcount(ctx.paths["text"], ctx.workers))


def _bench_module(name: str):
    """``benchmarks/<name>.py`` under a private name (``wordcount`` is also an example's name)."""
    full = f"bench_{name}"
    if full not in sys.modules:
        spec = importlib.util.spec_from_file_location(full, os.path.join(HERE, f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = module
        spec.loader.exec_module(module)
    return sys.modules[full]


# grep ---------------------------------------------------------------------------
def mapred_grep(ctx) -> list:
    job = load_example("grep").job.with_params(pattern=GREP_PATTERN)
    job.output_format = "msgpack"
    return sorted(int(k) for k, _ in ctx.run(job, [ctx.paths["text"]]))


def _grep_unit(unit) -> list:
    rx = re.compile(GREP_PATTERN)
    return [off for off, line in _lines_of_range(*unit) if rx.search(line)]


def pool_grep(ctx) -> list:
    return sorted(o for part in _pool_map(_grep_unit, _line_ranges([ctx.paths["text"]], ctx.workers), ctx.workers)
                  for o in part)


def gnu_grep(ctx) -> list:
    out = subprocess.run(["grep", "-bP", GREP_PATTERN, ctx.paths["text"]], capture_output=True,
                         env={**os.environ, "LC_ALL": "C"})
    return sorted(int(line.split(b":", 1)[0]) for line in out.stdout.splitlines())


# index --------------------------------------------------------------------------
def mapred_index(ctx) -> dict:
    job = load_example("inverted_index").job.with_params()
    job.num_reducers, job.output_format = ctx.workers, "msgpack"
    return dict(ctx.run(job, [ctx.paths["small_text"]]))


def _index_unit(unit) -> dict:
    name = os.path.basename(unit[0])
    places: dict = {}
    for off, line in _lines_of_range(*unit):
        for word in set(line.split()):
            places.setdefault(word, []).append(f"{name}:{off}")
    return places


def pool_index(ctx) -> dict:
    merged: dict = {}
    for part in _pool_map(_index_unit, _line_ranges([ctx.paths["small_text"]], ctx.workers), ctx.workers):
        for word, ps in part.items():
            merged.setdefault(word, []).extend(ps)
    order = load_example("inverted_index")._place_order
    return {w: " ".join(sorted(set(ps), key=order)) for w, ps in merged.items()}


# records (msgpack record input, per record) --------------------------------------
def words_of_record(key, line):
    for word in line.split():
        yield word, 1


def mapred_records(ctx) -> dict:
    job = mapred.Job(mapper=words_of_record, combiner=add_counts, reducer=add_counts, num_reducers=ctx.workers,
                     output_format="msgpack")
    return dict(ctx.run(job, [mapred.records(ctx.paths["records"])]))


def _records_unit(unit) -> dict:
    from mapred.io import recordfile
    path, start, end = unit
    counts: dict = {}
    get = counts.get
    with open(path, "rb") as f:
        for _, payload in recordfile.iter_chunks(f, path, start, end):
            for key, line in recordfile.iter_records(payload):
                for w, n in words_of_record(key, line):
                    counts[w] = get(w, 0) + n
    return counts


def pool_records(ctx) -> dict:
    path = ctx.paths["records"]
    size = os.path.getsize(path)
    chunk = max(1, -(-size // (ctx.workers * 4)))
    units = [(path, s, min(size, s + chunk)) for s in range(0, size, chunk)]
    return merge_counts(_pool_map(_records_unit, units, ctx.workers))


# join ---------------------------------------------------------------------------
def join_map(offset, line):
    tag, uid, value = line.split("\t")
    yield int(uid), (tag, value)


def join_reduce(uid, tagged):
    name, total, n = None, 0, 0
    for tag, value in tagged:
        if tag == "U":
            name = value
        else:
            total += int(value)
            n += 1
    if name is not None and n:
        yield uid, [name, n, total]


def mapred_join(ctx) -> dict:
    job = mapred.Job(mapper=join_map, reducer=join_reduce, num_reducers=ctx.workers, output_format="msgpack")
    return {k: tuple(v) for k, v in ctx.run(job, [ctx.paths["users"], ctx.paths["events"]])}


def _join_unit(unit) -> dict:
    groups: dict = {}
    for off, line in _lines_of_range(*unit):
        for uid, tv in join_map(off, line):
            groups.setdefault(uid, []).append(tv)
    return groups


def pool_join(ctx) -> dict:
    merged: dict = {}
    units = _line_ranges([ctx.paths["users"], ctx.paths["events"]], ctx.workers)
    for part in _pool_map(_join_unit, units, ctx.workers):
        for uid, tvs in part.items():
            merged.setdefault(uid, []).extend(tvs)
    return {uid: tuple(out) for uid, tvs in merged.items() for _, out in join_reduce(uid, tvs)}


def spark_df_join(ctx) -> dict:
    from pyspark.sql import functions as F
    spark = ctx.spark()
    schema = "tag string, uid long, value string"
    users = spark.read.csv(ctx.paths["users"], sep="\t", schema=schema).select("uid", F.col("value").alias("name"))
    events = spark.read.csv(ctx.paths["events"], sep="\t", schema=schema)
    agg = events.groupBy("uid").agg(F.count("*").alias("n"), F.sum(F.col("value").cast("long")).alias("total"))
    return {r["uid"]: (r["name"], r["n"], r["total"]) for r in users.join(agg, "uid").collect()}


# terasort -----------------------------------------------------------------------
def _tera_inputs(ctx) -> list:
    d = ctx.paths["tera"]
    return sorted(os.path.join(d, f) for f in os.listdir(d))


def _sha_of(paths) -> str:
    import hashlib
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def mapred_terasort(ctx) -> str:
    job = load_example("terasort").job.with_params()
    job.num_reducers = 2 * ctx.workers
    result = ctx.run(job, _tera_inputs(ctx), fmt=None)
    return _sha_of(sorted(result.part_files()))


def tera_identity(offset, line):
    yield line[:10], line[10:]


def tera_str_key(line: bytes) -> str:
    """The sampled key as the identity map emits it: a str (text records are decoded)."""
    return line[:10].decode("ascii")


def mapred_terasort_record(ctx) -> str:
    """The per-record identity map: a line's first 10 characters are its key (total order by range).

    The partitioner samples the keys the map emits — str, not the array
    example's bytes: with bytes boundaries every str key ranks past them all
    and lands in one reducer.
    """
    part = mapred.TotalOrderPartitioner(tera_str_key, samples=2000)
    job = mapred.Job(mapper=tera_identity, reducer=_tera_write, num_reducers=2 * ctx.workers, partitioner=part,
                     output_format="raw")
    result = ctx.run(job, _tera_inputs(ctx), fmt=None)
    return _sha_of(sorted(result.part_files()))


def _tera_write(key, rests):
    for rest in rests:
        yield None, (key + rest + "\n").encode()


def _tera_record_unit(unit) -> list:
    return [pair for off, line in _lines_of_range(*unit) for pair in tera_identity(off, line)]


def pool_terasort_record(ctx) -> str:
    """The per-record identity map's own pool: the same ``tera_identity`` per line in the workers,
    then in the parent one stable sort by key and the same ``_tera_write`` per key, written once."""
    pairs = [p for part in _pool_map(_tera_record_unit, _line_ranges(_tera_inputs(ctx), ctx.workers), ctx.workers)
             for p in part]
    pairs.sort(key=operator.itemgetter(0))
    out = os.path.join(ctx.dir, "pool-record-sorted")
    with open(out, "wb") as f:
        for key, group in itertools.groupby(pairs, key=operator.itemgetter(0)):
            f.writelines(line for _, line in _tera_write(key, [rest for _, rest in group]))
    return _sha_of([out])


def gnu_terasort(ctx) -> str:
    out = os.path.join(ctx.dir, "gnu-sorted")
    subprocess.run(["sort", f"--parallel={ctx.workers}", "-S", "25%", "-k1,1", "-s", "-o", out, *_tera_inputs(ctx)],
                   check=True, env={**os.environ, "LC_ALL": "C"})
    return _sha_of([out])


def _tera_unit(unit) -> list:
    return [line for _, line in _lines_of_range(*unit)]


def pool_terasort(ctx) -> str:
    """The pool's equivalent of the identity map: read ranges in parallel, sort by key, write once."""
    lines = [ln for part in _pool_map(_tera_unit, _line_ranges(_tera_inputs(ctx), ctx.workers), ctx.workers)
             for ln in part]
    lines.sort(key=lambda ln: ln[:10])
    out = os.path.join(ctx.dir, "pool-sorted")
    with open(out, "w") as f:
        f.writelines(ln + "\n" for ln in lines)
    return _sha_of([out])


# models -------------------------------------------------------------------------
def _classification(ctx):
    if ctx.cache.get("clf") is None:
        from sklearn.datasets import make_classification
        n = max(2000, int(ctx.mb * 5000))
        ctx.cache["clf"] = make_classification(n_samples=n, n_features=20, n_informative=10, random_state=0)
    return ctx.cache["clf"]


def mapred_logreg(ctx) -> float:
    import models
    X, y = _classification(ctx)
    clf = models.LogisticRegression()
    clf.fit(mapred.from_numpy(X, y, splits=ctx.workers * 2))
    return float(np.mean(clf.predict(X) == y))


def sklearn_logreg(ctx) -> float:
    from sklearn.linear_model import LogisticRegression
    X, y = _classification(ctx)
    return float(np.mean(LogisticRegression(max_iter=1000).fit(X, y).predict(X) == y))


def spark_mllib_logreg(ctx) -> float:
    """PySpark MLlib's L-BFGS LogisticRegression on scikit-learn's objective (C = 1), a DataFrame cached before the clock."""
    import sparkml
    X, y = _classification(ctx)
    coef, intercept, _ = sparkml.logistic(_spark_frame(ctx, "clf"), C=1.0, n_rows=len(y))
    return float(np.mean(((X @ coef + intercept) > 0) == y))


def _blobs(ctx):
    if ctx.cache.get("blobs") is None:
        from sklearn.datasets import make_blobs
        n = max(2000, int(ctx.mb * 5000))
        ctx.cache["blobs"] = make_blobs(n_samples=n, n_features=10, centers=8, cluster_std=0.5, random_state=1)
    return ctx.cache["blobs"]


def _centres_key(centres) -> tuple:
    """Centres compared as a sorted set, to one decimal (well-separated blobs: every method finds them)."""
    return tuple(sorted(tuple(np.round(c, 1)) for c in np.asarray(centres)))


def mapred_kmeans(ctx) -> tuple:
    import models
    X, _ = _blobs(ctx)
    km = models.KMeans(n_clusters=8, seed=0)
    km.fit(mapred.from_numpy(X, splits=ctx.workers * 2))
    return _inertia_bucket(X, km.cluster_centers_)


def sklearn_kmeans(ctx) -> tuple:
    from sklearn.cluster import KMeans
    X, _ = _blobs(ctx)
    return _inertia_bucket(X, KMeans(n_clusters=8, n_init=4, random_state=0).fit(X).cluster_centers_)


def spark_mllib_kmeans(ctx) -> float:
    """PySpark MLlib's KMeans (k-means|| seeding) on the same points."""
    import sparkml
    X, _ = _blobs(ctx)
    centres, _ = sparkml.kmeans(_spark_frame(ctx, "blobs"), 8, n_init=1, max_iter=50)
    return _inertia_bucket(X, centres)


def _inertia_bucket(X, centres) -> float:
    """The inertia per point (mean squared distance to the nearest centre): close when both find the blobs."""
    C = np.asarray(centres)
    d = ((X[:, None, :] - C[None, :, :]) ** 2).sum(-1).min(1)
    return float(d.mean())


def _spark_frame(ctx, name: str):
    """The job's arrays as a cached Spark DataFrame (``benchmarks/sparkml.frame``), made in ``Context.prepare``."""
    key = f"spark-{name}"
    if ctx.cache.get(key) is None:
        import sparkml
        X, y = ctx.cache[name]
        ctx.cache[key] = sparkml.frame(ctx.spark(), X, y if name == "clf" else None,
                                       os.path.join(ctx.dir, f"{name}.parquet"), ctx.workers * 2)
    return ctx.cache[key]


def agree(job: str, a, b) -> bool:
    """Whether two systems' results agree: exactly, or within a tolerance for the fitted models.

    A model's systems optimise differently (L-BFGS, SGD, Lloyd's with another
    seeding), so they are compared by what they achieve: training accuracy
    within 2 points, inertia within 5%.
    """
    if job == "logreg":
        return abs(a - b) <= 0.02
    if job == "kmeans":
        return abs(a - b) <= 0.05 * max(abs(a), abs(b))
    return a == b


# ------------------------------------------------------------------ the table of jobs
JOBS = {
    "wc-record": [("pool", pool_wc_record), ("mapred", mapred_wc_record), ("mapred-fold", mapred_wc_fold),
                  ("spark-rdd", spark_rdd_wc), ("dask", dask_wc), ("mrjob", mrjob_wc), ("gnu", gnu_wc)],
    "wc-tuned": [("pool", pool_wc_tuned), ("mapred", mapred_wc_tuned), ("spark-df", spark_df_wc)],
    "grep": [("pool", pool_grep), ("mapred", mapred_grep), ("gnu", gnu_grep)],
    "index": [("pool", pool_index), ("mapred", mapred_index)],
    "records": [("pool", pool_records), ("mapred", mapred_records)],
    "join": [("pool", pool_join), ("mapred", mapred_join), ("spark-df", spark_df_join)],
    "terasort": [("pool", pool_terasort), ("mapred", mapred_terasort), ("mapred-record", mapred_terasort_record),
                 ("pool-record", pool_terasort_record),
                 ("gnu", gnu_terasort)],
    "logreg": [("sklearn", sklearn_logreg), ("mapred", mapred_logreg), ("spark-mllib", spark_mllib_logreg)],
    "kmeans": [("sklearn", sklearn_kmeans), ("mapred", mapred_kmeans), ("spark-mllib", spark_mllib_kmeans)],
}
FORMS = {("wc-record", "mapred"): "README form: combiner = reducer = generator of (key, sum(values))",
         ("wc-record", "mapred-fold"): "combiner = reducer = mapred.combiners.sum (folded in place)",
         ("wc-record", "pool"): "the same generator mapper, driven by hand in a Pool",
         ("terasort", "mapred-record"): "per-record identity map",
         ("terasort", "pool-record"): "the same identity map and writing reducer, driven by hand in a Pool"}
VERSUS = {("terasort", "mapred-record"): "pool-record"}
"""A row measured against another row than the job's first: the per-record form against its own pool."""
"""What a row runs, where a job has more than one form of a system (printed beside the table)."""
NEEDS = {"spark-rdd": "pyspark", "spark-df": "pyspark", "spark-mllib": "pyspark", "dask": "dask", "mrjob": "mrjob", "sklearn": "sklearn"}
TINY_SKIP = {"mrjob"}     # its local runner starts a process per task: seconds even on nothing


def system_of(name: str) -> str:
    """``mapred-fold`` -> ``mapred``: what --systems selects."""
    return name.split("-")[0] if name.startswith(("mapred", "pool")) else name


def available(name: str) -> bool:
    mod = NEEDS.get(name)
    if mod is not None and importlib.util.find_spec(mod) is None:
        return False
    if name == "gnu":
        return shutil.which("sort") is not None and shutil.which("grep") is not None
    return True


def unavailable_reason(name: str) -> str:
    """Why ``available(name)`` is false, for the printed skip line."""
    if name == "gnu":
        return "GNU sort or grep is not on the PATH"
    return f"{NEEDS[name]} is not installed (pip install \".[bench]\")"


class Context:
    """What the job functions share: data paths, worker count, a warm mapred cluster, a lazy Spark session."""

    def __init__(self, d: str, paths: dict, workers: int, mb: float) -> None:
        self.dir, self.paths, self.workers, self.mb = d, paths, workers, mb
        self.cluster = mapred.LocalCluster(workers)
        self._spark = None
        self.cache: dict = {}
        self.last_result = None
        # warm the executors (imports, first job) as a long-lived cluster would be: not timed
        warm = os.path.join(d, "warm.txt")
        with open(warm, "w") as f:
            f.write("warm up\n")
        self.run(mapred.Job(mapper=words_of, combiner=add_counts, reducer=add_counts), [warm])
        self.last_result = None

    def prepare(self, job: str, spark_mllib: bool = False) -> None:
        """What a job needs before its clock starts: generated arrays, imported libraries, Spark frames."""
        if job == "logreg":
            _classification(self)
            import sklearn.linear_model  # noqa: F401
            import models  # noqa: F401
        elif job == "kmeans":
            _blobs(self)
            import sklearn.cluster  # noqa: F401
            import models  # noqa: F401
        if job in ("logreg", "kmeans") and spark_mllib:
            _spark_frame(self, "clf" if job == "logreg" else "blobs")

    def run(self, job, inputs, fmt="msgpack"):
        result = self.cluster.run(job, inputs, os.path.join(self.dir, "out"), overwrite=True)
        self.last_result = result
        return result

    def spark(self):
        if self._spark is None:
            import sparkml
            self._spark = sparkml.session(self.workers, name="peers")
        return self._spark

    def close(self) -> None:
        if self._spark is not None:
            self._spark.stop()
        self.cluster.close()


def input_mb(job: str, paths: dict) -> float:
    key = {"index": ["small_text"], "records": ["records"], "join": ["users", "events"],
           "terasort": None, "logreg": [], "kmeans": []}.get(job, ["text"])
    if key is None:
        d = paths["tera"]
        return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)) / 1e6
    return sum(os.path.getsize(paths[k]) for k in key) / 1e6


def run_all(args) -> list[dict]:
    """Every selected job and system, alternating runs; returns one row per (job, system)."""
    rows = []
    with scratch("mapred-peers-", args.dir) as d:
        paths = make_data(d, args.mb, args.tiny, args.jobs)
        ctx = Context(d, paths, args.workers, args.mb)
        try:
            for job in args.jobs:
                chosen = [(n, fn) for n, fn in JOBS[job] if (not args.systems or system_of(n) in args.systems)
                          and not (args.tiny and n in TINY_SKIP)]
                for n, _ in chosen:
                    if not available(n):
                        print(f"  {job}: {n} skipped: {unavailable_reason(n)}", flush=True)
                systems = [(n, fn) for n, fn in chosen if available(n)]
                if not systems:
                    continue
                if any(n.startswith("spark") for n, _ in systems):
                    ctx.spark()          # the session's start-up is not timed
                ctx.prepare(job, spark_mllib=any(n == "spark-mllib" for n, _ in systems))
                best: dict = {}
                reference = None
                for rep in range(args.repeat):
                    for name, fn in systems:
                        print(f"  {job}: {name} (run {rep + 1})", file=sys.stderr, flush=True)
                        out, wall, cpu, peak = Measured(name.startswith("spark")).run(lambda: fn(ctx))
                        if reference is None:
                            reference = (name, out)
                        elif not agree(job, out, reference[1]):
                            raise SystemExit(f"{job}: {name}'s result {_short(out)} differs from "
                                             f"{reference[0]}'s {_short(reference[1])}")
                        if job in ("logreg", "kmeans"):
                            print(f"  {job}: {name} result {out:.4f}", file=sys.stderr, flush=True)
                        cpus = best[name]["cpus"] if name in best else []
                        cpus.append(cpu)
                        if name not in best or wall < best[name]["wall"]:
                            best[name] = {"job": job, "system": name, "wall": wall, "cpus": cpus,
                                          "peak_mb": peak / 1e6, "mb": input_mb(job, paths)}
                        best[name]["cpu"] = min(cpus)      # the least CPU any run took: the least disturbed
                        if name.startswith("mapred") and ctx.last_result is not None:
                            best[name].setdefault("profile", ctx.last_result.task_counters)
                            ctx.last_result = None
                for name, _ in systems:
                    vs = VERSUS.get((job, name))
                    vs = vs if vs in best else systems[0][0]
                    ref_wall, ref_cpu = best[vs]["wall"], best[vs]["cpu"]
                    best[name]["ratio"] = best[name]["wall"] / ref_wall
                    best[name]["cpu_ratio"] = best[name]["cpu"] / ref_cpu if ref_cpu else float("nan")
                    best[name]["vs"] = vs
                    rows.append(best[name])
        finally:
            ctx.close()
    return rows


def _short(result) -> str:
    text = repr(result)
    return text if len(text) <= 60 else text[:57] + "..."


def print_table(rows: list[dict], args) -> None:
    print(f"peers: {args.mb} MB of Zipf text (index/join/records on a quarter), {args.workers} workers, "
          f"{os.cpu_count()} cores, best of {args.repeat} alternating runs; every result checked equal"
          " (the fitted models: accuracy within 2 points, inertia within 5%)")
    print("wall: the best run; CPU: the least CPU of any run, of the whole process tree; ratios to the first row")
    body = [(r["job"], r["system"], f"{r['wall']:.2f}", f"{r['cpu']:.2f}", f"{r['peak_mb']:.0f}",
             f"{r['mb'] / r['wall']:.1f}" if r["mb"] else "", f"{r['ratio']:.2f}x",
             f"{r['cpu_ratio']:.2f}x vs {r['vs']}") for r in rows]
    print(table(body, ("job", "system", "wall s", "CPU s", "peak MB", "MB/s", "wall ratio", "CPU ratio")))
    shown = [(key, form) for key, form in FORMS.items() if any((r["job"], r["system"]) == key for r in rows)]
    for (job, system), form in shown:
        print(f"  {job} {system}: {form}")


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=20, help="MB of generated text (the other inputs scale with it)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2, help="alternating runs of every system; the best is kept")
    ap.add_argument("--jobs", default=",".join(JOBS), help=f"comma-separated, of {','.join(JOBS)}")
    ap.add_argument("--systems", default="",
                    help="comma-separated: mapred,pool,spark-rdd,spark-df,spark-mllib,dask,mrjob,gnu,sklearn")
    ap.add_argument("--dir", default=None, help="keep generated data here and reuse it")
    ap.add_argument("--json", default=None, help="also write the rows as JSON to this file")
    ap.add_argument("--plot", nargs="?", const="throughput,scaling,rates", default="",
                    help="write PNGs into --plot-dir: all, or those named (throughput,scaling,rates)")
    ap.add_argument("--plot-dir", default=os.path.join(HERE, "..", "docs", "img"))
    ap.add_argument("--scaling", default="1,2,4",
                    help="worker counts of the scaling plot (with --plot); past the cores they are marked oversubscribed")
    ap.add_argument("--tiny", action="store_true", help="a few hundred KB through every job (tests)")
    args = ap.parse_args(argv)
    if args.tiny:
        args.mb, args.repeat = min(args.mb, 0.3), 1
    args.jobs = [j for j in args.jobs.split(",") if j]
    unknown = [j for j in args.jobs if j not in JOBS]
    if unknown:
        ap.error(f"unknown job(s) {unknown}; choose from {list(JOBS)}")
    args.systems = {s for s in args.systems.split(",") if s}
    rows = run_all(args)
    print_table(rows, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1, default=str)
    if args.plot:
        import peers_plots
        peers_plots.write_all(rows, args)
    return rows


if __name__ == "__main__":
    main()
