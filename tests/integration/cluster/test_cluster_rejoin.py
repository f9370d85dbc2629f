"""Rejoin that always works: a worker paused past the dead timeout and resumed, 50 times, rejoins
every time (a fresh routing id per session; registration retried until acknowledged); then it runs work."""
import signal
import time

import pytest

from mapred.testing import assert_matches_reference

from clusterkit import wordcount, write_text


def _alive(cluster, pid):
    return [w for w in cluster.client().workers(alive_only=False) if w["pid"] == pid and w["alive"]]


def _wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.mark.timeout(300)
def test_a_worker_paused_and_resumed_50_times_rejoins_every_time(make_cluster, tmp_path):
    cluster = make_cluster(workers=1, slots=1, dead_timeout=0.6, heartbeat=0.1)
    pid = cluster.worker_pid(0)
    rejoined = 0
    for cycle in range(50):
        cluster.signal_worker(0, signal.SIGSTOP)
        try:
            _wait(lambda: not _alive(cluster, pid), 20, f"the master to declare the worker dead (cycle {cycle})")
        finally:
            cluster.signal_worker(0, signal.SIGCONT)
        _wait(lambda: _alive(cluster, pid), 20, f"the worker to rejoin (cycle {cycle})")
        rejoined += 1
    assert rejoined == 50
    path = write_text(tmp_path / "in.txt", 500)
    job = wordcount(reducers=2)
    assert_matches_reference(job, [path], job.run(path, str(tmp_path / "out"), cluster=cluster.client()))
