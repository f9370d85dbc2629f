"""Logistic regression by mini-batch SGD: mapred (cached, N workers) vs numpy vs scikit-learn.

    python benchmarks/sgd.py [--rows 2000000] [--features 50] [--workers 2] [--epochs 5]

Prints, in one run:
- load: writing the arrays as a dataset (``mapred.from_numpy``);
- first vs second pass of the same gradient job over a freshly cached
  dataset (the first reads and parses the blocks, the second finds them in
  executor memory) — goal: second at least 3x faster;
- a cached SGD pass (each split's mini-batch epoch + model averaging, as
  ``LogisticRegression(solver="sgd")`` runs it) against single-process numpy
  doing the same arithmetic over the same blocks — goal: within 1.5x;
- scikit-learn ``SGDClassifier`` epochs, and the accuracy each reaches on a
  held-out tenth — goal: mapred within 0.5 points of scikit-learn;
- mapred end to end (load + cache + train);
- the default solvers (``--defaults``): seconds for ``LogisticRegression()``
  (Newton over map/reduce passes) and ``LogisticRegression(solver="sgd")``
  (Adam, averaging, early stopping) against scikit-learn's
  ``LogisticRegression()`` to reach a validation log-loss within 0.001 of
  the optimum's (the Newton fit's), and where each ends; PySpark MLlib's
  L-BFGS ``LogisticRegression`` on the same objective beside them where
  pyspark is installed (``benchmarks/sparkml.py``, its frame cached before
  the clock).
"""
from __future__ import annotations

import argparse
import contextlib
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
from models._common import seeded_rng, sum_job, unpack  # noqa: E402
from models._logistic import sgd_block, softmax_stats  # noqa: E402
from models.synthetic import make_logistic  # noqa: E402


def gradient_job(W, b):
    """The full-batch gradient pass (as solver="gd" runs it) at fixed weights."""
    bc = mapred.broadcast(np.concatenate([W.ravel(), b]))
    d = W.shape[0]

    def stat(block):
        X, y = unpack(block)
        p = bc.value
        loss, gW, gb, c = softmax_stats(X, y, p[:d].reshape(d, 1), p[d:], False)
        return np.concatenate([gW.ravel(), gb, [loss, c, len(y)]])

    return sum_job(stat, "bench.gradient")


def numpy_sgd_pass(blocks, W, b, *, lr, batch, seed, step):
    """What one mapred SGD pass computes, in one process: every block's epoch, then the average."""
    acc_W, acc_b, n = np.zeros_like(W), np.zeros_like(b), 0
    for start, X, y in blocks:
        W1, b1, _, _ = sgd_block(X, y, W, b, lr=lr, alpha=0.0, penalty="l2", batch_size=batch,
                                 rng=seeded_rng(seed, step, start), multinomial=False)
        acc_W += len(y) * W1
        acc_b += len(y) * b1
        n += len(y)
    return acc_W / n, acc_b / n


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--features", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--splits", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--store", action="store_true",
                    help="keep the dataset in a block store (mrfs://) started for the run")
    ap.add_argument("--block-mb", type=int, default=8, help="block size of that store")
    ap.add_argument("--defaults", action="store_true",
                    help="only the default-solver rows (Newton, SVRG, the old Adam SGD, scikit-learn)")
    args = ap.parse_args(argv)

    X, y, _, _, _ = make_logistic(args.rows, args.features, seed=0, dtype=np.dtype(args.dtype))
    cut = int(0.9 * len(X))
    Xtr, ytr, Xte, yte = X[:cut], y[:cut], X[cut:], y[cut:]
    print(f"data: {cut} train + {len(X) - cut} test rows x {args.features} {args.dtype}, "
          f"{args.workers} workers, {args.splits} splits, batch {args.batch_size}")

    with contextlib.ExitStack() as stack:
        root = None
        if args.store:
            from mapred.storage.minicluster import StorageCluster
            tmp = stack.enter_context(tempfile.TemporaryDirectory())
            store = stack.enter_context(StorageCluster(tmp, datanodes=1, replication=1,
                                                       block_size=args.block_mb * 2**20))
            root = store.namenode_uri + "/bench"
            print(f"dataset in the block store at {root}")
        return run(args, Xtr, ytr, Xte, yte, root)


