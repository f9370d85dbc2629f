"""Terasort: mapred's local runner against GNU sort and a single-process ``sorted()``, in one run.

    python benchmarks/terasort.py [--records 10000000] [--workers N] [--reducers R] [--no-python]

Generates seeded 100-byte records (``examples/terasort.py``), sorts them three
ways, checks all three outputs are byte-identical, and prints seconds, MB/s
and each time as a ratio of GNU sort's.  Goal: mapred within 2x of GNU sort.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import mapred  # noqa: E402
from _common import load_example, scratch, table, timed  # noqa: E402

terasort = load_example("terasort")


def sha_of_files(paths) -> str:
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 24), b""):
                h.update(block)
    return h.hexdigest()


def run_gnu_sort(inputs, out, workers):
    env = {**os.environ, "LC_ALL": "C"}
    subprocess.run(["sort", f"--parallel={workers}", "-S", "40%", "-k1,1", "-s", "-o", out, *inputs],
                   check=True, env=env)


def run_python_sorted(inputs, out):
    lines = []
    for p in inputs:
        with open(p, "rb") as f:
            lines.extend(f.read().splitlines(keepends=True))
    lines.sort(key=lambda line: line[:terasort.KEY])
    with open(out, "wb") as f:
        f.writelines(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=10_000_000)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--reducers", type=int, default=None)
    ap.add_argument("--no-python", action="store_true", help="skip the single-process sorted() run")
    ap.add_argument("--dir", default=None, help="reuse this scratch directory")
    args = ap.parse_args()
    with scratch("mapred-terasort-", args.dir) as d:
        data = os.path.join(d, "input")
        if not os.path.isdir(data):
            terasort.generate(args.records, data, files=max(4, args.workers))
        inputs = sorted(os.path.join(data, f) for f in os.listdir(data))
        size_mb = sum(os.path.getsize(p) for p in inputs) / 1e6
        rows = []
        _, t_gnu = timed(run_gnu_sort, inputs, os.path.join(d, "gnu.out"), args.workers)
        rows.append(("GNU sort", t_gnu))
        reducers = args.reducers or 2 * args.workers
        job = terasort.job
        job.num_reducers = reducers
        cluster = mapred.LocalCluster(args.workers)
        try:
            out = os.path.join(d, "mapred.out")
            _, t_mr = timed(cluster.run, job, inputs, out, overwrite=True)
        finally:
            cluster.close()
        rows.append((f"mapred local ({args.workers} workers, {reducers} reducers)", t_mr))
        parts = sorted(os.path.join(out, p) for p in os.listdir(out) if p.startswith("part-"))
        expected = sha_of_files([os.path.join(d, "gnu.out")])
        same = sha_of_files(parts) == expected
        if not args.no_python:
            _, t_py = timed(run_python_sorted, inputs, os.path.join(d, "py.out"))
            rows.append(("python sorted() (1 process)", t_py))
            same = same and sha_of_files([os.path.join(d, "py.out")]) == expected
        print(f"terasort: {args.records:,} records, {size_mb:,.0f} MB, {os.cpu_count()} cores")
        print(table([(name, f"{t:.2f}", f"{size_mb / t:,.1f}", f"{t / t_gnu:.2f}x") for name, t in rows],
                    ("run", "seconds", "MB/s", "vs GNU sort")))
        print("outputs identical:", same)
        if not same:
            raise SystemExit("outputs differ")


if __name__ == "__main__":
    main()
