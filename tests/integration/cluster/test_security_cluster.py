"""The compute side of the security issue, on a cluster whose every node and user has its own key.

A crafted submit from a node key or an unknown key never runs; a user key
cannot register as a worker; user B can neither see, kill nor read user A's
job; an output that already holds files is refused before anything is
deleted; a shuffle fetch without the job's token, or with another job's, is
refused; part names reported for a commit cannot leave the job's tree.
"""
import os
import shutil

import cloudpickle
import pytest
import zmq

import mapred
from mapred.errors import ClusterError, ProtocolError
from mapred.io import commit
from mapred.net import wire
from mapred.runtime.plan import JobSettings
from mapred.net.transport import RpcClient
from mapred.runtime.procs import Cluster
from mapred.security import tokens
from mapred.security.keys import KeyDir
from mapred.shuffle.fetch import FetchError
from mapred.shuffle.netfetch import NetFetcher
from mapred.shuffle.serve import ShuffleServer
from mapred.shuffle.spill import RunWriter
from mapred.testing import assert_matches_reference

from clusterkit import FAST, wordcount, write_text


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    """A 2-worker cluster with keys: nodes get their own; the harness is admin, alice and bob users."""
    root = tmp_path_factory.mktemp("keyed")
    keydir = KeyDir(str(root / "keys"))
    keydir.ensure("admin", "admin")
    keydir.ensure("alice", "user")
    keydir.ensure("bob", "user")
    mp = pytest.MonkeyPatch()
    mp.setenv("MAPRED_KEYS", keydir.path)
    mp.setenv("MAPRED_PRINCIPAL", "admin")
    mp.delenv("MAPRED_SECRET", raising=False)
    try:
        with Cluster(str(root / "c"), workers=2, slots=1, short_circuit=False, **FAST) as cluster:
            yield cluster, keydir, mp
    finally:
        mp.undo()


def _as(mp, who: str, addr: str):
    mp.setenv("MAPRED_PRINCIPAL", who)
    return mapred.connect(addr)


def _raw(mp, who: str, addr: str, msg, *data, timeout: float = 3.0):
    mp.setenv("MAPRED_PRINCIPAL", who)
    ctx = zmq.Context()
    rpc = RpcClient(ctx, addr, timeout)
    try:
        return rpc.call(msg, *data)[0]
    except ClusterError:
        return None
    finally:
        rpc.close()
        ctx.term()
        mp.setenv("MAPRED_PRINCIPAL", "admin")


def _evil_blob(marker: str) -> bytes:
    def boom():
        open(marker, "w").write("ran")
    return cloudpickle.dumps(boom)


@pytest.mark.timeout(120)
def test_jobs_run_with_keys_and_belong_to_their_submitter(keyed, tmp_path):
    cluster, keydir, mp = keyed
    path = write_text(tmp_path / "in.txt", 400)
    alice = _as(mp, "alice", cluster.master_addr)
    job = wordcount()
    result = job.run(path, str(tmp_path / "out"), cluster=alice)
    assert_matches_reference(job, [path], result)
    mine = [j for j in alice.jobs() if j["owner"] == "alice"]
    assert mine and alice.workers() == []              # users do not see hosts, pids, addresses
    job_id = mine[0]["job_id"]
    bob = _as(mp, "bob", cluster.master_addr)
    assert all(j["owner"] != "alice" for j in bob.jobs())
    for attempt in (lambda: bob.status(job_id), lambda: bob.kill(job_id), lambda: bob.logs(job_id)):
        with pytest.raises(Exception, match="no job"):
            attempt()
    admin = _as(mp, "admin", cluster.master_addr)
    assert admin.status(job_id)["owner"] == "alice" and len(admin.workers()) == 2
    assert cluster.client().cluster_info() and admin._call(wire.ListJobs(), wire.JobList).refusals["not_owner"] >= 3
    for c in (alice, bob, admin):
        c.close()


