"""How long a rule run keeps the NameNode from answering: sliced runs against one-step runs.

A NameNode is started on a namespace of ``--dirs`` x ``--files`` empty files
(written straight into its journal), with a rule that deletes every
directory.  While a real run goes, one client times ``stat`` requests; the
longest wait is how long the NameNode went unanswering.  The peer is the
same run done as one step (``Housekeeper.run`` on a copy of the namespace in
this process): that is how long a loop that ran the rules in one go would
have stalled every client.  Reported as a ratio.

    python benchmarks/cleanup_loop.py [--dirs 300 --files 200]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import scratch, table  # noqa: E402

from mapred.storage import cleanup  # noqa: E402
from mapred.storage.housekeeping import Housekeeper  # noqa: E402
from mapred.storage.journal import Journal  # noqa: E402
from mapred.storage.minicluster import StorageCluster  # noqa: E402
from mapred.storage.namesystem import Namesystem, Settings  # noqa: E402

RULES = {"max_deletions_per_run": 10**6,
         "rule": [{"id": "big", "path": "/big/*", "expire_after": "1d", "trash": False}]}


def build(ns, dirs: int, files: int, old: float) -> None:
    for i in range(dirs):
        for j in range(files):
            for op in ns.add_file_ops(f"/big/d{i:04d}/f{j:04d}", 1, 1 << 20, [], old):
                ns.apply(op)
    for op in ns.add_file_ops("/keep/file", 1, 1 << 20, [], time.time()):
        ns.apply(op)


def one_step(dirs: int, files: int) -> float:
    """Seconds a single-step run takes (what the loop would stall for)."""
    from mapred.storage.namespace import Namespace
    ns = Namespace()
    build(ns, dirs, files, time.time() - 30 * 86400)
    core = Namesystem(ns, Settings(replication=1))
    core.set_safemode("leave")
    keeper = Housekeeper(core, cleanup.parse_rules(RULES), now=time.time())
    start = time.perf_counter()
    report = keeper.run(time.time())
    took = time.perf_counter() - start
    assert len(report["actions"]) == dirs
    return took


def sliced(dirs: int, files: int, root: str) -> dict:
    """The longest and median ``stat`` waits while a real NameNode runs the rule in slices."""
    journal = Journal(os.path.join(root, "nn", "name"))
    ns = journal.load()
    build(ns, dirs, files, time.time() - 30 * 86400)
    journal.checkpoint(ns)
    journal.close()
    rules = os.path.join(root, "rules.json")
    with open(rules, "w") as f:
        json.dump(RULES, f)
    with StorageCluster(root, datanodes=0, replication=1, namenode_args=("--cleanup-rules", rules)) as sc:
        c = sc.client()
        c.stat("/keep/file")
        waits = []
        start = time.perf_counter()
        run = c.cleanup_run_start()["run"]
        while c.cleanup_run_status(run)["state"] not in ("done", "failed"):
            t = time.perf_counter()
            c.stat("/keep/file")
            waits.append(time.perf_counter() - t)
        total = time.perf_counter() - start
        assert c.ls("/big") == []
    return {"max": max(waits), "median": statistics.median(waits), "answered": len(waits), "total": total}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dirs", type=int, default=300)
    ap.add_argument("--files", type=int, default=200)
    args = ap.parse_args()
    stall = one_step(args.dirs, args.files)
    with scratch("mapred-cleanup-bench-") as root:
        got = sliced(args.dirs, args.files, root)
    rows = [("one step (the loop stalls this long)", f"{stall:.3f}"),
            ("sliced: longest stat wait during the run", f"{got['max']:.3f}"),
            ("sliced: median stat wait", f"{got['median']:.4f}"),
            ("sliced: whole run, wall", f"{got['total']:.3f}")]
    print(f"{args.dirs * args.files} files; {got['answered']} stat requests answered during the run")
    print(table(rows, ("", "seconds")))
    print(f"stall ratio (one step / longest sliced wait): {stall / got['max']:.1f}x")


if __name__ == "__main__":
    main()
