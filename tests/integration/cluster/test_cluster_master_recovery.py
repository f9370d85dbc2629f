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
