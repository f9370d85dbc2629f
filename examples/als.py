"""ALS on generated ratings with a planted rank-5 structure.

    python examples/als.py [--users 2000] [--items 1000] [--rank 5] [--workers 2] [--runner spark]

Each half-iteration is a job: map sums each user's (item's) normal equations
over its block with the other side's factors broadcast; the shuffle joins the
partial sums by key; the reducer solves the small regularised system.
"""
import argparse
import time

import mapred
import models
from models.synthetic import make_ratings


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--rank", type=int, default=5)
    ap.add_argument("--density", type=float, default=0.05)
    ap.add_argument("--noise", type=float, default=0.1)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--runner", choices=["local", "spark"], default="local",
                    help="run every job of the models on mapred's executors or on Spark")
    ap.add_argument("--spark-master", default=None, help="Spark master URL (default: local[*])")
    args = ap.parse_args(argv)
    with models.engine(runner=args.runner, spark_master=args.spark_master):
        return run(args)


def run(args):

    u, i, r, _, _ = make_ratings(args.users, args.items, args.rank, density=args.density,
                                 noise=args.noise)
    cut = int(0.9 * len(r))
    train = mapred.from_numpy(u[:cut], i[:cut], r[:cut], splits=8)
    test = mapred.from_numpy(u[cut:], i[cut:], r[cut:], splits=2)
    print(f"{len(r)} ratings, {args.users} users x {args.items} items, noise {args.noise}")
    started = time.perf_counter()
    als = models.ALS(rank=args.rank, reg=0.01, iterations=args.iterations)
    als.fit(train, validation=test, workers=args.workers)
    for h in als.history_:
        print(f"  iteration {h['iter']}: train RMSE {h['rmse']:.4f}  test RMSE {h['val_rmse']:.4f}")
    print(f"fitted in {time.perf_counter() - started:.2f}s")
    seen = i[:cut][u[:cut] == 0]
    top = als.recommend(0, 5, exclude=seen)
    print("top 5 for user 0:", ", ".join(f"item {it} ({s:.2f})" for it, s in top))
    return als


if __name__ == "__main__":
    main()
