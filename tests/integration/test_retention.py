"""Many jobs on one embedded cluster: the core forgets finished jobs, memory stays flat.

A 500-pass fit used to leave 500 jobs in the default cluster's core, and every
event scanned them.  Now a finished job leaves the core's working set for a
history bounded by ``job_history``; this test runs 1,000 small jobs on one
default ``LocalCluster`` and checks, after the first hundred, that the jobs
the core holds and the process's resident memory stay flat.
"""
import psutil
import pytest

import mapred

pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]

JOBS = 1000
WARM = 100                    # jobs before the baseline: caches, pools and the history fill up
RSS_SLACK = 24 << 20          # allocator noise; a leak of even 25 KiB a job would pass this by far


def _mapper(offset, line):
    for word in line.split():
        yield word, 1


def _reducer(word, counts):
    yield word, sum(counts)


def test_thousand_jobs_leave_the_core_and_memory_flat(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("a b a\nc b a\n")
    out = str(tmp_path / "out")
    job = mapred.Job(mapper=_mapper, reducer=_reducer, name="tiny")
    proc = psutil.Process()
    held, rss = [], []
    with mapred.LocalCluster() as cluster:
        for n in range(1, JOBS + 1):
            result = cluster.run(job, [str(src)], out, overwrite=True)
            if n % 100 == 0:
                assert dict(result) == {"a": "3", "b": "2", "c": "1"}
                held.append(cluster.core.held_jobs())
                rss.append(proc.memory_info().rss)
    assert all(h["active"] == 0 for h in held), held       # nothing finished stays in the working set
    assert all(h["history"] == 100 for h in held), held    # the default history: the last 100 jobs
    base = rss[0]   # after the first hundred
    assert max(rss) - base < RSS_SLACK, [f"{(r - base) / 2**20:+.1f} MiB" for r in rss]
