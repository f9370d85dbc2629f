"""Workers killed, stopped, crashing, of the wrong version or without the secret."""
import os
import signal
import time

import pytest

import mapred
from mapred.errors import ClusterError
from mapred.testing import assert_matches_reference

from clusterkit import running_attempts, wait_status, wordcount, worker_index, write_text


def _kill_worker_running(cluster, st, kind):
    attempt, worker_id = running_attempts(st, kind)[0]
    cluster.kill_worker(worker_index(cluster, worker_id))
    return worker_id


@pytest.mark.timeout(90)
def test_worker_sigkilled_during_the_map_phase(make_cluster, tmp_path):
    cluster = make_cluster(short_circuit=False)
    client = cluster.client()
    path = write_text(tmp_path / "in.txt", 4000)
    job = wordcount(reducers=3, map_sleep=0.4, split=12 * 1024)
    handle = client.submit(job, path, str(tmp_path / "out"))
    st = wait_status(client, handle.job_id, lambda s: s["progress"]["maps_done"] >= 1
                     and s["state"] == "MAPPING" and running_attempts(s, "m"))
    dead = _kill_worker_running(cluster, st, "m")
    result = handle.wait(timeout=60)
    assert_matches_reference(job, [path], result)
    assert result.counters["job"]["lost_attempts"] >= 1
    logs = "\n".join(client.logs(result.job_id))     # `mapred job logs` says why attempts re-ran
    assert f"worker {dead} lost" in logs, logs[-2000:]


@pytest.mark.timeout(90)
def test_worker_sigkilled_during_the_reduce_phase(make_cluster, tmp_path):
    cluster = make_cluster(short_circuit=False)
    client = cluster.client()
    path = write_text(tmp_path / "in.txt", 4000)
    job = wordcount(reducers=3, reduce_sleep=1.5, split=12 * 1024)
    handle = client.submit(job, path, str(tmp_path / "out"))
    st = wait_status(client, handle.job_id, lambda s: s["state"] == "REDUCING" and running_attempts(s, "r"))
    dead = _kill_worker_running(cluster, st, "r")
    result = handle.wait(timeout=60)
    assert_matches_reference(job, [path], result)
    counters = result.counters["job"]
    assert counters["lost_attempts"] >= 1
    held_maps = any(a["worker"] == dead and a["state"] == "SUCCEEDED"
                    for t in st["tasks"] if "-m-" in t["task"] for a in t["attempts"])
    if held_maps:   # its map outputs were needed by reducers and had to be re-run elsewhere
        assert counters["rerun_maps"] >= 1


@pytest.mark.timeout(90)
def test_sigstopped_straggler_is_overtaken_by_a_speculative_attempt(make_cluster, tmp_path):
    # a long dead timeout: only speculation can finish the job while the worker is stopped
    cluster = make_cluster(dead_timeout=60.0)
    client = cluster.client()
    path = write_text(tmp_path / "in.txt", 4000)
    job = wordcount(reducers=2, map_sleep=0.3, split=12 * 1024)
    handle = client.submit(job, path, str(tmp_path / "out"))
    st = wait_status(client, handle.job_id, lambda s: s["progress"]["maps_done"] >= 1 and running_attempts(s, "m"))
    _attempt, worker_id = running_attempts(st, "m")[0]
    cluster.signal_worker(worker_index(cluster, worker_id), signal.SIGSTOP)
    result = handle.wait(timeout=60)
    assert_matches_reference(job, [path], result)        # exactly once: no duplicate, no loss
    counters = result.counters["job"]
    assert counters["speculative_attempts"] >= 1
    assert "lost_attempts" not in counters
    assert len(os.listdir(tmp_path / "out")) == 2 + 1    # two parts and _SUCCESS, no temp leftovers


