"""Put and get of one large file on a local 3-DataNode cluster, against cp and cat.

    python benchmarks/storage.py [--size-mb 1024] [--block-mb 64] [--dir DIR]

Each figure is the best of 3 runs, each after ``sync``.  Prints MB/s for ``cp``, ``cat > /dev/null``, and the store's put and get at
replication 1 and 3 (get both short-circuit, the default on one host, and
remote over ZeroMQ), with ratios against cp (for put) and cat (for get).
Goals: get >= 0.5x cat; put at replication 1 >= 0.5x cp.  All on one machine,
so replication 3 writes three copies to the same disk.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mapred.storage import Client  # noqa: E402
from mapred.storage.minicluster import StorageCluster  # noqa: E402

MB = 1024 * 1024


def make_file(path: str, size: int) -> None:
    """Incompressible-looking data: a 16 MiB random pattern, repeated."""
    pattern = os.urandom(16 * MB)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            f.write(pattern[:min(left, len(pattern))])
            left -= len(pattern)


def timed(fn, repeat: int = 3) -> float:
    """Best of ``repeat`` runs, each after ``sync`` so earlier writes' flushing does not bleed in."""
    best = float("inf")
    for _ in range(repeat):
        os.sync()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def shell(cmd: str) -> None:
    subprocess.run(cmd, shell=True, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--block-mb", type=int, default=64)
    ap.add_argument("--dir", default=None, help="scratch directory (default: a temp dir)")
    args = ap.parse_args()
    size = args.size_mb * MB
    root = tempfile.mkdtemp(prefix="mapred-bench-", dir=args.dir)
    try:
        run(root, size, args.block_mb * MB)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(root: str, size: int, block: int) -> None:
    src = os.path.join(root, "input.bin")
    make_file(src, size)
    shell(f"cat {src} > /dev/null")                            # warm the page cache
    results = {"cp": timed(lambda: shell(f"cp {src} {root}/copy.bin")),
               "cat > /dev/null": timed(lambda: shell(f"cat {src} > /dev/null"))}
    os.remove(os.path.join(root, "copy.bin"))
    with StorageCluster(os.path.join(root, "cluster"), datanodes=3, block_size=block,
                        replication=3, dead_timeout=30) as cluster:
        local = Client(cluster.namenode_addr)
        remote = Client(cluster.namenode_addr, short_circuit=False)
        for rep in (1, 3):
            path = f"/bench-r{rep}"
            results[f"put r={rep}"] = timed(lambda: local.put(src, path, replication=rep,
                                                              overwrite=True))
            results[f"get r={rep} (short-circuit)"] = timed(lambda: local.get(path, "/dev/null"))
            results[f"get r={rep} (remote)"] = timed(lambda: remote.get(path, "/dev/null"))
            local.rm(path)
    report(results, size)


def report(results: dict, size: int) -> None:
    mbps = {k: size / MB / v for k, v in results.items()}
    print(f"size {size // MB} MB")
    print(f"{'operation':32} {'seconds':>8} {'MB/s':>9} {'ratio':>7}")
    for name, secs in results.items():
        base = "cp" if name.startswith("put") else "cat > /dev/null"
        ratio = mbps[name] / mbps[base] if name not in ("cp", "cat > /dev/null") else 1.0
        print(f"{name:32} {secs:8.2f} {mbps[name]:9.0f} {ratio:6.2f}x")


if __name__ == "__main__":
    main()
