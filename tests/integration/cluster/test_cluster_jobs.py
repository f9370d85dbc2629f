"""Jobs on a 3-worker cluster equal the sequential reference; bad input gets clear errors."""
import os
import socket
import sys
import time

import pytest
from click.testing import CliRunner

import mapred
from mapred.net import wire
from mapred.cli import main as cli
from mapred.errors import ClusterError, ConfigError, JobFailed
from mapred.testing import assert_matches_reference

from clusterkit import always_raises, part_texts, terasort, wordcount, write_tera, write_text


@pytest.mark.timeout(60)
def test_wordcount_equals_reference(shared_cluster, tmp_path):
    paths = [write_text(tmp_path / "a.txt", 3000, 1), write_text(tmp_path / "b.txt", 2000, 2)]
    job = wordcount(reducers=3, split=16 * 1024)
    result = job.run(paths, str(tmp_path / "out"), cluster=shared_cluster.client())
    assert_matches_reference(job, paths, result)
    counters = result.counters["job"]
    assert counters["maps_node_local"] >= 1        # local files live on this host
    assert os.path.exists(tmp_path / "out" / "_SUCCESS")


@pytest.mark.timeout(60)
def test_terasort_equals_reference_and_is_globally_sorted(shared_cluster, tmp_path):
    path = write_tera(tmp_path / "tera.txt", 5000)
    job = terasort(path, reducers=3, split=32 * 1024)
    result = job.run(path, str(tmp_path / "out"), cluster=shared_cluster.client())
    assert_matches_reference(job, [path], result)
    keys = [line.split("\t", 1)[0] for line in part_texts(str(tmp_path / "out"))]
    assert keys == sorted(keys) and len(keys) == 5000


@pytest.mark.timeout(60)
def test_failing_mapper_fails_the_job_and_status_shows_record_and_traceback(shared_cluster, tmp_path):
    path = write_text(tmp_path / "in.txt", 50)
    client = shared_cluster.client()
    with pytest.raises(JobFailed) as info:
        always_raises().run(path, str(tmp_path / "out"), cluster=client)
    assert "cannot parse" in str(info.value) and "record offset 0" in str(info.value)
    job_id = info.value.job_id
    out = CliRunner().invoke(cli, ["job", "--master", shared_cluster.master_addr, "status", job_id])
    assert out.exit_code == 0, out.output
    assert "FAILED" in out.output and "offset: 0" in out.output
    assert "Traceback" in out.output and "ValueError: cannot parse" in out.output
    logs = CliRunner().invoke(cli, ["job", "--master", shared_cluster.master_addr, "logs", job_id,
                                    "--task", f"{job_id}-m-00000"])
    assert logs.exit_code == 0 and "failed on" in logs.output
    assert not os.path.exists(tmp_path / "out")       # a failed job leaves no output