@pytest.mark.timeout(60)
def test_crashing_executor_fails_only_that_attempt(make_cluster, tmp_path):
    cluster = make_cluster(workers=2)
    marker = str(tmp_path / "crashed-once")

    def mapper(offset, line):
        if not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(3)
        for w in line.split():
            yield w, 1

    job = mapred.Job(mapper, reducer=lambda k, vs: [(k, sum(vs))], name="crasher")
    path = write_text(tmp_path / "in.txt", 200)
    result = job.run(path, str(tmp_path / "out"), cluster=cluster.client())
    assert result.counters["job"]["failed_attempts"] == 1
    logs = "\n".join(cluster.client().logs(result.job_id))
    assert "executor process exited with status 3" in logs
    ref = mapred.Job(lambda o, line: [(w, 1) for w in line.split()], reducer=lambda k, vs: [(k, sum(vs))])
    assert_matches_reference(ref, [path], result)


@pytest.mark.timeout(60)
def test_worker_of_another_version_is_refused_naming_both(make_cluster):
    cluster = make_cluster(workers=1)
    i = cluster.start_worker(wait=False, extra=["--claim-version", "0.0.0-elsewhere"])
    proc = cluster.worker_procs[i]
    proc.wait(30)
    assert proc.returncode != 0
    log = open(os.path.join(cluster.dir, f"worker-{i}.log")).read()
    assert "0.0.0-elsewhere" in log and mapred.__version__ in log
    assert len(cluster.client().workers()) == 1


