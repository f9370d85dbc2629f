"""k-means Lloyd iterations: mapred (cached, N workers) vs numpy vs scikit-learn, same start.

    python benchmarks/kmeans.py [--rows 2000000] [--features 50] [--k 10] [--workers 2]

All three start from the same centroids (k rows drawn with a fixed seed) and
run the same number of Lloyd iterations; the script prints per-iteration
times, the ratio of a cached mapred pass to single-process numpy doing the
same arithmetic over the same blocks (goal: within 1.5x), the first (read +
cache) against the second pass (goal: 3x), and the inertia each reaches.

``--n-init N`` prints the n_init rows instead: mapred ``KMeans(k, n_init=N)``
(every init in the same Lloyd passes) against ``n_init=1`` (what N inits
cost over one), scikit-learn ``KMeans(k, n_init=N)`` and, where pyspark is
installed, PySpark MLlib's ``KMeans`` best of N seeds (``benchmarks/sparkml.py``;
MLlib has no ``n_init``): seconds and inertia.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

# one BLAS thread per process: the executors are one per core already, and threaded BLAS in
# several processes on few cores spins; the numpy baseline gets the same single thread.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mapred  # noqa: E402
import models  # noqa: E402
import sparkml  # noqa: E402  (benchmarks/, beside this file)
from models._common import Runner  # noqa: E402
from models.kmeans import farthest, lloyd_stats, sq_distances  # noqa: E402
from models.synthetic import make_blobs  # noqa: E402


def numpy_lloyd(blocks, C):
    """One Lloyd pass in one process over the same blocks: the same sums, counts and re-seeding."""
    k, d = C.shape
    sums, counts, inertia = np.zeros((k, d)), np.zeros(k), 0.0
    far_d, far_x = [], []
    for X in blocks:
        s, c, near, _ = lloyd_stats(X, C)
        sums += s
        counts += c
        inertia += near.sum()
        top = farthest(near, k)
        far_d.append(near[top])
        far_x.append(X[top])
    new = C.copy()
    full = counts > 0
    new[full] = sums[full] / counts[full, None]
    order = np.argsort(-np.concatenate(far_d), kind="stable")
    for j, i in zip(np.nonzero(~full)[0], order):  # empty clusters: the farthest points
        new[j] = np.vstack(far_x)[i]
    return new, inertia


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--features", type=int, default=50)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--splits", type=int, default=8)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--n-init", type=int, default=0, help="run the n_init rows with this many inits")
    args = ap.parse_args(argv)
    if args.n_init:
        return n_init_rows(args)
    from sklearn.cluster import KMeans as SkKMeans

    X, _, _ = make_blobs(args.rows, args.features, args.k, seed=0, spread=4.0)
    init = X[np.random.default_rng(1).choice(len(X), args.k, replace=False)]
    print(f"data: {args.rows} x {args.features} float64, k={args.k}, {args.iterations} iterations, "
          f"{args.workers} workers, {args.splits} splits")
    t = time.perf_counter()
    ds = mapred.from_numpy(X, splits=args.splits)
    load = time.perf_counter() - t

    cluster = mapred.LocalCluster(args.workers)
    try:
        cluster.run(mapred.Job(map_batch=lambda b: iter(()), output_format="msgpack"),
                    mapred.from_numpy(np.zeros((4, 1)), splits=2))  # start the executors
        km = models.KMeans(args.k, init=init, max_iter=args.iterations, tol=0.0)
        t = time.perf_counter()
        km.fit(ds, cluster=cluster)
        fit_time = time.perf_counter() - t
        cold = models.Data(mapred.from_numpy(X, splits=args.splits).cache(), args.features, False, False)
        runner = Runner(cluster=cluster)  # a fresh dataset id: no executor has its blocks yet
        times = []
        for step in range(4):  # the first reads and caches; the rest find the blocks in memory
            t = time.perf_counter()
            km._lloyd(cold, init[None], runner, step)
            times.append(time.perf_counter() - t)
        first, second = times[0], float(np.median(times[1:]))
    finally:
        cluster.close()
    passes = [h["time"] for h in km.history_]

    blocks = [X[s:e] for s, e in ds.ranges]
    C, np_times = init.copy(), []
    for _ in range(km.n_iter_):
        t = time.perf_counter()
        C, _ = numpy_lloyd(blocks, C)
        np_times.append(time.perf_counter() - t)
    np_inertia = float(sq_distances(X, C).min(axis=1).sum())

    t = time.perf_counter()
    sk = SkKMeans(args.k, init=init, n_init=1, max_iter=km.n_iter_, tol=0.0, algorithm="lloyd").fit(X)
    sk_time = time.perf_counter() - t

    cached = float(np.median(passes[1:] if len(passes) > 1 else passes))
    numpy_pass = float(np.median(np_times))
    print(f"load (from_numpy write)           {load:8.3f} s")
    print(f"Lloyd pass: first (read+cache)    {first:8.3f} s   later (cached, median) {second:8.3f} s   "
          f"ratio {first / second:6.1f}x  (goal >= 3x)")
    print(f"Lloyd pass: mapred cached (median){cached:8.3f} s   numpy {numpy_pass:8.3f} s   "
          f"ratio {cached / numpy_pass:6.2f}x  (goal <= 1.5x)")
    print(f"scikit-learn KMeans (lloyd)       {sk_time / max(sk.n_iter_, 1):8.3f} s per iteration")
    print(f"inertia: mapred {km.inertia_:.6g}  numpy {np_inertia:.6g}  scikit-learn {sk.inertia_:.6g}  "
          f"(mapred / sklearn - 1 = {km.inertia_ / sk.inertia_ - 1:+.2e})")
    print(f"mapred end to end (load + fit, {km.n_iter_} iterations): {load + fit_time:.2f} s")
    return {"load": load, "first": first, "second": second, "cached_pass": cached,
            "numpy_pass": numpy_pass, "sk_iter": sk_time / max(sk.n_iter_, 1),
            "inertia": km.inertia_, "sk_inertia": sk.inertia_}


def n_init_rows(args) -> dict:
    """mapred KMeans(n_init=N) vs n_init=1 vs scikit-learn KMeans(n_init=N), default seeding."""
    from sklearn.cluster import KMeans as SkKMeans
    X, _, _ = make_blobs(args.rows, args.features, args.k, seed=0, spread=4.0)
    print(f"data: {args.rows} x {args.features} float64, k={args.k}, n_init={args.n_init}, "
          f"{args.workers} workers, {args.splits} splits")
    ds = mapred.from_numpy(X, splits=args.splits)
    out = {}
    cluster = mapred.LocalCluster(args.workers)
    try:
        cluster.run(mapred.Job(map_batch=lambda b: iter(()), output_format="msgpack"),
                    mapred.from_numpy(np.zeros((4, 1)), splits=2))  # start the executors
        for n_init in (1, args.n_init):
            t = time.perf_counter()
            km = models.KMeans(args.k, n_init=n_init).fit(ds, cluster=cluster)
            out[f"mapred n_init={n_init}"] = (time.perf_counter() - t, km.inertia_, len(km.history_))
    finally:
        cluster.close()
    t = time.perf_counter()
    sk = SkKMeans(args.k, n_init=args.n_init, random_state=0).fit(X)
    out[f"scikit-learn n_init={args.n_init}"] = (time.perf_counter() - t, sk.inertia_, sk.n_iter_)
    if sparkml.installed():
        spark = sparkml.session(args.workers)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                df = sparkml.frame(spark, X, None, os.path.join(tmp, "points.parquet"), args.splits)
                t = time.perf_counter()
                _, cost = sparkml.kmeans(df, args.k, n_init=args.n_init)
                out[f"PySpark MLlib best of {args.n_init} seeds"] = (time.perf_counter() - t, cost, "-")
        finally:
            spark.stop()
    else:
        print("PySpark MLlib: skipped (pyspark is not installed; pip install \".[bench]\")")
    for name, (secs, inertia, passes) in out.items():
        print(f"{name:28s} {secs:8.2f} s   inertia {inertia:.6g}   Lloyd passes {passes}")
    one, many = out["mapred n_init=1"][0], out[f"mapred n_init={args.n_init}"][0]
    print(f"n_init={args.n_init} costs {many / one:.2f}x one init (separate fits would cost ~{args.n_init}x)")
    return out


if __name__ == "__main__":
    main()
