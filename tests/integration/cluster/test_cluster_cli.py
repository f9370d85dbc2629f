"""`mapred cluster up/down`, `mapred run --master` and `mapred job ...` as a user types them."""
import json
import os
import subprocess
import sys

import psutil
import pytest

from mapred.runtime.procs import kill_pids

from clusterkit import write_text

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def mapred_cmd(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "mapred", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


@pytest.mark.timeout(120)
def test_cluster_up_run_job_cluster_down(tmp_path):
    d = str(tmp_path / "cluster")
    up = mapred_cmd("cluster", "up", "--workers", "2", "--slots", "1", "--dir", d, "--dead-timeout", "2")
    state_path = os.path.join(d, "cluster.json")
    pids = []
    try:
        assert up.returncode == 0, up.stderr
        state = json.load(open(state_path))
        pids = [p for p, _ in state["pids"]]
        assert len(pids) == 4 and all(psutil.pid_exists(p) for p in pids)   # master, 2 workers, the service
        master = state["master"]
        assert f"master    {master}" in up.stdout
        assert f"service   {state['service']}" in up.stdout and os.path.join(d, "token") in up.stdout
        token = open(os.path.join(d, "token")).read().strip()
        import httpx
        r = httpx.get(state["service"] + "/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert r.status_code == 200 and 'mapred_workers{state="live"} 2.0' in r.text
        again = mapred_cmd("cluster", "up", "--dir", d)
        assert again.returncode != 0 and "already recorded" in again.stderr

        path = write_text(tmp_path / "in.txt", 500)
        out = str(tmp_path / "out")
        run = mapred_cmd("run", "--master", master, "examples/wordcount.py", path, "-o", out)
        assert run.returncode == 0, run.stderr
        expected = {}
        for line in open(path):
            for w in line.split():
                expected[w] = expected.get(w, 0) + 1
        got = {}
        for name in os.listdir(out):
            if name.startswith("part-"):
                for line in open(os.path.join(out, name)).read().splitlines():
                    k, v = line.split("\t")
                    got[k] = int(v)
        assert got == expected

        listing = mapred_cmd("job", "--master", master, "list")
        assert listing.returncode == 0 and "SUCCEEDED" in listing.stdout and "wordcount" in listing.stdout
        job_id = listing.stdout.split()[0]
        status = mapred_cmd("job", "--master", master, "status", job_id)
        assert status.returncode == 0 and "SUCCEEDED" in status.stdout and "-a0 SUCCEEDED on" in status.stdout
        profile = mapred_cmd("job", "--master", master, "profile", job_id, "--json")
        assert profile.returncode == 0, profile.stderr
        prof = json.loads(profile.stdout)
        maps = [t for t in prof["tasks"] if "-m-" in t]
        assert maps and all(prof["tasks"][t]["total"] >= prof["tasks"][t].get("read", 0) for t in maps)
        assert set(prof["summed"]) == {"map", "reduce"} and "write" in prof["summed"]["reduce"]
        table = mapred_cmd("job", "--master", master, "profile", job_id)
        assert table.returncode == 0 and "map stages (ms):" in table.stdout and f"all {len(maps)} maps" in table.stdout
    finally:
        down = mapred_cmd("cluster", "down", "--dir", d)
        kill_pids(pids)     # in case `down` failed: nothing may outlive the test
    assert down.returncode == 0, down.stderr
    assert not os.path.exists(state_path)
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)
    missing = mapred_cmd("cluster", "down", "--dir", d)
    assert missing.returncode != 0 and "no running cluster" in missing.stderr


@pytest.mark.timeout(150)
def test_cluster_restart_master_after_a_kill_9_and_down_stops_the_new_one(tmp_path):
    d = str(tmp_path / "cluster")
    up = mapred_cmd("cluster", "up", "--workers", "1", "--slots", "1", "--dir", d, "--no-service")
    state_path = os.path.join(d, "cluster.json")
    pids = []
    try:
        assert up.returncode == 0, up.stderr
        state = json.load(open(state_path))
        pids, master, old = [p for p, _ in state["pids"]], state["master"], state["master_pid"]
        assert old in pids and state["master_env"]["MAPRED_DEAD_TIMEOUT"] == "10.0"
        path = write_text(tmp_path / "in.txt", 300)
        run = mapred_cmd("run", "--master", master, "examples/wordcount.py", path, "-o", str(tmp_path / "out"))
        assert run.returncode == 0, run.stderr
        alive = mapred_cmd("cluster", "restart-master", "--dir", d)
        assert alive.returncode != 0 and f"(pid {old}) is still running" in alive.stderr
        os.kill(old, 9)
        from mapred.runtime.procs import _running, wait_for
        created = dict(map(tuple, state["pids"]))[old]
        wait_for(lambda: not _running(old, created), 10, "the master to die")   # its zombie may linger
        again = mapred_cmd("cluster", "restart-master", "--dir", d)
        assert again.returncode == 0 and f"master    {master}" in again.stdout, again.stderr
        state = json.load(open(state_path))
        pids = [p for p, _ in state["pids"]]
        assert state["master_pid"] != old and state["master_pid"] in pids and old not in pids
        listing = mapred_cmd("job", "--master", master, "list")     # the job that ended before the kill
        assert listing.returncode == 0 and "SUCCEEDED" in listing.stdout, listing
    finally:
        down = mapred_cmd("cluster", "down", "--dir", d)
        kill_pids(pids)
    assert down.returncode == 0, down.stderr
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)