@pytest.mark.timeout(90)
def test_with_a_secret_a_worker_without_it_cannot_register(make_cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("MAPRED_SECRET", "correct horse battery staple")
    cluster = make_cluster(workers=2, short_circuit=False,
                           env={"MAPRED_SECRET": "correct horse battery staple"})
    client = cluster.client()
    job = wordcount(split=8 * 1024)
    path = write_text(tmp_path / "in.txt", 1000)
    assert_matches_reference(job, [path], job.run(path, str(tmp_path / "out"), cluster=client))
    stranger_env = {k: v for k, v in cluster.env.items() if k != "MAPRED_SECRET"}
    i = cluster.start_worker(wait=False, env=stranger_env)
    log_path = os.path.join(cluster.dir, f"worker-{i}.log")
    deadline = time.monotonic() + 30
    while "shuffle at" not in (open(log_path).read() if os.path.exists(log_path) else ""):
        assert time.monotonic() < deadline, "the stranger worker never started"
        time.sleep(0.05)
    watch_until = time.monotonic() + 3.0     # several registration attempts at its backoff
    while time.monotonic() < watch_until:
        assert len(client.workers()) == 2, "a worker without the secret registered"
        time.sleep(0.2)
    assert "registered with master" not in open(log_path).read()
    monkeypatch.delenv("MAPRED_SECRET")
    with pytest.raises(ClusterError):
        mapred.connect(cluster.master_addr, timeout=1.0)


@pytest.mark.timeout(60)
def test_executor_over_its_memory_cap_fails_with_a_clear_reason(make_cluster, tmp_path):
    cluster = make_cluster(workers=1, env={"MAPRED_EXECUTOR_MEMORY_CAP": str(300 << 20)})

    def hog(offset, line):
        blob = bytearray(600 << 20)
        time.sleep(5)
        yield line, len(blob)

    job = mapred.Job(hog, reducer=lambda k, vs: [(k, sum(vs))], name="hog", max_attempts=2)
    path = write_text(tmp_path / "in.txt", 3)
    with pytest.raises(mapred.JobFailed) as info:
        job.run(path, str(tmp_path / "out"), cluster=cluster.client())
    assert "MemoryCapExceeded" in str(info.value) and "over its cap of 300 MiB" in str(info.value)


@pytest.mark.timeout(60)
def test_a_dead_master_is_a_clear_error_for_a_waiting_client(make_cluster, tmp_path):
    cluster = make_cluster(workers=1)
    client = mapred.connect(cluster.master_addr, timeout=2.0, grace=3.0)   # a master that stays dead
    try:
        handle = client.submit(wordcount(map_sleep=30.0), write_text(tmp_path / "in.txt", 10),
                               str(tmp_path / "out"))
        cluster.master_proc.kill()
        started = time.monotonic()
        with pytest.raises(ClusterError, match="did not answer"):
            handle.wait()
        assert time.monotonic() - started < 10
    finally:
        client.close()


@pytest.mark.timeout(30)
def test_reports_claiming_another_workers_identity_are_dropped(make_cluster):
    import zmq
    from mapred.net import wire
    cluster = make_cluster(workers=1)
    real = cluster.client().workers()[0]["worker_id"]
    ctx = zmq.Context()
    try:
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(cluster.master_addr)
        sock.send_multipart(wire.encode(wire.WorkerBeat(worker_id=real)))
        sock.send_multipart(wire.encode(wire.ListJobs(rid=5)))
        assert sock.poll(5000)
        reply, _ = wire.decode(sock.recv_multipart())
        assert isinstance(reply, wire.JobList)   # no Ok/Reregister for the forged heartbeat came first
        sock.close()
    finally:
        ctx.term()
    assert "claiming to come from worker" in open(os.path.join(cluster.dir, "master.log")).read()


@pytest.mark.timeout(60)
def test_assignments_a_worker_never_runs_are_failed_and_rerun(make_cluster, tmp_path):
    """A worker that heartbeats but drops its assignments: the master notices and re-runs them."""
    import zmq
    from mapred.net import wire
    cluster = make_cluster(workers=1, speculation=False)   # else backups would mask the loss
    client = cluster.client()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IDENTITY, b"fake-worker")
    sock.connect(cluster.master_addr)
    try:
        from mapred.io.fs import HOSTNAME   # on this host: a client refuses local paths for remote workers
        hello = wire.WorkerRegister(worker_id="fake-worker", host=HOSTNAME, slots=4, memory=1,
                                    shuffle_addr="tcp://127.0.0.1:9", version=mapred.__version__)
        sock.send_multipart(wire.encode(hello))
        sock.send_multipart(wire.encode(hello))            # a duplicate: must not count as a rejoin
        deadline = time.monotonic() + 10
        while len(client.workers()) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        job = wordcount(reducers=2, split=4 * 1024)
        path = write_text(tmp_path / "in.txt", 1000)
        handle = client.submit(job, path, str(tmp_path / "out"))
        deadline = time.monotonic() + 30
        while not any("assignment lost" in line for line in handle.logs()):
            assert time.monotonic() < deadline, "the master never noticed the dropped assignments"
            sock.send_multipart(wire.encode(wire.WorkerBeat(worker_id="fake-worker", running=[])))
            while sock.poll(0):
                sock.recv_multipart()                      # assignments, dropped on the floor
            time.sleep(0.25)
    finally:
        sock.close()
        ctx.term()
    result = handle.wait(timeout=40)                      # the fake goes silent and is declared dead
    assert_matches_reference(job, [path], result)
    assert "re-registered" not in open(os.path.join(cluster.dir, "master.log")).read()


@pytest.mark.timeout(60)
def test_a_commit_the_output_file_system_refuses_ends_the_job_with_the_reason(make_cluster, tmp_path):
    cluster = make_cluster(workers=1)
    out = tmp_path / "out"
    job = wordcount(reducers=1, reduce_sleep=1.0)
    handle = cluster.client().submit(job, write_text(tmp_path / "in.txt", 50), str(out))
    wait_status(cluster.client(), handle.job_id, lambda s: running_attempts(s, "r"))
    (out / "part-00000" / "in-the-way").mkdir(parents=True)   # the part cannot be renamed into place
    with pytest.raises(mapred.JobFailed, match="committing .* failed"):
        handle.wait(timeout=30)
    assert not out.exists()                 # a job that did not succeed leaves no output