@pytest.mark.timeout(60)
def test_a_crafted_submit_without_a_user_key_never_runs(keyed, tmp_path):
    cluster, keydir, mp = keyed
    marker = str(tmp_path / "pwned")
    msg = wire.SubmitJob(job_id="evil1", settings=JobSettings(name="x", num_reducers=0, map_only=True,
                                                           output_format="text"),
                         splits=[], output=str(tmp_path / "o"))
    reply = _raw(mp, "worker-0", cluster.master_addr, msg, _evil_blob(marker))
    assert isinstance(reply, wire.Error) and reply.kind == "PermissionDenied"
    outsider = KeyDir(str(tmp_path / "other-keys"))        # a key the cluster never admitted
    outsider.ensure("mallory", "admin")
    shutil.copy(keydir.daemons, outsider.path)          # the daemons' public keys are public
    mp.setenv("MAPRED_KEYS", outsider.path)
    try:
        assert _raw(mp, "mallory", cluster.master_addr, msg, _evil_blob(marker), timeout=1.5) is None
    finally:
        mp.setenv("MAPRED_KEYS", keydir.path)
    assert not os.path.exists(marker)
    admin = _as(mp, "admin", cluster.master_addr)
    assert all(j["job_id"] != "evil1" for j in admin.jobs())
    counts = admin._call(wire.ListJobs(), wire.JobList).refusals
    assert counts["wrong_role"] >= 1 and counts["unknown_key"] >= 1
    admin.close()


@pytest.mark.timeout(60)
def test_a_user_key_cannot_register_as_a_worker(keyed):
    cluster, _, mp = keyed
    reg = wire.WorkerRegister(worker_id="fake", host="h", slots=8, memory=1, shuffle_addr="tcp://127.0.0.1:1",
                              version=mapred.__version__)
    reply = _raw(mp, "alice", cluster.master_addr, reg)
    assert isinstance(reply, wire.Error) and reply.kind == "PermissionDenied"
    admin = _as(mp, "admin", cluster.master_addr)
    assert sorted(w["worker_id"] != "fake" for w in admin.workers()) == [True, True]
    admin.close()


@pytest.mark.timeout(60)
def test_an_output_holding_files_is_refused_before_anything_is_deleted(keyed, tmp_path):
    cluster, _, mp = keyed
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.txt").write_text("years of work")
    msg = wire.SubmitJob(job_id="grab1", settings=JobSettings(name="x", num_reducers=0, map_only=True,
                                                           output_format="text"), splits=[], output=str(out))
    reply = _raw(mp, "alice", cluster.master_addr, msg, b"\x80\x04N.")
    assert isinstance(reply, wire.Error) and "already exists" in reply.message
    assert (out / "thesis.txt").read_text() == "years of work"


def test_commit_takes_only_plain_part_names_from_inside_the_attempt(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    out = tmp_path / "out"
    commit.refuse_foreign_output(str(out))
    for name in (str(victim), "../victim", "..", "_SUCCESS", "a/b"):
        with pytest.raises(ProtocolError):
            commit.commit_task(str(out), "job1-m-00000-0", [name])
    commit.abort_job(str(out))
    assert victim.read_text() == "keep me" and not out.exists()


@pytest.mark.timeout(30)
def test_a_shuffle_fetch_needs_the_jobs_token(tmp_path):
    root = tmp_path / "worker"
    (root / "job1" / "a1").mkdir(parents=True)
    w = RunWriter(str(root / "job1" / "a1" / "map.out"), 1, "none")
    w.write_partition([("k", [1])])
    index = w.close()
    key = tokens.new_key()
    server = ShuffleServer(str(root)).start()
    server.allow("job1", tokens.job_token(key, "job1"))
    server.allow("job2", tokens.job_token(key, "job2"))
    try:
        source = [(0, "w", {"path": index.path, "addr": server.addr})]
        for job_id, token, why in [("job1", "", "no job token"),
                                   ("job1", tokens.job_token(key, "job2"), "wrong job token"),
                                   ("job2", tokens.job_token(key, "job2"), "not an output of job"),
                                   ("job1", tokens.job_token(tokens.new_key(), "job1"), "wrong job token")]:
            fetcher = NetFetcher(1 << 20, retries=0, timeout=2.0, job_id=job_id, token=token)
            with pytest.raises(FetchError, match=why):
                fetcher(source, 0, str(tmp_path / "r"))
        good = NetFetcher(1 << 20, retries=0, timeout=2.0, job_id="job1", token=tokens.job_token(key, "job1"))
        assert [(k, list(v)) for k, v in good(source, 0, str(tmp_path / "r"))[0]] == [("k", [1])]
        counts = server.refusals.counts()
        assert counts["no_job_token"] == 1 and counts["bad_job_token"] == 3
    finally:
        server.stop()
