"""Model selection on the embedded cluster: GridSearch / cross_validate fits one after another
against the same fits submitted side by side (``n_jobs``), with equal results.

    python benchmarks/selection.py [--workers 2] [--n-jobs 4] [--folds 5] [--repeats 2]

One grid over ``C`` of ``LogisticRegression`` (the Newton default) on
breast_cancer and on digits, ``cv`` folds each: every (C, fold) fit is a
driver loop of small jobs.  ``n_jobs=1`` runs the fits one after another;
``n_jobs=N`` submits N fits' jobs at once to the same ``LocalCluster``, whose
one scheduling core runs them together, so one fit's tasks fill the executors
while another's driver solves its Newton step or waits for its last task.
Runs are interleaved (sequential, concurrent, sequential, ...) because this
machine is shared; the ratio of medians is what to read.  The scores and the
chosen parameters must be identical.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mapred  # noqa: E402
import models  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--n-jobs", type=int, default=4)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    from sklearn import datasets, preprocessing
    grid = {"C": [0.01, 0.1, 1.0]}
    rows = []
    with mapred.LocalCluster(args.workers) as cluster:
        for name in ("breast_cancer", "digits"):
            X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
            X = preprocessing.StandardScaler().fit_transform(X)
            times = {1: [], args.n_jobs: []}
            outs = {}
            for _ in range(args.repeats):
                for n_jobs in (1, args.n_jobs):
                    started = time.perf_counter()
                    gs = models.GridSearch(models.LogisticRegression(), grid, cv=args.folds, n_jobs=n_jobs,
                                           refit=False).fit(X, y, cluster=cluster)
                    times[n_jobs].append(time.perf_counter() - started)
                    outs[n_jobs] = gs
            seq, par = outs[1], outs[args.n_jobs]
            same = (seq.best_params_ == par.best_params_ and
                    all(np.array_equal(seq.cv_results_[f"split{i}_test_score"], par.cv_results_[f"split{i}_test_score"])
                        for i in range(args.folds)))
            t1, tn = statistics.median(times[1]), statistics.median(times[args.n_jobs])
            fits = len(grid["C"]) * args.folds
            rows.append((name, fits, f"{t1:.2f}", f"{tn:.2f}", f"{t1 / tn:.2f}x", same))
            print(f"{name}: {fits} fits, n_jobs=1 {t1:.2f}s, n_jobs={args.n_jobs} {tn:.2f}s "
                  f"({t1 / tn:.2f}x), identical results: {same}", flush=True)
    from _common import table
    print()
    print(table(rows, ("data", "fits", "n_jobs=1 s", f"n_jobs={args.n_jobs} s", "speed-up", "same results")))
    return rows


if __name__ == "__main__":
    main()
