"""Running attempts report their counters so far: in worker heartbeats, `mapred job status`, the local runner."""
import sys
import time

import cloudpickle
import pytest

import mapred
from mapred.runtime.status import render

from clusterkit import write_text

cloudpickle.register_pickle_by_value(sys.modules[__name__])   # workers cannot import this test module


def slow_counting(offset, line):
    mapred.counter("probe", "lines")
    time.sleep(0.001)
    yield line[:1], 1


def slow_batches(lines):
    mapred.counter("probe", "batches")
    time.sleep(0.3)
    return [(ln[:1], 1) for ln in lines]


@pytest.mark.timeout(90)
def test_heartbeats_carry_live_counters_of_running_attempts(shared_cluster, tmp_path):
    client = shared_cluster.client()
    path = write_text(tmp_path / "in.txt", 40000)
    job = mapred.Job(slow_counting, reducer=lambda k, vs: [(k, sum(vs))], name="live-counters")
    job.split_size = 1 << 20
    handle = client.submit(job, path, str(tmp_path / "out"))
    try:
        deadline = time.monotonic() + 60
        live = {}
        while not live.get("map", {}).get("input_records") and time.monotonic() < deadline:
            st = handle.status(detail=True)
            running = [a for t in st["tasks"] for a in t["attempts"] if a["state"] == "RUNNING"]
            live = next((a["counters"] for a in running if a.get("counters")), {})
            time.sleep(0.2)
        assert live["map"]["input_records"] > 0 and live["map"]["input_bytes"] > 0
        assert live["probe"]["lines"] > 0                          # user counters travel too
        assert "so far: map.input_bytes=" in render(st)
    finally:
        handle.kill()


@pytest.mark.timeout(60)
def test_local_runner_progress_sees_counters_before_any_map_finishes(tmp_path):
    path = write_text(tmp_path / "in.txt", 6000)
    seen = []

    def progress(p, counters):
        if p["maps_done"] == 0:
            seen.append(counters.get("map", {}).get("input_records", 0))

    job = mapred.Job(map_batch=slow_batches, reducer=lambda k, vs: [(k, sum(vs))], split_size=1 << 30)
    with mapred.LocalCluster(1, config=mapred.config.load(batch_lines=500)) as cluster:
        cluster.run(job, [path], str(tmp_path / "out"), progress=progress)
    assert max(seen) > 0
