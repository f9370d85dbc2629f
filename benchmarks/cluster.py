"""Word count on a real cluster vs the local runner vs a hand-written multiprocessing pool, in one run.

    python benchmarks/cluster.py [--mb 1000] [--workers 2] [--slots N] [--dir D]
    python benchmarks/cluster.py --kill-worker-at SECONDS [--workers 3] [--dead-timeout 3]

The first form starts a cluster (the same ``mapred.runtime.procs.Cluster`` that
``mapred cluster up`` uses: master and workers as separate processes talking
ZeroMQ) with ``--workers`` workers sharing this machine's cores, runs the
wordcount example on it, runs the same job on the embedded local runner and
the hand-written ``multiprocessing.Pool`` baseline with the same total number
of processes, checks the three results are equal and prints times and ratios.

The second form reproduces the MapReduce paper's experiment: an undisturbed
run on ``--workers`` workers, then a run in which worker 0 is killed with
SIGKILL ``SECONDS`` after submission; it checks that the output is identical
and prints the slowdown.  Cluster start-up is not timed (a cluster is a
long-lived service).  See benchmarks/README.md for several hosts.
"""
from __future__ import annotations

import argparse
import collections
import importlib.util
import os
import sys
import threading
from contextlib import contextmanager

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _common import load_example, scratch, table, timed  # noqa: E402

import mapred  # noqa: E402
from mapred.runtime.procs import Cluster  # noqa: E402

wordcount = load_example("wordcount")


