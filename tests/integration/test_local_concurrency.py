"""The embedded LocalCluster runs jobs submitted from several threads side by side."""
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import mapred
from mapred.errors import JobFailed


def rendezvous(folder, me, other, wait_s=60.0):
    """A map that only finishes once the *other* job's task has started: proof that both ran at once."""
    def map_batch(block):
        open(os.path.join(folder, me), "w").close()
        deadline = time.monotonic() + wait_s
        while not os.path.exists(os.path.join(folder, other)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"job {me}: job {other} never started while this one ran")
            time.sleep(0.02)
        yield me, int(block.shape[0])
    return map_batch


def add(key, values):
    yield key, sum(values)


@pytest.mark.timeout(120)
def test_jobs_from_two_threads_overlap_and_a_failing_one_leaves_the_others_alone(tmp_path):
    ds = mapred.from_numpy(np.zeros((10, 2)), splits=1)
    folder = str(tmp_path)

    def boom(block):
        raise ValueError("this job fails on purpose")
        yield  # pragma: no cover

    with mapred.LocalCluster(2) as cluster:
        with ThreadPoolExecutor(3) as pool:
            a = pool.submit(cluster.run, mapred.Job(map_batch=rendezvous(folder, "a", "b"), reducer=add,
                                                    max_attempts=1, output_format="msgpack"), ds)
            b = pool.submit(cluster.run, mapred.Job(map_batch=rendezvous(folder, "b", "a"), reducer=add,
                                                    max_attempts=1, output_format="msgpack"), ds)
            bad = pool.submit(cluster.run, mapred.Job(map_batch=boom, max_attempts=1), ds)
            assert a.result().to_list() == [("a", 10)]
            assert b.result().to_list() == [("b", 10)]
            with pytest.raises(JobFailed, match="fails on purpose"):
                bad.result()
        # the cluster goes on running jobs afterwards, from this thread alone too
        assert mapred.Job(map_batch=lambda blk: [("n", int(blk.shape[0]))], reducer=add,
                          output_format="msgpack").run(ds, cluster=cluster).to_list() == [("n", 10)]
