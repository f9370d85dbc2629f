"""Lost control messages cost time, never a job: a dropped kill or a dropped assignment (the first
only, through a ``ChaosProxy`` with a limit) between a real master and a real 1-slot worker.

Before the fix, a dropped kill left the worker's slot busy with the killed attempt; the master,
believing the slot free, sent the next job's map there, and the worker's "no free slot" refusals
were counted as the task's failures, four of them in milliseconds: the job FAILED.  A dropped first
assignment (the one carrying the job's code) left every later assignment to that worker refused with
"job code never arrived", also counted, also a FAILED job.
"""
import time

import pytest

from mapred.net.chaos import ChaosProxy, Faults
from mapred.testing import assert_matches_reference

from clusterkit import running_attempts, wait_status, wordcount, write_text


def _drop_first(kind: str):
    """A ``worker_via`` that puts a proxy losing exactly the first ``kind`` message in front of the master."""
    box = {}

    def via(master_addr: str) -> str:
        faults = Faults(types=frozenset({kind}), drop=1.0, delay=0.0, duplicate=0.0, reorder=0.0, limit=1)
        box["proxy"] = ChaosProxy(master_addr, seed=0, faults=faults).start()
        return box["proxy"].addr

    return via, box


@pytest.mark.timeout(120)
def test_a_dropped_kill_leaves_no_busy_slot_and_refusals_are_not_failures(make_cluster, tmp_path):
    via, box = _drop_first("mw.kill")
    try:
        cluster = make_cluster(workers=1, slots=1, worker_via=via)
        client = cluster.client()
        slow = wordcount(reducers=1, map_sleep=60.0)
        first = client.submit(slow, write_text(tmp_path / "a.txt", 50, 1), str(tmp_path / "outa"))
        wait_status(client, first.job_id, lambda st: running_attempts(st, "m"))
        first.kill("make way")                     # its Kill is the message the proxy loses
        path = write_text(tmp_path / "b.txt", 400, 2)
        job = wordcount(reducers=2)
        result = client.submit(job, path, str(tmp_path / "outb")).wait(timeout=60)
        assert_matches_reference(job, [path], result)
        assert box["proxy"].counts["dropped"] == 1
        assert result.counters["job"].get("failed_attempts", 0) == 0   # a refusal is no failure
    finally:
        if "proxy" in box:
            box["proxy"].stop()


@pytest.mark.timeout(120)
def test_a_dropped_first_assignment_gets_the_jobs_code_sent_again(make_cluster, tmp_path):
    via, box = _drop_first("mw.assign")
    try:
        cluster = make_cluster(workers=1, slots=1, worker_via=via)
        client = cluster.client()
        path = write_text(tmp_path / "in.txt", 2000, 3)
        job = wordcount(reducers=2, split=8 * 1024)
        started = time.monotonic()
        result = client.submit(job, path, str(tmp_path / "out")).wait(timeout=90)
        assert_matches_reference(job, [path], result)
        assert box["proxy"].counts["dropped"] == 1
        # the lost assignment counts once (the master cannot tell it from a worker that ignores work);
        # the refusals that followed for want of the job's code do not
        assert result.counters["job"].get("failed_attempts", 0) <= 1, (result.counters, time.monotonic() - started)
    finally:
        if "proxy" in box:
            box["proxy"].stop()