def _bench_wordcount():
    """benchmarks/wordcount.py (its generator and pool baseline), imported under its own name."""
    spec = importlib.util.spec_from_file_location("bench_wordcount", os.path.join(HERE, "wordcount.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module      # so that the pool can pickle its functions by name
    spec.loader.exec_module(module)
    return module


wc = _bench_wordcount()


def pool_wordcount(path: str, workers: int) -> collections.Counter:
    """The hand-written baseline of benchmarks/wordcount.py."""
    return wc.pool_wordcount(path, workers)


def the_job(reducers: int, split_mb: int):
    job = wordcount.job.with_params()
    job.num_reducers = reducers
    job.output_format = "msgpack"
    if split_mb:
        job.split_size = split_mb << 20
    return job


def cluster_run(client, path: str, out: str, reducers: int, split_mb: int, kill_at: float | None = None,
                kill=None) -> tuple[collections.Counter, float, dict]:
    """Run through ``client``; optionally call ``kill()`` ``kill_at`` seconds after submission."""
    timer = threading.Timer(kill_at, kill) if kill_at is not None else None

    def go():
        handle = client.submit(the_job(reducers, split_mb), [path], out, overwrite=True)
        if timer is not None:
            timer.start()
        try:
            return handle.wait()
        finally:
            if timer is not None:
                timer.cancel()

    result, seconds = timed(go)
    return collections.Counter(dict(result)), seconds, result.counters.get("job", {})


def compare(args, d: str, path: str, mb: float) -> None:
    """Pool, local runner and cluster, interleaved ``--repeat`` times; the best time of each counts."""
    total = args.workers * args.slots
    t_pool = t_local = t_cluster = float("inf")
    with _cluster(args, os.path.join(d, "cluster")) as client, mapred.LocalCluster(total) as local:
        for _ in range(args.repeat):
            expected, t = timed(pool_wordcount, path, total)
            t_pool = min(t_pool, t)
            local_counts, t = timed(local_run, local, path, total, args.split_mb, os.path.join(d, "out-local"))
            t_local = min(t_local, t)
            cl_counts, t, counters = cluster_run(client, path, args.output or os.path.join(d, "out-cluster"),
                                                 total, args.split_mb)
            t_cluster = min(t_cluster, t)
            if local_counts != expected or cl_counts != expected:
                raise SystemExit("results differ between the pool, the local runner and the cluster")
    print(f"wordcount: {mb:,.0f} MB, {len(expected):,} distinct words, {os.cpu_count()} cores, "
          f"{total} processes each, best of {args.repeat}; results equal")
    rows = [("multiprocessing.Pool", t_pool), ("mapred local runner", t_local),
            (f"mapred cluster ({args.workers} workers x {args.slots} slots)", t_cluster)]
    print(table([(n, f"{t:.2f}", f"{mb / t:,.1f}") for n, t in rows], ("run", "seconds", "MB/s")))
    print(f"  cluster / local runner = {t_cluster / t_local:.2f}  (goal <= 1.3)")
    print(f"  cluster / pool         = {t_cluster / t_pool:.2f}")
    print(f"  cluster job counters: {counters}")


def local_run(local, path: str, reducers: int, split_mb: int, out: str) -> collections.Counter:
    """The same job on a warm embedded local runner (its start-up is not timed either)."""
    return collections.Counter(dict(local.run(the_job(reducers, split_mb), [path], out, overwrite=True)))


@contextmanager
def _cluster(args, d: str):
    """A client of the cluster at ``--master``, or of one started here (and stopped afterwards)."""
    if args.master:
        with mapred.connect(args.master) as client:
            yield client
        return
    with Cluster(d, workers=args.workers, slots=args.slots, dead_timeout=args.dead_timeout) as cluster:
        yield cluster.client()


def kill_experiment(args, d: str, path: str, mb: float) -> None:
    runs = []
    for kill in (None, args.kill_worker_at):
        with Cluster(os.path.join(d, f"cluster-{'kill' if kill is not None else 'base'}"),
                     workers=args.workers, slots=args.slots, dead_timeout=args.dead_timeout) as cluster:
            runs.append(cluster_run(cluster.client(), path, os.path.join(d, "out"), args.workers * args.slots,
                                    args.split_mb, kill, lambda: cluster.kill_worker(0)))
    (base, t_base, _), (killed, t_killed, counters) = runs
    if base != killed:
        raise SystemExit("the output of the run with a killed worker differs from the undisturbed run")
    print(f"wordcount: {mb:,.0f} MB on {args.workers} workers x {args.slots} slots, dead timeout "
          f"{args.dead_timeout:g}s; outputs equal")
    print(table([("undisturbed", f"{t_base:.2f}"),
                 (f"worker 0 SIGKILLed at {args.kill_worker_at:g}s", f"{t_killed:.2f}")], ("run", "seconds")))
    print(f"  slowdown = {t_killed / t_base:.2f}  (goal <= 1.5)")
    print(f"  job counters of the disturbed run: {counters}")


def remote(args, path: str, mb: float) -> None:
    """``--master`` with ``--input``: time the cluster alone on shared input; check against one process."""
    expected = wc.single_process(path)
    with mapred.connect(args.master) as client:
        counts, t, counters = cluster_run(client, args.input, args.output, max(1, len(client.workers())),
                                          args.split_mb)
    if counts != expected:
        raise SystemExit("the cluster's result differs from a single-process count of the local copy")
    print(f"wordcount: {mb:,.0f} MB on the cluster at {args.master}: {t:.2f}s, {mb / t:,.1f} MB/s; "
          f"result equal; counters {counters}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=None, help="default 2, or 3 with --kill-worker-at")
    ap.add_argument("--slots", type=int, default=None, help="slots per worker (default: cores / workers)")
    ap.add_argument("--split-mb", type=int, default=None,
                    help="MB of text per map task (default: the engine's, as the local runner; 16 with a kill)")
    ap.add_argument("--dead-timeout", type=float, default=3.0)
    ap.add_argument("--kill-worker-at", type=float, default=None, metavar="SECONDS")
    ap.add_argument("--dir", default=None, help="keep the generated input here between runs")
    ap.add_argument("--master", default="", help="use the running cluster at tcp://H:P instead of starting one")
    ap.add_argument("--input", default="", help="with --master: input path all workers can read (e.g. mrfs://)")
    ap.add_argument("--output", default="", help="with --master: output path all workers can write")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each contender; the best counts")
    args = ap.parse_args()
    args.workers = args.workers or (3 if args.kill_worker_at is not None else 2)
    args.slots = args.slots or max(1, (os.cpu_count() or 1) // args.workers)
    if args.split_mb is None:
        args.split_mb = 16 if args.kill_worker_at is not None else 0
    with scratch("mapred-cluster-bench-", args.dir) as d:
        path = os.path.join(d, f"zipf-{args.mb}mb.txt")
        if not os.path.exists(path):
            wc.generate(path, args.mb)
        mb = os.path.getsize(path) / 1e6
        if args.master and args.input:
            remote(args, path, mb)
            return
        if args.kill_worker_at is None:
            compare(args, d, path, mb)
        else:
            kill_experiment(args, d, path, mb)


if __name__ == "__main__":
    main()
