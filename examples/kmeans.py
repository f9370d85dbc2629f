"""k-means on generated blobs with both initialisations.

    python examples/kmeans.py [--rows 200000] [--features 10] [--k 8] [--workers 2] [--runner spark]

Lloyd iterations are jobs over a cached dataset: map assigns a block's points
and emits per-centroid sums and counts, reduce adds them, the driver divides.
"""
import argparse
import tempfile
import time

import numpy as np

import mapred
import models
from models.synthetic import make_blobs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--features", type=int, default=10)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--splits", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-init", type=int, default=4)
    ap.add_argument("--max-iter", type=int, default=300)
    ap.add_argument("--runner", choices=["local", "spark"], default="local",
                    help="run every job of the models on mapred's executors or on Spark")
    ap.add_argument("--spark-master", default=None, help="Spark master URL (default: local[*])")
    args = ap.parse_args(argv)
    with models.engine(runner=args.runner, spark_master=args.spark_master):
        return run(args)


def run(args):

    X, _, centers = make_blobs(args.rows, args.features, args.k, seed=args.seed)
    ds = mapred.from_numpy(X, splits=args.splits)
    out = {}
    for init in ("k-means++", "k-means||"):
        started = time.perf_counter()
        km = models.KMeans(args.k, init=init, seed=args.seed, n_init=args.n_init,
                           max_iter=args.max_iter).fit(ds, workers=args.workers)
        took = time.perf_counter() - started
        gap = np.sqrt(((centers[:, None] - km.cluster_centers_[None]) ** 2).sum(axis=2)).min(axis=1).max()
        print(f"{init:>9}: inertia {km.inertia_:.1f} ({km.inertia_ / len(X):.3f} per point), "
              f"{km.n_iter_} iterations, farthest planted centre {gap:.3f} away, {took:.2f}s")
        out[init] = km
    with tempfile.TemporaryDirectory() as tmp:
        km.save(tmp + "/kmeans")
        same = np.array_equal(models.load(tmp + "/kmeans").predict(X[:1000]), km.predict(X[:1000]))
        print(f"saved and reloaded: identical predictions = {same}")
    return out


if __name__ == "__main__":
    main()
