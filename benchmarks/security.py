"""What keys cost: block put/get, the shuffle and a word count, with and without CURVE keys.

    python benchmarks/security.py [--mb 32] [--store-mb 64] [--repeat 2]

Two identical clusters run side by side on this machine -- one with every
node and the client holding its own CURVE key (encrypted, authenticated
sockets, block and job tokens), one without keys (loopback trust) -- and the
same work is run on each, interleaved ``--repeat`` times; the best time of
each counts.  Measured:

* block put and get of a ``--store-mb`` file through the store client, reads
  forced over the network (no short-circuit), replication 2;
* the shuffle: one reducer's ``NetFetcher`` pulling a map output of
  ``--store-mb`` from a ``ShuffleServer``;
* word count of a ``--mb`` text on 2 workers x 1 slot, every map output
  fetched over the network.

Prints seconds, MB/s and the secure / insecure ratio (goal for the word count:
<= 1.3).  Small sizes by default so it finishes in about two minutes on a
loaded 2-core machine; the ratios, not the absolute times, are the result.
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from contextlib import contextmanager

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _common import load_example, scratch, table  # noqa: E402

import mapred  # noqa: E402
from mapred.runtime.procs import Cluster  # noqa: E402
from mapred.security.keys import KeyDir  # noqa: E402

wordcount = load_example("wordcount")


@contextmanager
def keyed_env(keydir: str | None):
    """This process speaks with keys (as ``bench``, an admin) inside the block, without outside."""
    saved = {k: os.environ.get(k) for k in ("MAPRED_KEYS", "MAPRED_PRINCIPAL", "MAPRED_SECRET")}
    os.environ.pop("MAPRED_SECRET", None)
    if keydir:
        os.environ["MAPRED_KEYS"], os.environ["MAPRED_PRINCIPAL"] = keydir, "bench"
    else:
        os.environ.pop("MAPRED_KEYS", None)
        os.environ.pop("MAPRED_PRINCIPAL", None)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def store_put_get(cluster: Cluster, local: str, back: str) -> tuple[float, float]:
    from mapred.storage.client import Client
    client = Client(cluster.storage.namenode_addr, short_circuit=False)
    try:
        t0 = time.perf_counter()
        client.put(local, "/bench.bin", overwrite=True)
        t1 = time.perf_counter()
        client.get("/bench.bin", back)
        t2 = time.perf_counter()
    finally:
        client.close()
    with open(local, "rb") as a, open(back, "rb") as b:
        if a.read() != b.read():
            raise SystemExit("block store returned other bytes")
    return t1 - t0, t2 - t1


def shuffle_once(root: str, mb: int) -> float:
    from mapred.security import tokens
    from mapred.shuffle.netfetch import NetFetcher
    from mapred.shuffle.serve import ShuffleServer
    from mapred.shuffle.spill import RunWriter
    job_dir = os.path.join(root, "job1", "a1")
    os.makedirs(job_dir, exist_ok=True)
    run = os.path.join(job_dir, "map.out")
    if not os.path.exists(run + ".index"):
        w = RunWriter(run, 1, "none")
        value = "v" * 1000
        w.write_partition([(f"k{i:09d}", [value]) for i in range(mb * 1000)])
        w.close()
    token = tokens.job_token(tokens.new_key(), "job1")
    server = ShuffleServer(root).start()
    server.allow("job1", token)
    try:
        fetcher = NetFetcher(1 << 30, job_id="job1", token=token)
        start = time.perf_counter()
        got = fetcher([(0, "w", {"path": run, "addr": server.addr})], 0, os.path.join(root, "r"))
        n = sum(1 for _ in got[0])
        seconds = time.perf_counter() - start
    finally:
        server.stop()
    if n != mb * 1000:
        raise SystemExit(f"shuffle returned {n} records, not {mb * 1000}")
    return seconds


def word_count(client, path: str, out: str) -> collections.Counter:
    job = wordcount.job.with_params()
    job.num_reducers = 2
    job.output_format = "msgpack"
    return collections.Counter(dict(client.run(job, [path], out, overwrite=True)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=int, default=32, help="word count input size")
    ap.add_argument("--store-mb", type=int, default=64, help="block put/get and shuffle size")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    sys.path.insert(0, HERE)
    import wordcount as wc_bench  # benchmarks/wordcount.py: its text generator

    with scratch("mapred-bench-security-") as d:
        text = os.path.join(d, "in.txt")
        wc_bench.generate(text, args.mb)
        blob = os.path.join(d, "blob.bin")
        with open(blob, "wb") as f:
            f.write(os.urandom(args.store_mb << 20))
        keys = KeyDir(os.path.join(d, "keys"))
        keys.ensure("bench", "admin")
        results: dict = collections.defaultdict(lambda: float("inf"))
        clusters = {}
        try:
            for mode in ("insecure", "secure"):
                with keyed_env(keys.path if mode == "secure" else None):
                    env = {"MAPRED_KEYS": keys.path} if mode == "secure" else {}
                    c = Cluster(os.path.join(d, mode), workers=2, slots=1, datanodes=2,
                                short_circuit=False, block_size=16 << 20, env=env)
                    c.start()
                    clusters[mode] = c
            expected = None
            for _ in range(args.repeat):
                for mode, c in clusters.items():
                    with keyed_env(keys.path if mode == "secure" else None):
                        put, get = store_put_get(c, blob, os.path.join(d, f"back-{mode}"))
                        results[(mode, "block put")] = min(results[(mode, "block put")], put)
                        results[(mode, "block get")] = min(results[(mode, "block get")], get)
                        t = shuffle_once(os.path.join(d, f"shuffle-{mode}"), args.store_mb)
                        results[(mode, "shuffle fetch")] = min(results[(mode, "shuffle fetch")], t)
                        start = time.perf_counter()
                        counts = word_count(c.client(), text, os.path.join(d, f"out-{mode}"))
                        t = time.perf_counter() - start
                        results[(mode, "word count")] = min(results[(mode, "word count")], t)
                        if expected is None:
                            expected = counts
                        elif counts != expected:
                            raise SystemExit("word counts differ between the secure and insecure clusters")
        finally:
            for mode, c in clusters.items():
                with keyed_env(keys.path if mode == "secure" else None):
                    c.stop()
    sizes = {"block put": args.store_mb, "block get": args.store_mb, "shuffle fetch": args.store_mb,
             "word count": args.mb}
    rows = []
    for what, mb in sizes.items():
        ins, sec = results[("insecure", what)], results[("secure", what)]
        rows.append((what, f"{mb} MB", f"{ins:.2f}", f"{sec:.2f}", f"{mb / ins:,.1f}", f"{mb / sec:,.1f}",
                     f"{sec / ins:.2f}"))
    print(f"security cost, best of {args.repeat}, {os.cpu_count()} cores; results equal")
    print(table(rows, ("operation", "size", "no keys s", "keys s", "no keys MB/s", "keys MB/s",
                       "keys / no keys")))
    wc_ratio = results[("secure", "word count")] / results[("insecure", "word count")]
    print(f"  word count: keys / no keys = {wc_ratio:.2f}  (goal <= 1.3)")


if __name__ == "__main__":
    main()
