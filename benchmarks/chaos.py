"""Chaos: word counts on a real cluster while everything that can fail does; every output checked.

    python benchmarks/chaos.py [--jobs 10] [--seed 1] [--faults-per-job 2] [--dir D]

One cluster on this machine: a NameNode and 3 DataNodes (replication 3), a
master with a journal, 3 workers that reach the master through a
``ChaosProxy`` (which drops, delays, duplicates and reorders chosen control
messages all the time).  The inputs live in the block store.  Each job is a
word count of those inputs; while it runs, ``--faults-per-job`` faults are
drawn (seeded) from: worker SIGKILL (a new worker replaces it), worker
SIGSTOP for 0.5-3 s, executor SIGKILL, master kill -9 and restart on its
journal, NameNode kill -9 and restart, DataNode SIGKILL (restarted a few
seconds later), a corrupt replica of an input block.  Every output is
compared with the sequential count of the original files, and at the end
every stored input is read back.  The dashboard: jobs tried, jobs exact,
faults injected by kind, data lost (wrong or missing output pairs of jobs
that claimed success, plus stored files that no longer read back right).
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import mapred  # noqa: E402
from mapred.net.chaos import ChaosProxy  # noqa: E402
from mapred.runtime.procs import Cluster  # noqa: E402
from mapred.storage import blockstore  # noqa: E402

FAULTS = ("worker_sigkill", "worker_sigstop", "executor_kill", "master_restart", "namenode_restart",
          "datanode_kill", "corrupt_replica")


def make_job():
    def mapper(_offset, line):
        for w in line.split():
            yield w, 1

    def add(word, counts):
        yield word, sum(counts)

    return mapred.Job(mapper, combiner=add, reducer=add, num_reducers=3, name="chaos-wordcount",
                      split_size=16 * 1024)


def write_inputs(d: str, rng: random.Random, files: int = 3, lines: int = 3000) -> list[str]:
    paths = []
    for i in range(files):
        p = os.path.join(d, f"in{i}.txt")
        with open(p, "w") as f:
            for _ in range(lines):
                f.write(" ".join(f"w{rng.randrange(300)}" for _ in range(rng.randrange(1, 9))) + "\n")
        paths.append(p)
    return paths


def reference(paths: list[str]) -> dict:
    counts: collections.Counter = collections.Counter()
    for p in paths:
        with open(p) as f:
            for line in f:
                counts.update(line.split())
    return dict(counts)


def read_output(out: str) -> dict:
    got = {}
    for name in sorted(os.listdir(out)):
        if name.startswith("part-"):
            with open(os.path.join(out, name)) as f:
                for line in f:
                    k, v = line.rstrip("\n").split("\t")
                    got[k] = got.get(k, 0) + int(v)
    return got


class Chaos:
    """Injects one fault of a kind into the cluster; counts what it did."""

    def __init__(self, cluster: Cluster, rng: random.Random, stored: list[str],
                 originals: dict | None = None) -> None:
        self.c, self.rng, self.stored = cluster, rng, stored
        self.originals = originals or {}      # stored path -> the local file it was put from
        self.counts: collections.Counter = collections.Counter()
        self.lock = threading.Lock()
        self.timers: list = []
        self.closed = False

    def later(self, delay: float, fn, *args) -> None:
        """Run ``fn`` after ``delay`` unless the run is over by then (no process outlives the cluster)."""
        t = threading.Timer(delay, lambda: None if self.closed else fn(*args))
        self.timers.append(t)
        t.start()

    def close(self) -> None:
        with self.lock:
            self.closed = True
        for t in self.timers:
            t.cancel()

    def inject(self, kind: str) -> None:
        with self.lock:
            done = getattr(self, kind)()
        if done:
            self.counts[kind] += 1

    def _live_workers(self) -> list[int]:
        return [i for i, p in enumerate(self.c.worker_procs) if p.poll() is None]

    def worker_sigkill(self) -> bool:
        live = self._live_workers()
        if len(live) < 2:
            return False
        self.c.kill_worker(self.rng.choice(live))
        self.c.start_worker(wait=False)
        return True

    def worker_sigstop(self) -> bool:
        i = self.rng.choice(self._live_workers())
        self.c.signal_worker(i, signal.SIGSTOP)
        self.later(self.rng.uniform(0.5, 3.0), self._cont, i)
        return True

    def _cont(self, i: int) -> None:
        try:
            self.c.signal_worker(i, signal.SIGCONT)
        except OSError:
            pass

    def executor_kill(self) -> bool:
        pids = [p for i in self._live_workers() for p in self.c.executor_pids(i)]
        if not pids:
            return False
        try:
            os.kill(self.rng.choice(pids), signal.SIGKILL)
        except OSError:
            return False
        return True

    def master_restart(self) -> bool:
        self.c.kill_master(signal.SIGKILL)
        time.sleep(self.rng.uniform(0.0, 1.0))
        self.c.restart_master()
        return True

    def namenode_restart(self) -> bool:
        self.c.storage.restart_namenode(signal.SIGKILL)
        return True

    def datanode_kill(self) -> bool:
        st = self.c.storage
        live = [i for i, p in enumerate(st.datanodes) if p is not None and p.poll() is None]
        if len(live) < 3:
            return False
        i = self.rng.choice(live)
        st.kill_datanode(i)
        self.later(self.rng.uniform(1.0, 4.0), self._restart_datanode, i)
        return True

    def _restart_datanode(self, i: int) -> None:
        with self.lock:
            if self.closed:
                return
            try:
                self.c.storage.restart_datanode(i, wait=False)
            except Exception as exc:  # noqa: BLE001 - the dashboard reports it; the run goes on
                print(f"  (restarting datanode {i} failed: {exc})", file=sys.stderr)

    def corrupt_replica(self) -> bool:
        """Flip one byte of one copy of a block, never of its last good copy.

        A block whose every copy is corrupt is lost to any block store (HDFS
        too): no survivable fault.  So only a block with two or more copies
        that still hold the right bytes (checked against the file it was put
        from) gets one of them corrupted.
        """
        client = self.c.storage.client()
        path = self.rng.choice(self.stored)
        blocks = client.locations(path)[1]
        block = self.rng.choice(blocks)       # [id, offset, length, replicas, token, digest, gen]: by position
        block_id, offset, length, replicas = block[0], block[1], block[2], block[3]
        if not replicas or length <= 0:
            return False
        with open(self.originals[path], "rb") as f:
            f.seek(offset)
            want = f.read(length)
        good = [r for r in replicas if _holds(blockstore.block_path(r[3], block_id), want)]  # r[3]: data dir
        if len(good) < 2:
            return False
        target = blockstore.block_path(self.rng.choice(good)[3], block_id)
        try:
            with open(target, "r+b") as f:       # flip one byte behind the DataNode's back
                f.seek(self.rng.randrange(length))
                byte = f.read(1)
                f.seek(-1, os.SEEK_CUR)
                f.write(bytes([byte[0] ^ 0xFF]))
        except OSError:
            return False
        return True


def _holds(block_file: str, want: bytes) -> bool:
    try:
        with open(block_file, "rb") as f:
            return f.read(len(want) + 1) == want
    except OSError:
        return False


def run_chaos(jobs: int = 10, seed: int = 1, faults_per_job: int = 2, workdir: str | None = None,
              kinds: tuple = FAULTS, job_timeout: float = 180.0) -> dict:
    """Run ``jobs`` word counts under seeded faults; returns the dashboard as a dict."""
    rng = random.Random(seed)
    root = workdir or tempfile.mkdtemp(prefix="mapred-chaos-")
    os.makedirs(root, exist_ok=True)
    local = write_inputs(root, rng)
    expected = reference(local)
    proxy_box: dict = {}

    def via(master_addr: str) -> str:
        proxy_box["p"] = proxy = ChaosProxy(master_addr, seed).start()
        return proxy.addr

    board = {"jobs_tried": 0, "jobs_exact": 0, "faults": {}, "transport_faults": {}, "data_lost": 0,
             "errors": []}
    started = time.monotonic()
    with Cluster(os.path.join(root, "cluster"), workers=3, slots=1, datanodes=3, dead_timeout=2.0,
                 heartbeat=0.25, worker_via=via, block_size=64 * 1024) as cluster:
        store = cluster.storage.client()
        store.mkdir("/chaos", parents=True)
        stored = []
        for p in local:
            store.put(p, f"/chaos/{os.path.basename(p)}")
            stored.append(f"/chaos/{os.path.basename(p)}")
        uri = cluster.namenode_uri()
        client = mapred.connect(cluster.master_addr, timeout=10.0)
        chaos = Chaos(cluster, rng, stored, dict(zip(stored, local)))
        job = make_job()
        try:
            for n in range(jobs):
                board["jobs_tried"] += 1
                out = os.path.join(root, f"out{n}")
                plan = [(rng.uniform(0.1, 2.5), rng.choice(kinds)) for _ in range(faults_per_job)]
                injector = threading.Thread(target=_inject_all, args=(chaos, plan, board), daemon=True)
                exact_before = board["jobs_exact"]
                try:
                    handle = client.submit(job, f"{uri}/chaos", out)
                    injector.start()
                    handle.wait(timeout=job_timeout)
                    got = read_output(out)
                    if got == expected:
                        board["jobs_exact"] += 1
                    else:
                        wrong = sum(1 for k, v in expected.items() if got.get(k) != v)
                        board["data_lost"] += wrong + sum(1 for k in got if k not in expected)
                        board["errors"].append(f"job {n}: {wrong} wrong or missing words")
                except Exception as exc:  # noqa: BLE001 - a failed job is counted, the run goes on
                    board["errors"].append(f"job {n}: {type(exc).__name__}: {str(exc)[:200]}")
                finally:
                    if injector.ident is not None:
                        injector.join(60)
                    _heal(cluster)
                verdict = "exact" if board["jobs_exact"] > exact_before else "NOT exact"
                print(f"job {n}: faults {[k for _, k in plan]} -> {verdict}", file=sys.stderr, flush=True)
            time.sleep(1.0)
            for path, p in zip(stored, local):            # nothing stored may be lost
                with open(p, "rb") as f:
                    if cluster.storage.client().read_bytes(path) != f.read():   # (a restart replaces the client)
                        board["data_lost"] += 1
                        board["errors"].append(f"{path} no longer reads back as written")
        finally:
            chaos.close()
            client.close()
            if "p" in proxy_box:
                board["transport_faults"] = dict(proxy_box["p"].counts)
                proxy_box["p"].stop()
        board["faults"] = dict(chaos.counts)
    board["seconds"] = round(time.monotonic() - started, 1)
    if workdir is None and not board["errors"]:
        shutil.rmtree(root, ignore_errors=True)    # a temporary dir of its own; kept when something went wrong
    return board


def _inject_all(chaos: Chaos, plan: list, board: dict) -> None:
    for delay, kind in plan:
        time.sleep(delay)
        try:
            chaos.inject(kind)
        except Exception as exc:  # noqa: BLE001 - a fault that could not be injected is reported
            board["errors"].append(f"injecting {kind}: {type(exc).__name__}: {str(exc)[:200]}")


def _heal(cluster: Cluster) -> None:
    """Between jobs: every stopped worker continued, 3 workers registered, all DataNodes back."""
    for i, p in enumerate(cluster.worker_procs):
        if p.poll() is None:
            try:
                cluster.signal_worker(i, signal.SIGCONT)
            except OSError:
                pass
    st = cluster.storage
    for i, p in enumerate(st.datanodes):
        if p is None or p.poll() is not None:
            time.sleep(0.1)
            if st.datanodes[i] is None or st.datanodes[i].poll() is not None:
                try:
                    st.restart_datanode(i, wait=False)
                except Exception:  # noqa: BLE001
                    pass
    cluster.wait_workers(3, timeout=60)
    st.wait_live(3, timeout=60)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--faults-per-job", type=int, default=2)
    ap.add_argument("--dir", default=None, help="scratch directory (default: a new temp dir)")
    ap.add_argument("--json", action="store_true", help="print the dashboard as JSON")
    args = ap.parse_args(argv)
    board = run_chaos(args.jobs, args.seed, args.faults_per_job, args.dir)
    if args.json:
        print(json.dumps(board, indent=1))
    else:
        print(f"jobs tried      {board['jobs_tried']}")
        print(f"jobs exact      {board['jobs_exact']}")
        faults = ", ".join(f"{k} {v}" for k, v in sorted(board["faults"].items())) or "none"
        print(f"faults injected {sum(board['faults'].values())} ({faults})")
        transport = ", ".join(f"{k} {v}" for k, v in sorted(board["transport_faults"].items())) or "none"
        print(f"messages        {transport}")
        print(f"data lost       {board['data_lost']}")
        print(f"seconds         {board['seconds']}")
        for e in board["errors"]:
            print(f"  ! {e}")
    return board


if __name__ == "__main__":
    main()
