"""`benchmarks/peers.py --tiny`: every job through mapred, the hand-written pools and GNU tools, results equal.

The peers with start-up of their own (Spark, dask, mrjob) are left to the
benchmark itself; this checks the harness and that each of mapred's job
shapes gives its peer's answer (peers.py exits non-zero when one differs).
Run as a subprocess, as a user runs it.  No timing is asserted.
"""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JOBS = ("wc-record", "wc-tuned", "grep", "index", "records", "join", "terasort")


@pytest.mark.timeout(300)
def test_peers_tiny_mode_runs_every_job_with_equal_results(tmp_path):
    out = tmp_path / "rows.json"
    run = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "peers.py"), "--tiny",
                          "--systems", "mapred,pool,gnu", "--jobs", ",".join(JOBS), "--dir", str(tmp_path / "d"),
                          "--json", str(out)], capture_output=True, text=True, timeout=280, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = json.loads(out.read_text())
    got = {(r["job"], r["system"]) for r in rows}
    for job in JOBS:
        assert (job, "pool") in got and (job, "mapred") in got
    assert ("wc-record", "mapred-fold") in got and ("terasort", "mapred-record") in got
    assert all(r["wall"] > 0 and r["ratio"] > 0 for r in rows)
    profiled = next(r for r in rows if r["system"] == "mapred" and r["job"] == "wc-record")["profile"]
    assert any("time_ms" in c for c in profiled.values())
    assert "every result checked equal" in run.stdout and "wall ratio" in run.stdout
