"""A master that comes back: kill -9 at a random point of a 3-worker word count, restart on the same
data dir, and the job finishes with output equal to the sequential reference; workers rejoin."""
import os
import random
import signal
import time

import pytest

from mapred.runtime.procs import Cluster
from mapred.testing import assert_matches_reference

from clusterkit import FAST, wordcount, write_text


def master_kill_trial(tmp_path, seed: int, lines: int = 3000) -> dict:
    """One seeded trial: returns the job's counters after a kill -9 and restart at a random moment."""
    rng = random.Random(seed)
    with Cluster(str(tmp_path / f"c{seed}"), workers=3, slots=1, **FAST) as cluster:
        path = write_text(tmp_path / f"in{seed}.txt", lines, seed)
        job = wordcount(reducers=3, map_sleep=0.15, reduce_sleep=0.3, split=8 * 1024)
        handle = cluster.client().submit(job, path, str(tmp_path / f"out{seed}"))
        time.sleep(rng.uniform(0.2, 3.0))           # somewhere in mapping, reducing or committing
        cluster.kill_master(signal.SIGKILL)
        time.sleep(rng.uniform(0.0, 1.0))
        cluster.restart_master()
        handle.client = cluster.client()           # a fresh client; the old one's wait() is tested below
        result = handle.wait(timeout=120)
        assert_matches_reference(job, [path], result)
        assert os.path.exists(os.path.join(result.path, "_SUCCESS"))
        assert not os.path.exists(os.path.join(result.path, "_temporary"))
        cluster.wait_workers(3, timeout=30)        # every worker registered with the new master
        return result.counters


@pytest.mark.timeout(300)
@pytest.mark.parametrize("seed", [1, 2])
def test_master_kill9_and_restart_finishes_the_job_exactly(tmp_path, seed):
    master_kill_trial(tmp_path, seed)


@pytest.mark.timeout(200)
def test_a_waiting_client_rides_out_the_restart_and_committed_tasks_are_kept(make_cluster, tmp_path):
    cluster = make_cluster(workers=3, slots=1)
    client = cluster.client()
    path = write_text(tmp_path / "in.txt", 3000, 7)
    job = wordcount(reducers=3, map_sleep=0.3, split=8 * 1024)
    handle = client.submit(job, path, str(tmp_path / "out"))
    deadline = time.monotonic() + 60
    while handle.status()["progress"].get("maps_done", 0) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    cluster.kill_master(signal.SIGKILL)
    cluster._client = None          # the restart must not close the client that waits
    cluster.restart_master()
    result = handle.wait(timeout=120)  # the same client, across the restart
    assert_matches_reference(job, [path], result)
    assert result.counters["job"]["recovered_tasks"] >= 3
    logs = "\n".join(client.logs(result.job_id))
    assert "recovered after a master restart" in logs
    client.close()


@pytest.mark.timeout(120)
def test_finished_jobs_are_listed_and_queryable_after_a_restart(make_cluster, tmp_path):
    from click.testing import CliRunner

    from mapred.cli import main as cli

    cluster = make_cluster(workers=1, slots=2)
    client = cluster.client()
    path = write_text(tmp_path / "in.txt", 500, 4)
    job = wordcount(reducers=2)
    done = client.submit(job, path, str(tmp_path / "out")).wait(timeout=60)
    before = client.status(done.job_id)
    cluster.kill_master(signal.SIGKILL)
    cluster.restart_master()
    client = cluster.client()
    listed = {j["job_id"]: j for j in client.jobs()}
    assert done.job_id in listed, listed              # the restarted master still lists the finished job
    entry = listed[done.job_id]
    assert entry["state"] == "SUCCEEDED" and entry["name"] == "wordcount"
    assert entry["progress"]["maps_done"] == before["progress"]["maps_done"] >= 1
    assert entry["progress"]["reduces_done"] == 2 and entry["output"] == before["output"]
    st = client.status(done.job_id)
    assert st["state"] == "SUCCEEDED" and st["counters"] == before["counters"]
    assert st["submitted"] == before["submitted"] and st["finished"] == before["finished"]
    out = CliRunner().invoke(cli, ["job", "--master", cluster.master_addr, "list"])
    assert out.exit_code == 0 and done.job_id in out.output and "SUCCEEDED" in out.output, out.output
    assert "reduces 2/2" in out.output, out.output
