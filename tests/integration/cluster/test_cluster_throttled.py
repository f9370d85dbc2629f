"""Speculation for a worker that is slow but alive: its executors are throttled (stopped 90% of the
time in short slices) while the worker itself keeps heartbeating.  The slow maps get backup attempts,
the counters show them, the worker is never declared lost, and the output equals the reference."""
import signal
import threading
import time

import pytest

import mapred
from mapred.testing import assert_matches_reference

from clusterkit import write_text


def _busy_wordcount():
    def mapper(_offset, line):
        end = time.process_time() + 0.002        # CPU work: a throttled executor really is slower
        while time.process_time() < end:
            pass
        for w in line.split():
            yield w, 1

    def add(word, counts):
        yield word, sum(counts)

    return mapred.Job(mapper, combiner=add, reducer=add, num_reducers=2, name="busy", split_size=4 * 1024)


class Throttle(threading.Thread):
    """SIGSTOP/SIGCONT a worker's executors in 100 ms cycles, stopped for ``share`` of each."""

    def __init__(self, cluster, index: int, share: float = 0.9) -> None:
        super().__init__(daemon=True)
        self.cluster, self.index, self.share = cluster, index, share
        self.done = threading.Event()

    def _signal(self, sig) -> None:
        for pid in self.cluster.executor_pids(self.index):
            try:
                import os
                os.kill(pid, sig)
            except OSError:
                pass

    def run(self) -> None:
        while not self.done.is_set():
            self._signal(signal.SIGSTOP)
            time.sleep(0.1 * self.share)
            self._signal(signal.SIGCONT)
            time.sleep(0.1 * (1 - self.share))
        self._signal(signal.SIGCONT)


@pytest.mark.timeout(120)
def test_a_throttled_worker_gets_backup_attempts(make_cluster, tmp_path):
    cluster = make_cluster(workers=3, slots=1, dead_timeout=5.0)
    path = write_text(tmp_path / "in.txt", 1500)
    job = _busy_wordcount()
    throttle = Throttle(cluster, 0)
    throttle.start()
    try:
        result = job.run(path, str(tmp_path / "out"), cluster=cluster.client())
    finally:
        throttle.done.set()
        throttle.join(5)
    assert_matches_reference(job, [path], result)
    counters = result.counters["job"]
    assert counters["speculative_attempts"] >= 1
    assert "lost_attempts" not in counters
