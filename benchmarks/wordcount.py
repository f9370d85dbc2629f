"""Word count: mapred's local runner vs a hand-written multiprocessing.Pool vs one process, in one run.

    python benchmarks/wordcount.py [--mb 1000] [--workers N] [--workers-list 1,4,8,16] [--dir D] [--repeat N]

Generates seeded Zipf-distributed text (``--mb`` megabytes) and counts words
with tokens exactly ``str.split()`` three ways: a one-process ``Counter`` loop
over the file's lines; a hand-written ``multiprocessing.Pool`` (line-aligned
byte ranges, each counted 8 MB at a time with one ``split`` call, Counters
merged in the parent); and mapred running ``examples/wordcount.py``, whose
mapper counts thousands of joined lines per ``split`` call — the same kernel,
so the difference is the engine.  It checks the results are equal and prints
MB/s and ratios.  ``--workers-list`` repeats the mapred
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
            counts.update(block.decode("utf-8").split())   # a newline is whitespace: the lines' tokens
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


def mapred_wordcount(path: str, workers: int, out: str) -> collections.Counter:
    """examples/wordcount.py on an embedded cluster of ``workers`` executors (start-up timed too)."""
    job = wordcount.job.with_params()
    job.num_reducers = workers
    job.output_format = "msgpack"
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
            best = {"pool": float("inf"), "mapred": float("inf")}
            for _ in range(args.repeat):
                runs = {"pool": lambda: pool_wordcount(path, w),
                        "mapred": lambda: mapred_wordcount(path, w, os.path.join(d, "out"))}
                for name, fn in runs.items():
                    got, t = timed(fn)
                    best[name] = min(best[name], t)
                    if got != expected:
                        raise SystemExit(f"{name} result differs at {w} workers")
            rows += [("multiprocessing.Pool", w, best["pool"]), ("mapred local runner", w, best["mapred"])]
        print(f"wordcount: {mb:,.0f} MB, {len(expected):,} distinct words, {os.cpu_count()} cores; results equal")
        print(table([(name, w, f"{t:.2f}", f"{mb / t:,.1f}", f"{t_single / t:.2f}x") for name, w, t in rows],
                    ("run", "workers", "seconds", "MB/s", "speedup vs 1 process")))
        for w in counts:
            t_pool, t_mr = (next(t for n, ww, t in rows if n == name and ww == w)
                            for name in ("multiprocessing.Pool", "mapred local runner"))
            print(f"  {w} workers: mapred time / pool time = {t_mr / t_pool:.2f}")


if __name__ == "__main__":
    main()