def run(args, Xtr, ytr, Xte, yte, root):
    """Everything timed, with the dataset written under ``root`` (mrfs://) or a local temp dir."""
    from sklearn.linear_model import SGDClassifier
    t0 = time.perf_counter()
    ds = mapred.from_numpy(Xtr, ytr, splits=args.splits, path=root and root + "/train")
    load = time.perf_counter() - t0
    cluster = mapred.LocalCluster(args.workers)
    try:
        cluster.run(sum_job(lambda b: [0.0], "bench.warmup"), mapred.from_numpy(np.zeros((4, 1)), splits=2))
        if args.defaults:
            return default_rows(ds, Xtr, ytr, Xte, yte, cluster)
        W0, b0 = np.zeros((args.features, 1)), np.zeros(1)
        cold = mapred.from_numpy(Xtr, ytr, splits=args.splits, path=root and root + "/cold").cache()
        times = []
        for _ in range(4):  # the first reads and caches; the rest find the blocks in memory
            t = time.perf_counter()
            cluster.run(gradient_job(W0, b0), cold)
            times.append(time.perf_counter() - t)
        first, second = times[0], float(np.median(times[1:]))
        blocks = [(s, Xtr[s:e], ytr[s:e]) for s, e in ds.ranges]
        softmax_stats(Xtr[:1000], ytr[:1000], W0, b0, False)  # warm numpy up, as the workers are
        t = time.perf_counter()
        softmax_stats(Xtr, ytr, W0, b0, False)
        numpy_grad = time.perf_counter() - t

        t = time.perf_counter()
        clf = models.LogisticRegression(solver="sgd", lr=args.lr, epochs=args.epochs,
                                        batch_size=args.batch_size, lr_schedule="invscaling", seed=0)
        clf.fit(ds, cluster=cluster)
        fit_time = time.perf_counter() - t
    finally:
        cluster.close()
    passes = [h["time"] for h in clf.history_]
    acc_mapred = clf.score(Xte, yte)

    W, b, np_times = W0.copy(), b0.copy(), []
    for step in range(args.epochs):
        t = time.perf_counter()
        W, b = numpy_sgd_pass(blocks, W, b, lr=args.lr / (1 + step) ** 0.5, batch=args.batch_size,
                              seed=0, step=step)
        np_times.append(time.perf_counter() - t)
    acc_numpy = float(np.mean(((Xte @ W[:, 0] + b[0]) > 0) == (yte == 1)))

    sk = SGDClassifier(loss="log_loss", random_state=0, tol=None, max_iter=args.epochs)
    t = time.perf_counter()
    sk.fit(Xtr, ytr)
    sk_time = time.perf_counter() - t
    acc_sk = sk.score(Xte, yte)

    cached_pass = float(np.median(passes[1:] if len(passes) > 1 else passes))
    numpy_pass = float(np.median(np_times))
    print(f"load (from_numpy write)           {load:8.3f} s")
    print(f"gradient pass: first (read+cache) {first:8.3f} s   later (cached, median) {second:8.3f} s   "
          f"ratio {first / second:6.1f}x  (goal >= 3x)   numpy same pass {numpy_grad:.3f} s")
    print(f"SGD pass: mapred cached (median)  {cached_pass:8.3f} s   numpy {numpy_pass:8.3f} s   "
          f"ratio {cached_pass / numpy_pass:6.2f}x  (goal <= 1.5x)")
    print(f"scikit-learn SGDClassifier        {sk_time / args.epochs:8.3f} s per epoch")
    print(f"accuracy: mapred {acc_mapred:.4f}  numpy {acc_numpy:.4f}  scikit-learn {acc_sk:.4f}  "
          f"(mapred - sklearn {100 * (acc_mapred - acc_sk):+.2f} points; goal >= -0.5)")
    print(f"mapred end to end (load + scan/cache + {args.epochs} passes): {load + fit_time:.2f} s")
    return {"load": load, "first": first, "second": second, "cached_pass": cached_pass,
            "numpy_pass": numpy_pass, "sk_epoch": sk_time / args.epochs, "acc_mapred": acc_mapred,
            "acc_numpy": acc_numpy, "acc_sklearn": acc_sk, "end_to_end": load + fit_time}


def log_loss(p1, y) -> float:
    p1 = np.clip(p1, 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p1) + (1 - y) * np.log(1 - p1)))


def default_rows(ds, Xtr, ytr, Xte, yte, cluster) -> dict:
    """Defaults against defaults: seconds to fit and the validation loss each reaches."""
    from sklearn.linear_model import LogisticRegression
    rows = {}
    for name, make in [("mapred LogisticRegression() [newton]", lambda: models.LogisticRegression()),
                       ("mapred LogisticRegression(solver='sgd') [svrg]",
                        lambda: models.LogisticRegression(solver="sgd")),
                       ("mapred solver='sgd', lr_schedule='adam'",
                        lambda: models.LogisticRegression(solver="sgd", lr_schedule="adam"))]:
        t = time.perf_counter()
        clf = make().fit(ds, cluster=cluster)
        rows[name] = (time.perf_counter() - t, log_loss(clf.predict_proba(Xte)[:, 1], yte),
                      clf.score(Xte, yte), len(clf.history_))
    t = time.perf_counter()
    sk = LogisticRegression().fit(Xtr, ytr)
    rows["scikit-learn LogisticRegression()"] = (time.perf_counter() - t,
                                                 log_loss(sk.predict_proba(Xte)[:, 1], yte),
                                                 sk.score(Xte, yte), int(sk.n_iter_[0]))
    if sparkml.installed():
        spark = sparkml.session(cluster.size)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                df = sparkml.frame(spark, Xtr, ytr, os.path.join(tmp, "train.parquet"), 2 * cluster.size)
                t = time.perf_counter()
                coef, intercept, iters = sparkml.logistic(df, C=1.0, n_rows=len(Xtr))
                secs = time.perf_counter() - t
        finally:
            spark.stop()
        p1 = 1 / (1 + np.exp(-(Xte @ coef + intercept)))
        rows["PySpark MLlib LogisticRegression [L-BFGS]"] = (secs, log_loss(p1, yte),
                                                             float(np.mean((p1 > 0.5) == (yte == 1))), iters)
    else:
        print("PySpark MLlib: skipped (pyspark is not installed; pip install \".[bench]\")")
    target = rows["mapred LogisticRegression() [newton]"][1] + 1e-3
    print(f"target validation log-loss: {target:.5f} (the Newton optimum's + 0.001)")
    for name, (secs, loss, acc, passes) in rows.items():
        hit = "reached" if loss <= target else "NOT reached"
        print(f"{name:42s} {secs:8.2f} s  val loss {loss:.5f} ({hit})  accuracy {acc:.4f}  "
              f"passes/iters {passes}")
    return rows


if __name__ == "__main__":
    main()
