"""Word count: mapred's local runner vs a hand-written multiprocessing.Pool vs one process, in one run.

    python benchmarks/wordcount.py [--mb 1000] [--workers N] [--workers-list 1,4,8,16] [--dir D] [--repeat N]

Generates seeded Zipf-distributed text (``--mb`` megabytes), counts words
with tokens exactly ``str.split()`` — in one process, with a hand-written
``multiprocessing.Pool`` (``Counter.update`` per line, Counters merged in the
parent), with mapred running ``examples/wordcount.py`` (which splits thousands
of joined lines per call), and with mapred running the pool's own per-line
kernel (the engine's overhead alone) — checks the results are equal, and
prints MB/s and ratios.  ``--workers-list`` repeats the mapred
and pool runs for several worker counts (the scaling table of the README).
"""
from __future__ import annotations

import argparse
import collections
import multiprocessing
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import mapred  # noqa: E402
from _common import load_example, scratch, table, timed  # noqa: E402

wordcount = load_example("wordcount")


def generate(path: str, mb: int, seed: int = 42, vocab_size: int = 200_000) -> None:
    """``mb`` megabytes of lines of Zipf-distributed words (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
    lengths = rng.integers(2, 10, size=vocab_size)
    vocab = np.array([letters[rng.integers(0, 26, size=n)].tobytes() for n in lengths], dtype=object)
    target = mb * 1_000_000
    written = 0
    with open(path, "wb") as f:
        while written < target:
            ids = np.minimum(rng.zipf(1.2, size=500_000), vocab_size) - 1
            words = vocab[ids]
            lines = [b" ".join(words[i:i + 12]) for i in range(0, len(words), 12)]
            block = b"\n".join(lines) + b"\n"
            f.write(block)
            written += len(block)


def single_process(path: str) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    with open(path, encoding="utf-8") as f:
        for line in f:
            counts.update(line.split())
    return counts


def _count_range(args) -> collections.Counter:
    path, start, end = args
    counts: collections.Counter = collections.Counter()
    with open(path, "rb") as f:
        if start:
            f.seek(start - 1)
            if f.read(1) != b"\n":
                f.readline()
        while f.tell() < end:
            block = f.read(min(8 << 20, end - f.tell()))
            if not block.endswith(b"\n"):      # finish the last line; one starting at `end` is the next range's
                block += f.readline()
            for line in block.decode("utf-8").split("\n"):
                counts.update(line.split())
    return counts


def pool_wordcount(path: str, workers: int) -> collections.Counter:
    """The hand-written baseline: byte ranges to a Pool, Counters merged in the parent."""
    size = os.path.getsize(path)
    chunk = max(1, -(-size // (workers * 4)))
    ranges = [(path, s, min(size, s + chunk)) for s in range(0, size, chunk)]
    total: collections.Counter = collections.Counter()
    with multiprocessing.Pool(workers) as pool:
        for part in pool.imap_unordered(_count_range, ranges):
            total.update(part)
    return total


def per_line_state(lines):
    """The pool's own kernel (``Counter.update`` per line), for a like-for-like engine comparison."""
    counts = mapred.context().state["counts"]
    for line in lines:
        counts.update(line.split())
    return ()


def mapred_wordcount(path: str, workers: int, out: str, per_line: bool = False) -> collections.Counter:
    job = mapred.Job(mapper_init=wordcount.start_counting, mapper_final=wordcount.emit_counts,
                     map_batch=per_line_state if per_line else wordcount.count_into_state,
                     combiner=wordcount.add, reducer=wordcount.add, num_reducers=workers,
                     output_format="msgpack")
    with mapred.LocalCluster(workers) as cluster:
        result = cluster.run(job, [path], out, overwrite=True)
        return collections.Counter(dict(result))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mb", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--workers-list", default=None, help="comma-separated worker counts, e.g. 1,4,8,16")
    ap.add_argument("--dir", default=None)
    ap.add_argument("--repeat", type=int, default=1,
                    help="interleave N runs of each and keep the best (the machine's noise, not ours)")
    args = ap.parse_args()
    counts = [int(w) for w in args.workers_list.split(",")] if args.workers_list else [args.workers]
    with scratch("mapred-wc-", args.dir) as d:
        path = os.path.join(d, f"zipf-{args.mb}mb.txt")
        if not os.path.exists(path):
            generate(path, args.mb)
        mb = os.path.getsize(path) / 1e6
        expected, t_single = timed(single_process, path)
        rows = [("single process Counter", 1, t_single)]
        for w in counts:
            best = {"pool": float("inf"), "mapred": float("inf"), "line": float("inf")}
            for _ in range(args.repeat):
                runs = {"pool": lambda: pool_wordcount(path, w),
                        "mapred": lambda: mapred_wordcount(path, w, os.path.join(d, "out")),
                        "line": lambda: mapred_wordcount(path, w, os.path.join(d, "out"), per_line=True)}
                for name, fn in runs.items():
                    got, t = timed(fn)
                    best[name] = min(best[name], t)
                    if got != expected:
                        raise SystemExit(f"{name} result differs at {w} workers")
            rows += [("multiprocessing.Pool", w, best["pool"]), ("mapred local runner", w, best["mapred"]),
                     ("mapred, the pool's per-line kernel", w, best["line"])]
        print(f"wordcount: {mb:,.0f} MB, {len(expected):,} distinct words, {os.cpu_count()} cores; results equal")
        print(table([(name, w, f"{t:.2f}", f"{mb / t:,.1f}", f"{t_single / t:.2f}x") for name, w, t in rows],
                    ("run", "workers", "seconds", "MB/s", "speedup vs 1 process")))
        for w in counts:
            t_pool, t_mr, t_line = (next(t for n, ww, t in rows if n == name and ww == w) for name in (
                "multiprocessing.Pool", "mapred local runner", "mapred, the pool's per-line kernel"))
            print(f"  {w} workers: mapred time / pool time = {t_mr / t_pool:.2f} "
                  f"(with the pool's per-line kernel: {t_line / t_pool:.2f})")


if __name__ == "__main__":
    main()
