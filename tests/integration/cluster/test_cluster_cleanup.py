"""Workers clean up after themselves: job ends, killed attempts, and a crashed predecessor's files."""
import os

import pytest

from mapred.testing import assert_matches_reference

from clusterkit import running_attempts, wait_status, wordcount, worker_index, write_text


def files_under(root):
    out = set()
    for here, _, names in os.walk(root):
        out.update(os.path.join(here, n) for n in names)
    return out


def job_dirs(root):
    return sorted(n for n in os.listdir(root) if n.startswith("job"))


@pytest.mark.timeout(120)
def test_a_worker_killed_mid_job_and_restarted_on_its_data_dir_leaves_no_stale_files(make_cluster,
                                                                                    tmp_path):
    cluster = make_cluster(workers=2, short_circuit=False)
    client = cluster.client()
    path = write_text(tmp_path / "in.txt", 4000)
    job = wordcount(reducers=2, map_sleep=0.3, split=8 * 1024)
    handle = client.submit(job, path, str(tmp_path / "out"))
    st = wait_status(client, handle.job_id, lambda s: s["progress"]["maps_done"] >= 2
                     and running_attempts(s, "m"))
    _, worker_id = running_attempts(st, "m")[0]
    index = worker_index(cluster, worker_id)
    data_dir = os.path.join(cluster.dir, f"worker-{index}")
    wait_status(client, handle.job_id, lambda s: files_under(data_dir))   # it has written something
    cluster.kill_worker(index)
    stale = files_under(data_dir)
    assert stale, "the killed worker left nothing to sweep; the test proves nothing"
    before = {w["worker_id"] for w in client.workers()}
    cluster.start_worker(wait=False, extra=["--data-dir", data_dir])
    wait_status(client, handle.job_id,                                # a new worker registered
                lambda s: {w["worker_id"] for w in client.workers()} - before)
    assert not (stale & files_under(data_dir)), sorted(stale & files_under(data_dir))[:5]
    result = handle.wait(timeout=90)
    assert_matches_reference(job, [path], result)
    # the job's end drops its map outputs everywhere: no job directory is left on any worker
    for name in os.listdir(cluster.dir):
        d = os.path.join(cluster.dir, name)
        if name.startswith("worker-") and os.path.isdir(d):
            wait_status(client, handle.job_id, lambda s, d=d: not job_dirs(d), timeout=20)


@pytest.mark.timeout(60)
def test_the_sweep_removes_only_job_directories(tmp_path):
    from mapred.task.sweep import sweep
    (tmp_path / "job12abcdef" / "job12abcdef-m-00001-0").mkdir(parents=True)
    (tmp_path / "job12abcdef" / "job12abcdef-m-00001-0" / "file.out").write_bytes(b"x" * 100)
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "other").mkdir()
    removed, freed = sweep(str(tmp_path))
    assert removed == [str(tmp_path / "job12abcdef")] and freed == 100
    assert sorted(os.listdir(tmp_path)) == ["notes.txt", "other"]


@pytest.mark.timeout(120)
def test_a_running_jobs_inputs_and_output_are_held_against_cleanup_rules(make_cluster, tmp_path):
    cluster = make_cluster(workers=2, datanodes=1)
    store = cluster.storage.client()
    store.write_bytes("/in/words.txt", open(write_text(tmp_path / "in.txt", 2000), "rb").read())
    store.cleanup_rules({"rule": [{"id": "all-in", "path": "/in/*", "expire_after": 0, "trash": False},
                                  {"id": "all-out", "path": "/out*", "expire_after": 0, "trash": False}]})
    uri = cluster.storage.namenode_uri
    job = wordcount(reducers=2, map_sleep=0.5, split=4 * 1024)
    handle = cluster.client().submit(job, uri + "/in/words.txt", uri + "/out")
    wait_status(cluster.client(), handle.job_id, lambda s: s["state"] in ("MAPPING", "REDUCING"))
    report = store.cleanup_run()
    assert report["actions"] == [], report["actions"]
    held = {h["path"]: h["pin"] for h in report["honoured"]}
    assert f"in use by {handle.job_id}" in held["/in/words.txt"]
    result = handle.wait(timeout=90)
    assert result.counters["job"].get("rerun_maps", 0) == 0
    # the job ended: its client released the hold, the rules apply again
    after = store.cleanup_run()
    assert sorted(a["path"] for a in after["actions"]) == ["/in/words.txt", "/out"]
