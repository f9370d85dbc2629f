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


@pytest.mark.timeout(180)
def test_model_jobs_agree_within_a_tolerance_and_a_missing_peer_is_named(tmp_path, monkeypatch, capsys):
    """logreg and k-means against scikit-learn, compared by accuracy and inertia, not bit for bit;
    a peer whose package is missing (here Spark MLlib, made to look absent) is skipped with a line saying so."""
    monkeypatch.syspath_prepend(os.path.join(ROOT, "benchmarks"))
    import peers
    monkeypatch.setitem(peers.NEEDS, "spark-mllib", "no_such_module_for_the_peers_test")
    rows = peers.main(["--tiny", "--jobs", "logreg,kmeans", "--systems", "mapred,sklearn,spark-mllib",
                       "--dir", str(tmp_path / "d")])
    out = capsys.readouterr().out
    for job in ("logreg", "kmeans"):
        assert f"{job}: spark-mllib skipped: no_such_module_for_the_peers_test is not installed" in out
    assert {(r["job"], r["system"]) for r in rows} == {(j, s) for j in ("logreg", "kmeans") for s in ("sklearn", "mapred")}
    assert peers.agree("logreg", 0.90, 0.915) and not peers.agree("logreg", 0.90, 0.93)
    assert peers.agree("kmeans", 2.50, 2.60) and not peers.agree("kmeans", 2.50, 2.70)
    assert peers.agree("wc-record", {"a": 1}, {"a": 1}) and not peers.agree("wc-record", {"a": 1}, {"a": 2})