@pytest.mark.timeout(60)
def test_job_code_that_cannot_be_unpickled_names_the_missing_module(shared_cluster, tmp_path):
    mod = tmp_path / "only_here_module.py"
    mod.write_text("def mapper(k, line):\n    yield line, 1\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import only_here_module
        job = mapred.Job(only_here_module.mapper, reducer=lambda k, vs: [(k, sum(vs))])
        path = write_text(tmp_path / "in.txt", 10)
        with pytest.raises(JobFailed) as info:
            job.run(path, str(tmp_path / "out"), cluster=shared_cluster.client())
        assert "only_here_module" in str(info.value)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("only_here_module", None)


@pytest.mark.timeout(60)
def test_submit_status_kill_and_list(shared_cluster, tmp_path):
    client = shared_cluster.client()
    path = write_text(tmp_path / "in.txt", 2000)
    handle = client.submit(wordcount(map_sleep=30.0, split=8 * 1024), path, str(tmp_path / "out"))
    assert handle.status()["state"] in ("MAPPING", "SUBMITTED")
    assert any(j["job_id"] == handle.job_id for j in client.jobs())
    result = CliRunner().invoke(cli, ["job", "--master", shared_cluster.master_addr, "kill", handle.job_id])
    assert result.exit_code == 0, result.output
    with pytest.raises(mapred.JobKilled):
        handle.wait(timeout=20)
    listing = CliRunner().invoke(cli, ["job", "--master", shared_cluster.master_addr, "list"])
    assert handle.job_id in listing.output and "KILLED" in listing.output
    # the cluster still works after the kill
    job = wordcount()
    assert_matches_reference(job, [path], job.run(path, str(tmp_path / "out2"), cluster=client))


@pytest.mark.timeout(60)
def test_two_jobs_at_once_share_the_cluster(shared_cluster, tmp_path):
    client = shared_cluster.client()
    paths = [write_text(tmp_path / f"{i}.txt", 1500, i) for i in range(2)]
    jobs = [wordcount(reducers=2, split=8 * 1024) for _ in paths]
    handles = [client.submit(j, p, str(tmp_path / f"out{i}")) for i, (j, p) in enumerate(zip(jobs, paths))]
    for job, path, h in zip(jobs, paths, handles):
        assert_matches_reference(job, [path], h.wait(timeout=50))


@pytest.mark.timeout(30)
def test_unknown_job_id_is_a_clear_error(shared_cluster):
    client = shared_cluster.client()
    with pytest.raises(ConfigError, match="no job 'nosuchjob'"):
        client.kill("nosuchjob")
    out = CliRunner().invoke(cli, ["job", "--master", shared_cluster.master_addr, "kill", "nosuchjob"])
    assert out.exit_code != 0 and "no job 'nosuchjob'" in out.output


@pytest.mark.timeout(30)
def test_dead_master_address_errors_within_the_timeout():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(ClusterError, match="no mapred master answered"):
        mapred.connect(f"tcp://127.0.0.1:{port}", timeout=1.5)
    assert time.monotonic() - started < 6
    with pytest.raises(ConfigError):
        mapred.connect("not-an-address")
    out = CliRunner().invoke(cli, ["job", "--master", f"tcp://127.0.0.1:{port}", "--timeout", "1", "list"])
    assert out.exit_code != 0 and "no mapred master answered" in out.output


@pytest.mark.timeout(60)
def test_garbage_bytes_on_master_and_shuffle_sockets_are_dropped(shared_cluster, tmp_path):
    import zmq
    ctx = zmq.Context()
    try:
        targets = [shared_cluster.master_addr] + [w["shuffle_addr"] for w in shared_cluster.client().workers()]
        for addr in targets:
            sock = ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(addr)
            sock.send_multipart([b"\x00garbage", os.urandom(64)])
            sock.send_multipart([wire.VERSION, b"\xc1\xff not msgpack"])
            sock.send_multipart(wire.encode(wire.ShuffleRead(path="/etc/passwd", partition=0)))
            sock.send_multipart(wire.encode(wire.AttemptDone(worker_id="x", attempt="bogus", output={},
                                                             counters={})))
            if addr != shared_cluster.master_addr:
                assert sock.poll(5000), "the shuffle server did not answer a bad path"
                reply, _ = wire.decode(sock.recv_multipart())
                assert isinstance(reply, wire.Error) and "not a map output" in reply.message
            sock.close()
        for addr in targets[:1]:           # raw TCP garbage too, below ZeroMQ's framing
            host, port = addr[len("tcp://"):].rsplit(":", 1)
            with socket.create_connection((host, int(port))) as s:
                s.sendall(os.urandom(256))
    finally:
        ctx.term()
    job = wordcount()
    path = write_text(tmp_path / "in.txt", 500)
    assert_matches_reference(job, [path], job.run(path, str(tmp_path / "out"), cluster=shared_cluster.client()))
    assert all(p.poll() is None for p in shared_cluster.worker_procs + [shared_cluster.master_proc])


@pytest.mark.timeout(60)
def test_heartbeats_carry_the_progress_of_running_maps(shared_cluster, tmp_path):
    client = shared_cluster.client()
    path = write_text(tmp_path / "in.txt", 20000)

    def slow_reader(offset, line):
        time.sleep(0.0002)
        yield line[:1], 1

    job = mapred.Job(slow_reader, reducer=lambda k, vs: [(k, sum(vs))], name="slow-reader")
    job.split_size = 256 * 1024
    handle = client.submit(job, path, str(tmp_path / "out"))
    try:
        deadline = time.monotonic() + 40
        seen = 0.0
        while seen <= 0 and time.monotonic() < deadline:
            st = handle.status(detail=True)
            seen = max([a["progress"] for t in st["tasks"] for a in t["attempts"] if a["state"] == "RUNNING"] or [0])
            time.sleep(0.1)
        assert 0 < seen < 1
    finally:
        handle.kill()


@pytest.mark.timeout(60)
def test_pipeline_and_mrjob_class_run_unchanged_on_the_cluster(shared_cluster, tmp_path):
    """The same Job objects give the same output on the cluster as on the local runner."""
    path = write_text(tmp_path / "in.txt", 800)

    def invert(word, count):
        yield int(count), word

    def join(count, words):
        yield count, ",".join(sorted(words))

    class LineLengths(mapred.MRJob):
        def mapper(self, offset, line):
            yield len(line), 1

        def reducer(self, length, ones):
            yield length, sum(ones)

    wc = wordcount(reducers=2)
    wc.output_format = "msgpack"
    pipe = wc.then(mapred.Job(invert, reducer=join, num_reducers=2, name="by-count"))
    client = shared_cluster.client()
    for target in (pipe, LineLengths):
        on_cluster = sorted(target.run(path, str(tmp_path / "c"), cluster=client, overwrite=True))
        local = sorted(target.run(path, str(tmp_path / "l"), workers=2, overwrite=True))
        assert on_cluster == local and on_cluster
