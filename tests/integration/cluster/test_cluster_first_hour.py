"""First-hour cluster troubles, fixed: relative paths with --master, a worker waiting on a dead
master says so, `cluster up` killed in start-up leaves nothing, running maps start near 0%."""
import os
import subprocess
import sys
import time

import psutil
import pytest

from mapred.errors import ConfigError
from mapred.io.fs import HOSTNAME
from mapred.runtime.client import check_visible, qualify
from mapred.runtime.procs import kill_pids

from clusterkit import wordcount, write_text

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ENV = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.timeout(90)
def test_relative_paths_with_master_resolve_against_the_clients_directory(shared_cluster, tmp_path):
    work = tmp_path / "client-cwd"
    (work / "data").mkdir(parents=True)
    write_text(work / "data" / "in.txt", 300)
    res = subprocess.run([sys.executable, "-m", "mapred", "run", "--master", shared_cluster.master_addr,
                          os.path.join(ROOT, "examples", "wordcount.py"), "data/in.txt", "-o", "out", "-q"],
                         cwd=work, env=ENV, capture_output=True, text=True, timeout=80)
    assert res.returncode == 0, res.stderr
    assert (work / "out" / "_SUCCESS").exists()
    counted = sum(int(line.split("\t")[1]) for p in (work / "out").glob("part-*")
                  for line in p.read_text().splitlines())
    assert counted == sum(len(line.split()) for line in open(work / "data" / "in.txt"))


def test_local_paths_are_refused_when_workers_run_on_other_hosts(tmp_path):
    inputs = qualify(["rel/in.txt", "mrfs://nn:9/x"])
    assert inputs == [os.path.abspath("rel/in.txt"), "mrfs://nn:9/x"]
    check_visible(inputs, str(tmp_path / "out"), [{"host": HOSTNAME}])          # all here: fine
    check_visible(["mrfs://nn:9/x"], "mrfs://nn:9/out", [{"host": "elsewhere"}])  # store paths: fine
    with pytest.raises(ConfigError, match="cannot see it.*mrfs://"):
        check_visible(inputs, str(tmp_path / "out"), [{"host": HOSTNAME}, {"host": "elsewhere"}])


@pytest.mark.timeout(60)
def test_a_worker_pointed_at_a_dead_master_logs_its_retries(tmp_path):
    log = tmp_path / "worker.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "mapred", "worker", "--master", "tcp://127.0.0.1:1",
                                 "--slots", "1", "--data-dir", str(tmp_path / "w")], env=ENV,
                                stdout=f, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: log.read_text().count("retrying in") >= 3, 40, "three retry lines")
        waits = [float(line.rsplit("retrying in ", 1)[1].rstrip("s\n"))
                 for line in log.read_text().splitlines() if "retrying in" in line]
        assert waits == sorted(waits) and waits[-1] > waits[0]       # backing off
    finally:
        kill_pids([proc.pid])


@pytest.mark.timeout(120)
def test_cluster_up_killed_during_start_up_leaves_nothing_running(tmp_path):
    d = tmp_path / "cluster"
    proc = subprocess.Popen([sys.executable, "-m", "mapred", "cluster", "up", "--workers", "2", "--datanodes",
                             "2", "--dir", str(d)], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    seen = {}

    def started_some():
        try:
            for c in psutil.Process(proc.pid).children(recursive=True):
                seen.setdefault(c.pid, c)
        except psutil.Error:
            pass
        return len([c for c in seen.values() if "mapred" in " ".join(_cmd(c)) and "guard" not in " ".join(_cmd(c))]) >= 2
    try:
        wait_until(started_some, 60, "start-up to be under way")
        proc.kill()
        proc.wait(10)
        _, alive = psutil.wait_procs(list(seen.values()), timeout=20)
        assert [(_cmd(p), p.pid) for p in alive if p.status() != psutil.STATUS_ZOMBIE] == []
        assert not (d / "cluster.json").exists()
    finally:
        kill_pids(list(seen))


def _cmd(p):
    try:
        return p.cmdline()
    except psutil.Error:
        return []


@pytest.mark.timeout(90)
def test_a_running_map_does_not_start_at_99_percent(shared_cluster, tmp_path):
    path = write_text(tmp_path / "in.txt", 200)
    handle = shared_cluster.client().submit(wordcount(reducers=1, map_sleep=4.0), [path], str(tmp_path / "out"))
    try:
        def running_maps():
            st = handle.status(detail=True)
            return [a for t in st.get("tasks", []) for a in t.get("attempts", [])
                    if a.get("state") == "RUNNING" and "-m-" in a.get("attempt", "")]
        attempts = wait_until(running_maps, 30, "a running map")
        time.sleep(1.0)        # a heartbeat or two after the start
        attempts = running_maps() or attempts
        assert all(a.get("progress", 0.0) < 0.5 for a in attempts), attempts
        handle.wait(timeout=60)
    finally:
        if not handle.done():
            handle.kill()


def _write_records(path, n: int) -> None:
    from mapred.io.recordfile import RecordWriter
    with open(path, "wb") as f:
        writer = RecordWriter(f, chunk_bytes=256)
        for i in range(n):
            writer.write(f"k{i % 5}", i)
        writer.close()


def test_record_and_dataset_inputs_are_qualified_like_text(tmp_path, monkeypatch):
    import mapred
    monkeypatch.chdir(tmp_path)
    ds = mapred.from_numpy(__import__("numpy").arange(8.0).reshape(4, 2), splits=2, path="ds")
    rec, text, data = qualify([mapred.records("rel/a.bin", "mrfs://nn:9/b.bin"), "rel/t.txt", ds])
    assert rec == mapred.records(str(tmp_path / "rel" / "a.bin"), "mrfs://nn:9/b.bin")
    assert text == str(tmp_path / "rel" / "t.txt") and data.path == str(tmp_path / "ds")
    with pytest.raises(ConfigError, match="a.bin"):    # a local record file is no more visible elsewhere
        check_visible([rec], "mrfs://nn:9/out", [{"host": "elsewhere"}])


@pytest.mark.timeout(90)
def test_a_relative_record_file_input_with_master_reads_the_clients_file(shared_cluster, tmp_path, monkeypatch):
    import mapred
    (tmp_path / "data").mkdir()
    _write_records(tmp_path / "data" / "in.bin", 400)       # no .mpk suffix: records() says what it is
    monkeypatch.chdir(tmp_path)                              # the workers run in other directories
    job = mapred.Job(mapper=lambda k, v: [(k, v)], reducer=lambda k, vs: [(k, sum(vs))], num_reducers=2,
                     output_format="msgpack", name="records-rel")
    result = shared_cluster.client().run(job, mapred.records("data/in.bin"), "out")
    assert dict(result) == {f"k{r}": sum(i for i in range(400) if i % 5 == r) for r in range(5)}
    assert result.path == str(tmp_path / "out")


@pytest.mark.timeout(90)
def test_a_map_only_job_reports_its_output_bytes(shared_cluster, tmp_path):
    import mapred
    path = write_text(tmp_path / "in.txt", 600, 5)
    job = mapred.Job(mapper=lambda _o, line: [(line.split()[0], len(line))], num_reducers=0, split_size=4096,
                     name="map-only")
    for result in (job.run([path], str(tmp_path / "local")),
                   shared_cluster.client().run(job, [path], str(tmp_path / "cluster"))):
        written = sum(os.path.getsize(os.path.join(result.path, n)) for n in os.listdir(result.path)
                      if n.startswith("part-"))
        assert written > 0 and result.counters["map"]["output_bytes"] == written, result.counters
