"""Worker drain in the middle of a 3-worker word count: no lost work, no map re-run, a clean exit."""
import pytest
from click.testing import CliRunner

from mapred.cli import main
from mapred.runtime.procs import wait_for
from mapred.testing import assert_matches_reference

from clusterkit import wait_status, wordcount, worker_index, write_text


def maps_done_on(st, worker_id):
    return [t["task"] for t in st.get("tasks", []) if "-m-" in t["task"]
            and any(a["state"] == "SUCCEEDED" and a["worker"] == worker_id for a in t["attempts"])]


@pytest.mark.timeout(150)
def test_drain_mid_word_count_costs_no_map_rerun(make_cluster, tmp_path):
    cluster = make_cluster(workers=3, short_circuit=False)
    client = cluster.client()
    path = write_text(tmp_path / "in.txt", 6000)
    job = wordcount(reducers=3, map_sleep=0.3, split=6 * 1024)
    handle = client.submit(job, path, str(tmp_path / "out"))
    st = wait_status(client, handle.job_id, lambda s: s["state"] == "MAPPING" and any(
        maps_done_on(s, w["worker_id"]) for w in client.workers()), timeout=60)
    victim = next(w["worker_id"] for w in client.workers() if maps_done_on(st, w["worker_id"]))
    r = CliRunner().invoke(main, ["worker", "drain", victim, "--master", cluster.master_addr,
                                  "--no-wait"])
    assert r.exit_code == 0 and "DECOMMISSIONING" in r.output, r.output
    result = handle.wait(timeout=120)
    assert_matches_reference(job, [path], result)
    counters = result.counters["job"]
    assert counters.get("rerun_maps", 0) == 0 and counters.get("lost_attempts", 0) == 0, counters
    st = client.status(handle.job_id, detail=True)
    assert maps_done_on(st, victim)                          # its outputs were used, not re-made
    index = worker_index(cluster, victim)
    wait_for(lambda: cluster.worker_procs[index].poll() is not None, 30, "the drained worker to exit")
    assert cluster.worker_procs[index].returncode == 0
    state = {w["worker_id"]: w["state"] for w in client.workers(alive_only=False)}
    assert state[victim] == "DECOMMISSIONED"
    r = CliRunner().invoke(main, ["worker", "drain", "nobody", "--master", cluster.master_addr])
    assert r.exit_code == 1 and "no live worker 'nobody'" in r.output
