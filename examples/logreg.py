"""Logistic regression with the three solvers on generated data.

    python examples/logreg.py [--rows 200000] [--features 20] [--workers 2] [--runner spark]

Labels come from a known logistic model, so the best reachable accuracy is
known (printed as "generating model").  Each solver is a driver loop of
mapred jobs on a cached dataset: "gd" one gradient-sum pass per step, "sgd"
per-split mini-batch epochs averaged by the reducer, "async" tasks pushing
gradients to a parameter-holder process without a barrier.
"""
import argparse
import time

import numpy as np

import mapred
import models
from models.synthetic import make_logistic

SETTINGS = {
    "gd": dict(lr=0.5, epochs=60),
    "sgd": dict(lr=0.1, epochs=8, batch_size=256),
    "async": dict(lr=0.05, epochs=5, batch_size=512),
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--splits", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=None, help="cap every solver's passes")
    ap.add_argument("--runner", choices=["local", "spark"], default="local",
                    help="run every job of the models on mapred's executors or on Spark")
    ap.add_argument("--spark-master", default=None, help="Spark master URL (default: local[*])")
    args = ap.parse_args(argv)
    with models.engine(runner=args.runner, spark_master=args.spark_master):
        return run(args)


def run(args):

    X, y, w, b, _ = make_logistic(args.rows, args.features, seed=args.seed)
    ds = mapred.from_numpy(X, y, splits=args.splits)
    train, valid, test = models.split(ds, [0.8, 0.1, 0.1], seed=args.seed, workers=args.workers)
    Xte, yte = test.to_numpy()
    truth = float(np.mean(((Xte @ w + b) > 0) == (yte == 1)))
    print(f"{args.rows} rows x {args.features} features; generating model's test accuracy {truth:.4f}")
    results, fitted = {}, {}
    for solver, kw in SETTINGS.items():
        started = time.perf_counter()
        if args.epochs is not None:
            kw = {**kw, "epochs": min(kw["epochs"], args.epochs)}
        clf = models.LogisticRegression(solver=solver, seed=args.seed, **kw)
        clf.fit(train, validation=valid, workers=args.workers)
        took = time.perf_counter() - started
        metrics = models.evaluate(clf, test, workers=args.workers)
        results[solver], fitted[solver] = metrics["accuracy"], clf
        line = (f"{solver:>5}: accuracy {metrics['accuracy']:.4f}  auc {metrics['auc']:.4f}  "
                f"log loss {metrics['log_loss']:.4f}  passes {len(clf.history_)}  {took:.2f}s")
        if solver == "async":
            st = clf.staleness_
            line += f"  staleness mean {st['mean']:.2f} max {st['max']} (bound {st['max_staleness']})"
        print(line)
    return results, truth, fitted


if __name__ == "__main__":
    main()
